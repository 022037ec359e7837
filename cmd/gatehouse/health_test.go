package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVersionOutput: `version`, `--version` and `-version` print the
// version, the commit this test binary was built from (when built in a
// git checkout) and the Go version, on one line; a version set by the
// linker, as `make build` does, comes first.
func TestVersionOutput(t *testing.T) {
	bi := readBuildInfo()
	for _, arg := range []string{"version", "--version", "-version"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{arg}, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d: %s", arg, code, errOut.String())
		}
		line := out.String()
		if !strings.HasPrefix(line, "gatehouse "+bi.Version) || !strings.HasSuffix(line, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+"\n") ||
			strings.Count(line, "\n") != 1 {
			t.Errorf("%s: %q", arg, line)
		}
		if bi.Revision != "" && !strings.Contains(line, "commit "+bi.Revision) {
			t.Errorf("%s: %q lacks the commit %s", arg, line, bi.Revision)
		}
	}
	defer func(v, r string) { buildVersion, buildRevision = v, r }(buildVersion, buildRevision)
	buildVersion, buildRevision = "v1.2.3-4-gabcdef0-dirty", "abcdef0123"
	var out bytes.Buffer
	run(context.Background(), []string{"--version"}, &out, io.Discard)
	if !strings.HasPrefix(out.String(), "gatehouse v1.2.3-4-gabcdef0-dirty ") {
		t.Errorf("with the linker's version: %q", out.String())
	}
	if bi.Revision == "" && !strings.Contains(out.String(), "(commit abcdef0123-dirty") {
		t.Errorf("with the linker's revision: %q", out.String())
	}
	b := buildInfo{Version: "v1", Revision: "abc", Modified: true, Time: "2026-01-02T03:04:05Z", GoVersion: "go1.99"}
	if got, want := b.String(), "gatehouse v1 (commit abc-dirty, 2026-01-02T03:04:05Z) go1.99 "+runtime.GOOS+"/"+runtime.GOARCH; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestStateMetrics: the admin listener exports build information,
// readiness, the store's health, the IdP's metadata state (up, validUntil,
// last successful load) and the expiry of the TLS certificate, the SP's
// certificates and the IdP's signing certificate, each with the value it
// should have; /livez answers like /healthz.
func TestStateMetrics(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	dir := t.TempDir()
	now := time.Now().Truncate(time.Second)
	tlsExp, spExp, encExp, idpExp := now.Add(40*24*time.Hour), now.Add(300*24*time.Hour), now.Add(200*24*time.Hour), now.Add(90*24*time.Hour)
	validUntil := now.Add(7 * 24 * time.Hour)
	writeTestPair(t, dir, "tls", "app.example.test", false, tlsExp)
	writeTestPair(t, dir, "sp", "sp", true, spExp)
	writeTestPair(t, dir, "enc", "sp-encryption", true, encExp)
	idpCert := writeTestPair(t, dir, "idp", "idp", false, idpExp)
	meta := fmt.Sprintf(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.test" validUntil="%s">
<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/sso"/>
</md:IDPSSODescriptor></md:EntityDescriptor>`, validUntil.UTC().Format(time.RFC3339), base64.StdEncoding.EncodeToString(idpCert.Raw))
	if err := os.WriteFile(filepath.Join(dir, "idp-meta.xml"), []byte(meta), 0o600); err != nil {
		t.Fatal(err)
	}
	port, admin := freePort(t), freePort(t)
	conf := strings.Replace(goodConfig, "$DIR/idp.xml", filepath.Join(dir, "idp-meta.xml"), 1) + fmt.Sprintf(`listen: 127.0.0.1:%d
admin_listen: 127.0.0.1:%d
tls:
  cert_file: %[3]s/tls.crt
  key_file: %[3]s/tls.key
sp_key_file: %[3]s/sp.key
sp_cert_file: %[3]s/sp.crt
sp_keys:
  - key_file: %[3]s/enc.key
    cert_file: %[3]s/enc.crt
    use: encryption
`, port, admin, dir)
	serveInBackground(t, conf)
	adminURL := fmt.Sprintf("http://127.0.0.1:%d", admin)
	waitListening(t, fmt.Sprintf("127.0.0.1:%d", admin))

	for _, path := range []string{"/healthz", "/livez"} {
		if code, body := httpGet(t, adminURL+path); code != 200 || body != "ok\n" {
			t.Errorf("%s: %d %q", path, code, body)
		}
	}
	_, text := httpGet(t, adminURL+"/metrics")
	got := parseMetrics(text)
	bi := readBuildInfo()
	ts := func(t time.Time) float64 { return float64(t.Unix()) }
	want := map[string]float64{
		fmt.Sprintf(`gatehouse_build_info{goversion=%q,revision=%q,version=%q}`, bi.GoVersion, bi.revision(), bi.Version): 1,
		`gatehouse_ready`:    1,
		`gatehouse_store_up`: 1,
		// SQLite queues writes in gatehouse; nothing has waited yet.
		`gatehouse_store_write_queue_waiting`:                                         0,
		`gatehouse_store_write_queue_timeouts_total`:                                  0,
		`gatehouse_jit_coalesced_total`:                                               0,
		`gatehouse_idp_metadata_up{idp="corp"}`:                                       1,
		`gatehouse_idp_metadata_valid_until_timestamp_seconds{idp="corp"}`:            ts(validUntil),
		`gatehouse_certificate_expiry_timestamp_seconds{certificate="tls"}`:           ts(tlsExp),
		`gatehouse_certificate_expiry_timestamp_seconds{certificate="sp"}`:            ts(spExp),
		`gatehouse_certificate_expiry_timestamp_seconds{certificate="sp_encryption"}`: ts(encExp),
		`gatehouse_certificate_expiry_timestamp_seconds{certificate="idp/corp"}`:      ts(idpExp),
	}
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", name, g, ok, v)
		}
	}
	// corp's metadata is a file, read at start and on SIGHUP only: its
	// load is reported as source="file", which the refresh alert leaves
	// alone (TestDegradedDependencies covers a URL's).
	if v, ok := got[`gatehouse_idp_metadata_last_refresh_success_timestamp_seconds{idp="corp",source="file"}`]; !ok || v <= 0 {
		t.Errorf("no last load of the metadata_file: %v %v", v, ok)
	}
	if v, ok := got[`gatehouse_idp_metadata_last_refresh_success_timestamp_seconds{idp="corp",source="url"}`]; ok {
		t.Errorf("a metadata_file reported as refreshed from a URL: %v", v)
	}
	if _, ok := got["gatehouse_redis_up"]; ok {
		t.Error("gatehouse_redis_up without state.redis")
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$`)

// parseMetrics reads Prometheus text: each sample's name and labels (as
// written) to its value.
func parseMetrics(text string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if m := metricLine.FindStringSubmatch(sc.Text()); m != nil {
			if v, err := strconv.ParseFloat(m[2], 64); err == nil {
				out[m[1]] = v
			}
		}
	}
	return out
}

// writeTestPair writes name.crt and name.key in dir: a self-signed
// certificate (RSA when rsaKey, which the SP needs) expiring at notAfter.
func writeTestPair(t *testing.T, dir, name, cn string, rsaKey bool, notAfter time.Time) *x509.Certificate {
	t.Helper()
	var pub any
	var keyPEM *pem.Block
	var signer crypto.Signer
	if rsaKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		pub, signer, keyPEM = &k.PublicKey, k, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	} else {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalECPrivateKey(k)
		pub, signer, keyPEM = &k.PublicKey, k, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(keyPEM), 0o600)
	c, _ := x509.ParseCertificate(der)
	return c
}
