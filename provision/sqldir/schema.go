package sqldir

// sqliteMigrations are applied in order; PRAGMA user_version records how
// many ran. Append, never edit.
var sqliteMigrations = []string{
	`CREATE TABLE users (
		id             TEXT PRIMARY KEY,
		user_name      TEXT NOT NULL,
		user_name_norm TEXT NOT NULL UNIQUE,
		email          TEXT NOT NULL DEFAULT '',
		display_name   TEXT NOT NULL DEFAULT '',
		given_name     TEXT NOT NULL DEFAULT '',
		family_name    TEXT NOT NULL DEFAULT '',
		extra          TEXT NOT NULL DEFAULT '{}',
		status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deactivated')),
		version        INTEGER NOT NULL DEFAULT 1,
		created_at     TEXT NOT NULL,
		updated_at     TEXT NOT NULL
	);
	CREATE TABLE user_identities (
		idp        TEXT NOT NULL,
		key_kind   TEXT NOT NULL,
		subject    TEXT NOT NULL,
		user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		created_at TEXT NOT NULL,
		PRIMARY KEY (idp, key_kind, subject)
	);
	CREATE INDEX ix_identities_user ON user_identities(user_id);
	CREATE TABLE groups (
		id         TEXT PRIMARY KEY,
		name       TEXT NOT NULL,
		name_norm  TEXT NOT NULL UNIQUE,
		created_at TEXT NOT NULL
	);
	CREATE TABLE memberships (
		user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		group_id   TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
		source     TEXT NOT NULL,
		created_at TEXT NOT NULL,
		PRIMARY KEY (user_id, group_id, source)
	);
	CREATE INDEX ix_memberships_group ON memberships(group_id);`,
	// 2: SCIM. Timestamps become fixed width (milliseconds) so that text
	// order is time order; tombstones keep deleted users from coming back
	// through a login.
	`ALTER TABLE users ADD COLUMN external_id TEXT NOT NULL DEFAULT '';
	ALTER TABLE users ADD COLUMN owner TEXT NOT NULL DEFAULT 'jit' CHECK (owner IN ('jit', 'scim'));
	CREATE INDEX ix_users_external_id ON users(external_id) WHERE external_id <> '';
	UPDATE users SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at), updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', updated_at);
	ALTER TABLE groups ADD COLUMN external_id TEXT NOT NULL DEFAULT '';
	ALTER TABLE groups ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
	ALTER TABLE groups ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';
	UPDATE groups SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at), updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at);
	CREATE INDEX ix_memberships_source ON memberships(source);
	CREATE TABLE tombstones (
		user_name_norm TEXT NOT NULL,
		external_id    TEXT NOT NULL,
		idp            TEXT,
		key_kind       TEXT,
		subject        TEXT,
		deleted_at     TEXT NOT NULL
	);
	CREATE INDEX ix_tombstones_key ON tombstones(idp, key_kind, subject);
	CREATE INDEX ix_tombstones_name ON tombstones(user_name_norm);
	CREATE INDEX ix_tombstones_external_id ON tombstones(external_id) WHERE external_id <> '';`,
	// 3: gatehouse's tables get a common prefix, so that they can share a
	// database with an application's own (the servers' schema has it from
	// the start). SQLite rewrites the foreign keys that name them.
	`ALTER TABLE users RENAME TO gatehouse_users;
	ALTER TABLE user_identities RENAME TO gatehouse_identities;
	ALTER TABLE groups RENAME TO gatehouse_groups;
	ALTER TABLE memberships RENAME TO gatehouse_memberships;
	ALTER TABLE tombstones RENAME TO gatehouse_tombstones;`,
	// 4: names fold with NFKC and full case folding (was NFC and lower
	// case): the stored folds are recomputed.
	refoldStep,
	// 5: the fold also removes accents and dots the dotless i: recomputed.
	refoldStep,
	// 6: SCIM owns the fields it has written, not the whole user. Users
	// SCIM wrote before count as owned in every field ('*').
	`ALTER TABLE gatehouse_users ADD COLUMN scim_fields TEXT NOT NULL DEFAULT '';
	UPDATE gatehouse_users SET scim_fields = '*' WHERE owner = 'scim';`,
	// 7: what SCIM clients filter on is answered from an index: stored
	// folds of the e-mail and display name, a table of the folded extra
	// values, the whole external ID, and the timestamps.
	`ALTER TABLE gatehouse_users ADD COLUMN email_norm TEXT NOT NULL DEFAULT '';
	ALTER TABLE gatehouse_users ADD COLUMN display_name_norm TEXT NOT NULL DEFAULT '';
	CREATE INDEX ix_users_email_norm ON gatehouse_users(email_norm);
	CREATE INDEX ix_users_display_name_norm ON gatehouse_users(display_name_norm);
	DROP INDEX ix_users_external_id;
	CREATE INDEX ix_users_external_id ON gatehouse_users(external_id);
	CREATE INDEX ix_users_updated ON gatehouse_users(updated_at);
	CREATE INDEX ix_users_created ON gatehouse_users(created_at);
	CREATE TABLE gatehouse_user_values (
		user_id    TEXT NOT NULL REFERENCES gatehouse_users(id) ON DELETE CASCADE,
		field      TEXT NOT NULL,
		value_norm TEXT NOT NULL,
		PRIMARY KEY (user_id, field)
	) WITHOUT ROWID;
	CREATE INDEX ix_user_values_value ON gatehouse_user_values(field, value_norm);`,
	searchStep,
}

// postgresMigrations create the same schema on PostgreSQL, with timestamp
// types. gatehouse_schema records how many ran.
var postgresMigrations = []string{
	`CREATE TABLE gatehouse_users (
		id             text PRIMARY KEY,
		user_name      text NOT NULL,
		user_name_norm text NOT NULL UNIQUE,
		external_id    text NOT NULL DEFAULT '',
		email          text NOT NULL DEFAULT '',
		display_name   text NOT NULL DEFAULT '',
		given_name     text NOT NULL DEFAULT '',
		family_name    text NOT NULL DEFAULT '',
		extra          text NOT NULL DEFAULT '{}',
		status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deactivated')),
		owner          text NOT NULL DEFAULT 'jit' CHECK (owner IN ('jit', 'scim')),
		version        bigint NOT NULL DEFAULT 1,
		created_at     timestamptz NOT NULL,
		updated_at     timestamptz NOT NULL
	);
	CREATE INDEX ix_gatehouse_users_external_id ON gatehouse_users(external_id) WHERE external_id <> '';
	CREATE TABLE gatehouse_identities (
		idp        text NOT NULL,
		key_kind   text NOT NULL,
		subject    text NOT NULL,
		user_id    text NOT NULL REFERENCES gatehouse_users(id) ON DELETE CASCADE,
		created_at timestamptz NOT NULL,
		PRIMARY KEY (idp, key_kind, subject)
	);
	CREATE INDEX ix_gatehouse_identities_user ON gatehouse_identities(user_id);
	CREATE TABLE gatehouse_groups (
		id          text PRIMARY KEY,
		name        text NOT NULL,
		name_norm   text NOT NULL UNIQUE,
		external_id text NOT NULL DEFAULT '',
		version     bigint NOT NULL DEFAULT 1,
		created_at  timestamptz NOT NULL,
		updated_at  timestamptz NOT NULL
	);
	CREATE TABLE gatehouse_memberships (
		user_id    text NOT NULL REFERENCES gatehouse_users(id) ON DELETE CASCADE,
		group_id   text NOT NULL REFERENCES gatehouse_groups(id) ON DELETE CASCADE,
		source     text NOT NULL,
		created_at timestamptz NOT NULL,
		PRIMARY KEY (user_id, group_id, source)
	);
	CREATE INDEX ix_gatehouse_memberships_group ON gatehouse_memberships(group_id);
	CREATE INDEX ix_gatehouse_memberships_source ON gatehouse_memberships(source);
	CREATE TABLE gatehouse_tombstones (
		user_name_norm text NOT NULL,
		external_id    text NOT NULL,
		idp            text,
		key_kind       text,
		subject        text,
		deleted_at     timestamptz NOT NULL
	);
	CREATE INDEX ix_gatehouse_tombstones_key ON gatehouse_tombstones(idp, key_kind, subject);
	CREATE INDEX ix_gatehouse_tombstones_name ON gatehouse_tombstones(user_name_norm);
	CREATE INDEX ix_gatehouse_tombstones_external_id ON gatehouse_tombstones(external_id) WHERE external_id <> '';`,
	// 2: names fold with NFKC and full case folding.
	refoldStep,
	// 3: the fold also removes accents and dots the dotless i.
	refoldStep,
	// 4: SCIM owns the fields it has written, not the whole user.
	`ALTER TABLE gatehouse_users ADD COLUMN scim_fields text NOT NULL DEFAULT '';
	UPDATE gatehouse_users SET scim_fields = '*' WHERE owner = 'scim';`,
	// 5: SCIM filters from an index (SQLite's 7). A fold is indexed by
	// its first 200 characters (a B-tree entry has a size limit, a fold
	// none), in code point order (COLLATE "C"): the order prefix ranges
	// are computed in, whatever the database's own collation.
	`ALTER TABLE gatehouse_users ADD COLUMN email_norm text NOT NULL DEFAULT '';
	ALTER TABLE gatehouse_users ADD COLUMN display_name_norm text NOT NULL DEFAULT '';
	CREATE INDEX ix_gatehouse_users_name_prefix ON gatehouse_users((substr(user_name_norm, 1, 200) COLLATE "C"));
	CREATE INDEX ix_gatehouse_users_email_norm ON gatehouse_users((substr(email_norm, 1, 200) COLLATE "C"));
	CREATE INDEX ix_gatehouse_users_display_name_norm ON gatehouse_users((substr(display_name_norm, 1, 200) COLLATE "C"));
	DROP INDEX ix_gatehouse_users_external_id;
	CREATE INDEX ix_gatehouse_users_external_id ON gatehouse_users(external_id);
	CREATE INDEX ix_gatehouse_users_updated ON gatehouse_users(updated_at);
	CREATE INDEX ix_gatehouse_users_created ON gatehouse_users(created_at);
	CREATE TABLE gatehouse_user_values (
		user_id    text NOT NULL REFERENCES gatehouse_users(id) ON DELETE CASCADE,
		field      text NOT NULL,
		value_norm text NOT NULL,
		PRIMARY KEY (user_id, field)
	);
	CREATE INDEX ix_gatehouse_user_values_value ON gatehouse_user_values(field, (substr(value_norm, 1, 200) COLLATE "C"));`,
	searchStep,
}

// sqlserverMigrations create the schema on SQL Server. Text columns are
// binary-collated, so that comparisons are exact (case-insensitive
// matching uses the folded *_norm columns, as on the other databases) and
// the identity subject, an opaque case-sensitive NameID, never matches
// another by case. Lengths keep every index key within SQL Server's 1,700
// bytes for nonclustered keys: a SAML NameID is at most 256 characters.
var sqlserverMigrations = []string{
	`CREATE TABLE gatehouse_users (
		id             nvarchar(36)  COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY,
		user_name      nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL,
		user_name_norm nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL CONSTRAINT ux_gatehouse_users_name UNIQUE,
		external_id    nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL DEFAULT '',
		email          nvarchar(320) COLLATE Latin1_General_100_BIN2 NOT NULL DEFAULT '',
		display_name   nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL DEFAULT '',
		given_name     nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL DEFAULT '',
		family_name    nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL DEFAULT '',
		extra          nvarchar(max) COLLATE Latin1_General_100_BIN2 NOT NULL DEFAULT '{}' CHECK (ISJSON(extra) = 1),
		status         nvarchar(16)  COLLATE Latin1_General_100_BIN2 NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deactivated')),
		owner          nvarchar(8)   COLLATE Latin1_General_100_BIN2 NOT NULL DEFAULT 'jit' CHECK (owner IN ('jit', 'scim')),
		version        bigint NOT NULL DEFAULT 1,
		created_at     datetime2(3) NOT NULL,
		updated_at     datetime2(3) NOT NULL
	);
	CREATE INDEX ix_gatehouse_users_external_id ON gatehouse_users(external_id) WHERE external_id <> '';
	CREATE TABLE gatehouse_identities (
		idp        nvarchar(450) COLLATE Latin1_General_100_BIN2 NOT NULL,
		key_kind   nvarchar(128) COLLATE Latin1_General_100_BIN2 NOT NULL,
		subject    nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL,
		user_id    nvarchar(36)  COLLATE Latin1_General_100_BIN2 NOT NULL REFERENCES gatehouse_users(id) ON DELETE CASCADE,
		created_at datetime2(3) NOT NULL,
		CONSTRAINT pk_gatehouse_identities PRIMARY KEY NONCLUSTERED (idp, key_kind, subject)
	);
	CREATE INDEX ix_gatehouse_identities_user ON gatehouse_identities(user_id);
	CREATE TABLE gatehouse_groups (
		id          nvarchar(36)  COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY,
		name        nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL,
		name_norm   nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL CONSTRAINT ux_gatehouse_groups_name UNIQUE,
		external_id nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL DEFAULT '',
		version     bigint NOT NULL DEFAULT 1,
		created_at  datetime2(3) NOT NULL,
		updated_at  datetime2(3) NOT NULL
	);
	CREATE TABLE gatehouse_memberships (
		user_id    nvarchar(36)  COLLATE Latin1_General_100_BIN2 NOT NULL REFERENCES gatehouse_users(id) ON DELETE CASCADE,
		group_id   nvarchar(36)  COLLATE Latin1_General_100_BIN2 NOT NULL REFERENCES gatehouse_groups(id) ON DELETE CASCADE,
		source     nvarchar(480) COLLATE Latin1_General_100_BIN2 NOT NULL,
		created_at datetime2(3) NOT NULL,
		CONSTRAINT pk_gatehouse_memberships PRIMARY KEY NONCLUSTERED (user_id, group_id, source)
	);
	CREATE INDEX ix_gatehouse_memberships_group ON gatehouse_memberships(group_id);
	CREATE INDEX ix_gatehouse_memberships_source ON gatehouse_memberships(source);
	CREATE TABLE gatehouse_tombstones (
		user_name_norm nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL,
		external_id    nvarchar(256) COLLATE Latin1_General_100_BIN2 NOT NULL,
		idp            nvarchar(450) COLLATE Latin1_General_100_BIN2 NULL,
		key_kind       nvarchar(128) COLLATE Latin1_General_100_BIN2 NULL,
		subject        nvarchar(256) COLLATE Latin1_General_100_BIN2 NULL,
		deleted_at     datetime2(3) NOT NULL
	);
	CREATE INDEX ix_gatehouse_tombstones_key ON gatehouse_tombstones(idp, key_kind, subject);
	CREATE INDEX ix_gatehouse_tombstones_name ON gatehouse_tombstones(user_name_norm);
	CREATE INDEX ix_gatehouse_tombstones_external_id ON gatehouse_tombstones(external_id) WHERE external_id <> '';`,
	// 2: names fold with NFKC and full case folding.
	refoldStep,
	// 3: the fold also removes accents and dots the dotless i.
	refoldStep,
	// 4: SCIM owns the fields it has written, not the whole user. The
	// column is filled in its own batch: SQL Server compiles a batch
	// before it runs, and the new column does not exist yet then.
	`ALTER TABLE gatehouse_users ADD scim_fields nvarchar(1000) COLLATE Latin1_General_100_BIN2 NOT NULL
		CONSTRAINT df_gatehouse_users_scim_fields DEFAULT '';`,
	`UPDATE gatehouse_users SET scim_fields = '*' WHERE owner = 'scim';`,
	// 6: SCIM filters from an index (SQLite's 7). A fold can be longer
	// than an index key may be: its first 400 characters are a computed
	// key column, which is indexed. Prefix filters use LIKE, which SQL
	// Server turns into an index seek.
	`ALTER TABLE gatehouse_users ADD
		email_norm nvarchar(max) COLLATE Latin1_General_100_BIN2 NOT NULL CONSTRAINT df_gatehouse_users_email_norm DEFAULT '',
		display_name_norm nvarchar(max) COLLATE Latin1_General_100_BIN2 NOT NULL CONSTRAINT df_gatehouse_users_display_name_norm DEFAULT '';
	CREATE TABLE gatehouse_user_values (
		user_id    nvarchar(36)  COLLATE Latin1_General_100_BIN2 NOT NULL REFERENCES gatehouse_users(id) ON DELETE CASCADE,
		field      nvarchar(64)  COLLATE Latin1_General_100_BIN2 NOT NULL,
		value_norm nvarchar(max) COLLATE Latin1_General_100_BIN2 NOT NULL,
		value_norm_key AS CAST(LEFT(value_norm, 400) AS nvarchar(400)) PERSISTED,
		CONSTRAINT pk_gatehouse_user_values PRIMARY KEY (user_id, field)
	);
	CREATE INDEX ix_gatehouse_user_values_value ON gatehouse_user_values(field, value_norm_key);
	DROP INDEX ix_gatehouse_users_external_id ON gatehouse_users;
	CREATE INDEX ix_gatehouse_users_external_id ON gatehouse_users(external_id);
	CREATE INDEX ix_gatehouse_users_updated ON gatehouse_users(updated_at);
	CREATE INDEX ix_gatehouse_users_created ON gatehouse_users(created_at);`,
	// The key columns of the new columns come in a batch of their own:
	// SQL Server compiles a batch before it runs.
	`ALTER TABLE gatehouse_users ADD
		email_norm_key AS CAST(LEFT(email_norm, 400) AS nvarchar(400)) PERSISTED,
		display_name_norm_key AS CAST(LEFT(display_name_norm, 400) AS nvarchar(400)) PERSISTED;`,
	`CREATE INDEX ix_gatehouse_users_email_norm ON gatehouse_users(email_norm_key);
	CREATE INDEX ix_gatehouse_users_display_name_norm ON gatehouse_users(display_name_norm_key);`,
	searchStep,
}
