package sqldir

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/google/uuid"

	"gatehouse/provision"
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

func (m *MappedConfig) validate(d *dialect) error {
	var errs []error
	bad := func(key string, err error) { errs = append(errs, fmt.Errorf("%s: %w", key, err)) }
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
	return errors.Join(errs...)
}

// colInfo is what the database says about one column.
type colInfo struct {
	typ       string
	nullable  bool
	maxLen    int // characters (UTF-16 units on SQL Server); 0: no limit
	generated bool
}

// mcol is one mapped user field.
type mcol struct {
	field string
	name  string // quoted
	raw   string // as configured
	info  colInfo
}

// Mapped is a provision.Store over an application's own tables.
type Mapped struct {
	*db
	cfg      MappedConfig
	users    string // quoted table
	key      string // quoted key column
	keyGen   string
	keyField string // the field whose column is the key, when keyGen is keyFromField
	cols     []mcol // sorted by field
	disabled *DisabledColumn
	disCol   mcol
	groups   *mappedGroups
	proc     *Procedure
}

type mappedGroups struct {
	table, key, name, keyGen string
	mtable, muser, mgroup    string
}

var _ provision.Store = (*Mapped)(nil)

// OpenMapped opens the database, checks the declared tables and columns,
// and creates or migrates gatehouse's own bookkeeping tables beside them.
func OpenMapped(ctx context.Context, cfg Config, opts ...Option) (*Mapped, error) {
	if cfg.Mapped == nil {
		return nil, errors.New("sqldir: no mapped tables are configured: use Open")
	}
	d, err := connect(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	m, problems, err := resolveMapped(ctx, d, *cfg.Mapped)
	if err == nil && len(problems) > 0 {
		err = fmt.Errorf("sqldir: the mapped tables do not match the configuration:\n%w", errors.Join(problems...))
	}
	if err == nil {
		err = d.migrate(ctx, "mapped", d.d.expand(mappedMigrations))
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	return m, nil
}

// resolveMapped quotes the configured names and reads the columns'
// types. problems are mismatches between the configuration and the
// database; err is a failure to ask.
func resolveMapped(ctx context.Context, d *db, cfg MappedConfig) (*Mapped, []error, error) {
	q := func(name string, qualified bool) string {
		s, _ := d.d.quoteIdent(name, qualified) // validated
		return s
	}
	m := &Mapped{db: d, cfg: cfg, users: q(cfg.Users.Table, true), key: q(cfg.Users.Key, false),
		keyGen: cmp.Or(cfg.Users.KeyGenerated, keyFromDatabase), disabled: cfg.Users.Disabled, proc: cfg.Procedure}
	var problems []error
	cols, err := d.columns(ctx, cfg.Users.Table)
	if err != nil {
		return nil, nil, err
	}
	need := func(key, table string, cols map[string]colInfo, col string, text bool) colInfo {
		info, ok := lookupCol(d.d, cols, col)
		switch {
		case len(cols) == 0:
			// reported once per table below
		case !ok:
			problems = append(problems, fmt.Errorf("%s: table %s has no column %s", key, table, col))
		case text && !d.d.textType(info.typ):
			problems = append(problems, fmt.Errorf("%s: column %s is %s; a text column is needed", key, col, info.typ))
		}
		return info
	}
	if len(cols) == 0 {
		problems = append(problems, fmt.Errorf("users.table: table %s does not exist or has no columns this login can see", cfg.Users.Table))
	}
	keyInfo := need("users.key", cfg.Users.Table, cols, cfg.Users.Key, false)
	for _, f := range slices.Sorted(maps.Keys(cfg.Users.Columns)) {
		raw := cfg.Users.Columns[f]
		c := mcol{field: f, name: q(raw, false), raw: raw, info: need("users.columns."+f, cfg.Users.Table, cols, raw, true)}
		m.cols = append(m.cols, c)
		if strings.EqualFold(raw, cfg.Users.Key) && (d.d.name != Postgres || raw == cfg.Users.Key) {
			m.keyGen, m.keyField = keyFromField, f
		}
	}
	if m.keyGen == keyFromDatabase && len(cols) > 0 && !keyInfo.generated {
		problems = append(problems, fmt.Errorf("users.key_generated: column %s has no default or identity to number new rows; use key_generated: uuid or map a field to it", cfg.Users.Key))
	}
	if dc := m.disabled; dc != nil {
		m.disCol = mcol{name: q(dc.Column, false), raw: dc.Column, info: need("users.disabled.column", cfg.Users.Table, cols, dc.Column, false)}
	}
	if g := cfg.Groups; g != nil {
		gcols, err := d.columns(ctx, g.Table)
		if err != nil {
			return nil, nil, err
		}
		if len(gcols) == 0 {
			problems = append(problems, fmt.Errorf("groups.table: table %s does not exist", g.Table))
		}
		ki := need("groups.key", g.Table, gcols, g.Key, false)
		need("groups.name", g.Table, gcols, g.Name, true)
		mg := &mappedGroups{table: q(g.Table, true), key: q(g.Key, false), name: q(g.Name, false), keyGen: cmp.Or(g.KeyGenerated, keyFromDatabase)}
		if mg.keyGen == keyFromDatabase && len(gcols) > 0 && !ki.generated {
			problems = append(problems, fmt.Errorf("groups.key_generated: column %s has no default or identity; use key_generated: uuid", g.Key))
		}
		ms := cfg.Memberships
		mcols, err := d.columns(ctx, ms.Table)
		if err != nil {
			return nil, nil, err
		}
		if len(mcols) == 0 {
			problems = append(problems, fmt.Errorf("memberships.table: table %s does not exist", ms.Table))
		}
		need("memberships.user", ms.Table, mcols, ms.User, false)
		need("memberships.group", ms.Table, mcols, ms.Group, false)
		mg.mtable, mg.muser, mg.mgroup = q(ms.Table, true), q(ms.User, false), q(ms.Group, false)
		m.groups = mg
	}
	if p := cfg.Procedure; p != nil {
		ok, err := d.procedureExists(ctx, p.Name)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			problems = append(problems, fmt.Errorf("procedure.name: %s does not exist", p.Name))
		}
	}
	return m, problems, nil
}

func lookupCol(d *dialect, cols map[string]colInfo, name string) (colInfo, bool) {
	if c, ok := cols[name]; ok {
		return c, true
	}
	if d.name == Postgres { // quoted names are case-sensitive there
		return colInfo{}, false
	}
	for n, c := range cols {
		if strings.EqualFold(n, name) {
			return c, true
		}
	}
	return colInfo{}, false
}

// CheckMapped connects and reports every mismatch between the mapped
// configuration and the database, without creating anything.
func CheckMapped(ctx context.Context, cfg Config) []error {
	if cfg.Mapped == nil {
		return []error{errors.New("no mapped tables are configured")}
	}
	d, err := connect(ctx, cfg, nil)
	if err != nil {
		return []error{err}
	}
	defer d.Close()
	_, problems, err := resolveMapped(ctx, d, *cfg.Mapped)
	if err != nil {
		return []error{err}
	}
	return problems
}

// Check connects to the database of a managed store and reports whether
// gatehouse's schema is there or would be created, without creating it.
func Check(ctx context.Context, cfg Config) []error {
	if cfg.Mapped != nil {
		return CheckMapped(ctx, cfg)
	}
	d, err := connect(ctx, cfg, nil)
	if err != nil {
		return []error{err}
	}
	defer d.Close()
	if err := d.Ping(ctx); err != nil {
		return []error{err}
	}
	return nil
}

// mappedMigrations create gatehouse's bookkeeping beside an application's
// tables; {placeholders} are the dialect's column types (expand).
var mappedMigrations = []string{
	`CREATE TABLE gatehouse_mapped_users (
		user_key       {key} NOT NULL PRIMARY KEY,
		user_name_norm {name} NOT NULL,
		owner          {short} NOT NULL,
		status         {short} NOT NULL,
		version        {int} NOT NULL,
		created_at     {time} NOT NULL,
		updated_at     {time} NOT NULL
	);
	CREATE UNIQUE INDEX ux_gatehouse_mapped_users_name ON gatehouse_mapped_users(user_name_norm);
	CREATE TABLE gatehouse_mapped_identities (
		idp        {idp} NOT NULL,
		key_kind   {kind} NOT NULL,
		subject    {subject} NOT NULL,
		user_key   {key} NOT NULL REFERENCES gatehouse_mapped_users(user_key) ON DELETE CASCADE,
		created_at {time} NOT NULL,
		CONSTRAINT pk_gatehouse_mapped_identities PRIMARY KEY {nonclustered} (idp, key_kind, subject)
	);
	CREATE INDEX ix_gatehouse_mapped_identities_user ON gatehouse_mapped_identities(user_key);
	CREATE TABLE gatehouse_mapped_memberships (
		user_key   {key} NOT NULL REFERENCES gatehouse_mapped_users(user_key) ON DELETE CASCADE,
		group_key  {key} NOT NULL,
		source     {source} NOT NULL,
		created_at {time} NOT NULL,
		CONSTRAINT pk_gatehouse_mapped_memberships PRIMARY KEY {nonclustered} (user_key, group_key, source)
	);`,
	// 2: names fold with NFKC and full case folding.
	refoldStep,
	// 3: the fold also removes accents and dots the dotless i.
	refoldStep,
}

// sourceApp marks a membership the application had before gatehouse
// added the same one: no gatehouse source may remove it.
const sourceApp = "app"

// mrecord is a mapped user as read: the application's row and
// gatehouse's bookkeeping of it.
type mrecord struct {
	user      provision.User
	tracked   bool              // gatehouse_mapped_users has the row
	srcGroups map[string]string // normalised name -> name, for one source
	groupKeys map[string]string // normalised name -> the application's group key
}

// appColumns is the SELECT list reading one user row: the key, each
// mapped column and the disabled flag, all as text.
func (m *Mapped) appColumns() string {
	parts := []string{m.d.text("a." + m.key)}
	for _, c := range m.cols {
		parts = append(parts, m.d.text("a."+c.name))
	}
	if m.disabled != nil {
		parts = append(parts, m.d.text("a."+m.disCol.name))
	}
	return strings.Join(parts, ", ")
}

// readRow reads the application's row with the given key.
func (m *Mapped) readRow(ctx context.Context, q querier, key string, lock bool) (provision.User, bool, error) {
	th, qh := "", ""
	if lock {
		th, qh = m.d.lock()
	}
	vals := make([]sql.NullString, len(m.cols)+2)
	ptrs := make([]any, 0, len(vals))
	for i := range vals {
		if i < len(m.cols)+1 || m.disabled != nil {
			ptrs = append(ptrs, &vals[i])
		}
	}
	err := q.QueryRowContext(ctx, `SELECT `+m.appColumns()+` FROM `+m.users+` a`+th+` WHERE a.`+m.key+` = ?`+qh, key).Scan(ptrs...)
	// An ID that cannot be a value of the key's type names no row.
	if errors.Is(err, sql.ErrNoRows) || err != nil && m.d.classify(err) == errBadText {
		return provision.User{}, false, nil
	}
	if err != nil {
		return provision.User{}, false, fmt.Errorf("sqldir: read %s: %w", m.cfg.Users.Table, err)
	}
	u := provision.User{ID: vals[0].String, Active: true}
	for i, c := range m.cols {
		u.SetField(c.field, vals[i+1].String)
	}
	if m.disabled != nil {
		d := vals[len(m.cols)+1]
		u.Active = !(d.Valid && d.String == m.disabled.Value)
	}
	return u, true, nil
}

// read loads a user by key: the row, gatehouse's bookkeeping, and the
// groups (all of them, and those of source).
func (m *Mapped) read(ctx context.Context, q querier, key, source string, lock bool) (mrecord, bool, error) {
	var rec mrecord
	u, ok, err := m.readRow(ctx, q, key, lock)
	if err != nil || !ok {
		return rec, false, err
	}
	rec.user = u
	var status string
	err = q.QueryRowContext(ctx, `SELECT owner, status, version, created_at, updated_at FROM gatehouse_mapped_users WHERE user_key = ?`, key).
		Scan(&rec.user.Owner, &status, &rec.user.Version, timeScan{&rec.user.Created}, timeScan{&rec.user.Updated})
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return rec, false, fmt.Errorf("sqldir: read user state: %w", err)
	default:
		rec.tracked = true
		if m.disabled == nil {
			rec.user.Active = status == "active"
		}
	}
	if m.groups != nil {
		if err := m.readGroups(ctx, q, &rec, source); err != nil {
			return rec, false, err
		}
	}
	return rec, true, nil
}

func (m *Mapped) readGroups(ctx context.Context, q querier, rec *mrecord, source string) error {
	g := m.groups
	rows, err := q.QueryContext(ctx, `SELECT `+m.d.text("g."+g.key)+`, `+m.d.text("g."+g.name)+` FROM `+g.mtable+` am JOIN `+g.table+
		` g ON g.`+g.key+` = am.`+g.mgroup+` WHERE am.`+g.muser+` = ?`, rec.user.ID)
	if err != nil {
		return fmt.Errorf("sqldir: read groups: %w", err)
	}
	byKey := map[string]string{}
	for rows.Next() {
		var k, name sql.NullString
		if err := rows.Scan(&k, &name); err != nil {
			rows.Close()
			return fmt.Errorf("sqldir: read groups: %w", err)
		}
		byKey[k.String] = name.String
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqldir: read groups: %w", err)
	}
	rec.user.Groups = provision.SortedUnique(slices.Collect(maps.Values(byKey)))
	rec.srcGroups, rec.groupKeys = map[string]string{}, map[string]string{}
	for k, name := range byKey {
		rec.groupKeys[provision.NormalizeName(name)] = k
	}
	rows, err = q.QueryContext(ctx, `SELECT group_key FROM gatehouse_mapped_memberships WHERE user_key = ? AND source = ?`, rec.user.ID, source)
	if err != nil {
		return fmt.Errorf("sqldir: read membership sources: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return fmt.Errorf("sqldir: read membership sources: %w", err)
		}
		if name, ok := byKey[k]; ok { // a membership the application removed is gone
			rec.srcGroups[provision.NormalizeName(name)] = name
		}
	}
	return rows.Err()
}

// identity finds the key of the row a login key is linked to.
func (m *Mapped) identity(ctx context.Context, q querier, k provision.Key, lock bool) (string, bool, error) {
	th, qh := "", ""
	if lock {
		th, qh = m.d.lock()
	}
	var key string
	err := q.QueryRowContext(ctx, `SELECT user_key FROM gatehouse_mapped_identities`+th+` WHERE idp = ? AND key_kind = ? AND subject = ?`+qh,
		k.IdP, k.Kind, k.Subject).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("sqldir: read identity: %w", err)
	}
	return key, true, nil
}

// restrict drops the claims the mapping has no column for, so that they
// never count as changes.
func (m *Mapped) restrict(c provision.Claims) provision.Claims {
	var drop []string
	for f := range c.Fields {
		if !slices.ContainsFunc(m.cols, func(mc mcol) bool { return mc.field == f }) {
			drop = append(drop, f)
		}
	}
	for f := range c.Extra {
		if !slices.ContainsFunc(m.cols, func(mc mcol) bool { return mc.field == f }) {
			drop = append(drop, f)
		}
	}
	if len(drop) > 0 {
		c = c.Without(drop)
	}
	if m.groups == nil {
		c.Groups, c.HasGroups = nil, false
	}
	return c
}

// Provision performs the JIT upsert into the application's table. A
// repeat login with nothing new reads and writes nothing else.
func (m *Mapped) Provision(ctx context.Context, l provision.Login) (provision.Result, error) {
	if err := l.Claims.Check(); err != nil {
		return provision.Result{}, fmt.Errorf("sqldir: %w", err)
	}
	ctx, cancel := m.bound(ctx)
	defer cancel()
	l.Claims = m.restrict(l.Claims)
	source := provision.GroupSource(l.Key.IdP)
	if key, found, err := m.identity(ctx, m.reader(), l.Key, false); err != nil {
		return provision.Result{}, err
	} else if found {
		rec, ok, err := m.read(ctx, m.reader(), key, source, false)
		if err != nil {
			return provision.Result{}, err
		}
		if ok && !rec.user.Active {
			return provision.Result{User: rec.user}, fmt.Errorf("sqldir: user %s: %w", key, provision.ErrDisabled)
		}
		if ok && len(diff(record{user: rec.user, srcGroups: rec.srcGroups}, l).changed) == 0 {
			return provision.Result{User: rec.user, Outcome: provision.Unchanged}, nil
		}
	}
	var res provision.Result
	err := m.write(ctx, func(q querier, now time.Time) error {
		var err error
		res, err = m.provisionTx(ctx, q, l, source, now)
		return err
	})
	return res, err
}

func (m *Mapped) provisionTx(ctx context.Context, q querier, l provision.Login, source string, now time.Time) (provision.Result, error) {
	key, found, err := m.identity(ctx, q, l.Key, true)
	if err != nil {
		return provision.Result{}, err
	}
	var rec mrecord
	if found {
		var ok bool
		if rec, ok, err = m.read(ctx, q, key, source, true); err != nil {
			return provision.Result{}, err
		}
		if !ok {
			// The application deleted the row: forget it and start over.
			if _, err := q.ExecContext(ctx, `DELETE FROM gatehouse_mapped_users WHERE user_key = ?`, key); err != nil {
				return provision.Result{}, fmt.Errorf("sqldir: forget deleted row: %w", err)
			}
			found = false
		}
	}
	linked := false
	if !found {
		if rec, linked, err = m.link(ctx, q, l, source, now); err != nil {
			return provision.Result{}, err
		}
		found = linked
	}
	if !found {
		if l.NoCreate {
			return provision.Result{}, fmt.Errorf("sqldir: user for %s %q: %w", l.Key.Kind, l.Key.Subject, provision.ErrNotFound)
		}
		return m.create(ctx, q, l, source, now)
	}
	if !rec.user.Active {
		return provision.Result{User: rec.user}, fmt.Errorf("sqldir: user %s: %w", rec.user.ID, provision.ErrDisabled)
	}
	p := diff(record{user: rec.user, srcGroups: rec.srcGroups}, l)
	if len(p.changed) == 0 {
		out := provision.Unchanged
		if linked {
			out = provision.Linked
		}
		return provision.Result{User: rec.user, Outcome: out}, nil
	}
	u := p.user
	if err := m.updateRow(ctx, q, rec.user, u); err != nil {
		return provision.Result{}, err
	}
	u.Version++
	u.Updated = truncStamp(now)
	if _, err := q.ExecContext(ctx, `UPDATE gatehouse_mapped_users SET user_name_norm = ?, version = ?, updated_at = ? WHERE user_key = ?`,
		provision.NormalizeName(u.UserName), u.Version, m.d.time(now), u.ID); err != nil {
		return provision.Result{}, m.mapWriteErr("update user state", err)
	}
	if err := m.syncGroups(ctx, q, &rec, source, p.addGroups, p.dropGroups, now); err != nil {
		return provision.Result{}, err
	}
	if m.groups != nil {
		if err := m.readGroups(ctx, q, &rec, source); err != nil {
			return provision.Result{}, err
		}
		u.Groups = rec.user.Groups
	}
	out := provision.Updated
	if linked {
		out = provision.Linked
	}
	return provision.Result{User: u, Outcome: out, Changed: p.changed}, nil
}

// findByName finds the keys of rows whose user name is name: exactly
// (which an index on the column serves); else among the rows gatehouse
// tracks, by the Go fold of provision (NFKC and case); else folded by the
// database (on SQLite the same Go fold, on the servers lower case).
func (m *Mapped) findByName(ctx context.Context, q querier, name string) ([]string, error) {
	col := m.colOf(provision.FieldUserName)
	keys, err := m.keysWhere(ctx, q, "a."+col.name+" = ?", name)
	if err != nil || len(keys) > 0 {
		return keys, err
	}
	if keys, err = m.trackedByName(ctx, q, name); err != nil || len(keys) > 0 {
		return keys, err
	}
	return m.keysWhere(ctx, q, m.d.fold(m.d.text("a."+col.name))+" = ?", m.dbFold(name))
}

// dbFold folds a value the way the database's fold expression (d.fold)
// folds a column.
func (m *Mapped) dbFold(s string) string {
	if m.d.name == SQLite {
		return provision.NormalizeName(s)
	}
	return lowerFold(s)
}

// trackedByName finds the rows gatehouse tracks whose folded user name
// equals name's, and which the application still has.
func (m *Mapped) trackedByName(ctx context.Context, q querier, name string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_key FROM gatehouse_mapped_users WHERE user_name_norm = ?`, provision.NormalizeName(name))
	if err != nil {
		return nil, fmt.Errorf("sqldir: find user: %w", err)
	}
	var tracked []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqldir: find user: %w", err)
		}
		tracked = append(tracked, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqldir: find user: %w", err)
	}
	var keys []string
	for _, k := range tracked {
		found, err := m.keysWhere(ctx, q, "a."+m.key+" = ?", k)
		if err != nil && m.d.classify(err) != errBadText {
			return nil, err
		}
		keys = append(keys, found...)
	}
	return keys, nil
}

func (m *Mapped) keysWhere(ctx context.Context, q querier, where string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+m.d.text("a."+m.key)+` FROM `+m.users+` a WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("sqldir: find user: %w", err)
	}
	defer rows.Close()
	var keys []string
	for len(keys) < 2 && rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("sqldir: find user: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

func (m *Mapped) colOf(field string) mcol {
	i := slices.IndexFunc(m.cols, func(c mcol) bool { return c.field == field })
	if i < 0 {
		return mcol{}
	}
	return m.cols[i]
}

// link lets the first login of a key claim a row no login has claimed:
// one the application had before gatehouse, or one SCIM created, matched
// by l.LinkBy.
func (m *Mapped) link(ctx context.Context, q querier, l provision.Login, source string, now time.Time) (mrecord, bool, error) {
	key, ok, err := m.linkCandidate(ctx, q, l)
	if err != nil || !ok {
		return mrecord{}, false, err
	}
	rec, ok, err := m.read(ctx, q, key, source, true)
	if err != nil || !ok {
		return mrecord{}, false, err
	}
	if !rec.tracked {
		rec.user.Owner, rec.user.Version, rec.user.Created, rec.user.Updated = provision.OwnerJIT, 1, truncStamp(now), truncStamp(now)
		if err := m.track(ctx, q, rec.user, now); err != nil {
			return mrecord{}, false, err
		}
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO gatehouse_mapped_identities (idp, key_kind, subject, user_key, created_at) VALUES (?, ?, ?, ?, ?)`,
		l.Key.IdP, l.Key.Kind, l.Key.Subject, rec.user.ID, m.d.time(now)); err != nil {
		return mrecord{}, false, m.mapWriteErr("link identity", err)
	}
	return rec, true, nil
}

// linkCandidate finds the key of the one unclaimed row a login would
// link to.
func (m *Mapped) linkCandidate(ctx context.Context, q querier, l provision.Login) (string, bool, error) {
	var keys []string
	var err error
	v := l.Claims.Fields[l.LinkBy]
	switch {
	case v == "":
		return "", false, nil
	case l.LinkBy == provision.LinkByUserName:
		keys, err = m.findByName(ctx, q, v)
	case l.LinkBy == provision.LinkByExternalID && m.colOf(provision.FieldExternalID).name != "":
		keys, err = m.keysWhere(ctx, q, m.d.exact("a."+m.colOf(provision.FieldExternalID).name)+" = ?", v)
	}
	if err != nil || len(keys) == 0 {
		return "", false, err
	}
	if len(keys) > 1 {
		return "", false, fmt.Errorf("sqldir: several rows of %s have %s %q: %w", m.cfg.Users.Table, l.LinkBy, v, provision.ErrConflict)
	}
	var claimed int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM gatehouse_mapped_identities WHERE user_key = ?`, keys[0]).Scan(&claimed); err != nil {
		return "", false, fmt.Errorf("sqldir: read identities: %w", err)
	}
	if claimed > 0 {
		return "", false, nil // another login's user: create reports the clash
	}
	return keys[0], true, nil
}

// Plan says what Provision would do for l, reading only.
func (m *Mapped) Plan(ctx context.Context, l provision.Login) (provision.Result, error) {
	if err := l.Claims.Check(); err != nil {
		return provision.Result{}, fmt.Errorf("sqldir: %w", err)
	}
	ctx, cancel := m.bound(ctx)
	defer cancel()
	l.Claims = m.restrict(l.Claims)
	source := provision.GroupSource(l.Key.IdP)
	q := m.reader()
	key, found, err := m.identity(ctx, q, l.Key, false)
	if err != nil {
		return provision.Result{}, err
	}
	out := provision.Updated
	if !found {
		if key, found, err = m.linkCandidate(ctx, q, l); err != nil {
			return provision.Result{}, err
		}
		out = provision.Linked
	}
	if found {
		rec, ok, err := m.read(ctx, q, key, source, false)
		if err != nil {
			return provision.Result{}, err
		}
		if ok {
			return planUpdate(record{user: rec.user, srcGroups: rec.srcGroups}, l, out)
		}
	}
	if taken, err := m.findByName(ctx, q, l.Claims.Fields[provision.FieldUserName]); err != nil {
		return provision.Result{}, err
	} else if len(taken) > 0 && !l.NoCreate {
		return provision.Result{}, fmt.Errorf("sqldir: user name %q is taken in %s: %w", l.Claims.Fields[provision.FieldUserName], m.cfg.Users.Table, provision.ErrConflict)
	}
	return planCreate(l)
}

// track records a row in gatehouse's bookkeeping. The unique folded user
// name is what keeps two concurrent first logins, or two spellings of one
// name, from making two rows.
func (m *Mapped) track(ctx context.Context, q querier, u provision.User, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO gatehouse_mapped_users (user_key, user_name_norm, owner, status, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, u.ID, provision.NormalizeName(u.UserName), u.Owner, status(u.Active), u.Version, m.d.time(now), m.d.time(now))
	if err != nil {
		return m.mapWriteErr("record user", err)
	}
	return nil
}

func (m *Mapped) create(ctx context.Context, q querier, l provision.Login, source string, now time.Time) (provision.Result, error) {
	u := provision.User{Active: true, Owner: provision.OwnerJIT, Version: 1, Created: truncStamp(now), Updated: truncStamp(now)}
	changed := u.Apply(l.Claims)
	if u.UserName == "" {
		return provision.Result{}, fmt.Errorf("sqldir: %w: empty user name", provision.ErrInvalid)
	}
	if taken, err := m.findByName(ctx, q, u.UserName); err != nil {
		return provision.Result{}, err
	} else if len(taken) > 0 {
		return provision.Result{}, fmt.Errorf("sqldir: user name %q is taken in %s: %w", u.UserName, m.cfg.Users.Table, provision.ErrConflict)
	}
	key, err := m.insertRow(ctx, q, u)
	if err != nil {
		return provision.Result{}, err
	}
	u.ID = key
	if err := m.track(ctx, q, u, now); err != nil {
		return provision.Result{}, err
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO gatehouse_mapped_identities (idp, key_kind, subject, user_key, created_at) VALUES (?, ?, ?, ?, ?)`,
		l.Key.IdP, l.Key.Kind, l.Key.Subject, key, m.d.time(now)); err != nil {
		return provision.Result{}, m.mapWriteErr("create identity", err)
	}
	if len(l.Claims.Groups) > 0 && m.groups != nil {
		rec := mrecord{user: u}
		if err := m.syncGroups(ctx, q, &rec, source, l.Claims.Groups, nil, now); err != nil {
			return provision.Result{}, err
		}
		if err := m.readGroups(ctx, q, &rec, source); err != nil {
			return provision.Result{}, err
		}
		u.Groups = rec.user.Groups
		changed = append(changed, provision.FieldGroups)
	}
	return provision.Result{User: u, Outcome: provision.Created, Changed: changed}, nil
}

// value is what a field's value is written as: NULL for an empty value
// in a nullable column. A value longer than the column allows is refused
// before the database truncates or rejects it.
func (m *Mapped) value(c mcol, v string) (any, error) {
	if c.info.maxLen > 0 {
		n := len([]rune(v))
		if m.d.name == SQLServer {
			n = len(utf16.Encode([]rune(v)))
		}
		if n > c.info.maxLen {
			return nil, fmt.Errorf("sqldir: %w: %s has %d characters; column %s holds %d", provision.ErrInvalid, c.field, n, c.raw, c.info.maxLen)
		}
	}
	if v == "" && c.info.nullable {
		return nil, nil
	}
	return v, nil
}

// insertRow writes a new row (or calls the procedure) and returns its key.
func (m *Mapped) insertRow(ctx context.Context, q querier, u provision.User) (string, error) {
	if m.proc != nil {
		return m.call(ctx, q, "", u)
	}
	var cols []string
	var args []any
	for _, c := range m.cols {
		v := u.Field(c.field)
		if v == "" && c.info.nullable {
			continue // leave it to the column's default
		}
		a, err := m.value(c, v)
		if err != nil {
			return "", err
		}
		cols, args = append(cols, c.name), append(args, a)
	}
	if m.keyGen == keyFromUUID {
		id, err := uuid.NewRandom()
		if err != nil {
			return "", fmt.Errorf("sqldir: new key: %w", err)
		}
		cols, args = append(cols, m.key), append(args, id.String())
	}
	if m.disabled != nil && m.disabled.EnabledValue != "" {
		cols, args = append(cols, m.disCol.name), append(args, m.disabled.EnabledValue)
	}
	return m.insertReturningKey(ctx, q, m.users, m.key, cols, args, "create user in "+m.cfg.Users.Table)
}

// insertReturningKey inserts one row and reads back its key as text. On
// SQL Server the key comes through OUTPUT ... INTO a table variable: a
// bare OUTPUT clause fails on tables with triggers, which legacy tables
// often have.
func (m *Mapped) insertReturningKey(ctx context.Context, q querier, table, key string, cols []string, args []any, what string) (string, error) {
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
	stmt := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES (` + ph + `) RETURNING ` + m.d.text(key)
	if m.d.name == SQLServer {
		stmt = `DECLARE @k TABLE (k nvarchar(4000)); INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) OUTPUT ` +
			`CAST(INSERTED.` + key + ` AS nvarchar(4000)) INTO @k VALUES (` + ph + `); SELECT k FROM @k;`
	}
	var k string
	if err := q.QueryRowContext(ctx, stmt, args...).Scan(&k); err != nil {
		return "", m.mapWriteErr(what, err)
	}
	return k, nil
}

// updateRow writes the changed fields (or calls the procedure).
func (m *Mapped) updateRow(ctx context.Context, q querier, old, u provision.User) error {
	var sets []string
	var args []any
	for _, c := range m.cols {
		if old.Field(c.field) == u.Field(c.field) {
			continue
		}
		if c.field == m.keyField && m.keyGen == keyFromField {
			return fmt.Errorf("sqldir: %w: %s is the key of %s, which gatehouse does not change", provision.ErrInvalid, c.field, m.cfg.Users.Table)
		}
		a, err := m.value(c, u.Field(c.field))
		if err != nil {
			return err
		}
		sets, args = append(sets, c.name+" = ?"), append(args, a)
	}
	if len(sets) == 0 {
		return nil // only memberships changed
	}
	if provision.NormalizeName(old.UserName) != provision.NormalizeName(u.UserName) {
		// gatehouse's unique index covers only the rows it tracks.
		keys, err := m.findByName(ctx, q, u.UserName)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(keys, func(k string) bool { return k != u.ID }) {
			return fmt.Errorf("sqldir: user name %q is taken in %s: %w", u.UserName, m.cfg.Users.Table, provision.ErrConflict)
		}
	}
	if m.proc != nil {
		_, err := m.call(ctx, q, u.ID, u)
		return err
	}
	args = append(args, u.ID)
	if _, err := q.ExecContext(ctx, `UPDATE `+m.users+` SET `+strings.Join(sets, ", ")+` WHERE `+m.key+` = ?`, args...); err != nil {
		return m.mapWriteErr("update user in "+m.cfg.Users.Table, err)
	}
	return nil
}

// call runs the stored procedure for one user: key is "" for a new one.
// It returns the first column of the first row the procedure returns.
func (m *Mapped) call(ctx context.Context, q querier, key string, u provision.User) (string, error) {
	stmt, args := m.d.callProcedure(m.proc, key, func(f string) (any, error) { return m.value(m.colOf(f), u.Field(f)) })
	if stmt == "" {
		return "", fmt.Errorf("sqldir: %w: stored procedures on %s", provision.ErrUnsupported, m.d.name)
	}
	vals, err := args()
	if err != nil {
		return "", err
	}
	rows, err := q.QueryContext(ctx, stmt, vals...)
	if err != nil {
		return "", m.mapWriteErr("call "+m.proc.Name, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return "", m.mapWriteErr("call "+m.proc.Name, err)
		}
		return "", fmt.Errorf("sqldir: %s returned no row: it must return the user's key", m.proc.Name)
	}
	cols, _ := rows.Columns()
	dest := make([]any, len(cols))
	var got sql.NullString
	dest[0] = &got
	for i := 1; i < len(dest); i++ {
		dest[i] = new(any)
	}
	if err := rows.Scan(dest...); err != nil {
		return "", fmt.Errorf("sqldir: read the result of %s: %w", m.proc.Name, err)
	}
	if !got.Valid || got.String == "" {
		return "", fmt.Errorf("sqldir: %s returned an empty key", m.proc.Name)
	}
	return got.String, nil
}

// syncGroups adds and drops the memberships of one source. A membership
// row of the application is removed only when no source holds it any
// more; one the application had before gatehouse added the same is
// recorded as the application's and never removed.
func (m *Mapped) syncGroups(ctx context.Context, q querier, rec *mrecord, source string, add, drop []string, now time.Time) error {
	g := m.groups
	if g == nil {
		return nil
	}
	for _, n := range drop {
		gk, ok := rec.groupKeys[n]
		if !ok {
			continue
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM gatehouse_mapped_memberships WHERE user_key = ? AND group_key = ? AND source = ?`,
			rec.user.ID, gk, source); err != nil {
			return fmt.Errorf("sqldir: remove membership: %w", err)
		}
		var left int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM gatehouse_mapped_memberships WHERE user_key = ? AND group_key = ?`,
			rec.user.ID, gk).Scan(&left); err != nil {
			return fmt.Errorf("sqldir: read membership sources: %w", err)
		}
		if left == 0 {
			if _, err := q.ExecContext(ctx, `DELETE FROM `+g.mtable+` WHERE `+g.muser+` = ? AND `+g.mgroup+` = ?`, rec.user.ID, gk); err != nil {
				return m.mapWriteErr("remove membership in "+m.cfg.Memberships.Table, err)
			}
		}
	}
	for _, name := range add {
		gk, err := m.ensureGroup(ctx, q, name)
		if err != nil {
			return err
		}
		var have, sources int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM `+g.mtable+` WHERE `+g.muser+` = ? AND `+g.mgroup+` = ?`, rec.user.ID, gk).Scan(&have); err != nil {
			return fmt.Errorf("sqldir: read membership: %w", err)
		}
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM gatehouse_mapped_memberships WHERE user_key = ? AND group_key = ?`,
			rec.user.ID, gk).Scan(&sources); err != nil {
			return fmt.Errorf("sqldir: read membership sources: %w", err)
		}
		mark := func(src string) error {
			_, err := m.insertAbsent(ctx, q, "gatehouse_mapped_memberships", []string{"user_key", "group_key", "source", "created_at"},
				[]any{rec.user.ID, gk, src, m.d.time(now)}, []string{"user_key", "group_key", "source"})
			if err != nil {
				return fmt.Errorf("sqldir: record membership: %w", err)
			}
			return nil
		}
		switch {
		case have > 0 && sources == 0:
			if err := mark(sourceApp); err != nil {
				return err
			}
		case have == 0:
			if _, err := q.ExecContext(ctx, `INSERT INTO `+g.mtable+` (`+g.muser+`, `+g.mgroup+`) VALUES (?, ?)`, rec.user.ID, gk); err != nil {
				return m.mapWriteErr("add membership in "+m.cfg.Memberships.Table, err)
			}
		}
		if err := mark(source); err != nil {
			return err
		}
	}
	return nil
}

// ensureGroup finds the application's group by name, exactly or folded,
// or creates it. A lock on the folded name keeps two logins from creating
// the same group twice in a table that may have no unique constraint.
func (m *Mapped) ensureGroup(ctx context.Context, q querier, name string) (string, error) {
	g := m.groups
	norm := provision.NormalizeName(name)
	if stmt, arg := m.d.nameLock("gatehouse group " + norm); stmt != "" {
		if _, err := q.ExecContext(ctx, stmt, arg); err != nil {
			return "", fmt.Errorf("sqldir: lock group name: %w", err)
		}
	}
	find := func(where string, v string) (string, bool, error) {
		var k string
		rows, err := q.QueryContext(ctx, `SELECT `+m.d.text(g.key)+` FROM `+g.table+` WHERE `+where+` ORDER BY `+g.key, v)
		if err != nil {
			return "", false, fmt.Errorf("sqldir: find group: %w", err)
		}
		defer rows.Close()
		if !rows.Next() {
			return "", false, rows.Err()
		}
		if err := rows.Scan(&k); err != nil {
			return "", false, fmt.Errorf("sqldir: find group: %w", err)
		}
		return k, true, nil
	}
	if k, ok, err := find(g.name+" = ?", name); err != nil || ok {
		return k, err
	}
	if k, ok, err := find(m.d.fold(m.d.text(g.name))+" = ?", m.dbFold(name)); err != nil || ok {
		return k, err
	}
	cols, args := []string{g.name}, []any{name}
	if g.keyGen == keyFromUUID {
		id, err := uuid.NewRandom()
		if err != nil {
			return "", fmt.Errorf("sqldir: new key: %w", err)
		}
		cols, args = append(cols, g.key), append(args, id.String())
	}
	return m.insertReturningKey(ctx, q, g.table, g.key, cols, args, "create group in "+m.cfg.Groups.Table)
}

// User returns the user whose row has the given key.
func (m *Mapped) User(ctx context.Context, id string) (provision.User, error) {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	rec, ok, err := m.read(ctx, m.reader(), id, "", false)
	if err != nil {
		return provision.User{}, err
	}
	if !ok {
		return provision.User{}, fmt.Errorf("sqldir: user %s: %w", id, provision.ErrNotFound)
	}
	return rec.user, nil
}

// SetActive sets the application's disabled column (or, without one,
// gatehouse's own status); setting the state a user has writes nothing.
func (m *Mapped) SetActive(ctx context.Context, id string, active bool) error {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	return m.write(ctx, func(q querier, now time.Time) error {
		rec, ok, err := m.read(ctx, q, id, "", true)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("sqldir: user %s: %w", id, provision.ErrNotFound)
		}
		if rec.user.Active == active {
			return nil
		}
		if m.disabled != nil {
			var v any = m.disabled.Value
			if active {
				v = nil
				if m.disabled.EnabledValue != "" {
					v = m.disabled.EnabledValue
				}
			}
			if _, err := q.ExecContext(ctx, `UPDATE `+m.users+` SET `+m.disCol.name+` = ? WHERE `+m.key+` = ?`, v, id); err != nil {
				return m.mapWriteErr("set disabled in "+m.cfg.Users.Table, err)
			}
		}
		if !rec.tracked {
			rec.user.Owner, rec.user.Version, rec.user.Active = provision.OwnerJIT, 1, active
			return m.track(ctx, q, rec.user, now)
		}
		_, err = q.ExecContext(ctx, `UPDATE gatehouse_mapped_users SET status = ?, version = version + 1, updated_at = ? WHERE user_key = ?`,
			status(active), m.d.time(now), id)
		if err != nil {
			return fmt.Errorf("sqldir: set status: %w", err)
		}
		return nil
	})
}
