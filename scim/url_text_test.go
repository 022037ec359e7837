package scim_test

import (
	"strings"
	"testing"

	"gatehouse/scim"
)

// TestURLTextRefused: a resource ID or a filter in the URL that is not
// UTF-8, or holds a NUL, is answered without reaching the store (whose
// database may refuse such text and fail the request): 404 for an ID no
// resource can have, 400 invalidFilter for a filter.
func TestURLTextRefused(t *testing.T) {
	e := newEnv(t, scim.Config{})
	for _, method := range []string{"GET", "PUT", "PATCH", "DELETE"} {
		for _, id := range []string{"%FF", "a%00b", "%C3"} {
			for _, res := range []string{"/Users/", "/Groups/"} {
				status, _, body := e.do(t, method, res+id, `{}`)
				if status != 404 {
					t.Errorf("%s %s%s: %d %s, want 404", method, res, id, status, body)
				}
			}
		}
	}
	for _, f := range []string{`id%20eq%20%22%FF%22`, `externalId%20eq%20%22a%00%22`, `userName%20sw%20%22%C3%22`} {
		status, _, body := e.do(t, "GET", "/Users?filter="+f, "")
		if status != 400 || !strings.Contains(body, "invalidFilter") {
			t.Errorf("filter %s: %d %s, want 400 invalidFilter", f, status, body)
		}
	}
}
