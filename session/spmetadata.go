package session

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"sync"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// spMetadata caches the SP metadata document: it changes only with its
// validity window, and signing it costs an RSA signature.
type spMetadata struct {
	mu    sync.Mutex
	doc   []byte
	built time.Time
}

// metadataLifetime is how long a built metadata document is served;
// crewjam/saml declares it valid for 48 hours from when it is built.
const metadataLifetime = time.Hour

// metadata returns the SP metadata: every SP certificate with its use
// (several during a key rollover), the content and key encryption
// algorithms gatehouse accepts, and, with sign_metadata, an enveloped
// signature by the signing key.
func (m *Manager) metadata() ([]byte, error) {
	m.spMeta.mu.Lock()
	defer m.spMeta.mu.Unlock()
	now := m.now()
	if m.spMeta.doc != nil && now.Sub(m.spMeta.built) < metadataLifetime {
		return m.spMeta.doc, nil
	}
	sp := &saml.ServiceProvider{EntityID: m.cfg.EntityID, Key: m.spKey, Certificate: m.spCert, MetadataURL: m.metaURL, AcsURL: m.acsURL}
	md := sp.Metadata()
	md.ID = "gatehouse-sp-metadata"
	d := &md.SPSSODescriptors[0]
	d.SingleLogoutServices = []saml.Endpoint{
		{Binding: saml.HTTPRedirectBinding, Location: m.sloURL.String()},
		{Binding: saml.HTTPPostBinding, Location: m.sloURL.String()},
	}
	d.KeyDescriptors = nil
	var methods []saml.EncryptionMethod
	for _, a := range contentAlgorithms {
		methods = append(methods, saml.EncryptionMethod{Algorithm: a})
	}
	methods = append(methods, saml.EncryptionMethod{Algorithm: algRSAOAEP}, saml.EncryptionMethod{Algorithm: algRSAOAEP11})
	for _, k := range m.keys {
		info := saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(k.cert.Raw)}}}}
		if k.signing {
			d.KeyDescriptors = append(d.KeyDescriptors, saml.KeyDescriptor{Use: "signing", KeyInfo: info})
		}
		if k.encryption {
			d.KeyDescriptors = append(d.KeyDescriptors, saml.KeyDescriptor{Use: "encryption", KeyInfo: info, EncryptionMethods: methods})
		}
	}
	buf, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sp metadata: %w", err)
	}
	if m.cfg.SignMetadata {
		if buf, err = m.signMetadata(buf); err != nil {
			return nil, err
		}
	}
	m.spMeta.doc, m.spMeta.built = buf, now
	return buf, nil
}

// signMetadata adds an enveloped RSA-SHA256 signature as the root's first
// child, where the metadata schema wants it (the enveloped-signature
// transform ignores where it sits).
func (m *Manager) signMetadata(buf []byte) ([]byte, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(buf); err != nil {
		return nil, fmt.Errorf("sign sp metadata: %w", err)
	}
	signed, err := m.signEnveloped(doc.Root(), false)
	if err != nil {
		return nil, fmt.Errorf("sign sp metadata: %w", err)
	}
	doc.SetRoot(signed) // no re-indenting: whitespace is signed content
	return doc.WriteToBytes()
}
