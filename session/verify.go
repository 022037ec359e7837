package session

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// gatehouse reads a SAML response itself rather than through
// crewjam/saml's ParseXMLResponse: that function detaches each signed
// element through goxmldsig's namespace helpers, whose budget of 1,000
// elements a legitimate assertion of a user in many groups exceeds, and
// then dereferences the nil element the failed detach returned (a panic).
// gatehouse detaches the element itself and hands it to goxmldsig's
// ValidationContext.Validate, whose search for the signature walks the
// tree with the same budget but stops at the signature, which
// signatureInPlace holds to the first elements; the verified assertion is
// read from the tree Validate returns (assertionFromTree). The size of
// what reaches this point is bounded by responseLimits.

const nsDSig = "http://www.w3.org/2000/09/xmldsig#"

// verifyResponse checks a pre-checked response from in: the Response's
// signature when it has one, the assertion's (decrypted first when it is
// encrypted) when it has one, at least one of them present; then the
// Response's Destination, InResponseTo, IssueInstant, Issuer and Status;
// everything as at the instant now. It returns the assertion read from
// verified bytes only.
func (m *Manager) verifyResponse(in *idp, sh shape, requestIDs []string, unsolicited bool, now time.Time) (*saml.Assertion, string, error) {
	certs := in.signingCerts()
	if len(certs) == 0 {
		return nil, "validation", errors.New("the IdP's metadata has no signing certificate")
	}
	resp := sh.root
	respSigned := hasSignature(resp)
	if respSigned {
		v, err := m.verifySignatureAt(resp, certs, now)
		if err != nil {
			return nil, "validation", fmt.Errorf("response signature: %w", err)
		}
		resp = v // from here on, only what the signature covers is read
	}
	if err := m.checkResponseHead(resp, in, requestIDs, unsolicited, respSigned, now); err != nil {
		return nil, "validation", err
	}
	var found []*etree.Element
	for _, c := range resp.ChildElements() {
		if (c.Tag == "Assertion" || c.Tag == "EncryptedAssertion") && c.NamespaceURI() == nsAssertion {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		return nil, "validation", fmt.Errorf("response holds %d assertions, want 1", len(found))
	}
	a := detach(found[0])
	switch {
	case a.Tag == "EncryptedAssertion":
		enc, err := inspectEncrypted(a)
		if err != nil {
			return nil, "encryption", err
		}
		_, plain, err := m.decrypt(enc, in.cfg)
		if err == nil {
			err = checkAssertionShape(plain, sh.issuer)
		}
		if err != nil {
			return nil, "encryption", err
		}
		a = plain
	case in.cfg.RequireEncryption:
		return nil, "encryption", fmt.Errorf("idp %s must encrypt its assertions (require_encrypted_assertions)", in.cfg.Name)
	}
	if hasSignature(a) {
		v, err := m.verifySignatureAt(a, certs, now)
		if err != nil {
			return nil, "validation", fmt.Errorf("assertion signature: %w", err)
		}
		a = v
	} else if !respSigned {
		return nil, "validation", errors.New("neither the response nor its assertion is signed")
	}
	assertion, err := assertionFromTree(a)
	if err != nil {
		return nil, "validation", err
	}
	if err := m.checkAssertionHead(assertion, in, requestIDs, unsolicited, now); err != nil {
		return nil, "validation", err
	}
	return assertion, "", nil
}

// verifyResponseSafely is verifyResponse with a panic in a library below
// it turned into a refusal. None is known to be reachable (the input is
// bounded and pre-checked, and crewjam/saml's parser is not used); this is
// defence in depth, so that bad input never ends a request with a panic.
func (m *Manager) verifyResponseSafely(in *idp, sh shape, requestIDs []string, unsolicited bool, now time.Time) (a *saml.Assertion, reason string, err error) {
	defer func() {
		if p := recover(); p != nil {
			a, reason, err = nil, "validation", fmt.Errorf("response verification panicked: %v", p)
		}
	}()
	return m.verifyResponse(in, sh, requestIDs, unsolicited, now)
}

// hasSignature reports whether el has an XML-DSig Signature child.
func hasSignature(el *etree.Element) bool {
	return len(childrenNS(el, nsDSig, "Signature")) > 0
}

// verifySignature checks el's enveloped signature against certs and
// returns the signed content as the signature covers it. A signature
// whose KeyInfo carries no certificate (only a key value) is tried
// against each certificate in turn.
func (m *Manager) verifySignature(el *etree.Element, certs []*x509.Certificate) (*etree.Element, error) {
	return m.verifySignatureAt(el, certs, m.now())
}

// verifySignatureAt is verifySignature with certificates judged current
// at now.
func (m *Manager) verifySignatureAt(el *etree.Element, certs []*x509.Certificate, now time.Time) (*etree.Element, error) {
	if el.SelectAttrValue("ID", "") == "" {
		return nil, fmt.Errorf("signed %s has no ID", el.Tag)
	}
	// goxmldsig validates a copy of what it is given; detach copies only
	// when an ancestor declares namespaces that the copy must carry.
	el, own := detachShared(el)
	sigs := childrenNS(el, nsDSig, "Signature")
	if len(sigs) != 1 {
		return nil, fmt.Errorf("%s carries %d signatures, want 1", el.Tag, len(sigs))
	}
	if !signatureInPlace(el, sigs[0]) {
		return nil, fmt.Errorf("the signature of %s is not where the SAML schema puts it (first, or right after the Issuer)", el.Tag)
	}
	validate := func(roots []*x509.Certificate) (*etree.Element, error) {
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: roots})
		vc.IdAttribute = "ID"
		vc.Clock = dsig.NewFakeClockAt(now)
		return vc.Validate(el)
	}
	if sigs[0].FindElement("./KeyInfo/X509Data/X509Certificate") != nil {
		return validate(certs)
	}
	if ki := sigs[0].SelectElement("KeyInfo"); ki != nil {
		if !own {
			el = el.Copy()
			sigs = childrenNS(el, nsDSig, "Signature")
			ki = sigs[0].SelectElement("KeyInfo")
		}
		sigs[0].RemoveChild(ki)
	}
	var err error
	for _, c := range certs {
		var v *etree.Element
		if v, err = validate([]*x509.Certificate{c}); err == nil {
			return v, nil
		}
	}
	return nil, err
}

// signatureInPlace reports whether sig is el's first child element, or
// its second after a SAML Issuer: where the SAML schemas put the
// signature of an assertion, a protocol message or metadata. goxmldsig
// looks for the signature by walking el's tree in document order, copying
// the namespaces in scope at each element; holding it to its place keeps
// that walk to the first few elements, whatever follows.
func signatureInPlace(el, sig *etree.Element) bool {
	kids := el.ChildElements()
	switch {
	case len(kids) > 0 && kids[0] == sig:
		return true
	case len(kids) > 1 && kids[1] == sig:
		return kids[0].Tag == "Issuer" && kids[0].NamespaceURI() == nsAssertion
	}
	return false
}

// detach copies el out of its document with every namespace declaration
// in scope, so that it reads and canonicalises the same on its own.
func detach(el *etree.Element) *etree.Element {
	if c, own := detachShared(el); own {
		return c
	}
	return el.Copy()
}

// detachShared is detach without the copy when none is needed: it
// returns el itself (own false) when no ancestor declares a namespace.
func detachShared(el *etree.Element) (_ *etree.Element, own bool) {
	var c *etree.Element
	declared := map[string]bool{}
	for _, a := range el.Attr {
		if p, ok := nsDecl(a); ok {
			declared[p] = true
		}
	}
	for p := el.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			prefix, ok := nsDecl(a)
			if !ok || declared[prefix] {
				continue
			}
			declared[prefix] = true
			if c == nil {
				c = el.Copy()
			}
			c.CreateAttr(a.FullKey(), a.Value)
		}
	}
	if c == nil {
		return el, false
	}
	return c, true
}

// nsDecl reports whether a declares a namespace, and its prefix ("" for
// the default namespace).
func nsDecl(a etree.Attr) (string, bool) {
	switch {
	case a.Space == "xmlns":
		return a.Key, true
	case a.Space == "" && a.Key == "xmlns":
		return "", true
	}
	return "", false
}

// checkResponseHead applies the Response-level rules: Destination is this
// ACS (required when the Response is signed), InResponseTo answers a
// pending request, IssueInstant is recent, the Issuer is the IdP and the
// status is Success.
func (m *Manager) checkResponseHead(resp *etree.Element, in *idp, requestIDs []string, unsolicited, signed bool, now time.Time) error {
	dest := resp.SelectAttrValue("Destination", "")
	if (signed || dest != "") && dest != m.acsURL.String() {
		return fmt.Errorf("response Destination %s is not this ACS", quoted(dest))
	}
	if irt := resp.SelectAttrValue("InResponseTo", ""); unsolicited {
		if irt != "" {
			return errors.New("unsolicited response carries InResponseTo")
		}
	} else if !slices.Contains(requestIDs, irt) {
		return fmt.Errorf("response InResponseTo %s answers no pending request", quoted(irt))
	}
	at, err := time.Parse(time.RFC3339Nano, resp.SelectAttrValue("IssueInstant", ""))
	if err != nil {
		return errors.New("response IssueInstant is missing or not a time")
	}
	if at.Add(saml.MaxIssueDelay).Before(now) {
		return fmt.Errorf("response IssueInstant expired at %s", at.Add(saml.MaxIssueDelay).UTC().Format(time.RFC3339))
	} else if at.After(now.Add(m.cfg.ClockSkew)) {
		return fmt.Errorf("response issued in the future (%s)", at.UTC().Format(time.RFC3339))
	}
	if iss := childrenNS(resp, nsAssertion, "Issuer"); len(iss) != 1 || iss[0].Text() != in.cfg.EntityID {
		return errors.New("response Issuer is not the IdP")
	}
	st := childrenNS(resp, nsProtocol, "Status")
	if len(st) != 1 {
		return errors.New("response must have exactly one Status")
	}
	if sc := childrenNS(st[0], nsProtocol, "StatusCode"); len(sc) != 1 || sc[0].SelectAttrValue("Value", "") != saml.StatusSuccess {
		return errors.New("response status is not Success")
	}
	return nil
}

// checkAssertionHead applies crewjam/saml's assertion rules (recent
// IssueInstant, the IdP as Issuer, each subject confirmation answering a
// pending request, to this ACS and current, Conditions current); the
// stricter rules of checkAssertion follow.
func (m *Manager) checkAssertionHead(a *saml.Assertion, in *idp, requestIDs []string, unsolicited bool, now time.Time) error {
	if a.IssueInstant.Add(saml.MaxIssueDelay).Before(now) {
		return fmt.Errorf("assertion IssueInstant expired at %s", a.IssueInstant.Add(saml.MaxIssueDelay).UTC().Format(time.RFC3339))
	}
	if a.Issuer.Value != in.cfg.EntityID {
		return errors.New("assertion Issuer is not the IdP")
	}
	if a.Subject == nil || a.Conditions == nil {
		return errors.New("assertion lacks Subject or Conditions")
	}
	for _, sc := range a.Subject.SubjectConfirmations {
		d := sc.SubjectConfirmationData
		if d == nil {
			return errors.New("subject confirmation without data")
		}
		if !unsolicited && !slices.Contains(requestIDs, d.InResponseTo) {
			return errors.New("subject confirmation answers no pending request")
		}
		if d.Recipient != m.acsURL.String() {
			return fmt.Errorf("subject confirmation Recipient is not %s (it is %s)", m.acsURL.String(), quoted(d.Recipient))
		}
		if d.NotOnOrAfter.Add(saml.MaxClockSkew).Before(now) {
			return errors.New("subject confirmation expired")
		}
	}
	if a.Conditions.NotBefore.Add(-saml.MaxClockSkew).After(now) {
		return errors.New("assertion Conditions not yet valid")
	}
	if a.Conditions.NotOnOrAfter.Add(saml.MaxClockSkew).Before(now) {
		return errors.New("assertion Conditions expired or without NotOnOrAfter")
	}
	return nil
}
