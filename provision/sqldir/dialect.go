package sqldir

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names, as the configuration spells them.
const (
	SQLite    = "sqlite"
	Postgres  = "postgres"
	SQLServer = "sqlserver"
)

// dialect holds everything that differs between the databases. Queries are
// written once with ? placeholders and rebound; the rest of the package
// asks the dialect only where the SQL must differ.
type dialect struct {
	name string // SQLite, Postgres or SQLServer

	mu         sync.Mutex
	bound      map[string]string // rebind cache, of the queries seen first
	boundBytes int               // the text it holds, at most maxBoundBytes
}

// maxBoundBytes bounds the rebind cache. A login's statements are
// prepared already rebound (stmts.go); what comes here is mostly SQL
// generated from SCIM filters, which vary, and rebinding one again is a
// scan of its text.
const maxBoundBytes = 256 << 10

func newDialect(name string) (*dialect, error) {
	switch name {
	case SQLite:
		return &dialect{name: name}, nil
	case Postgres, SQLServer:
		return &dialect{name: name, bound: map[string]string{}}, nil
	}
	return nil, fmt.Errorf("unknown dialect %q (want %s, %s or %s)", name, SQLite, Postgres, SQLServer)
}

// rebind turns each ? outside a quoted string into the dialect's
// placeholder: $n on PostgreSQL, @pn on SQL Server.
func (d *dialect) rebind(q string) string {
	if d.name == SQLite {
		return q
	}
	d.mu.Lock()
	out, ok := d.bound[q]
	d.mu.Unlock()
	if ok {
		return out
	}
	var sb strings.Builder
	n, quoted := 0, false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted // '' inside a literal toggles twice
		case c == '?' && !quoted:
			n++
			if d.name == Postgres {
				sb.WriteString("$" + strconv.Itoa(n))
			} else {
				sb.WriteString("@p" + strconv.Itoa(n))
			}
			continue
		}
		sb.WriteByte(c)
	}
	out = sb.String()
	d.mu.Lock()
	if _, ok := d.bound[q]; !ok && d.boundBytes+len(q)+len(out) <= maxBoundBytes {
		d.bound[q] = out
		d.boundBytes += len(q) + len(out)
	}
	d.mu.Unlock()
	return out
}

// quoteIdent validates a possibly schema-qualified name from the
// configuration (schema.table or table; column names have no dot) and
// quotes each part. Only letters, digits, _ and $ are accepted, so a quote
// character can never reach the SQL.
func (d *dialect) quoteIdent(name string, qualified bool) (string, error) {
	parts := []string{name}
	if qualified {
		parts = strings.Split(name, ".")
		if len(parts) > 2 {
			return "", fmt.Errorf("%q: use table or schema.table", name)
		}
	}
	for i, p := range parts {
		if !identifier(p) {
			return "", fmt.Errorf("%q: names are letters, digits, _ and $, starting with a letter or _, at most 128 characters", name)
		}
		if d.name == SQLServer {
			parts[i] = "[" + p + "]"
		} else {
			parts[i] = `"` + p + `"`
		}
	}
	return strings.Join(parts, "."), nil
}

func identifier(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '$'):
		default:
			return false
		}
	}
	return true
}

// page is the paging clause. SQL Server's OFFSET ... FETCH needs an ORDER
// BY, which every paged query here has.
func (d *dialect) page(limit, offset int) (string, []any) {
	if d.name == SQLServer {
		return " OFFSET ? ROWS FETCH NEXT ? ROWS ONLY", []any{offset, limit}
	}
	return " LIMIT ? OFFSET ?", []any{limit, offset}
}

// fold is an expression folding case. SQLite runs provision.NormalizeName
// itself; the servers use lower(), simple lower case without NFKC or full
// case folding, so a value compared with it is folded alike in Go
// (lowerFold). User and group names never use it: they compare on their
// stored, Go-folded *_norm columns.
func (d *dialect) fold(expr string) string {
	if d.name == SQLite {
		return foldFunc + "(" + expr + ")"
	}
	return "lower(" + expr + ")"
}

// exact makes a text comparison case- and accent-sensitive. gatehouse's
// own SQL Server columns are created binary; an application's table may
// use a case-insensitive collation, so its columns are compared binary
// explicitly.
func (d *dialect) exact(expr string) string {
	if d.name == SQLServer {
		return expr + " COLLATE Latin1_General_100_BIN2"
	}
	return expr
}

// likeEscape escapes a value for LIKE ... ESCAPE '\': the wildcards % and
// _, the escape itself and, on SQL Server, the [ that opens a character
// class.
func (d *dialect) likeEscape(v string) string {
	var sb strings.Builder
	for _, r := range v {
		switch r {
		case '\\', '%', '_':
			sb.WriteByte('\\')
		case '[':
			if d.name == SQLServer {
				sb.WriteByte('\\')
			}
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// substring builds co, sw and ew. SQLite's LIKE ignores ASCII case, so it
// uses instr and substr; the servers use LIKE with escaped wildcards,
// which can use an index for sw.
func (d *dialect) substring(op, expr, v string) (string, []any) {
	if d.name == SQLite {
		switch op {
		case "co":
			return "instr(" + expr + ", ?) > 0", []any{v}
		case "sw":
			return "substr(" + expr + ", 1, length(?)) = ?", []any{v, v}
		}
		if v == "" {
			return "1=1", nil
		}
		return "substr(" + expr + ", -length(?)) = ?", []any{v, v}
	}
	e := d.likeEscape(v)
	switch op {
	case "co":
		e = "%" + e + "%"
	case "sw":
		e += "%"
	default:
		e = "%" + e
	}
	return expr + ` LIKE ? ESCAPE '\'`, []any{e}
}

// jsonField extracts one key of the JSON object in column col as text,
// empty when absent. The key is bound: jsonKey gives its argument.
func (d *dialect) jsonField(col string) string {
	switch d.name {
	case Postgres:
		return "coalesce(" + col + "::jsonb ->> CAST(? AS text), '')"
	case SQLServer:
		return "coalesce(JSON_VALUE(" + col + ", ?), '')"
	}
	return "coalesce(json_extract(" + col + ", ?), '')"
}

func (d *dialect) jsonKey(field string) any {
	if d.name == Postgres {
		return field
	}
	return `$."` + field + `"`
}

// text casts an expression of any type to text, for reading an
// application's columns whatever their declared types.
func (d *dialect) text(expr string) string {
	switch d.name {
	case Postgres:
		return "CAST(" + expr + " AS text)"
	case SQLServer:
		return "CAST(" + expr + " AS nvarchar(4000))"
	}
	return "CAST(" + expr + " AS TEXT)"
}

// time is a timestamp as bound: SQLite keeps fixed-width UTC text, the
// servers have timestamp types.
func (d *dialect) time(t time.Time) any {
	if d.name == SQLite {
		return stamp(t)
	}
	return t.UTC().Truncate(time.Millisecond)
}

// lock is the row-locking hint for reads that decide a write, placed after
// a table name (SQL Server) or at the end of the query (PostgreSQL). On
// SQL Server, UPDLOCK with SERIALIZABLE also locks the key range of a row
// that is absent, so two first logins of one key queue instead of both
// inserting; on PostgreSQL an absent row locks nothing and the unique
// constraint decides (see retry). SQLite writes under BEGIN IMMEDIATE.
func (d *dialect) lock() (table, query string) {
	switch d.name {
	case SQLServer:
		return " WITH (UPDLOCK, SERIALIZABLE)", ""
	case Postgres:
		return "", " FOR UPDATE"
	}
	return "", ""
}

// errClass sorts database errors.
type errClass int

const (
	errOther   errClass = iota
	errUnique           // a unique or primary key constraint refused the row
	errRetry            // deadlock or serialisation failure: run again
	errTooLong          // a value does not fit its column
	errBadText          // a value the column's type or encoding refuses
)

func (d *dialect) classify(err error) errClass {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return errUnique
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return errRetry
		}
		return errOther
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return errUnique
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return errRetry
		case "22001": // string_data_right_truncation
			return errTooLong
		case "22021", "22P02", "22003", "22007", "22008": // bad encoding, invalid text for the type, out of range, bad date
			return errBadText
		}
		return errOther
	}
	var me interface{ SQLErrorNumber() int32 }
	if errors.As(err, &me) {
		switch me.SQLErrorNumber() {
		case 2627, 2601: // violation of a unique key constraint / unique index
			return errUnique
		case 1205: // chosen as deadlock victim
			return errRetry
		case 8152, 2628: // string or binary data would be truncated
			return errTooLong
		case 245, 8114, 241, 242, 220, 8115: // conversion failed, arithmetic overflow
			return errBadText
		}
	}
	return errOther
}

// schemaTable creates gatehouse_schema, which counts the migrations run,
// after taking a lock held until the migrating transaction ends.
func (d *dialect) schemaTable() []string {
	switch d.name {
	case Postgres:
		return []string{
			"SELECT pg_advisory_xact_lock(7163298472519)", // any fixed number: gatehouse's migration lock
			"CREATE TABLE IF NOT EXISTS gatehouse_schema (component text NOT NULL, version integer NOT NULL)",
		}
	case SQLServer:
		return []string{
			appLock("'gatehouse_schema'", "60000"),
			"IF OBJECT_ID(N'gatehouse_schema', N'U') IS NULL CREATE TABLE gatehouse_schema (component nvarchar(32) NOT NULL, version int NOT NULL)",
		}
	}
	// SQLite: BEGIN IMMEDIATE already holds the write lock.
	return []string{"CREATE TABLE IF NOT EXISTS gatehouse_schema (component TEXT NOT NULL, version INTEGER NOT NULL)"}
}

// expand puts the dialect's column types into a schema template.
func (d *dialect) expand(migrations []string) []string {
	var types map[string]string
	switch d.name {
	case Postgres:
		types = map[string]string{"{int}": "bigint", "{time}": "timestamptz", "{nonclustered}": ""}
		for _, k := range []string{"{key}", "{name}", "{short}", "{idp}", "{kind}", "{subject}", "{source}"} {
			types[k] = "text"
		}
	case SQLServer:
		const bin = " COLLATE Latin1_General_100_BIN2"
		types = map[string]string{"{int}": "bigint", "{time}": "datetime2(3)", "{nonclustered}": "NONCLUSTERED",
			"{key}": "nvarchar(128)" + bin, "{name}": "nvarchar(256)" + bin, "{short}": "nvarchar(16)" + bin,
			"{idp}": "nvarchar(450)" + bin, "{kind}": "nvarchar(128)" + bin, "{subject}": "nvarchar(256)" + bin,
			"{source}": "nvarchar(480)" + bin}
	default:
		types = map[string]string{"{int}": "INTEGER", "{time}": "TEXT", "{nonclustered}": ""}
		for _, k := range []string{"{key}", "{name}", "{short}", "{idp}", "{kind}", "{subject}", "{source}"} {
			types[k] = "TEXT"
		}
	}
	out := make([]string, len(migrations))
	for i, m := range migrations {
		for k, v := range types {
			m = strings.ReplaceAll(m, k, v)
		}
		out[i] = m
	}
	return out
}

// splitName splits a configured schema.table into its parts.
func splitName(name string) (schema, table string) {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "", name
}

// columns reads the columns of a table as the database describes them;
// none when the table does not exist.
func (d *db) columns(ctx context.Context, name string) (map[string]colInfo, error) {
	schema, table := splitName(name)
	var q string
	args := []any{}
	switch d.d.name {
	case Postgres:
		q = `SELECT column_name, data_type, CASE WHEN is_nullable = 'YES' THEN 1 ELSE 0 END, coalesce(character_maximum_length, 0),
			CASE WHEN column_default IS NOT NULL OR is_identity = 'YES' THEN 1 ELSE 0 END
			FROM information_schema.columns WHERE table_schema = ` + orCurrent(schema, "current_schema()", &args) + ` AND table_name = ?`
	case SQLServer:
		q = `SELECT COLUMN_NAME, DATA_TYPE, CASE WHEN IS_NULLABLE = 'YES' THEN 1 ELSE 0 END, coalesce(CHARACTER_MAXIMUM_LENGTH, 0),
			CASE WHEN COLUMN_DEFAULT IS NOT NULL OR COLUMNPROPERTY(OBJECT_ID(QUOTENAME(TABLE_SCHEMA) + '.' + QUOTENAME(TABLE_NAME)), COLUMN_NAME, 'IsIdentity') = 1
			THEN 1 ELSE 0 END FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = ` + orCurrent(schema, "SCHEMA_NAME()", &args) + ` AND TABLE_NAME = ?`
	default:
		// An INTEGER PRIMARY KEY is the rowid, numbered by SQLite.
		q = `SELECT name, type, CASE WHEN "notnull" = 0 THEN 1 ELSE 0 END, 0,
			CASE WHEN dflt_value IS NOT NULL OR (pk = 1 AND upper(type) = 'INTEGER') THEN 1 ELSE 0 END FROM pragma_table_info(?, ?)`
		args = append(args, table, cmp.Or(schema, "main"))
		table = ""
	}
	if table != "" {
		args = append(args, table)
	}
	rows, err := d.reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqldir: describe %s: %w", name, err)
	}
	defer rows.Close()
	out := map[string]colInfo{}
	for rows.Next() {
		var col string
		var c colInfo
		var nullable, generated int
		if err := rows.Scan(&col, &c.typ, &nullable, &c.maxLen, &generated); err != nil {
			return nil, fmt.Errorf("sqldir: describe %s: %w", name, err)
		}
		c.nullable, c.generated = nullable == 1, generated == 1
		c.typ = strings.ToLower(c.typ)
		c.maxLen = max(c.maxLen, 0) // SQL Server says -1 for (max)
		out[col] = c
	}
	return out, rows.Err()
}

func orCurrent(schema, current string, args *[]any) string {
	if schema == "" {
		return current
	}
	*args = append(*args, schema)
	return "?"
}

// textType reports whether a column type holds text.
func (d *dialect) textType(typ string) bool {
	switch d.name {
	case Postgres:
		return slices.Contains([]string{"text", "character varying", "character", "citext"}, typ)
	case SQLServer:
		return slices.Contains([]string{"nvarchar", "varchar", "nchar", "char", "ntext", "text"}, typ)
	}
	return typ == "" || strings.Contains(typ, "char") || strings.Contains(typ, "clob") || strings.Contains(typ, "text")
}

// procedureExists reports whether a stored procedure (SQL Server) or
// function (PostgreSQL) of that name exists.
func (d *db) procedureExists(ctx context.Context, name string) (bool, error) {
	var n int
	var err error
	switch d.d.name {
	case Postgres:
		schema, proc := splitName(name)
		args := []any{}
		where := "n.nspname = " + orCurrent(schema, "current_schema()", &args)
		err = d.reader().QueryRowContext(ctx, `SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE `+where+` AND p.proname = ?`, append(args, proc)...).Scan(&n)
	case SQLServer:
		quoted, _ := d.d.quoteIdent(name, true)
		err = d.reader().QueryRowContext(ctx, `SELECT count(*) FROM sys.objects WHERE object_id = OBJECT_ID(?) AND type IN ('P', 'PC')`, quoted).Scan(&n)
	default:
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqldir: look up procedure %s: %w", name, err)
	}
	return n > 0, nil
}

// callProcedure builds the call of a user procedure with named
// parameters: EXEC on SQL Server, a function in FROM on PostgreSQL. The
// arguments are computed by value, field by field, when args is called.
func (d *dialect) callProcedure(p *Procedure, key string, value func(field string) (any, error)) (string, func() ([]any, error)) {
	if d.name == SQLite {
		return "", nil
	}
	name, _ := d.quoteIdent(p.Name, true)
	fields := slices.Sorted(maps.Keys(p.Params))
	var parts []string
	param := func(n string) string {
		if d.name == SQLServer {
			return "@" + n + " = ?"
		}
		q, _ := d.quoteIdent(n, false)
		return q + " => ?"
	}
	for _, f := range fields {
		parts = append(parts, param(p.Params[f]))
	}
	if p.KeyParam != "" {
		parts = append(parts, param(p.KeyParam))
	}
	stmt := "SELECT * FROM " + name + "(" + strings.Join(parts, ", ") + ")"
	if d.name == SQLServer {
		stmt = "EXEC " + name + " " + strings.Join(parts, ", ")
	}
	return stmt, func() ([]any, error) {
		var args []any
		for _, f := range fields {
			v, err := value(f)
			if err != nil {
				return nil, err
			}
			args = append(args, v)
		}
		if p.KeyParam != "" {
			if key == "" {
				args = append(args, nil)
			} else {
				args = append(args, key)
			}
		}
		return args, nil
	}
}

// nameLock is a statement taking an exclusive lock on a name until the
// transaction ends; none on SQLite, whose writes are serialised already.
func (d *dialect) nameLock(name string) (string, any) {
	sum := sha256.Sum256([]byte(name))
	res := "gatehouse:" + hex.EncodeToString(sum[:16])
	switch d.name {
	case Postgres:
		return "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", res
	case SQLServer:
		return appLock("?", "10000"), res
	}
	return "", nil
}

// appLock takes an application lock on SQL Server and fails when it
// cannot: sp_getapplock reports a timeout in its return value, not as an
// error.
func appLock(resource, timeoutMS string) string {
	return "DECLARE @r int; EXEC @r = sp_getapplock @Resource = " + resource + ", @LockMode = 'Exclusive', @LockOwner = 'Transaction', @LockTimeout = " +
		timeoutMS + "; IF @r < 0 THROW 51000, 'gatehouse: could not take an application lock', 1;"
}
