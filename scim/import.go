package scim

import (
	"errors"
	"fmt"
	"strings"

	"gatehouse/provision"
)

// The entry points of a bulk import (gatehouse import). They take the raw
// JSON of one User resource and read it as a request body is read (size
// bound, JSON checks, schemas, extensions, canonical forms, quirks), so
// that a file and a SCIM client can never be read differently. Errors are
// *Error, worded as the request would have been answered.

// DecodeUser reads one User resource as a POST to /Users reads its body,
// with SCIMFields set to the fields it sets.
func (s *Server) DecodeUser(body []byte) (provision.User, error) {
	doc, err := s.importDoc(body)
	if err != nil {
		return provision.User{}, err
	}
	u, err := s.dec().user(s.users, doc, provision.User{Active: true})
	if err != nil {
		return provision.User{}, err
	}
	u.SCIMFields = withSCIMFields(nil, s.createdFields(u))
	return u, nil
}

// DecodeReplacement reads one User resource over the stored user cur as a
// PUT to /Users/{cur.ID} reads its body: fields its schemas own are
// replaced (absent ones cleared), fields no schema names and an absent
// active are kept, and SCIMFields gains the fields the body writes or
// clears. Version stays cur's, so that the store can refuse the write if
// cur has changed since it was read.
func (s *Server) DecodeReplacement(body []byte, cur provision.User) (provision.User, error) {
	doc, err := s.importDoc(body)
	if err != nil {
		return provision.User{}, err
	}
	u, err := s.dec().user(s.users, doc, cur)
	if err != nil {
		return provision.User{}, err
	}
	u.ID, u.Version, u.Groups = cur.ID, cur.Version, nil
	u.SCIMFields = withSCIMFields(cur.SCIMFields, s.replacedFields(cur, u))
	return u, nil
}

// MaxBodyBytes is scim.max_body_bytes: an import refuses a resource
// larger than this, as a POST refuses such a body, and reads no more of
// it than that.
func (s *Server) MaxBodyBytes() int64 { return s.cfg.MaxBodyBytes }

// importDoc reads a resource as readResource reads a POST or PUT body:
// the body bound, the JSON checks of decodeJSON, then the schemas check
// in the server's mode. A file goes through the same door as a request.
func (s *Server) importDoc(body []byte) (map[string]any, error) {
	if int64(len(body)) > s.cfg.MaxBodyBytes {
		return nil, &Error{Status: 413, Detail: fmt.Sprintf("the resource is larger than %d bytes (scim.max_body_bytes)", s.cfg.MaxBodyBytes)}
	}
	doc, err := decodeJSON(body)
	if err != nil {
		return nil, err
	}
	if err := s.users.checkResource(doc, s.cfg.quirks()); err != nil {
		return nil, err
	}
	return doc, nil
}

// Column is the canonical form of one attribute path that a CSV header of
// an import names: where in a User resource its cells go.
type Column struct {
	URN   string // the extension schema's URN; "" for the core schema and the common attributes
	Attr  string // the attribute, as the schema spells it
	Sub   string // the sub-attribute, as the schema spells it; "" for the whole attribute
	Type  string // the slot type a [type eq "..."] filter names, folded as SCIM folds types
	Typed bool   // the path has a [type eq "..."] filter
	Multi bool   // the attribute is multi-valued
}

// UserColumn resolves an attribute path of a CSV header, as a PATCH path
// resolves (an unqualified name may be an extension's). A header states
// the schema of every row, so a path that would be dropped or refused in
// every row is an error here, where a POST body would have it ignored:
// a name the server does not declare (a typo), an attribute the store
// does not keep, a read-only one, schemas itself (the import writes it),
// a complex attribute without a sub-attribute, a type no slot keeps.
func (s *Server) UserColumn(urn, name, typ string, typed bool, sub string) (Column, error) {
	rt := s.users
	if urn == "" && strings.EqualFold(name, "schemas") {
		return Column{}, errors.New("schemas is not a column: the import lists the core schema and the extensions the header names")
	}
	if urn != "" && !rt.declares(urn) {
		return Column{}, fmt.Errorf("this server declares no schema %s for users", quoteKey(urn))
	}
	sc, a := rt.lookup(urn, name)
	if a == nil {
		switch {
		case rt.rfcReadOnly(urn, name):
			return Column{}, fmt.Errorf("%s is read-only", quoteKey(name))
		case rt.rfcDefined(urn, name, ""):
			return Column{}, fmt.Errorf("%s is not kept by this server's store", quoteKey(name))
		}
		return Column{}, fmt.Errorf("this server declares no user attribute %s (see /Schemas)", quoteKey(name))
	}
	if a.mutability == "readOnly" {
		return Column{}, fmt.Errorf("%s is read-only", a.name)
	}
	col := Column{Attr: a.name, Multi: a.multi}
	if sc != rt.core {
		col.URN = sc.id
	}
	var sa *attr
	if sub != "" {
		if a.typ != "complex" {
			return Column{}, fmt.Errorf("%s has no sub-attributes", a.name)
		}
		if sa = a.subAttr(sub); sa == nil {
			return Column{}, fmt.Errorf("%s has no sub-attribute %s", a.name, quoteKey(sub))
		}
		if sa.mutability == "readOnly" {
			return Column{}, fmt.Errorf("%s.%s is read-only", a.name, sa.name)
		}
		col.Sub = sa.name
	}
	switch {
	case typed:
		if a.slots == nil {
			return Column{}, fmt.Errorf("%s is not multi-valued: it takes no [type eq \"...\"] filter", a.name)
		}
		t := slotType(typ)
		subs, ok := a.slots[t]
		if !ok {
			return Column{}, fmt.Errorf("%s of type %s cannot be stored; types: %s", a.name, quoteKey(typ), strings.Join(a.types, ", "))
		}
		if _, ok := subs[col.Sub]; !ok {
			return Column{}, fmt.Errorf("%s of type %s keeps no %s in this server's store", a.name, quoteKey(typ), col.Sub)
		}
		col.Type, col.Typed = t, true
	case a.slots != nil && sub == "":
		return Column{}, fmt.Errorf("%s is multi-valued: name a sub-attribute, by type (%s[type eq %q].value) or not (%s.value)", a.name, a.name, a.types[0], a.name)
	case a.slots != nil:
		if !strings.EqualFold(col.Sub, "type") && !slotsKeep(a, col.Sub) {
			return Column{}, fmt.Errorf("%s.%s is not kept by this server's store", a.name, col.Sub)
		}
	case a.typ == "complex" && a.field == "" && sub == "":
		return Column{}, fmt.Errorf("%s is complex: name a sub-attribute (%s.%s)", a.name, a.name, a.sub[0].name)
	}
	return col, nil
}

// slotsKeep reports whether some slot of a multi-valued attribute keeps
// the sub-attribute.
func slotsKeep(a *attr, sub string) bool {
	for _, subs := range a.slots {
		if _, ok := subs[sub]; ok {
			return true
		}
	}
	return false
}
