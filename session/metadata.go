package session

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/crewjam/saml"
	xrv "github.com/mattermost/xml-roundtrip-validator"
)

const maxMetadataBytes = 8 << 20

// loadMetadata reads an IdP's metadata from its file or URL.
func loadMetadata(ctx context.Context, client *http.Client, p IdP) (*saml.EntityDescriptor, error) {
	var data []byte
	if p.MetadataFile != "" {
		b, err := os.ReadFile(p.MetadataFile)
		if err != nil {
			return nil, fmt.Errorf("read metadata: %w", err)
		}
		data = b
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.MetadataURL, nil)
		if err != nil {
			return nil, fmt.Errorf("fetch metadata: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch metadata: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch metadata: HTTP %d", resp.StatusCode)
		}
		data, err = io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
		if err != nil {
			return nil, fmt.Errorf("fetch metadata: %w", err)
		}
		if len(data) > maxMetadataBytes {
			return nil, fmt.Errorf("fetch metadata: larger than %d bytes", maxMetadataBytes)
		}
	}
	return parseMetadata(data, p.EntityID)
}

// parseMetadata finds the entity with the expected ID in an
// EntityDescriptor or an EntitiesDescriptor and checks that it can serve
// as an IdP for SP-initiated logins.
func parseMetadata(data []byte, entityID string) (*saml.EntityDescriptor, error) {
	if hasFold(data, "<!DOCTYPE") || hasFold(data, "<!ENTITY") {
		return nil, fmt.Errorf("metadata: %w", errDoctype)
	}
	if err := xrv.Validate(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("metadata: invalid XML: %w", err)
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

var errNoMetadata = errors.New("identity provider metadata is not loaded yet")

// CheckMetadata loads every IdP's metadata once, for a config check, and
// returns each failure with its key path.
func CheckMetadata(ctx context.Context, client *http.Client, idps []IdP) []error {
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	var errs []error
	for i, p := range idps {
		key := "metadata_file"
		if p.MetadataURL != "" {
			key = "metadata_url"
		}
		if _, err := loadMetadata(ctx, client, p); err != nil {
			errs = append(errs, fmt.Errorf("idps[%d].%s: %w", i, key, err))
		}
	}
	return errs
}
