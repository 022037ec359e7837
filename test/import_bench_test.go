package test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"gatehouse/provision/sqldir"
	"gatehouse/scim"
)

const (
	importBenchUsers   = 100_000 // issue 18's seeding
	importBenchPosts   = 5_000   // the SCIM POST sample
	importBenchClients = 8       // concurrent SCIM clients, as in issue 18
)

// BenchmarkImport measures gatehouse import (issue 18) against seeding
// over SCIM, on SQLite and on PostgreSQL: the built binary imports
// 100,000 users from an NDJSON file into a fresh store, then runs again
// over the same file (everything unchanged); 8 clients POST a sample of
// 5,000 users over HTTP into another fresh store of the same kind. It
// reports users/s of each and import_vs_post, the ratio of the first
// import's rate to the POST rate. The goal is import_vs_post >= 10.
func BenchmarkImport(b *testing.B) {
	bin := buildGatehouseB(b)
	dir := b.TempDir()
	metadata := writeMetadata(b, dir, "corp", idpEntityID, idpSSO, loadSigner(b, "idp"))
	input := filepath.Join(dir, "users.ndjson")
	writeImportUsers(b, input, importBenchUsers)
	env := append(os.Environ(), "GATEHOUSE_TEST_COOKIE_KEY="+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"GATEHOUSE_TEST_SCIM_TOKEN="+scimToken)
	// The store section of the import's configuration names the bench
	// store's database; the POSTs go to another of the same kind.
	storeSection := func(cfg sqldir.Config) (string, []string) {
		if cfg.Dialect == sqldir.Postgres {
			return "store:\n  postgres:\n    dsn: ${GATEHOUSE_TEST_PG_DSN}\n", []string{"GATEHOUSE_TEST_PG_DSN=" + cfg.DSN}
		}
		return "store:\n  sqlite:\n    path: " + cfg.Path + "\n", nil
	}
	for _, be := range benchStores {
		b.Run(be.name, func(b *testing.B) {
			for range b.N {
				section, storeEnv := storeSection(be.config(b))
				config := filepath.Join(b.TempDir(), "gatehouse.yaml")
				text := strings.Replace(processConfig("https://app.example.test", "http://127.0.0.1:9", metadata, dir, ""),
					"store:\n  sqlite:\n    path: "+filepath.Join(dir, "gatehouse.db")+"\n", section, 1) +
					"scim:\n  tokens: [\"${GATEHOUSE_TEST_SCIM_TOKEN}\"]\n"
				if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
					b.Fatal(err)
				}
				run := func(want string) time.Duration {
					cmd := exec.Command(bin, "import", "--config", config, input)
					cmd.Env = append(env, storeEnv...)
					var out, errOut bytes.Buffer
					cmd.Stdout, cmd.Stderr = &out, &errOut
					start := time.Now()
					err := cmd.Run()
					took := time.Since(start)
					if err != nil || !strings.Contains(out.String(), want) {
						b.Fatalf("gatehouse import: %v\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
					}
					return took
				}
				first := run(fmt.Sprintf("%d created, 0 updated, 0 unchanged, 0 failed", importBenchUsers))
				again := run(fmt.Sprintf("0 created, 0 updated, %d unchanged, 0 failed", importBenchUsers))

				posted := postUsers(b, openBenchStore(b, be.config(b)), importBenchPosts, importBenchClients)

				importRate := float64(importBenchUsers) / first.Seconds()
				b.ReportMetric(importRate, "import_users/s")
				b.ReportMetric(float64(importBenchUsers)/again.Seconds(), "rerun_users/s")
				b.ReportMetric(posted, "post_users/s")
				b.ReportMetric(importRate/posted, "import_vs_post")
				b.Logf("%s: import of %d users %s (%.0f/s), re-run %s (%.0f/s); %d clients POST %d users at %.0f/s; ratio %.1f",
					be.name, importBenchUsers, first.Round(time.Millisecond), importRate, again.Round(time.Millisecond),
					float64(importBenchUsers)/again.Seconds(), importBenchClients, importBenchPosts, posted, importRate/posted)
			}
		})
	}
}

// importBenchUser is the SCIM resource of user i: core, name, a work
// email and the enterprise department, as an application's export has.
func importBenchUser(i int) map[string]any {
	return map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
		"userName":    fmt.Sprintf("import.user-%06d", i),
		"externalId":  fmt.Sprintf("ext-%06d", i),
		"displayName": fmt.Sprintf("Import User %d", i),
		"name":        map[string]any{"givenName": "Import", "familyName": fmt.Sprintf("User%d", i)},
		"emails":      []any{map[string]any{"type": "work", "value": fmt.Sprintf("user-%06d@example.test", i)}},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": fmt.Sprintf("Dept %d", i%40)},
	}
}

// writeImportUsers writes n users, one JSON object per line.
func writeImportUsers(b *testing.B, path string, n int) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := range n {
		if err := enc.Encode(importBenchUser(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// postUsers creates n users with one SCIM POST each over HTTP from the
// given number of concurrent clients, and returns users/s.
func postUsers(b *testing.B, st *sqldir.Store, n, clients int) float64 {
	srv, err := scim.NewServer(scim.Config{Tokens: []string{scimToken}}, st, scim.Options{BaseURL: "http://bench/scim", Mount: "/scim", Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	tr := hs.Client().Transport.(*http.Transport)
	tr.MaxIdleConnsPerHost = clients
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i], _ = json.Marshal(importBenchUser(importBenchUsers + i)) // names the import does not use
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, hs.URL+"/scim/Users", bytes.NewReader(bodies[i]))
				req.Header.Set("Authorization", "Bearer "+scimToken)
				req.Header.Set("Content-Type", "application/scim+json")
				resp, err := hs.Client().Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d SCIM POSTs failed", f, n)
	}
	return float64(n) / took.Seconds()
}

// buildGatehouseB builds the gatehouse binary for a benchmark.
func buildGatehouseB(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "gatehouse")
	if out, err := exec.Command("go", "build", "-o", bin, "gatehouse/cmd/gatehouse").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
