package sqldir

import (
	"database/sql/driver"
	"fmt"
	"strings"
	"sync"
	"time"

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
		return column{expr: "u.email"}, nil
	case provision.FieldDisplayName:
		return column{expr: "u.display_name"}, nil
	case provision.FieldGivenName:
		return column{expr: "u.given_name"}, nil
	case provision.FieldFamilyName:
		return column{expr: "u.family_name"}, nil
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
	return column{expr: d.jsonField("u.extra"), args: []any{d.jsonKey(field)}}, nil
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
}

func (w *where) filter(f provision.Filter) error {
	switch f := f.(type) {
	case provision.And:
		return w.join(" AND ", "1=1", f)
	case provision.Or:
		return w.join(" OR ", "1=0", f)
	case provision.Not:
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
	expr, v := col.expr, any(c.Value)
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
		case col.folded != "": // names: the stored Go fold
			expr, v = col.folded, provision.NormalizeName(c.Value)
		case w.d.name == SQLite: // the Go fold as an SQL function
			expr, v = w.d.fold(expr), provision.NormalizeName(c.Value)
		default: // the server's lower(), met by the same on the value
			expr, v = w.d.fold(expr), lowerFold(c.Value)
		}
	}
	w.args = append(w.args, col.args...)
	switch c.Op {
	case provision.OpPresent:
		w.sb.WriteString(expr + " <> ''")
		return nil
	case provision.OpEq, provision.OpNe, provision.OpGt, provision.OpGe, provision.OpLt, provision.OpLe:
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
	expr := col.expr
	if q.SortFold && col.kind == kindText {
		if col.folded != "" {
			expr = col.folded
		} else {
			expr = d.fold(expr)
		}
	}
	dir := ""
	if q.Descending {
		dir = " DESC"
	}
	if col.kind != kindText {
		return " ORDER BY " + expr + dir + ", " + id, col.args, nil
	}
	// The expression appears twice; so do its arguments.
	args := append(append([]any{}, col.args...), col.args...)
	return " ORDER BY CASE WHEN " + expr + " = '' THEN 1 ELSE 0 END" + dir + ", " + expr + dir + ", " + id, args, nil
}
