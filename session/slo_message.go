package session

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
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

// Single logout (SAML 2.0 profiles §4.4, bindings §3.4 and §3.5).
// crewjam/saml v0.5.1 cannot read an inbound LogoutRequest, signs
// HTTP-Redirect messages inside the XML instead of over the query string,
// and does not check InResponseTo, so gatehouse builds and checks these
// messages itself.

const (
	// sloFormBytes bounds an HTTP-POST logout message's body, and
	// sloQueryValueBytes an HTTP-Redirect one's SAMLRequest or SAMLResponse
	// parameter: sloLimits.maxBytes base64-encoded, with room.
	sloFormBytes       = 64 << 10
	sloQueryValueBytes = 16 << 10
	statusOK           = "urn:oasis:names:tc:SAML:2.0:status:Success"
	sigRSASHA256       = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	sigRSASHA512       = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
	sigECDSA256        = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
)

// sloEndpoint is an IdP's SingleLogoutService for a binding: where
// requests go and where responses go.
func sloEndpoint(ed *saml.EntityDescriptor, binding string) (request, response string) {
	for _, d := range ed.IDPSSODescriptors {
		for _, e := range d.SingleLogoutServices {
			if e.Binding == binding {
				resp := e.Location
				if e.ResponseLocation != "" {
					resp = e.ResponseLocation
				}
				return e.Location, resp
			}
		}
	}
	return "", ""
}

// message builds the common head of a LogoutRequest or LogoutResponse.
func (m *Manager) message(tag, dest string) (*etree.Element, string, error) {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", err
	}
	id := fmt.Sprintf("_%x", b)
	el := etree.NewElement("samlp:" + tag)
	el.CreateAttr("xmlns:samlp", nsProtocol)
	el.CreateAttr("xmlns:saml", nsAssertion)
	el.CreateAttr("ID", id)
	el.CreateAttr("Version", "2.0")
	el.CreateAttr("IssueInstant", m.now().UTC().Format("2006-01-02T15:04:05.000Z"))
	el.CreateAttr("Destination", dest)
	el.CreateElement("saml:Issuer").SetText(m.cfg.EntityID)
	return el, id, nil
}

// send delivers a message to dest with the binding: HTTP-Redirect (the
// query signed, when the SP has a signing key) or HTTP-POST (the XML
// signed, on a page that posts itself).
func (m *Manager) send(w http.ResponseWriter, r *http.Request, binding, dest, param string, el *etree.Element, relay string) error {
	w.Header().Set("Cache-Control", "no-store")
	if binding == saml.HTTPPostBinding {
		if m.spKey != nil {
			signed, err := m.signXML(el)
			if err != nil {
				return err
			}
			el = signed
		}
		doc := etree.NewDocument()
		doc.SetRoot(el)
		b, err := doc.WriteToBytes()
		if err != nil {
			return err
		}
		fields := map[string]string{param: base64.StdEncoding.EncodeToString(b)}
		if relay != "" {
			fields["RelayState"] = relay
		}
		m.pages.AutoPost(w, r, dest, fields)
		return nil
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	raw, err := doc.WriteToBytes()
	if err != nil {
		return err
	}
	q := param + "=" + url.QueryEscape(deflateBase64(raw))
	if relay != "" {
		q += "&RelayState=" + url.QueryEscape(relay)
	}
	if m.spKey != nil {
		q += "&SigAlg=" + url.QueryEscape(sigRSASHA256)
		sum := crypto.SHA256.New()
		sum.Write([]byte(q))
		sig, err := rsa.SignPKCS1v15(rand.Reader, m.spKey.(*rsa.PrivateKey), crypto.SHA256, sum.Sum(nil))
		if err != nil {
			return err
		}
		q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	}
	sep := "?"
	if strings.Contains(dest, "?") {
		sep = "&"
	}
	http.Redirect(w, r, dest+sep+q, http.StatusFound)
	return nil
}

// signXML signs a protocol message, the signature after its Issuer.
func (m *Manager) signXML(el *etree.Element) (*etree.Element, error) {
	return m.signEnveloped(el, true)
}

// signEnveloped signs el with the SP's signing key (enveloped, RSA-SHA256,
// exclusive C14N) and puts the signature where the schemas want it: after
// the Issuer of a protocol message, or first in metadata. The
// enveloped-signature transform ignores where it sits.
func (m *Manager) signEnveloped(el *etree.Element, afterIssuer bool) (*etree.Element, error) {
	ctx, err := dsig.NewSigningContext(m.spKey, [][]byte{m.spCert.Raw})
	if err != nil {
		return nil, err
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		return nil, err
	}
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		return nil, err
	}
	sig := signed.ChildElements()[len(signed.ChildElements())-1]
	// SignEnveloped's copy does not keep child indexes current, so the
	// signature is found by identity, not with RemoveChild.
	for i, tok := range signed.Child {
		if tok == sig {
			signed.RemoveChildAt(i)
			break
		}
	}
	pos := 0
	if iss := signed.SelectElement("Issuer"); iss != nil && afterIssuer {
		pos = iss.Index() + 1
	}
	signed.InsertChildAt(pos, sig)
	return signed, nil
}

// sloMessage is an inbound LogoutRequest or LogoutResponse whose
// signature has been checked.
type sloMessage struct {
	root    *etree.Element
	in      *idp
	binding string
	relay   string
}

// readSLO reads and verifies an inbound SLO message. HTTP-Redirect
// messages must carry a query signature (SigAlg and Signature over the
// parameters exactly as sent), HTTP-POST ones an enveloped XML signature;
// either by a signing certificate of the issuing IdP's metadata.
func (m *Manager) readSLO(w http.ResponseWriter, r *http.Request) (*sloMessage, error) {
	if r.Method == http.MethodPost {
		return m.readPostSLO(w, r)
	}
	return m.readRedirectSLO(r)
}

// readPostSLO reads an HTTP-POST message: bounded, scanned (sloLimits),
// then its XML signature checked against its issuer's certificates.
func (m *Manager) readPostSLO(w http.ResponseWriter, r *http.Request) (*sloMessage, error) {
	r.Body = http.MaxBytesReader(w, r.Body, sloFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, fmt.Errorf("read form: %w", err)
	}
	value := r.PostForm.Get("SAMLRequest")
	if value == "" {
		value = r.PostForm.Get("SAMLResponse")
	}
	if value == "" {
		return nil, errors.New("no SAMLRequest or SAMLResponse")
	}
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(value), ""))
	if err != nil {
		return nil, errors.New("message is not base64")
	}
	root, issuer, err := parseSLO(b)
	if err != nil {
		return nil, err
	}
	in := m.byEntity[issuer]
	if in == nil || in.sp.Load() == nil {
		return nil, fmt.Errorf("message from unknown issuer %s", quoted(issuer))
	}
	signed, err := m.verifySignature(root, in.signingCerts())
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return &sloMessage{root: signed, in: in, binding: saml.HTTPPostBinding, relay: r.PostForm.Get("RelayState")}, nil
}

// readRedirectSLO reads an HTTP-Redirect message. The query signature is
// checked before anything is inflated or parsed: the issuer is inside the
// deflated XML, so every IdP's signing certificates are tried, and the IdP
// whose certificate verifies must then be the message's Issuer.
func (m *Manager) readRedirectSLO(r *http.Request) (*sloMessage, error) {
	if len(r.URL.RawQuery) > sloQueryValueBytes+4<<10 {
		// The signed part is hashed once for each IdP tried.
		return nil, fmt.Errorf("query larger than %d bytes: %w", sloQueryValueBytes+4<<10, errXMLLimit)
	}
	raw := map[string]string{}
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := raw[k]; dup {
			return nil, fmt.Errorf("parameter %s given twice", quoted(k))
		}
		raw[k] = v
	}
	param := "SAMLRequest"
	if _, ok := raw[param]; !ok {
		param = "SAMLResponse"
	}
	value, ok := raw[param]
	if !ok {
		return nil, errors.New("no SAMLRequest or SAMLResponse")
	}
	if len(value) > sloQueryValueBytes {
		return nil, fmt.Errorf("%s larger than %d bytes: %w", param, sloQueryValueBytes, errXMLLimit)
	}
	unesc := func(s string) string { v, _ := url.QueryUnescape(s); return v }
	sigAlg, sig := unesc(raw["SigAlg"]), unesc(raw["Signature"])
	if sigAlg == "" || sig == "" {
		return nil, errors.New("the message is not signed (SigAlg and Signature)")
	}
	sigBytes, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return nil, errors.New("signature is not base64")
	}
	signedPart := param + "=" + value
	if rs, ok := raw["RelayState"]; ok {
		signedPart += "&RelayState=" + rs
	}
	signedPart += "&SigAlg=" + raw["SigAlg"]
	signers, err := m.queryVerifiers(sigAlg, []byte(signedPart), sigBytes)
	if err != nil {
		return nil, err
	}
	deflated, err := base64.StdEncoding.DecodeString(unesc(value))
	if err != nil {
		return nil, errors.New("message is not base64")
	}
	b, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(deflated)), int64(sloLimits.maxBytes)+1))
	if err != nil {
		return nil, errors.New("message does not inflate")
	}
	root, issuer, err := parseSLO(b)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(signers, func(in *idp) bool { return in.cfg.EntityID == issuer })
	if i < 0 {
		return nil, fmt.Errorf("message from %s, signed with the key of %s", quoted(issuer), signers[0].cfg.Name)
	}
	in := signers[i]
	if len(childrenNS(root, nsDSig, "Signature")) > 0 {
		return nil, errors.New("an HTTP-Redirect message is signed over its query string, not inside the XML")
	}
	return &sloMessage{root: root, in: in, binding: saml.HTTPRedirectBinding, relay: unesc(raw["RelayState"])}, nil
}

// queryVerifiers returns the IdPs one of whose signing certificates made
// an HTTP-Redirect signature. Every loaded IdP's certificates are tried,
// the query hashed once and each distinct certificate verified once (one
// RSA or ECDSA verification each: with a federation, one per admitted
// IdP), all before anything is inflated.
func (m *Manager) queryVerifiers(sigAlg string, signed, sig []byte) ([]*idp, error) {
	var h crypto.Hash
	switch sigAlg {
	case sigRSASHA256, sigECDSA256:
		h = crypto.SHA256
	case sigRSASHA512:
		h = crypto.SHA512
	default:
		return nil, fmt.Errorf("signature algorithm %s is not accepted (RSA-SHA256, RSA-SHA512 or ECDSA-SHA256)", quoted(sigAlg))
	}
	d := h.New()
	d.Write(signed)
	sum := d.Sum(nil)
	verified := map[string]bool{} // by certificate
	var out []*idp
	for _, in := range m.idps {
		for _, c := range in.signingCerts() {
			ok, seen := verified[string(c.Raw)]
			if !seen {
				ok = verifyDigest(c, sigAlg, h, sum, sig)
				verified[string(c.Raw)] = ok
			}
			if ok {
				out = append(out, in)
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("signature does not verify with any IdP's signing certificates")
	}
	return out, nil
}

// verifyDigest checks a query signature over sum with c's key.
func verifyDigest(c *x509.Certificate, sigAlg string, h crypto.Hash, sum, sig []byte) bool {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return sigAlg != sigECDSA256 && rsa.VerifyPKCS1v15(k, h, sum, sig) == nil
	case *ecdsa.PublicKey:
		return sigAlg == sigECDSA256 && ecdsa.VerifyASN1(k, sum, sig)
	}
	return false
}

// parseSLO reads a logout message's XML (readXML with sloLimits) and
// returns its root and its Issuer, still unverified.
func parseSLO(b []byte) (*etree.Element, string, error) {
	if len(b) > sloLimits.maxBytes {
		return nil, "", fmt.Errorf("%s larger than %d bytes: %w", sloLimits.name, sloLimits.maxBytes, errXMLLimit)
	}
	d, err := readXML(b, sloLimits)
	if err != nil {
		return nil, "", err
	}
	root := d.Root()
	if (root.Tag != "LogoutRequest" && root.Tag != "LogoutResponse") || root.NamespaceURI() != nsProtocol {
		return nil, "", errors.New("not a SAML LogoutRequest or LogoutResponse")
	}
	iss := childrenNS(root, nsAssertion, "Issuer")
	if len(iss) != 1 {
		return nil, "", errors.New("message must have exactly one Issuer")
	}
	return root, strings.TrimSpace(iss[0].Text()), nil
}

// checkSLOHead applies the checks common to both messages: sent to this
// SP's SLO endpoint, issued within the clock skew.
func (m *Manager) checkSLOHead(root *etree.Element) error {
	if root.SelectAttrValue("Destination", "") != m.sloURL.String() {
		return fmt.Errorf("destination %s is not this SP's SLO endpoint", quoted(root.SelectAttrValue("Destination", "")))
	}
	at, err := time.Parse(time.RFC3339Nano, root.SelectAttrValue("IssueInstant", ""))
	if err != nil {
		return errors.New("IssueInstant is missing or not a time")
	}
	now, skew := m.now(), m.cfg.ClockSkew
	if at.After(now.Add(skew)) || at.Before(now.Add(-skew-saml.MaxIssueDelay)) {
		return fmt.Errorf("issued at %s, outside the accepted window", at.UTC().Format(time.RFC3339))
	}
	return nil
}
