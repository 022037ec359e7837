package test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"gatehouse/provision/sqldir"
	"gatehouse/scim"
)

// BenchmarkSCIM measures SCIM on SQLite: creating 10,000 users over HTTP
// (users per second), then, with 100,000 users stored, a filtered eq
// lookup and a co scan (median and p99), each against the same server's
// /ServiceProviderConfig (no store work) as the in-run baseline.
func BenchmarkSCIM(b *testing.B) {
	const total, overHTTP = 100_000, 10_000
	path := filepath.Join(b.TempDir(), "scim.db")
	st, err := sqldir.Open(context.Background(), sqldir.Config{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv, err := scim.NewServer(scim.Config{Tokens: []string{scimToken}}, st, scim.Options{BaseURL: "http://bench/scim", Mount: "/scim", Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	client := hs.Client()
	do := func(method, path, body string) int {
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, hs.URL+"/scim"+path, r)
		req.Header.Set("Authorization", "Bearer "+scimToken)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for range b.N {
		start := time.Now()
		for i := range overHTTP {
			if code := do("POST", "/Users", fmt.Sprintf(`{"userName":"user-%06d","externalId":"x%06d","name":{"givenName":"G%d","familyName":"F%d"},"emails":[{"type":"work","value":"user-%06d@example.test"}],"active":true}`, i, i, i, i, i)); code != 201 {
				b.Fatalf("create %d: status %d", i, code)
			}
		}
		b.ReportMetric(float64(overHTTP)/time.Since(start).Seconds(), "created_users/s")
		seed(b, path, overHTTP, total)

		timeIt := func(n int, path string) (median, p99 time.Duration) {
			d := make([]time.Duration, n)
			for i := range n {
				s := time.Now()
				if code := do("GET", path, ""); code != 200 {
					b.Fatalf("GET %s: %d", path, code)
				}
				d[i] = time.Since(s)
			}
			slices.Sort(d)
			return d[n/2], d[n*99/100]
		}
		baseMed, baseP99 := timeIt(400, "/ServiceProviderConfig")
		eqMed, eqP99 := timeIt(400, "/Users?filter="+url.QueryEscape(fmt.Sprintf(`userName eq "USER-%06d"`, total/2+17)))
		coMed, coP99 := timeIt(40, "/Users?count=10&filter="+url.QueryEscape(`userName co "9999"`))
		b.ReportMetric(float64(baseMed.Microseconds())/1000, "baseline_median_ms")
		b.ReportMetric(float64(baseP99.Microseconds())/1000, "baseline_p99_ms")
		b.ReportMetric(float64(eqMed.Microseconds())/1000, "eq_median_ms")
		b.ReportMetric(float64(eqP99.Microseconds())/1000, "eq_p99_ms")
		b.ReportMetric(float64(coMed.Microseconds())/1000, "co_median_ms")
		b.ReportMetric(float64(coP99.Microseconds())/1000, "co_p99_ms")
		b.ReportMetric(float64(eqMed)/float64(baseMed), "eq_vs_baseline")
		b.ReportMetric(float64(coMed)/float64(baseMed), "co_vs_baseline")
	}
}

// seed fills the store up to total users with one SQL transaction (the
// first users came over SCIM; these only make the table large).
func seed(b *testing.B, path string, from, total int) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.Prepare(`INSERT INTO gatehouse_users (id, user_name, user_name_norm, external_id, email, given_name, family_name, owner, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 'G', 'F', 'scim', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`)
	if err != nil {
		b.Fatal(err)
	}
	for i := from; i < total; i++ {
		name := fmt.Sprintf("user-%06d", i)
		if _, err := stmt.Exec(fmt.Sprintf("seed-%08d", i), name, name, fmt.Sprintf("x%06d", i), name+"@example.test"); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
