package scim

import "strings"

// URNGatehouseSPConfig carries gatehouse's own capability flags in the
// ServiceProviderConfig (RFC 7643 §5 allows extensions).
const URNGatehouseSPConfig = "urn:gatehouse:params:scim:schemas:extension:2.0:ServiceProviderConfig"

func (s *Server) spConfig() map[string]any {
	return map[string]any{
		"schemas": []string{URNSPConfig, URNGatehouseSPConfig},
		"patch":   map[string]any{"supported": true},
		// Keep maxOperations and maxPayloadSize even though bulk is off:
		// some clients treat their absence as "no PATCH, no filter".
		"bulk":           map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":         map[string]any{"supported": true, "maxResults": s.cfg.MaxResults},
		"changePassword": map[string]any{"supported": false},
		"sort":           map[string]any{"supported": true},
		"etag":           map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true,
			"description": "A bearer token from the gatehouse configuration, sent as Authorization: Bearer <token>.",
		}},
		URNGatehouseSPConfig: map[string]any{"groups": map[string]any{"supported": s.groupDir != nil}},
		"meta":               map[string]any{"resourceType": "ServiceProviderConfig", "location": s.base + "/ServiceProviderConfig"},
	}
}

func (s *Server) resourceTypes() []*resourceType {
	if s.groups != nil {
		return []*resourceType{s.users, s.groups}
	}
	return []*resourceType{s.users}
}

func (s *Server) resourceTypeDoc(rt *resourceType) map[string]any {
	ext := []any{}
	for _, e := range rt.ext {
		ext = append(ext, map[string]any{"schema": e.id, "required": false})
	}
	return map[string]any{
		"schemas": []string{URNResType}, "id": rt.name, "name": rt.name, "endpoint": rt.endpoint,
		"description": rt.name + "s", "schema": rt.core.id, "schemaExtensions": ext,
		"meta": map[string]any{"resourceType": "ResourceType", "location": s.base + "/ResourceTypes/" + rt.name},
	}
}

func (s *Server) serveResourceTypes(w *statusWriter, name string) error {
	var out []any
	for _, rt := range s.resourceTypes() {
		if name == "" || rt.name == name {
			out = append(out, s.resourceTypeDoc(rt))
		}
	}
	if name == "" {
		return s.writeJSON(w, 200, listResponse(out, len(out), 1))
	}
	if len(out) == 0 {
		return &Error{Status: 404, Detail: "no such resource type"}
	}
	return s.writeJSON(w, 200, out[0])
}

func (s *Server) serveSchemas(w *statusWriter, id string) error {
	var out []any
	for _, rt := range s.resourceTypes() {
		for _, sc := range rt.schemas() {
			if id == "" || strings.EqualFold(sc.id, id) {
				out = append(out, s.schemaDoc(sc))
			}
		}
	}
	if id == "" {
		return s.writeJSON(w, 200, listResponse(out, len(out), 1))
	}
	if len(out) == 0 {
		return &Error{Status: 404, Detail: "no such schema"}
	}
	return s.writeJSON(w, 200, out[0])
}

func (s *Server) schemaDoc(sc *schema) map[string]any {
	attrs := make([]any, 0, len(sc.attrs))
	for _, a := range sc.attrs {
		attrs = append(attrs, attrDoc(a))
	}
	return map[string]any{"schemas": []string{URNSchema}, "id": sc.id, "name": sc.name, "description": sc.desc,
		"attributes": attrs, "meta": map[string]any{"resourceType": "Schema", "location": s.base + "/Schemas/" + sc.id}}
}

// attrDoc renders an attribute definition (RFC 7643 §7) with every
// characteristic spelled out and no nulls, as Entra ID expects.
func attrDoc(a *attr) map[string]any {
	or := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	m := map[string]any{
		"name": a.name, "type": a.typ, "multiValued": a.multi, "description": a.name, "required": a.required,
		"caseExact": a.caseExact, "mutability": or(a.mutability, "readWrite"), "returned": or(a.returned, "default"),
		"uniqueness": or(a.uniqueness, "none"),
	}
	if len(a.canonical) > 0 {
		m["canonicalValues"] = a.canonical
	}
	if len(a.refTypes) > 0 {
		m["referenceTypes"] = a.refTypes
	}
	if a.slots != nil {
		m["description"] = a.name + " of the types " + strings.Join(a.types, ", ")
	}
	if len(a.sub) > 0 {
		subs := make([]any, 0, len(a.sub))
		for _, s := range a.sub {
			subs = append(subs, attrDoc(s))
		}
		m["subAttributes"] = subs
	}
	return m
}
