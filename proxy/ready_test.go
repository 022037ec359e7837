package proxy

import (
	"errors"
	"strings"
	"testing"
)

// TestReadyzRedactsCredentials: a check's cause quoting a DSN or a URL
// with credentials is shown without them on the admin listener.
func TestReadyzRedactsCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"dial postgres://gh:s3cr3t@db:5432/app: refused":              "dial postgres://gh:xxxxx@db:5432/app: refused",
		"redis://:s3cr3t@redis:6379/0 unreachable":                    "redis://:xxxxx@redis:6379/0 unreachable",
		"connect host=db user=gh password=s3cr3t dbname=app failed":   "connect host=db user=gh password=xxxxx dbname=app failed",
		"sqlserver://sa@db?database=app&password='s3cr3t'&x=1 failed": "sqlserver://sa@db?database=app&password=xxxxx&x=1 failed",
		"GET https://idp.example/md?token=s3cr3t: HTTP 404":           "GET https://idp.example/md?token=xxxxx HTTP 404",
		"fetch metadata: HTTP 404":                                    "fetch metadata: HTTP 404",
	} {
		if got := redact(in); got != want || strings.Contains(got, "s3cr3t") {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestVerboseReadiness: Kubernetes-style lines; a degraded check is
// listed as failed without failing readiness, a required one fails it;
// the public form names the checks only.
func TestVerboseReadiness(t *testing.T) {
	rd := Readiness{Ready: true, Checks: []CheckResult{
		{Name: "shutdown", Required: true},
		{Name: "store", Err: errors.New("dial postgres://u:pw@db/x: refused")},
		{Name: "idp/corp"},
	}}
	detail := verboseReadiness(rd, true, false)
	want := "[+]shutdown ok\n[-]store failed: dial postgres://u:xxxxx@db/x: refused\n[+]idp/corp ok\n" +
		"degraded (not failing readiness; ?strict fails on them): store\nreadyz check passed\n"
	if detail != want {
		t.Errorf("admin verbose:\n%s\nwant:\n%s", detail, want)
	}
	if public := verboseReadiness(rd, false, false); strings.Contains(public, "dial") || !strings.Contains(public, "[-]store failed\n") {
		t.Errorf("public verbose:\n%s", public)
	}
	if strict := verboseReadiness(rd, false, true); !strings.HasSuffix(strict, "readyz check failed\n") {
		t.Errorf("strict verbose:\n%s", strict)
	}
	rd.Ready = false
	rd.Checks[0].Err = errShuttingDown
	if v := verboseReadiness(rd, true, false); !strings.Contains(v, "[-]shutdown failed: shutting down\n") || !strings.HasSuffix(v, "readyz check failed\n") {
		t.Errorf("shutting down:\n%s", v)
	}
}
