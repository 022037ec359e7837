package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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
