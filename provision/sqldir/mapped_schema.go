package sqldir

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
)

// resolveMapped quotes the configured names and reads the columns'
// types. problems are mismatches between the configuration and the
// database, each a Problem keyed within the mapped section; err is a
// failure to ask.
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
			problems = append(problems, problemf(key, "table %s has no column %s", table, col))
		case text && !d.d.textType(info.typ):
			problems = append(problems, problemf(key, "column %s is %s; a text column is needed", col, info.typ))
		}
		return info
	}
	if len(cols) == 0 {
		problems = append(problems, problemf("users.table", "table %s does not exist or has no columns this login can see", cfg.Users.Table))
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
		problems = append(problems, problemf("users.key_generated", "column %s has no default or identity to number new rows; use key_generated: uuid or map a field to it", cfg.Users.Key))
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
			problems = append(problems, problemf("groups.table", "table %s does not exist", g.Table))
		}
		ki := need("groups.key", g.Table, gcols, g.Key, false)
		need("groups.name", g.Table, gcols, g.Name, true)
		mg := &mappedGroups{table: q(g.Table, true), key: q(g.Key, false), name: q(g.Name, false), keyGen: cmp.Or(g.KeyGenerated, keyFromDatabase)}
		if mg.keyGen == keyFromDatabase && len(gcols) > 0 && !ki.generated {
			problems = append(problems, problemf("groups.key_generated", "column %s has no default or identity; use key_generated: uuid", g.Key))
		}
		ms := cfg.Memberships
		mcols, err := d.columns(ctx, ms.Table)
		if err != nil {
			return nil, nil, err
		}
		if len(mcols) == 0 {
			problems = append(problems, problemf("memberships.table", "table %s does not exist", ms.Table))
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
			problems = append(problems, problemf("procedure.name", "%s does not exist", p.Name))
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
