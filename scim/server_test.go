package scim_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"gatehouse/provision/sqldir"
	"gatehouse/scim"
	"gatehouse/scim/scimtest"
	"gatehouse/test/pgtest"
)

const (
	mount = "/.gatehouse/scim/v2"
	token = "test-token-0123456789abcdef0123456789abcdef"
)

// onPostgres switches newEnv from SQLite to PostgreSQL (TestPostgres).
var onPostgres bool

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestPostgres runs the tests that reach the store again on PostgreSQL:
// the same filters, paging, versions and corpus, pushed down as its SQL.
func TestPostgres(t *testing.T) {
	onPostgres = true
	defer func() { onPostgres = false }()
	for name, test := range map[string]func(*testing.T){
		"FilterPushdown": TestFilterPushdown, "Pagination": TestPagination, "ETags": TestETags,
		"Uniqueness": TestUniqueness, "Patch": TestPatch, "Projection": TestProjection,
		"GroupsKeepJITMemberships": TestGroupsKeepJITMemberships, "CorpusQuirks": TestCorpusQuirks, "CorpusStrict": TestCorpusStrict,
	} {
		t.Run(name, test)
	}
}

// env is a SCIM server over a fresh SQLite (or PostgreSQL) store, on
// loopback.
type env struct {
	store  *sqldir.Store
	srv    *scim.Server
	base   string
	client *http.Client
	forgot []string
}

func newEnv(t *testing.T, cfg scim.Config) *env {
	t.Helper()
	sc := sqldir.Config{Path: filepath.Join(t.TempDir(), "users.db")}
	if onPostgres {
		sc = sqldir.Config{Dialect: sqldir.Postgres, DSN: pgtest.Shared(t).Database(t)}
	}
	st, err := sqldir.Open(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{store: st}
	if cfg.Tokens == nil && cfg.TokenSHA256 == nil {
		cfg.Tokens = []string{token}
	}
	hs := httptest.NewServer(nil)
	t.Cleanup(hs.Close)
	e.base = hs.URL + mount
	e.srv, err = scim.NewServer(cfg, st, scim.Options{BaseURL: e.base, Mount: mount, Logger: zap.NewNop(),
		OnUserChange: func(id string) { e.forgot = append(e.forgot, id) }})
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
