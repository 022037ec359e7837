package test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"

	"gatehouse/proxy"
	"gatehouse/session"
)

// TestDiscovery: the chooser lists every IdP, the last one a browser
// chose first; a partner portal's idp hint (name or entity ID) goes
// straight to that IdP; with many IdPs the page offers a search that
// works without scripts.
func TestDiscovery(t *testing.T) {
	dir := t.TempDir()
	key := loadSigner(t, "idp")
	cfg := session.Config{BaseURL: "https://sp.example.test", Endpoints: proxy.Endpoints(proxy.DefaultPrefix)}
	names := []string{"Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises", "Wonka Industries"}
	for i, n := range names {
		id := fmt.Sprintf("idp%d", i)
		entity := fmt.Sprintf("https://%s.example.test/saml", id)
		cfg.IdPs = append(cfg.IdPs, session.IdP{Name: id, DisplayName: n, EntityID: entity,
			MetadataFile: writeMetadata(t, dir, id, entity, fmt.Sprintf("https://%s.example.test/sso", id), key)})
	}
	cfg.Cookie.SetKeys([][]byte{bytes.Repeat([]byte{7}, session.KeyLen)})
	cfg = cfg.WithDefaults()
	sm, err := session.New(context.Background(), cfg, session.Options{Logger: zap.NewNop(), Pages: proxy.NewPages(zap.NewNop())})
	if err != nil {
		t.Fatal(err)
	}
	get := func(target string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "https://sp.example.test"+target, nil)
		req.Header.Set("Accept", "text/html")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		sm.ServeLogin(rec, req)
		return rec
	}

	page := get("/.gatehouse/login?return=%2Fwiki").Body.String()
	for _, n := range names {
		if !strings.Contains(page, n) {
			t.Errorf("chooser lacks %s", n)
		}
	}
	if !strings.Contains(page, `name="q"`) || !strings.Contains(page, `name="return" value="/wiki"`) {
		t.Errorf("eight IdPs: want a search form carrying the return path:\n%s", page)
	}

	search := get("/.gatehouse/login?q=industries&return=%2Fwiki").Body.String()
	if !strings.Contains(search, "Stark Industries") || !strings.Contains(search, "Wonka Industries") || strings.Contains(search, "Globex") {
		t.Errorf("search for industries:\n%s", search)
	}
	if none := get("/.gatehouse/login?q=%3Cscript%3E").Body.String(); !strings.Contains(none, "No organisation matches") || strings.Contains(none, "<script>") {
		t.Errorf("search without matches (and escaped):\n%s", none)
	}

	// A hint by entity ID goes to that IdP and is remembered.
	rec := get("/.gatehouse/login?idp=" + "https%3A%2F%2Fidp5.example.test%2Fsaml&return=%2Fwiki")
	if rec.Code != http.StatusFound || !strings.HasPrefix(rec.Header().Get("Location"), "https://idp5.example.test/sso") {
		t.Fatalf("entity ID hint: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	var remembered *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == "gatehouse_idp" {
			remembered = c
		}
	}
	if remembered == nil || remembered.Value != "idp5" || !remembered.HttpOnly || !remembered.Secure || remembered.Path != "/.gatehouse/" {
		t.Fatalf("remembered choice cookie = %+v", remembered)
	}
	again := get("/.gatehouse/login", remembered).Body.String()
	first := strings.Index(again, `class="button"`)
	if first < 0 || !strings.Contains(again[first:first+200], "Stark Industries") || !strings.Contains(again, "last used") {
		t.Errorf("the last choice should come first, marked:\n%s", again)
	}
	if rec := get("/.gatehouse/login?idp=nope"); rec.Code != http.StatusForbidden {
		t.Errorf("unknown hint: %d", rec.Code)
	}
	// A forged cookie naming no IdP changes nothing.
	if forged := get("/.gatehouse/login", &http.Cookie{Name: "gatehouse_idp", Value: "<b>x</b>"}).Body.String(); strings.Contains(forged, "last used") {
		t.Error("a cookie naming no IdP was honoured")
	}
}
