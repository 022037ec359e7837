package scim_test

import (
	"fmt"
	"net/http"
	"testing"

	"gatehouse/scim"
)

func group(name string) string {
	return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":%q}`, name)
}

// TestPaddedAndInvisibleNamesRefused: over SCIM, a userName, a group's
// displayName or any other string with leading or trailing white space or
// an invisible character is refused with 400 invalidValue, on POST, PUT
// and PATCH alike; nothing is created.
func TestPaddedAndInvisibleNamesRefused(t *testing.T) {
	e := newEnv(t, scim.Config{})
	id := e.createUser(t, user("bob"))
	_, _, gbody := e.do(t, "POST", "/Groups", group("admins"))
	gid, _ := decode(t, gbody)["id"].(string)
	for _, tc := range []struct{ name, method, path, body string }{
		{"trailing space", "POST", "/Users", user("bob ")},
		{"leading NBSP", "POST", "/Users", user("\u00a0bob")},
		{"leading ideographic space", "POST", "/Users", user("\u3000carol")},
		{"trailing line separator", "POST", "/Users", user("carol\u2028")},
		{"zero width space", "POST", "/Users", user("alice\u200b")},
		{"right-to-left override", "POST", "/Users", user("\u202eecila")},
		{"soft hyphen", "POST", "/Users", user("al\u00adice")},
		{"private use", "POST", "/Users", user("alice\ue000")},
		{"Cyrillic look-alike", "POST", "/Users", user("\u0430lice")},
		{"group Cyrillic look-alike", "POST", "/Groups", group("\u0430dmins")},
		{"Latin click letter", "POST", "/Users", user("a\u01c0ice")},
		{"Latin alpha", "POST", "/Users", user("\u0251lice")},
		{"small capitals", "POST", "/Users", user("\u1d00lice")},
		{"group Latin click letter", "POST", "/Groups", group("\u01c0nternal")},
		{"group Latin alpha", "POST", "/Groups", group("\u0251dmins")},
		{"padded display name", "POST", "/Users", user("dave", `"displayName":"Dave "`)},
		{"invisible in email", "POST", "/Users", user("erin", `"emails":[{"value":"erin@exa\u200dmple.test","type":"work"}]`)},
		{"PUT padded", "PUT", "/Users/" + id, user(" bob")},
		{"PATCH padded", "PATCH", "/Users/" + id, `{"Operations":[{"op":"replace","path":"userName","value":"bob\u00a0"}]}`},
		{"PATCH invisible display name", "PATCH", "/Users/" + id, `{"Operations":[{"op":"replace","path":"displayName","value":"B\u200bob"}]}`},
		{"group padded", "POST", "/Groups", group(" admins")},
		{"group NBSP", "POST", "/Groups", group("admins\u00a0")},
		{"group zero width joiner", "POST", "/Groups", group("ad\u200dmins")},
		{"group PATCH padded", "PATCH", "/Groups/" + gid, `{"Operations":[{"op":"replace","path":"displayName","value":"admins "}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := e.do(t, tc.method, tc.path, tc.body)
			if status != http.StatusBadRequest || decode(t, body)["scimType"] != "invalidValue" {
				t.Errorf("%s %s: %d %s, want 400 invalidValue", tc.method, tc.path, status, body)
			}
		})
	}
	_, _, body := e.do(t, "GET", "/Users", "")
	if got := names(t, body); len(got) != 1 || got[0] != "bob" {
		t.Errorf("users after the refusals = %q, want [bob]", got)
	}
}

// TestLookAlikeNamesCollide: compatibility, case (in any locale) and
// accent variants of an existing userName or group displayName are 409
// uniqueness.
func TestLookAlikeNamesCollide(t *testing.T) {
	e := newEnv(t, scim.Config{})
	e.createUser(t, user("alice"))
	e.createUser(t, user("straße"))
	id := e.createUser(t, user("bob"))
	if status, _, body := e.do(t, "POST", "/Groups", group("admins")); status != 201 {
		t.Fatalf("create group: %d %s", status, body)
	}
	for _, tc := range []struct{ name, method, path, body string }{
		{"full-width", "POST", "/Users", user("ａlice")},
		{"full-width capitals", "POST", "/Users", user("ＡＬＩＣＥ")},
		{"upper case", "POST", "/Users", user("ALICE")},
		{"sharp s", "POST", "/Users", user("STRASSE")},
		{"capital sharp s", "POST", "/Users", user("STRAẞE")},
		{"PUT full-width", "PUT", "/Users/" + id, user("ａlice")},
		{"PATCH full-width", "PATCH", "/Users/" + id, `{"Operations":[{"op":"replace","path":"userName","value":"ａlice"}]}`},
		{"group full-width", "POST", "/Groups", group("ＡＤＭＩＮＳ")},
		{"group case", "POST", "/Groups", group("Admins")},
		// What other software's comparisons merge (Python's upper(), Java's
		// equalsIgnoreCase, MySQL's utf8mb4_0900_ai_ci).
		{"dotless i", "POST", "/Users", user("al\u0131ce")},
		{"dotted capital I", "POST", "/Users", user("al\u0130ce")},
		{"grave accent", "POST", "/Users", user("àlice")},
		{"acute accent", "POST", "/Users", user("alicé")},
		{"combining accent", "POST", "/Users", user("a\u0300lice")},
		{"PATCH accent", "PATCH", "/Users/" + id, `{"Operations":[{"op":"replace","path":"userName","value":"àlice"}]}`},
		{"group accent", "POST", "/Groups", group("àdmins")},
		{"group dotless i", "POST", "/Groups", group("adm\u0131ns")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := e.do(t, tc.method, tc.path, tc.body)
			if status != http.StatusConflict || decode(t, body)["scimType"] != "uniqueness" {
				t.Errorf("%s %s: %d %s, want 409 uniqueness", tc.method, tc.path, status, body)
			}
		})
	}
}

// TestTrimWhitespaceOptIn: with scim.trim_whitespace a padded value is
// trimmed and then collides with the name it copies; invisible
// characters are still refused.
func TestTrimWhitespaceOptIn(t *testing.T) {
	e := newEnv(t, scim.Config{TrimWhitespace: true})
	id := e.createUser(t, user(" carol\u00a0", `"displayName":"Carol "`))
	_, _, body := e.do(t, "GET", "/Users/"+id, "")
	if doc := decode(t, body); doc["userName"] != "carol" || doc["displayName"] != "Carol" {
		t.Errorf("stored %v, want trimmed carol / Carol", doc)
	}
	if status, _, body := e.do(t, "POST", "/Users", user("carol ")); status != http.StatusConflict {
		t.Errorf("POST \"carol \" with trimming: %d %s, want 409", status, body)
	}
	if status, _, body := e.do(t, "POST", "/Users", user("dave\u200b ")); status != http.StatusBadRequest {
		t.Errorf("POST invisible with trimming: %d %s, want 400", status, body)
	}
	if status, _, body := e.do(t, "POST", "/Users", user("team lead")); status != http.StatusCreated {
		t.Errorf("internal space: %d %s, want 201", status, body)
	}
}
