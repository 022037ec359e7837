package session

import (
	"context"
	"os"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
	"go.uber.org/zap"
)

// Loading IdP metadata, and keeping it current while the Manager serves.

// load reads, verifies and installs an IdP's metadata. A metadata URL
// that cannot be read at start falls back to the last good copy in
// metadata_cache_dir; every good copy read from the URL is kept there.
// memo shares one fetch of a URL between the IdPs of one aggregate.
func (m *Manager) load(ctx context.Context, in *idp, memo map[string][]byte) (err error) {
	if in.oidc != nil {
		return m.loadOIDC(ctx, in)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var data []byte
	fromCache := false
	defer func() { m.recordLoad(in, err, fromCache) }()
	if b, ok := memo[in.cfg.MetadataURL]; ok && in.cfg.MetadataURL != "" {
		data = b
	} else if data, err = fetchMetadata(ctx, m.client, in.cfg); err == nil && in.cfg.MetadataURL != "" {
		memo[in.cfg.MetadataURL] = data
	}
	if err != nil && in.cfg.MetadataURL != "" && m.cfg.MetadataCacheDir != "" && in.sp.Load() == nil {
		if b, cerr := os.ReadFile(cachePath(m.cfg.MetadataCacheDir, in.cfg.MetadataURL)); cerr == nil {
			m.log.Warn("idp metadata URL failed; using the last good copy", zap.String("idp", in.cfg.Name), zap.Error(err))
			data, err, fromCache = b, nil, true
		}
	}
	if err != nil {
		return err
	}
	now := m.now()
	md, err := checkDocument(data, in.certs, now)
	if err != nil {
		return err
	}
	ed, err := parseMetadata(md.data, in.cfg.EntityID)
	if err != nil {
		return err
	}
	sp := &saml.ServiceProvider{
		EntityID:          m.cfg.EntityID,
		Key:               m.spKey,
		Certificate:       m.spCert,
		MetadataURL:       m.metaURL,
		AcsURL:            m.acsURL,
		IDPMetadata:       ed,
		AuthnNameIDFormat: saml.UnspecifiedNameIDFormat,
		HTTPClient:        m.client,
	}
	if m.spKey != nil {
		sp.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	sp.ValidateAudienceRestriction = m.checkAudience
	org := organizationName(ed)
	in.org.Store(&org)
	signing := idpSigningCerts(ed)
	in.signing.Store(&signing)
	in.sp.Store(sp)
	in.validUntil, in.next = md.validUntil, now.Add(m.refresh)
	if !md.refresh.IsZero() && md.refresh.Before(in.next) {
		in.next = md.refresh
	}
	if in.cfg.MetadataURL != "" && m.cfg.MetadataCacheDir != "" && !fromCache {
		if err := writeCache(cachePath(m.cfg.MetadataCacheDir, in.cfg.MetadataURL), data); err != nil {
			m.log.Warn("keep a copy of idp metadata", zap.String("idp", in.cfg.Name), zap.Error(err))
		}
	}
	m.log.Info("idp metadata loaded", zap.String("idp", in.cfg.Name), zap.String("entity_id", ed.EntityID), zap.Bool("from_cache", fromCache))
	return nil
}

// Reload asks Run to read every IdP's metadata again now, files too (after
// an operator replaced one). A failed reload keeps the loaded metadata.
func (m *Manager) Reload() {
	select {
	case m.reload <- struct{}{}:
	default: // one is pending already
	}
}

// Run keeps metadata URLs current until ctx ends: every 30 seconds it
// reads again those that are due (after refresh, or earlier when the
// metadata's validUntil or cacheDuration say so) or not loaded yet. A
// failed refresh keeps the last good metadata, and tries again in five
// minutes, until that metadata's validUntil passes: then the IdP is
// unloaded, and its logins get the 503 page.
func (m *Manager) Run(ctx context.Context, refresh time.Duration) {
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			m.refreshDue(ctx, refresh)
		case <-m.reload:
			memo := map[string][]byte{}
			for _, in := range m.idps {
				m.expire(in, m.now())
				if err := m.load(ctx, in, memo); err != nil {
					m.log.Warn("idp metadata reload failed; keeping what was loaded", zap.String("idp", in.cfg.Name), zap.Error(err))
				}
			}
		}
	}
}

// refreshDue is one pass of Run.
func (m *Manager) refreshDue(ctx context.Context, refresh time.Duration) {
	m.refresh = refresh
	now := m.now()
	memo := map[string][]byte{}
	for _, in := range m.idps {
		if in.cfg.MetadataURL == "" && in.oidc == nil {
			continue
		}
		m.expire(in, now)
		if in.loaded() && now.Before(in.next) {
			continue
		}
		if err := m.load(ctx, in, memo); err != nil {
			m.log.Warn("idp metadata refresh failed", zap.String("idp", in.cfg.Name), zap.Error(err))
			if in.loaded() {
				in.next = now.Add(min(5*time.Minute, refresh))
			}
		}
	}
}

// expire unloads in's metadata once its validUntil has passed (Run's
// goroutine only).
func (m *Manager) expire(in *idp, now time.Time) {
	if in.sp.Load() != nil && !in.validUntil.IsZero() && !now.Before(in.validUntil) {
		in.sp.Store(nil)
		m.log.Error("idp metadata expired (validUntil) and could not be refreshed; logins from this IdP are refused",
			zap.String("idp", in.cfg.Name), zap.Time("valid_until", in.validUntil))
	}
}
