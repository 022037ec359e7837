package scim

import (
	"slices"
	"strings"

	filter "github.com/scim2/filter-parser/v2"

	"gatehouse/provision"
)

// Ownership follows the fields SCIM has written. Every SCIM write of a user
// adds the fields it wrote to User.SCIMFields; a login then leaves alone
// those of them that owned_fields names (provision.Decide). A write names a
// field when it sets or clears it, whatever value it leaves: a POST the
// fields its body sets, a PUT the fields its body carries and the stored
// ones it clears by leaving them out, a PATCH the fields its operations
// name. active is never a field: deactivating a user takes nothing.

// userFields lists every store field a user resource can write: the
// fields of its schemas, and external_id when SCIM owns it.
func (s *Server) userFields() []string {
	var out []string
	for _, sc := range s.users.schemas() {
		out = append(out, sc.fields()...)
	}
	if s.ownsExternalID() {
		out = append(out, provision.FieldExternalID)
	}
	return provision.SortedUnique(out)
}

// ownsExternalID reports whether externalId counts as a field SCIM writes:
// the store keeps it and owned_fields names it.
func (s *Server) ownsExternalID() bool {
	return s.users.hasExternalID && slices.Contains(s.owned, provision.FieldExternalID)
}

// createdFields are the fields a POST wrote: those its body set.
func (s *Server) createdFields(u provision.User) []string {
	var out []string
	for _, f := range s.userFields() {
		if u.Field(f) != "" {
			out = append(out, f)
		}
	}
	return out
}

// replacedFields are the fields a PUT wrote over cur: those its body
// carries and the stored ones it clears by omission.
func (s *Server) replacedFields(cur, next provision.User) []string {
	var out []string
	for _, f := range s.userFields() {
		if next.Field(f) != "" || cur.Field(f) != "" {
			out = append(out, f)
		}
	}
	return out
}

// changedFields are the fields whose values differ between cur and next.
// A PATCH owns them whatever its operations were read to name: a value it
// changed is a value it wrote, so no spelling of a path can change a field
// and leave it to the next login to overwrite.
func (s *Server) changedFields(cur, next provision.User) []string {
	var out []string
	for _, f := range s.userFields() {
		if next.Field(f) != cur.Field(f) {
			out = append(out, f)
		}
	}
	return out
}

// withSCIMFields returns the fields SCIM has written to a user once it
// also wrote written: the sorted union. AllFields stays (it already means
// every field), alone.
func withSCIMFields(stored, written []string) []string {
	if slices.Contains(stored, provision.AllFields) {
		return []string{provision.AllFields}
	}
	out := provision.SortedUnique(slices.Concat(stored, written))
	if len(out) == 0 {
		return nil
	}
	return out
}

// applyNamed applies ops to doc in order, as applyAll does, and returns
// the fields they name. It walks each operation as apply does (walk), so
// a path-less value, a schema URN path and a schema URN key are read into
// the same writes for both: each write at a path names what namedAt says,
// a remove of an extension URN every field of that extension. Each write
// is named against the object as the writes before it left it, so a
// value filter selects what it will change.
func (p *patcher) applyNamed(doc map[string]any, ops []operation, ownsExternalID bool) ([]string, error) {
	var named []string
	apply := p.writesTo(doc)
	w := writes{
		at: func(op, path string, v any, has bool) error {
			named = append(named, p.namedAt(doc, op, path, v, has, ownsExternalID)...)
			return apply.at(op, path, v, has)
		},
		clear: func(sc *schema) {
			named = append(named, sc.fields()...)
			apply.clear(sc)
		},
	}
	for _, o := range ops {
		if err := p.walk(o, w); err != nil {
			return nil, err
		}
	}
	return provision.SortedUnique(named), nil
}

// namedAt lists the store fields an operation at path names. A path that
// does not resolve names nothing (the operation is ignored or refused).
func (p *patcher) namedAt(doc map[string]any, op, path string, v any, has, ownsExternalID bool) []string {
	urn, rest := p.rt.splitURN(path)
	if urn == "" && strings.HasPrefix(strings.ToLower(path), "urn:") {
		return nil
	}
	parsed, err := parsePath(rest)
	if err != nil || parsed.AttributePath.URIPrefix != nil {
		return nil
	}
	sc, a := p.rt.lookup(urn, parsed.AttributePath.AttributeName)
	switch {
	case a == nil, a == attrID, a == attrMeta:
		return nil
	case a == attrExternalID:
		if ownsExternalID {
			return []string{provision.FieldExternalID}
		}
		return nil
	}
	sub := ""
	if parsed.AttributePath.SubAttribute != nil {
		sub = *parsed.AttributePath.SubAttribute
	} else if parsed.SubAttribute != nil {
		sub = *parsed.SubAttribute
	}
	clears := op == "remove" || v == nil
	switch {
	case a.slots != nil:
		container := doc
		if sc != nil && sc != p.rt.core {
			m, _ := get(doc, sc.id)
			container, _ = m.(map[string]any)
		}
		return namedMulti(a, container, parsed.ValueExpression, op, sub, v, has)
	case a.typ == "complex" && a.field != "":
		return []string{a.field}
	case a.typ == "complex":
		if sub != "" {
			if s := a.subAttr(sub); s != nil && s.field != "" {
				return []string{s.field}
			}
			return nil
		}
		var out []string
		obj, isObj := v.(map[string]any)
		for _, s := range a.sub {
			if s.field == "" {
				continue
			}
			if _, named := get(obj, s.name); clears || !isObj || named {
				out = append(out, s.field)
			}
		}
		return out
	case a.field != "":
		return []string{a.field}
	}
	return nil // active
}

// namedMulti lists the fields an operation on a typed multi-valued
// attribute (emails, phoneNumbers, addresses) names. With a value filter:
// the slots of the type it names (`type eq "work"`), else of the elements
// it selects. Without one: the slots of the elements in the value, and
// for a replace also those of the elements it replaces; a remove names
// every slot, or with a value list the slots of the elements it removes.
func namedMulti(a *attr, container map[string]any, f filter.Expression, op, sub string, v any, has bool) []string {
	raw, _ := get(container, a.name)
	cur, _ := raw.([]any)
	if f != nil {
		var types []string
		if t, ok := simpleTypeFilter(f); ok {
			types = []string{t}
		} else {
			curTypes := slotTypes(a, cur)
			for i, el := range cur {
				if m, ok := el.(map[string]any); ok {
					if hit, err := matches(a, f, m); hit && err == nil {
						types = append(types, curTypes[i])
					}
				}
			}
		}
		if sub != "" {
			return namedSubs(a, types, []string{sub})
		}
		if op == "remove" || v == nil {
			return slotFields(a, types, "")
		}
		obj, _ := v.(map[string]any)
		var keys []string
		for k := range obj {
			keys = append(keys, k)
		}
		return namedSubs(a, types, keys)
	}
	if sub != "" {
		return nil // refused: an element is named with a filter
	}
	if op == "remove" || v == nil {
		list, isList := v.([]any)
		if op != "remove" || !has || !isList {
			return slotFields(a, a.types, "")
		}
		// A removal by value list names the elements it removes.
		var types []string
		curTypes := slotTypes(a, cur)
		for i, el := range cur {
			if containsElement(list, el) {
				types = append(types, curTypes[i])
			}
		}
		return slotFields(a, types, "")
	}
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	if op == "replace" {
		// The value replaces the list: its elements are placed on their
		// own, and every element it replaces is cleared.
		return append(elementFields(a, list, slotTypes(a, list)), slotFields(a, slotTypes(a, cur), "")...)
	}
	// An add appends the elements the list does not hold yet, placed after
	// those it holds; an element it holds already names the slot it is in.
	merged, curTypes := slices.Clone(cur), slotTypes(a, cur)
	var out []string
	for _, el := range list {
		if i := slices.IndexFunc(merged, func(x any) bool { return containsElement([]any{x}, el) }); i >= 0 {
			if i < len(cur) {
				out = append(out, slotFields(a, curTypes[i:i+1], "")...)
			}
			continue
		}
		merged = append(merged, el)
	}
	return append(out, elementFields(a, merged[len(cur):], slotTypes(a, merged)[len(cur):])...)
}

// elementFields lists the fields that the sub-attributes of each element
// name in the slot given for it.
func elementFields(a *attr, list []any, types []string) []string {
	var out []string
	for i, item := range list {
		el, _ := item.(map[string]any)
		for k := range el {
			// An element's type picks its slot; it moves no value.
			if s := a.subAttr(k); s != nil && s.name != "type" {
				out = append(out, slotFields(a, types[i:i+1], s.name)...)
			}
		}
	}
	return out
}

// namedSubs lists the fields that the sub-attributes subs of elements of
// the given types name. Naming an element's type names every slot: the
// value moves from one to another.
func namedSubs(a *attr, types, subs []string) []string {
	var out []string
	for _, name := range subs {
		s := a.subAttr(name)
		switch {
		case s == nil:
		case s.name == "type":
			return slotFields(a, a.types, "")
		default:
			out = append(out, slotFields(a, types, s.name)...)
		}
	}
	return out
}

// slotFields lists the store fields of sub (every sub-attribute when "")
// in the slots of the given types.
func slotFields(a *attr, types []string, sub string) []string {
	var out []string
	for _, t := range types {
		for name, f := range a.slots[t] {
			if sub == "" || name == sub {
				out = append(out, f)
			}
		}
	}
	return out
}

// freeType is the slot an untyped element takes: the first type that no
// element before it took; "" when none is left.
func (a *attr) freeType(used map[string]bool) string {
	for _, c := range a.types {
		if !used[c] {
			return c
		}
	}
	return ""
}

// slotTypes says which slot each element of list is stored in, as the
// decoder places them: its type, or the first type no element before it
// took; "" when none.
func slotTypes(a *attr, list []any) []string {
	out := make([]string, len(list))
	used := map[string]bool{}
	for i, item := range list {
		el, _ := item.(map[string]any)
		tv, _ := get(el, "type")
		t, _ := tv.(string)
		t = slotType(t)
		if t == "" {
			t = a.freeType(used)
		}
		used[t], out[i] = true, t
	}
	return out
}
