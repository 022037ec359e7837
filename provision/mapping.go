package provision

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on asserted values. They keep headers, cookies and rows bounded
// whatever an identity provider sends.
const (
	MaxValueLen  = 1024
	MaxGroupLen  = 256
	MaxGroups    = 10000 // a user of a large Active Directory forest has thousands
	MaxExtraKeys = 32
)

// TransientNameID is the SAML NameID format whose values change on every
// login; such a NameID can never be a match key.
const TransientNameID = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"

// Assertion is the part of a validated SAML assertion that mapping reads.
type Assertion struct {
	IdP          string // entity ID of the asserting party
	NameID       string
	NameIDFormat string
	// Attributes holds every attribute's values keyed by its Name (not
	// its FriendlyName).
	Attributes map[string][]string
}

// Mapping turns an assertion into a Login: which attribute is the match key
// and which attribute fills which user field. Every field names a SAML
// attribute by its Name.
type Mapping struct {
	// KeyAttribute, when set, names an immutable attribute whose single
	// value is the match key instead of the NameID.
	KeyAttribute string            `yaml:"key_attribute"`
	UserName     string            `yaml:"user_name"`
	ExternalID   string            `yaml:"external_id"`
	Email        string            `yaml:"email"`
	DisplayName  string            `yaml:"display_name"`
	GivenName    string            `yaml:"given_name"`
	FamilyName   string            `yaml:"family_name"`
	Groups       string            `yaml:"groups"`
	Extra        map[string]string `yaml:"extra"`
	// ClearAbsent lists the fields (core names, extra names or "groups")
	// that are cleared when the assertion lacks their attribute. Every
	// other field keeps its stored value.
	ClearAbsent []string `yaml:"clear_absent"`
	// NoCreate refuses logins of users that do not exist in the store yet.
	NoCreate bool `yaml:"no_create"`
	// LinkBy selects how the first login of a user created over SCIM
	// finds it: "user_name" (the default) or "external_id" compares that
	// field of the login with the SCIM user's; "none" never links, so the
	// login creates its own user (or fails with a conflict).
	LinkBy string `yaml:"link_by"`
	// TrimWhitespace trims leading and trailing white space from every
	// asserted value instead of refusing the login (the default).
	TrimWhitespace bool `yaml:"trim_whitespace"`
	// GroupPrefix is prepended to every group name this IdP asserts (for
	// example "corp:"), so that groups of different IdPs never share a
	// name. Stored memberships and authorization rules see the prefixed
	// name.
	GroupPrefix string `yaml:"group_prefix"`
}

// MaxGroupPrefixLen bounds Mapping.GroupPrefix.
const MaxGroupPrefixLen = 64

// Link modes of Mapping.LinkBy.
const (
	LinkByUserName   = FieldUserName
	LinkByExternalID = FieldExternalID
	LinkNone         = "none"
)

var extraName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Validate checks the mapping; problems name their key.
func (m Mapping) Validate() error {
	var errs []error
	if len(m.Extra) > MaxExtraKeys {
		errs = append(errs, fmt.Errorf("extra: at most %d attributes", MaxExtraKeys))
	}
	known := map[string]bool{FieldGroups: true}
	for _, f := range coreFields {
		known[f] = true
	}
	for name, attr := range m.Extra {
		if !extraName.MatchString(name) {
			errs = append(errs, fmt.Errorf("extra.%s: name must match %s", name, extraName))
		} else if known[name] {
			errs = append(errs, fmt.Errorf("extra.%s: clashes with a core field", name))
		}
		if attr == "" {
			errs = append(errs, fmt.Errorf("extra.%s: attribute name is empty", name))
		}
	}
	switch m.LinkBy {
	case "", LinkByUserName, LinkNone:
	case LinkByExternalID:
		if m.ExternalID == "" {
			errs = append(errs, errors.New("link_by: external_id needs external_id to name a SAML attribute"))
		}
	default:
		errs = append(errs, fmt.Errorf("link_by: %q is not user_name, external_id or none", m.LinkBy))
	}
	if m.GroupPrefix != "" {
		// The prefix starts every group name, so it must be a canonical
		// name's start: nothing invisible, no leading white space. (A
		// digit ends it for the check: it belongs to no script.)
		if _, err := checkText("group_prefix", m.GroupPrefix+"0", MaxGroupPrefixLen+1, true); err != nil {
			errs = append(errs, fmt.Errorf("group_prefix: %q: %s", m.GroupPrefix, reason(err)))
		}
	}
	for i, f := range m.ClearAbsent {
		if f == FieldUserName {
			errs = append(errs, fmt.Errorf("clear_absent[%d]: user_name can never be cleared", i))
			continue
		}
		if !known[f] && m.Extra[f] == "" {
			errs = append(errs, fmt.Errorf("clear_absent[%d]: %q is not a mapped field", i, f))
		}
	}
	return errors.Join(errs...)
}

// Map builds the Login for a validated assertion. It fails with ErrNoKey
// when the assertion has no usable key and with ErrInvalid when a value is
// unacceptable.
func (m Mapping) Map(a Assertion) (Login, error) {
	key := Key{IdP: a.IdP}
	if m.KeyAttribute != "" {
		vals := a.Attributes[m.KeyAttribute]
		if len(vals) != 1 || vals[0] == "" {
			return Login{}, fmt.Errorf("%w: key attribute %q must have exactly one non-empty value, has %d", ErrNoKey, m.KeyAttribute, len(vals))
		}
		key.Kind, key.Subject = "attr:"+m.KeyAttribute, vals[0]
	} else {
		if a.NameIDFormat == TransientNameID {
			return Login{}, fmt.Errorf("%w: transient NameID and no key_attribute configured", ErrNoKey)
		}
		if a.NameID == "" {
			return Login{}, fmt.Errorf("%w: empty NameID", ErrNoKey)
		}
		key.Kind, key.Subject = "nameid", a.NameID
	}
	if err := checkValue("key", key.Subject, MaxValueLen); err != nil {
		return Login{}, err
	}

	clear := func(field string) bool { return slices.Contains(m.ClearAbsent, field) }
	c := Claims{Fields: map[string]string{}}
	core := []struct{ field, attr string }{
		{FieldUserName, m.UserName},
		{FieldExternalID, m.ExternalID},
		{FieldEmail, m.Email},
		{FieldDisplayName, m.DisplayName},
		{FieldGivenName, m.GivenName},
		{FieldFamilyName, m.FamilyName},
	}
	for _, f := range core {
		if f.attr == "" {
			continue
		}
		if v, ok := first(a.Attributes[f.attr]); ok {
			v, err := m.value(f.field, v)
			if err != nil {
				return Login{}, err
			}
			c.Fields[f.field] = v
		} else if clear(f.field) {
			c.Fields[f.field] = ""
		}
	}
	if c.Fields[FieldUserName] == "" {
		// No user-name attribute asserted: the key is the user name.
		c.Fields[FieldUserName] = key.Subject
	}
	name, err := m.canonical(FieldUserName, c.Fields[FieldUserName], CanonicalName)
	if err != nil {
		return Login{}, err
	}
	c.Fields[FieldUserName] = name
	for name, attr := range m.Extra {
		if v, ok := first(a.Attributes[attr]); ok {
			v, err := m.value(name, v)
			if err != nil {
				return Login{}, err
			}
			if c.Extra == nil {
				c.Extra = map[string]string{}
			}
			c.Extra[name] = v
		} else if clear(name) {
			if c.Extra == nil {
				c.Extra = map[string]string{}
			}
			c.Extra[name] = ""
		}
	}
	if m.Groups != "" {
		vals, ok := a.Attributes[m.Groups]
		if ok || clear(FieldGroups) {
			if len(vals) > MaxGroups {
				return Login{}, fmt.Errorf("%w: %d groups asserted, at most %d", ErrInvalid, len(vals), MaxGroups)
			}
			groups := make([]string, 0, len(vals))
			for _, g := range vals {
				if g == "" {
					continue
				}
				// The asserted name is canonical on its own, and so is
				// the prefixed one: a padded name cannot hide behind the
				// prefix.
				g, err := m.canonical(FieldGroups, g, func(_, v string) (string, error) { return CanonicalGroup(v) })
				if err != nil {
					return Login{}, err
				}
				if g, err = CanonicalGroup(m.GroupPrefix + g); err != nil {
					return Login{}, err
				}
				groups = append(groups, g)
			}
			c.Groups, c.HasGroups = SortedUnique(groups), true
		}
	}
	l := Login{Key: key, Claims: c, NoCreate: m.NoCreate, LinkBy: m.LinkBy}
	switch m.LinkBy {
	case "":
		l.LinkBy = LinkByUserName
	case LinkNone:
		l.LinkBy = ""
	}
	return l, nil
}

// value is the canonical form of an asserted single value, "" included
// (an empty value clears the field).
func (m Mapping) value(field, v string) (string, error) {
	return m.canonical(field, v, CanonicalValue)
}

// canonical applies check to v, trimmed first when the IdP's mapping opts
// in. A value that trims to nothing is refused rather than cleared.
func (m Mapping) canonical(field, v string, check func(field, v string) (string, error)) (string, error) {
	if m.TrimWhitespace {
		t := Trim(v)
		if t == "" && v != "" {
			return "", fmt.Errorf("%w: %s is only white space", ErrInvalid, field)
		}
		v = t
	}
	return check(field, v)
}

// reason is the message of a canonical-form error without the sentinel's.
func reason(err error) string {
	return strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
}

// first returns the first non-empty value.
func first(vals []string) (string, bool) {
	for _, v := range vals {
		if v != "" {
			return v, true
		}
	}
	return "", false
}

// checkValue refuses values that cannot travel safely in a header or a
// row: invalid UTF-8, control characters (CR, LF, NUL, ...), and oversized
// values.
func checkValue(field, v string, max int) error {
	switch {
	case len(v) > max:
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrInvalid, field, len(v), max)
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: %s contains control characters", ErrInvalid, field)
	}
	return nil
}
