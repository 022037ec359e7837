package scim

import (
	"encoding/json"
	"testing"

	filter "github.com/scim2/filter-parser/v2"
)

// TestCompareValueTypes pins how a PATCH value filter compares values
// that are not both strings: a boolean filter value takes eq and ne and
// reads a stored "true" in any case as true; a string filter value
// compares a stored value of another type, or a missing one, as "";
// numbers and null are refused. Case-exact sub-attributes compare
// exactly.
func TestCompareValueTypes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		have      any
		op        filter.CompareOperator
		want      any
		caseExact bool
		res       bool
		err       bool
	}{
		{"bool eq", true, filter.EQ, true, false, true, false},
		{"bool ne", true, filter.NE, false, false, true, false},
		{"bool eq differs", false, filter.EQ, true, false, false, false},
		{"bool missing is false", nil, filter.EQ, false, false, true, false},
		{"bool against string TRUE", "TRUE", filter.EQ, true, false, true, false},
		{"bool against string yes", "yes", filter.EQ, true, false, false, false},
		{"bool against string yes ne", "yes", filter.NE, true, false, true, false},
		{"bool against number", json.Number("1"), filter.EQ, true, false, false, false},
		{"bool gt", true, filter.GT, false, false, false, true},
		{"bool co", true, filter.CO, true, false, false, true},
		{"string against bool", true, filter.EQ, "true", false, false, false},
		{"string against number", json.Number("5"), filter.EQ, "5", false, false, false},
		{"string against number ne", json.Number("5"), filter.NE, "5", false, true, false},
		{"string against missing", nil, filter.EQ, "", false, true, false},
		{"string against missing lt", nil, filter.LT, "a", false, true, false},
		{"case-exact eq", "Alice", filter.EQ, "alice", true, false, false},
		{"case-insensitive eq", "Alice", filter.EQ, "alice", false, true, false},
		{"case-exact sharp s", "straße", filter.EQ, "STRASSE", true, false, false},
		{"case-insensitive sharp s", "straße", filter.EQ, "STRASSE", false, true, false},
		{"case-exact order", "B", filter.GT, "a", true, false, false},
		{"case-insensitive order", "B", filter.GT, "a", false, true, false},
		{"integer", "5", filter.EQ, 5, false, false, true},
		{"float", "1.5", filter.GT, 1.5, false, false, true},
		{"null", "x", filter.EQ, nil, false, false, true},
		{"unknown operator", "x", filter.CompareOperator("xx"), "x", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := compareValue(tc.have, tc.op, tc.want, tc.caseExact)
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			if e, ok := err.(*Error); err != nil && (!ok || e.Type != "invalidFilter") {
				t.Errorf("error %v is not an invalidFilter", err)
			}
			if got != tc.res {
				t.Errorf("compareValue(%#v, %s, %#v, caseExact %v) = %v, want %v", tc.have, tc.op, tc.want, tc.caseExact, got, tc.res)
			}
		})
	}
}

// TestConstCompare pins the comparison of a multi-valued attribute's type
// with a filter value: folded as NormalizeName folds, eq, ne, co, sw, ew
// and pr only, strings only.
func TestConstCompare(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   filter.CompareOperator
		want any
		res  bool
		err  bool
	}{
		{"eq", filter.EQ, "WORK", true, false},
		{"eq accent", filter.EQ, "wörk", true, false},
		{"eq other", filter.EQ, "home", false, false},
		{"ne", filter.NE, "home", true, false},
		{"co", filter.CO, "OR", true, false},
		{"sw", filter.SW, "Wo", true, false},
		{"ew", filter.EW, "RK", true, false},
		{"ew miss", filter.EW, "wo", false, false},
		{"pr", filter.PR, nil, true, false},
		{"gt", filter.GT, "a", false, true},
		{"ge", filter.GE, "a", false, true},
		{"lt", filter.LT, "z", false, true},
		{"le", filter.LE, "z", false, true},
		{"boolean", filter.EQ, true, false, true},
		{"number", filter.EQ, 5, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := constCompare("work", tc.op, tc.want)
			if (err != nil) != tc.err || got != tc.res {
				t.Errorf("constCompare(work, %s, %#v) = %v, %v; want %v, error %v", tc.op, tc.want, got, err, tc.res, tc.err)
			}
		})
	}
}
