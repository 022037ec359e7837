package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"go.uber.org/zap"
)

type nopPages struct{}

func (nopPages) Problem(http.ResponseWriter, *http.Request, Failure)                    {}
func (nopPages) Chooser(http.ResponseWriter, *http.Request, ChooserPage)                {}
func (nopPages) SignedOut(http.ResponseWriter, *http.Request)                           {}
func (nopPages) ConfirmLogout(http.ResponseWriter, *http.Request, string)               {}
func (nopPages) AutoPost(http.ResponseWriter, *http.Request, string, map[string]string) {}

type keyPair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
	file string // the certificate as PEM
}

func newKeyPair(t *testing.T, dir, name string) keyPair {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	file := filepath.Join(dir, name+".pem")
	os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return keyPair{key: k, cert: c, file: file}
}

// aggregate is a federation's metadata: two IdPs, with validUntil and
// cacheDuration when given, signed by signer.
func aggregate(t *testing.T, signer, idpKey keyPair, validUntil time.Time, cacheDuration string) []byte {
	t.Helper()
	cert := base64.StdEncoding.EncodeToString(idpKey.cert.Raw)
	var attrs string
	if !validUntil.IsZero() {
		attrs += ` validUntil="` + validUntil.UTC().Format(time.RFC3339) + `"`
	}
	if cacheDuration != "" {
		attrs += ` cacheDuration="` + cacheDuration + `"`
	}
	entity := func(host, org string) string {
		return `<md:EntityDescriptor entityID="https://` + host + `/idp"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + cert + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://` + host + `/sso"/>
</md:IDPSSODescriptor><md:Organization><md:OrganizationName xml:lang="en">` + org + `</md:OrganizationName><md:OrganizationDisplayName xml:lang="en">` + org +
			`</md:OrganizationDisplayName><md:OrganizationURL xml:lang="en">https://` + host + `/</md:OrganizationURL></md:Organization></md:EntityDescriptor>`
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(`<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="fed-md"` +
		attrs + `>` + entity("uni-a.example.test", "University A") + entity("uni-b.example.test", "University B") + `</md:EntitiesDescriptor>`); err != nil {
		t.Fatal(err)
	}
	ctx, err := dsig.NewSigningContext(signer.key, [][]byte{signer.cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod)
	signed, err := ctx.SignEnveloped(doc.Root())
	if err != nil {
		t.Fatal(err)
	}
	doc.SetRoot(signed)
	b, _ := doc.WriteToBytes()
	return b
}

func unsigned(t *testing.T, signed []byte) []byte {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(signed); err != nil {
		t.Fatal(err)
	}
	doc.Root().RemoveChild(doc.Root().SelectElement("Signature"))
	b, _ := doc.WriteToBytes()
	return b
}

// mdServer serves whatever doc holds, or fails with status.
type mdServer struct {
	*httptest.Server
	mu      sync.Mutex
	doc     []byte
	status  int
	fetches atomic.Int64
}

func newMDServer(t *testing.T, doc []byte) *mdServer {
	s := &mdServer{doc: doc, status: http.StatusOK}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != http.StatusOK {
			w.WriteHeader(s.status)
			return
		}
		w.Write(s.doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *mdServer) set(doc []byte, status int) {
	s.mu.Lock()
	s.doc, s.status = doc, status
	s.mu.Unlock()
}

type fedEnv struct {
	dir   string
	srv   *mdServer
	now   time.Time
	certs []string
}

func (e *fedEnv) manager(t *testing.T) (*Manager, error) {
	t.Helper()
	cfg := Config{BaseURL: "https://sp.example.test", MetadataCacheDir: e.dir,
		Endpoints: Endpoints{Prefix: "/.gatehouse/", Metadata: "/.gatehouse/saml/metadata", ACS: "/.gatehouse/saml/acs", Login: "/.gatehouse/login", Logout: "/.gatehouse/logout"}}
	cfg.Cookie.SetKeys([][]byte{bytes.Repeat([]byte{1}, KeyLen)})
	for _, host := range []string{"uni-a", "uni-b"} {
		cfg.IdPs = append(cfg.IdPs, IdP{Name: host, EntityID: "https://" + host + ".example.test/idp", MetadataURL: e.srv.URL + "/federation.xml",
			MetadataSigningCerts: e.certs})
	}
	return New(context.Background(), cfg, Options{Logger: zap.NewNop(), Pages: nopPages{}, HTTPClient: e.srv.Client(),
		Now: func() time.Time { return e.now }})
}

func TestFederationMetadata(t *testing.T) {
	dir := t.TempDir()
	fed := newKeyPair(t, dir, "federation")
	next := newKeyPair(t, dir, "federation-next")
	stranger := newKeyPair(t, dir, "stranger")
	idpKey := newKeyPair(t, dir, "idp")
	now := time.Date(2027, 1, 1, 10, 0, 0, 0, time.UTC)

	t.Run("SignedAggregateLoadsOnce", func(t *testing.T) {
		e := &fedEnv{dir: t.TempDir(), srv: newMDServer(t, aggregate(t, fed, idpKey, now.Add(48*time.Hour), "PT6H")), now: now, certs: []string{fed.file}}
		m, err := e.manager(t)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Ready(); err != nil {
			t.Fatalf("Ready() = %v", err)
		}
		if n := e.srv.fetches.Load(); n != 1 {
			t.Errorf("aggregate fetched %d times for two IdPs, want 1", n)
		}
		if got := m.byName["uni-b"].displayName(); got != "University B" {
			t.Errorf("display name = %q, want the metadata's organisation", got)
		}
		if want := now.Add(6 * time.Hour); !m.byName["uni-a"].next.Equal(want) {
			t.Errorf("next refresh %v, want %v (cacheDuration)", m.byName["uni-a"].next, want)
		}
		// Due: read again, once for both IdPs.
		e.now = now.Add(7 * time.Hour)
		m.refreshDue(context.Background(), 24*time.Hour)
		if n := e.srv.fetches.Load(); n != 2 {
			t.Errorf("%d fetches after the cacheDuration passed, want 2", n)
		}
		if want := e.now.Add(6 * time.Hour); !m.byName["uni-b"].next.Equal(want) {
			t.Errorf("next refresh %v, want %v", m.byName["uni-b"].next, want)
		}
	})

	for name, tc := range map[string]struct {
		doc   []byte
		certs []string
		want  string
	}{
		"Tampered": {bytes.Replace(aggregate(t, fed, idpKey, time.Time{}, ""), []byte("https://uni-a.example.test/sso"), []byte("https://evil.example.test/sso"), 1),
			[]string{fed.file}, "signature not valid"},
		"SignedByStranger": {aggregate(t, stranger, idpKey, time.Time{}, ""), []string{fed.file}, "signature not valid"},
		"Unsigned":         {unsigned(t, aggregate(t, fed, idpKey, time.Time{}, "")), []string{fed.file}, "signature"},
		// Expired both on the test's clock and on CheckMetadata's real one.
		"Expired": {aggregate(t, fed, idpKey, time.Now().Add(-time.Minute), ""), []string{fed.file}, "expired"},
	} {
		t.Run(name, func(t *testing.T) {
			e := &fedEnv{dir: t.TempDir(), srv: newMDServer(t, tc.doc), now: now, certs: tc.certs}
			m, err := e.manager(t)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Ready(); err == nil {
				t.Fatal("refused metadata was loaded")
			}
			if errs := CheckMetadata(context.Background(), e.srv.Client(), []IdP{m.idps[0].cfg}); len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want) {
				t.Errorf("CheckMetadata = %v, want %q", errs, tc.want)
			}
		})
	}

	t.Run("RolloverTwoCertificates", func(t *testing.T) {
		e := &fedEnv{dir: t.TempDir(), srv: newMDServer(t, aggregate(t, next, idpKey, time.Time{}, "")), now: now, certs: []string{fed.file, next.file}}
		m, err := e.manager(t)
		if err != nil || m.Ready() != nil {
			t.Fatalf("metadata signed by the next certificate: %v %v", err, m.Ready())
		}
	})

	t.Run("RefreshFailureKeepsLastGood", func(t *testing.T) {
		e := &fedEnv{dir: t.TempDir(), srv: newMDServer(t, aggregate(t, fed, idpKey, now.Add(48*time.Hour), "")), now: now, certs: []string{fed.file}}
		m, err := e.manager(t)
		if err != nil || m.Ready() != nil {
			t.Fatal(err, m.Ready())
		}
		e.srv.set(nil, http.StatusInternalServerError)
		e.now = now.Add(25 * time.Hour)
		m.refreshDue(context.Background(), 24*time.Hour)
		if err := m.Ready(); err != nil {
			t.Fatalf("a failed refresh dropped the last good metadata: %v", err)
		}
		if want := e.now.Add(5 * time.Minute); !m.byName["uni-a"].next.Equal(want) {
			t.Errorf("retry at %v, want %v", m.byName["uni-a"].next, want)
		}
		// A new process while the URL is down starts from the copy on disk.
		m2, err := e.manager(t)
		if err != nil || m2.Ready() != nil {
			t.Fatalf("start with the URL down: %v %v, want the last good copy from metadata_cache_dir", err, m2.Ready())
		}
		// Past validUntil, with the URL still down, the IdP is unloaded.
		e.now = now.Add(49 * time.Hour)
		m.refreshDue(context.Background(), 24*time.Hour)
		if err := m.Ready(); err == nil {
			t.Error("metadata past its validUntil is still in use")
		}
	})

	t.Run("TamperedCacheRefused", func(t *testing.T) {
		e := &fedEnv{dir: t.TempDir(), srv: newMDServer(t, aggregate(t, fed, idpKey, time.Time{}, "")), now: now, certs: []string{fed.file}}
		if _, err := e.manager(t); err != nil {
			t.Fatal(err)
		}
		path := cachePath(e.dir, e.srv.URL+"/federation.xml")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("no copy kept: %v", err)
		}
		os.WriteFile(path, bytes.Replace(b, []byte("uni-a.example.test/sso"), []byte("evil.example.test/sso"), 1), 0o600)
		e.srv.set(nil, http.StatusBadGateway)
		m, err := e.manager(t)
		if err != nil {
			t.Fatal(err)
		}
		if m.Ready() == nil {
			t.Error("a tampered copy on disk was loaded")
		}
	})
}

func TestParseXSDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"PT6H": 6 * time.Hour, "P1D": 24 * time.Hour, "PT30M": 30 * time.Minute, "PT1.5S": 1500 * time.Millisecond} {
		if got, err := parseXSDuration(in); err != nil || got != want {
			t.Errorf("parseXSDuration(%q) = %v %v, want %v", in, got, err, want)
		}
	}
	if _, err := parseXSDuration("6 hours"); err == nil {
		t.Error("accepted a non-duration")
	}
}
