package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const idpMeta = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.test">
<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>MIIBszCCAVmgAwIBAgIU</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/sso"/>
</md:IDPSSODescriptor></md:EntityDescriptor>`

// writeConfig writes a config (and an IdP metadata file beside it) and
// returns its path. $DIR in the text is the directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "idp.xml"), []byte(idpMeta), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "$DIR", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodConfig = `version: 1
base_url: https://app.example.test
upstream: http://127.0.0.1:9000
cookie:
  keys: ["${TEST_GATEHOUSE_KEY}"]
idps:
  - name: corp
    entity_id: https://idp.example.test
    metadata_file: $DIR/idp.xml
    mapping:
      user_name: uid
      groups: memberOf
store:
  sqlite:
    path: $DIR/gatehouse.db
`

func check(t *testing.T, path string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"check", "--config", path}, &out, &errOut)
	return code, out.String(), errOut.String()
}

// checkProblems runs check on a config: it passes when problems is nil,
// else fails naming each of them. It returns what check wrote to stderr.
func checkProblems(t *testing.T, config string, problems []string) string {
	t.Helper()
	code, _, errOut := check(t, writeConfig(t, config))
	if (code == 0) != (problems == nil) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, p := range problems {
		if !strings.Contains(errOut, p) {
			t.Errorf("no %q in:\n%s", p, errOut)
		}
	}
	return errOut
}

func TestCheckAcceptsGoodConfig(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	code, out, errOut := check(t, writeConfig(t, goodConfig))
	if code != 0 || !strings.Contains(out, ": ok") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}

// TestCheckChangesNothing: a check neither creates nor migrates the store.
func TestCheckChangesNothing(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	path := writeConfig(t, goodConfig)
	check(t, path)
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "gatehouse.db")); !os.IsNotExist(err) {
		t.Errorf("check created the SQLite file: %v", err)
	}
	bad := writeConfig(t, strings.Replace(goodConfig, "$DIR/gatehouse.db", "$DIR/no/such/dir/gatehouse.db", 1))
	if code, _, errOut := check(t, bad); code != 1 || !strings.Contains(errOut, "store.sqlite.path: directory") {
		t.Errorf("missing directory: exit %d\n%s", code, errOut)
	}
}

// TestCheckReportsEveryProblem: one run lists each problem on its own
// line with its key path, and exits 1.
func TestCheckReportsEveryProblem(t *testing.T) {
	bad := `version: 1
base_url: app.example.test
upstream: ftp://x
clock_skew: 10m
cookie:
  keys: ["${TEST_GATEHOUSE_MISSING}", "c2hvcnQ="]
headers:
  user: "Bad Header"
public_paths: ["relative"]
log:
  format: xml
idps:
  - name: corp
    entity_id: https://idp.example.test
    metadata_url: http://not-https.example
    mapping:
      extra:
        Bad: attr
  - name: corp
    entity_id: https://idp.example.test
    metadata_file: $DIR/missing.xml
store: {}
`
	t.Setenv("TEST_GATEHOUSE_MISSING", "")
	code, _, errOut := check(t, writeConfig(t, bad))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, key := range []string{
		"base_url:", "upstream:", "clock_skew:", "cookie.keys[0]: environment variable TEST_GATEHOUSE_MISSING",
		"cookie.keys[1]: decodes to 5 bytes", "headers.user:", "public_paths[0]:", "log.format:",
		"idps[0].metadata_url:", "idps[0].mapping.extra.Bad:", "idps[1].name:", "idps[1].entity_id:",
		"idps[1].metadata_file:", "store:",
	} {
		if !strings.Contains(errOut, key) {
			t.Errorf("no problem reported at %q in:\n%s", key, errOut)
		}
	}
}

func TestDecodeIsStrict(t *testing.T) {
	for name, text := range map[string]string{
		"unknown key":        "version: 1\nupstrem: http://x\n",
		"unknown nested key": "version: 1\ncookie:\n  secure: true\n",
		"wrong version":      "version: 2\n",
		"no version":         "upstream: http://x\n",
		"two documents":      "version: 1\n---\nversion: 1\n",
		"empty":              "",
		"wrong type":         "version: 1\nlisten: [1, 2]\n",
		"bad duration":       "version: 1\nclock_skew: soon\n",
	} {
		if _, err := decodeConfig(strings.NewReader(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	f, err := decodeConfig(strings.NewReader("version: 1\nclock_skew: 45s\nuser_cache_ttl: 2m\n"))
	if err != nil || f.Session.ClockSkew.String() != "45s" || f.Proxy.UserCacheTTL.String() != "2m0s" {
		t.Errorf("durations: %v %+v", err, f)
	}
}

// FuzzDecodeConfig: any bytes either decode or fail cleanly, and a decoded
// config can be checked without panicking.
func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("version: 1\nidps: [{name: a, mapping: {extra: {x: y}}}]\n"))
	f.Add([]byte("version: 1\n&a [*a]\n"))
	f.Add([]byte("version: 1\nbase: &b {name: x}\nidps: [{<<: *b, nme: y}, [z], q]\npublic_paths: &p [*p]\nlisten: ${X}\nlisten: 1\n"))
	f.Add([]byte("version: 1\nrate_limit: {per_minute: \"3\", burst: 99999999999999999999}\nclock_skew: 30\nheaders: [a]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// The full check: structure, then validation of what parsed.
		checkConfig("fuzz.yaml", b, func(string) (string, bool) { return "", false })
		cfg, err := decodeConfig(bytes.NewReader(b))
		if err != nil {
			return
		}
		cfg.prepare(func(string) string { return "" })
	})
}

// TestExampleConfigIsValid keeps the annotated example in deploy/ honest.
func TestExampleConfigIsValid(t *testing.T) {
	f, err := loadConfig(filepath.Join("..", "..", "deploy", "gatehouse.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GATEHOUSE_COOKIE_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
	if err := f.prepare(func(k string) string { return env[k] }); err != nil {
		t.Errorf("example config: %v", err)
	}
}

// TestExampleStoreSectionsAreValid puts each store example of deploy/ in
// place of the main example's store section.
func TestExampleStoreSectionsAreValid(t *testing.T) {
	main, err := os.ReadFile(filepath.Join("..", "..", "deploy", "gatehouse.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	head, rest, ok := strings.Cut(string(main), "\nstore:\n")
	_, tail, ok2 := strings.Cut(rest, "\nlog:\n")
	if !ok || !ok2 {
		t.Fatal("gatehouse.example.yaml: no store section followed by log")
	}
	dsnFile := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(dsnFile, []byte("postgres://gatehouse@db.example.test/app\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Glob(filepath.Join("..", "..", "deploy", "store-*.example.yaml"))
	if err != nil || len(examples) < 5 {
		t.Fatalf("store examples in deploy/: %v %v", examples, err)
	}
	for _, path := range examples {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			store, err := os.ReadFile(filepath.Join("..", "..", "deploy", name))
			if err != nil {
				t.Fatal(err)
			}
			store = []byte(strings.ReplaceAll(string(store), "/run/secrets/gatehouse-db-dsn", dsnFile))
			f, err := decodeConfig(strings.NewReader(head + "\n" + string(store) + "\nlog:\n" + tail))
			if err != nil {
				t.Fatal(err)
			}
			env := map[string]string{"GATEHOUSE_COOKIE_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "GATEHOUSE_LDAP_PASSWORD": "x",
				"GATEHOUSE_DB_DSN": "sqlserver://gatehouse@db.example.test?database=app"}
			if err := f.prepare(func(k string) string { return env[k] }); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if f.Store.LDAP == nil && len(f.Store.sql()) == 0 || f.Store.SQLite != nil {
				t.Error("the example's store section was not decoded in place of sqlite")
			}
		})
	}
}

func TestSCIMSection(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	t.Setenv("TEST_SCIM_TOKEN", "scim-token-0123456789abcdefghijklmnopqrstuv")
	for _, tc := range []struct {
		name, section string
		problems      []string
	}{
		{"EnvToken", "scim:\n  tokens: [\"${TEST_SCIM_TOKEN}\"]\n", nil},
		{"TokenInFile", "scim:\n  tokens: [\"scim-token-0123456789abcdefghijklmnopqrstuv\"]\n", []string{"scim.tokens[0]: must be an environment reference"}},
		{"NoToken", "scim: {}\n", []string{"scim.tokens: at least one bearer token"}},
		{"ShortDigest", "scim:\n  token_sha256: [\"abcd\"]\n", []string{"scim.token_sha256[0]: want 64 hex digits"}},
		{"MissingTokenFile", "scim:\n  token_files: [\"$DIR/nope\"]\n", []string{"scim.token_files[0]:"}},
		{"BadExtension", "scim:\n  tokens: [\"${TEST_SCIM_TOKEN}\"]\n  extension:\n    urn: not-a-urn\n    attributes: {badge: Badge}\n",
			[]string{"scim.extension.urn:", "scim.extension.attributes.badge: field"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errOut := checkProblems(t, goodConfig+tc.section, tc.problems)
			if strings.Contains(errOut, "scim-token-0123456789") {
				t.Errorf("a token was echoed: %s", errOut)
			}
		})
	}
	// With two IdPs, each must say how a login links to a SCIM user.
	two := strings.Replace(goodConfig, "store:", `  - name: partner
    entity_id: https://partner.example.test
    metadata_file: $DIR/idp.xml
    mapping:
      user_name: uid
      link_by: none
store:`, 1) + "scim:\n  tokens: [\"${TEST_SCIM_TOKEN}\"]\n"
	code, _, errOut := check(t, writeConfig(t, two))
	if code == 0 || !strings.Contains(errOut, "idps[0].mapping.link_by: set it") || strings.Contains(errOut, "idps[1].mapping.link_by") {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
}

// TestAuthorizationSection: the rules decode from the file and their
// problems carry key paths.
func TestAuthorizationSection(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	good := goodConfig + `authorization:
  - {path: /static/, allow: public}
  - path: /admin/
    methods: [GET, POST]
    require: {any_of: {groups: [admins]}}
  - {pattern: "^/internal(/|$)", allow: deny}
  - {path: /ops/, idps: [corp], require: {any_of: {groups: [admins]}}}
`
	if code, _, errOut := check(t, writeConfig(t, good)); code != 0 {
		t.Fatalf("good rules: exit %d: %s", code, errOut)
	}
	bad := goodConfig + `authorization:
  - {path: /admin/, allow: admins}
  - {path: /x/, require: {all_of: {}}}
  - {path: /ops/, idps: [partner], allow: authenticated}
  - {pattern: "^/Reports//", allow: deny}
  - {path: "/admin ", allow: deny}
`
	code, _, errOut := check(t, writeConfig(t, bad))
	for _, want := range []string{`authorization[0].allow: "admins" is not public`, "authorization[1].require.all_of: names no group",
		`authorization[2].idps: "partner" is not a configured IdP`, "authorization[3].pattern: ", "authorization[4].path: "} {
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("exit %d, no %q in:\n%s", code, want, errOut)
		}
	}
}

// TestSignedIdentitySection: keys are read from files and must be P-256;
// the issuer defaults to the base URL.
func TestSignedIdentitySection(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	dir := t.TempDir()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	write := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good, wrong := write("p256.pem", p256), write("p384.pem", p384)
	f, err := decodeConfig(strings.NewReader(strings.ReplaceAll(goodConfig, "$DIR", dir) + "signed_identity:\n  key_files: [" + good + "]\n"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "idp.xml"), []byte("<x/>"), 0o600)
	if err := f.prepare(os.Getenv); err != nil {
		t.Fatalf("good key: %v", err)
	}
	if f.Proxy.SignedIdentity.Issuer != "https://app.example.test" || len(f.identityKeys) != 1 {
		t.Errorf("issuer %q, %d keys", f.Proxy.SignedIdentity.Issuer, len(f.identityKeys))
	}
	code, _, errOut := check(t, writeConfig(t, goodConfig+"signed_identity:\n  key_files: ["+wrong+", "+filepath.Join(dir, "nope.pem")+"]\n"))
	for _, want := range []string{"signed_identity.key_files[0]: " + wrong + ": not a P-256", "signed_identity.key_files[1]:"} {
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("exit %d, no %q in:\n%s", code, want, errOut)
		}
	}
}

// TestFederationsSection: a federation's allowlisted entities become
// IdPs sharing its metadata URL, signing certificates and mapping; its
// problems carry federation key paths.
func TestFederationsSection(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "idp.xml"), []byte(idpMeta), 0o600)
	fed := `federations:
  - name: incommon
    metadata_url: https://mds.example.test/aggregate.xml
    metadata_signing_certs: [` + filepath.Join(dir, "fed.pem") + `]
    entity_ids: [https://idp.uni-a.example.test/idp, https://idp.uni-b.example.test/idp]
    mapping: {user_name: "urn:oid:0.9.2342.19200300.100.1.1"}
`
	f, err := decodeConfig(strings.NewReader(strings.ReplaceAll(goodConfig, "$DIR", dir) + fed))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.prepare(os.Getenv); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	if len(f.Session.IdPs) != 3 || f.Session.IdPs[2].Name != "incommon-2" || f.Session.IdPs[2].EntityID != "https://idp.uni-b.example.test/idp" ||
		f.Session.IdPs[1].MetadataURL != "https://mds.example.test/aggregate.xml" || len(f.Session.IdPs[1].MetadataSigningCerts) != 1 {
		t.Errorf("expanded IdPs = %+v", f.Session.IdPs)
	}
	if err := f.prepare(os.Getenv); err != nil || len(f.IdPs) != 3 {
		t.Errorf("a second prepare expanded again: %d IdPs, %v", len(f.IdPs), err)
	}
	bad := strings.ReplaceAll(strings.Replace(fed, "    metadata_signing_certs: ["+filepath.Join(dir, "fed.pem")+"]\n", "", 1), "name: incommon", "name: In Common")
	code, _, errOut := check(t, writeConfig(t, goodConfig+bad))
	for _, want := range []string{"federations[0].name: must match", "federations[0].metadata_signing_certs: required"} {
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("exit %d, no %q in:\n%s", code, want, errOut)
		}
	}
}

// TestTLSSection: the TLS choices that cannot work are refused with the
// field at fault.
func TestTLSSection(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	for _, tc := range []struct {
		name, section string
		problems      []string
	}{
		{"Plain", "", nil},
		{"ACME", "tls:\n  redirect_listen: 127.0.0.1:0\n  acme:\n    domains: [sso.example.test]\n    email: ops@example.test\n", nil},
		{"HalfPair", "tls:\n  cert_file: /x.crt\n", []string{"tls: cert_file and key_file go together"}},
		{"Both", "tls:\n  cert_file: /x.crt\n  key_file: /x.key\n  acme:\n    domains: [sso.example.test]\n",
			[]string{"tls.acme: choose ACME or cert_file/key_file"}},
		{"NoDomain", "tls:\n  acme:\n    email: ops@example.test\n", []string{"tls.acme.domains: at least one domain"}},
		{"BadDomain", "tls:\n  acme:\n    domains: [\"https://sso.example.test/\", \"*.example.test\"]\n",
			[]string{"tls.acme.domains[0]", "tls.acme.domains[1]"}},
		{"PlainCA", "tls:\n  acme:\n    domains: [sso.example.test]\n    ca: http://ca.example.test/dir\n",
			[]string{"tls.acme.ca: must be an https directory URL"}},
		{"Challenge", "tls:\n  acme:\n    domains: [sso.example.test]\n    challenges: [dns-01]\n",
			[]string{`tls.acme.challenges: "dns-01"`}},
		{"HTTP01NoRedirect", "tls:\n  acme:\n    domains: [sso.example.test]\n    challenges: [http-01]\n",
			[]string{"http-01 needs tls.redirect_listen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, goodConfig+tc.section, tc.problems)
		})
	}
}

// TestEdgeKeys: the request-edge keys decode at the top level and refuse
// what cannot be safe, naming the key.
func TestEdgeKeys(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	for _, tc := range []struct {
		name, section string
		problems      []string
	}{
		{"All", "trusted_proxies: [10.0.0.0/8, 192.0.2.1]\nupgrades: [websocket]\nupgrade_max_lifetime: 8h\n" +
			"endpoint_body_timeout: 15s\nproxied_body_idle_timeout: 2m\nrate_limit:\n  per_minute: 30\n  burst: 10\n  max_clients: 5000\n" +
			"public_body_timeout: 5m\npublic_upgrade_max_lifetime: 1h\npublic_max_concurrent: 16\n" +
			"headers:\n  strip: [X-Corp-User, X-Corp-*]\n  keep: [X-Real-IP]\n", nil},
		{"NoUpgrades", "upgrades: []\n", nil},
		{"RateLimitOff", "rate_limit:\n  disabled: true\n", nil},
		{"H2C", "upgrades: [websocket, h2c]\n", []string{"upgrades[1]: h2c is never allowed"}},
		{"BadCIDR", "trusted_proxies: [10.0.0.0/33]\n", []string{"trusted_proxies[0]"}},
		{"BadTimeouts", "endpoint_body_timeout: 10m\nproxied_body_idle_timeout: 100ms\n",
			[]string{"endpoint_body_timeout:", "proxied_body_idle_timeout:"}},
		{"BadRate", "rate_limit:\n  per_minute: -1\n", []string{"rate_limit.per_minute"}},
		{"BadPublicLimits", "public_body_timeout: 2h\npublic_upgrade_max_lifetime: 500ms\npublic_max_concurrent: -3\n",
			[]string{"public_body_timeout:", "public_upgrade_max_lifetime:", "public_max_concurrent:"}},
		{"KeepIdentity", "headers:\n  keep: [X-Forwarded-User, X-Forwarded-For]\n", []string{"headers.keep[0]", "headers.keep[1]"}},
		{"BadMaxPathLength", "max_path_length: 100\n", []string{"max_path_length:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, goodConfig+tc.section, tc.problems)
		})
	}
	f, err := decodeConfig(strings.NewReader(goodConfig + "upgrades: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.withDefaults()
	if f.Proxy.Upgrades == nil || len(f.Proxy.Upgrades) != 0 {
		t.Errorf("upgrades: [] became %v, want none allowed", f.Proxy.Upgrades)
	}
	if f.Proxy.BaseURL != f.Session.BaseURL {
		t.Errorf("the proxy's base URL %q is not base_url", f.Proxy.BaseURL)
	}
}

// TestStoreProblemsAtTheirKeys: a SQL store's problems come with their
// keys from sqldir, placed at the setting in the file, each pool setting
// on its own line.
func TestStoreProblemsAtTheirKeys(t *testing.T) {
	base, _, _ := strings.Cut(goodConfig, "store:\n")
	config := base + `store:
  postgres:
    dsn: ${TEST_PG_DSN}
    max_open_conns: -1
    timeout: -1s
    mapped:
      users:
        table: app_users
        key: id
        columns: {email: mail}
`
	env := map[string]string{"TEST_GATEHOUSE_KEY": testEnv["TEST_GATEHOUSE_KEY"], "TEST_PG_DSN": "postgres://db.example.test/app"}
	want := []string{
		"gatehouse.yaml:16:5: store.postgres.max_open_conns: must not be negative",
		"gatehouse.yaml:17:5: store.postgres.timeout: must not be negative",
		"gatehouse.yaml:22:9: store.postgres.mapped.users.columns.user_name: required: the column holding the user name",
	}
	if got := configProblems(t, config, env); !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
