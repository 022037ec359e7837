package session

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	testCert = `MIIBszCCAVmgAwIBAgIUKkQ0`
	entity   = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="%s">
<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
%s<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="%s"/>
</md:IDPSSODescriptor></md:EntityDescriptor>`
	keyDesc = `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + testCert + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`
)

func entityXML(id, keys, sso string) string { return fmt.Sprintf(entity, id, keys, sso) }

func TestParseMetadata(t *testing.T) {
	good := entityXML("https://idp", keyDesc, "https://idp/sso")
	if ed, err := parseMetadata([]byte(good), "https://idp"); err != nil || ed.EntityID != "https://idp" {
		t.Fatalf("good metadata: %v", err)
	}
	aggregate := `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">` +
		strings.Replace(entityXML("https://a", keyDesc, "https://a/sso"), `xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" `, "", 1) +
		strings.Replace(entityXML("https://b", keyDesc, "https://b/sso"), `xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" `, "", 1) +
		`</md:EntitiesDescriptor>`
	if ed, err := parseMetadata([]byte(aggregate), "https://b"); err != nil || ssoLocation(ed) != "https://b/sso" {
		t.Errorf("aggregate: %v", err)
	}
	for name, doc := range map[string]string{
		"other entity":    good,
		"no signing key":  entityXML("https://idp", "", "https://idp/sso"),
		"javascript sso":  entityXML("https://idp", keyDesc, "javascript:alert(1)"),
		"doctype":         `<!DOCTYPE x [<!ENTITY e "e">]>` + good,
		"not metadata":    `<html/>`,
		"not xml":         `{`,
		"encryption only": entityXML("https://idp", strings.Replace(keyDesc, `use="signing"`, `use="encryption"`, 1), "https://idp/sso"),
	} {
		want := "https://idp"
		if name == "other entity" {
			want = "https://someone-else"
		}
		if _, err := parseMetadata([]byte(doc), want); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestMetadataFromURL loads metadata over HTTPS and reports a failing URL
// with its key path.
func TestMetadataFromURL(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metadata" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(entityXML("https://idp", keyDesc, "https://idp/sso")))
	}))
	defer srv.Close()
	idps := []IdP{
		{Name: "ok", EntityID: "https://idp", MetadataURL: srv.URL + "/metadata"},
		{Name: "missing", EntityID: "https://idp", MetadataURL: srv.URL + "/nothing"},
	}
	errs := CheckMetadata(context.Background(), srv.Client(), idps)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "idps[1].metadata_url: fetch metadata: HTTP 404") {
		t.Errorf("errs = %v", errs)
	}
}
