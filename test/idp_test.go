package test

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// The test identity provider builds SAML responses element by element, so
// that every negative case can change exactly one thing, and signs them
// with keys kept in testdata. Nothing here is random: with the same inputs
// it writes the same bytes, which is what the golden files rely on.

const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	bearer      = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	fmtPersist  = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	fmtTransnt  = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
	attrURI     = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"

	idpEntityID = "https://idp.example.test/saml"
	idpSSO      = "https://idp.example.test/sso"

	partnerEntityID = "https://partner.example.test/saml"
	partnerSSO      = "https://partner.example.test/sso"

	attrUID         = "urn:oid:0.9.2342.19200300.100.1.1"
	attrMail        = "urn:oid:0.9.2342.19200300.100.1.3"
	attrDisplayName = "urn:oid:2.16.840.1.113730.3.1.241"
	attrGivenName   = "urn:oid:2.5.4.42"
	attrSurname     = "urn:oid:2.5.4.4"
	attrGroups      = "urn:oid:1.3.6.1.4.1.5923.1.1.1.1"
	attrEmployeeID  = "urn:oid:2.16.840.1.113730.3.1.3"
)

// signer is a key pair an IdP signs with.
type signer struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

func loadSigner(t testing.TB, name string) signer {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join("testdata", name+".crt"), filepath.Join("testdata", name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return signer{key: pair.PrivateKey.(*rsa.PrivateKey), cert: pair.Leaf}
}

// idpSLOURL and idpSLOResponseURL are where the test IdP takes logout
// requests and responses, when its metadata offers single logout.
const (
	idpSLOURL         = "https://idp.example.test/slo"
	idpSLOResponseURL = "https://idp.example.test/slo/response"
)

// idpMetadata is the IdP's metadata as the SP reads it, with a
// SingleLogoutService for each binding given.
func idpMetadata(entityID, sso string, s signer, slo ...string) []byte {
	var endpoints string
	for _, b := range slo {
		endpoints += fmt.Sprintf(`    <md:SingleLogoutService Binding=%q Location=%q ResponseLocation=%q/>
`, b, idpSLOURL, idpSLOResponseURL)
	}
	return []byte(fmt.Sprintf(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID=%q>
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="false">
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
%s    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location=%q/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
`, entityID, base64.StdEncoding.EncodeToString(s.cert.Raw), endpoints, sso))
}

func writeMetadata(t testing.TB, dir, name, entityID, sso string, s signer, slo ...string) string {
	t.Helper()
	p := filepath.Join(dir, name+"-metadata.xml")
	if err := os.WriteFile(p, idpMetadata(entityID, sso, s, slo...), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type attr struct {
	name   string
	values []string
}

// spec describes one response. Zero fields take the defaults of a valid
// SP-initiated response.
type spec struct {
	now          time.Time
	issuer       string // of both Response and Assertion
	inResponseTo string // "" for an unsolicited response
	destination  string // Response Destination
	recipient    string // SubjectConfirmationData Recipient
	audience     string
	nameID       string
	nameIDFormat string
	attrs        []attr
	responseID   string
	assertionID  string
	sessionIndex string
	classRef     string // AuthnContextClassRef; default PasswordProtectedTransport
}

// respond builds an unsigned Response with an unsigned Assertion, both as
// standalone elements that declare their own namespaces.
func respond(s spec) (response, assertion *etree.Element) {
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
	response = etree.NewElement("samlp:Response")
	response.CreateAttr("xmlns:samlp", nsProtocol)
	response.CreateAttr("xmlns:saml", nsAssertion)
	response.CreateAttr("ID", s.responseID)
	if s.inResponseTo != "" {
		response.CreateAttr("InResponseTo", s.inResponseTo)
	}
	response.CreateAttr("Version", "2.0")
	response.CreateAttr("IssueInstant", ts(s.now))
	response.CreateAttr("Destination", s.destination)
	if s.issuer != "" {
		iss := response.CreateElement("saml:Issuer")
		iss.CreateAttr("Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:entity")
		iss.SetText(s.issuer)
	}
	response.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", "urn:oasis:names:tc:SAML:2.0:status:Success")

	a := etree.NewElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", nsAssertion)
	a.CreateAttr("xmlns:xs", "http://www.w3.org/2001/XMLSchema")
	a.CreateAttr("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
	a.CreateAttr("ID", s.assertionID)
	a.CreateAttr("Version", "2.0")
	a.CreateAttr("IssueInstant", ts(s.now))
	if s.issuer != "" {
		a.CreateElement("saml:Issuer").SetText(s.issuer)
	}
	subj := a.CreateElement("saml:Subject")
	nid := subj.CreateElement("saml:NameID")
	nid.CreateAttr("Format", s.nameIDFormat)
	nid.SetText(s.nameID)
	sc := subj.CreateElement("saml:SubjectConfirmation")
	sc.CreateAttr("Method", bearer)
	scd := sc.CreateElement("saml:SubjectConfirmationData")
	if s.inResponseTo != "" {
		scd.CreateAttr("InResponseTo", s.inResponseTo)
	}
	scd.CreateAttr("NotOnOrAfter", ts(s.now.Add(5*time.Minute)))
	scd.CreateAttr("Recipient", s.recipient)
	cond := a.CreateElement("saml:Conditions")
	cond.CreateAttr("NotBefore", ts(s.now.Add(-30*time.Second)))
	cond.CreateAttr("NotOnOrAfter", ts(s.now.Add(5*time.Minute)))
	cond.CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText(s.audience)
	as := a.CreateElement("saml:AuthnStatement")
	as.CreateAttr("AuthnInstant", ts(s.now))
	as.CreateAttr("SessionIndex", s.sessionIndex)
	classRef := s.classRef
	if classRef == "" {
		classRef = classPassword
	}
	as.CreateElement("saml:AuthnContext").CreateElement("saml:AuthnContextClassRef").SetText(classRef)
	if len(s.attrs) > 0 {
		st := a.CreateElement("saml:AttributeStatement")
		for _, at := range s.attrs {
			ae := st.CreateElement("saml:Attribute")
			ae.CreateAttr("Name", at.name)
			ae.CreateAttr("NameFormat", attrURI)
			for _, v := range at.values {
				ve := ae.CreateElement("saml:AttributeValue")
				ve.CreateAttr("xsi:type", "xs:string")
				ve.SetText(v)
			}
		}
	}
	return response, a
}

// sign returns el signed (RSA-SHA256, exclusive C14N, enveloped) with the
// Signature placed right after the Issuer, where the schema wants it.
func sign(t testing.TB, el *etree.Element, s signer) *etree.Element {
	t.Helper()
	ctx, err := dsig.NewSigningContext(s.key, [][]byte{s.cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		t.Fatal(err)
	}
	sig := signed.ChildElements()[len(signed.ChildElements())-1]
	// SignEnveloped's copy does not keep child indexes current, so find
	// the token by identity rather than with RemoveChild.
	for i, tok := range signed.Child {
		if tok == sig {
			signed.RemoveChildAt(i)
			break
		}
	}
	pos := 0
	if iss := signed.SelectElement("Issuer"); iss != nil {
		pos = iss.Index() + 1
	}
	signed.InsertChildAt(pos, sig)
	return signed
}

// assemble puts the assertion into the response after its Status.
func assemble(response, assertion *etree.Element) *etree.Element {
	response.AddChild(assertion)
	return response
}

func serialize(el *etree.Element) []byte {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		panic(err)
	}
	return b
}
