package scim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Config configures the SCIM endpoint. Tokens arrive resolved: cmd reads
// them from files or the environment and never from the YAML text itself.
type Config struct {
	// Tokens are accepted bearer tokens in clear text (resolved from
	// ${ENV} references or files); they are hashed at start-up and the
	// clear text is dropped.
	Tokens []string `yaml:"-"`
	// TokenSHA256 are accepted tokens given as hex SHA-256 digests, so the
	// config file never holds a usable token.
	TokenSHA256 []string `yaml:"token_sha256"`
	// Quirks accepts what Okta and Entra ID send beyond the RFC (see the
	// README); default true.
	Quirks *bool `yaml:"quirks"`
	// MaxBodyBytes caps request bodies (413 beyond); default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// DefaultCount is the page size when a list does not ask; default 100.
	DefaultCount int `yaml:"default_count"`
	// MaxResults caps a page; default 1000.
	MaxResults int `yaml:"max_results"`
	// Timeout bounds the store work of one request; default 15s.
	Timeout time.Duration `yaml:"timeout"`
	// Extension declares custom user attributes as an extension schema.
	Extension Extension `yaml:"extension"`
	// OwnedFields lists the user fields SCIM may own: a login leaves such a
	// field alone once SCIM has written it to that user (User.SCIMFields).
	// Default: every field SCIM maps, and external_id.
	OwnedFields []string `yaml:"owned_fields"`
	// TrimWhitespace trims leading and trailing white space from every
	// string a client sends instead of refusing it with 400 invalidValue
	// (the default).
	TrimWhitespace bool `yaml:"trim_whitespace"`
}

// Extension is an operator-declared extension schema of string attributes.
type Extension struct {
	// URN names the schema, for example
	// "urn:ietf:params:scim:schemas:extension:acme:2.0:User".
	URN  string `yaml:"urn"`
	Name string `yaml:"name"`
	// Attributes maps an attribute name to the store field holding it.
	Attributes map[string]string `yaml:"attributes"`
}

// MinTokenLen is the shortest clear-text token accepted.
const MinTokenLen = 32

var (
	attrNameRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)
	fieldNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	urnRE       = regexp.MustCompile(`^urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:[A-Za-z0-9()+,\-.:=@;$_!*'%/?#]+$`)
)

func (c Config) quirks() bool { return c.Quirks == nil || *c.Quirks }

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.DefaultCount == 0 {
		c.DefaultCount = 100
	}
	if c.MaxResults == 0 {
		c.MaxResults = 1000
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	if c.Extension.URN != "" && c.Extension.Name == "" {
		c.Extension.Name = "CustomUser"
	}
	return c
}

// Validate checks the configuration; it never echoes a token.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Tokens)+len(c.TokenSHA256) == 0 {
		bad("tokens: at least one bearer token is required (tokens, token_files or token_sha256)")
	}
	for i, t := range c.Tokens {
		if len(t) < MinTokenLen {
			bad("tokens[%d]: at least %d characters", i, MinTokenLen)
		}
		if strings.ContainsAny(t, " \t\r\n") {
			bad("tokens[%d]: contains white space", i)
		}
	}
	for i, h := range c.TokenSHA256 {
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			bad("token_sha256[%d]: want 64 hex digits", i)
		}
	}
	if c.MaxBodyBytes < 1024 {
		bad("max_body_bytes: at least 1024")
	}
	if c.DefaultCount < 1 || c.MaxResults < c.DefaultCount {
		bad("default_count, max_results: want 1 <= default_count <= max_results")
	}
	if e := c.Extension; e.URN != "" || len(e.Attributes) > 0 {
		switch {
		case !urnRE.MatchString(e.URN):
			bad("extension.urn: %q is not a URN", e.URN)
		case strings.EqualFold(e.URN, URNUser), strings.EqualFold(e.URN, URNEnterprise), strings.EqualFold(e.URN, URNGroup):
			bad("extension.urn: %q is a standard schema", e.URN)
		}
		if len(e.Attributes) == 0 {
			bad("extension.attributes: at least one attribute")
		}
		for name, field := range e.Attributes {
			if !attrNameRE.MatchString(name) {
				bad("extension.attributes.%s: not an attribute name", name)
			}
			if !fieldNameRE.MatchString(field) {
				bad("extension.attributes.%s: field %q must match %s", name, field, fieldNameRE)
			}
		}
	}
	return errors.Join(errs...)
}
