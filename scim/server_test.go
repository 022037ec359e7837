package scim_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"

	"gatehouse/provision"
	"gatehouse/provision/storetest/realstore"
	"gatehouse/scim"
	"gatehouse/scim/scimtest"
	"gatehouse/test/pgtest"
)

const (
	mount = "/.gatehouse/scim/v2"
	token = "test-token-0123456789abcdef0123456789abcdef"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestPostgres runs the tests that reach the store again on PostgreSQL:
// the same filters, paging, versions and corpus, pushed down as its SQL.
// newEnv picks PostgreSQL for every test run under it (onPostgres).
func TestPostgres(t *testing.T) {
	if !onPostgres(t) {
		t.Fatalf("onPostgres does not recognise %s: rename it there too", t.Name())
	}
	for name, test := range map[string]func(*testing.T){
		"FilterPushdown": TestFilterPushdown, "Pagination": TestPagination, "ETags": TestETags,
		"Uniqueness": TestUniqueness, "Patch": TestPatch, "Projection": TestProjection,
		"GroupsKeepJITMemberships": TestGroupsKeepJITMemberships, "CorpusQuirks": TestCorpusQuirks, "CorpusStrict": TestCorpusStrict,
	} {
		t.Run(name, test)
	}
}

// onPostgres reports whether t runs under TestPostgres. The choice of
// store follows from the test itself, not from a package variable that
// TestPostgres would set and restore.
func onPostgres(t *testing.T) bool {
	return t.Name() == "TestPostgres" || strings.HasPrefix(t.Name(), "TestPostgres/")
}

// env is a SCIM server over a fresh SQLite (or PostgreSQL) store, on
// loopback. The store comes from realstore, so these tests see it only as
// a provision.Store, as the server does.
type env struct {
	store  provision.Store
	srv    *scim.Server
	base   string
	client *http.Client
	forgot []string
	mu     sync.Mutex // guards forgot against concurrent requests
}

func newEnv(t *testing.T, cfg scim.Config) *env {
	t.Helper()
	open := realstore.SQLite
	if onPostgres(t) {
		open = realstore.Postgres
	}
	e := &env{store: open(t)}
	if cfg.Tokens == nil && cfg.TokenSHA256 == nil {
		cfg.Tokens = []string{token}
	}
	hs := httptest.NewServer(nil)
	t.Cleanup(hs.Close)
	e.base = hs.URL + mount
	var err error
	e.srv, err = scim.NewServer(cfg, e.store, scim.Options{BaseURL: e.base, Mount: mount, Logger: zap.NewNop(),
		OnUserChange: func(id string) { e.mu.Lock(); e.forgot = append(e.forgot, id); e.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = e.srv
	e.client = hs.Client()
	return e
}

// do sends one request with the valid token and returns status and body.
func (e *env) do(t *testing.T, method, path, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestCorpusQuirks(t *testing.T) {
	e := newEnv(t, scim.Config{})
	scimtest.Replay(t, scimtest.Options{Base: e.base, Token: token, Client: e.client})
}

func TestCorpusStrict(t *testing.T) {
	off := false
	e := newEnv(t, scim.Config{Quirks: &off})
	scimtest.Replay(t, scimtest.Options{Base: e.base, Token: token, Client: e.client, Strict: true})
}
