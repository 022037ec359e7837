package scim_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"gatehouse/scim"
)

// TestFilterOperators pins every operator of a list filter: on a
// case-insensitive attribute both sides fold as provision.NormalizeName
// folds them (sharp s, Turkish dotted and dotless i, combining and
// precomposed accents), strings order by code point of the fold, and the
// type of a multi-valued attribute compares as a folded constant that has
// no order.
func TestFilterOperators(t *testing.T) {
	e := newEnv(t, scim.Config{})
	for _, u := range []string{
		user("straße", `"title":"Dev"`, `"emails":[{"type":"work","value":"s@x.test"}]`),
		user("ıstanbul", `"phoneNumbers":[{"type":"mobile","value":"555"}]`),
		user("rene\u0301e"), // combining acute accent
		user("Bob", `"emails":[{"type":"home","value":"bob@home.test"}]`),
	} {
		e.createUser(t, u)
	}
	const renee = "rene\u0301e"
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{`userName eq "STRASSE"`, []string{"straße"}},
		{`userName eq "strasse"`, []string{"straße"}},
		{`userName eq "istanbul"`, []string{"ıstanbul"}},
		{`userName eq "İSTANBUL"`, []string{"ıstanbul"}},
		{`userName eq "RENÉE"`, []string{renee}},
		{`userName eq "renee"`, []string{renee}},
		{`userName eq "bob"`, []string{"Bob"}},
		{`userName ne "STRASSE"`, []string{"ıstanbul", renee, "Bob"}},
		{`userName co "SS"`, []string{"straße"}},
		{`userName co "É"`, []string{"straße", renee}},
		{`userName sw "IST"`, []string{"ıstanbul"}},
		{`userName sw "ıst"`, []string{"ıstanbul"}},
		{`userName ew "SSE"`, []string{"straße"}},
		{`userName ew "e\u0301e"`, []string{renee}},
		{`userName gt "R"`, []string{"straße", renee}},
		{`userName ge "RENÉE"`, []string{"straße", renee}},
		{`userName lt "IST"`, []string{"Bob"}},
		{`userName le "İSTANBUL"`, []string{"Bob", "ıstanbul"}},
		{`title pr`, []string{"straße"}},
		{`emails[type eq "WORK"]`, []string{"straße"}},
		{`emails[type eq "wörk"]`, []string{"straße"}},
		{`phoneNumbers[type eq "MOBİLE"]`, []string{"ıstanbul"}},
		{`phoneNumbers[type eq "mobıle"]`, []string{"ıstanbul"}},
		{`emails[type ne "work"]`, []string{"Bob"}},
		{`emails[type co "OR"]`, []string{"straße"}},
		{`emails[type sw "HO"]`, []string{"Bob"}},
		{`emails[type ew "ME"]`, []string{"Bob"}},
		{`emails[type pr]`, []string{"straße", "Bob"}},
		{`emails.type eq "Home"`, []string{"Bob"}},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			status, _, body := e.do(t, "GET", "/Users?count=100&filter="+url.QueryEscape(tc.filter), "")
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			if got := names(t, body); !sameSet(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{
		`emails[type gt "a"]`, `emails[type ge "a"]`, `emails[type lt "z"]`, `emails[type le "z"]`, `emails.type lt "z"`,
		`emails[type eq 5]`, `emails[type eq true]`,
		`active gt false`, `active ge true`, `active lt true`, `active le true`, `active co "t"`, `active sw "t"`, `active ew "e"`,
		`userName eq true`, `userName gt 5`, `userName eq null`,
		`meta.created co "2026-01-01T00:00:00Z"`, `meta.created sw "2026-01-01T00:00:00Z"`, `meta.lastModified ew "2026-01-01T00:00:00Z"`,
	} {
		t.Run("invalid/"+bad, func(t *testing.T) {
			status, _, body := e.do(t, "GET", "/Users?filter="+url.QueryEscape(bad), "")
			if status != 400 || decode(t, body)["scimType"] != "invalidFilter" {
				t.Errorf("status %d body %s, want 400 invalidFilter", status, body)
			}
		})
	}
}

// TestPatchFilterOperators pins every operator of a PATCH path filter
// (emails[value op "x"]): string sub-attributes fold as list filters do,
// booleans take eq and ne with a missing value as false, and numbers and
// null are refused. Each row removes what its filter selects and checks
// which e-mails are left.
func TestPatchFilterOperators(t *testing.T) {
	doc := user("pat", `"emails":[{"type":"work","value":"Straße@Example.test"},{"type":"home","value":"rene\u0301e@home.test"},{"type":"other","value":"ıstanbul@x.test"}]`)
	for _, tc := range []struct {
		filter string
		left   []string // the types of the e-mails left
	}{
		{`value eq "STRASSE@EXAMPLE.TEST"`, []string{"home", "other"}},
		{`value eq "straße@example.test"`, []string{"home", "other"}},
		{`value eq "Straße@Example.tes"`, []string{"work", "home", "other"}},
		{`value ne "STRASSE@EXAMPLE.TEST"`, []string{"work"}},
		{`value co "SSE@"`, []string{"home", "other"}},
		{`value co "ß"`, []string{"home", "other"}},
		{`value sw "RENÉE"`, []string{"work", "other"}},
		{`value sw "renee@"`, []string{"work", "other"}},
		{`value ew "@X.TEST"`, []string{"work", "home"}},
		{`value eq "istanbul@x.test"`, []string{"work", "home"}},
		{`value eq "İSTANBUL@X.TEST"`, []string{"work", "home"}},
		{`value gt "R"`, []string{"other"}},
		{`value ge "renee@home.test"`, []string{"other"}},
		{`value lt "RENEE"`, []string{"work", "home"}},
		{`value le "istanbul@x.test"`, []string{"work", "home"}},
		{`value pr`, nil},
		{`type eq "WORK"`, []string{"home", "other"}},
		{`type ne "work"`, []string{"work"}},
		{`primary eq true`, []string{"home", "other"}},
		{`primary ne true`, []string{"work"}},
		{`primary eq false`, []string{"work"}},
		{`type eq "home" or primary eq true`, []string{"other"}},
		{`not (value co "@")`, []string{"work", "home", "other"}},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			e := newEnv(t, scim.Config{})
			id := e.createUser(t, doc)
			ops := `{"Operations":[{"op":"remove","path":` + jsonString(`emails[`+tc.filter+`]`) + `}]}`
			status, _, body := e.do(t, "PATCH", "/Users/"+id, ops)
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			var left []string
			if list, ok := decode(t, body)["emails"].([]any); ok {
				for _, el := range list {
					left = append(left, el.(map[string]any)["type"].(string))
				}
			}
			if !sameSet(left, tc.left) {
				t.Errorf("e-mails left %q, want %q", left, tc.left)
			}
		})
	}
	e := newEnv(t, scim.Config{})
	id := e.createUser(t, doc)
	for _, bad := range []string{
		`primary gt true`, `primary ge true`, `primary lt true`, `primary le true`,
		`primary co true`, `primary sw true`, `primary ew true`,
		`value eq 5`, `value gt 1.5`, `value eq null`,
	} {
		t.Run("invalid/"+bad, func(t *testing.T) {
			ops := `{"Operations":[{"op":"remove","path":` + jsonString(`emails[`+bad+`]`) + `}]}`
			status, _, body := e.do(t, "PATCH", "/Users/"+id, ops)
			if status != 400 || decode(t, body)["scimType"] != "invalidFilter" {
				t.Errorf("status %d body %s, want 400 invalidFilter", status, body)
			}
		})
	}
}

// jsonString quotes s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
