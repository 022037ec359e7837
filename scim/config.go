package scim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"gatehouse/provision"
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

// ErrNoToken is the problem Validate reports when no token is configured:
// a caller that resolved tokens from files or the environment may drop it
// when it already reported why each of them could not be used.
var ErrNoToken = errors.New("at least one bearer token is required")

// CheckToken checks one clear-text token by the rules Validate applies
// to Tokens, so that a caller can report a problem at the setting the
// token came from; it never echoes the token.
func CheckToken(t string) error {
	switch {
	case strings.ContainsAny(t, " \t\r\n"):
		return errors.New("contains white space")
	case len(t) < MinTokenLen:
		return fmt.Errorf("at least %d characters", MinTokenLen)
	}
	return nil
}

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
		bad("tokens: %w (tokens, token_files or token_sha256)", ErrNoToken)
	}
	for i, t := range c.Tokens {
		if err := CheckToken(t); err != nil {
			bad("tokens[%d]: %w", i, err)
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
		standard := standardUserFields()
		names := slices.Sorted(maps.Keys(e.Attributes))
		byName, byField := map[string]string{}, map[string]string{}
		for _, name := range names {
			field := e.Attributes[name]
			if !attrNameRE.MatchString(name) {
				bad("extension.attributes.%s: not an attribute name", name)
			}
			if other, ok := byName[strings.ToLower(name)]; ok {
				bad("extension.attributes.%s: is also extension.attributes.%s: attribute names ignore case", name, other)
			}
			byName[strings.ToLower(name)] = name
			switch {
			case !fieldNameRE.MatchString(field):
				bad("extension.attributes.%s: field %q must match %s", name, field, fieldNameRE)
			case standard[field]:
				bad("extension.attributes.%s: field %q already holds a standard attribute", name, field)
			case slices.Contains(recordFields, field):
				bad("extension.attributes.%s: the store has no place for field %q: it is part of the record, not an attribute", name, field)
			}
			if other, ok := byField[field]; ok {
				bad("extension.attributes.%s: field %q also holds extension.attributes.%s", name, field, other)
			}
			byField[field] = name
		}
	}
	// A misspelt owned field would leave the field it meant to the IdP.
	standard := standardUserFields()
	for i, f := range c.OwnedFields {
		if f == provision.FieldGroups || !standard[f] && !slices.Contains(slices.Collect(maps.Values(c.Extension.Attributes)), f) {
			bad("owned_fields[%d]: %q is not a user field SCIM writes (the core and enterprise fields, external_id, and the extension's)", i, f)
		}
	}
	return errors.Join(errs...)
}

// standardUserFields are the store fields of the core and enterprise User
// attributes, of externalId and of group memberships: an extension
// attribute may not share one, whatever the store keeps.
func standardUserFields() map[string]bool {
	all := func(string) bool { return true }
	out := map[string]bool{provision.FieldExternalID: true, provision.FieldGroups: true}
	for _, sc := range []*schema{userSchema(all), enterpriseSchema(all)} {
		for _, f := range sc.fields() {
			out[f] = true
		}
	}
	return out
}

// recordFields name parts of a record that no store keeps as a user
// attribute: the ID, the status, the timestamps and a group's name and
// members.
var recordFields = []string{provision.FieldID, provision.FieldActive, provision.FieldCreated, provision.FieldUpdated,
	provision.FieldName, provision.FieldMember}
