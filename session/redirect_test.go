package session

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// TestAuthnRedirectMatchesCrewjam: the pooled redirect builder gives the
// URL crewjam/saml's AuthnRequest.Redirect gives, byte for byte, for an
// unsigned and a signed request, a destination with and without a query,
// and with and without RelayState; run twice, so that a writer back from
// the pool is proved to start clean.
func TestAuthnRedirectMatchesCrewjam(t *testing.T) {
	key, cert := testSigner(t)
	acs, _ := url.Parse("https://app.example.test/.gatehouse/saml/acs")
	md, _ := url.Parse("https://app.example.test/.gatehouse/saml/metadata")
	for _, signed := range []bool{false, true} {
		for _, dest := range []string{"https://idp.example.test/sso", "https://idp.example.test/sso?tenant=a%20b&x=1"} {
			for _, relay := range []string{"", "AbC-_123"} {
				for round := range 2 {
					sp := &saml.ServiceProvider{EntityID: md.String(), Key: key, Certificate: cert, AcsURL: *acs, MetadataURL: *md}
					if signed {
						sp.SignatureMethod = dsig.RSASHA256SignatureMethod
					}
					req, err := sp.MakeAuthenticationRequest(dest, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
					if err != nil {
						t.Fatal(err)
					}
					want, err := req.Redirect(relay, sp)
					if err != nil {
						t.Fatal(err)
					}
					got, err := authnRedirect(req, relay, sp)
					if err != nil {
						t.Fatal(err)
					}
					if got != want.String() {
						t.Fatalf("signed=%v dest=%s relay=%q round %d:\n got %s\nwant %s", signed, dest, relay, round, got, want)
					}
				}
			}
		}
	}
}

// TestDeflateBase64Inflates: what deflateBase64 writes inflates back to
// its input, for messages of every size around the writer's buffers,
// each from a writer that has served others.
func TestDeflateBase64Inflates(t *testing.T) {
	for _, n := range []int{0, 1, 100, 4096, 65535, 65536, 300_000} {
		raw := []byte(strings.Repeat("<samlp:AuthnRequest ID=\"x\"/>", n/28+1)[:n])
		b, err := base64.StdEncoding.DecodeString(deflateBase64(raw))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(flate.NewReader(bytes.NewReader(b)))
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("%d bytes: inflated %d bytes, %v", n, len(got), err)
		}
	}
}
