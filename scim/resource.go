package scim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gatehouse/provision"
)

// A resource travels as a JSON object (map[string]any) with canonical
// attribute names; PATCH edits that object and decoding turns it back
// into a provision record, validating every value.

// get looks a key up case-insensitively (RFC 7643 §2.1).
func get(m map[string]any, name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// del removes every spelling of a key.
func del(m map[string]any, name string) {
	for k := range m {
		if strings.EqualFold(k, name) {
			delete(m, k)
		}
	}
}

// set replaces every spelling of a key with the canonical one.
func set(m map[string]any, name string, v any) {
	del(m, name)
	m[name] = v
}

const stampLayout = "2006-01-02T15:04:05.000Z"

func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

func meta(resourceType, location string, version int64, created, updated time.Time) map[string]any {
	return map[string]any{
		"resourceType": resourceType, "location": location, "version": etag(version),
		"created": created.UTC().Format(stampLayout), "lastModified": updated.UTC().Format(stampLayout),
	}
}

// userDoc renders a user.
func (s *Server) userDoc(u provision.User) map[string]any {
	doc := map[string]any{"id": u.ID, "active": u.Active}
	schemas := []any{URNUser}
	if s.users.hasExternalID && u.ExternalID != "" {
		doc["externalId"] = u.ExternalID
	}
	fill(doc, s.users.core, u)
	for _, ext := range s.users.ext {
		m := map[string]any{}
		fill(m, ext, u)
		if mgr, ok := m["manager"].(map[string]any); ok {
			mgr["$ref"] = s.base + "/Users/" + mgr["value"].(string)
		}
		if len(m) > 0 {
			doc[ext.id] = m
			schemas = append(schemas, ext.id)
		}
	}
	doc["schemas"] = schemas
	doc["meta"] = meta("User", s.base+"/Users/"+u.ID, u.Version, u.Created, u.Updated)
	return doc
}

// fill writes the attributes of one schema from u into m.
func fill(m map[string]any, sc *schema, u provision.User) {
	for _, a := range sc.attrs {
		switch {
		case a.slots != nil:
			var list []any
			for _, t := range a.types {
				el := map[string]any{}
				for sub, f := range a.slots[t] {
					if v := u.Field(f); v != "" {
						el[sub] = v
					}
				}
				if len(el) > 0 {
					el["type"] = t
					if len(list) == 0 {
						el["primary"] = true
					}
					list = append(list, el)
				}
			}
			if list != nil {
				m[a.name] = list
			}
		case a.typ == "complex" && a.field != "":
			if v := u.Field(a.field); v != "" {
				m[a.name] = map[string]any{"value": v}
			}
		case a.typ == "complex":
			sub := map[string]any{}
			for _, s := range a.sub {
				if v := u.Field(s.field); v != "" {
					sub[s.name] = v
				}
			}
			if len(sub) > 0 {
				m[a.name] = sub
			}
		case a.field != "":
			if v := u.Field(a.field); v != "" {
				m[a.name] = v
			}
		}
	}
}

// decoder turns a resource object into a record. Every string passes
// provision's canonical checks here, for POST, PUT and PATCH alike (PATCH
// edits the rendered object and decodes it again).
type decoder struct {
	quirks bool
	// trim trims leading and trailing white space from every string
	// instead of refusing it (scim.trim_whitespace).
	trim bool
}

// user decodes doc over base: every field the schemas own is replaced
// (absent attributes are cleared); other fields of base are kept.
func (d decoder) user(rt *resourceType, doc map[string]any, base provision.User) (provision.User, error) {
	u := base
	doc, err := spellings(rt, doc)
	if err != nil {
		return u, err
	}
	u.Extra = make(map[string]string, len(base.Extra))
	for k, v := range base.Extra {
		u.Extra[k] = v
	}
	for _, sc := range rt.schemas() {
		for _, f := range sc.fields() {
			u.SetField(f, "")
		}
	}
	if rt.hasExternalID {
		u.ExternalID = ""
		if v, ok := get(doc, "externalId"); ok {
			s, err := d.text("externalId", v)
			if err != nil {
				return u, err
			}
			u.ExternalID = s
		}
	}
	if err := d.fields(rt.core, doc, &u); err != nil {
		return u, err
	}
	for _, ext := range rt.ext {
		v, ok := get(doc, ext.id)
		if !ok || v == nil {
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return u, badValue("%s must be an object", ext.id)
		}
		if err := d.fields(ext, m, &u); err != nil {
			return u, err
		}
	}
	if v, ok := get(doc, "active"); ok && v != nil {
		b, err := d.boolean("active", v)
		if err != nil {
			return u, err
		}
		u.Active = b
	}
	if u.UserName == "" {
		return u, badValue("userName is required")
	}
	if _, err := provision.CanonicalName("userName", u.UserName); err != nil {
		return u, invalid(err)
	}
	return u, nil
}

// invalid answers a canonical-form error as invalidValue, saying what is
// wrong without the sentinel's words.
func invalid(err error) error {
	return badValue("%s", strings.TrimPrefix(err.Error(), provision.ErrInvalid.Error()+": "))
}

func (d decoder) fields(sc *schema, m map[string]any, u *provision.User) error {
	for _, a := range sc.attrs {
		v, ok := get(m, a.name)
		if !ok || v == nil {
			continue
		}
		switch {
		case a.slots != nil:
			if err := d.multi(a, v, u); err != nil {
				return err
			}
		case a.typ == "complex" && a.field != "":
			val, err := d.ref(a, v)
			if err != nil {
				return err
			}
			u.SetField(a.field, val)
		case a.typ == "complex":
			sub, ok := v.(map[string]any)
			if !ok {
				return badValue("%s must be an object", a.name)
			}
			for _, s := range a.sub {
				if sv, ok := get(sub, s.name); ok && sv != nil {
					t, err := d.text(a.name+"."+s.name, sv)
					if err != nil {
						return err
					}
					u.SetField(s.field, t)
				}
			}
		case a.field != "":
			t, err := d.text(a.name, v)
			if err != nil {
				return err
			}
			u.SetField(a.field, t)
		}
	}
	return nil
}

// multi stores a multi-valued attribute into its typed slots. An element
// without a type takes the first free slot; a type with no slot, or a type
// given twice, is refused rather than dropped.
func (d decoder) multi(a *attr, v any, u *provision.User) error {
	list, ok := v.([]any)
	if !ok {
		if m, isObj := v.(map[string]any); isObj && d.quirks {
			list = []any{m}
		} else {
			return badValue("%s must be an array", a.name)
		}
	}
	used := map[string]bool{}
	for _, item := range list {
		el, ok := item.(map[string]any)
		if !ok {
			return badValue("each of %s must be an object", a.name)
		}
		t := ""
		if tv, ok := get(el, "type"); ok && tv != nil {
			s, err := d.text(a.name+".type", tv)
			if err != nil {
				return err
			}
			t = slotType(s)
		}
		if t == "" {
			t = a.freeType(used)
		}
		subs, ok := a.slots[t]
		if !ok {
			return badValue("%s of type %q cannot be stored; types: %s", a.name, t, strings.Join(a.types, ", "))
		}
		if used[t] {
			return badValue("%s has more than one value of type %q", a.name, t)
		}
		used[t] = true
		for sub, f := range subs {
			if sv, ok := get(el, sub); ok && sv != nil {
				s, err := d.text(a.name+"."+sub, sv)
				if err != nil {
					return err
				}
				u.SetField(f, s)
			}
		}
	}
	return nil
}

// ref decodes a singular complex attribute holding a reference (manager):
// an object with "value". Quirks also take a bare string and a one-element
// array, as Entra ID sends.
func (d decoder) ref(a *attr, v any) (string, error) {
	if d.quirks {
		switch x := v.(type) {
		case string:
			return d.text(a.name, x)
		case []any:
			if len(x) == 1 {
				v = x[0]
			}
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return "", badValue("%s must be an object with a value", a.name)
	}
	sv, ok := get(m, "value")
	if !ok || sv == nil {
		return "", nil
	}
	return d.text(a.name+".value", sv)
}

func (d decoder) text(name string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", badValue("%s must be a string", name)
	}
	if d.trim {
		t := provision.Trim(s)
		if t == "" && s != "" {
			return "", badValue("%s is only white space", name)
		}
		s = t
	}
	s, err := provision.CanonicalValue(name, s)
	if err != nil {
		return "", invalid(err)
	}
	return s, nil
}

// boolean takes a JSON boolean; quirks also take "true"/"false" strings in
// any case, as Entra ID and OneLogin templates send them.
func (d decoder) boolean(name string, v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		if d.quirks {
			switch strings.ToLower(x) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
	}
	return false, badValue("%s must be a boolean", name)
}

// groupDoc renders a group; members only when loaded.
func (s *Server) groupDoc(g provision.Group) map[string]any {
	doc := map[string]any{"schemas": []any{URNGroup}, "id": g.ID, "displayName": g.Name,
		"meta": meta("Group", s.base+"/Groups/"+g.ID, g.Version, g.Created, g.Updated)}
	if g.ExternalID != "" {
		doc["externalId"] = g.ExternalID
	}
	if g.Members != nil {
		ms := make([]any, 0, len(g.Members))
		for _, m := range g.Members {
			ms = append(ms, map[string]any{"value": m.UserID, "display": m.UserName, "type": "User", "$ref": s.base + "/Users/" + m.UserID})
		}
		doc["members"] = ms
	}
	return doc
}

// group decodes a group object. Members are user IDs.
func (d decoder) group(doc map[string]any) (provision.Group, error) {
	var g provision.Group
	for k := range doc {
		// The Group schema has no extension here: its attributes are
		// read at the top level only, and one put under its URN would be
		// dropped (a PUT would empty the member list), so it is refused.
		if len(k) >= len(URNGroup) && strings.EqualFold(k[:len(URNGroup)], URNGroup) {
			return g, badValue("a Group's attributes belong at the top level of the resource, not under %s", quoteKey(k))
		}
	}
	v, _ := get(doc, "displayName")
	if _, ok := v.(string); !ok {
		return g, badValue("displayName is required and must be a string")
	}
	name, err := d.text("displayName", v)
	if err != nil {
		return g, err
	}
	if g.Name, err = provision.CanonicalGroup(name); err != nil {
		return g, invalid(err)
	}
	if v, ok := get(doc, "externalId"); ok && v != nil {
		if g.ExternalID, err = d.text("externalId", v); err != nil {
			return g, err
		}
	}
	g.Members = []provision.Member{}
	if v, ok := get(doc, "members"); ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return g, badValue("members must be an array")
		}
		seen := map[string]bool{}
		for _, item := range list {
			id, err := d.member(item)
			if err != nil {
				return g, err
			}
			if !seen[id] {
				seen[id] = true
				g.Members = append(g.Members, provision.Member{UserID: id})
			}
		}
	}
	return g, nil
}

// member decodes one element of a group's members: the user ID it names.
func (d decoder) member(item any) (string, error) {
	el, ok := item.(map[string]any)
	if !ok {
		return "", badValue("each member must be an object")
	}
	if t, ok := get(el, "type"); ok && t != nil && !d.quirks {
		if ts, _ := t.(string); ts != "User" {
			return "", badValue("member type %v is not supported; members are users", t)
		}
	}
	mv, _ := get(el, "value")
	id, err := d.text("members.value", mv)
	if err != nil || id == "" {
		return "", badValue("each member needs a value (a user id)")
	}
	return id, nil
}

// decodeJSON reads one JSON object, numbers kept exact, that is UTF-8
// text without lone surrogate escapes (checkText) and none of whose
// objects holds one key twice in any spelling (checkKeys).
func decodeJSON(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, &Error{Status: 400, Type: "invalidSyntax", Detail: "request body is not a JSON object: " + jsonProblem(err)}
	}
	if dec.More() {
		return nil, &Error{Status: 400, Type: "invalidSyntax", Detail: "request body holds more than one JSON value"}
	}
	if m == nil {
		return nil, &Error{Status: 400, Type: "invalidSyntax", Detail: "request body must be a JSON object"}
	}
	// Bad bytes and lone surrogates decode as U+FFFD: refuse them.
	if err := checkText(b); err != nil {
		return nil, err
	}
	// Two keys that differ only in case would each be read by get at
	// random; refuse the body before anything is applied.
	if err := checkKeys(b); err != nil {
		return nil, err
	}
	return m, nil
}

// jsonProblem describes a JSON syntax error without echoing input.
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("syntax error at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("unexpected %s at byte %d", e.Value, e.Offset)
	}
	return "malformed JSON"
}
