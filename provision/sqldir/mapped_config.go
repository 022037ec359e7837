package sqldir

import (
	"errors"
	"fmt"
	"gatehouse/provision"
	"maps"
	"slices"
	"strings"
)

// MappedConfig declares an application's existing tables. gatehouse reads
// and writes their rows through the declared columns and never alters
// them; its own bookkeeping (which login key is which row, versions,
// membership sources) lives in gatehouse_mapped_* tables beside them.
type MappedConfig struct {
	Users       UserTable        `yaml:"users"`
	Groups      *GroupTable      `yaml:"groups"`
	Memberships *MembershipTable `yaml:"memberships"`
	// Procedure, when set, is called to create and update a user instead
	// of writing the users table; the table is still read.
	Procedure *Procedure `yaml:"procedure"`
}

// UserTable is the application's user table.
type UserTable struct {
	Table string `yaml:"table"` // table or schema.table
	Key   string `yaml:"key"`   // its primary key column
	// KeyGenerated says where a new row's key comes from: "database" (an
	// identity, serial or default; the default) or "uuid" (gatehouse
	// writes a random UUID). When a column of Columns is the key column,
	// the key is that field's value and cannot change.
	KeyGenerated string `yaml:"key_generated"`
	// Columns maps user fields (user_name, email, display_name, given_name,
	// family_name, external_id, or an extra field's name) to columns.
	// user_name is required.
	Columns  map[string]string `yaml:"columns"`
	Disabled *DisabledColumn   `yaml:"disabled"`
}

// DisabledColumn is the application's own "account disabled" flag.
type DisabledColumn struct {
	Column string `yaml:"column"`
	// Value is the column's value, as text, for a disabled user ("1",
	// "true", "Y"); anything else, NULL included, is enabled.
	Value string `yaml:"value"`
	// EnabledValue is written for a new or re-enabled user; when empty a
	// new row takes the column's default and re-enabling writes NULL.
	EnabledValue string `yaml:"enabled_value"`
}

// GroupTable is the application's group (role) table.
type GroupTable struct {
	Table        string `yaml:"table"`
	Key          string `yaml:"key"`
	KeyGenerated string `yaml:"key_generated"`
	Name         string `yaml:"name"`
}

// MembershipTable links users and groups: one row per membership.
type MembershipTable struct {
	Table string `yaml:"table"`
	User  string `yaml:"user"`  // column holding the user's key
	Group string `yaml:"group"` // column holding the group's key
}

// Procedure is a stored procedure (SQL Server) or function (PostgreSQL)
// that creates or updates one user and returns its key as the first
// column of its first row.
type Procedure struct {
	Name string `yaml:"name"`
	// KeyParam, when set, receives the row's key on an update and NULL on
	// a create.
	KeyParam string `yaml:"key_param"`
	// Params maps user fields to parameter names.
	Params map[string]string `yaml:"params"`
}

const (
	keyFromDatabase = "database"
	keyFromUUID     = "uuid"
	keyFromField    = "field" // resolved: a mapped column is the key
)

var coreMappable = []string{provision.FieldUserName, provision.FieldExternalID, provision.FieldEmail,
	provision.FieldDisplayName, provision.FieldGivenName, provision.FieldFamilyName}

func mappableField(f string) bool { return slices.Contains(coreMappable, f) || extraName(f) }

// validate reports what is wrong with the mapping without I/O; keys are
// relative to the mapped section.
func (m *MappedConfig) validate(d *dialect) []Problem {
	var errs []Problem
	bad := func(key string, err error) { errs = append(errs, Problem{Key: key, Err: err}) }
	ident := func(key, v string, qualified bool) {
		if v == "" {
			bad(key, errors.New("required"))
		} else if _, err := d.quoteIdent(v, qualified); err != nil {
			bad(key, err)
		}
	}
	keyGen := func(key, v string) {
		if v != "" && v != keyFromDatabase && v != keyFromUUID {
			bad(key, fmt.Errorf("%q is not database or uuid", v))
		}
	}
	u := m.Users
	ident("users.table", u.Table, true)
	ident("users.key", u.Key, false)
	keyGen("users.key_generated", u.KeyGenerated)
	if u.Columns[provision.FieldUserName] == "" {
		bad("users.columns.user_name", errors.New("required: the column holding the user name"))
	}
	seen := map[string]string{}
	for _, f := range slices.Sorted(maps.Keys(u.Columns)) {
		col := u.Columns[f]
		if !mappableField(f) {
			bad("users.columns."+f, errors.New("not a user field (user_name, external_id, email, display_name, given_name, family_name, or an extra field name)"))
			continue
		}
		ident("users.columns."+f, col, false)
		if other, ok := seen[strings.ToLower(col)]; ok {
			bad("users.columns."+f, fmt.Errorf("column %s already holds %s", col, other))
		}
		seen[strings.ToLower(col)] = f
	}
	if dc := u.Disabled; dc != nil {
		ident("users.disabled.column", dc.Column, false)
		if dc.Value == "" {
			bad("users.disabled.value", errors.New("required: the column's value for a disabled user"))
		}
		if dc.Value == dc.EnabledValue {
			bad("users.disabled.enabled_value", errors.New("must differ from value"))
		}
		if f, ok := seen[strings.ToLower(dc.Column)]; ok {
			bad("users.disabled.column", fmt.Errorf("column %s already holds %s", dc.Column, f))
		}
	}
	if (m.Groups == nil) != (m.Memberships == nil) {
		bad("groups", errors.New("groups and memberships go together"))
	}
	if g := m.Groups; g != nil {
		ident("groups.table", g.Table, true)
		ident("groups.key", g.Key, false)
		ident("groups.name", g.Name, false)
		keyGen("groups.key_generated", g.KeyGenerated)
	}
	if ms := m.Memberships; ms != nil {
		ident("memberships.table", ms.Table, true)
		ident("memberships.user", ms.User, false)
		ident("memberships.group", ms.Group, false)
	}
	if p := m.Procedure; p != nil {
		if d.name == SQLite {
			bad("procedure", errors.New("SQLite has no stored procedures"))
		}
		ident("procedure.name", p.Name, true)
		if p.KeyParam != "" {
			ident("procedure.key_param", p.KeyParam, false)
		}
		if len(p.Params) == 0 {
			bad("procedure.params", errors.New("required: which parameter receives which user field"))
		}
		for _, f := range slices.Sorted(maps.Keys(p.Params)) {
			if _, ok := u.Columns[f]; !ok {
				bad("procedure.params."+f, errors.New("not a field of users.columns: the procedure's result is read back through them"))
			}
			ident("procedure.params."+f, p.Params[f], false)
		}
	}
	return errs
}
