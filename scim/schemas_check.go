package scim

import "strings"

// The schemas attribute of a request body (RFC 7643 §3, RFC 7644 §3.3,
// §3.4.3, §3.5.2) says what the body is; it is checked in one place for
// every body: checkResource for a create or replace, checkMessage for a
// PatchOp or SearchRequest.

// declares reports whether the server declares the schema urn for rt:
// one of its schemas, or a standard one whose attributes this store does
// not keep (they are ignored, as password is).
func (rt *resourceType) declares(urn string) bool {
	for _, sc := range rt.schemas() {
		if strings.EqualFold(sc.id, urn) {
			return true
		}
	}
	for _, id := range rt.rfcSchemas() {
		if strings.EqualFold(id, urn) {
			return true
		}
	}
	return false
}

// schemaList reads the schemas attribute of a request body: present
// reports whether the body has one; a present one must be an array of
// strings.
func schemaList(body map[string]any) (list []string, present bool, err error) {
	v, ok := get(body, "schemas")
	if !ok {
		return nil, false, nil
	}
	raw, ok := v.([]any)
	if !ok {
		return nil, true, badValue("schemas must be an array of schema URNs")
	}
	for _, x := range raw {
		s, ok := x.(string)
		if !ok {
			return nil, true, badValue("schemas must be an array of schema URNs")
		}
		list = append(list, s)
	}
	return list, true, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// checkResource checks the schemas of a resource body (POST and PUT of
// users and groups, RFC 7643 §3). Strict mode requires the attribute; it
// must list the core URN and only URNs the server declares, and every
// extension object the body carries must be listed. Quirks mode takes a
// body without schemas (clients written against earlier versions of this
// server send none); one that is given must still be an array holding the
// core URN, as Okta and Entra ID always send. Quirks mode ignores URNs
// it does not declare and extension objects that schemas does not list:
// Entra ID lists and sends the custom extensions an admin mapped in the
// Entra portal, which this server may not have, and their attributes are
// ignored as unknown attributes of a create or replace are.
func (rt *resourceType) checkResource(body map[string]any, quirks bool) error {
	// The rule of a message, with the core URN; strict mode adds the rest.
	if err := checkMessage(body, rt.core.id, quirks); err != nil || quirks {
		return err
	}
	list, _, _ := schemaList(body)
	for _, urn := range list {
		if !rt.declares(urn) {
			return badValue("schemas lists %s, which this server does not declare for %s resources", quoteKey(urn), rt.name)
		}
	}
	for k := range body {
		if strings.HasPrefix(strings.ToLower(k), "urn:") && !containsFold(list, k) {
			if urn, _ := rt.splitURN(k); urn != "" && containsFold(list, urn) {
				// A listed URN with a path after it: the flattened
				// form, which a resource body does not take.
				return badValue("the body holds %s: give an extension attribute inside the object keyed by its schema URN, a core attribute at the top level", quoteKey(k))
			}
			return badValue("the body holds %s, which schemas does not list", quoteKey(k))
		}
	}
	return nil
}

// checkMessage checks the schemas of a request message (PatchOp,
// SearchRequest): it must list urn. Quirks mode takes a message without
// schemas, as checkResource does; both named clients always send it.
func checkMessage(body map[string]any, urn string, quirks bool) error {
	list, present, err := schemaList(body)
	switch {
	case err != nil:
		return err
	case !present && quirks:
		return nil
	case !present:
		return badValue("schemas is required and must list %s", urn)
	case !containsFold(list, urn):
		return badValue("schemas must list %s", urn)
	}
	return nil
}
