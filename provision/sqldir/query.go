package sqldir

import (
	"database/sql/driver"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"modernc.org/sqlite"

	"gatehouse/provision"
)

// foldFunc is the SQL name of provision.NormalizeName, so that filters on
// SQLite fold exactly as name uniqueness does, beyond ASCII.
const foldFunc = "gatehouse_fold"

var registerFold = sync.OnceValue(func() error {
	return sqlite.RegisterDeterministicScalarFunction(foldFunc, 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case string:
			return provision.NormalizeName(v), nil
		case []byte:
			return provision.NormalizeName(string(v)), nil
		case nil:
			return "", nil
		}
		return nil, fmt.Errorf("%s: want text, got %T", foldFunc, args[0])
	})
})

// lowerFold is what a server's lower() makes of a value: simple lower
// case. Filters on columns without a stored fold compare with it on
// PostgreSQL and SQL Server, so that both sides of the comparison fold
// alike; names never do (they have their Go-folded columns).
func lowerFold(s string) string { return strings.ToLower(norm.NFC.String(s)) }

// colKind says how a column's values compare.
type colKind int

const (
	kindText   colKind = iota
	kindTime           // fixed-width UTC stamps
	kindStatus         // users.status, filtered as the boolean "active"
	kindMember         // groups: membership of a user ID
)

// column is the SQL for one filterable field. expr never yields NULL.
type column struct {
	expr string
	args []any // bound before the compared value, e.g. a JSON path
	// folded, when set, is an expression already holding the folded value
	// (an indexed column), used instead of folding expr at query time.
	folded string
	// values, when set, names the field whose folds gatehouse_user_values
	// holds (search.go): the given and family names and extra fields.
	values string
	kind   colKind
}

func (d *dialect) userColumn(field string) (column, error) {
	switch field {
	case provision.FieldID:
		return column{expr: "u.id"}, nil
	case provision.FieldUserName:
		return column{expr: "u.user_name", folded: "u.user_name_norm"}, nil
	case provision.FieldExternalID:
		return column{expr: "u.external_id"}, nil
	case provision.FieldEmail:
		return column{expr: "u.email", folded: "u.email_norm"}, nil
	case provision.FieldDisplayName:
		return column{expr: "u.display_name", folded: "u.display_name_norm"}, nil
	case provision.FieldGivenName:
		return column{expr: "u.given_name", values: field}, nil
	case provision.FieldFamilyName:
		return column{expr: "u.family_name", values: field}, nil
	case provision.FieldActive:
		return column{expr: "u.status", kind: kindStatus}, nil
	case provision.FieldCreated:
		return column{expr: "u.created_at", kind: kindTime}, nil
	case provision.FieldUpdated:
		return column{expr: "u.updated_at", kind: kindTime}, nil
	case provision.FieldGroups, provision.FieldMember, provision.FieldName:
		return column{}, fmt.Errorf("%w: users cannot be filtered on %q", provision.ErrUnsupported, field)
	}
	if !extraName(field) {
		return column{}, fmt.Errorf("%w: unknown field %q", provision.ErrUnsupported, field)
	}
	// The JSON path is a bound parameter, never spliced into the SQL.
	return column{expr: d.jsonField("u.extra"), args: []any{d.jsonKey(field)}, values: field}, nil
}

func (d *dialect) groupColumn(field string) (column, error) {
	switch field {
	case provision.FieldID:
		return column{expr: "g.id"}, nil
	case provision.FieldName:
		return column{expr: "g.name", folded: "g.name_norm"}, nil
	case provision.FieldExternalID:
		return column{expr: "g.external_id"}, nil
	case provision.FieldCreated:
		return column{expr: "g.created_at", kind: kindTime}, nil
	case provision.FieldUpdated:
		return column{expr: "g.updated_at", kind: kindTime}, nil
	case provision.FieldMember:
		return column{kind: kindMember}, nil
	}
	return column{}, fmt.Errorf("%w: groups cannot be filtered on %q", provision.ErrUnsupported, field)
}

// extraName reports whether s can be an extra field name (the rule of
// provision.Mapping), which also keeps the JSON path simple.
func extraName(s string) bool {
	if s == "" || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// where builds a WHERE clause from a filter. Values are always bound
// parameters; column expressions come only from the fixed tables above.
type where struct {
	sb     strings.Builder
	args   []any
	d      *dialect
	column func(string) (column, error)
	// selective is set when every match must pass an index lookup or
	// range (a condition at the top, or under And only); loose counts
	// the Or and Not nodes above the node being written.
	selective bool
	loose     int
}

// narrows records that the condition being written is an index lookup or
// range: selective when nothing above it widens it.
func (w *where) narrows() {
	if w.loose == 0 {
		w.selective = true
	}
}

// orderID is the ID ordering of a query. A database may walk the ID
// index to avoid a sort, reading every row before the matches of a
// selective filter (a recent meta.lastModified, say, whose users are
// anywhere in ID order; PostgreSQL's generic plan guesses a third of the
// users match a range). Ordering by an expression of the ID keeps it on
// the filter's index and sorts the few matches: "+" on SQLite, the code
// point collation on PostgreSQL (IDs are ASCII: the same order).
func (d *dialect) orderID(id string, selective bool) string {
	switch {
	case !selective:
		return id
	case d.name == SQLite:
		return "+" + id
	case d.name == Postgres:
		return id + ` COLLATE "C"`
	}
	return id
}

func (w *where) filter(f provision.Filter) error {
	switch f := f.(type) {
	case provision.And:
		return w.join(" AND ", "1=1", f)
	case provision.Or:
		if len(f) > 1 && len(f) <= maxUnion && w.lookupable(f) && branches(f) <= maxUnion {
			w.narrows()
			w.sb.WriteString("u.id IN (")
			w.lookup(f)
			w.sb.WriteString(")")
			return nil
		}
		w.loose++
		defer func() { w.loose-- }()
		return w.join(" OR ", "1=0", f)
	case provision.Not:
		w.loose++
		defer func() { w.loose-- }()
		w.sb.WriteString("NOT (")
		if err := w.filter(f.Filter); err != nil {
			return err
		}
		w.sb.WriteString(")")
		return nil
	case provision.Compare:
		return w.compare(f)
	case nil:
		w.sb.WriteString("1=1")
		return nil
	}
	return fmt.Errorf("%w: filter node %T", provision.ErrUnsupported, f)
}

func (w *where) join(sep, empty string, fs []provision.Filter) error {
	if len(fs) == 0 {
		w.sb.WriteString(empty)
		return nil
	}
	w.sb.WriteString("(")
	for i, f := range fs {
		if i > 0 {
			w.sb.WriteString(sep)
		}
		if err := w.filter(f); err != nil {
			return err
		}
	}
	w.sb.WriteString(")")
	return nil
}

func (w *where) compare(c provision.Compare) error {
	col, err := w.column(c.Field)
	if err != nil {
		return err
	}
	if !utf8.ValidString(c.Value) || strings.ContainsRune(c.Value, 0) {
		// A server database refuses such text outright; no stored value
		// holds it.
		return fmt.Errorf("%w: a filter value must be UTF-8 text without NUL", provision.ErrInvalid)
	}
	switch col.kind {
	case kindStatus:
		return w.status(col, c)
	case kindMember:
		if c.Op != provision.OpEq {
			return fmt.Errorf("%w: members take only eq", provision.ErrUnsupported)
		}
		w.sb.WriteString("EXISTS (SELECT 1 FROM gatehouse_memberships m WHERE m.group_id = g.id AND m.user_id = ?)")
		w.args = append(w.args, c.Value)
		return nil
	}
	if c.Fold && w.indexed(col, c) {
		if c.Op != provision.OpPresent {
			w.narrows()
		}
		return nil
	}
	if col.kind == kindTime && c.Op != provision.OpPresent && c.Op != provision.OpNe ||
		c.Op == provision.OpEq && (col.expr == "u.id" || col.expr == "u.external_id") {
		w.narrows()
	}
	expr, v, exprArgs := col.expr, any(c.Value), col.args
	if col.kind == kindTime {
		t, err := time.Parse(time.RFC3339Nano, c.Value)
		if err != nil {
			return fmt.Errorf("%w: %q is not a date-time", provision.ErrInvalid, c.Value)
		}
		switch c.Op {
		case provision.OpCo, provision.OpSw, provision.OpEw:
			return fmt.Errorf("%w: %s on a date-time", provision.ErrUnsupported, c.Op)
		case provision.OpPresent:
			w.sb.WriteString("1=1") // timestamps are always set
			return nil
		}
		v = w.d.time(t)
	} else if c.Fold {
		switch {
		case col.folded != "": // the stored Go fold
			expr, v = col.folded, provision.NormalizeName(c.Value)
		case col.values != "": // the stored Go fold, in its table
			expr, v, exprArgs = valuesFold, provision.NormalizeName(c.Value), []any{col.values}
		case w.d.name == SQLite: // the Go fold as an SQL function
			expr, v = w.d.fold(expr), provision.NormalizeName(c.Value)
		default: // the server's lower(), met by the same on the value
			expr, v = w.d.fold(expr), lowerFold(c.Value)
		}
	}
	if s, ok := v.(string); ok && s == "" && (c.Op == provision.OpCo || c.Op == provision.OpSw || c.Op == provision.OpEw) {
		// Every value holds, starts and ends with the empty string
		// (provision.CompareValues).
		w.sb.WriteString("1=1")
		return nil
	}
	w.args = append(w.args, exprArgs...)
	switch c.Op {
	case provision.OpPresent:
		w.sb.WriteString(expr + " <> ''")
		return nil
	case provision.OpEq, provision.OpNe, provision.OpGt, provision.OpGe, provision.OpLt, provision.OpLe:
		if col.kind == kindText && c.Op != provision.OpEq && c.Op != provision.OpNe {
			expr = w.d.codePointOrder(expr)
		}
		w.sb.WriteString(expr + " " + sqlOps[c.Op] + " ?")
		w.args = append(w.args, v)
	case provision.OpCo, provision.OpSw, provision.OpEw:
		sql, args := w.d.substring(string(c.Op), expr, v.(string))
		w.sb.WriteString(sql)
		w.args = append(w.args, args...)
	default:
		return fmt.Errorf("%w: operator %q", provision.ErrUnsupported, c.Op)
	}
	return nil
}

// valuesFold is the stored fold of one field of gatehouse_user_values for
// the user u, empty when the user has no value: the field is bound.
const valuesFold = "coalesce((SELECT x.value_norm FROM gatehouse_user_values x WHERE x.user_id = u.id AND x.field = ?), '')"

// codePointOrder makes a text comparison order by code point, as Go's
// strings.Compare (provision.CompareValues) does: SQLite's BINARY and
// SQL Server's binary columns do already; PostgreSQL would otherwise use
// the database's collation.
func (d *dialect) codePointOrder(expr string) string {
	if d.name == Postgres {
		return "(" + expr + `) COLLATE "C"`
	}
	return expr
}

// sqlOps are the operators with a direct SQL form. Text compares with
// SQLite's BINARY collation: code point order.
var sqlOps = map[provision.Op]string{
	provision.OpEq: "=", provision.OpNe: "<>",
	provision.OpGt: ">", provision.OpGe: ">=", provision.OpLt: "<", provision.OpLe: "<=",
}

func (w *where) status(col column, c provision.Compare) error {
	var want bool
	switch strings.ToLower(c.Value) {
	case "true":
		want = true
	case "false":
	default:
		return fmt.Errorf("%w: active is true or false, not %q", provision.ErrInvalid, c.Value)
	}
	switch c.Op {
	case provision.OpEq:
	case provision.OpNe:
		want = !want
	case provision.OpPresent:
		w.sb.WriteString("1=1")
		return nil
	default:
		return fmt.Errorf("%w: %s on a boolean", provision.ErrUnsupported, c.Op)
	}
	w.sb.WriteString(col.expr + " = ?")
	if want {
		w.args = append(w.args, "active")
	} else {
		w.args = append(w.args, "deactivated")
	}
	return nil
}

// orderBy builds the ORDER BY clause: the sort field, empty values last
// when ascending and first when descending (RFC 7644 §3.4.2.3), then the
// ID so that pages are stable. It returns the arguments the clause binds.
func (d *dialect) orderBy(q provision.Query, column func(string) (column, error), id string) (string, []any, error) {
	if q.SortBy == "" || q.SortBy == provision.FieldID {
		if q.Descending {
			return " ORDER BY " + id + " DESC", nil, nil
		}
		return " ORDER BY " + id, nil, nil
	}
	col, err := column(q.SortBy)
	if err != nil {
		return "", nil, err
	}
	if col.kind == kindMember {
		return "", nil, fmt.Errorf("%w: sorting by %q", provision.ErrUnsupported, q.SortBy)
	}
	expr, exprArgs := col.expr, col.args
	if q.SortFold && col.kind == kindText {
		switch {
		case col.folded != "":
			expr = col.folded
		case col.values != "":
			expr, exprArgs = valuesFold, []any{col.values}
		default:
			expr = d.fold(expr)
		}
	}
	dir := ""
	if q.Descending {
		dir = " DESC"
	}
	if col.kind != kindText {
		return " ORDER BY " + expr + dir + ", " + id, exprArgs, nil
	}
	// The expression appears twice; so do its arguments. Text sorts in
	// code point order on every database, as filters compare.
	args := append(append([]any{}, exprArgs...), exprArgs...)
	return " ORDER BY CASE WHEN " + expr + " = '' THEN 1 ELSE 0 END" + dir + ", " + d.codePointOrder(expr) + dir + ", " + id, args, nil
}

// indexed writes the case-insensitive comparisons that an index answers,
// and reports whether it wrote c: equality and prefix on a stored fold (a
// name, e-mail or display name) or on the folds of the values table.
// Everything else is written by compare, and may read every row.
func (w *where) indexed(col column, c provision.Compare) bool {
	v := provision.NormalizeName(c.Value)
	switch {
	case col.folded != "" && c.Op == provision.OpEq:
		w.keyEq(col.folded, v)
	case col.folded != "" && c.Op == provision.OpSw && v != "":
		w.keyPrefix(col.folded, v)
	case col.values != "" && w.lookupable(c):
		// An extra value that is empty has no row: eq and sw of a
		// non-empty value only match values that are set, as they must.
		w.sb.WriteString("u.id IN (")
		w.lookup(c)
		w.sb.WriteString(")")
	default:
		return false
	}
	return true
}

// lookupable reports whether an index alone answers f as a set of user
// IDs: an eq or sw on a stored fold of the users table or on an extra
// field's folded values, or an Or of such.
func (w *where) lookupable(f provision.Filter) bool {
	switch f := f.(type) {
	case provision.Or:
		for _, c := range f {
			if !w.lookupable(c) {
				return false
			}
		}
		return len(f) > 0
	case provision.Compare:
		col, err := w.column(f.Field)
		if err != nil || !f.Fold || (f.Op != provision.OpEq && f.Op != provision.OpSw) || provision.NormalizeName(f.Value) == "" {
			return false
		}
		return col.values != "" || strings.HasPrefix(col.folded, "u.")
	}
	return false
}

// maxUnion bounds the branches of one union: SQLite takes at most 500
// SELECTs in one compound statement. A longer Or is written as an OR,
// which SQLite still answers index by index.
const maxUnion = 100

// branches counts the SELECTs a lookupable filter's union has.
func branches(f provision.Filter) int {
	if or, ok := f.(provision.Or); ok {
		n := 0
		for _, c := range or {
			n += branches(c)
		}
		return n
	}
	return 1
}

// lookup writes the SELECT of the IDs of the users matching a lookupable
// f; an Or is the UNION of its branches. An OR across columns makes
// PostgreSQL read every row; a union reads one index range per branch.
func (w *where) lookup(f provision.Filter) {
	switch f := f.(type) {
	case provision.Or:
		for i, c := range f {
			if i > 0 {
				w.sb.WriteString(" UNION ")
			}
			w.lookup(c)
		}
	case provision.Compare:
		col, _ := w.column(f.Field)
		expr := "x.value_norm"
		if col.values != "" {
			w.sb.WriteString("SELECT x.user_id FROM gatehouse_user_values x WHERE x.field = ? AND ")
			w.args = append(w.args, col.values)
		} else {
			w.sb.WriteString("SELECT x.id FROM gatehouse_users x WHERE ")
			expr = "x." + strings.TrimPrefix(col.folded, "u.")
		}
		if v := provision.NormalizeName(f.Value); f.Op == provision.OpEq {
			w.keyEq(expr, v)
		} else {
			w.keyPrefix(expr, v)
		}
	}
}

// keyEq compares a stored fold with a folded value. On the servers a fold
// is indexed by its key (search.go: a leading part), so the key narrows
// and the whole value decides.
func (w *where) keyEq(expr, v string) {
	key, keyArg := w.d.foldKey(expr)
	if key == "" {
		w.sb.WriteString(expr + " = ?")
		w.args = append(w.args, v)
		return
	}
	w.sb.WriteString("(" + key + " = " + keyArg + " AND " + expr + " = ?)")
	w.args = append(w.args, v, v)
}

// keyPrefix matches a stored fold starting with the folded prefix v: a
// range of the index narrows (code point order, the order of SQLite's
// BINARY collation and PostgreSQL's "C"), and the exact prefix decides.
func (w *where) keyPrefix(expr, v string) {
	exact, exactArgs := w.d.substring("sw", expr, v)
	key, _ := w.d.foldKey(expr)
	switch {
	case w.d.name == SQLServer && key != "" && utf16Len(v) <= foldKeyLen*2:
		// LIKE with a constant prefix is SQL Server's own index seek.
		k, kArgs := w.d.substring("sw", key, v)
		w.sb.WriteString("(" + k + " AND " + exact + ")")
		w.args = append(append(w.args, kArgs...), exactArgs...)
		return
	case w.d.name == SQLite:
		key = expr // BINARY collation: code point order
	case key == "" || utf8.RuneCountInString(v) > foldKeyLen:
		// No index in code point order (or a prefix longer than the
		// key): the exact prefix alone, which SQL Server still seeks.
		w.sb.WriteString(exact)
		w.args = append(w.args, exactArgs...)
		return
	}
	w.sb.WriteString("(" + key + " >= ?")
	w.args = append(w.args, v)
	if hi, ok := prefixEnd(v); ok {
		w.sb.WriteString(" AND " + key + " < ?")
		w.args = append(w.args, hi)
	}
	w.sb.WriteString(" AND " + exact + ")")
	w.args = append(w.args, exactArgs...)
}

// foldKeyLen is how many characters of a fold the servers index (on SQL
// Server, twice as many UTF-16 code units); SQLite indexes the whole.
const foldKeyLen = 200

// foldKey is the indexed key of a stored fold column and the expression
// that makes the same key of a bound value; "" when the column itself is
// indexed (every fold on SQLite, names on SQL Server) or not at all
// (group names on PostgreSQL). The key expression is written exactly as
// the index that holds it, or the server would not use the index.
func (d *dialect) foldKey(expr string) (key, arg string) {
	col := expr[strings.IndexByte(expr, '.')+1:]
	switch {
	case d.name == Postgres && keyedFolds[col] >= 1:
		return `(substr(` + expr + `, 1, 200) COLLATE "C")`, `substr(?, 1, 200)`
	case d.name == SQLServer && keyedFolds[col] == 2:
		return expr + "_key", "CAST(LEFT(?, 400) AS nvarchar(400))"
	}
	return "", ""
}

// keyedFolds are the fold columns indexed by a key (the schema's
// migrations): 1 on PostgreSQL, 2 on PostgreSQL and SQL Server.
var keyedFolds = map[string]int{"user_name_norm": 1, "email_norm": 2, "display_name_norm": 2, "value_norm": 2}

// prefixEnd is the least string above every string starting with p, in
// code point order: p with its last character incremented (a character
// that has no successor is dropped, and the one before incremented). ok
// is false when there is none: every string starting with p is at the
// top of the order.
func prefixEnd(p string) (string, bool) {
	rs := []rune(p)
	for len(rs) > 0 {
		last := rs[len(rs)-1]
		switch {
		case last == utf8.MaxRune:
			rs = rs[:len(rs)-1]
			continue
		case last == 0xD7FF: // the surrogates are not characters
			rs[len(rs)-1] = 0xE000
		default:
			rs[len(rs)-1] = last + 1
		}
		return string(rs), true
	}
	return "", false
}

// utf16Len is a string's length in UTF-16 code units, the way SQL Server
// counts nvarchar characters.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}
