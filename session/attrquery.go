package session

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// SAML Attribute Query over the SOAP binding (SAML 2.0 core §3.3.2.3,
// bindings §3.2), as PingFederate does for SAML 2.0 partners: after a
// login is validated and before JIT runs, the IdP's attribute authority is
// asked for more of the subject's attributes. crewjam/saml has no attribute
// query, so gatehouse builds and checks the messages itself.

const (
	nsSOAP       = "http://schemas.xmlsoap.org/soap/envelope/"
	bindingSOAP  = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"
	maxSOAPBytes = 1 << 20
)

// attributeService is the IdP's AttributeService for the SOAP binding,
// and the certificates its answers may be signed with.
func attributeService(ed *saml.EntityDescriptor) (string, []*x509.Certificate) {
	var certs []*x509.Certificate
	loc := ""
	for _, d := range ed.AttributeAuthorityDescriptors {
		for _, s := range d.AttributeServices {
			if s.Binding == bindingSOAP && loc == "" {
				loc = s.Location
			}
		}
		for _, k := range d.KeyDescriptors {
			if k.Use == "" || k.Use == "signing" {
				for _, c := range k.KeyInfo.X509Data.X509Certificates {
					if der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), "")); err == nil {
						if cert, err := x509.ParseCertificate(der); err == nil {
							certs = append(certs, cert)
						}
					}
				}
			}
		}
	}
	return loc, append(certs, idpSigningCerts(ed)...)
}

// queryAttributes asks in's attribute authority about id's subject and
// adds the attributes it asserts that the login's assertion did not carry.
func (m *Manager) queryAttributes(ctx context.Context, in *idp, id *Identity) error {
	sp := in.sp.Load()
	if sp == nil {
		return errNoMetadata
	}
	loc, certs := attributeService(sp.IDPMetadata)
	if loc == "" {
		return errors.New("the IdP's metadata has no AttributeService with the SOAP binding")
	}
	if u, err := url.Parse(loc); err != nil || u.Scheme != "https" {
		return fmt.Errorf("AttributeService %q is not an https URL", loc)
	}
	if m.spKey == nil {
		return errors.New("an attribute query must be signed: the SP needs a signing key")
	}
	q, qid, err := m.message("AttributeQuery", loc)
	if err != nil {
		return err
	}
	subj := q.CreateElement("saml:Subject").CreateElement("saml:NameID")
	if id.NameIDFormat != "" {
		subj.CreateAttr("Format", id.NameIDFormat)
	}
	subj.SetText(id.NameID)
	for _, name := range in.cfg.AttributeQueryNames {
		a := q.CreateElement("saml:Attribute")
		a.CreateAttr("Name", name)
		a.CreateAttr("NameFormat", "urn:oasis:names:tc:SAML:2.0:attrname-format:uri")
	}
	signed, err := m.signXML(q)
	if err != nil {
		return err
	}
	env := etree.NewElement("soap:Envelope")
	env.CreateAttr("xmlns:soap", nsSOAP)
	env.CreateElement("soap:Body").AddChild(signed)
	doc := etree.NewDocument()
	doc.SetRoot(env)
	body, err := doc.WriteToBytes()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, loc, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", "http://www.oasis-open.org/committees/security")
	resp, err := m.client.Do(req)
	if err != nil {
		return fmt.Errorf("attribute query: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxSOAPBytes+1))
	if err != nil || len(raw) > maxSOAPBytes {
		return fmt.Errorf("attribute query: reading the answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("attribute query: HTTP %d", resp.StatusCode)
	}
	attrs, err := m.checkAttributeResponse(in, raw, certs, qid, id)
	if err != nil {
		return fmt.Errorf("attribute query: %w", err)
	}
	for name, vals := range attrs {
		if _, had := id.Attributes[name]; !had {
			id.Attributes[name] = vals
		}
	}
	return nil
}

// checkAttributeResponse validates the SOAP answer: one samlp:Response in
// the Body, answering the query, from the IdP, successful, with its
// Response or its assertion signed by the IdP, the assertion about the
// queried subject, for this SP, and current. It returns the attributes.
func (m *Manager) checkAttributeResponse(in *idp, raw []byte, certs []*x509.Certificate, queryID string, id *Identity) (map[string][]string, error) {
	d, err := readXML(raw, responseLimits)
	if err != nil {
		return nil, err
	}
	if d.Root().Tag != "Envelope" || d.Root().NamespaceURI() != nsSOAP {
		return nil, errors.New("the answer is not a SOAP envelope")
	}
	body := childrenNS(d.Root(), nsSOAP, "Body")
	if len(body) != 1 {
		return nil, errors.New("SOAP envelope without exactly one Body")
	}
	resps := childrenNS(body[0], nsProtocol, "Response")
	if len(resps) != 1 || len(body[0].ChildElements()) != 1 {
		return nil, errors.New("the SOAP Body must hold exactly one samlp:Response")
	}
	r := resps[0]
	if r.SelectAttrValue("InResponseTo", "") != queryID {
		return nil, errors.New("the Response does not answer this query (InResponseTo)")
	}
	if iss := childrenNS(r, nsAssertion, "Issuer"); len(iss) != 1 || strings.TrimSpace(iss[0].Text()) != in.cfg.EntityID {
		return nil, errors.New("the Response is not from the IdP (Issuer)")
	}
	if sc := r.FindElement("./Status/StatusCode"); sc == nil || sc.SelectAttrValue("Value", "") != statusOK {
		return nil, errors.New("the attribute authority did not answer with Success")
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: certs})
	vc.Clock = dsig.NewFakeClockAt(m.now())
	responseSigned := r.SelectElement("Signature") != nil
	if responseSigned {
		v, err := vc.Validate(r)
		if err != nil {
			return nil, fmt.Errorf("response signature: %w", err)
		}
		r = v
	}
	var assertions []*etree.Element
	for _, c := range r.ChildElements() {
		if c.Tag == "Assertion" || c.Tag == "EncryptedAssertion" {
			assertions = append(assertions, c)
		}
	}
	if len(assertions) != 1 {
		return nil, fmt.Errorf("the Response holds %d assertions, want 1", len(assertions))
	}
	a := assertions[0]
	if a.Tag == "EncryptedAssertion" {
		enc, err := inspectEncrypted(a)
		if err != nil {
			return nil, err
		}
		if _, a, err = m.decrypt(enc, in.cfg); err != nil {
			return nil, err
		}
	}
	if a.NamespaceURI() != nsAssertion {
		return nil, errors.New("the assertion is not a SAML assertion")
	}
	if a.SelectElement("Signature") != nil {
		v, err := vc.Validate(a)
		if err != nil {
			return nil, fmt.Errorf("assertion signature: %w", err)
		}
		a = v
	} else if !responseSigned {
		return nil, errors.New("neither the Response nor its assertion is signed")
	}
	if iss := childrenNS(a, nsAssertion, "Issuer"); len(iss) != 1 || strings.TrimSpace(iss[0].Text()) != in.cfg.EntityID {
		return nil, errors.New("the assertion is not from the IdP (Issuer)")
	}
	nid := a.FindElement("./Subject/NameID")
	if nid == nil || nid.Text() != id.NameID {
		return nil, errors.New("the assertion is about another subject")
	}
	now, skew := m.now(), m.cfg.ClockSkew
	if c := a.SelectElement("Conditions"); c != nil {
		if v := c.SelectAttrValue("NotBefore", ""); v != "" {
			if t, err := time.Parse(time.RFC3339Nano, v); err != nil || now.Add(skew).Before(t) {
				return nil, errors.New("the assertion is not yet valid")
			}
		}
		if v := c.SelectAttrValue("NotOnOrAfter", ""); v != "" {
			if t, err := time.Parse(time.RFC3339Nano, v); err != nil || !now.Add(-skew).Before(t) {
				return nil, errors.New("the assertion has expired")
			}
		}
		for _, ar := range c.SelectElements("AudienceRestriction") {
			var audiences []string
			for _, au := range ar.SelectElements("Audience") {
				audiences = append(audiences, strings.TrimSpace(au.Text()))
			}
			if !slices.Contains(audiences, m.cfg.EntityID) {
				return nil, errors.New("the assertion is for another audience")
			}
		}
	}
	out := map[string][]string{}
	for _, st := range a.SelectElements("AttributeStatement") {
		for _, at := range st.SelectElements("Attribute") {
			name := at.SelectAttrValue("Name", "")
			for _, v := range at.SelectElements("AttributeValue") {
				out[name] = append(out[name], v.Text())
			}
		}
	}
	return out, nil
}
