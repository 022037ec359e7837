package provision

import (
	"strconv"
	"strings"
	"time"
)

// The comparison operators have one implementation, here: Match uses it,
// and so does every other place that evaluates a comparison in memory
// (SCIM's constant type values and its PATCH path filters). Stores that
// push a filter down to their query language give it the same meaning.

// CompareValues reports whether a stored value have satisfies op against
// a filter's value want. A missing value is "". With fold (the attribute
// is case-insensitive) both sides pass NormalizeName first; otherwise the
// comparison is exact. pr matches a value that is not empty; co, sw and ew
// test for a substring, a prefix and a suffix; gt, ge, lt and le compare
// in code point order. An unknown operator matches nothing.
func CompareValues(op Op, have, want string, fold bool) bool {
	if fold {
		have, want = NormalizeName(have), NormalizeName(want)
	}
	switch op {
	case OpPresent:
		return have != ""
	case OpCo:
		return strings.Contains(have, want)
	case OpSw:
		return strings.HasPrefix(have, want)
	case OpEw:
		return strings.HasSuffix(have, want)
	}
	return ordered(op, strings.Compare(have, want))
}

// CompareTimes reports whether a stored time have satisfies op against a
// filter's RFC 3339 value want. Times compare in time order at millisecond
// precision, the best that stores keep. pr matches a time that is set
// (not zero); co, sw and ew, and a want that does not parse, match
// nothing.
func CompareTimes(op Op, have time.Time, want string) bool {
	if op == OpPresent {
		return !have.IsZero()
	}
	w, err := time.Parse(time.RFC3339Nano, want)
	if err != nil {
		return false
	}
	return ordered(op, have.Truncate(time.Millisecond).Compare(w.Truncate(time.Millisecond)))
}

// CompareBool reports whether a stored boolean have satisfies op against
// a filter's value want, "true" or "false" in any case. Booleans take
// only eq and ne (RFC 7644 §3.4.2.2: they have no order); pr always
// matches, as a boolean always has a value, and every other operator
// matches nothing.
func CompareBool(op Op, have bool, want string) bool {
	same := strings.EqualFold(want, strconv.FormatBool(have))
	switch op {
	case OpPresent:
		return true
	case OpEq:
		return same
	case OpNe:
		return !same
	}
	return false
}

// ordered applies an operator to the result of a three-way comparison:
// n is negative, zero or positive as have is below, equal to or above
// want. Operators without an order match nothing.
func ordered(op Op, n int) bool {
	switch op {
	case OpEq:
		return n == 0
	case OpNe:
		return n != 0
	case OpGt:
		return n > 0
	case OpGe:
		return n >= 0
	case OpLt:
		return n < 0
	case OpLe:
		return n <= 0
	}
	return false
}

// Match evaluates f against one user in memory, with the semantics stores
// give it. Stores whose query language is looser than a Compare (an LDAP
// matching rule that ignores case where the filter must not) use it to
// refine what the query returned; it is never a substitute for a query.
func Match(f Filter, u User) bool {
	switch f := f.(type) {
	case nil:
		return true
	case And:
		for _, c := range f {
			if !Match(c, u) {
				return false
			}
		}
		return true
	case Or:
		for _, c := range f {
			if Match(c, u) {
				return true
			}
		}
		return false
	case Not:
		return !Match(f.Filter, u)
	case Compare:
		return matchCompare(f, u)
	}
	return false
}

// matchCompare evaluates one comparison: the pseudo-fields by their kind,
// every other field as a string.
func matchCompare(c Compare, u User) bool {
	switch c.Field {
	case FieldID:
		return CompareValues(c.Op, u.ID, c.Value, c.Fold)
	case FieldActive:
		return CompareBool(c.Op, u.Active, c.Value)
	case FieldCreated:
		return CompareTimes(c.Op, u.Created, c.Value)
	case FieldUpdated:
		return CompareTimes(c.Op, u.Updated, c.Value)
	}
	return CompareValues(c.Op, u.Field(c.Field), c.Value, c.Fold)
}
