package provision

import (
	"testing"
	"time"
)

// TestCompareValues pins the operators on strings: exact comparison in
// code point order, or NormalizeName on both sides when the attribute is
// case-insensitive, and a missing value compared as "".
func TestCompareValues(t *testing.T) {
	for _, tc := range []struct {
		name       string
		op         Op
		have, want string
		fold, res  bool
	}{
		{"eq exact", OpEq, "alice", "alice", false, true},
		{"eq exact is case-sensitive", OpEq, "Alice", "alice", false, false},
		{"eq folded ignores case", OpEq, "Alice", "ALICE", true, true},
		{"eq folded other value", OpEq, "alice", "alicia", true, false},
		{"ne exact", OpNe, "Alice", "alice", false, true},
		{"ne folded", OpNe, "Alice", "alice", true, false},
		{"co exact", OpCo, "x@Example.test", "@Example", false, true},
		{"co exact wrong case", OpCo, "x@Example.test", "@example", false, false},
		{"co folded", OpCo, "x@Example.test", "@EXAMPLE", true, true},
		{"co empty want", OpCo, "x", "", false, true},
		{"sw exact", OpSw, "alice", "al", false, true},
		{"sw exact not a prefix", OpSw, "alice", "ic", false, false},
		{"sw folded", OpSw, "ALICE", "al", true, true},
		{"ew exact", OpEw, "alice", "ce", false, true},
		{"ew exact wrong case", OpEw, "alice", "CE", false, false},
		{"ew folded", OpEw, "alice", "CE", true, true},
		{"gt code point order", OpGt, "b", "a", false, true},
		{"gt equal", OpGt, "a", "a", false, false},
		{"gt upper case sorts before lower exact", OpGt, "B", "a", false, false},
		{"gt upper case folded", OpGt, "B", "a", true, true},
		{"ge equal", OpGe, "a", "a", false, true},
		{"ge below", OpGe, "a", "b", false, false},
		{"lt below", OpLt, "a", "b", false, true},
		{"lt equal", OpLt, "a", "a", false, false},
		{"le equal", OpLe, "a", "a", false, true},
		{"le above", OpLe, "b", "a", false, false},
		{"lt by code point not by alphabet", OpLt, "é", "f", false, false},
		{"lt folded drops the accent", OpLt, "é", "f", true, true},
		{"pr set", OpPresent, "x", "", false, true},
		{"pr missing", OpPresent, "", "", false, false},
		{"pr ignores want", OpPresent, "x", "y", true, true},

		// A missing value compares as "".
		{"missing eq empty", OpEq, "", "", false, true},
		{"missing eq value", OpEq, "", "x", false, false},
		{"missing ne value", OpNe, "", "x", false, true},
		{"missing co value", OpCo, "", "x", true, false},
		{"missing lt value", OpLt, "", "a", false, true},
		{"missing gt value", OpGt, "", "a", false, false},

		// Unicode, as NormalizeName folds it.
		{"sharp s folds to ss", OpEq, "straße", "STRASSE", true, true},
		{"sharp s exact", OpEq, "straße", "STRASSE", false, false},
		{"sharp s co ss", OpCo, "Straße", "SS", true, true},
		{"sharp s ew", OpEw, "STRASSE", "ße", true, true},
		{"Turkish dotted capital I", OpEq, "İSTANBUL", "istanbul", true, true},
		{"Turkish dotless i", OpEq, "ıstanbul", "ISTANBUL", true, true},
		{"Turkish dotless i sw", OpSw, "ıstanbul", "is", true, true},
		{"Turkish dotless i exact", OpEq, "ıstanbul", "istanbul", false, false},
		{"precomposed accent", OpEq, "àlice", "alice", true, true},
		{"combining accent", OpEq, "a\u0300lice", "alice", true, true},
		{"combining against precomposed", OpEq, "zoe\u0308", "ZOË", true, true},
		{"combining against precomposed exact", OpEq, "zoe\u0308", "zoë", false, false},
		{"combining accent co", OpCo, "rene\u0301e", "NÉE", true, true},
		{"stroke letter", OpEq, "bjørn", "BJORN", true, true},
		{"full-width", OpEq, "ａｌｉｃｅ", "alice", true, true},
		{"white space runs", OpEq, "a\u00a0 b", "a b", true, true},
		{"white space runs exact", OpEq, "a  b", "a b", false, false},

		{"unknown operator", Op("xx"), "a", "a", false, false},
		{"empty operator", Op(""), "a", "a", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CompareValues(tc.op, tc.have, tc.want, tc.fold); got != tc.res {
				t.Errorf("CompareValues(%s, %q, %q, fold %v) = %v, want %v", tc.op, tc.have, tc.want, tc.fold, got, tc.res)
			}
		})
	}
}

// TestCompareTimes: timestamps compare in time order at millisecond
// precision, whatever the offset they are written with.
func TestCompareTimes(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 400_000, time.UTC) // 0.4 ms past noon
	for _, tc := range []struct {
		name string
		op   Op
		have time.Time
		want string
		res  bool
	}{
		{"eq within the millisecond", OpEq, at, "2026-03-01T12:00:00Z", true},
		{"eq other offset", OpEq, at, "2026-03-01T13:00:00+01:00", true},
		{"eq next millisecond", OpEq, at, "2026-03-01T12:00:00.001Z", false},
		{"ne next millisecond", OpNe, at, "2026-03-01T12:00:00.001Z", true},
		{"ne same millisecond", OpNe, at, "2026-03-01T12:00:00.0009Z", false},
		{"gt earlier", OpGt, at, "2026-03-01T11:59:59.999Z", true},
		{"gt same millisecond", OpGt, at, "2026-03-01T12:00:00Z", false},
		{"gt in time order not text order", OpGt, at, "2026-03-01T14:00:00+03:00", true},
		{"ge same millisecond", OpGe, at, "2026-03-01T12:00:00.000900Z", true},
		{"lt later", OpLt, at, "2026-03-01T12:00:00.001Z", true},
		{"lt same millisecond", OpLt, at, "2026-03-01T12:00:00Z", false},
		{"le same millisecond", OpLe, at, "2026-03-01T12:00:00Z", true},
		{"le earlier", OpLe, at, "2000-01-01T00:00:00Z", false},
		{"pr set", OpPresent, at, "", true},
		{"pr zero", OpPresent, time.Time{}, "", false},
		{"co", OpCo, at, "2026-03-01T12:00:00Z", false},
		{"sw", OpSw, at, "2026-03-01T12:00:00Z", false},
		{"ew", OpEw, at, "2026-03-01T12:00:00Z", false},
		{"eq unparsable", OpEq, at, "yesterday", false},
		{"ne unparsable", OpNe, at, "yesterday", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CompareTimes(tc.op, tc.have, tc.want); got != tc.res {
				t.Errorf("CompareTimes(%s, %v, %q) = %v, want %v", tc.op, tc.have, tc.want, got, tc.res)
			}
		})
	}
}

// TestCompareBool: booleans take eq and ne, in any case; pr always
// matches; nothing else does.
func TestCompareBool(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   Op
		have bool
		want string
		res  bool
	}{
		{"eq true", OpEq, true, "true", true},
		{"eq any case", OpEq, true, "TRUE", true},
		{"eq false", OpEq, false, "False", true},
		{"eq differs", OpEq, true, "false", false},
		{"ne differs", OpNe, false, "true", true},
		{"ne same", OpNe, true, "true", false},
		{"eq not a boolean", OpEq, false, "no", false},
		{"ne not a boolean", OpNe, false, "no", true},
		{"pr", OpPresent, false, "", true},
		{"gt", OpGt, true, "false", false},
		{"ge", OpGe, true, "true", false},
		{"lt", OpLt, false, "true", false},
		{"le", OpLe, true, "true", false},
		{"co", OpCo, true, "t", false},
		{"sw", OpSw, true, "t", false},
		{"ew", OpEw, true, "e", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CompareBool(tc.op, tc.have, tc.want); got != tc.res {
				t.Errorf("CompareBool(%s, %v, %q) = %v, want %v", tc.op, tc.have, tc.want, got, tc.res)
			}
		})
	}
}

// TestMatch evaluates filters on one user: the pseudo-fields by their
// kind, other fields as strings, and the and/or/not structure.
func TestMatch(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	u := User{ID: "U-1", UserName: "Straße", Email: "s@x.test", Active: true, Created: created, Updated: created.Add(time.Hour),
		Extra: map[string]string{"title": "Boss"}}
	eq := func(field, v string, fold bool) Compare { return Compare{Field: field, Op: OpEq, Value: v, Fold: fold} }
	for _, tc := range []struct {
		name string
		f    Filter
		res  bool
	}{
		{"nil matches all", nil, true},
		{"empty and matches all", And{}, true},
		{"empty or matches none", Or{}, false},
		{"user name folded", eq(FieldUserName, "STRASSE", true), true},
		{"user name exact", eq(FieldUserName, "STRASSE", false), false},
		{"id exact", eq(FieldID, "U-1", false), true},
		{"id exact other case", eq(FieldID, "u-1", false), false},
		{"id folded", eq(FieldID, "u-1", true), true},
		{"extra field", Compare{Field: "title", Op: OpSw, Value: "bo", Fold: true}, true},
		{"missing field ne", Compare{Field: "nick_name", Op: OpNe, Value: "x"}, true},
		{"missing field pr", Compare{Field: "nick_name", Op: OpPresent}, false},
		{"active eq", eq(FieldActive, "true", false), true},
		{"active ne", Compare{Field: FieldActive, Op: OpNe, Value: "true"}, false},
		{"active gt", Compare{Field: FieldActive, Op: OpGt, Value: "false"}, false},
		{"active pr", Compare{Field: FieldActive, Op: OpPresent}, true},
		{"created eq", eq(FieldCreated, "2026-03-01T12:00:00Z", false), true},
		{"updated gt created", Compare{Field: FieldUpdated, Op: OpGt, Value: "2026-03-01T12:00:00Z"}, true},
		{"created gt", Compare{Field: FieldCreated, Op: OpGt, Value: "2026-03-01T12:00:00Z"}, false},
		{"and", And{eq(FieldUserName, "strasse", true), eq(FieldActive, "true", false)}, true},
		{"and one false", And{eq(FieldUserName, "strasse", true), eq(FieldActive, "false", false)}, false},
		{"or one true", Or{eq(FieldUserName, "bob", true), eq(FieldEmail, "S@X.TEST", true)}, true},
		{"not", Not{Filter: eq(FieldUserName, "strasse", true)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Match(tc.f, u); got != tc.res {
				t.Errorf("Match(%#v) = %v, want %v", tc.f, got, tc.res)
			}
		})
	}
}
