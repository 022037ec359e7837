package session

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"slices"
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

// metadataLifetime is how long a built metadata document is served
// before it is built (and signed) again.
const metadataLifetime = time.Hour

// metadata returns the SP metadata: every SP certificate with its use
// (several during a key rollover), the content and key encryption
// algorithms gatehouse accepts, the one ACS binding it implements
// (HTTP-POST), the NameID formats its IdPs are asked for, a validUntil
// only with sp_metadata_valid_for, and, when there is a signing key
// (unless sign_metadata is false), an enveloped signature by it.
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
	d.ValidUntil, d.CacheDuration = nil, 0 // the root's alone, below
	signsRequests := m.spKey != nil
	d.AuthnRequestsSigned = &signsRequests
	// No HTTP-Artifact ACS: gatehouse does not resolve artifacts.
	d.AssertionConsumerServices = []saml.IndexedEndpoint{{Binding: saml.HTTPPostBinding, Location: m.acsURL.String(), Index: 1}}
	d.NameIDFormats = nil
	for _, in := range m.idps {
		if f := saml.NameIDFormat(nameIDFormatURN(in.cfg.NameIDFormat)); f != "" && !slices.Contains(d.NameIDFormats, f) {
			d.NameIDFormats = append(d.NameIDFormats, f)
		}
	}
	d.SingleLogoutServices = []saml.Endpoint{
		{Binding: saml.HTTPRedirectBinding, Location: m.sloURL.String()},
		{Binding: saml.HTTPPostBinding, Location: m.sloURL.String()},
	}
	d.KeyDescriptors = nil
	// AES-CBC is advertised only when an IdP may use it (allow_cbc): an
	// IdP that reads this list must not pick what would be refused.
	anyCBC := false
	for _, in := range m.idps {
		anyCBC = anyCBC || in.cfg.AllowCBC
	}
	var methods []saml.EncryptionMethod
	for _, a := range contentAlgorithms {
		if cbcContent[a] && !anyCBC {
			continue
		}
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
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(buf); err != nil {
		return nil, fmt.Errorf("sp metadata: %w", err)
	}
	root := doc.Root()
	// crewjam/saml always writes a validUntil (48 hours on) and a
	// cacheDuration; an IdP that enforces validUntil (Shibboleth does)
	// would drop a saved copy after two days.
	root.RemoveAttr("validUntil")
	root.RemoveAttr("cacheDuration")
	if v := m.cfg.MetadataValidFor; v > 0 {
		root.CreateAttr("validUntil", now.Add(v).UTC().Format(time.RFC3339))
		cd, _ := saml.Duration(min(v/4, 24*time.Hour)).MarshalText()
		root.CreateAttr("cacheDuration", string(cd))
	}
	if m.signsMetadata() {
		signed, err := m.signEnveloped(root, false)
		if err != nil {
			return nil, fmt.Errorf("sign sp metadata: %w", err)
		}
		doc.SetRoot(signed) // no re-indenting: whitespace is signed content
	}
	if buf, err = doc.WriteToBytes(); err != nil {
		return nil, fmt.Errorf("sp metadata: %w", err)
	}
	m.spMeta.doc, m.spMeta.built = buf, now
	return buf, nil
}

// signsMetadata: the metadata is signed when there is a signing key,
// unless sign_metadata is false.
func (m *Manager) signsMetadata() bool {
	return m.spKey != nil && (m.cfg.SignMetadata == nil || *m.cfg.SignMetadata)
}
