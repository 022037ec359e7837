package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse/provision/ldapdir"
	"gatehouse/test/pgtest"
	"gatehouse/test/slapd"
)

// withStore is goodConfig with its store section replaced.
func withStore(store string) string {
	base, _, _ := strings.Cut(goodConfig, "store:\n")
	return base + store
}

const ldapFileStore = `store:
  ldap:
    url: ldaps://ldap.example.test
    bind_dn: cn=gatehouse,dc=example,dc=test
    bind_password_file: $DIR/ldap-password
    user_base: ou=people,dc=example,dc=test
    group_base: ou=groups,dc=example,dc=test
`

const postgresFileStore = "store:\n  postgres:\n    dsn_file: $DIR/dsn\n"

// prepared checks a config as gatehouse check does, without the live
// checks, with files written beside it: $DIR in text and in the files'
// names is the directory. It fails the test on any problem.
func prepared(t *testing.T, text string, files map[string]string) (*File, string) {
	t.Helper()
	path := writeConfig(t, text)
	dir := filepath.Dir(path)
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, report := checkConfig("gatehouse.yaml", data, func(k string) (string, bool) { v, ok := testEnv[k]; return v, ok })
	if err := report.Err(); err != nil {
		t.Fatal(err)
	}
	return f, dir
}

// TestSecretDSNFileResolvedByCmd: cmd reads dsn_file and hands sqldir the
// DSN itself, without the line break, and no file name.
func TestSecretDSNFileResolvedByCmd(t *testing.T) {
	const dsn = "postgres://gatehouse:s3cret@db.example.test:5432/app?sslmode=verify-full"
	f, _ := prepared(t, withStore(postgresFileStore), map[string]string{"dsn": dsn + "\n"})
	if c := f.Store.Postgres; c.DSN != dsn || c.DSNFile != "" {
		t.Errorf("store.postgres: DSN %q, DSNFile %q; want the file's DSN and no file", c.DSN, c.DSNFile)
	}
}

// TestSecretBindPasswordFileResolvedByCmd: cmd hands ldapdir a function
// that reads bind_password_file at every call: a rotated password is
// read, and a file gone later is an error naming the key.
func TestSecretBindPasswordFileResolvedByCmd(t *testing.T) {
	f, dir := prepared(t, withStore(ldapFileStore), map[string]string{"ldap-password": "first secret\r\n"})
	l := f.Store.LDAP
	if l.Password == nil || l.BindPassword != "" {
		t.Fatalf("store.ldap: Password %v, BindPassword %q; want a function and no value", l.Password != nil, l.BindPassword)
	}
	if pw, err := l.Password(); pw != "first secret" || err != nil {
		t.Errorf("Password() = %q, %v; want the file's line", pw, err)
	}
	file := filepath.Join(dir, "ldap-password")
	if err := os.WriteFile(file, []byte("rotated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pw, err := l.Password(); pw != "rotated" || err != nil {
		t.Errorf("Password() after the rotation = %q, %v", pw, err)
	}
	os.Remove(file)
	if pw, err := l.Password(); err == nil || pw != "" || !strings.HasPrefix(err.Error(), "store.ldap.bind_password_file: ") {
		t.Errorf("Password() with the file gone = %q, %v; want an error naming the key", pw, err)
	}
}

// TestSecretFileProblems: a secret file that is missing, not readable
// (a directory), empty or blank, or too large for a secret is one
// problem, at the setting's place and key path, for every *_file
// setting; the secret is never echoed.
func TestSecretFileProblems(t *testing.T) {
	sections := []struct{ name, text, key string }{
		{"DSN", withStore(postgresFileStore), "gatehouse.yaml:15:5: store.postgres.dsn_file: "},
		{"BindPassword", withStore(ldapFileStore), "gatehouse.yaml:17:5: store.ldap.bind_password_file: "},
		{"CookieKey", strings.Replace(goodConfig, "  keys:", "  key_files: [$DIR/secret]\n  keys:", 1), "gatehouse.yaml:5:15: cookie.key_files[0]: "},
		{"SCIMToken", goodConfig + "scim:\n  token_sha256: [\"" + strings.Repeat("ab", 32) + "\"]\n  token_files: [$DIR/secret]\n",
			"gatehouse.yaml:18:17: scim.token_files[0]: "},
		{"RedisURL", goodConfig + "state:\n  redis:\n    url_file: $DIR/secret\n", "gatehouse.yaml:18:5: state.redis.url_file: "},
		{"IdentityKey", goodConfig + "signed_identity:\n  key_files: [$DIR/secret]\n", "gatehouse.yaml:17:15: signed_identity.key_files[0]: "},
	}
	files := []struct {
		name  string
		make  func(t *testing.T, path string)
		error *regexp.Regexp
	}{
		{"Missing", func(*testing.T, string) {}, regexp.MustCompile(`^open /\S+: no such file or directory$`)},
		{"Directory", func(t *testing.T, p string) { mustDo(t, os.Mkdir(p, 0o700)) }, regexp.MustCompile(`^read /\S+: is a directory$`)},
		{"Empty", func(t *testing.T, p string) { mustDo(t, os.WriteFile(p, nil, 0o600)) }, regexp.MustCompile(`^/\S+ is empty$`)},
		{"Blank", func(t *testing.T, p string) { mustDo(t, os.WriteFile(p, []byte(" \r\n\t\n"), 0o600)) }, regexp.MustCompile(`^/\S+ is empty$`)},
		{"TooLarge", func(t *testing.T, p string) {
			mustDo(t, os.WriteFile(p, []byte(strings.Repeat("hunter2-", maxSecretBytes/8+1)), 0o600))
		}, regexp.MustCompile(`^/\S+ is larger than 65536 bytes, too large for a secret$`)},
	}
	for _, s := range sections {
		for _, fc := range files {
			t.Run(s.name+"/"+fc.name, func(t *testing.T) {
				text := strings.ReplaceAll(strings.ReplaceAll(s.text, "$DIR/dsn", "$DIR/secret"), "$DIR/ldap-password", "$DIR/secret")
				path := writeConfig(t, text)
				fc.make(t, filepath.Join(filepath.Dir(path), "secret"))
				data, err := os.ReadFile(path)
				mustDo(t, err)
				_, report := checkConfig("gatehouse.yaml", data, func(k string) (string, bool) { v, ok := testEnv[k]; return v, ok })
				lines := report.Lines()
				if len(lines) != 1 || !strings.HasPrefix(lines[0], s.key) || !fc.error.MatchString(strings.TrimPrefix(lines[0], s.key)) {
					t.Errorf("problems:\n%s\nwant one: %s%s", strings.Join(lines, "\n"), s.key, fc.error)
				}
				if strings.Contains(strings.Join(lines, "\n"), "hunter2") {
					t.Error("the file's content was echoed")
				}
			})
		}
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSecretFilesReachTheBackends: gatehouse check connects with the
// DSN of a dsn_file (PostgreSQL) and binds with the password of a
// bind_password_file (slapd), both read by cmd.
func TestSecretFilesReachTheBackends(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", testEnv["TEST_GATEHOUSE_KEY"])
	t.Run("PostgresDSNFile", func(t *testing.T) {
		dsn := pgtest.Shared(t).Database(t)
		path := writeConfig(t, withStore(postgresFileStore))
		mustDo(t, os.WriteFile(filepath.Join(filepath.Dir(path), "dsn"), []byte(dsn+"\n"), 0o600))
		if code, out, errOut := check(t, path); code != 0 {
			t.Errorf("check with dsn_file = %d\n%s%s", code, out, errOut)
		}
	})
	t.Run("LDAPBindPasswordFile", func(t *testing.T) {
		srv := slapd.Start(t, slapd.WithSchema(ldapdir.SchemaLDIF, "gatehouseState"))
		tn := srv.NewTenant(t)
		text := strings.Replace(ldapConfig(srv, tn, ""), "bind_password: ${TEST_LDAP_PASSWORD}", "bind_password_file: $DIR/ldap-password", 1)
		path := writeConfig(t, text)
		pwFile := filepath.Join(filepath.Dir(path), "ldap-password")
		mustDo(t, os.WriteFile(pwFile, []byte(slapd.BindPassword+"\n"), 0o600))
		if code, out, errOut := check(t, path); code != 0 {
			t.Errorf("check with bind_password_file = %d\n%s%s", code, out, errOut)
		}
		mustDo(t, os.WriteFile(pwFile, []byte("not-the-password\n"), 0o600))
		if code, _, errOut := check(t, path); code == 0 || !strings.Contains(errOut, "store.ldap: ldapdir: bind as "+slapd.BindDN+": wrong DN or password") {
			t.Errorf("check with a wrong password in the file = %d\n%s", code, errOut)
		}
	})
}

// spKeysConfig is goodConfig with an SP key pair and a second one, of
// encryption, in sp_keys; its problems' places: sp_key_file on line 16,
// sp_cert_file on 17, sp_keys[0]'s key_file and cert_file on 19 and 20.
const spKeysConfig = goodConfig + `sp_key_file: $DIR/sp.key
sp_cert_file: $DIR/sp.crt
sp_keys:
  - key_file: $DIR/enc.key
    cert_file: $DIR/enc.crt
    use: encryption
`

// TestSecretSPKeyFilesResolvedByCmd: cmd reads sp_key_file, sp_cert_file
// and sp_keys' files and hands session the loaded pairs, the key and
// certificate each file holds.
func TestSecretSPKeyFilesResolvedByCmd(t *testing.T) {
	dir := t.TempDir()
	spCert := writeTestPair(t, dir, "sp", "sp", true, time.Now().Add(24*time.Hour))
	encCert := writeTestPair(t, dir, "enc", "enc", true, time.Now().Add(48*time.Hour))
	files := map[string]string{}
	for _, name := range []string{"sp.key", "sp.crt", "enc.key", "enc.crt"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		mustDo(t, err)
		files[name] = string(b)
	}
	f, _ := prepared(t, spKeysConfig, files)
	if p := f.Session.KeyPair; p == nil || !p.Leaf.Equal(spCert) {
		t.Errorf("sp_key_file: pair %v; want sp.crt's", p != nil)
	}
	if len(f.Session.Keys) != 1 || f.Session.Keys[0].Pair == nil || !f.Session.Keys[0].Pair.Leaf.Equal(encCert) {
		t.Errorf("sp_keys[0]: want enc.crt's pair")
	}
}

// TestSecretSPKeyFileProblems: an SP key file that is missing, not
// readable, empty, too large, not PEM of its kind, not RSA, or a key
// that does not match its certificate is one problem at its key and
// place; neither the key nor the file's content is echoed.
func TestSecretSPKeyFileProblems(t *testing.T) {
	goodDir := t.TempDir()
	writeTestPair(t, goodDir, "sp", "sp", true, time.Now().Add(24*time.Hour))
	writeTestPair(t, goodDir, "enc", "enc", true, time.Now().Add(24*time.Hour))
	writeTestPair(t, goodDir, "other", "other", true, time.Now().Add(24*time.Hour))
	writeTestPair(t, goodDir, "ec", "ec", false, time.Now().Add(24*time.Hour))
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(goodDir, name))
		mustDo(t, err)
		return b
	}
	for _, tc := range []struct {
		name    string
		file    string // the file replaced
		body    []byte // nil: removed
		dir     bool   // a directory instead
		problem string // regexp of the one problem
	}{
		{"MissingKey", "sp.key", nil, false, `^gatehouse\.yaml:16:1: sp_key_file: open /\S+/sp\.key: no such file or directory$`},
		{"DirectoryCert", "sp.crt", nil, true, `^gatehouse\.yaml:17:1: sp_cert_file: read /\S+/sp\.crt: is a directory$`},
		{"EmptyKey", "enc.key", []byte{}, false, `^gatehouse\.yaml:19:5: sp_keys\[0\]\.key_file: /\S+/enc\.key is empty$`},
		{"TooLargeCert", "enc.crt", bytes.Repeat([]byte("hunter2-"), maxSecretBytes/8+1), false,
			`^gatehouse\.yaml:20:5: sp_keys\[0\]\.cert_file: /\S+/enc\.crt is larger than 65536 bytes, too large for a secret$`},
		{"GarbageKey", "sp.key", []byte("hunter2\n"), false, `^gatehouse\.yaml:16:1: sp_key_file: /\S+/sp\.key: no PEM private key .* in it$`},
		{"KeyAsCert", "enc.crt", read("enc.key"), false, `^gatehouse\.yaml:20:5: sp_keys\[0\]\.cert_file: /\S+/enc\.crt: no PEM certificate .* in it$`},
		{"ECKey", "sp.key", read("ec.key"), false, `^gatehouse\.yaml:16:1: sp_key_file: /\S+/sp\.key: an EC key: an RSA key is needed`},
		{"Mismatch", "enc.key", read("other.key"), false,
			`^gatehouse\.yaml:19:5: sp_keys\[0\]\.key_file: /\S+/enc\.key: the private key does not match the certificate of sp_keys\[0\]\.cert_file \(/\S+/enc\.crt\)$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, spKeysConfig)
			dir := filepath.Dir(path)
			for _, name := range []string{"sp.key", "sp.crt", "enc.key", "enc.crt"} {
				mustDo(t, os.WriteFile(filepath.Join(dir, name), read(name), 0o600))
			}
			target := filepath.Join(dir, tc.file)
			mustDo(t, os.Remove(target))
			switch {
			case tc.dir:
				mustDo(t, os.Mkdir(target, 0o700))
			case tc.body != nil:
				mustDo(t, os.WriteFile(target, tc.body, 0o600))
			}
			data, err := os.ReadFile(path)
			mustDo(t, err)
			_, report := checkConfig("gatehouse.yaml", data, func(k string) (string, bool) { v, ok := testEnv[k]; return v, ok })
			lines := report.Lines()
			if len(lines) != 1 || !regexp.MustCompile(tc.problem).MatchString(lines[0]) {
				t.Errorf("problems:\n%s\nwant one matching %s", strings.Join(lines, "\n"), tc.problem)
			}
			out := strings.Join(lines, "\n")
			for _, l := range append(strings.Split(string(tc.body), "\n"), "hunter2") {
				if len(l) >= 7 && !strings.HasPrefix(l, "-----") && strings.Contains(out, l) {
					t.Errorf("a problem echoes the file's line %q:\n%s", l, out)
				}
			}
		})
	}
}
