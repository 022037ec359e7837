package sqldir

// migrations are applied in order; PRAGMA user_version records how many
// ran. Append, never edit.
var migrations = []string{
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
}
