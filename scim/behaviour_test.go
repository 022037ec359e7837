package scim_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"gatehouse/scim"
)

func decode(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, body)
	}
	return m
}

// createUser creates a user and returns its id.
func (e *env) createUser(t *testing.T, doc string) string {
	t.Helper()
	return e.create(t, "/Users", doc)
}

// createGroup creates a group and returns its id.
func (e *env) createGroup(t *testing.T, doc string) string {
	t.Helper()
	return e.create(t, "/Groups", doc)
}

func (e *env) create(t *testing.T, path, doc string) string {
	t.Helper()
	status, _, body := e.do(t, "POST", path, doc)
	if status != http.StatusCreated {
		t.Fatalf("create %s: %d %s", doc, status, body)
	}
	return decode(t, body)["id"].(string)
}

func user(name string, extra ...string) string {
	fields := []string{fmt.Sprintf(`"userName": %q`, name)}
	fields = append(fields, extra...)
	return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],` + strings.Join(fields, ",") + `}`
}

// names lists the userNames of a list response.
func names(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	for _, r := range decode(t, body)["Resources"].([]any) {
		out = append(out, r.(map[string]any)["userName"].(string))
	}
	return out
}

func TestAuthentication(t *testing.T) {
	digest := sha256.Sum256([]byte("another-token-abcdefghijklmnopqrstuvwxyz"))
	e := newEnv(t, scim.Config{Tokens: []string{token}, TokenSHA256: []string{hex.EncodeToString(digest[:])}})
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"NoHeader", "", 401},
		{"WrongToken", "Bearer wrong-token-0123456789abcdef0123456789", 401},
		{"TokenPrefix", "Bearer " + token[:len(token)-1], 401},
		{"BasicScheme", "Basic " + token, 401},
		{"ClearToken", "Bearer " + token, 200},
		{"HashedToken", "Bearer another-token-abcdefghijklmnopqrstuvwxyz", 200},
		{"SchemeCaseInsensitive", "bearer " + token, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/Users", "/ServiceProviderConfig", "/Schemas", "/Groups"} {
				req, _ := http.NewRequest("GET", e.base+path, nil)
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				resp, err := e.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, tc.want)
				}
				if tc.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("GET %s: WWW-Authenticate = %q", path, resp.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, scim.Config{MaxBodyBytes: 4096})
	id := e.createUser(t, user("alice"))
	big := user("bob", `"displayName": "`+strings.Repeat("x", 5000)+`"`)
	for _, tc := range []struct {
		name, method, path, body, ctype string
		status                          int
		scimType                        string
	}{
		{"Oversized", "POST", "/Users", big, "", 413, ""},
		{"MalformedJSON", "POST", "/Users", `{"userName": "x",`, "", 400, "invalidSyntax"},
		{"NotAnObject", "POST", "/Users", `["userName"]`, "", 400, "invalidSyntax"},
		{"TwoValues", "POST", "/Users", `{"userName":"a"} {}`, "", 400, "invalidSyntax"},
		{"NoUserName", "POST", "/Users", `{"displayName":"x"}`, "", 400, "invalidValue"},
		{"UserNameNotString", "POST", "/Users", `{"userName": 7}`, "", 400, "invalidValue"},
		{"ControlCharacter", "POST", "/Users", `{"userName": "a\u0000b"}`, "", 400, "invalidValue"},
		{"UnknownEmailType", "POST", "/Users", user("c", `"emails":[{"type":"pager","value":"x"}]`), "", 400, "invalidValue"},
		{"DuplicateEmailType", "POST", "/Users", user("c", `"emails":[{"type":"work","value":"x"},{"type":"work","value":"y"}]`), "", 400, "invalidValue"},
		{"WrongMediaType", "POST", "/Users", user("c"), "text/plain", 415, ""},
		{"PatchNoOperations", "PATCH", "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[]}`, "", 400, "invalidSyntax"},
		{"PatchBadOp", "PATCH", "/Users/" + id, `{"Operations":[{"op":"move","path":"title"}]}`, "", 400, "invalidSyntax"},
		{"PatchRemoveNoPath", "PATCH", "/Users/" + id, `{"Operations":[{"op":"remove"}]}`, "", 400, "noTarget"},
		{"PatchBadPath", "PATCH", "/Users/" + id, `{"Operations":[{"op":"replace","path":"emails[type eq","value":"x"}]}`, "", 400, "invalidPath"},
		{"PatchReadOnly", "PATCH", "/Users/" + id, `{"Operations":[{"op":"replace","path":"id","value":"x"}]}`, "", 400, "mutability"},
		{"UnknownUser", "GET", "/Users/no-such-id", "", "", 404, ""},
		{"UnknownEndpoint", "GET", "/Widgets", "", "", 404, ""},
		{"Bulk", "POST", "/Bulk", `{}`, "", 501, ""},
		{"Me", "GET", "/Me", "", "", 501, ""},
		{"MethodNotAllowed", "DELETE", "/Users", "", "", 405, ""},
		{"BadStartIndex", "GET", "/Users?startIndex=x", "", "", 400, "invalidValue"},
		{"BadSortOrder", "GET", "/Users?sortOrder=sideways", "", "", 400, "invalidValue"},
		{"BadSortBy", "GET", "/Users?sortBy=password", "", "", 400, "invalidValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := []string{}
			if tc.ctype != "" {
				hdr = []string{"Content-Type", tc.ctype}
			}
			status, h, body := e.do(t, tc.method, tc.path, tc.body, hdr...)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if ct := h.Get("Content-Type"); ct != "application/scim+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			m := decode(t, body)
			if m["status"] != fmt.Sprint(tc.status) || !slices.Contains(m["schemas"].([]any), any(scim.URNError)) || m["detail"] == "" {
				t.Errorf("error body %s", body)
			}
			if got, _ := m["scimType"].(string); got != tc.scimType {
				t.Errorf("scimType = %q, want %q", got, tc.scimType)
			}
		})
	}
	// Nothing the bad requests did reached the store.
	_, _, body := e.do(t, "GET", "/Users", "")
	if got := names(t, body); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("users after bad requests: %v", got)
	}
}

func TestFilterPushdown(t *testing.T) {
	e := newEnv(t, scim.Config{})
	for _, u := range []string{
		user("alice", `"externalId":"Ext-1"`, `"emails":[{"type":"work","value":"alice@x.test"},{"type":"home","value":"al@home.test"}]`, `"title":"Boss"`),
		user("ALBERT", `"emails":[{"type":"home","value":"albert@x.test"}]`, `"active":false`),
		user("*"), user("x)(uid=*"), user("100%"), user("50_x"), user("a\\b"), user("Ünïcode"),
		user("emp", `"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"42","department":"R&D"}`),
	} {
		e.createUser(t, u)
	}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{`userName eq "alice"`, []string{"alice"}},
		{`USERNAME Eq "ALICE"`, []string{"alice"}},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "alice"`, []string{"alice"}},
		{`userName eq "*"`, []string{"*"}},
		{`userName eq "x)(uid=*"`, []string{"x)(uid=*"}},
		{`userName co "%"`, []string{"100%"}},
		{`userName co "_"`, []string{"50_x"}},
		{`userName co "\\"`, []string{"a\\b"}},
		{`userName eq "x)(uid=*" or userName eq "a\"b"`, []string{"x)(uid=*"}},
		{`userName sw "a*"`, nil},
		{`userName sw "AL"`, []string{"alice", "ALBERT"}},
		{`userName ew "ERT"`, []string{"ALBERT"}},
		{`userName eq "ünïcode"`, []string{"Ünïcode"}},
		{`externalId eq "Ext-1"`, []string{"alice"}},
		{`externalId eq "ext-1"`, nil},
		{`emails co "@x.test"`, []string{"alice", "ALBERT"}},
		{`emails.value eq "AL@HOME.TEST"`, []string{"alice"}},
		{`emails[type eq "work" and value co "@x.test"]`, []string{"alice"}},
		{`emails[type eq "home" and value co "@x.test"]`, []string{"ALBERT"}},
		{`emails[type eq "work"].value eq "alice@x.test"`, []string{"alice"}},
		{`emails.type eq "home"`, []string{"alice", "ALBERT"}},
		{`active eq false`, []string{"ALBERT"}},
		{`not (active eq true) or userName eq "*"`, []string{"ALBERT", "*"}},
		{`title pr and userName sw "a"`, []string{"alice"}},
		{`title eq ""`, []string{"ALBERT", "*", "x)(uid=*", "100%", "50_x", "a\\b", "Ünïcode", "emp"}},
		{`(userName eq "alice" or userName eq "emp") and not (title pr)`, []string{"emp"}},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "42"`, []string{"emp"}},
		{`employeeNumber eq "42"`, []string{"emp"}},
		{`meta.created gt "2000-01-01T00:00:00Z" and userName eq "alice"`, []string{"alice"}},
		{`meta.lastModified lt "2000-01-01T00:00:00Z"`, nil},
		{`id eq "nope"`, nil},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			status, _, body := e.do(t, "GET", "/Users?count=100&filter="+url.QueryEscape(tc.filter), "")
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			got := names(t, body)
			if !sameSet(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if n := decode(t, body)["totalResults"].(float64); int(n) != len(tc.want) {
				t.Errorf("totalResults = %v, want %d", n, len(tc.want))
			}
		})
	}
	for _, bad := range []string{
		`nickname eq`, `userName eq alice`, `widget eq "x"`, `password eq "x"`, `active gt true`, `active eq "yes"`,
		`meta.created gt "yesterday"`, `userName co 5`, `emails[type eq "work"`, `groups eq "x"`, `emails.primary eq true`,
		strings.Repeat(`userName eq "a" or `, 300) + `userName eq "a"`,
	} {
		t.Run("invalid/"+bad[:min(len(bad), 40)], func(t *testing.T) {
			status, _, body := e.do(t, "GET", "/Users?filter="+url.QueryEscape(bad), "")
			if status != 400 || decode(t, body)["scimType"] != "invalidFilter" {
				t.Errorf("status %d body %s, want 400 invalidFilter", status, body)
			}
		})
	}
	t.Run("Search", func(t *testing.T) {
		status, _, body := e.do(t, "POST", "/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
			"filter":"userName sw \"a\"","sortBy":"userName","sortOrder":"descending","attributes":["userName"],"count":10}`)
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		if got := names(t, body); !slices.Equal(got, []string{"alice", "ALBERT", "a\\b"}) {
			t.Errorf("got %q", got)
		}
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestPagination(t *testing.T) {
	e := newEnv(t, scim.Config{DefaultCount: 3, MaxResults: 4})
	var all []string
	for i := range 7 {
		name := fmt.Sprintf("user%02d", 6-i)
		e.createUser(t, user(name, fmt.Sprintf(`"title":"%s"`, strings.Repeat("t", i%3))))
		all = append(all, name)
	}
	list := func(q string) (map[string]any, []string) {
		status, _, body := e.do(t, "GET", "/Users?"+q, "")
		if status != 200 {
			t.Fatalf("%s: status %d: %s", q, status, body)
		}
		return decode(t, body), names(t, body)
	}
	for _, tc := range []struct {
		query      string
		n, start   int
		wantOffset int
	}{
		{"", 3, 1, 0},
		{"startIndex=0&count=2", 2, 1, 0},
		{"startIndex=-5&count=2", 2, 1, 0},
		{"startIndex=6&count=2", 2, 6, 5},
		{"startIndex=7&count=5", 1, 7, 6},
		{"startIndex=8&count=2", 0, 8, 7},
		{"startIndex=100", 0, 100, 7},
		{"count=0", 0, 1, 0},
		{"count=-1", 0, 1, 0},
		{"count=100", 4, 1, 0},
		{"STARTINDEX=2&Count=1", 1, 2, 1},
	} {
		t.Run(tc.query, func(t *testing.T) {
			m, got := list(tc.query)
			if len(got) != tc.n || int(m["itemsPerPage"].(float64)) != tc.n || int(m["startIndex"].(float64)) != tc.start || int(m["totalResults"].(float64)) != 7 {
				t.Errorf("page = %v items %v start %v total %v, want %d items from %d", got, m["itemsPerPage"], m["startIndex"], m["totalResults"], tc.n, tc.start)
			}
			if _, ok := m["Resources"].([]any); !ok {
				t.Errorf("Resources missing: %v", m)
			}
		})
	}
	// Pages in the default (ID) order tile the whole set.
	var paged []string
	for start := 1; start <= 7; start += 2 {
		_, got := list(fmt.Sprintf("startIndex=%d&count=2", start))
		paged = append(paged, got...)
	}
	if !sameSet(paged, all) || len(paged) != 7 {
		t.Errorf("pages tile %v, want each of %v once", paged, all)
	}
	_, asc := list("sortBy=userName&count=4")
	if !slices.Equal(asc, []string{"user00", "user01", "user02", "user03"}) {
		t.Errorf("ascending %v", asc)
	}
	_, desc := list("sortBy=userName&sortOrder=descending&count=2&startIndex=2")
	if !slices.Equal(desc, []string{"user05", "user04"}) {
		t.Errorf("descending page 2 %v", desc)
	}
	// Empty values sort last ascending and first descending.
	_, byTitle := list("sortBy=title&count=4&startIndex=5")
	if !slices.Equal(byTitle, []string{"user06", "user03", "user00"}) {
		t.Errorf("by title, tail: %v (empty titles must come last)", byTitle)
	}
	_, byTitleDesc := list("sortBy=title&sortOrder=descending&count=3")
	if !sameSet(byTitleDesc, []string{"user06", "user03", "user00"}) {
		t.Errorf("by title descending, head: %v (empty titles must come first)", byTitleDesc)
	}
}

func TestETags(t *testing.T) {
	e := newEnv(t, scim.Config{})
	id := e.createUser(t, user("alice"))
	status, h, body := e.do(t, "GET", "/Users/"+id, "")
	tag := h.Get("ETag")
	if status != 200 || tag != `W/"1"` || decode(t, body)["meta"].(map[string]any)["version"] != tag {
		t.Fatalf("GET: %d ETag %q body %s", status, tag, body)
	}
	if status, _, _ := e.do(t, "GET", "/Users/"+id, "", "If-None-Match", tag); status != 304 {
		t.Errorf("If-None-Match current: %d, want 304", status)
	}
	patch := `{"Operations":[{"op":"replace","path":"title","value":"Boss"}]}`
	for _, stale := range []string{`W/"7"`, `"0"`, `garbage`} {
		if status, _, body := e.do(t, "PATCH", "/Users/"+id, patch, "If-Match", stale); status != 412 {
			t.Errorf("PATCH If-Match %s: %d %s, want 412", stale, status, body)
		}
		if status, _, _ := e.do(t, "PUT", "/Users/"+id, user("alice", `"title":"x"`), "If-Match", stale); status != 412 {
			t.Errorf("PUT If-Match %s: %d, want 412", stale, status)
		}
		if status, _, _ := e.do(t, "DELETE", "/Users/"+id, "", "If-Match", stale); status != 412 {
			t.Errorf("DELETE If-Match %s: %d, want 412", stale, status)
		}
	}
	status, h, _ = e.do(t, "PATCH", "/Users/"+id, patch, "If-Match", tag)
	if status != 200 || h.Get("ETag") != `W/"2"` {
		t.Fatalf("PATCH If-Match current: %d ETag %q", status, h.Get("ETag"))
	}
	// Repeating the same change writes nothing: the version stays.
	if _, h, _ = e.do(t, "PATCH", "/Users/"+id, patch); h.Get("ETag") != `W/"2"` {
		t.Errorf("no-op PATCH moved ETag to %q", h.Get("ETag"))
	}
	if status, _, _ := e.do(t, "DELETE", "/Users/"+id, "", "If-Match", `W/"2"`); status != 204 {
		t.Errorf("DELETE If-Match current: %d", status)
	}
}

func TestUniqueness(t *testing.T) {
	e := newEnv(t, scim.Config{})
	e.createUser(t, user("Zoë"))
	id := e.createUser(t, user("bob"))
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/Users", user("ZOË")},
		{"POST", "/Users", user("zo\u0065\u0308")}, // decomposed ë: the same name after NFC
		{"PUT", "/Users/" + id, user("zoë")},
		{"PATCH", "/Users/" + id, `{"Operations":[{"op":"replace","path":"userName","value":"ZOË"}]}`},
	} {
		status, _, body := e.do(t, tc.method, tc.path, tc.body)
		if status != 409 || decode(t, body)["scimType"] != "uniqueness" {
			t.Errorf("%s %s %s: %d %s, want 409 uniqueness", tc.method, tc.path, tc.body, status, body)
		}
	}
}

func TestPatch(t *testing.T) {
	base := user("pat", `"name":{"givenName":"Pat","familyName":"Doe"}`, `"title":"Dev"`,
		`"emails":[{"type":"work","value":"pat@work.test"},{"type":"home","value":"pat@home.test"}]`,
		`"phoneNumbers":[{"type":"mobile","value":"555"}]`)
	for _, tc := range []struct {
		name   string
		ops    string
		quirks bool
		status int
		check  func(t *testing.T, doc map[string]any)
	}{
		{"ReplaceSubAttribute", `[{"op":"replace","path":"name.givenName","value":"Patricia"}]`, true, 200, func(t *testing.T, d map[string]any) {
			want(t, d, "name.givenName", "Patricia")
			want(t, d, "name.familyName", "Doe")
		}},
		{"AddMergesComplex", `[{"op":"add","path":"name","value":{"middleName":"Q"}}]`, true, 200, func(t *testing.T, d map[string]any) {
			want(t, d, "name.middleName", "Q")
			want(t, d, "name.givenName", "Pat")
		}},
		{"RemoveAttribute", `[{"op":"remove","path":"title"}]`, true, 200, func(t *testing.T, d map[string]any) { want(t, d, "title", nil) }},
		{"RemoveByFilter", `[{"op":"remove","path":"emails[type eq \"home\"]"}]`, true, 200, func(t *testing.T, d map[string]any) {
			want(t, d, "emails.len", 1)
			want(t, d, "emails.0.value", "pat@work.test")
		}},
		{"ReplaceByFilter", `[{"op":"replace","path":"emails[type eq \"home\"].value","value":"new@home.test"}]`, true, 200, func(t *testing.T, d map[string]any) {
			want(t, d, "emails.1.value", "new@home.test")
		}},
		{"AddAppendsAndDeduplicates", `[{"op":"add","path":"emails","value":[{"type":"other","value":"o@x.test"},{"type":"work","value":"pat@work.test"}]}]`, true, 200, func(t *testing.T, d map[string]any) {
			want(t, d, "emails.len", 3)
		}},
		{"ReplaceMultiValued", `[{"op":"replace","path":"phoneNumbers","value":[{"type":"work","value":"111"}]}]`, true, 200, func(t *testing.T, d map[string]any) {
			want(t, d, "phoneNumbers.len", 1)
			want(t, d, "phoneNumbers.0.type", "work")
		}},
		{"PathlessAddObject", `[{"op":"add","value":{"nickName":"P","name":{"honorificPrefix":"Dr"}}}]`, true, 200, func(t *testing.T, d map[string]any) {
			want(t, d, "nickName", "P")
			want(t, d, "name.honorificPrefix", "Dr")
			want(t, d, "name.givenName", "Pat")
		}},
		{"NullIsUnassigned", `[{"op":"replace","path":"title","value":null}]`, true, 200, func(t *testing.T, d map[string]any) { want(t, d, "title", nil) }},
		{"CaseInsensitiveNames", `[{"op":"REPLACE","path":"NAME.GIVENNAME","value":"X"}]`, true, 200, func(t *testing.T, d map[string]any) { want(t, d, "name.givenName", "X") }},
		{"FilterNoMatchStrict", `[{"op":"replace","path":"emails[type eq \"other\"].value","value":"x@y"}]`, false, 400, nil},
		{"FilterNoMatchQuirks", `[{"op":"replace","path":"emails[type eq \"other\"].value","value":"x@y"}]`, true, 400, nil},
		{"FilterNoMatchAddCreates", `[{"op":"add","path":"emails[type eq \"other\"].value","value":"x@y"}]`, false, 200, func(t *testing.T, d map[string]any) {
			want(t, d, "emails.len", 3)
		}},
		{"StringBooleanStrict", `[{"op":"replace","path":"active","value":"False"}]`, false, 400, nil},
		{"ActiveStringQuirks", `[{"op":"replace","path":"active","value":"False"}]`, true, 200, func(t *testing.T, d map[string]any) { want(t, d, "active", false) }},
		{"AtomicOnFailure", `[{"op":"replace","path":"title","value":"CEO"},{"op":"replace","path":"emails","value":[{"type":"fax","value":"x"}]}]`, true, 400, nil},
		{"RemoveWithValueStrict", `[{"op":"remove","path":"emails","value":[{"value":"pat@home.test"}]}]`, false, 200, func(t *testing.T, d map[string]any) {
			want(t, d, "emails.len", 1)
			want(t, d, "emails.0.value", "pat@work.test")
		}},
		{"RemoveWithValueQuirks", `[{"op":"remove","path":"emails","value":[{"value":"pat@home.test"}]}]`, true, 200, func(t *testing.T, d map[string]any) {
			want(t, d, "emails.len", 1)
			want(t, d, "emails.0.value", "pat@work.test")
		}},
		{"ManagerObject", `[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":{"value":"m-1"}}]`, false, 200, func(t *testing.T, d map[string]any) {
			want(t, d, scim.URNEnterprise+".manager.value", "m-1")
		}},
		{"ManagerStringQuirks", `[{"op":"add","path":"manager","value":"m-2"}]`, true, 200, func(t *testing.T, d map[string]any) {
			want(t, d, scim.URNEnterprise+".manager.value", "m-2")
		}},
		{"ManagerDotSeparator", `[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department","value":"Ops"}]`, true, 200, func(t *testing.T, d map[string]any) {
			want(t, d, scim.URNEnterprise+".department", "Ops")
		}},
		{"PasswordIgnored", `[{"op":"replace","value":{"password":"hunter2-hunter2"}}]`, true, 200, func(t *testing.T, d map[string]any) { want(t, d, "password", nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.quirks
			e := newEnv(t, scim.Config{Quirks: &q})
			id := e.createUser(t, base)
			_, _, before := e.do(t, "GET", "/Users/"+id, "")
			status, _, body := e.do(t, "PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":`+tc.ops+`}`)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			_, _, after := e.do(t, "GET", "/Users/"+id, "")
			if tc.check == nil {
				if after != before {
					t.Errorf("failed PATCH changed the user:\nbefore %s\nafter  %s", before, after)
				}
				return
			}
			tc.check(t, decode(t, after))
		})
	}
}

// want checks a dotted path ("emails.0.value", "emails.len") of a doc; a
// nil want means absent.
func want(t *testing.T, doc map[string]any, path string, v any) {
	t.Helper()
	var cur any = doc
	parts := strings.Split(path, ".")
	if strings.HasPrefix(path, "urn:") {
		i := strings.Index(path, ":User.")
		parts = append([]string{path[:i+5]}, strings.Split(path[i+6:], ".")...)
	}
	for _, p := range parts {
		switch x := cur.(type) {
		case map[string]any:
			cur = x[p]
		case []any:
			if p == "len" {
				cur = len(x)
				continue
			}
			var i int
			fmt.Sscan(p, &i)
			if i >= len(x) {
				cur = nil
				continue
			}
			cur = x[i]
		default:
			cur = nil
		}
	}
	if fmt.Sprint(cur) != fmt.Sprint(v) {
		t.Errorf("%s = %v, want %v", path, cur, v)
	}
}

func TestProjection(t *testing.T) {
	e := newEnv(t, scim.Config{})
	id := e.createUser(t, user("proj", `"title":"T"`, `"emails":[{"type":"work","value":"p@x.test"}]`, `"name":{"givenName":"P","familyName":"J"}`))
	_, _, body := e.do(t, "GET", "/Users/"+id+"?attributes=userName,name.givenName", "")
	d := decode(t, body)
	want(t, d, "userName", "proj")
	want(t, d, "name.givenName", "P")
	want(t, d, "name.familyName", nil)
	want(t, d, "title", nil)
	want(t, d, "id", id)
	_, _, body = e.do(t, "GET", "/Users?excludedAttributes=emails,title,id", "")
	r := decode(t, body)["Resources"].([]any)[0].(map[string]any)
	want(t, r, "emails", nil)
	want(t, r, "title", nil)
	want(t, r, "id", id) // id is always returned
	want(t, r, "userName", "proj")
}

func TestGroupsKeepJITMemberships(t *testing.T) {
	e := newEnv(t, scim.Config{})
	alice := e.createUser(t, user("alice"))
	bob := e.createUser(t, user("bob"))
	status, _, body := e.do(t, "POST", "/Groups", `{"displayName":"Staff","members":[{"value":"`+alice+`"}]}`)
	if status != 201 {
		t.Fatalf("create group: %d %s", status, body)
	}
	gid := decode(t, body)["id"].(string)
	// Entra's member removal with a value array removes only those.
	status, _, body = e.do(t, "PATCH", "/Groups/"+gid, `{"Operations":[{"op":"Add","path":"members","value":[{"$ref":null,"value":"`+bob+`"}]},
		{"op":"Remove","path":"members","value":[{"value":"`+alice+`"}]}]}`)
	if status != 204 {
		t.Fatalf("patch: %d %s", status, body)
	}
	_, _, body = e.do(t, "GET", "/Groups/"+gid, "")
	members := decode(t, body)["members"].([]any)
	if len(members) != 1 || members[0].(map[string]any)["value"] != bob {
		t.Errorf("members %v, want only bob", members)
	}
	if status, _, body = e.do(t, "POST", "/Groups", `{"displayName":"STAFF"}`); status != 409 {
		t.Errorf("duplicate group name: %d %s", status, body)
	}
	if status, _, body = e.do(t, "POST", "/Groups", `{"displayName":"X","members":[{"value":"nobody"}]}`); status != 400 {
		t.Errorf("unknown member: %d %s", status, body)
	}
	_, _, body = e.do(t, "GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "staff"`), "")
	r := decode(t, body)["Resources"].([]any)
	if len(r) != 1 || r[0].(map[string]any)["members"] != nil {
		t.Errorf("excludedAttributes=members: %v", r)
	}
	_, _, body = e.do(t, "GET", "/Groups?filter="+url.QueryEscape(`members[value eq "`+bob+`"]`), "")
	if n := decode(t, body)["totalResults"].(float64); n != 1 {
		t.Errorf("groups with bob: %v", n)
	}
	if !slices.Contains(e.forgot, bob) || !slices.Contains(e.forgot, alice) {
		t.Errorf("membership changes did not drop cached identities: %v", e.forgot)
	}
}
