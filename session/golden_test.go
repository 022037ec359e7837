package session

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// The golden responses of test/testdata/saml are issued at
// 2027-01-01T10:00:00Z by https://idp.example.test/saml for
// https://sp.example.test, answering the request goldenRequestID; their
// assertion is valid until 10:05.
const goldenRequestID = "id-0000000000000000000000000000000000000000"

var goldenIssued = time.Date(2027, 1, 1, 10, 0, 0, 0, time.UTC)

func goldenResponse(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "test", "testdata", "saml", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recordingPages keeps the failures shown and counts the other pages;
// each page writes the status proxy's pages give it.
type recordingPages struct {
	mu        sync.Mutex
	failures  []Failure
	signedOut int
}

func (p *recordingPages) Problem(w http.ResponseWriter, _ *http.Request, f Failure) {
	p.mu.Lock()
	p.failures = append(p.failures, f)
	p.mu.Unlock()
	w.WriteHeader(map[Page]int{LoginFailed: http.StatusForbidden, AccessDenied: http.StatusForbidden, Unavailable: http.StatusServiceUnavailable,
		LogoutFailed: http.StatusForbidden}[f.Page])
}

func (p *recordingPages) Chooser(http.ResponseWriter, *http.Request, ChooserPage) {}
func (p *recordingPages) SignedOut(http.ResponseWriter, *http.Request) {
	p.mu.Lock()
	p.signedOut++
	p.mu.Unlock()
}
func (p *recordingPages) ConfirmLogout(http.ResponseWriter, *http.Request, string)               {}
func (p *recordingPages) AutoPost(http.ResponseWriter, *http.Request, string, map[string]string) {}

func (p *recordingPages) take() []Failure {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.failures
	p.failures = nil
	return f
}

// goldenManager is a Manager for the golden responses, its IdP "corp"
// with a SingleLogoutService, its clock now. With insecure, base_url is
// plain http and cookies are not Secure.
func goldenManager(t *testing.T, now func() time.Time, pages Pages, insecure bool) *Manager {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "test", "testdata", "idp.crt"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("idp.crt: no PEM block")
	}
	meta := fmt.Sprintf(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.test/saml">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/slo"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`, base64.StdEncoding.EncodeToString(blk.Bytes))
	file := filepath.Join(t.TempDir(), "idp.xml")
	if err := os.WriteFile(file, []byte(meta), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "https://sp.example.test"
	if insecure {
		base = "http://sp.example.test"
	}
	cfg := Config{BaseURL: base,
		Endpoints: Endpoints{Prefix: "/.gatehouse/", Metadata: "/.gatehouse/saml/metadata", ACS: "/.gatehouse/saml/acs",
			Login: "/.gatehouse/login", Logout: "/.gatehouse/logout", SLO: "/.gatehouse/saml/slo"},
		IdPs: []IdP{{Name: "corp", EntityID: "https://idp.example.test/saml", MetadataFile: file}}}
	cfg.Cookie.Insecure = insecure
	cfg.Cookie.SetKeys([][]byte{bytes.Repeat([]byte{7}, KeyLen)})
	m, err := New(context.Background(), cfg, Options{Logger: zap.NewNop(), Pages: pages, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// acsPost is the browser's post of a golden response to the ACS, with
// the login state of the request it answers.
func acsPost(t *testing.T, m *Manager, response []byte) *http.Request {
	t.Helper()
	token, err := randomToken()
	if err != nil {
		t.Fatal(err)
	}
	st := loginState{Token: token, RequestID: goldenRequestID, IdP: "corp", ReturnTo: "/app", Expires: m.now().Add(time.Minute)}
	sealed, err := m.sealer.seal(m.bindingCookieName(token), st.encode())
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(response)}, "RelayState": {token}}.Encode()
	r := httptest.NewRequest(http.MethodPost, "https://sp.example.test/.gatehouse/saml/acs", strings.NewReader(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(m.bindingCookie(token, sealed, 60))
	return r
}
