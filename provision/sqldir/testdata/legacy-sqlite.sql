-- The same legacy user store on SQLite.
CREATE TABLE app_users (
	usr_id     INTEGER PRIMARY KEY,
	login_nm   VARCHAR(64) NOT NULL,
	mail_addr  VARCHAR(254),
	full_nm    VARCHAR(128),
	first_nm   VARCHAR(64),
	last_nm    VARCHAR(64),
	dept_cd    VARCHAR(32),
	office_cd  VARCHAR(32),
	is_locked  SMALLINT NOT NULL DEFAULT 0,
	pwd_hash   CHAR(60) DEFAULT 'legacy-hash-gatehouse-must-not-touch-xxxxxxxxxxxxxxxxxxxxxxx',
	notes      TEXT DEFAULT 'created by the app',
	created_ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE app_roles (
	role_id INTEGER PRIMARY KEY,
	role_nm VARCHAR(64) NOT NULL,
	descr   TEXT
);
CREATE TABLE app_user_roles (
	usr_id     INTEGER NOT NULL REFERENCES app_users (usr_id),
	role_id    INTEGER NOT NULL REFERENCES app_roles (role_id),
	granted_ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
	PRIMARY KEY (usr_id, role_id)
);
