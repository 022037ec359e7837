-- The legacy user store of the PostgreSQL fixture, as SQL Server keeps it:
-- an IDENTITY key, a bit lock flag, the server's default (usually
-- case-insensitive) collation, and columns gatehouse must never touch.
CREATE TABLE legacy_app_users (
	usr_id     int IDENTITY(1, 1) PRIMARY KEY,
	login_nm   nvarchar(64) NOT NULL,
	mail_addr  nvarchar(254) NULL,
	full_nm    nvarchar(128) NULL,
	first_nm   nvarchar(64) NULL,
	last_nm    nvarchar(64) NULL,
	dept_cd    nvarchar(32) NULL,
	office_cd  nvarchar(32) NULL,
	is_locked  bit NOT NULL DEFAULT 0,
	pwd_hash   char(60) NULL DEFAULT 'legacy-hash-gatehouse-must-not-touch-xxxxxxxxxxxxxxxxxxxxxxx',
	notes      nvarchar(max) NULL DEFAULT 'created by the app',
	created_ts datetime NOT NULL DEFAULT GETDATE()
);
CREATE TABLE legacy_app_roles (
	role_id int IDENTITY(1, 1) PRIMARY KEY,
	role_nm nvarchar(64) NOT NULL,
	descr   nvarchar(max) NULL
);
CREATE TABLE legacy_app_user_roles (
	usr_id     int NOT NULL REFERENCES legacy_app_users (usr_id),
	role_id    int NOT NULL REFERENCES legacy_app_roles (role_id),
	granted_ts datetime NOT NULL DEFAULT GETDATE(),
	PRIMARY KEY (usr_id, role_id)
);
