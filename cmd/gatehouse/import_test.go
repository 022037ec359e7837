package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
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
	t.Setenv("TEST_GATEHOUSE_KEY", testEnv["TEST_GATEHOUSE_KEY"])
	t.Setenv("TEST_SCIM_TOKEN", importToken)
	path := writeConfig(t, goodConfig+"scim:\n  tokens: [\"${TEST_SCIM_TOKEN}\"]\n")
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
	in := &countingReader{n: 50}
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
		{"userName,USERNAME", "header column 2: USERNAME appears twice"},
		{"userName,name.", `header column 2: "name." is not an attribute path`},
	} {
		code, out, errOut := runImport(t, config, "u.csv", tc.header+"\nann,x\n", "")
		if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(out, "imported 0 users") {
			t.Errorf("header %q: exit %d\nstdout: %s\nstderr: %s", tc.header, code, out, errOut)
		}
	}
}
