package session

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// spFiles writes an RSA SP key pair as name.key (PKCS #8) and name.crt
// in dir, and returns the pair and the key's PEM.
func spFiles(t *testing.T, dir, name string) (keyPair, []byte) {
	t.Helper()
	kp := newKeyPair(t, dir, name)
	der, err := x509.MarshalPKCS8PrivateKey(kp.key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	writeFile(t, filepath.Join(dir, name+".key"), keyPEM)
	writeFile(t, filepath.Join(dir, name+".crt"), mustRead(t, kp.file))
	return kp, keyPEM
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keyConfig is a config New accepts whose one IdP's metadata URL is not
// reachable (New goes on without it), so that New opens no file of its
// own.
func keyConfig() Config {
	c := Config{BaseURL: "https://sp.example.test",
		Endpoints: Endpoints{Prefix: "/.gatehouse/", Metadata: "/.gatehouse/saml/metadata", ACS: "/.gatehouse/saml/acs",
			Login: "/.gatehouse/login", Logout: "/.gatehouse/logout", SLO: "/.gatehouse/saml/slo"},
		IdPs: []IdP{{Name: "corp", EntityID: "https://idp.example.test", MetadataURL: "https://127.0.0.1:1/metadata", MetadataUnsigned: true}}}
	c.Cookie.SetKeys([][]byte{bytes.Repeat([]byte{3}, KeyLen)})
	return c
}

// TestLoadKeyPairsProblems: LoadKeyPairs reports each bad SP key file
// (unreadable, not PEM of its kind, not parseable, not RSA, encrypted,
// or a key that does not match its certificate) as one problem at its
// key path, and never quotes a file's content; the good pairs are kept.
func TestLoadKeyPairsProblems(t *testing.T) {
	dir := t.TempDir()
	good, goodKey := spFiles(t, dir, "good")
	other, _ := spFiles(t, dir, "other")
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPKCS8, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecSEC1, _ := x509.MarshalECPrivateKey(ec)
	pemOf := func(typ string, b []byte, h map[string]string) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Headers: h, Bytes: b})
	}
	secret := []byte("hunter2 hunter2 hunter2 hunter2")
	bad := map[string][]byte{
		"key-as-cert":   goodKey,
		"cert-as-key":   mustRead(t, good.file),
		"bad-cert":      pemOf("CERTIFICATE", secret, nil),
		"bad-pkcs1":     pemOf("RSA PRIVATE KEY", secret, nil),
		"bad-pkcs8":     pemOf("PRIVATE KEY", secret, nil),
		"ec-pkcs8":      pemOf("PRIVATE KEY", ecPKCS8, nil),
		"ec-sec1":       pemOf("EC PRIVATE KEY", ecSEC1, nil),
		"encrypted":     pemOf("ENCRYPTED PRIVATE KEY", secret, nil),
		"legacy-crypt":  pemOf("RSA PRIVATE KEY", secret, map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}),
		"openssh":       pemOf("OPENSSH PRIVATE KEY", secret, nil),
		"not-pem":       secret,
		"key-then-cert": append(append([]byte{}, goodKey...), mustRead(t, good.file)...),
	}
	for name, b := range bad {
		writeFile(t, filepath.Join(dir, name), b)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, tc := range []struct {
		name      string
		key, cert string // files of sp_keys[1]
		problem   string // regexp of the one problem; "" for none
	}{
		{"Good", p("good.key"), p("good.crt"), ""},
		{"OneFileForBoth", p("key-then-cert"), p("key-then-cert"), ""},
		{"MissingKey", p("nothing"), p("good.crt"), `^sp_keys\[1\]\.key_file: open /\S+/nothing: no such file or directory$`},
		{"MissingCert", p("good.key"), p("nothing"), `^sp_keys\[1\]\.cert_file: open /\S+/nothing: no such file or directory$`},
		{"KeyInCertFile", p("good.key"), p("key-as-cert"), `^sp_keys\[1\]\.cert_file: /\S+/key-as-cert: no PEM certificate \(-----BEGIN CERTIFICATE-----\) in it$`},
		{"CertInKeyFile", p("cert-as-key"), p("good.crt"), `^sp_keys\[1\]\.key_file: /\S+/cert-as-key: no PEM private key .* in it$`},
		{"NotPEM", p("not-pem"), p("good.crt"), `^sp_keys\[1\]\.key_file: /\S+/not-pem: no PEM private key`},
		{"BadCertificate", p("good.key"), p("bad-cert"), `^sp_keys\[1\]\.cert_file: /\S+/bad-cert: not a valid certificate: x509: `},
		{"BadPKCS1", p("bad-pkcs1"), p("good.crt"), `^sp_keys\[1\]\.key_file: /\S+/bad-pkcs1: not a valid PKCS #1 RSA private key$`},
		{"BadPKCS8", p("bad-pkcs8"), p("good.crt"), `^sp_keys\[1\]\.key_file: /\S+/bad-pkcs8: not a valid PKCS #8 private key$`},
		{"ECPKCS8", p("ec-pkcs8"), p("good.crt"), `^sp_keys\[1\]\.key_file: /\S+/ec-pkcs8: an EC key: an RSA key is needed`},
		{"ECSEC1", p("ec-sec1"), p("good.crt"), `^sp_keys\[1\]\.key_file: /\S+/ec-sec1: an EC key: an RSA key is needed`},
		{"Encrypted", p("encrypted"), p("good.crt"), `^sp_keys\[1\]\.key_file: /\S+/encrypted: the private key is encrypted`},
		{"LegacyEncrypted", p("legacy-crypt"), p("good.crt"), `^sp_keys\[1\]\.key_file: /\S+/legacy-crypt: the private key is encrypted`},
		{"OpenSSH", p("openssh"), p("good.crt"), `^sp_keys\[1\]\.key_file: /\S+/openssh: an OpenSSH key`},
		{"Mismatch", p("good.key"), p("other.crt"), `^sp_keys\[1\]\.key_file: /\S+/good\.key: the private key does not match the certificate of sp_keys\[1\]\.cert_file \(/\S+/other\.crt\)$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := keyConfig()
			c.Keys = []SPKey{{KeyFile: p("other.key"), CertFile: p("other.crt")}, {KeyFile: tc.key, CertFile: tc.cert}}
			errs := c.LoadKeyPairs(os.ReadFile)
			if c.Keys[0].Pair == nil || !c.Keys[0].Pair.Leaf.Equal(other.cert) {
				t.Error("sp_keys[0], a good pair, was not loaded")
			}
			if tc.problem == "" {
				if len(errs) != 0 || c.Keys[1].Pair == nil || !c.Keys[1].Pair.Leaf.Equal(good.cert) || !good.key.Equal(c.Keys[1].Pair.PrivateKey) {
					t.Errorf("problems %v; want sp_keys[1] loaded", errs)
				}
				return
			}
			if len(errs) != 1 || !regexp.MustCompile(tc.problem).MatchString(errs[0].Error()) {
				t.Errorf("problems %v; want one matching %s", errs, tc.problem)
			}
			if c.Keys[1].Pair != nil {
				t.Error("a bad pair was kept")
			}
			msg := errors.Join(errs...).Error()
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, "MII") || strings.Contains(msg, "PRIVATE KEY-----\n") {
				t.Errorf("a problem quotes the file: %s", msg)
			}
		})
	}
}

// TestLoadKeyPairsTopLevel: sp_key_file and sp_cert_file are loaded into
// KeyPair and their problems named by those keys; a pair with a path
// missing is left to Validate (no read, no problem); the caller's Keys
// slice is not written to.
func TestLoadKeyPairsTopLevel(t *testing.T) {
	dir := t.TempDir()
	good, _ := spFiles(t, dir, "good")
	c := keyConfig()
	c.KeyFile, c.CertFile = filepath.Join(dir, "good.key"), filepath.Join(dir, "good.crt")
	mine := []SPKey{{KeyFile: filepath.Join(dir, "good.key")}}
	c.Keys = mine
	var read []string
	errs := c.LoadKeyPairs(func(path string) ([]byte, error) { read = append(read, path); return os.ReadFile(path) })
	if len(errs) != 0 || c.KeyPair == nil || !c.KeyPair.Leaf.Equal(good.cert) {
		t.Errorf("sp_key_file: problems %v, pair %v; want it loaded", errs, c.KeyPair != nil)
	}
	if len(read) != 2 {
		t.Errorf("read %q; want the two files of sp_key_file only", read)
	}
	if c.Keys[0].Pair != nil || mine[0].Pair != nil {
		t.Error("sp_keys[0] without a cert_file got a pair")
	}

	c.CertFile = filepath.Join(dir, "missing.crt")
	errs = c.LoadKeyPairs(os.ReadFile)
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "sp_cert_file: open ") || c.KeyPair != nil {
		t.Errorf("missing sp_cert_file: problems %v, pair kept %v", errs, c.KeyPair != nil)
	}
}

// TestNewRefusesKeyFileWithoutPair: New reads no key file. Given a key
// path without the loaded pair it refuses, naming the key, even when
// the files exist and are good; it does not fall back to reading them.
func TestNewRefusesKeyFileWithoutPair(t *testing.T) {
	dir := t.TempDir()
	spFiles(t, dir, "sp")
	keyFile, certFile := filepath.Join(dir, "sp.key"), filepath.Join(dir, "sp.crt")
	for name, tc := range map[string]struct {
		change func(*Config)
		want   string
	}{
		"SPKeyFile": {func(c *Config) { c.KeyFile, c.CertFile = keyFile, certFile }, "sp_key_file: the key pair is not loaded"},
		"SPKeys": {func(c *Config) {
			c.Keys = []SPKey{{KeyFile: keyFile, CertFile: certFile, Use: UseEncryption}}
		}, "sp_keys[0]: the key pair is not loaded"},
		"PairWithoutFiles": {func(c *Config) {
			c2 := keyConfig()
			c2.KeyFile, c2.CertFile = keyFile, certFile
			if errs := c2.LoadKeyPairs(os.ReadFile); len(errs) > 0 {
				t.Fatal(errs)
			}
			c.KeyPair = c2.KeyPair
		}, "sp_key_file: a loaded key pair without sp_key_file and sp_cert_file"},
	} {
		t.Run(name, func(t *testing.T) {
			c := keyConfig()
			tc.change(&c)
			m, err := New(context.Background(), c, Options{Logger: zap.NewNop(), Pages: nopPages{}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, os.ErrNotExist) {
				t.Errorf("New = %v, %v; want the refusal %q", m != nil, err, tc.want)
			}
		})
	}
}

// TestNewUsesLoadedPairs: New takes the pairs LoadKeyPairs loaded, with
// the files gone by then: sp_key_file signs, and every certificate is
// the SP's, in configured order.
func TestNewUsesLoadedPairs(t *testing.T) {
	dir := t.TempDir()
	sp, _ := spFiles(t, dir, "sp")
	enc, _ := spFiles(t, dir, "enc")
	c := keyConfig()
	c.KeyFile, c.CertFile = filepath.Join(dir, "sp.key"), filepath.Join(dir, "sp.crt")
	c.Keys = []SPKey{{KeyFile: filepath.Join(dir, "enc.key"), CertFile: filepath.Join(dir, "enc.crt"), Use: UseEncryption}}
	if errs := c.LoadKeyPairs(os.ReadFile); len(errs) > 0 {
		t.Fatal(errs)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	m, err := New(context.Background(), c, Options{Logger: zap.NewNop(), Pages: nopPages{}})
	if err != nil {
		t.Fatalf("New with loaded pairs and the files gone: %v", err)
	}
	if !m.spCert.Equal(sp.cert) || !sp.key.Equal(m.spKey) {
		t.Error("the signing key is not sp_key_file's")
	}
	got := m.SPCertificates()
	if len(got) != 2 || got[0].Name != "sp" || !got[0].NotAfter.Equal(sp.cert.NotAfter) || got[1].Name != "sp_encryption" {
		t.Errorf("SPCertificates = %+v", got)
	}
	if dk := m.decryptionKeys(); len(dk) != 2 || !dk[1].Equal(enc.key) {
		t.Errorf("decryption keys: %d, want sp_key_file's and sp_keys[0]'s", len(dk))
	}
}

// FuzzParseSPKeyFiles: no key or certificate file panics the parsers,
// and no problem depends on the file's bytes beyond its kind: the key's
// are fixed sentences, the certificate's a fixed sentence or x509's
// verdict.
func FuzzParseSPKeyFiles(f *testing.F) {
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nhunter2\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END PRIVATE KEY-----\n"))
	keyProblems := regexp.MustCompile(`^(no PEM private key \(-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----\) in it|` +
		`the private key is encrypted: .*|not a valid PKCS #1 RSA private key|not a valid PKCS #8 private key|` +
		`(an EC key|an Ed25519 key): an RSA key is needed .*|an RSA key is needed .*|an OpenSSH key: .*)$`)
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseKeyPEM(b); err != nil && (!keyProblems.MatchString(err.Error()) || strings.Contains(err.Error(), "hunter2")) {
			t.Errorf("key problem %q", err)
		}
		if _, _, err := parseCertPEM(b); err != nil && err.Error() != "no PEM certificate (-----BEGIN CERTIFICATE-----) in it" &&
			!strings.HasPrefix(err.Error(), "not a valid certificate: x509: ") {
			t.Errorf("certificate problem %q", err)
		}
	})
}
