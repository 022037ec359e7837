package scim

import (
	"slices"
	"strings"

	"gatehouse/provision"
)

// Schema URNs (RFC 7643 §8.7, RFC 7644 §3).
const (
	URNUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	URNGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	URNEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	URNSPConfig   = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	URNResType    = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	URNSchema     = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	URNList       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	URNSearch     = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	URNPatch      = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	URNError      = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// attr describes one attribute for /Schemas, name resolution, PATCH and
// projection. The zero values mean: singular, optional, case-insensitive,
// readWrite, returned by default, no uniqueness.
type attr struct {
	name       string
	typ        string // string, boolean, dateTime, reference, complex
	multi      bool
	required   bool
	caseExact  bool
	mutability string
	returned   string
	uniqueness string
	sub        []*attr
	canonical  []string
	refTypes   []string
	// field is the store field of a simple singular attribute, or of the
	// "value" of a singular complex one (manager).
	field string
	// slots maps, for a multi-valued attribute, a type value to the store
	// field of each sub-attribute: slots["work"]["value"] = "email".
	slots map[string]map[string]string
	// types lists the slot types in output order.
	types []string
}

func (a *attr) subAttr(name string) *attr {
	for _, s := range a.sub {
		if strings.EqualFold(s.name, name) {
			return s
		}
	}
	return nil
}

// schema is one resource schema or extension.
type schema struct {
	id, name, desc string
	attrs          []*attr
}

func (s *schema) attr(name string) *attr {
	for _, a := range s.attrs {
		if strings.EqualFold(a.name, name) {
			return a
		}
	}
	return nil
}

func str(name, field string) *attr { return &attr{name: name, typ: "string", field: field} }

// userSchema returns the core User schema holding only what the store can
// keep.
func userSchema(supports func(string) bool) *schema {
	name := &attr{name: "name", typ: "complex", sub: []*attr{
		str("formatted", "name_formatted"), str("familyName", provision.FieldFamilyName), str("givenName", provision.FieldGivenName),
		str("middleName", "middle_name"), str("honorificPrefix", "honorific_prefix"), str("honorificSuffix", "honorific_suffix"),
	}}
	emails := multi("emails", []string{"value", "display"}, map[string]map[string]string{
		"work": {"value": provision.FieldEmail}, "home": {"value": "email_home"}, "other": {"value": "email_other"},
	}, []string{"work", "home", "other"})
	phones := multi("phoneNumbers", []string{"value", "display"}, map[string]map[string]string{
		"work": {"value": "phone_work"}, "mobile": {"value": "phone_mobile"}, "home": {"value": "phone_home"},
		"fax": {"value": "phone_fax"}, "other": {"value": "phone_other"},
	}, []string{"work", "mobile", "home", "fax", "other"})
	addresses := multi("addresses", []string{"formatted", "streetAddress", "locality", "region", "postalCode", "country"},
		map[string]map[string]string{"work": {
			"formatted": "address_formatted", "streetAddress": "address_street", "locality": "address_locality",
			"region": "address_region", "postalCode": "address_postal_code", "country": "address_country",
		}}, []string{"work"})
	userName := str("userName", provision.FieldUserName)
	userName.required, userName.uniqueness = true, "server"
	s := &schema{id: URNUser, name: "User", desc: "User Account", attrs: []*attr{
		userName, name, str("displayName", provision.FieldDisplayName), str("nickName", "nick_name"),
		{name: "profileUrl", typ: "reference", refTypes: []string{"external"}, field: "profile_url"},
		str("title", "title"), str("userType", "user_type"), str("preferredLanguage", "preferred_language"),
		str("locale", "locale"), str("timezone", "timezone"),
		{name: "active", typ: "boolean"},
		emails, phones, addresses,
	}}
	return s.keep(supports)
}

func multi(name string, subs []string, slots map[string]map[string]string, types []string) *attr {
	a := &attr{name: name, typ: "complex", multi: true, slots: slots, types: types}
	for _, s := range subs {
		a.sub = append(a.sub, str(s, ""))
	}
	a.sub = append(a.sub, &attr{name: "type", typ: "string", canonical: types}, &attr{name: "primary", typ: "boolean"})
	return a
}

func enterpriseSchema(supports func(string) bool) *schema {
	manager := &attr{name: "manager", typ: "complex", field: "manager_id", sub: []*attr{
		{name: "value", typ: "string"},
		{name: "$ref", typ: "reference", refTypes: []string{"User"}},
		{name: "displayName", typ: "string", mutability: "readOnly"},
	}}
	s := &schema{id: URNEnterprise, name: "EnterpriseUser", desc: "Enterprise User", attrs: []*attr{
		str("employeeNumber", "employee_number"), str("costCenter", "cost_center"), str("organization", "organization"),
		str("division", "division"), str("department", "department"), manager,
	}}
	return s.keep(supports)
}

// customSchema is the extension schema declared in the config: each
// attribute is a string stored in the named field.
func customSchema(ext Extension, supports func(string) bool) *schema {
	s := &schema{id: ext.URN, name: ext.Name, desc: "Attributes declared by the operator"}
	names := make([]string, 0, len(ext.Attributes))
	for n := range ext.Attributes {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		s.attrs = append(s.attrs, str(n, ext.Attributes[n]))
	}
	return s.keep(supports)
}

// keep drops the attributes whose store field the store cannot hold.
func (s *schema) keep(supports func(string) bool) *schema {
	var out []*attr
	for _, a := range s.attrs {
		switch {
		case a.slots != nil:
			for t, subs := range a.slots {
				for sub, f := range subs {
					if !supports(f) {
						delete(subs, sub)
					}
				}
				if len(subs) == 0 {
					delete(a.slots, t)
					a.types = slices.DeleteFunc(a.types, func(x string) bool { return x == t })
				}
			}
			if len(a.slots) > 0 {
				out = append(out, a)
			}
		case a.typ == "complex" && a.field == "":
			a.sub = slices.DeleteFunc(a.sub, func(s *attr) bool { return !supports(s.field) })
			if len(a.sub) > 0 {
				out = append(out, a)
			}
		case a.field == "" || supports(a.field):
			out = append(out, a)
		}
	}
	s.attrs = out
	return s
}

// fields lists every store field the schema writes.
func (s *schema) fields() []string {
	var out []string
	for _, a := range s.attrs {
		switch {
		case a.slots != nil:
			for _, subs := range a.slots {
				for _, f := range subs {
					out = append(out, f)
				}
			}
		case a.field != "":
			out = append(out, a.field)
		default:
			for _, s := range a.sub {
				if s.field != "" {
					out = append(out, s.field)
				}
			}
		}
	}
	return out
}

func groupSchema() *schema {
	display := str("displayName", provision.FieldName)
	display.required = true
	return &schema{id: URNGroup, name: "Group", desc: "Group", attrs: []*attr{
		display,
		// A member is named by its user ID, which is case-sensitive: a
		// PATCH filter compares it exactly, as a list filter does.
		{name: "members", typ: "complex", multi: true, sub: []*attr{
			{name: "value", typ: "string", caseExact: true, mutability: "immutable"},
			{name: "$ref", typ: "reference", caseExact: true, refTypes: []string{"User"}, mutability: "immutable"},
			{name: "display", typ: "string", mutability: "readOnly"},
			{name: "type", typ: "string", canonical: []string{"User"}, mutability: "immutable"},
		}},
	}}
}

// common attributes every resource has (RFC 7643 §3.1).
var (
	attrID         = &attr{name: "id", typ: "string", caseExact: true, mutability: "readOnly", returned: "always", uniqueness: "server"}
	attrExternalID = &attr{name: "externalId", typ: "string", caseExact: true, field: provision.FieldExternalID}
	attrMeta       = &attr{name: "meta", typ: "complex", mutability: "readOnly", sub: []*attr{
		{name: "resourceType", typ: "string", caseExact: true, mutability: "readOnly"},
		{name: "created", typ: "dateTime", mutability: "readOnly"},
		{name: "lastModified", typ: "dateTime", mutability: "readOnly"},
		{name: "location", typ: "reference", mutability: "readOnly"},
		{name: "version", typ: "string", caseExact: true, mutability: "readOnly"},
	}}
)

// resourceType is a resource's schemas: the core one first, then the
// extensions.
type resourceType struct {
	name, endpoint string
	core           *schema
	ext            []*schema
	hasExternalID  bool
}

func (rt *resourceType) schemas() []*schema { return append([]*schema{rt.core}, rt.ext...) }

// extension returns the extension schema with this URN.
func (rt *resourceType) extension(urn string) *schema {
	for _, s := range rt.ext {
		if strings.EqualFold(s.id, urn) {
			return s
		}
	}
	return nil
}

// lookup resolves an attribute name with an optional schema URN. An
// unqualified name is looked up in the core schema, the common attributes
// and then the extensions (the first that has it).
func (rt *resourceType) lookup(urn, name string) (*schema, *attr) {
	if urn != "" {
		if strings.EqualFold(urn, rt.core.id) {
			return rt.core, rt.core.attr(name)
		}
		s := rt.extension(urn)
		if s == nil {
			return nil, nil
		}
		return s, s.attr(name)
	}
	switch {
	case strings.EqualFold(name, "id"):
		return rt.core, attrID
	case strings.EqualFold(name, "externalId") && rt.hasExternalID:
		return rt.core, attrExternalID
	case strings.EqualFold(name, "meta"):
		return rt.core, attrMeta
	}
	if a := rt.core.attr(name); a != nil {
		return rt.core, a
	}
	for _, s := range rt.ext {
		if a := s.attr(name); a != nil {
			return s, a
		}
	}
	return nil, nil
}

// splitURN splits "urn:...:User:name.givenName" into the URN and the rest
// when the text starts with a known schema URN of rt.
func (rt *resourceType) splitURN(path string) (urn, rest string) {
	for _, s := range rt.schemas() {
		if len(path) > len(s.id) && strings.EqualFold(path[:len(s.id)], s.id) && (path[len(s.id)] == ':' || path[len(s.id)] == '.') {
			return s.id, path[len(s.id)+1:]
		}
	}
	return "", path
}
