package session

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// maxMetadataBytes bounds a metadata document; federation aggregates run
// to tens of megabytes.
const maxMetadataBytes = 64 << 20

// metadataDoc is a metadata document as read: its bytes (only the signed
// element when a signature was verified) and when to read it again.
type metadataDoc struct {
	data       []byte
	refresh    time.Time // zero: on the regular schedule
	validUntil time.Time // zero: none declared
}

// fetchMetadata reads an IdP's metadata document from its file or URL.
func fetchMetadata(ctx context.Context, client *http.Client, p IdP) ([]byte, error) {
	if p.MetadataFile != "" {
		b, err := os.ReadFile(p.MetadataFile)
		if err != nil {
			return nil, fmt.Errorf("read metadata: %w", err)
		}
		return b, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.MetadataURL, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch metadata: %w", err)
	}
	resp, err := httpsOnly(client).Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch metadata: HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch metadata: %w", err)
	}
	if len(data) > maxMetadataBytes {
		return nil, fmt.Errorf("fetch metadata: larger than %d bytes", maxMetadataBytes)
	}
	return data, nil
}

// maxMetadataRedirects bounds the redirects a metadata fetch follows.
const maxMetadataRedirects = 5

// httpsOnly is client with a redirect policy for metadata: at most
// maxMetadataRedirects redirects, every one to an https URL (a redirect
// that leaves https would hand the metadata, and with metadata_unsigned
// the IdP's keys, to anyone on the path).
func httpsOnly(client *http.Client) *http.Client {
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" {
			return fmt.Errorf("refused a redirect from https to %s", req.URL.Scheme)
		}
		if len(via) > maxMetadataRedirects {
			return fmt.Errorf("stopped after %d redirects", maxMetadataRedirects)
		}
		if client.CheckRedirect != nil {
			return client.CheckRedirect(req, via)
		}
		return nil
	}
	return &c
}

// checkDocument applies what holds for any metadata document: no DTD,
// well-formed and round-trip safe XML, a signature by one of certs when
// certs are given (the returned bytes are then the signed element only,
// so nothing outside the signature is ever read), and a validUntil that
// has not passed. refresh is the earlier of three quarters of the way to
// validUntil and now plus cacheDuration, when either is set.
func checkDocument(data []byte, certs []*x509.Certificate, now time.Time) (metadataDoc, error) {
	doc, err := readXML(data, metadataLimits)
	if err != nil {
		return metadataDoc{}, fmt.Errorf("metadata: %w", err)
	}
	root := doc.Root()
	if len(certs) > 0 {
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: certs})
		vc.Clock = dsig.NewFakeClockAt(now)
		signed, err := vc.Validate(root)
		if err != nil {
			return metadataDoc{}, fmt.Errorf("metadata: signature not valid with the configured metadata_signing_certs: %w", err)
		}
		out := etree.NewDocument()
		out.SetRoot(signed)
		if data, err = out.WriteToBytes(); err != nil {
			return metadataDoc{}, fmt.Errorf("metadata: %w", err)
		}
		root = signed
	}
	md := metadataDoc{data: data}
	if v := root.SelectAttrValue("validUntil", ""); v != "" {
		until, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return metadataDoc{}, fmt.Errorf("metadata: validUntil %q is not a time", v)
		}
		if !now.Before(until) {
			return metadataDoc{}, fmt.Errorf("metadata: expired at its validUntil, %s", until.UTC().Format(time.RFC3339))
		}
		// Read it again well before it expires: three quarters of the way.
		md.refresh, md.validUntil = now.Add(until.Sub(now)*3/4), until
	}
	if v := root.SelectAttrValue("cacheDuration", ""); v != "" {
		if d, err := parseXSDuration(v); err == nil && d > 0 {
			if next := now.Add(d); md.refresh.IsZero() || next.Before(md.refresh) {
				md.refresh = next
			}
		}
	}
	return md, nil
}

// parseXSDuration reads the xs:duration forms metadata uses (PnDTnHnMnS,
// with weeks and fractional seconds); years and months count as 365 and 30
// days.
func parseXSDuration(s string) (time.Duration, error) {
	var d saml.Duration
	if err := d.UnmarshalText([]byte(s)); err != nil {
		return 0, err
	}
	return time.Duration(d), nil
}

// parseMetadata finds the entity with the expected ID in an
// EntityDescriptor or an EntitiesDescriptor and checks that it can serve
// as an IdP for SP-initiated logins.
func parseMetadata(data []byte, entityID string) (*saml.EntityDescriptor, error) {
	if _, err := readXML(data, metadataLimits); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var candidates []saml.EntityDescriptor
	var one saml.EntityDescriptor
	if err := xml.Unmarshal(data, &one); err == nil {
		candidates = append(candidates, one)
	} else {
		var many saml.EntitiesDescriptor
		if err2 := xml.Unmarshal(data, &many); err2 != nil {
			return nil, fmt.Errorf("metadata: neither an EntityDescriptor nor an EntitiesDescriptor: %w", err)
		}
		candidates = collect(many)
	}
	for i := range candidates {
		ed := &candidates[i]
		if ed.EntityID != entityID {
			continue
		}
		if len(ed.IDPSSODescriptors) == 0 {
			return nil, fmt.Errorf("metadata: entity %q has no IDPSSODescriptor", entityID)
		}
		if !hasSigningCert(ed) {
			return nil, fmt.Errorf("metadata: entity %q publishes no signing certificate", entityID)
		}
		loc := ssoLocation(ed)
		if loc == "" {
			return nil, fmt.Errorf("metadata: entity %q has no SingleSignOnService with the HTTP-Redirect binding", entityID)
		}
		if u, err := url.Parse(loc); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("metadata: SingleSignOnService location %q is not an http(s) URL", loc)
		}
		return ed, nil
	}
	return nil, fmt.Errorf("metadata: no entity with ID %q", entityID)
}

func collect(e saml.EntitiesDescriptor) []saml.EntityDescriptor {
	out := append([]saml.EntityDescriptor(nil), e.EntityDescriptors...)
	for _, child := range e.EntitiesDescriptors {
		out = append(out, collect(child)...)
	}
	return out
}

func hasSigningCert(ed *saml.EntityDescriptor) bool {
	for _, d := range ed.IDPSSODescriptors {
		for _, k := range d.KeyDescriptors {
			if (k.Use == "" || k.Use == "signing") && len(k.KeyInfo.X509Data.X509Certificates) > 0 {
				return true
			}
		}
	}
	return false
}

func ssoLocation(ed *saml.EntityDescriptor) string {
	for _, d := range ed.IDPSSODescriptors {
		for _, s := range d.SingleSignOnServices {
			if s.Binding == saml.HTTPRedirectBinding {
				return s.Location
			}
		}
	}
	return ""
}

// organizationName is the display name an entity gives itself, if any.
func organizationName(ed *saml.EntityDescriptor) string {
	if ed.Organization != nil {
		for _, n := range ed.Organization.OrganizationDisplayNames {
			if n.Value != "" {
				return n.Value
			}
		}
	}
	return ""
}

var errNoMetadata = errors.New("identity provider metadata is not loaded yet")

// loadCerts reads PEM certificates from files.
func loadCerts(files []string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		found := false
		for {
			var blk *pem.Block
			blk, b = pem.Decode(b)
			if blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			out, found = append(out, c), true
		}
		if !found {
			return nil, fmt.Errorf("%s: no PEM certificate", f)
		}
	}
	return out, nil
}

// cachePath is where the last good copy of a metadata URL is kept.
func cachePath(dir, metadataURL string) string {
	sum := sha256.Sum256([]byte(metadataURL))
	return filepath.Join(dir, "metadata-"+hex.EncodeToString(sum[:8])+".xml")
}

// writeCache keeps a verified document, atomically.
func writeCache(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".metadata-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// CheckMetadata loads every IdP's metadata once, for a config check, and
// returns each failure with its key path. It writes nothing.
func CheckMetadata(ctx context.Context, client *http.Client, idps []IdP) []error {
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	var errs []error
	for i, p := range idps {
		if p.Kind == KindOIDC {
			if err := checkOIDC(ctx, client, p); err != nil {
				errs = append(errs, fmt.Errorf("idps[%d].issuer: %w", i, err))
			}
			continue
		}
		key := "metadata_file"
		if p.MetadataURL != "" {
			key = "metadata_url"
		}
		certs, err := loadCerts(p.MetadataSigningCerts)
		if err != nil {
			errs = append(errs, fmt.Errorf("idps[%d].metadata_signing_certs: %w", i, err))
			continue
		}
		data, err := fetchMetadata(ctx, client, p)
		if err == nil {
			var md metadataDoc
			if md, err = checkDocument(data, certs, time.Now()); err == nil {
				_, err = parseMetadata(md.data, p.EntityID)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("idps[%d].%s: %w", i, key, err))
		}
	}
	return errs
}

// metadataStatus is the outcome of an IdP's metadata loads so far.
type metadataStatus struct {
	lastAttempt, lastSuccess time.Time
	lastErr                  error // of the last attempt; nil when it succeeded
	validUntil               time.Time
	fromCache                bool
}

// recordLoad keeps the outcome of one load of in's metadata.
func (m *Manager) recordLoad(in *idp, err error, fromCache bool) {
	st := metadataStatus{lastAttempt: m.now(), lastErr: err}
	if prev := in.status.Load(); prev != nil {
		st.lastSuccess, st.validUntil, st.fromCache = prev.lastSuccess, prev.validUntil, prev.fromCache
	}
	if err == nil {
		st.lastSuccess, st.validUntil, st.fromCache = st.lastAttempt, in.validUntil, fromCache
	}
	in.status.Store(&st)
}

// MetadataState is the state of one IdP's metadata, for readiness and
// metrics.
type MetadataState struct {
	IdP  string // configured name
	Kind string // KindSAML or KindOIDC
	// Usable: metadata is loaded and its validUntil has not passed, so
	// logins from this IdP can work.
	Usable bool
	// Err says why the metadata is not usable; nil when it is.
	Err error
	// ValidUntil is the loaded metadata's validUntil; zero when it
	// declares none or none is loaded.
	ValidUntil time.Time
	// LastSuccess is when metadata last loaded (from its file, its URL or
	// the cached copy); zero when it never has in this process.
	LastSuccess time.Time
	// LastError is the failure of the latest load attempt; nil when that
	// attempt succeeded. With Usable set, it means the last good metadata
	// is being kept (stale).
	LastError error
	// FromCache: the metadata in use was read from metadata_cache_dir.
	FromCache bool
	// FromURL: the metadata comes from a metadata_url, refreshed on a
	// schedule (a metadata_file is read at start and on Reload only).
	FromURL bool
	// SigningCertExpiry is the soonest NotAfter of the signing
	// certificates in the loaded metadata; zero when none is loaded.
	SigningCertExpiry time.Time
}

// MetadataStates returns the state of every IdP's metadata, in configured
// order. It is cheap (no I/O) and safe to call from any goroutine.
func (m *Manager) MetadataStates() []MetadataState {
	now := m.now()
	out := make([]MetadataState, 0, len(m.idps))
	for _, in := range m.idps {
		s := MetadataState{IdP: in.cfg.Name, FromURL: in.cfg.MetadataURL != "" || in.oidc != nil, Kind: KindSAML}
		if in.oidc != nil {
			s.Kind = KindOIDC
		}
		var st metadataStatus
		if p := in.status.Load(); p != nil {
			st = *p
		}
		s.LastSuccess, s.LastError, s.FromCache = st.lastSuccess, st.lastErr, st.fromCache
		loaded := in.loaded()
		if loaded {
			s.ValidUntil = st.validUntil
			for _, c := range in.signingCerts() {
				if s.SigningCertExpiry.IsZero() || c.NotAfter.Before(s.SigningCertExpiry) {
					s.SigningCertExpiry = c.NotAfter
				}
			}
		}
		switch {
		case loaded && (st.validUntil.IsZero() || now.Before(st.validUntil)):
			s.Usable = true
		case st.lastSuccess.IsZero():
			s.Err = errNoMetadata
			if st.lastErr != nil {
				s.Err = fmt.Errorf("%w: %w", errNoMetadata, st.lastErr)
			}
		default:
			s.Err = fmt.Errorf("metadata expired at its validUntil, %s", st.validUntil.UTC().Format(time.RFC3339))
			if st.lastErr != nil {
				s.Err = fmt.Errorf("%w; last refresh failed: %w", s.Err, st.lastErr)
			}
		}
		out = append(out, s)
	}
	return out
}

// CertificateExpiry names a certificate and when it expires.
type CertificateExpiry struct {
	Name     string
	NotAfter time.Time
}

// SPCertificates are the SP's own certificates, in configured order: "sp"
// for a signing (or signing and encryption) certificate and
// "sp_encryption" for an encryption-only one; a second certificate of the
// same kind (a rollover) is "sp_2", "sp_encryption_2" and so on.
func (m *Manager) SPCertificates() []CertificateExpiry {
	var out []CertificateExpiry
	seen := map[string]int{}
	for _, k := range m.keys {
		if k.cert == nil {
			continue
		}
		name := "sp"
		if !k.signing {
			name = "sp_encryption"
		}
		seen[name]++
		if n := seen[name]; n > 1 {
			name = fmt.Sprintf("%s_%d", name, n)
		}
		out = append(out, CertificateExpiry{Name: name, NotAfter: k.cert.NotAfter})
	}
	return out
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
