package test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/session"
	"gatehouse/test/oidcop"
	"gatehouse/test/redistest"
)

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Logins through a real OpenID provider (panva's oidc-provider, run by
// test/oidcop), into the same mapping, JIT, headers and sessions as SAML
// logins.

// oidcAccounts are the provider's users.
var oidcAccounts = []oidcop.Account{
	{Sub: "op-sub-ann", Claims: map[string]any{"preferred_username": "ann", "email": "ann@example.com", "name": "Ann Op",
		"groups": []string{"staff", "ops"}}, ACRs: []string{oidcop.DefaultACR, "urn:gatehouse:test:mfa"}, AMR: []string{"pwd", "mfa"}},
	{Sub: "op-sub-ben", Claims: map[string]any{"preferred_username": "ben", "email": "ben@example.com", "name": "Ben Op",
		"groups": []string{"staff"}}},
}

// anotherClient is a second client of the provider, not gatehouse.
var anotherClient = oidcop.Client{ID: "another-client", Secret: "another-client-secret-0123456789",
	RedirectURIs: []string{"https://other.example.test/cb"}}

// opFor returns an options.oidc that starts the provider with the
// harness's client registered for the callbacks of base and of the
// extra origins (other replicas), and back-channel logout to base.
func opFor(extra ...string) func(t testing.TB, base string) *oidcop.Provider {
	return opWith(nil, extra...)
}

// opWith is opFor with the provider's settings adjusted by mod.
func opWith(mod func(*oidcop.Config), extra ...string) func(t testing.TB, base string) *oidcop.Provider {
	return func(t testing.TB, base string) *oidcop.Provider {
		client := oidcop.Client{ID: oidcClientID, Secret: oidcClientSecret,
			BackchannelLogoutURI: base + "/.gatehouse/oidc/backchannel-logout"}
		for _, b := range append([]string{base}, extra...) {
			client.RedirectURIs = append(client.RedirectURIs, b+"/.gatehouse/oidc/callback")
			client.PostLogoutRedirectURIs = append(client.PostLogoutRedirectURIs, b+"/.gatehouse/oidc/signed-out")
		}
		cfg := oidcop.Config{Clients: []oidcop.Client{client, anotherClient}, Accounts: oidcAccounts}
		if mod != nil {
			mod(&cfg)
		}
		return oidcop.Start(t, cfg)
	}
}

// oidcStart starts a login at gatehouse for path through the provider and
// returns the authorization URL gatehouse sent the browser to.
func (h *harness) oidcStart(browser *http.Client, path string) string {
	h.t.Helper()
	resp, err := browser.Get(h.base + "/.gatehouse/login?idp=op&return=" + url.QueryEscape(path))
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	auth := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(auth, h.op.Issuer) {
		h.t.Fatalf("login start: %d to %q", resp.StatusCode, auth)
	}
	return auth
}

// oidcLogin starts a login and logs sub in at the provider; it returns
// the callback URL the provider sent the browser to (not followed).
func (h *harness) oidcLogin(browser *http.Client, sub, path string) string {
	h.t.Helper()
	return h.authorize(sub, h.oidcStart(browser, path))
}

// authorize logs sub in at the provider through auth, in a browser of
// its own at the provider.
func (h *harness) authorize(sub, auth string) string {
	h.t.Helper()
	cb := h.op.Authorize(h.t, h.op.HTTPClient(), sub, auth)
	if !strings.Contains(cb, "/.gatehouse/oidc/callback?") {
		h.t.Fatalf("the provider sent the browser to %q", cb)
	}
	return cb
}

// getPage gets target with the browser, following gatehouse's redirects.
func getPage(t testing.TB, browser *http.Client, target string) (int, string) {
	t.Helper()
	resp, err := browser.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOIDCLoginEndToEnd: a login through the provider reaches the
// application with identity headers from the provisioned user (claims
// mapped as SAML attributes are); a repeat login writes nothing;
// RP-initiated logout goes to the provider's end_session_endpoint and
// comes back to the signed-out page.
func TestOIDCLoginEndToEnd(t *testing.T) {
	h := newHarness(t, options{realTime: true, oidc: opFor()})
	if err := h.sessions.Ready(); err != nil {
		t.Fatalf("not ready after discovery: %v", err)
	}
	browser := h.browser()
	auth := h.oidcStart(browser, "/reports")
	q, _ := url.Parse(auth)
	for _, p := range []string{"state", "nonce", "code_challenge"} {
		if q.Query().Get(p) == "" {
			t.Errorf("authorization request without %s: %s", p, auth)
		}
	}
	if q.Query().Get("code_challenge_method") != "S256" {
		t.Errorf("code_challenge_method %q", q.Query().Get("code_challenge_method"))
	}
	if code, body := getPage(t, browser, h.authorize("op-sub-ann", auth)); code != http.StatusOK {
		t.Fatalf("callback: %d %.300s", code, body)
	}
	up := h.upstream.last(t)
	if up.URL.Path != "/reports" || up.Header.Get("X-Forwarded-User") != "ann" || up.Header.Get("X-Forwarded-Email") != "ann@example.com" ||
		up.Header.Get("X-Forwarded-Groups") != "ops,staff" {
		t.Errorf("upstream: %s %v", up.URL.Path, up.Header)
	}
	// Another browser of the same person: the user as stored, unchanged.
	b2 := h.browser()
	if code, _ := getPage(t, b2, h.oidcLogin(b2, "op-sub-ann", "/")); code != http.StatusOK {
		t.Fatalf("repeat login: %d", code)
	}
	if up := h.upstream.last(t); up.Header.Get("X-Forwarded-User") != "ann" {
		t.Errorf("repeat login upstream: %v", up.Header)
	}
	// RP-initiated logout.
	req, _ := http.NewRequest(http.MethodPost, h.base+"/.gatehouse/logout", nil)
	req.Header.Set("Origin", h.base)
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	end := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(end, h.op.Issuer) || !strings.Contains(end, "client_id="+oidcClientID) {
		t.Fatalf("logout: %d to %q", resp.StatusCode, end)
	}
	if back := h.op.Logout(t, h.op.HTTPClient(), end); !strings.HasPrefix(back, h.base+"/.gatehouse/oidc/signed-out") {
		t.Errorf("the provider sent the browser back to %q", back)
	}
	before := len(h.upstream.all())
	getPage(t, browser, h.base+"/reports")
	if len(h.upstream.all()) != before {
		t.Error("the session outlived the logout")
	}
}

// TestOIDCRefusals: what the provider's answer or the browser's request
// can get wrong, each refused with nothing admitted: a tampered ID token,
// alg none, a token signed for a wrong nonce, one for another client, an
// expired one, a replayed callback, a replayed code, a callback without
// this browser's login state, and the provider's error.
func TestOIDCRefusals(t *testing.T) {
	// ID tokens live a minute, so that one can expire while its login is
	// still young.
	h := newHarness(t, options{realTime: true, oidc: opWith(func(c *oidcop.Config) { c.IDTokenTTL = time.Minute })})
	refused := func(name string, browser *http.Client, cb string) {
		t.Helper()
		before := len(h.upstream.all())
		getPage(t, browser, cb)
		getPage(t, browser, h.base+"/private")
		if n := len(h.upstream.all()); n != before {
			t.Errorf("%s: admitted (%d requests reached the application)", name, n-before)
		}
	}
	// Tampered payload with the signature kept, and alg none.
	h.op.TamperIDToken(func(_, p map[string]any) { p["preferred_username"] = "root" }, true)
	b := h.browser()
	refused("tampered", b, h.oidcLogin(b, "op-sub-ann", "/"))
	h.op.Tamper(func(r *http.Request, status int, header http.Header, body []byte) []byte {
		if !strings.HasSuffix(r.URL.Path, "/token") {
			return body
		}
		out, err := oidcop.EditTokenResponse(body, oidcop.AlgNone)
		if err != nil {
			t.Error(err)
		}
		return out
	})
	b = h.browser()
	refused("alg none", b, h.oidcLogin(b, "op-sub-ann", "/"))
	h.op.Tamper(nil)

	// A token the provider signed for another nonce.
	b = h.browser()
	auth := h.oidcStart(b, "/")
	refused("wrong nonce", b, h.authorize("op-sub-ann", strings.Replace(auth, "nonce=", "nonce=evil", 1)))

	// A token the provider signed for another client, with this login's
	// nonce, put in place of gatehouse's.
	b = h.browser()
	auth = h.oidcStart(b, "/")
	au, _ := url.Parse(auth)
	other := h.tokenForAnotherClient(au.Query().Get("nonce"))
	h.op.Tamper(func(r *http.Request, status int, header http.Header, body []byte) []byte {
		if !strings.HasSuffix(r.URL.Path, "/token") {
			return body
		}
		out, _ := oidcop.EditTokenResponse(body, func(string) (string, error) { return other, nil })
		return out
	})
	refused("another client's token", b, h.authorize("op-sub-ann", auth))
	h.op.Tamper(nil)

	// Expired: the callback arrives after the token's exp, plus the
	// clock skew, while the login itself is still within its time.
	b = h.browser()
	auth = h.oidcStart(b, "/")
	cb := h.authorize("op-sub-ann", auth)
	h.clock.Advance(4 * time.Minute)
	refused("expired", b, cb)
	h.clock.Advance(-4 * time.Minute)

	// Replays: the same callback twice in one browser; the code with a
	// fresh login state; a callback in a browser that started no login.
	b = h.browser()
	cb = h.oidcLogin(b, "op-sub-ben", "/")
	if code, _ := getPage(t, b, cb); code != http.StatusOK {
		t.Fatalf("a good login: %d", code)
	}
	fresh := h.browser()
	refused("replayed callback elsewhere", fresh, cb)
	b2 := h.browser()
	auth = h.oidcStart(b2, "/")
	st := mustQuery(t, auth, "state")
	cbu, _ := url.Parse(cb)
	q := cbu.Query()
	q.Set("state", st)
	cbu.RawQuery = q.Encode()
	refused("replayed code", b2, cbu.String())

	// The provider's own error comes back as a refused login.
	b = h.browser()
	auth = h.oidcStart(b, "/")
	refused("provider error", b, h.base+"/.gatehouse/oidc/callback?error=access_denied&state="+url.QueryEscape(mustQuery(t, auth, "state"))+"&iss="+url.QueryEscape(h.op.Issuer))
	// A callback for a provider that is not the login's (RFC 9207 iss).
	b = h.browser()
	cb = h.oidcLogin(b, "op-sub-ann", "/")
	cbu, _ = url.Parse(cb)
	q = cbu.Query()
	q.Set("iss", "https://evil.example.test")
	cbu.RawQuery = q.Encode()
	refused("wrong iss", b, cbu.String())
}

func mustQuery(t *testing.T, raw, name string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Query().Get(name) == "" {
		t.Fatalf("%s has no %s", raw, name)
	}
	return u.Query().Get(name)
}

// tokenForAnotherClient has the provider issue an ID token to
// anotherClient for the given nonce.
func (h *harness) tokenForAnotherClient(nonce string) string {
	h.t.Helper()
	verifier := "another-client-verifier-0123456789012345678901234567"
	q := url.Values{"client_id": {anotherClient.ID}, "response_type": {"code"}, "scope": {"openid"},
		"redirect_uri": {anotherClient.RedirectURIs[0]}, "state": {"s"}, "nonce": {nonce},
		"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}}
	cb := h.op.Authorize(h.t, h.op.HTTPClient(), "op-sub-ann", h.op.Issuer+"/auth?"+q.Encode())
	u, _ := url.Parse(cb)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {anotherClient.RedirectURIs[0]},
		"code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, h.op.Issuer+"/token", strings.NewReader(form.Encode()))
	req.SetBasicAuth(anotherClient.ID, anotherClient.Secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.op.HTTPClient().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.IDToken == "" {
		h.t.Fatalf("another client's token: %d %v", resp.StatusCode, err)
	}
	return out.IDToken
}

// TestOIDCKeyRotation: the provider rotates its signing keys (and drops
// the old ones); the next login verifies with the new key, read without
// a restart.
func TestOIDCKeyRotation(t *testing.T) {
	h := newHarness(t, options{realTime: true, oidc: opFor()})
	b := h.browser()
	if code, _ := getPage(t, b, h.oidcLogin(b, "op-sub-ann", "/")); code != http.StatusOK {
		t.Fatalf("before rotation: %d", code)
	}
	h.op.RotateKeys(t, true)
	h.clock.Advance(time.Minute) // past the key cache's least refetch interval
	b = h.browser()
	if code, body := getPage(t, b, h.oidcLogin(b, "op-sub-ben", "/")); code != http.StatusOK {
		t.Fatalf("after rotation: %d %.300s", code, body)
	}
}

// TestOIDCStepUp: a path that needs an acr value sends the user back to
// the provider with acr_values and prompt=login, and admits the login
// made with it; a login made without it is refused.
func TestOIDCStepUp(t *testing.T) {
	// (The provider puts acr and amr in every ID token; see test/oidcop.)
	h := newHarness(t, options{realTime: true, oidc: opFor(), oidcIdP: func(p *session.IdP) {
		p.AuthnContext = []string{"urn:gatehouse:test:mfa", "amr:mfa"}
	}})
	b := h.browser()
	auth := h.oidcStart(b, "/")
	if got := mustQuery(t, auth, "acr_values"); got != "urn:gatehouse:test:mfa" {
		t.Errorf("acr_values %q", got)
	}
	if code, body := getPage(t, b, h.authorize("op-sub-ann", auth)); code != http.StatusOK {
		t.Fatalf("ann has mfa: %d %.300s", code, body)
	}
	b = h.browser()
	if code, _ := getPage(t, b, h.oidcLogin(b, "op-sub-ben", "/")); code == http.StatusOK {
		t.Error("ben, who has no mfa, was admitted")
	}
}

// TestOIDCBackchannelLogoutAcrossReplicas: two replicas share Redis (and
// the cookie keys); a user logs in on one; the provider's logout token,
// posted to the other, ends the session on both. A replayed or forged
// token is refused.
func TestOIDCBackchannelLogoutAcrossReplicas(t *testing.T) {
	rds := redistest.Start(t)
	const entity = "https://gatehouse.example.test/saml/metadata"
	var op *oidcop.Provider
	a := newHarness(t, options{realTime: true, entityID: entity, state: redisState(t, rds.Addr), oidc: func(t testing.TB, base string) *oidcop.Provider {
		op = opFor()(t, base)
		return op
	}})
	b := newHarness(t, options{realTime: true, entityID: entity, state: redisState(t, rds.Addr), store: a.store,
		oidc: func(testing.TB, string) *oidcop.Provider { return op }})
	browser := b.browser()
	// Log in on a; carry the session cookie to b, as a load balancer would.
	ab := a.browser()
	if code, _ := getPage(t, ab, a.oidcLogin(ab, "op-sub-ann", "/")); code != http.StatusOK {
		t.Fatalf("login on a: %d", code)
	}
	au, _ := url.Parse(a.base)
	bu, _ := url.Parse(b.base)
	browser.Jar.SetCookies(bu, ab.Jar.Cookies(au))
	before := len(b.upstream.all())
	if code, _ := getPage(t, browser, b.base+"/on-b"); code != http.StatusOK || len(b.upstream.all()) != before+1 {
		t.Fatalf("the session on b: %d", code)
	}
	// The provider logs ann out (its back-channel URI is a's).
	sid := a.sessionIndexOf(t, ab)
	op.BackchannelLogout(t, oidcClientID, "op-sub-ann", sid)
	deadline := time.Now().Add(5 * time.Second)
	for {
		before = len(b.upstream.all())
		getPage(t, browser, b.base+"/after")
		if len(b.upstream.all()) == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the session on b outlived the back-channel logout")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before = len(a.upstream.all())
	getPage(t, ab, a.base+"/after")
	if len(a.upstream.all()) != before {
		t.Error("the session on a outlived the back-channel logout")
	}
	// Forged: a logout token signed by nobody the provider knows.
	forged := url.Values{"logout_token": {"eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0."}}
	resp, err := http.PostForm(a.base+"/.gatehouse/oidc/backchannel-logout", forged)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("forged logout token: %d, want 400", resp.StatusCode)
	}
}

// sessionIndexOf reads the sid that the browser's session at h carries
// (the ID token's), from the audit of its login.
func (h *harness) sessionIndexOf(t *testing.T, browser *http.Client) string {
	t.Helper()
	u, _ := url.Parse(h.base)
	req := httptest.NewRequest(http.MethodGet, h.base+"/", nil)
	for _, c := range browser.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	s, ok := h.sessions.Load(req)
	if !ok || s.SessionIndex == "" {
		t.Fatalf("no session with a sid in the browser: %+v %v", s, ok)
	}
	return s.SessionIndex
}

// TestOIDCUserLifecycleOwnedBySCIM: an OpenID Connect user goes through
// the same JIT and SCIM rules as a SAML one: SCIM deactivates it and its
// next login is refused (never revived); SCIM deletes it and its next
// login is refused too (a tombstone), not a new user.
func TestOIDCUserLifecycleOwnedBySCIM(t *testing.T) {
	h := newHarness(t, options{realTime: true, scim: true, oidc: opFor()})
	b := h.browser()
	if code, _ := getPage(t, b, h.oidcLogin(b, "op-sub-ben", "/")); code != http.StatusOK {
		t.Fatalf("first login: %d", code)
	}
	code, list := h.scimDo(http.MethodGet, `/Users?filter=userName%20eq%20%22ben%22`, "")
	res, _ := list["Resources"].([]any)
	if code != http.StatusOK || len(res) != 1 {
		t.Fatalf("SCIM finds ben: %d %v", code, list)
	}
	id := res[0].(map[string]any)["id"].(string)
	if code, _ := h.scimDo(http.MethodPatch, "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`); code != http.StatusOK {
		t.Fatalf("deactivate: %d", code)
	}
	before := len(h.upstream.all())
	b = h.browser()
	getPage(t, b, h.oidcLogin(b, "op-sub-ben", "/"))
	if len(h.upstream.all()) != before {
		t.Error("a user SCIM deactivated logged in through the OpenID provider")
	}
	if code, _ := h.scimDo(http.MethodDelete, "/Users/"+id, ""); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	b = h.browser()
	getPage(t, b, h.oidcLogin(b, "op-sub-ben", "/"))
	if len(h.upstream.all()) != before {
		t.Error("a user SCIM deleted logged in again through the OpenID provider")
	}
	if code, list := h.scimDo(http.MethodGet, `/Users?filter=userName%20eq%20%22ben%22`, ""); code != http.StatusOK || list["totalResults"].(float64) != 0 {
		t.Errorf("after the refused login: %d %v", code, list)
	}
}
