package scim_test

import (
	"testing"

	"gatehouse/scim"
)

// TestRemoveElementsChecked (F8): the elements of a member removal's
// value array are checked as an add's are: a plain ID string, a number,
// an element without a value or with a key no schema defines is 400, as
// it is on add, and removes nothing; it was 204, removing nothing or
// skipping the junk.
func TestRemoveElementsChecked(t *testing.T) {
	modes(t, func(t *testing.T, quirks bool) {
		e := newEnv(t, scim.Config{Quirks: &quirks})
		a := e.createUser(t, user("rm-a"))
		b := e.createUser(t, user("rm-b"))
		status, _, body := e.do(t, "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"RM","members":[{"value":"`+a+`"},{"value":"`+b+`"}]}`)
		if status != 201 {
			t.Fatalf("create group: %d %s", status, body)
		}
		gid := decode(t, body)["id"].(string)
		for _, tc := range []struct{ name, els, scimType string }{
			{"IDStrings", `["` + a + `"]`, "invalidValue"},
			{"Junk", `[{"value":"` + a + `"},5,{"display":"x"}]`, "invalidValue"},
			{"NoValue", `[{"display":"rm-a"}]`, "invalidValue"},
			{"TypoKey", `[{"value":"` + a + `","bogus":1}]`, "invalidPath"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, op := range []string{"add", "remove"} {
					status, _, body := e.do(t, "PATCH", "/Groups/"+gid, patchBody(`[{"op":"`+op+`","path":"members","value":`+tc.els+`}]`))
					if status != 400 || scimType(t, body) != tc.scimType {
						t.Errorf("%s: status %d, want 400 %s: %s", op, status, tc.scimType, body)
					}
				}
				_, _, body := e.do(t, "GET", "/Groups/"+gid, "")
				if ms, _ := decode(t, body)["members"].([]any); len(ms) != 2 {
					t.Errorf("a refused PATCH changed the members: %s", body)
				}
			})
		}
	})
}
