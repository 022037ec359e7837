package session

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"net/url"
	"sync"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// The HTTP-Redirect binding deflates each message. A flate writer holds
// about 600 KiB of state, which crewjam/saml allocates anew for every
// AuthnRequest it redirects: most of the garbage a login start made. The
// writers are kept in a pool and reset instead.
var deflaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestCompression)
	return w
}}

// deflateBase64 is raw deflated (best compression, as crewjam/saml
// does) and base64-encoded, the form of the SAMLRequest and SAMLResponse
// parameters of the redirect binding.
func deflateBase64(raw []byte) string {
	var buf bytes.Buffer
	w := deflaters.Get().(*flate.Writer)
	w.Reset(&buf)
	w.Write(raw) // a bytes.Buffer does not fail
	w.Close()
	deflaters.Put(w)
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// authnRedirect is the URL that sends req to the IdP over the redirect
// binding with relay as RelayState: what crewjam/saml's
// AuthnRequest.Redirect builds, byte for byte
// (TestAuthnRedirectMatchesCrewjam), with a pooled deflater.
func authnRedirect(req *saml.AuthnRequest, relay string, sp *saml.ServiceProvider) (string, error) {
	doc := etree.NewDocument()
	doc.SetRoot(req.Element())
	raw, err := doc.WriteToBytes()
	if err != nil {
		return "", err
	}
	u, err := url.Parse(req.Destination)
	if err != nil {
		return "", err
	}
	// The order of the parameters is what a signature covers.
	query := u.RawQuery
	if query != "" {
		query += "&"
	}
	query += "SAMLRequest=" + url.QueryEscape(deflateBase64(raw))
	if relay != "" {
		query += "&RelayState=" + relay
	}
	if sp.SignatureMethod != "" {
		query += "&SigAlg=" + url.QueryEscape(sp.SignatureMethod)
		signer, err := saml.GetSigningContext(sp)
		if err != nil {
			return "", err
		}
		sig, err := signer.SignString(query)
		if err != nil {
			return "", err
		}
		query += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	}
	u.RawQuery = query
	return u.String(), nil
}
