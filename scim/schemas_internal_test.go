package scim

import "testing"

// TestSchemasEnterpriseUnkept: the enterprise URN is a standard one, so a
// strict body may list it, and carry its object, whether or not the store
// keeps any of its attributes (they are ignored, as password is).
func TestSchemasEnterpriseUnkept(t *testing.T) {
	rt := narrowUsers()
	body := map[string]any{"schemas": []any{URNUser, URNEnterprise}, "userName": "a",
		URNEnterprise: map[string]any{"department": "Ops"}}
	if err := rt.checkResource(body, false); err != nil {
		t.Errorf("schemas listing the enterprise URN on a store without it: %v", err)
	}
}
