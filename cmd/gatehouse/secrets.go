package main

// Secrets are read here and nowhere else: a ${NAME} reference from the
// environment, a *_file setting from its file. The packages are handed
// the values; a backend that re-reads a secret for rotation (the LDAP
// bind password, at every bind) is handed a function built here that
// reads the file again, by the same rules.

import (
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/proxy"
	"gatehouse/scim"
	"gatehouse/session"
)

var envRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// maxSecretBytes bounds a secret file: keys, tokens, passwords and DSNs
// fit in it many times over; a larger file is a wrong path.
const maxSecretBytes = 64 << 10

// envValue reads the variable of a ${NAME} reference; the error names
// the key and says whether the variable is unset or empty.
func envValue(lookupEnv func(string) (string, bool), key, name string) (string, error) {
	v, ok := lookupEnv(name)
	switch {
	case !ok:
		return "", fmt.Errorf("%s: environment variable %s is not set", key, name)
	case v == "":
		return "", fmt.Errorf("%s: environment variable %s is set but empty", key, name)
	}
	return v, nil
}

// secrets resolves the secrets of one config and collects every
// problem, each naming its key.
type secrets struct {
	lookupEnv func(string) (string, bool)
	errs      []error
}

func (s *secrets) fail(key string, err error) {
	s.errs = append(s.errs, fmt.Errorf("%s: %w", key, err))
}

// env reads the variable NAME; "" after a problem.
func (s *secrets) env(key, name string) string {
	v, err := envValue(s.lookupEnv, key, name)
	if err != nil {
		s.errs = append(s.errs, err)
	}
	return v
}

// ref resolves v, which must be a whole ${NAME} reference; hint ends the
// message when it is not (why a literal is refused, what to use
// instead). "" after a problem.
func (s *secrets) ref(key, v, hint string) string {
	m := envRef.FindStringSubmatch(v)
	if m == nil {
		s.errs = append(s.errs, fmt.Errorf("%s: must be an environment reference like ${NAME}%s", key, hint))
		return ""
	}
	return s.env(key, m[1])
}

// read reads a secret file as it is; ok is false after a problem.
func (s *secrets) read(key, path string) (b []byte, ok bool) {
	b, err := readSecretFile(path)
	if err != nil {
		s.fail(key, err)
		return nil, false
	}
	return b, true
}

// file reads a secret file as text, without its trailing line break;
// ok is false after a problem.
func (s *secrets) file(key, path string) (v string, ok bool) {
	b, ok := s.read(key, path)
	return strings.TrimRight(string(b), "\r\n"), ok
}

// fileFunc checks a secret file now and returns a function that reads
// it again, by the same rules, at every call: a rotated secret is picked
// up without a restart. nil after a problem.
func (s *secrets) fileFunc(key, path string) func() (string, error) {
	if _, ok := s.file(key, path); !ok {
		return nil
	}
	return func() (string, error) {
		b, err := readSecretFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", key, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
}

// readSecretFile reads a file of at most maxSecretBytes that holds more
// than white space.
func readSecretFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxSecretBytes+1))
	switch {
	case err != nil:
		return nil, err
	case len(b) > maxSecretBytes:
		return nil, fmt.Errorf("%s is larger than %d bytes, too large for a secret", path, maxSecretBytes)
	case strings.TrimSpace(string(b)) == "":
		return nil, fmt.Errorf("%s is empty", path)
	}
	return b, nil
}

// resolveSecrets reads every secret of the config (cookie keys, the SP
// key pairs, the store's password or DSN, signed identity keys, the
// Redis URL, SCIM tokens) and hands each package its values. Problems
// name their key.
func (f *File) resolveSecrets(lookupEnv func(string) (string, bool)) []error {
	s := &secrets{lookupEnv: lookupEnv}
	var keys [][]byte
	decode := func(key, v string) {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil {
			s.fail(key, errors.New("not base64"))
			return
		}
		if len(k) != session.KeyLen {
			s.fail(key, fmt.Errorf("decodes to %d bytes, want %d", len(k), session.KeyLen))
			return
		}
		keys = append(keys, k)
	}
	cookieBefore := len(s.errs)
	for i, v := range f.Session.Cookie.Keys {
		key := fmt.Sprintf("cookie.keys[%d]", i)
		if m := envRef.FindStringSubmatch(v); m != nil {
			if v = s.env(key, m[1]); v == "" {
				continue
			}
		} else if strings.Contains(v, "${") {
			s.fail(key, errors.New("an environment reference must be the whole value, like ${NAME}"))
			continue
		}
		decode(key, v)
	}
	for i, path := range f.Session.Cookie.KeyFiles {
		key := fmt.Sprintf("cookie.key_files[%d]", i)
		if v, ok := s.file(key, path); ok {
			decode(key, v)
		}
	}
	f.Session.Cookie.SetKeys(keys)
	if len(s.errs) > cookieBefore {
		// Each unusable key has its problem at its key; "no key" would
		// only repeat it.
		f.followOns = append(f.followOns, session.ErrNoCookieKey)
	}
	// The SP key pairs: read here like every secret file, parsed by
	// session, which reads no file itself.
	s.errs = append(s.errs, f.Session.LoadKeyPairs(readSecretFile)...)
	f.resolveOIDCSecrets(s)
	if l := f.Store.LDAP; l != nil {
		switch {
		case l.BindPassword != "":
			l.BindPassword = s.ref("store.ldap.bind_password", l.BindPassword,
				"; a password in the config file would be readable by anyone who can read the file (or use bind_password_file)")
		case l.BindPasswordFile != "":
			// Read again at every bind (see ldapdir.Config.Password).
			l.Password = s.fileFunc("store.ldap.bind_password_file", l.BindPasswordFile)
		}
	}
	for name, c := range f.Store.sql() {
		switch {
		case c.DSN != "":
			c.DSN = s.ref("store."+name+".dsn", c.DSN,
				"; a DSN can hold a password, which would be readable by anyone who can read the config file (or use dsn_file)")
		case c.DSNFile != "":
			if v, ok := s.file("store."+name+".dsn_file", c.DSNFile); ok {
				c.DSN, c.DSNFile = strings.TrimSpace(v), ""
			}
		}
	}
	if si := f.Proxy.SignedIdentity; si != nil {
		f.identityKeys = nil
		for i, path := range si.KeyFiles {
			key := fmt.Sprintf("signed_identity.key_files[%d]", i)
			b, ok := s.read(key, path)
			if !ok {
				continue
			}
			k, err := proxy.ParseIdentityKey(b)
			if err != nil {
				s.fail(key, fmt.Errorf("%s: %w", path, err))
				continue
			}
			f.identityKeys = append(f.identityKeys, k)
		}
	}
	if r := f.State.Redis; r != nil {
		const key = "state.redis"
		var url string
		switch {
		case (r.URL == "") == (r.URLFile == ""):
			s.fail(key, errors.New("set url (a ${ENV} reference) or url_file"))
		case r.URLFile != "":
			v, _ := s.file(key+".url_file", r.URLFile)
			url = strings.TrimSpace(v)
		default:
			url = s.ref(key+".url", r.URL, "; a Redis URL can hold a password (or use url_file)")
		}
		if url != "" {
			opts, err := redis.ParseURL(url)
			if err != nil {
				// The parser's message may quote the URL, and with it a
				// password; the problem is at the setting the URL came from.
				at := key + ".url"
				if r.URLFile != "" {
					at = key + ".url_file"
				}
				s.fail(at, errors.New("not a redis:// or rediss:// URL"))
			} else {
				opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.MaxRetries = 2*time.Second, 2*time.Second, 2*time.Second, 1
				r.options = opts
			}
		}
		if r.KeyPrefix == "" {
			r.KeyPrefix = "gatehouse:"
		}
	}
	if c := f.SCIM; c != nil {
		// Each token is checked here, at the setting it came from: scim
		// sees only the usable ones and would number them its own way.
		c.Config.Tokens = nil
		before := len(s.errs)
		use := func(key, v string) {
			if err := scim.CheckToken(v); err != nil {
				s.fail(key, err)
				return
			}
			c.Config.Tokens = append(c.Config.Tokens, v)
		}
		for i, v := range c.Tokens {
			key := fmt.Sprintf("scim.tokens[%d]", i)
			if v = s.ref(key, v, " (or use token_files or token_sha256)"); v != "" {
				use(key, v)
			}
		}
		for i, path := range c.TokenFiles {
			key := fmt.Sprintf("scim.token_files[%d]", i)
			if v, ok := s.file(key, path); ok {
				use(key, strings.TrimSpace(v))
			}
		}
		if len(s.errs) > before {
			f.followOns = append(f.followOns, scim.ErrNoToken)
		}
	}
	return s.errs
}

// resolveOIDCSecrets reads the client credentials of the OpenID Connect
// IdPs (a secret, or a private_key_jwt key) and their issuer CA bundles,
// and hands them to the composed session config.
func (f *File) resolveOIDCSecrets(s *secrets) {
	for i := range f.Session.IdPs {
		p := &f.Session.IdPs[i]
		if p.Kind != session.KindOIDC {
			continue
		}
		key := fmt.Sprintf("idps[%d]", i)
		var secret string
		var signer crypto.Signer
		var ca []byte
		switch {
		case p.ClientSecret != "":
			secret = s.ref(key+".client_secret", p.ClientSecret,
				"; a client secret in the config file would be readable by anyone who can read the file (or use client_secret_file)")
		case p.ClientSecretFile != "":
			if v, ok := s.file(key+".client_secret_file", p.ClientSecretFile); ok {
				secret = strings.TrimSpace(v)
			}
		case p.ClientKeyFile != "":
			if b, ok := s.read(key+".client_key_file", p.ClientKeyFile); ok {
				k, err := session.ParseClientKey(b)
				if err != nil {
					s.fail(key+".client_key_file", fmt.Errorf("%s: %w", p.ClientKeyFile, err))
				}
				signer = k
			}
		}
		if p.IssuerCAFile != "" {
			ca, _ = s.read(key+".issuer_ca_file", p.IssuerCAFile)
		}
		p.SetClientCredentials(secret, signer, ca)
	}
}
