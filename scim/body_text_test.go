package scim_test

import (
	"errors"
	"strings"
	"testing"

	"gatehouse/scim"
)

// TestBodyTextRefused (F5): a body that is not UTF-8, or holds the \u
// escape of a lone UTF-16 surrogate, is refused with 400 invalidSyntax
// (encoding/json would store U+FFFD in its place); a surrogate pair and
// a literal U+FFFD are text, and are taken.
func TestBodyTextRefused(t *testing.T) {
	modes(t, func(t *testing.T, quirks bool) {
		e := newEnv(t, scim.Config{Quirks: &quirks})
		for _, tc := range []struct {
			name, body string
			status     int
			display    string
		}{
			{"BadByteInValue", user("utf8-a", "\"displayName\":\"zy\xe9q\""), 400, ""},
			{"BadByteInKey", user("utf8-b", "\"display\xe9Name\":\"x\""), 400, ""},
			{"TruncatedSequence", user("utf8-c", "\"displayName\":\"a\xe2\x82\""), 400, ""},
			{"LoneHigh", user("utf8-d", `"displayName":"a\ud800b"`), 400, ""},
			{"LoneHighAtEnd", user("utf8-e", `"displayName":"a\uD800"`), 400, ""},
			{"LoneLow", user("utf8-f", `"displayName":"a\udc00b"`), 400, ""},
			{"Reversed", user("utf8-g", `"displayName":"\ude00\ud83d"`), 400, ""},
			{"HighThenOther", user("utf8-h", `"displayName":"\ud83d\u0041"`), 400, ""},
			{"LoneInKey", user("utf8-i", `"x\ud800":"x"`), 400, ""},
			{"EscapedBackslashThenU", user("utf8-j", `"displayName":"a\\ud800"`), 201, `a\ud800`},
			{"Pair", user("utf8-k", `"displayName":"\ud83d\ude00"`), 201, "😀"},
			{"ReplacementCharacter", user("utf8-l", `"displayName":"a`+"\uFFFD"+`b"`), 201, "a\uFFFDb"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, _, body := e.do(t, "POST", "/Users", tc.body)
				if status != tc.status {
					t.Fatalf("status %d, want %d: %s", status, tc.status, body)
				}
				if status == 400 {
					if got := scimType(t, body); got != "invalidSyntax" {
						t.Errorf("scimType %q, want invalidSyntax: %s", got, body)
					}
					if strings.ContainsRune(body, '\uFFFD') || strings.Contains(body, "\xe9") {
						t.Errorf("the error echoes the bad text: %s", body)
					}
					return
				}
				want(t, decode(t, body), "displayName", tc.display)
			})
		}
		// A PATCH body is read by the same check.
		id := e.createUser(t, user("utf8-patch"))
		status, _, body := e.do(t, "PATCH", "/Users/"+id, patchBody(`[{"op":"replace","path":"displayName","value":"\udfff"}]`))
		if status != 400 || scimType(t, body) != "invalidSyntax" {
			t.Errorf("PATCH with a lone surrogate: %d %s", status, body)
		}
	})
}

// TestImportTextRefused (F5): gatehouse import reads a resource with the
// same check.
func TestImportTextRefused(t *testing.T) {
	e := newEnv(t, scim.Config{})
	for _, body := range []string{user("imp-a", "\"displayName\":\"zy\xe9q\""), user("imp-b", `"displayName":"\ud800"`)} {
		_, err := e.srv.DecodeUser([]byte(body))
		var se *scim.Error
		if !errors.As(err, &se) || se.Status != 400 || se.Type != "invalidSyntax" {
			t.Errorf("DecodeUser(%q) err = %v, want 400 invalidSyntax", body, err)
		}
	}
	if _, err := e.srv.DecodeUser([]byte(user("imp-c", `"displayName":"\ud83d\ude00"`))); err != nil {
		t.Errorf("DecodeUser of a surrogate pair: %v", err)
	}
}
