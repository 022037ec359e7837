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
}
