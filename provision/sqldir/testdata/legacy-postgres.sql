-- A user store as a 20-year-old intranet application keeps it: its own
-- names and types, a numeric identity key, a lock flag as a number, and
-- columns gatehouse must never touch.
CREATE SCHEMA legacy;
CREATE TABLE legacy.app_users (
	usr_id     serial PRIMARY KEY,
	login_nm   varchar(64) NOT NULL,
	mail_addr  varchar(254),
	full_nm    varchar(128),
	first_nm   varchar(64),
	last_nm    varchar(64),
	dept_cd    varchar(32),
	office_cd  varchar(32),
	is_locked  smallint NOT NULL DEFAULT 0,
	pwd_hash   char(60) DEFAULT 'legacy-hash-gatehouse-must-not-touch-xxxxxxxxxxxxxxxxxxxxxxx',
	notes      text DEFAULT 'created by the app',
	created_ts timestamp NOT NULL DEFAULT now()
);
CREATE TABLE legacy.app_roles (
	role_id serial PRIMARY KEY,
	role_nm varchar(64) NOT NULL,
	descr   text
);
CREATE TABLE legacy.app_user_roles (
	usr_id     integer NOT NULL REFERENCES legacy.app_users (usr_id),
	role_id    integer NOT NULL REFERENCES legacy.app_roles (role_id),
	granted_ts timestamp NOT NULL DEFAULT now(),
	PRIMARY KEY (usr_id, role_id)
);
