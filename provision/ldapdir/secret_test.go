package ldapdir_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gatehouse/provision/ldapdir"
	"gatehouse/test/slapd"
)

// TestBindPasswordFromCaller: the caller's Password is asked at every
// bind, so a password rotated between two connections is used by the
// second; its error stops a dial and is returned as it is.
func TestBindPasswordFromCaller(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	ctx := context.Background()

	var mu sync.Mutex
	current, calls := "stale", 0
	cfg := baseConfig(srv, tn)
	cfg.BindPassword = ""
	cfg.Password = func() (string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if current == "" {
			return "", errors.New("store.ldap.bind_password_file: /run/secrets/x is empty")
		}
		return current, nil
	}
	s := open(t, cfg)
	if err := s.Ping(ctx); err == nil || !strings.Contains(err.Error(), "wrong DN or password") {
		t.Fatalf("Ping with the old password: err = %v", err)
	}
	mu.Lock()
	current = slapd.BindPassword // the secret rotated
	mu.Unlock()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after the rotation: %v", err)
	}
	if calls != 2 {
		t.Errorf("Password asked %d times for two binds, want 2", calls)
	}
	mu.Lock()
	current = ""
	mu.Unlock()
	if err := open(t, cfg).Ping(ctx); err == nil || !strings.Contains(err.Error(), "bind_password_file: /run/secrets/x is empty") {
		t.Errorf("Ping with a failing Password: err = %v", err)
	}
}

// TestBindPasswordFileNotReadHere: ldapdir reads no secret file; a
// config naming one without the caller's Password is refused by New,
// even when the file holds the right password.
func TestBindPasswordFileNotReadHere(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	path := filepath.Join(t.TempDir(), "ldap-password")
	if err := os.WriteFile(path, []byte(slapd.BindPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(srv, tn)
	cfg.BindPassword, cfg.BindPasswordFile = "", path
	if s, err := ldapdir.New(cfg); err == nil || !strings.Contains(err.Error(), "bind_password_file") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("New with bind_password_file and no Password: err = %v", err)
	}
	cfg.Password = func() (string, error) { return slapd.BindPassword, nil }
	if err := open(t, cfg).Ping(context.Background()); err != nil {
		t.Errorf("with the caller's Password: %v", err)
	}
}

// TestConfigPasswordSources: exactly one of bind_password_file and
// bind_password is set in the file; a caller may give Password alone.
func TestConfigPasswordSources(t *testing.T) {
	pw := func() (string, error) { return "x", nil }
	for name, tc := range map[string]struct {
		file, env string
		password  func() (string, error)
		bad       bool
	}{
		"file":                {file: "/run/secrets/x"},
		"file read by cmd":    {file: "/run/secrets/x", password: pw},
		"environment":         {env: "secret"},
		"caller only":         {password: pw},
		"none":                {bad: true},
		"both":                {file: "/run/secrets/x", env: "secret", bad: true},
		"both and a caller's": {file: "/run/secrets/x", env: "secret", password: pw, bad: true},
	} {
		t.Run(name, func(t *testing.T) {
			c := ldapdir.Config{URL: "ldaps://ldap.example.test", BindDN: "cn=gatehouse,dc=example",
				BindPasswordFile: tc.file, BindPassword: tc.env, Password: tc.password,
				UserBase: "ou=people,dc=example", GroupBase: "ou=groups,dc=example"}.WithDefaults()
			err := c.Validate()
			if got := err != nil && strings.Contains(err.Error(), "bind_password_file:"); got != tc.bad {
				t.Errorf("Validate() = %v, want a bind_password_file problem: %v", err, tc.bad)
			}
		})
	}
}
