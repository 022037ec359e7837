package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
)

// explainConfig is a config for the golden responses of test/testdata:
// issued by https://idp.example.test/saml for https://sp.example.test.
func explainConfig(t *testing.T) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "test", "testdata", "idp.crt"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		t.Fatal(err)
	}
	meta := fmt.Sprintf(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.test/saml">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`, base64.StdEncoding.EncodeToString(blk.Bytes))
	if err := os.WriteFile(filepath.Join(dir, "idp.xml"), []byte(meta), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `version: 1
base_url: https://sp.example.test
upstream: http://127.0.0.1:9000
cookie:
  keys: ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]
idps:
  - name: corp
    entity_id: https://idp.example.test/saml
    metadata_file: ` + filepath.Join(dir, "idp.xml") + `
    mapping:
      user_name: urn:oid:0.9.2342.19200300.100.1.1
      email: urn:oid:0.9.2342.19200300.100.1.3
      display_name: urn:oid:2.16.840.1.113730.3.1.241
      groups: urn:oid:1.3.6.1.4.1.5923.1.1.1.1
      extra: {employee_id: "urn:oid:2.16.840.1.113730.3.1.3"}
store:
  sqlite:
    path: ` + filepath.Join(dir, "gatehouse.db") + `
`
	path = filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

func golden(name string) string { return filepath.Join("..", "..", "test", "testdata", "saml", name) }

func explain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"explain"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func fileSum(t *testing.T, paths ...string) string {
	t.Helper()
	h := sha256.New()
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		h.Write(b)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestExplain(t *testing.T) {
	cfg, dir := explainConfig(t)
	db := filepath.Join(dir, "gatehouse.db")

	t.Run("NewUser", func(t *testing.T) {
		code, out, errOut := explain(t, "--config", cfg, "--idp", "corp", "--response", golden("valid.xml"))
		for _, want := range []string{"response: valid", "at 2027-01-01T10:00:00Z", "name id        a7f3c9e1-0001",
			"urn:oid:0.9.2342.19200300.100.1.3 = alice@example.com", `user_name      "alice"`, `employee_id    "E1001" (extra)`,
			"no database yet: a login would create the user"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("exit %d, no %q in:\n%s%s", code, want, out, errOut)
			}
		}
		if _, err := os.Stat(db); !os.IsNotExist(err) {
			t.Errorf("explain created the database (%v)", err)
		}
	})

	// Provision alice with an older e-mail, then explain: the update is
	// shown and nothing is written.
	st, err := sqldir.Open(context.Background(), sqldir.Config{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Provision(context.Background(), provision.Login{Key: provision.Key{IdP: "https://idp.example.test/saml", Kind: "nameid", Subject: "a7f3c9e1-0001"},
		Claims: provision.Claims{Fields: map[string]string{provision.FieldUserName: "alice", provision.FieldEmail: "old@example.com"}}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	before := fileSum(t, db, db+"-wal")
	t.Run("Update", func(t *testing.T) {
		code, out, errOut := explain(t, "--config", cfg, "--idp", "corp", "--response", golden("valid.xml"))
		for _, want := range []string{"a login would UPDATE user", `email          "alice@example.com"`, "display_name", "groups         admins, staff"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("exit %d, no %q in:\n%s%s", code, want, out, errOut)
			}
		}
		if _, written, _ := strings.Cut(out, "UPDATE user"); strings.Contains(written, "user_name") {
			t.Errorf("user_name is unchanged and must not be listed as written:\n%s", out)
		}
	})
	if fileSum(t, db, db+"-wal") != before {
		t.Error("explain changed the database files")
	}

	b64 := filepath.Join(dir, "response.b64")
	raw, _ := os.ReadFile(golden("valid.xml"))
	os.WriteFile(b64, []byte(base64.StdEncoding.EncodeToString(raw)), 0o600)
	form := filepath.Join(dir, "form.txt")
	os.WriteFile(form, []byte("RelayState=x&SAMLResponse="+strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(base64.StdEncoding.EncodeToString(raw))), 0o600)
	for _, tc := range []struct {
		name, file, at string
		code           int
		want           string
	}{
		{"Base64", b64, "", 0, "response: valid"},
		{"FormBody", form, "", 0, "response: valid"},
		// Issued long before the instant the golden responses are judged at.
		{"Expired", golden("expired.xml"), "2027-01-01T10:00:00Z", 1, "expired"},
		{"ExpiredAsIssued", golden("expired.xml"), "", 0, "response: valid"},
		{"OtherKey", golden("signed_by_other_key.xml"), "", 1, "validation:"},
		{"SignatureWrapping", golden("xsw3_evil_assertion_before_signed.xml"), "", 1, "structure:"},
		{"AtNow", golden("valid.xml"), "now", 1, "response: REFUSED"},
		{"WrongAudience", golden("wrong_audience.xml"), "", 1, "is not this SP"},
		{"WrongRecipient", golden("wrong_recipient.xml"), "", 1, "Recipient is not https://sp.example.test/.gatehouse/saml/acs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--config", cfg, "--idp", "corp", "--response", tc.file}
			if tc.at != "" {
				args = append(args, "--at", tc.at)
			}
			code, out, errOut := explain(t, args...)
			if code != tc.code || !strings.Contains(out+errOut, tc.want) {
				t.Errorf("exit %d (want %d), no %q in:\n%s%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
	if code, _, errOut := explain(t, "--config", cfg, "--idp", "nope", "--response", golden("valid.xml")); code != 1 || !strings.Contains(errOut, `no IdP called "nope"`) {
		t.Errorf("unknown IdP: exit %d %s", code, errOut)
	}
}

// TestExplainNamesKeptFields: explain leaves alone, and names, the fields
// SCIM has written, as a login would; the other fields are still written.
func TestExplainNamesKeptFields(t *testing.T) {
	cfg, dir := explainConfig(t)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	scimSection := "scim:\n  token_sha256: [\"" + strings.Repeat("ab", 32) + "\"]\n"
	if err := os.WriteFile(cfg, append(b, scimSection...), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqldir.Open(ctx, sqldir.Config{Path: filepath.Join(dir, "gatehouse.db")})
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Provision(ctx, provision.Login{Key: provision.Key{IdP: "https://idp.example.test/saml", Kind: "nameid", Subject: "a7f3c9e1-0001"},
		Claims: provision.Claims{Fields: map[string]string{provision.FieldUserName: "alice", provision.FieldEmail: "old@example.com"}}})
	if err == nil {
		u := res.User
		u.Email, u.SCIMFields = "scim@example.com", []string{provision.FieldEmail}
		_, err = st.ReplaceUser(ctx, u, u.Version)
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := explain(t, "--config", cfg, "--idp", "corp", "--response", golden("valid.xml"))
	for _, want := range []string{"a login would UPDATE user", "display_name", `kept: email (owned by SCIM); the store keeps "scim@example.com"`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d, no %q in:\n%s%s", code, want, out, errOut)
		}
	}
	if _, written, _ := strings.Cut(out, "UPDATE user"); strings.Contains(strings.Split(written, "\n")[0], "email") {
		t.Errorf("email is SCIM's and must not be listed as written:\n%s", out)
	}
}
