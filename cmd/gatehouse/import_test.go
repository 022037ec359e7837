package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"gatehouse/provision"
	"gatehouse/provision/ldapdir"
	"gatehouse/provision/sqldir"
	"gatehouse/scim"
	"gatehouse/test/slapd"
)

const importToken = "scim-token-0123456789abcdefghijklmnopqrstuv"

const enterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// importConfig writes a config with a SQLite store and a scim section, and
// returns its path and the store's.
func importConfig(t *testing.T) (string, string) {
	t.Helper()
	return importConfigWith(t, "")
}

// importConfigWith is importConfig with more keys of the scim section
// ("  quirks: false\n").
func importConfigWith(t *testing.T, scimKeys string) (string, string) {
	t.Helper()
	t.Setenv("TEST_GATEHOUSE_KEY", testEnv["TEST_GATEHOUSE_KEY"])
	t.Setenv("TEST_SCIM_TOKEN", importToken)
	path := writeConfig(t, goodConfig+"scim:\n  tokens: [\"${TEST_SCIM_TOKEN}\"]\n"+scimKeys)
	return path, filepath.Join(filepath.Dir(path), "gatehouse.db")
}

// runImport runs gatehouse import on input and returns the exit status,
// stdout and stderr.
func runImport(t *testing.T, config, name, input string, format string) (int, string, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	mustDo(t, os.WriteFile(file, []byte(input), 0o600))
	var out, errOut bytes.Buffer
	code := importCommand(context.Background(), importOptions{config: config, format: format, input: file, batch: 2}, nil, &out, &errOut)
	return code, out.String(), errOut.String()
}

// scimGet answers a GET of the SCIM server over the store at dbPath.
func scimGet(t *testing.T, dbPath, path string) map[string]any {
	t.Helper()
	st, err := sqldir.Open(context.Background(), sqldir.Config{Path: dbPath})
	mustDo(t, err)
	defer st.Close()
	sc, err := scim.NewServer(scim.Config{Tokens: []string{importToken}}, st, scim.Options{Logger: zap.NewNop(), Mount: "/scim"})
	mustDo(t, err)
	return scimDo(t, sc, http.MethodGet, path, "")
}

func scimDo(t *testing.T, sc http.Handler, method, path, body string) map[string]any {
	t.Helper()
	r := httptest.NewRequest(method, "/scim"+path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+importToken)
	if body != "" {
		r.Header.Set("Content-Type", "application/scim+json")
	}
	w := httptest.NewRecorder()
	sc.ServeHTTP(w, r)
	if w.Code >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
	}
	var doc map[string]any
	mustDo(t, json.Unmarshal(w.Body.Bytes(), &doc))
	return doc
}

// findUser is the one user of a list answer for userName eq name.
func findUser(t *testing.T, dbPath, name string) map[string]any {
	t.Helper()
	doc := scimGet(t, dbPath, "/Users?filter="+url.QueryEscape(`userName eq "`+name+`"`))
	res, _ := doc["Resources"].([]any)
	if len(res) != 1 {
		t.Fatalf("SCIM list for %s: %v", name, doc)
	}
	return res[0].(map[string]any)
}

func TestImportFormats(t *testing.T) {
	user := func(name, dept string) string {
		return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","` + enterpriseURN + `"],"userName":"` + name +
			`","name":{"givenName":"G` + name + `","familyName":"F"},"emails":[{"type":"work","value":"` + name + `@example.com"}],"` +
			enterpriseURN + `":{"department":"` + dept + `"}}`
	}
	for _, tc := range []struct{ name, file, format, input string }{
		{"Array", "users.json", "", "[\n" + user("ann", "Sales") + ",\n" + user("bob", "Ops") + ",\n" + user("cid", "Ops") + "\n]\n"},
		{"ListResponse", "users.json", "scim", `{
  "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
  "totalResults": 3,
  "Resources": [
    ` + user("ann", "Sales") + `,
    ` + user("bob", "Ops") + `,
    ` + user("cid", "Ops") + `
  ],
  "startIndex": 1
}`},
		{"NDJSON", "users.ndjson", "", user("ann", "Sales") + "\n\n" + user("bob", "Ops") + "\n" + user("cid", "Ops")},
		{"CSV", "users.csv", "", "userName,name.givenName,name.familyName,emails[type eq \"work\"].value,active," + enterpriseURN + ":department\n" +
			"ann,Gann,F,ann@example.com,true,Sales\nbob,Gbob,F,bob@example.com,,Ops\n\"cid\",Gcid,F,cid@example.com,TRUE,Ops\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config, db := importConfig(t)
			code, out, errOut := runImport(t, config, tc.file, tc.input, tc.format)
			if code != 0 || !strings.Contains(out, "imported 3 users") || !strings.Contains(out, "3 created, 0 updated, 0 unchanged, 0 failed") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			ann := findUser(t, db, "ann")
			ent, _ := ann[enterpriseURN].(map[string]any)
			name, _ := ann["name"].(map[string]any)
			emails, _ := ann["emails"].([]any)
			if ent["department"] != "Sales" || name["givenName"] != "Gann" || len(emails) != 1 || ann["active"] != true {
				t.Errorf("ann over SCIM = %v", ann)
			}
			// A re-run finds everything up to date and writes nothing.
			code, out, errOut = runImport(t, config, tc.file, tc.input, tc.format)
			if code != 0 || !strings.Contains(out, "0 created, 0 updated, 3 unchanged, 0 failed") {
				t.Fatalf("re-run: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			if again := findUser(t, db, "ann"); again["meta"].(map[string]any)["version"] != ann["meta"].(map[string]any)["version"] {
				t.Errorf("re-run changed ann's version: %v -> %v", ann["meta"], again["meta"])
			}
		})
	}
}

// TestImportBrokenLines: a line that is not JSON and a user without a
// userName are reported by line number; the rest is imported; exit 1.
func TestImportBrokenLines(t *testing.T) {
	config, db := importConfig(t)
	input := `{"userName":"ann","displayName":"secret-display-value"}
{"userName":"bob",
{"displayName":"no name here, secret-display-value"}
{"userName":"cid","active":"maybe"}
{"userName":"dan"}
`
	code, out, errOut := runImport(t, config, "users.ndjson", input, "")
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, want := range []string{"line 2: ", "line 3: ", "userName is required", `line 4 (userName "cid"): active must be a boolean`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "secret-display-value") {
		t.Errorf("stderr echoes an attribute value:\n%s", errOut)
	}
	if !strings.Contains(out, "2 created, 0 updated, 0 unchanged, 3 failed") {
		t.Errorf("summary: %s", out)
	}
	findUser(t, db, "ann")
	findUser(t, db, "dan")
}

// TestImportReplacesAsPUT: a user that already exists (any case of its
// name) is replaced as a SCIM PUT would: same ID, version+1, and the
// result equals what a POST then PUT of the same documents gives.
func TestImportReplacesAsPUT(t *testing.T) {
	config, db := importConfig(t)
	first := `{"userName":"Eve","displayName":"Eve E","title":"Engineer"}`
	second := `{"userName":"EVE","displayName":"Eve Evans","active":false}`
	if code, out, errOut := runImport(t, config, "a.ndjson", first, ""); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	before := findUser(t, db, "eve")
	code, out, errOut := runImport(t, config, "b.ndjson", second, "")
	if code != 0 || !strings.Contains(out, "0 created, 1 updated") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	after := findUser(t, db, "eve")
	if after["id"] != before["id"] || after["meta"].(map[string]any)["version"] != `W/"2"` {
		t.Errorf("after = %v, before = %v", after, before)
	}

	// The same two writes over SCIM, into a fresh store.
	_, other := importConfig(t)
	st, err := sqldir.Open(context.Background(), sqldir.Config{Path: other})
	mustDo(t, err)
	defer st.Close()
	sc, err := scim.NewServer(scim.Config{Tokens: []string{importToken}}, st, scim.Options{Logger: zap.NewNop(), Mount: "/scim"})
	mustDo(t, err)
	posted := scimDo(t, sc, http.MethodPost, "/Users", first)
	put := scimDo(t, sc, http.MethodPut, "/Users/"+posted["id"].(string), second)
	strip := func(m map[string]any) string {
		m = maps.Clone(m)
		delete(m, "id")
		delete(m, "meta")
		b, _ := json.Marshal(m)
		return string(b)
	}
	if strip(after) != strip(put) {
		t.Errorf("import gave %s\nSCIM POST+PUT gave %s", strip(after), strip(put))
	}
	stored, err := st.FindUsers(context.Background(), userNameQuery("eve"))
	mustDo(t, err)
	imported, err := sqldir.Open(context.Background(), sqldir.Config{Path: db})
	mustDo(t, err)
	defer imported.Close()
	mine, err := imported.FindUsers(context.Background(), userNameQuery("eve"))
	mustDo(t, err)
	if a, b := strings.Join(mine.Items[0].SCIMFields, ","), strings.Join(stored.Items[0].SCIMFields, ","); a != b {
		t.Errorf("imported SCIM-owned fields %s, SCIM's %s", a, b)
	}
}

func userNameQuery(name string) provision.Query {
	return provision.Query{Filter: provision.Compare{Field: provision.FieldUserName, Op: provision.OpEq, Value: name, Fold: true}, Limit: 1}
}

// TestImportLDAP: a store without bulk import (LDAP) gets the same
// results user by user, and says it is slower.
func TestImportLDAP(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", testEnv["TEST_GATEHOUSE_KEY"])
	t.Setenv("TEST_SCIM_TOKEN", importToken)
	t.Setenv("TEST_LDAP_PASSWORD", slapd.BindPassword)
	srv := slapd.Start(t, slapd.WithSchema(ldapdir.SchemaLDIF, "gatehouseState"))
	tn := srv.NewTenant(t)
	config := writeConfig(t, ldapConfig(srv, tn, "scim:\n  tokens: [\"${TEST_SCIM_TOKEN}\"]\n"))
	input := `{"userName":"lena","name":{"givenName":"Lena","familyName":"L"},"emails":[{"type":"work","value":"lena@example.com"}]}
{"userName":"mo","name":{"givenName":"Mo","familyName":"M"}}
{"userName":"LENA","name":{"givenName":"twice","familyName":"L"}}
`
	code, out, errOut := runImport(t, config, "users.ndjson", input, "")
	// batch is 2 in runImport: LENA comes in the second batch and
	// replaces lena.
	if code != 0 || !strings.Contains(errOut, "no bulk import") || !strings.Contains(out, "2 created, 1 updated, 0 unchanged, 0 failed") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	code, out, errOut = runImport(t, config, "users.ndjson", input, "")
	// lena is replaced twice per run: by its first line, then by LENA.
	if code != 0 || !strings.Contains(out, "0 created, 2 updated, 1 unchanged, 0 failed") {
		t.Fatalf("re-run: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	last := "{\"userName\":\"LENA\",\"name\":{\"givenName\":\"twice\",\"familyName\":\"L\"}}\n{\"userName\":\"mo\",\"name\":{\"givenName\":\"Mo\",\"familyName\":\"M\"}}\n"
	code, out, errOut = runImport(t, config, "users.ndjson", last, "")
	if code != 0 || !strings.Contains(out, "0 created, 0 updated, 2 unchanged, 0 failed") {
		t.Fatalf("re-run of the final state: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// TestImportProgress: a terminal gets one line rewritten in place; a log
// gets whole lines, at most one per 5 s.
func TestImportProgress(t *testing.T) {
	in := &countingReader{}
	in.n.Store(50)
	c := importCounts{done: 10, created: 7, unchanged: 2, failed: 1}
	var tty bytes.Buffer
	p := newProgress(&tty, true, in, 200)
	p.last = p.last.Add(-time.Second)
	p.update(c, 123, false)
	p.update(c, 123, false) // too soon: nothing
	p.update(c, 123, true)
	want := "\r\033[K10 users (25% of the input): 7 created, 0 updated, 2 unchanged, 1 failed, 123 users/s"
	if got := tty.String(); got != want+want+"\n" {
		t.Errorf("terminal progress = %q", got)
	}
	var log bytes.Buffer
	p = newProgress(&log, false, in, -1)
	p.update(c, 123, false) // within 5 s of the start: nothing
	p.last = p.last.Add(-6 * time.Second)
	p.update(c, 123, false)
	p.update(c, 123, true) // the summary follows on stdout instead
	if got := log.String(); got != "10 users: 7 created, 0 updated, 2 unchanged, 1 failed, 123 users/s\n" {
		t.Errorf("log progress = %q", got)
	}
}

// TestImportCSVHeader: a header cell that is no attribute path, or names
// one twice in any case, stops the import before anything is written.
func TestImportCSVHeader(t *testing.T) {
	config, _ := importConfig(t)
	for _, tc := range []struct{ header, want string }{
		{"userName,emails[value co \"x\"].value", `header column 2: "emails[value co \"x\"].value": the only filter a column takes is [type eq "..."]`},
		{"userName,USERNAME", `header column 2: "USERNAME" writes userName, as column 1 ("userName") does`},
		{"userName,name.", `header column 2: "name.": not an attribute path`},
	} {
		code, out, errOut := runImport(t, config, "u.csv", tc.header+"\nann,x\n", "")
		if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(out, "imported 0 users") {
			t.Errorf("header %q: exit %d\nstdout: %s\nstderr: %s", tc.header, code, out, errOut)
		}
	}
}

// The tests below pin the findings of issue 18's second red-team round on
// gatehouse import: each failed before its fix.

// TestImportSchemasChecked (F1): the import applies SCIM's schemas check
// in the server's mode; CSV rows list their schemas themselves, so CSV
// works in strict mode, and a schemas column is a header error.
func TestImportSchemasChecked(t *testing.T) {
	t.Run("Quirks", func(t *testing.T) {
		config, db := importConfig(t)
		input := `{"userName":"sch1","schemas":[]}
{"userName":"sch2","schemas":"urn:ietf:params:scim:schemas:core:2.0:User"}
{"userName":"sch3","schemas":["urn:foo"]}
{"userName":"sch4","schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]}
{"userName":"ok1"}
`
		code, out, errOut := runImport(t, config, "u.ndjson", input, "")
		for _, want := range []string{
			`line 1 (userName "sch1"): schemas must list urn:ietf:params:scim:schemas:core:2.0:User`,
			`line 2 (userName "sch2"): schemas must be an array of schema URNs`,
			`line 3 (userName "sch3"): schemas must list`,
			`line 4 (userName "sch4"): schemas must list`,
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut)
			}
		}
		if code != 1 || !strings.Contains(out, "1 created, 0 updated, 0 unchanged, 4 failed") {
			t.Errorf("exit %d: %s", code, out)
		}
		findUser(t, db, "ok1")
	})
	t.Run("Strict", func(t *testing.T) {
		config, db := importConfigWith(t, "  quirks: false\n")
		input := `{"userName":"noschemas","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"X"}}
{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:bogus"],"userName":"bogusurn"}
{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"unlisted","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Y"}}
{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"good"}
`
		code, out, errOut := runImport(t, config, "u.ndjson", input, "")
		for _, want := range []string{
			`line 1 (userName "noschemas"): schemas is required`,
			`line 2 (userName "bogusurn"): schemas lists "urn:bogus", which this server does not declare`,
			`line 3 (userName "unlisted"): the resource holds "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", which schemas does not list`,
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut)
			}
		}
		if code != 1 || !strings.Contains(out, "1 created, 0 updated, 0 unchanged, 3 failed") {
			t.Errorf("exit %d: %s", code, out)
		}
		findUser(t, db, "good")

		// CSV rows carry no schemas column: the reader lists the core URN
		// and the extensions the header names.
		csvIn := "userName,name.givenName," + enterpriseURN + ":department\ncsvann,Ann,Sales\n"
		code, out, errOut = runImport(t, config, "u.csv", csvIn, "")
		if code != 0 || !strings.Contains(out, "1 created") {
			t.Fatalf("strict CSV: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		if ent, _ := findUser(t, db, "csvann")[enterpriseURN].(map[string]any); ent["department"] != "Sales" {
			t.Errorf("csvann's enterprise part = %v", ent)
		}
		code, out, errOut = runImport(t, config, "u.csv", "userName,schemas\nx,urn:foo\n", "")
		if code != 1 || !strings.Contains(errOut, `header column 2: "schemas": schemas is not a column`) || !strings.Contains(out, "imported 0 users") {
			t.Errorf("schemas column: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
	})
}

// TestImportNDJSONFirstLine (F2): whether the input is NDJSON does not
// hang on line 1 being valid, small or shallow JSON: a bad line 1 fails
// alone, with its own line number, and the rest is imported.
func TestImportNDJSONFirstLine(t *testing.T) {
	deep := `{"userName":"deep","x":` + strings.Repeat("[", 12000) + strings.Repeat("]", 12000) + "}"
	for _, tc := range []struct{ name, first, want string }{
		{"Malformed", `{"userName":"first_bad",}`, "line 1: the resource is not a JSON object: syntax error"},
		{"TooLarge", `{"userName":"big","displayName":"` + strings.Repeat("x", 3000) + `"}`, "line 1: the resource is larger than 2048 bytes (scim.max_body_bytes)"},
		{"TooDeep", deep, "line 1: the resource is larger than 2048 bytes"},
		{"Cut", `{"userName":"cut",`, "line 1: the resource is not a JSON object"},
		{"NotJSON", `userName=x`, "line 1: the resource is not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config, db := importConfigWith(t, "  max_body_bytes: 2048\n")
			input := tc.first + "\n{\"userName\":\"nd2\"}\n{\"userName\":\"nd3\",}\n\n{\"userName\":\"nd5\"}\n"
			code, out, errOut := runImport(t, config, "u.ndjson", input, "")
			if !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "line 3: the resource is not a JSON object") {
				t.Errorf("stderr:\n%s", errOut)
			}
			if code != 1 || !strings.Contains(out, "2 created, 0 updated, 0 unchanged, 2 failed") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			findUser(t, db, "nd2")
			findUser(t, db, "nd5")
		})
	}
	// Too deep for encoding/json, within the body bound.
	config, db := importConfig(t)
	code, out, errOut := runImport(t, config, "u.ndjson", deep+"\n{\"userName\":\"after\"}\n", "")
	if code != 1 || !strings.Contains(errOut, "line 1: the resource is not a JSON object") || !strings.Contains(out, "1 created") {
		t.Errorf("deep: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	findUser(t, db, "after")
}

// TestImportSpreadObject (F2): a User written over several lines (not a
// ListResponse, no array) is named for what it is, rather than read as
// NDJSON line by line or taken for a stream of objects.
func TestImportSpreadObject(t *testing.T) {
	config, _ := importConfig(t)
	code, out, errOut := runImport(t, config, "u.json", "{\n \"userName\": \"pp1\",\n \"resources\": [{\"userName\":\"pp2\"}]\n}\n", "")
	if code != 1 || !strings.Contains(errOut, "line 1: a JSON object over several lines that is not a SCIM ListResponse") || !strings.Contains(out, "imported 0 users") {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// TestImportListResponseByURN (F4a, F4b): a ListResponse is an object
// whose schemas lists the ListResponse URN, wherever schemas comes; a
// User with a resources key is a User; a ListResponse that gives a key
// twice is refused rather than read twice.
func TestImportListResponseByURN(t *testing.T) {
	config, db := importConfig(t)
	code, out, errOut := runImport(t, config, "u.ndjson", `{"userName":"res1","displayName":"Res One","resources":[{"userName":"inner"}]}`+"\n", "")
	if code != 0 || !strings.Contains(out, "1 created") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if u := findUser(t, db, "res1"); u["displayName"] != "Res One" {
		t.Errorf("res1 = %v", u)
	}
	if res, _ := scimGet(t, db, "/Users?filter="+url.QueryEscape(`userName eq "inner"`))["Resources"].([]any); len(res) != 0 {
		t.Errorf("a User's resources key was read as a list: %v", res)
	}

	// schemas after Resources, over several lines.
	lr := "{\n \"resources\": [\n  {\"userName\":\"lr1\"},\n  {\"userName\":\"lr2\"}\n ],\n \"schemas\": [\"urn:ietf:params:scim:api:messages:2.0:ListResponse\"],\n \"totalResults\": 2\n}\n"
	code, out, errOut = runImport(t, config, "u.json", lr, "")
	if code != 0 || !strings.Contains(out, "2 created") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	dup := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"Resources":[{"userName":"d1"}],"RESOURCES":[{"userName":"d2"}]}`
	code, out, errOut = runImport(t, config, "u.json", dup, "")
	if code != 1 || !strings.Contains(errOut, `line 1: the ListResponse holds the key "RESOURCES" twice`) {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if res, _ := scimGet(t, db, "/Users?filter="+url.QueryEscape(`userName eq "d2"`))["Resources"].([]any); len(res) != 0 {
		t.Errorf("the second Resources was read: %v", res)
	}

	code, _, errOut = runImport(t, config, "u.json", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"Resources":{"userName":"x"}}`, "")
	if code != 1 || !strings.Contains(errOut, "line 1: Resources must be an array") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// TestImportCSVHeaderSchema (F4c, F4d): a header is a schema statement:
// two columns writing one attribute (in any spelling) or a column naming
// nothing the server declares stop the import before any row.
func TestImportCSVHeaderSchema(t *testing.T) {
	config, _ := importConfig(t)
	for _, tc := range []struct{ header, want string }{
		{`userName,emails.value,emails[type eq "work"].value`, `header column 3: "emails[type eq \"work\"].value" writes emails, as column 2 ("emails.value") does`},
		{`userName,emails[type eq "work"].value,EMAILS[type eq "WORK"].VALUE`, `header column 3: "EMAILS[type eq \"WORK\"].VALUE" writes emails, as column 2`},
		{`userName,name.givenName,urn:ietf:params:scim:schemas:core:2.0:User:name.givenName`, `header column 3: "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName" writes name, as column 2`},
		{`userName,department,` + enterpriseURN + `:department`, `:depar…" writes department, as column 2 ("department")`},
		{`userName,name,name.givenName`, `header column 2: "name": name is complex`},
		{`userName,nmae.givenName`, `header column 2: "nmae.givenName": this server declares no user attribute "nmae"`},
		{`userName,id`, `header column 2: "id": id is read-only`},
	} {
		code, out, errOut := runImport(t, config, "u.csv", tc.header+"\nann,x,y\n", "")
		if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(out, "imported 0 users") {
			t.Errorf("header %q: exit %d\nstdout: %s\nstderr: %s", tc.header, code, out, errOut)
		}
	}
	// Two sub-attributes of one complex attribute, and two types of one
	// multi-valued one, are different values.
	config, db := importConfig(t)
	in := "userName,name.givenName,NAME.familyName,emails[type eq \"work\"].value,emails[type eq \"home\"].value,department\nann,Ann,A,ann@example.com,ann@home.example,Ops\n"
	code, out, errOut := runImport(t, config, "u.csv", in, "")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	ann := findUser(t, db, "ann")
	if emails, _ := ann["emails"].([]any); len(emails) != 2 || ann[enterpriseURN].(map[string]any)["department"] != "Ops" {
		t.Errorf("ann = %v", ann)
	}
}

// TestImportBOM (F5): a byte order mark before JSON is skipped, as the
// CSV reader skips it.
func TestImportBOM(t *testing.T) {
	config, db := importConfig(t)
	for name, in := range map[string]string{
		"u.ndjson": "\ufeff{\"userName\":\"bom1\"}\n{\"userName\":\"bom2\"}\n",
		"u.json":   "\ufeff[{\"userName\":\"bom3\"}]",
	} {
		if code, out, errOut := runImport(t, config, name, in, ""); code != 0 {
			t.Errorf("%s: exit %d\nstdout: %s\nstderr: %s", name, code, out, errOut)
		}
	}
	for _, n := range []string{"bom1", "bom2", "bom3"} {
		findUser(t, db, n)
	}
}

// TestImportLongUserName (F6): an error line shows at most 64 characters
// of a user name, its control characters escaped.
func TestImportLongUserName(t *testing.T) {
	config, _ := importConfig(t)
	name := "\a" + strings.Repeat("é", 5000)
	body, _ := json.Marshal(map[string]string{"userName": name})
	code, _, errOut := runImport(t, config, "u.ndjson", string(body)+"\n", "")
	want := `line 1 (userName "\a` + strings.Repeat("é", 63) + `…"): userName `
	if code != 1 || !strings.Contains(errOut, want) || len(errOut) > 400 {
		t.Errorf("exit %d\nstderr: %s", code, errOut)
	}
}

// endless reads n bytes of b repeated.
func endless(b byte, n int64) io.Reader {
	return io.LimitReader(repeatReader(b), n)
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// allocated is how many bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestImportBoundedRecords (F3): a resource over scim.max_body_bytes is
// read past, not held: it fails alone (NDJSON, array and ListResponse
// elements) and the next one is read; a CSV row over the bound, or of
// too many fields, stops the read. Before, a record was buffered whole
// (a 300 MB line took 1.7 GB).
func TestImportBoundedRecords(t *testing.T) {
	const huge = 64 << 20
	const max = 4096
	big := func(prefix, suffix string) io.Reader {
		return io.MultiReader(strings.NewReader(prefix+`{"userName":"big","x":"`), endless('x', huge), strings.NewReader(`"}`+suffix))
	}
	for _, tc := range []struct {
		name string
		in   io.Reader
		line int // of the good record after the big one
	}{
		{"NDJSON", big("", "\n{\"userName\":\"next\"}\n"), 2},
		{"Array", big("[\n", ",\n\n{\"userName\":\"next\"}]"), 4},
		{"ListResponse", big(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"Resources":[`, `,{"userName":"next"}]}`), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []importRecord
			var err error
			n := allocated(func() {
				err = readSCIMJSON(tc.in, max, func(r importRecord) error { got = append(got, r); return nil }, nil)
			})
			if err != nil || len(got) != 2 || got[0].err == nil || !strings.Contains(got[0].err.Error(), "larger than 4096 bytes") ||
				got[1].line != tc.line || string(got[1].body) != `{"userName":"next"}` {
				t.Fatalf("err %v, records %+v", err, got)
			}
			if n > 8<<20 {
				t.Errorf("reading a %d-byte resource allocated %d bytes", huge, n)
			}
		})
	}

	config, _ := importConfigWith(t, "  max_body_bytes: 4096\n")
	f, report := readConfig(config, os.LookupEnv)
	mustDo(t, report.Err())
	st, err := sqldir.Open(context.Background(), sqldir.Config{Path: filepath.Join(t.TempDir(), "x.db")})
	mustDo(t, err)
	defer st.Close()
	sc, err := scim.NewServer(f.SCIM.Config, st, scim.Options{Logger: zap.NewNop()})
	mustDo(t, err)
	for _, tc := range []struct {
		name, want string
		in         io.Reader
	}{
		{"UnclosedQuote", "line 3: a row larger than 4096 bytes", io.MultiReader(strings.NewReader("userName,displayName\nann,Ann\nbob,\"Bob"), endless('x', huge))},
		{"ManyFields", "line 3: a row of more than 1000 fields", io.MultiReader(strings.NewReader("userName,displayName\nann,Ann\nbob"), endless(',', 3000))},
		{"WideHeader", "header: larger than 4096 bytes (scim.max_body_bytes) or more than 1000 columns", io.MultiReader(strings.NewReader("userName"), endless(',', huge))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []importRecord
			var err error
			n := allocated(func() {
				err = readCSV(tc.in, sc, func(r importRecord) error { got = append(got, r); return nil })
			})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if tc.name != "WideHeader" && (len(got) != 1 || got[0].line != 2) {
				t.Errorf("records before the bad row: %+v", got)
			}
			if n > 8<<20 {
				t.Errorf("allocated %d bytes", n)
			}
		})
	}
}

// TestImportCSVMalformedRow (N5): a quote error in a row, even in its
// first field, stops the read with the line of the error and no panic,
// after the rows read before it are written; a row with the wrong number
// of fields fails alone, the first data row too.
func TestImportCSVMalformedRow(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, stored string
		created                int
	}{
		{"QuoteThenText", "userName,displayName\nica33,A\n\"x\"y,B\n", `stopped: line 3, column 3: extraneous or missing " in quoted-field`, "ica33", 1},
		{"BareQuoteFirstField", "userName,displayName\nab\"c,A\n", `stopped: line 2, column 3: bare " in non-quoted-field`, "", 0},
		{"SpaceAfterQuote", "userName,displayName\n\"ica26\" ,A\n", `stopped: line 2, column 7: extraneous or missing " in quoted-field`, "", 0},
		{"BareQuoteLaterField", "userName,displayName\nica27,A\nica28,Dwayne \"Rock\" J\n", `stopped: line 3, column 14: bare " in non-quoted-field`, "ica27", 1},
		{"UnterminatedAtEOF", "userName,displayName\nica29,A\nica30,B\n\"ica31,C", `stopped: line 4, column 9: extraneous or missing " in quoted-field`, "ica30", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config, db := importConfig(t)
			code, out, errOut := runImport(t, config, "u.csv", tc.in, "")
			if code != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "panic") {
				t.Fatalf("exit %d, want 1 and %q\nstdout: %s\nstderr: %s", code, tc.want, out, errOut)
			}
			if want := "imported " + string(rune('0'+tc.created)) + " users"; !strings.Contains(out, want) {
				t.Errorf("stdout %q lacks %q", out, want)
			}
			if tc.stored != "" {
				findUser(t, db, tc.stored)
			}
		})
	}
	t.Run("FieldCountFirstRow", func(t *testing.T) {
		config, db := importConfig(t)
		code, out, errOut := runImport(t, config, "u.csv", "userName,displayName\nann\nbob,B\n", "")
		if code != 1 || !strings.Contains(errOut, "line 2: 1 fields, the header has 2") || !strings.Contains(out, "1 created, 0 updated, 0 unchanged, 1 failed") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		findUser(t, db, "bob")
	})
}

// TestImportListResponseKeys (N7): a ListResponse key that is none of
// schemas, totalResults, itemsPerPage, startIndex and Resources (in any
// case) stops the import with its name, rather than leaving its users out
// without a word; a totalResults other than the resources read is a
// warning (an export may be paged); a User line holding a Resources key
// is that User.
func TestImportListResponseKeys(t *testing.T) {
	const lr = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],`
	for _, tc := range []struct{ name, in, want string }{
		{"Typo", lr + `"totalResults":2,"Resource":[{"userName":"ia1"},{"userName":"ia2"}]}`, `line 1: the ListResponse holds the key "Resource", which is not one of schemas, totalResults, itemsPerPage, startIndex, Resources`},
		{"TrailingSpace", lr + `"Resources":[{"userName":"im1"}],"Resources ":[{"userName":"im2"}]}`, `the key "Resources "`},
		{"UserInEnvelope", `{"userName":"io1","Resources":[{"userName":"io2"}],"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"]}`, `the key "userName"`},
		{"BadTotal", lr + `"totalResults":"two","Resources":[]}`, "totalResults must be a whole number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config, _ := importConfig(t)
			code, out, errOut := runImport(t, config, "u.json", tc.in, "")
			if code != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "warning") {
				t.Errorf("exit %d, want 1 and %q (no warning)\nstdout: %s\nstderr: %s", code, tc.want, out, errOut)
			}
		})
	}

	config, db := importConfig(t)
	// Any case of the five keys is read.
	code, out, errOut := runImport(t, config, "u.json", `{"SCHEMAS":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"TotalResults":2,"itemsperpage":2,"StartIndex":1,"resources":[{"userName":"ok1"},{"userName":"ok2"}]}`, "")
	if code != 0 || !strings.Contains(out, "2 created") || strings.Contains(errOut, "warning") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// The first page of a paged export: imported, with a warning.
	code, out, errOut = runImport(t, config, "u.json", lr+`"totalResults":5,"itemsPerPage":2,"startIndex":1,"Resources":[{"userName":"ib1"},{"userName":"ib2"}]}`, "")
	if code != 0 || !strings.Contains(out, "2 created") || !strings.Contains(errOut, "warning: the ListResponse gives totalResults 5 but holds 2 resources") {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	// Pages of one query concatenated give the query's total each.
	page := func(a, b string) string {
		return lr + `"totalResults":4,"Resources":[{"userName":"` + a + `"},{"userName":"` + b + `"}]}` + "\n"
	}
	code, out, errOut = runImport(t, config, "u.json", page("pg1", "pg2")+page("pg3", "pg4"), "")
	if code != 0 || !strings.Contains(out, "4 created") || strings.Contains(errOut, "warning") {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// In NDJSON, quirks or strict, a User with a Resources key is that
	// User (the key is an unknown attribute, ignored as in a POST body),
	// never dropped nor read as a list.
	code, out, errOut = runImport(t, config, "u.ndjson", `{"userName":"ru1","displayName":"RU","Resources":[{"userName":"ru2"}]}`+"\n", "")
	if code != 0 || !strings.Contains(out, "1 created") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if u := findUser(t, db, "ru1"); u["displayName"] != "RU" {
		t.Errorf("ru1 = %v", u)
	}
	strict, sdb := importConfigWith(t, "  quirks: false\n")
	code, out, errOut = runImport(t, strict, "u.ndjson", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"rs1","Resources":[{"userName":"rs2"}]}`+"\n", "")
	if code != 0 || !strings.Contains(out, "1 created") {
		t.Errorf("strict: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	findUser(t, sdb, "rs1")
	for n, d := range map[string]string{"ru2": db, "rs2": sdb} {
		if res, _ := scimGet(t, d, "/Users?filter="+url.QueryEscape(`userName eq "`+n+`"`))["Resources"].([]any); len(res) != 0 {
			t.Errorf("a User's Resources key was read as a list: %v", res)
		}
	}
}

// TestImportReportsInInputOrder: the failures of one batch are reported
// in the order of the input, whether decoding found them or the store
// did (decoding runs ahead of writing).
func TestImportReportsInInputOrder(t *testing.T) {
	config, _ := importConfig(t)
	file := filepath.Join(t.TempDir(), "order.ndjson")
	mustDo(t, os.WriteFile(file, []byte(`{"userName":"twice"}
{"userName":"TWICE"}
{"userName":
{"userName":"ok"}
`), 0o600))
	var out, errOut bytes.Buffer
	code := importCommand(context.Background(), importOptions{config: config, input: file, batch: 10}, nil, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s %s", code, out.String(), errOut.String())
	}
	second, third := strings.Index(errOut.String(), "line 2 "), strings.Index(errOut.String(), "line 3")
	if second < 0 || third < 0 || second > third {
		t.Errorf("failures out of input order:\n%s", errOut.String())
	}
}
