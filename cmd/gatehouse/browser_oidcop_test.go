package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/test/oidcop"
)

// TestOIDCProviderInRealBrowser signs in to `gatehouse serve` in headless
// Chromium through a real OpenID provider (panva's oidc-provider, run by
// test/oidcop behind its TLS front): the chooser offers a SAML IdP and the
// provider, the provider logs its default account in (gatehouse sends no
// login_hint), the callback lands on the page first asked for with the
// identity headers, and signing out passes through the provider's
// end_session back to gatehouse's signed-out page. Chromium trusts the
// provider's certificate by the SPKI hash of the harness's CA
// (--ignore-certificate-errors-spki-list), so every other certificate
// check stays on. Screenshots are left as in TestDemoInRealBrowser.
func TestOIDCProviderInRealBrowser(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()

	// gatehouse's port comes first: the provider registers its callbacks.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	base := fmt.Sprintf("http://localhost:%d", port)

	secret := randomSecret(t)
	op := oidcop.Start(t, oidcop.Config{
		Clients: []oidcop.Client{{ID: "gatehouse", Secret: secret,
			RedirectURIs:           []string{base + "/.gatehouse/oidc/callback"},
			PostLogoutRedirectURIs: []string{base + "/.gatehouse/oidc/signed-out"}}},
		Accounts: []oidcop.Account{{Sub: "op-sub-dora", Claims: map[string]any{"preferred_username": "dora",
			"email": "dora@example.com", "name": "Dora Op", "groups": []string{"staff", "ops"}}}},
		DefaultAccount: "op-sub-dora",
	})

	app := httptest.NewServer(demoApp("http://127.0.0.1:1", filepath.Join(dir, "gatehouse.db")))
	t.Cleanup(app.Close)
	if err := os.WriteFile(filepath.Join(dir, "idp.xml"), []byte(idpMeta), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`version: 1
listen: 127.0.0.1:%d
base_url: %s
upstream: %s
cookie:
  insecure: true
  keys: ["${TEST_GATEHOUSE_KEY}"]
idps:
  - name: corp
    display_name: Corp SAML
    entity_id: https://idp.example.test
    metadata_file: %s
    mapping:
      user_name: uid
      groups: memberOf
  - name: op
    display_name: Real OpenID provider
    kind: oidc
    issuer: %s
    issuer_ca_file: %s
    client_id: gatehouse
    client_secret: ${TEST_OP_SECRET}
    scopes: [openid, email, profile, groups]
    mapping:
      user_name: preferred_username
      email: email
      display_name: name
      groups: groups
store:
  sqlite:
    path: %s
`, port, base, app.URL, filepath.Join(dir, "idp.xml"), op.Issuer, op.CAFile, filepath.Join(dir, "gatehouse.db"))
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TEST_GATEHOUSE_KEY": randomSecret(t), "TEST_OP_SECRET": secret}
	if err := f.prepare(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	logger, err := newLogger(f.Log, &logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- serve(ctx, f, logger, func(string) { close(listening) }) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("gatehouse log:\n%s\nprovider log:\n%s", logs.String(), op.Log())
		}
	})
	select {
	case <-listening:
	case err := <-done:
		t.Fatalf("gatehouse did not start: %v\n%s", err, logs.String())
	}

	b := launchChromium(t, "--ignore-certificate-errors-spki-list="+spkiHash(t, op.CAFile))
	shots := screenshotDir(t)

	// A protected page: the chooser, then the provider.
	b.navigate(base + "/reports?q=1")
	b.waitFor(`document.body && document.body.innerText.includes("Choose your organisation")`)
	if got := b.eval(`[...document.querySelectorAll("a.button")].map(a => a.innerText).join("|")`); got != "Corp SAML|Real OpenID provider" {
		t.Errorf("chooser offers %q", got)
	}
	b.screenshot(filepath.Join(shots, "op-chooser.png"))
	b.eval(`document.querySelector('a.button[href*="idp=op&"]').click(); "ok"`)
	b.waitFor(`document.body && document.body.innerText.includes("Hello, dora")`)
	if href := b.eval(`location.href`); href != base+"/reports?q=1" {
		t.Errorf("landed on %s, want the page first asked for", href)
	}
	text := b.eval(`document.body.innerText`)
	for _, want := range []string{"X-Forwarded-User\tdora", "X-Forwarded-Email\tdora@example.com", "X-Forwarded-Groups\tops,staff", "X-Forwarded-Display-Name\tDora Op"} {
		if !strings.Contains(text, want) {
			t.Errorf("application page lacks %q:\n%s", want, text)
		}
	}
	if row := regexp.MustCompile(`(?m)^Cookie\t(.*)$`).FindStringSubmatch(text); row != nil && strings.Contains(row[1], "gatehouse") {
		t.Errorf("gatehouse's cookie reached the application: %s", row[1])
	}
	b.screenshot(filepath.Join(shots, "op-app.png"))

	// The browser's cookies: gatehouse's on localhost are HttpOnly and
	// SameSite Lax (the callback is a cross-site navigation from the
	// provider, which Lax lets through); the login's state is gone, the
	// session and the chooser's last choice remain.
	var names []string
	opSession := ""
	for _, c := range browserCookies(t, b) {
		t.Logf("cookie %s on %s: path %s, SameSite %q, HttpOnly %v, Secure %v, session %v", c.Name, c.Domain, c.Path, c.SameSite, c.HTTPOnly, c.Secure, c.Session)
		if c.Domain == "127.0.0.1" && c.Name == "_session" {
			opSession = c.Value
		}
		if c.Domain != "localhost" {
			continue
		}
		names = append(names, c.Name)
		if !c.HTTPOnly || c.SameSite != "Lax" {
			t.Errorf("gatehouse cookie %s: HttpOnly %v, SameSite %q", c.Name, c.HTTPOnly, c.SameSite)
		}
	}
	if slices.Sort(names); strings.Join(names, " ") != "gatehouse gatehouse_idp" {
		t.Errorf("gatehouse's cookies after the login: %v", names)
	}
	if opSession == "" {
		t.Error("no session cookie of the provider's")
	}

	// Signing out: gatehouse's form, the provider's end_session (its
	// confirmation submits itself), then gatehouse's signed-out page.
	b.navigate(base + "/.gatehouse/logout")
	b.waitFor(`document.body && document.body.innerText.includes("Sign out?")`)
	b.eval(`document.querySelector('form[method=post] button').click()`)
	b.waitFor(`location.host === "localhost:` + fmt.Sprint(port) + `" && document.body && document.body.innerText.includes("Signed out")`)
	if href := b.eval(`location.href`); href != base+"/.gatehouse/oidc/signed-out" {
		t.Errorf("signed out at %s, not after the provider's end_session", href)
	}
	b.screenshot(filepath.Join(shots, "op-signed-out.png"))
	// Only the chooser's memory of the provider is left at gatehouse, and
	// the provider's session has ended.
	for _, c := range browserCookies(t, b) {
		if c.Domain == "localhost" && c.Name != "gatehouse_idp" {
			t.Errorf("after sign-out the browser still holds gatehouse's cookie %s", c.Name)
		}
		if c.Domain == "127.0.0.1" && c.Name == "_session" && c.Value == opSession {
			t.Error("after sign-out the provider's session cookie is unchanged")
		}
	}
	// The next visit: the chooser lists the provider first, and a new
	// login there (its default account logs in again).
	b.navigate(base + "/reports")
	b.waitFor(`document.body && document.body.innerText.includes("Choose your organisation")`)
	if got := b.eval(`[...document.querySelectorAll("a.button")].map(a => a.innerText).join("|")`); got != "Real OpenID provider\nlast used|Corp SAML" {
		t.Errorf("chooser after a login through the provider offers %q", got)
	}
	b.eval(`document.querySelector('a.button[href*="idp=op&"]').click(); "ok"`)
	b.waitFor(`document.body && document.body.innerText.includes("Hello, dora")`)
	t.Logf("from starting the provider to the second sign-in in Chromium: %v (the provider started in %v)", time.Since(began).Round(time.Millisecond), op.StartTime.Round(time.Millisecond))
}

// randomSecret is 32 random bytes, base64.
func randomSecret(t *testing.T) string {
	t.Helper()
	var b [32]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// spkiHash is the base64 SHA-256 of the public key of the PEM certificate
// in file, as --ignore-certificate-errors-spki-list takes it. Chromium
// accepts a chain with such a key in it (the provider's front sends its
// CA with its own certificate), and honours the flag only beside
// --user-data-dir, which launchChromium passes.
func spkiHash(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("no PEM certificate in %s", file)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

type browserCookie struct {
	Name, Value, Domain, Path, SameSite string
	HTTPOnly                            bool `json:"httpOnly"`
	Secure, Session                     bool
}

// browserCookies are all the cookies Chromium holds.
func browserCookies(t *testing.T, b *browser) []browserCookie {
	t.Helper()
	res, err := b.call("Network.getAllCookies", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ Cookies []browserCookie }
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatal(err)
	}
	return r.Cookies
}
