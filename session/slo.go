package session

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
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

// Revocations remember ended sessions: by IdP and SessionIndex, and by
// IdP and NameID for a logout that names no session. RevokedAt is on the
// request path of every proxied request, so it must not do I/O; Revoke
// may publish to other replicas.
type Revocations interface {
	Revoke(ctx context.Context, key string, at, until time.Time) error
	RevokedAt(key string) (time.Time, bool)
}

// MemoryRevocations is the in-memory Revocations of one instance. Entries
// are kept until the session they end would have expired anyway; with
// OpenRevocationFile they are also kept in a file, across restarts.
type MemoryRevocations struct {
	mu        sync.RWMutex
	now       func() time.Time
	m         map[string][2]time.Time // at, until
	nextSweep time.Time
	log       *revocationLog // nil: memory only
}

// NewMemoryRevocations returns an empty revocation list.
func NewMemoryRevocations(now func() time.Time) *MemoryRevocations {
	return &MemoryRevocations{now: now, m: map[string][2]time.Time{}}
}

// Revoke records key as revoked at at, until until (in the file too,
// synced, when there is one).
func (r *MemoryRevocations) Revoke(ctx context.Context, key string, at, until time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.revoke(ctx, key, at, until)
}

// RevokedAt reports when key was revoked, if it is.
func (r *MemoryRevocations) RevokedAt(key string) (time.Time, bool) {
	r.mu.RLock()
	v, ok := r.m[key]
	r.mu.RUnlock()
	return v[0], ok && r.now().Before(v[1])
}

func sessionKey(idp, index string) string  { return "idx\x00" + idp + "\x00" + index }
func subjectKey(idp, nameID string) string { return "sub\x00" + idp + "\x00" + nameID }
func sessionIDKey(id string) string        { return "sid\x00" + id }

// revoked reports whether a logout ended the session: this session by
// its ID (a logout here), or every session of an IdP session or subject
// issued up to an IdP's single logout (an IdP session that outlives a
// local logout hands the next login the same SessionIndex, and that new
// session must live).
func (m *Manager) revoked(s Session) bool {
	if s.ID != "" {
		if _, ok := m.revocations.RevokedAt(sessionIDKey(s.ID)); ok {
			return true
		}
	}
	if s.SessionIndex != "" {
		if at, ok := m.revocations.RevokedAt(sessionKey(s.IdP, s.SessionIndex)); ok && !s.Issued.After(at) {
			return true
		}
	}
	if s.NameID != "" {
		if at, ok := m.revocations.RevokedAt(subjectKey(s.IdP, s.NameID)); ok && !s.Issued.After(at) {
			return true
		}
	}
	return false
}

// revoke ends sessions everywhere this Manager's revocations reach: the
// one with s.ID, or else those of s's SessionIndex, or else of its NameID.
func (m *Manager) revoke(ctx context.Context, s Session) error {
	now := m.now()
	until := now.Add(m.cfg.Cookie.MaxAge)
	if s.ID != "" {
		return m.revocations.Revoke(ctx, sessionIDKey(s.ID), now, until)
	}
	if s.SessionIndex != "" {
		return m.revocations.Revoke(ctx, sessionKey(s.IdP, s.SessionIndex), now, until)
	}
	if s.NameID != "" {
		return m.revocations.Revoke(ctx, subjectKey(s.IdP, s.NameID), now, until)
	}
	return nil
}

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

// idpSigningCerts are the certificates an IdP's metadata gives for
// signing.
func idpSigningCerts(ed *saml.EntityDescriptor) []*x509.Certificate {
	var out []*x509.Certificate
	for _, d := range ed.IDPSSODescriptors {
		for _, k := range d.KeyDescriptors {
			if k.Use != "" && k.Use != "signing" {
				continue
			}
			for _, c := range k.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
				if err != nil {
					continue
				}
				if cert, err := x509.ParseCertificate(der); err == nil {
					out = append(out, cert)
				}
			}
		}
	}
	return out
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
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	fw.Write(raw)
	fw.Close()
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
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

// ServeLogout ends the browser's session: locally always (the session is
// revoked, so a copy of its cookie is dead too), and at the IdP when its
// metadata has a SingleLogoutService (SP-initiated single logout).
//
// Only a same-origin POST logs out; a GET (a link, or a cross-site
// top-level navigation) shows a page that asks, with a form that posts
// back here. An IdP's logout reaches ServeSLO, as a signed message.
func (m *Manager) ServeLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		m.pages.ConfirmLogout(w, r, m.cfg.Endpoints.Logout)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := m.sameOrigin(r); err != nil {
		m.log.Warn("logout refused", zap.String("reason", "cross_origin"), zap.Error(err))
		m.pages.ConfirmLogout(w, r, m.cfg.Endpoints.Logout)
		return
	}
	s, ok := m.Load(r)
	m.clearSession(w)
	if !ok {
		m.pages.SignedOut(w, r)
		return
	}
	outcome := "ended"
	if err := m.revoke(r.Context(), s); err != nil {
		m.log.Error("revoke session", zap.String("idp", s.IdP), zap.Error(err))
		outcome = "revoke_failed" // the cookie is deleted; a copy of it lives on
	}
	in := m.byName[s.IdP]
	sp := in.sp.Load()
	binding, dest := saml.HTTPRedirectBinding, ""
	if !in.cfg.NoSingleLogout && sp != nil && s.NameID != "" {
		if dest, _ = sloEndpoint(sp.IDPMetadata, binding); dest == "" {
			binding = saml.HTTPPostBinding
			dest, _ = sloEndpoint(sp.IDPMetadata, binding)
		}
	}
	m.auditEvent(w, r, zap.InfoLevel, "logout", outcome, append(subjectFields(s), zap.Bool("single_logout", dest != ""))...)
	if dest == "" {
		m.pages.SignedOut(w, r)
		return
	}
	el, id, err := m.message("LogoutRequest", dest)
	if err != nil {
		m.pages.Problem(w, r, Failure{Page: Unavailable, Reason: "random", Err: err})
		return
	}
	nid := el.CreateElement("saml:NameID")
	if s.NameIDFormat != "" {
		nid.CreateAttr("Format", s.NameIDFormat)
	}
	nid.SetText(s.NameID)
	if s.SessionIndex != "" {
		el.CreateElement("samlp:SessionIndex").SetText(s.SessionIndex)
	}
	name := m.logoutCookieName()
	sealed, err := m.sealer.seal(name, pack(stateFormat, []time.Time{m.now().Add(m.cfg.LoginTimeout)}, id, in.cfg.Name))
	if err != nil {
		m.pages.Problem(w, r, Failure{Page: Unavailable, Reason: "seal", Err: err})
		return
	}
	http.SetCookie(w, m.logoutCookie(sealed, int(m.cfg.LoginTimeout/time.Second)))
	ev := append(subjectFields(s), zap.String("initiator", "sp"), zap.String("logout_request_id", id), zap.String("binding", binding))
	if err := m.send(w, r, binding, dest, "SAMLRequest", el, ""); err != nil {
		m.auditEvent(w, r, zap.WarnLevel, "single_logout", "request_failed", append(ev, zap.Error(err))...)
		m.pages.Problem(w, r, Failure{Page: Unavailable, Reason: "logout_request", Err: err})
		return
	}
	m.auditEvent(w, r, zap.InfoLevel, "single_logout", "request_sent", ev...)
}

// subjectFields name a session's subject in an audit event.
func subjectFields(s Session) []zap.Field {
	f := []zap.Field{zap.String("idp", s.IdP), zap.String("name_id", s.NameID)}
	if s.UserID != "" {
		f = append(f, zap.String("user_id", s.UserID))
	}
	if s.SessionIndex != "" {
		f = append(f, zap.String("session_index", s.SessionIndex))
	}
	return f
}

// auditEvent writes one audit event (logout, single_logout, a refused
// login at the ACS): what
// happened, with the request's client address and ID.
func (m *Manager) auditEvent(w http.ResponseWriter, r *http.Request, level zapcore.Level, event, outcome string, fields ...zap.Field) {
	ce := m.audit.Check(level, event)
	if ce == nil {
		return
	}
	var client, reqID string
	if m.clientAddr != nil {
		client = m.clientAddr(r)
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		client = host
	} else {
		client = r.RemoteAddr
	}
	if m.requestID != nil {
		reqID = m.requestID(r)
	} else {
		reqID = w.Header().Get("X-Request-Id")
	}
	all := make([]zap.Field, 0, len(fields)+4)
	all = append(all, zap.String("event", event), zap.String("outcome", outcome))
	all = append(all, fields...)
	all = append(all, zap.String("client_ip", client))
	if reqID != "" {
		all = append(all, zap.String("request_id", reqID))
	}
	ce.Write(all...)
}

// logoutCookie binds an SP-initiated logout to its response; maxAge < 0
// deletes it.
func (m *Manager) logoutCookie(sealed string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: m.logoutCookieName(), Value: sealed, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: m.secure(), SameSite: m.crossSite()}
}

// sameOrigin accepts a request that says it comes from base_url's origin:
// by its Origin header, else its Sec-Fetch-Site header, else its Referer.
// A request that says none of these is refused. "Origin: null" (a page
// with no-referrer, a sandboxed frame) only defers to Sec-Fetch-Site,
// which the browser computes whatever the page's policy.
func (m *Manager) sameOrigin(r *http.Request) error {
	origin := m.base.Scheme + "://" + m.base.Host
	if o := r.Header.Values("Origin"); len(o) == 1 && o[0] == "null" {
		if r.Header.Get("Sec-Fetch-Site") == "same-origin" {
			return nil
		}
		return errors.New("the Origin header is null and Sec-Fetch-Site does not say same-origin")
	}
	if o := r.Header.Values("Origin"); len(o) > 0 {
		if len(o) == 1 && strings.EqualFold(o[0], origin) {
			return nil
		}
		return fmt.Errorf("the Origin header %s is not %s", quoted(strings.Join(o, ", ")), origin)
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		if site == "same-origin" {
			return nil
		}
		return fmt.Errorf("the Sec-Fetch-Site header is %s", quoted(site))
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		if u, err := url.Parse(ref); err == nil && strings.EqualFold(u.Scheme+"://"+u.Host, origin) && u.User == nil {
			return nil
		}
		return errors.New("the Referer header is from another origin")
	}
	return errors.New("no Origin, Sec-Fetch-Site or Referer says where the request comes from")
}

// ServeSLO is the SingleLogoutService: it takes an IdP's LogoutRequest
// (IdP-initiated single logout, HTTP-Redirect or HTTP-POST) and the
// LogoutResponse that answers gatehouse's own LogoutRequest.
func (m *Manager) ServeSLO(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	msg, err := m.readSLO(w, r)
	if err == nil {
		err = m.checkSLOHead(msg.root)
	}
	if err != nil {
		reason := "slo"
		if errors.Is(err, errXMLLimit) {
			reason = "size"
		}
		if isLogoutResponse(r) && m.unverifiedLogoutResponse(w, r, reason, err) {
			return
		}
		m.pages.Problem(w, r, Failure{Page: LoginFailed, Reason: reason, Err: err})
		return
	}
	if f := m.claimSLO(r.Context(), msg); f != nil {
		if msg.root.Tag == "LogoutResponse" && m.unverifiedLogoutResponse(w, r, f.Reason, f.Err) {
			return
		}
		m.pages.Problem(w, r, *f)
		return
	}
	if msg.root.Tag == "LogoutResponse" {
		m.logoutResponse(w, r, msg)
		return
	}
	m.logoutRequest(w, r, msg)
}

// claimSLO records the message's ID in the replay cache until the end of
// the window checkSLOHead accepts it in, so that it is acted on once.
func (m *Manager) claimSLO(ctx context.Context, msg *sloMessage) *Failure {
	id := msg.root.SelectAttrValue("ID", "")
	if id == "" {
		return &Failure{Page: LoginFailed, Reason: "slo", Err: errors.New("logout message without an ID")}
	}
	at, _ := time.Parse(time.RFC3339Nano, msg.root.SelectAttrValue("IssueInstant", "")) // checked by checkSLOHead
	fresh, err := m.replay.Claim(ctx, "slo\x00"+msg.in.cfg.EntityID+"\x00"+id, at.Add(m.cfg.ClockSkew+saml.MaxIssueDelay))
	if err != nil {
		return &Failure{Page: Unavailable, Reason: "replay_cache", Err: err}
	}
	if !fresh {
		return &Failure{Page: LoginFailed, Reason: "replay", Err: fmt.Errorf("logout message %s was already used", id)}
	}
	return nil
}

// logoutRequest ends the sessions an IdP's LogoutRequest names, on every
// replica the revocations reach, and answers it.
func (m *Manager) logoutRequest(w http.ResponseWriter, r *http.Request, msg *sloMessage) {
	root := msg.root
	if v := root.SelectAttrValue("NotOnOrAfter", ""); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err != nil || !m.now().Add(-m.cfg.ClockSkew).Before(t) {
			m.pages.Problem(w, r, Failure{Page: LoginFailed, Reason: "slo", Err: errors.New("LogoutRequest expired (NotOnOrAfter)")})
			return
		}
	}
	nids := childrenNS(root, nsAssertion, "NameID")
	if len(nids) != 1 || nids[0].Text() == "" {
		m.pages.Problem(w, r, Failure{Page: LoginFailed, Reason: "slo", Err: errors.New("LogoutRequest must name exactly one NameID (encrypted IDs are not supported)")})
		return
	}
	name := msg.in.cfg.Name
	target := Session{IdP: name, NameID: nids[0].Text()}
	var indexes []string
	for _, e := range childrenNS(root, nsProtocol, "SessionIndex") {
		indexes = append(indexes, strings.TrimSpace(e.Text()))
	}
	ctx := r.Context()
	// The browser's own session, read before the revocation ends it: the
	// audit event names its user when the logout is about it.
	own, hasOwn := m.Load(r)
	var rerr error
	if len(indexes) == 0 {
		rerr = m.revoke(ctx, target)
	}
	for _, idx := range indexes {
		t := target
		t.SessionIndex = idx
		rerr = errors.Join(rerr, m.revoke(ctx, t))
	}
	status := statusOK
	if rerr != nil {
		m.log.Error("single logout: revoke sessions", zap.String("idp", name), zap.Error(rerr))
		status = "urn:oasis:names:tc:SAML:2.0:status:Responder"
	}
	m.clearSession(w) // the front channel runs through the user's own browser
	m.log.Info("single logout from the IdP", zap.String("idp", name), zap.Int("session_indexes", len(indexes)))
	ev := []zap.Field{zap.String("initiator", "idp"), zap.String("idp", name), zap.String("name_id", target.NameID)}
	if hasOwn && own.IdP == name && own.NameID == target.NameID && own.UserID != "" {
		ev = append(ev, zap.String("user_id", own.UserID))
	}
	if len(indexes) > 0 {
		ev = append(ev, zap.String("ended", "sessions_by_index"), zap.Strings("session_indexes", indexes))
	} else {
		ev = append(ev, zap.String("ended", "all_sessions_of_name_id"))
	}
	ev = append(ev, zap.String("logout_request_id", root.SelectAttrValue("ID", "")))
	outcome := "ended"
	if rerr != nil {
		outcome = "revoke_failed"
		ev = append(ev, zap.Error(rerr))
	}
	m.auditEvent(w, r, zap.InfoLevel, "single_logout", outcome, ev...)
	_, dest := sloEndpoint(msg.in.sp.Load().IDPMetadata, msg.binding)
	binding := msg.binding
	if dest == "" {
		binding = map[string]string{saml.HTTPPostBinding: saml.HTTPRedirectBinding, saml.HTTPRedirectBinding: saml.HTTPPostBinding}[binding]
		_, dest = sloEndpoint(msg.in.sp.Load().IDPMetadata, binding)
	}
	if dest == "" {
		m.pages.SignedOut(w, r)
		return
	}
	el, _, err := m.message("LogoutResponse", dest)
	if err != nil {
		m.pages.Problem(w, r, Failure{Page: Unavailable, Reason: "random", Err: err})
		return
	}
	el.CreateAttr("InResponseTo", root.SelectAttrValue("ID", ""))
	el.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", status)
	if err := m.send(w, r, binding, dest, "SAMLResponse", el, msg.relay); err != nil {
		m.pages.Problem(w, r, Failure{Page: Unavailable, Reason: "logout_response", Err: err})
	}
}

// logoutResponse completes an SP-initiated logout: the response must
// answer the LogoutRequest this browser sent, from the IdP it went to.
func (m *Manager) logoutResponse(w http.ResponseWriter, r *http.Request, msg *sloMessage) {
	id, idpName, ok := m.pendingLogout(r)
	if !ok {
		m.pages.Problem(w, r, Failure{Page: LoginFailed, Reason: "slo", Err: errors.New("LogoutResponse without a pending logout in this browser")})
		return
	}
	if got := msg.root.SelectAttrValue("InResponseTo", ""); got != id || msg.in.cfg.Name != idpName {
		err := fmt.Errorf("LogoutResponse answers %s from %s, not this browser's logout", quoted(got), msg.in.cfg.Name)
		if !m.unverifiedLogoutResponse(w, r, "in_response_to", err) {
			m.pages.Problem(w, r, Failure{Page: LoginFailed, Reason: "in_response_to", Err: err})
		}
		return
	}
	// Used up: the same response cannot complete a logout twice.
	http.SetCookie(w, m.logoutCookie("", -1))
	ev := []zap.Field{zap.String("initiator", "sp"), zap.String("idp", idpName), zap.String("logout_request_id", id)}
	if sc := msg.root.FindElement("./Status/StatusCode"); sc == nil || sc.SelectAttrValue("Value", "") != statusOK {
		// The session here is already gone; the IdP's may live on.
		status := ""
		if sc != nil {
			status = sc.SelectAttrValue("Value", "")
		}
		m.log.Warn("the IdP did not confirm single logout", zap.String("idp", idpName), zap.String("status", status))
		m.auditEvent(w, r, zap.WarnLevel, "single_logout", "not_confirmed", append(ev, zap.String("status", status))...)
	} else {
		m.auditEvent(w, r, zap.InfoLevel, "single_logout", "confirmed", ev...)
	}
	w.Header().Set("Cache-Control", "no-store")
	m.pages.SignedOut(w, r)
}

// pendingLogout returns the LogoutRequest ID and IdP of this browser's
// own logout, from the cookie ServeLogout set after it had ended the
// session here, if the browser holds one that is live.
func (m *Manager) pendingLogout(r *http.Request) (id, idpName string, ok bool) {
	name := m.logoutCookieName()
	c, err := r.Cookie(name)
	if err != nil {
		return "", "", false
	}
	plain, err := m.sealer.open(name, c.Value)
	var expires time.Time
	if err == nil {
		err = unpack(plain, stateFormat, []*time.Time{&expires}, &id, &idpName)
	}
	if err != nil || m.now().After(expires) {
		return "", "", false
	}
	return id, idpName, true
}

// isLogoutResponse reports whether r carries a SAMLResponse (and no
// SAMLRequest): an answer to a logout, whatever it turns out to hold.
func isLogoutResponse(r *http.Request) bool {
	v := r.PostForm
	if r.Method != http.MethodPost {
		v, _ = url.ParseQuery(r.URL.RawQuery)
	}
	return v.Has("SAMLResponse") && !v.Has("SAMLRequest")
}

// unverifiedLogoutResponse handles a LogoutResponse that failed its checks
// (unsigned, badly signed, from another IdP, answering another request,
// replayed...) in a browser whose session this SP had already ended with
// its own LogoutRequest: many IdPs (SimpleSAMLphp by default) do not sign
// their LogoutResponse. The browser gets the signed-out page, which it
// would have got anyway; the response is logged and does nothing else: no
// session is touched, its RelayState is not followed, and the pending
// logout stays for the genuine answer. It reports false, doing nothing,
// when the browser has no pending logout: then the caller refuses the
// message as before. It does the same when the browser has a live session
// (one begun since in another tab, or with a cookie the login did not
// clear): a forged answer must not show "Signed out" to a signed-in user.
func (m *Manager) unverifiedLogoutResponse(w http.ResponseWriter, r *http.Request, reason string, err error) bool {
	id, idpName, ok := m.pendingLogout(r)
	if !ok {
		return false
	}
	if _, live := m.Load(r); live {
		return false
	}
	m.log.Warn("unverified LogoutResponse after this browser's logout: signed-out page shown, nothing else done",
		zap.String("idp", idpName), zap.String("reason", reason), zap.Error(err))
	m.auditEvent(w, r, zap.WarnLevel, "single_logout", "unverified", zap.String("initiator", "sp"), zap.String("idp", idpName),
		zap.String("logout_request_id", id), zap.String("reason", reason), zap.Error(err))
	w.Header().Set("Cache-Control", "no-store")
	m.pages.SignedOut(w, r)
	return true
}

// clearSession deletes the session cookie.
func (m *Manager) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: m.cfg.Cookie.Name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: m.secure(), SameSite: http.SameSiteLaxMode})
}

// crossSite is the SameSite mode of a cookie that must come back on a
// cross-site POST from the IdP.
func (m *Manager) crossSite() http.SameSite {
	if m.secure() {
		return http.SameSiteNoneMode
	}
	return http.SameSiteLaxMode
}
