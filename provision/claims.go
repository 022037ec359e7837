package provision

import (
	"slices"
)

// Core user fields, by the names used in mappings, audit events and
// Result.Changed.
const (
	FieldUserName    = "user_name"
	FieldExternalID  = "external_id"
	FieldEmail       = "email"
	FieldDisplayName = "display_name"
	FieldGivenName   = "given_name"
	FieldFamilyName  = "family_name"
	FieldGroups      = "groups"
)

// coreFields lists the single-valued core fields in a stable order.
var coreFields = []string{FieldUserName, FieldExternalID, FieldEmail, FieldDisplayName, FieldGivenName, FieldFamilyName}

// Claims are the user fields one assertion asserts. A field missing from
// the maps was not asserted and is left as it is; a field present with ""
// is cleared.
type Claims struct {
	Fields    map[string]string // core fields (FieldUserName, FieldEmail, ...)
	Extra     map[string]string // additional attributes by configured name
	Groups    []string          // group names, sorted and de-duplicated
	HasGroups bool              // Groups is authoritative for this IdP's memberships
}

// field returns a pointer to the core field called name.
func (u *User) field(name string) *string {
	switch name {
	case FieldUserName:
		return &u.UserName
	case FieldExternalID:
		return &u.ExternalID
	case FieldEmail:
		return &u.Email
	case FieldDisplayName:
		return &u.DisplayName
	case FieldGivenName:
		return &u.GivenName
	case FieldFamilyName:
		return &u.FamilyName
	}
	return nil
}

// Field returns the value of a core field or an extra attribute by its
// mapping name; "" when unset.
func (u *User) Field(name string) string {
	if p := u.field(name); p != nil {
		return *p
	}
	return u.Extra[name]
}

// SetField sets a core field or an extra attribute by its mapping name; an
// empty extra value removes the attribute.
func (u *User) SetField(name, v string) {
	if p := u.field(name); p != nil {
		*p = v
		return
	}
	if v == "" {
		delete(u.Extra, name)
		return
	}
	if u.Extra == nil {
		u.Extra = map[string]string{}
	}
	u.Extra[name] = v
}

// Apply merges c's single-valued fields into u and returns the names of the
// fields it changed, core fields first and then extra attributes, each
// group in a stable order. Groups are not touched: memberships depend on
// their source, which the store knows (see DiffGroups).
func (u *User) Apply(c Claims) []string {
	var changed []string
	for _, name := range coreFields {
		v, ok := c.Fields[name]
		if !ok {
			continue
		}
		if p := u.field(name); *p != v {
			*p = v
			changed = append(changed, name)
		}
	}
	var extra []string
	for name, v := range c.Extra {
		old, had := u.Extra[name]
		if v == "" {
			if had {
				delete(u.Extra, name)
				extra = append(extra, name)
			}
			continue
		}
		if !had || old != v {
			if u.Extra == nil {
				u.Extra = map[string]string{}
			}
			u.Extra[name] = v
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	return append(changed, extra...)
}

// DiffGroups compares the groups a source currently holds with the groups
// it asserts now; both must be sorted and de-duplicated.
func DiffGroups(have, want []string) (add, remove []string) {
	i, j := 0, 0
	for i < len(have) || j < len(want) {
		switch {
		case j == len(want) || (i < len(have) && have[i] < want[j]):
			remove = append(remove, have[i])
			i++
		case i == len(have) || want[j] < have[i]:
			add = append(add, want[j])
			j++
		default:
			i++
			j++
		}
	}
	return add, remove
}

// SortedUnique sorts names and removes duplicates and empty strings.
func SortedUnique(names []string) []string {
	out := slices.Clone(names)
	out = slices.DeleteFunc(out, func(s string) bool { return s == "" })
	slices.Sort(out)
	return slices.Compact(out)
}
