package scim

import "strings"

// RFC 7643 defines attributes this store may not keep (schema.keep drops
// those it has no field for, and password is never kept). Their names tell
// such an attribute, which is ignored, from a typo, which is refused.

// rfcAttrs lists, per schema URN, every attribute RFC 7643 defines (§4.1,
// §4.2, §4.3, §8.7) with its sub-attributes, in lower case. A store keeps
// only some of them (schema.keep); a name listed here that the store does
// not keep is known and ignored, a name listed nowhere is a typo.
var rfcAttrs = map[string]map[string][]string{
	strings.ToLower(URNUser): {
		"username":          nil,
		"name":              {"formatted", "familyname", "givenname", "middlename", "honorificprefix", "honorificsuffix"},
		"displayname":       nil,
		"nickname":          nil,
		"profileurl":        nil,
		"title":             nil,
		"usertype":          nil,
		"preferredlanguage": nil,
		"locale":            nil,
		"timezone":          nil,
		"active":            nil,
		"password":          nil,
		"emails":            multiSubs,
		"phonenumbers":      multiSubs,
		"ims":               multiSubs,
		"photos":            multiSubs,
		"addresses":         {"formatted", "streetaddress", "locality", "region", "postalcode", "country", "type", "primary"},
		"groups":            {"value", "$ref", "display", "type"},
		"entitlements":      multiSubs,
		"roles":             multiSubs,
		"x509certificates":  multiSubs,
	},
	strings.ToLower(URNEnterprise): {
		"employeenumber": nil,
		"costcenter":     nil,
		"organization":   nil,
		"division":       nil,
		"department":     nil,
		"manager":        {"value", "$ref", "displayname"},
	},
	strings.ToLower(URNGroup): {
		"displayname": nil,
		"members":     {"value", "$ref", "display", "type"},
	},
}

// multiSubs are the sub-attributes of RFC 7643's plain multi-valued
// attributes (§2.4).
var multiSubs = []string{"value", "display", "type", "primary"}

// rfcCommon are the common attributes of every resource (§3.1).
var rfcCommon = map[string][]string{
	"id":         nil,
	"externalid": nil,
	"schemas":    nil,
	"meta":       {"resourcetype", "created", "lastmodified", "location", "version"},
}

// rfcReadOnlyAttrs lists the attributes RFC 7643 defines as readOnly that a
// store may not keep, per schema URN, in lower case: a user's groups
// (§4.1.2) are the service provider's to say, never a client's to write.
var rfcReadOnlyAttrs = map[string][]string{
	strings.ToLower(URNUser): {"groups"},
}

// rfcReadOnly reports whether RFC 7643 defines the attribute name under
// the schema urn ("" for an unqualified name) as readOnly.
func (rt *resourceType) rfcReadOnly(urn, name string) bool {
	if urn != "" && !strings.EqualFold(urn, rt.core.id) {
		return false
	}
	for _, n := range rfcReadOnlyAttrs[strings.ToLower(rt.core.id)] {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// rfcSchemas are the standard schema URNs of rt, whether or not this
// store keeps any of their attributes: its core schema, and for users the
// enterprise extension.
func (rt *resourceType) rfcSchemas() []string {
	out := []string{rt.core.id}
	if rt.core.id == URNUser {
		out = append(out, URNEnterprise)
	}
	return out
}

// rfcDefined reports whether RFC 7643 defines the attribute name (and
// sub-attribute sub, when not empty) under the schema urn ("" for an
// unqualified name: the common attributes, the core schema and, for
// users, the enterprise extension).
func (rt *resourceType) rfcDefined(urn, name, sub string) bool {
	name, sub = strings.ToLower(name), strings.ToLower(sub)
	has := func(attrs map[string][]string) bool {
		subs, ok := attrs[name]
		if !ok {
			return false
		}
		if sub == "" {
			return true
		}
		for _, s := range subs {
			if s == sub {
				return true
			}
		}
		return false
	}
	if urn == "" || strings.EqualFold(urn, rt.core.id) {
		if has(rfcCommon) {
			return true
		}
	}
	for _, id := range rt.rfcSchemas() {
		if (urn == "" || strings.EqualFold(urn, id)) && has(rfcAttrs[strings.ToLower(id)]) {
			return true
		}
	}
	return false
}

// standardURN returns the standard schema URN of rt that path starts
// with, followed by ':' or '.', and the rest of path; "" when none does.
// It finds the URN of a standard schema that this store keeps nothing of
// (the enterprise extension on a store without those fields), which
// splitURN does not know.
func (rt *resourceType) standardURN(path string) (urn, rest string) {
	for _, id := range rt.rfcSchemas() {
		if len(path) > len(id) && strings.EqualFold(path[:len(id)], id) && (path[len(id)] == ':' || path[len(id)] == '.') {
			return id, path[len(id)+1:]
		}
	}
	return "", path
}
