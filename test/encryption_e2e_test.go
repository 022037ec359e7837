package test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"

	"gatehouse/session"
)

// spKeyPair makes an RSA SP key pair and writes it as PEM files.
func spKeyPair(t testing.TB, dir, name string) (session.SPKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatehouse sp " + name},
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	k := session.SPKey{KeyFile: filepath.Join(dir, name+".key"), CertFile: filepath.Join(dir, name+".crt")}
	os.WriteFile(k.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	os.WriteFile(k.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return k, cert
}

// encrypter turns a signed assertion into an EncryptedAssertion.
type encrypter func(t testing.TB, assertion *etree.Element, cert *x509.Certificate, certFile string) *etree.Element

// withCrewjam encrypts in process with crewjam/saml's xmlenc: the key in
// the EncryptedData's KeyInfo (or, keyBeside, as a sibling of it). Its
// AES-GCM encrypter does not produce valid GCM (v0.5.1 seals a zeroed
// buffer without the IV), so GCM comes from xmlsec1.
func withCrewjam(keyTransport xmlenc.RSA, content xmlenc.BlockCipher, keyBeside bool) encrypter {
	return func(t testing.TB, a *etree.Element, cert *x509.Certificate, _ string) *etree.Element {
		keyTransport.BlockCipher = content
		data, err := keyTransport.Encrypt(cert, serialize(a), nil)
		if err != nil {
			t.Fatal(err)
		}
		ea := etree.NewElement("saml:EncryptedAssertion")
		ea.CreateAttr("xmlns:saml", nsAssertion)
		ea.AddChild(data)
		if keyBeside {
			ki := data.SelectElement("KeyInfo")
			ek := ki.SelectElement("EncryptedKey")
			ki.RemoveChild(ek)
			data.RemoveChild(ki)
			ea.AddChild(ek)
		}
		return ea
	}
}

// withXMLSec1 encrypts with Debian's xmlsec1, an implementation of XML
// Encryption independent of the one gatehouse decrypts with.
func withXMLSec1(content, keyTransport, sessionKey string) encrypter {
	return func(t testing.TB, a *etree.Element, _ *x509.Certificate, certFile string) *etree.Element {
		dir := t.TempDir()
		ea := etree.NewElement("saml:EncryptedAssertion")
		ea.CreateAttr("xmlns:saml", nsAssertion)
		ea.AddChild(a)
		os.WriteFile(filepath.Join(dir, "data.xml"), serialize(ea), 0o600)
		tmpl := `<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">
<xenc:EncryptionMethod Algorithm="` + content + `"/>
<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>
<xenc:EncryptionMethod Algorithm="` + keyTransport + `"/>
<xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>
<xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedData>`
		os.WriteFile(filepath.Join(dir, "tmpl.xml"), []byte(tmpl), 0o600)
		out, err := exec.Command("xmlsec1", "--encrypt", "--pubkey-cert-pem", certFile, "--session-key", sessionKey,
			"--xml-data", filepath.Join(dir, "data.xml"), "--node-xpath", "/*/*[local-name()='Assertion']",
			"--output", filepath.Join(dir, "out.xml"), filepath.Join(dir, "tmpl.xml")).CombinedOutput()
		if err != nil {
			t.Fatalf("xmlsec1 --encrypt (make test installs Debian's xmlsec1): %v\n%s", err, out)
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromFile(filepath.Join(dir, "out.xml")); err != nil {
			t.Fatal(err)
		}
		return doc.Root()
	}
}

const (
	xencAES128CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
	xencAES256GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
	xencAES128GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
	xencOAEP      = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
	xencRSA15     = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
	xencTripleDES = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"
)

// TestEncryptedAssertions: assertions encrypted by either implementation,
// with each accepted algorithm and either key placement, log in; RSA-1_5
// needs the IdP's consent; 3DES, an unknown key, tampering, and a second
// assertion hidden in the ciphertext are refused; with
// require_encrypted_assertions a plain assertion is refused.
// allowCBC opts the IdP in to AES-CBC content encryption.
func allowCBC(p *session.IdP) { p.AllowCBC = true }

func TestEncryptedAssertions(t *testing.T) {
	dir := t.TempDir()
	current, currentCert := spKeyPair(t, dir, "current")
	previous, previousCert := spKeyPair(t, dir, "previous")
	_, strangerCert := spKeyPair(t, dir, "stranger")
	previous.Use = session.UseEncryption
	newH := func(t *testing.T, corp func(*session.IdP)) *harness {
		return newHarness(t, options{spKeys: []session.SPKey{current, previous}, corp: corp})
	}
	login := func(t *testing.T, h *harness, enc encrypter, cert *x509.Certificate, certFile string, change func(*etree.Element)) *http.Response {
		c := h.browser()
		id, relay := h.startLogin(c, "/")
		resp, a := respond(h.spec(alice, id))
		signed := sign(t, a, h.idp)
		ea := enc(t, signed, cert, certFile)
		if change != nil {
			change(ea)
		}
		return h.post(c, serialize(assemble(resp, ea)), relay)
	}
	for _, tc := range []struct {
		name   string
		enc    encrypter
		cert   *x509.Certificate
		file   string
		corp   func(*session.IdP)
		change func(*etree.Element)
		want   int
		reason string
	}{
		{"CrewjamOAEPAES256CBC", withCrewjam(xmlenc.OAEP(), xmlenc.AES256CBC, false), currentCert, current.CertFile, allowCBC, nil, http.StatusOK, ""},
		{"CrewjamKeyBesideData", withCrewjam(xmlenc.OAEP(), xmlenc.AES128CBC, true), currentCert, current.CertFile, allowCBC, nil, http.StatusOK, ""},
		// AES-CBC is decrypted before the signature inside can be checked
		// (a padding oracle): refused unless the IdP opts in.
		{"CBCRefusedByDefault", withCrewjam(xmlenc.OAEP(), xmlenc.AES256CBC, false), currentCert, current.CertFile, nil, nil, http.StatusForbidden, "allow_cbc"},
		{"XMLSec1CBCRefusedByDefault", withXMLSec1(xencAES128CBC, xencOAEP, "aes-128"), currentCert, current.CertFile, nil, nil, http.StatusForbidden, "allow_cbc"},
		{"XMLSec1AES256GCM", withXMLSec1(xencAES256GCM, xencOAEP, "aes-256"), currentCert, current.CertFile, nil, nil, http.StatusOK, ""},
		{"XMLSec1AES128GCM", withXMLSec1(xencAES128GCM, xencOAEP, "aes-128"), currentCert, current.CertFile, nil, nil, http.StatusOK, ""},
		{"XMLSec1AES128CBC", withXMLSec1(xencAES128CBC, xencOAEP, "aes-128"), currentCert, current.CertFile, allowCBC, nil, http.StatusOK, ""},
		{"RolloverPreviousKey", withXMLSec1(xencAES256GCM, xencOAEP, "aes-256"), previousCert, previous.CertFile, nil, nil, http.StatusOK, ""},
		{"RSA15Refused", withXMLSec1(xencAES128CBC, xencRSA15, "aes-128"), currentCert, current.CertFile, allowCBC, nil, http.StatusForbidden, "PKCS #1 v1.5"},
		{"RSA15Allowed", withXMLSec1(xencAES128CBC, xencRSA15, "aes-128"), currentCert, current.CertFile,
			func(p *session.IdP) { p.AllowRSA15, p.AllowCBC = true, true }, nil, http.StatusOK, ""},
		{"TripleDESRefused", withXMLSec1(xencTripleDES, xencOAEP, "des-192"), currentCert, current.CertFile, nil, nil, http.StatusForbidden, "not accepted"},
		{"UnknownKey", withXMLSec1(xencAES256GCM, xencOAEP, "aes-256"), strangerCert, "", nil, nil, http.StatusForbidden, "no SP encryption key"},
		{"TamperedCiphertext", withXMLSec1(xencAES256GCM, xencOAEP, "aes-256"), currentCert, current.CertFile, nil, func(ea *etree.Element) {
			cv := ea.FindElement("./EncryptedData/CipherData/CipherValue")
			b := []byte(strings.TrimSpace(cv.Text()))
			if b[40] == 'A' {
				b[40] = 'B'
			} else {
				b[40] = 'A'
			}
			cv.SetText(string(b))
		}, http.StatusForbidden, "decrypt"},
		{"TwoEncryptedData", withCrewjam(xmlenc.OAEP(), xmlenc.AES256CBC, false), currentCert, current.CertFile, nil, func(ea *etree.Element) {
			ea.AddChild(ea.SelectElement("EncryptedData").Copy())
		}, http.StatusForbidden, "2 EncryptedData"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file
			if file == "" { // the stranger's certificate, written for xmlsec1
				file = filepath.Join(dir, "stranger.crt")
			}
			h := newH(t, tc.corp)
			resp := login(t, h, tc.enc, tc.cert, file, tc.change)
			body := readAll(t, resp)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if tc.want == http.StatusOK {
				if !strings.Contains(body, "user=alice") {
					t.Fatalf("login did not reach the upstream as alice: %s", body)
				}
				return
			}
			var logged string
			for _, e := range h.logs.FilterMessage("request refused").All() {
				logged += e.ContextMap()["error"].(string) + " " + e.ContextMap()["reason"].(string)
			}
			if !strings.Contains(logged, tc.reason) {
				t.Errorf("refusal logged as %q, want it to mention %q", logged, tc.reason)
			}
		})
	}

	t.Run("HiddenSecondAssertion", func(t *testing.T) {
		h := newH(t, allowCBC)
		c := h.browser()
		id, relay := h.startLogin(c, "/")
		resp, a := respond(h.spec(alice, id))
		signed := sign(t, a, h.idp)
		signed.AddChild(evilAssertion("_evil"))
		ea := withCrewjam(xmlenc.OAEP(), xmlenc.AES256CBC, false)(t, signed, currentCert, current.CertFile)
		r := h.post(c, serialize(assemble(resp, ea)), relay)
		if body := readAll(t, r); r.StatusCode != http.StatusForbidden {
			t.Fatalf("a second assertion inside the ciphertext: %d %s", r.StatusCode, body)
		}
	})
	t.Run("SignedResponseAroundEncryptedAssertion", func(t *testing.T) {
		// The Response's signature covers the ciphertext: gatehouse must
		// leave it as it came, and the login still succeeds.
		h := newH(t, nil)
		c := h.browser()
		id, relay := h.startLogin(c, "/")
		resp, a := respond(h.spec(alice, id))
		ea := withXMLSec1(xencAES256GCM, xencOAEP, "aes-256")(t, sign(t, a, h.idp), currentCert, current.CertFile)
		signedResp := sign(t, assemble(resp, ea), h.idp)
		if body := readAll(t, h.post(c, serialize(signedResp), relay)); !strings.Contains(body, "user=alice") {
			t.Fatalf("signed response with an encrypted assertion: %s", body)
		}
		// The same, with the ciphertext swapped after signing: refused.
		c = h.browser()
		id, relay = h.startLogin(c, "/")
		resp, a = respond(h.spec(alice, id))
		ea = withXMLSec1(xencAES256GCM, xencOAEP, "aes-256")(t, sign(t, a, h.idp), currentCert, current.CertFile)
		signedResp = sign(t, assemble(resp, ea), h.idp)
		_, other := respond(h.spec(mallory, id))
		swapped := withXMLSec1(xencAES256GCM, xencOAEP, "aes-256")(t, sign(t, other, h.idp), currentCert, current.CertFile)
		old := signedResp.SelectElement("EncryptedAssertion")
		signedResp.InsertChildAt(old.Index(), swapped)
		signedResp.RemoveChild(old)
		if r := h.post(c, serialize(signedResp), relay); r.StatusCode != http.StatusForbidden {
			t.Fatalf("ciphertext swapped under the Response signature: %d", r.StatusCode)
		}
	})
	t.Run("PlainRefusedWhenEncryptionRequired", func(t *testing.T) {
		h := newH(t, func(p *session.IdP) { p.RequireEncryption = true })
		r := h.login(h.browser(), "/", alice)
		if body := readAll(t, r); r.StatusCode != http.StatusForbidden {
			t.Fatalf("plain assertion with encryption required: %d %s", r.StatusCode, body)
		}
	})
}

// TestSPMetadataKeysAndSignature: during a rollover the metadata lists
// both certificates with their uses and the accepted encryption
// algorithms (AES-CBC only while an IdP has allow_cbc), and with
// sign_metadata it carries a signature that xmlsec1 verifies with the
// signing certificate, placed first as the schema wants.
func TestSPMetadataKeysAndSignature(t *testing.T) {
	dir := t.TempDir()
	current, _ := spKeyPair(t, dir, "current")
	previous, _ := spKeyPair(t, dir, "previous")
	previous.Use = session.UseEncryption
	withoutCBC := newHarness(t, options{spKeys: []session.SPKey{current, previous}, signMetadata: true})
	_, body := withoutCBC.get(withoutCBC.browser(), "/.gatehouse/saml/metadata", nil)
	if strings.Contains(body, "-cbc") || !strings.Contains(body, xencAES256GCM) {
		t.Errorf("without allow_cbc the metadata must offer AES-GCM and no AES-CBC:\n%s", body)
	}
	h := newHarness(t, options{spKeys: []session.SPKey{current, previous}, signMetadata: true, corp: allowCBC})
	code, body := h.get(h.browser(), "/.gatehouse/saml/metadata", nil)
	if code != http.StatusOK {
		t.Fatalf("metadata: %d", code)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(body); err != nil {
		t.Fatal(err)
	}
	if first := doc.Root().ChildElements()[0]; first.Tag != "Signature" {
		t.Errorf("first child of EntityDescriptor is %s, want Signature", first.Tag)
	}
	uses := map[string]int{}
	for _, kd := range doc.FindElements("//KeyDescriptor") {
		uses[kd.SelectAttrValue("use", "")]++
		if kd.SelectAttrValue("use", "") == "encryption" {
			var algs []string
			for _, em := range kd.SelectElements("EncryptionMethod") {
				algs = append(algs, em.SelectAttrValue("Algorithm", ""))
			}
			if strings.Join(algs, " ") != strings.Join([]string{xencAES256GCM, xencAES128GCM,
				"http://www.w3.org/2001/04/xmlenc#aes256-cbc", xencAES128CBC, xencOAEP, "http://www.w3.org/2009/xmlenc11#rsa-oaep"}, " ") {
				t.Errorf("encryption methods = %v", algs)
			}
		}
	}
	if uses["signing"] != 1 || uses["encryption"] != 2 {
		t.Errorf("key descriptors by use = %v, want 1 signing (current) and 2 encryption (current, previous)", uses)
	}
	path := filepath.Join(dir, "metadata.xml")
	os.WriteFile(path, []byte(body), 0o600)
	verify := func(cert string) error {
		return exec.Command("xmlsec1", "--verify", "--pubkey-cert-pem", cert, "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor", path).Run()
	}
	if err := verify(current.CertFile); err != nil {
		out, _ := exec.Command("xmlsec1", "--verify", "--pubkey-cert-pem", current.CertFile, "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor", path).CombinedOutput()
		t.Fatalf("xmlsec1 does not verify the signed metadata: %v\n%s", err, out)
	}
	if err := verify(previous.CertFile); err == nil {
		t.Error("xmlsec1 verified the metadata with the wrong certificate: the check proves nothing")
	}
	os.WriteFile(path, []byte(strings.Replace(body, "/.gatehouse/saml/acs", "/evil/acs", 1)), 0o600)
	if err := verify(current.CertFile); err == nil {
		t.Error("xmlsec1 verified tampered metadata")
	}
}

// TestIdPSigningKeyRollover: while an IdP's metadata lists two signing
// certificates, responses signed with either key log in.
func TestIdPSigningKeyRollover(t *testing.T) {
	h := newHarness(t, options{})
	other := loadSigner(t, "other")
	md := filepath.Join(t.TempDir(), "rollover.xml")
	b := idpMetadata(idpEntityID, idpSSO, h.idp)
	second := fmt.Sprintf(`<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:NameIDFormat>`, base64.StdEncoding.EncodeToString(other.cert.Raw))
	os.WriteFile(md, []byte(strings.Replace(string(b), "<md:NameIDFormat>", second, 1)), 0o600)
	h2 := newHarness(t, options{corp: func(p *session.IdP) { p.MetadataFile = md }})
	for name, key := range map[string]signer{"current": h.idp, "next": other} {
		c := h2.browser()
		id, relay := h2.startLogin(c, "/")
		resp, a := respond(h2.spec(alice, id))
		if body := readAll(t, h2.post(c, serialize(assemble(resp, sign(t, a, key))), relay)); !strings.Contains(body, "user=alice") {
			t.Errorf("response signed with the %s key: %s", name, body)
		}
	}
}
