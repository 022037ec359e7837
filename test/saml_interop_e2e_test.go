package test

import (
	"crypto/x509"
	"encoding/xml"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"gatehouse/session"
)

const (
	fmtEmail     = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	mdEntityDesc = "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor"
)

// spMetadataDoc fetches and parses the SP metadata, with crewjam/saml's
// reader too.
func spMetadataDoc(t *testing.T, h *harness) (string, *etree.Element) {
	t.Helper()
	code, body := h.get(h.browser(), "/.gatehouse/saml/metadata", nil)
	if code != http.StatusOK {
		t.Fatalf("metadata: %d %s", code, body)
	}
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal([]byte(body), &ed); err != nil || len(ed.SPSSODescriptors) != 1 {
		t.Fatalf("crewjam/saml does not read the metadata: %v\n%s", err, body)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(body); err != nil {
		t.Fatal(err)
	}
	return body, doc.Root()
}

// xmlsecVerify runs xmlsec1 (Debian's xmlsec1, installed by make test) on
// the metadata with the certificate in certFile.
func xmlsecVerify(t *testing.T, body, certFile string) error {
	t.Helper()
	if _, err := exec.LookPath("xmlsec1"); err != nil {
		t.Fatal("xmlsec1 is missing (make test installs Debian's xmlsec1)")
	}
	path := filepath.Join(t.TempDir(), "metadata.xml")
	os.WriteFile(path, []byte(body), 0o600)
	out, err := exec.Command("xmlsec1", "--verify", "--pubkey-cert-pem", certFile, "--id-attr:ID", mdEntityDesc, path).CombinedOutput()
	if err != nil {
		return &xmlsecError{err, string(out)}
	}
	return nil
}

type xmlsecError struct {
	err error
	out string
}

func (e *xmlsecError) Error() string { return e.err.Error() + ": " + e.out }

// TestSPMetadataAdvertisesWhatIsImplemented: the SP metadata offers only
// the HTTP-POST ACS (no HTTP-Artifact: gatehouse resolves no artifacts),
// no empty NameIDFormat (the formats its IdPs are asked for, or none), no
// validUntil unless sp_metadata_valid_for says (then that far from when it
// is served, with a cacheDuration), and, with a signing key, an enveloped
// signature that xmlsec1 and goxmldsig verify with the SP certificate
// (sign_metadata: false and no key publish it unsigned).
func TestSPMetadataAdvertisesWhatIsImplemented(t *testing.T) {
	dir := t.TempDir()
	spKey, spCert := spKeyPair(t, dir, "sp")
	other, _ := spKeyPair(t, dir, "other")
	common := func(t *testing.T, body string, root *etree.Element) {
		t.Helper()
		for _, acs := range root.FindElements("//AssertionConsumerService") {
			if b := acs.SelectAttrValue("Binding", ""); b != bindingPOST {
				t.Errorf("ACS with binding %s advertised", b)
			}
		}
		if len(root.FindElements("//AssertionConsumerService")) != 1 || strings.Contains(body, "HTTP-Artifact") {
			t.Errorf("want exactly one ACS, HTTP-POST, and no Artifact binding:\n%s", body)
		}
		for _, f := range root.FindElements("//NameIDFormat") {
			if strings.TrimSpace(f.Text()) == "" {
				t.Errorf("empty NameIDFormat:\n%s", body)
			}
		}
		if sp := root.FindElement("//SPSSODescriptor"); sp.SelectAttr("validUntil") != nil || sp.SelectAttr("cacheDuration") != nil {
			t.Errorf("SPSSODescriptor carries its own validity:\n%s", body)
		}
	}

	t.Run("Defaults", func(t *testing.T) {
		h := newHarness(t, options{spKeys: []session.SPKey{spKey}})
		body, root := spMetadataDoc(t, h)
		common(t, body, root)
		if root.SelectAttr("validUntil") != nil || root.SelectAttr("cacheDuration") != nil {
			t.Errorf("validUntil or cacheDuration without sp_metadata_valid_for:\n%s", body)
		}
		if n := len(root.FindElements("//NameIDFormat")); n != 0 {
			t.Errorf("%d NameIDFormat elements with no name_id_format configured", n)
		}
		if v := root.FindElement("//SPSSODescriptor").SelectAttrValue("AuthnRequestsSigned", ""); v != "true" {
			t.Errorf("AuthnRequestsSigned = %q with a signing key", v)
		}
		if first := root.ChildElements()[0]; first.Tag != "Signature" {
			t.Fatalf("not signed by default with a signing key (first child %s)", first.Tag)
		}
		if err := xmlsecVerify(t, body, spKey.CertFile); err != nil {
			t.Errorf("xmlsec1 does not verify the metadata with the SP certificate: %v", err)
		}
		if err := xmlsecVerify(t, body, other.CertFile); err == nil {
			t.Error("xmlsec1 verified the metadata with another certificate: the check proves nothing")
		}
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{spCert}})
		if _, err := vc.Validate(root.Copy()); err != nil {
			t.Errorf("goxmldsig does not verify the metadata: %v", err)
		}
		tampered := strings.Replace(body, "/.gatehouse/saml/acs", "/evil/acs", 1)
		if err := xmlsecVerify(t, tampered, spKey.CertFile); err == nil {
			t.Error("xmlsec1 verified tampered metadata")
		}
	})

	t.Run("ValidForAndFormats", func(t *testing.T) {
		h := newHarness(t, options{spKeys: []session.SPKey{spKey}, partner: true, sp: func(c *session.Config) {
			c.MetadataValidFor = 30 * 24 * time.Hour
			c.IdPs[0].NameIDFormat = "persistent"
			c.IdPs[1].NameIDFormat = fmtEmail
		}})
		body, root := spMetadataDoc(t, h)
		common(t, body, root)
		var formats []string
		for _, f := range root.FindElements("//NameIDFormat") {
			formats = append(formats, f.Text())
		}
		if strings.Join(formats, " ") != fmtPersist+" "+fmtEmail {
			t.Errorf("NameIDFormat = %v, want the two requested formats", formats)
		}
		if got, want := root.SelectAttrValue("validUntil", ""), t0.Add(30*24*time.Hour).Format(time.RFC3339); got != want {
			t.Errorf("validUntil = %q, want %q", got, want)
		}
		if got := root.SelectAttrValue("cacheDuration", ""); got != "PT24H" {
			t.Errorf("cacheDuration = %q, want PT24H", got)
		}
		if err := xmlsecVerify(t, body, spKey.CertFile); err != nil {
			t.Errorf("xmlsec1: %v", err)
		}
		// Served later, it is valid for as long again: not a fixed date.
		h.clock.Advance(50 * time.Hour)
		body, root = spMetadataDoc(t, h)
		if got, want := root.SelectAttrValue("validUntil", ""), t0.Add(50*time.Hour+30*24*time.Hour).Format(time.RFC3339); got != want {
			t.Errorf("validUntil 50h later = %q, want %q", got, want)
		}
		if err := xmlsecVerify(t, body, spKey.CertFile); err != nil {
			t.Errorf("xmlsec1, re-signed copy: %v", err)
		}
	})

	t.Run("Unsigned", func(t *testing.T) {
		h := newHarness(t, options{spKeys: []session.SPKey{spKey}, sp: func(c *session.Config) { no := false; c.SignMetadata = &no }})
		body, root := spMetadataDoc(t, h)
		common(t, body, root)
		if root.FindElement("//Signature") != nil {
			t.Error("signed with sign_metadata: false")
		}
		h = newHarness(t, options{})
		body, root = spMetadataDoc(t, h)
		common(t, body, root)
		if root.FindElement("//Signature") != nil || root.FindElement("//SPSSODescriptor").SelectAttrValue("AuthnRequestsSigned", "") != "false" {
			t.Errorf("without an SP key: signed, or claims signed requests:\n%s", body)
		}
	})
}

// TestNameIDFormatRequested: idps[].name_id_format goes into the
// AuthnRequest's NameIDPolicy (with AllowCreate="true"), by alias or URN;
// without it the policy names no format, as before.
func TestNameIDFormatRequested(t *testing.T) {
	for name, tc := range map[string]struct{ config, want string }{
		"Default":    {"", ""},
		"Persistent": {"persistent", fmtPersist},
		"EmailAlias": {"emailAddress", fmtEmail},
		"URN":        {"urn:oasis:names:tc:SAML:2.0:nameid-format:transient", "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, options{corp: func(p *session.IdP) { p.NameIDFormat = tc.config }})
			req, _ := h.authnRequest(h.browser(), "/")
			pol := req.SelectElement("NameIDPolicy")
			if pol == nil || pol.SelectAttrValue("AllowCreate", "") != "true" {
				t.Fatalf("NameIDPolicy: %s", serialize(req))
			}
			if got := pol.SelectAttrValue("Format", ""); got != tc.want {
				t.Errorf("Format = %q, want %q", got, tc.want)
			}
		})
	}
}
