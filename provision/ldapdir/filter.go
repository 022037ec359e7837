package ldapdir

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/provision"
)

// SCIM filters are pushed down to the directory so that it answers them
// from its indexes (see the README's recommended indexes), and the result
// is refined exactly in Go with provision.Match. A directory's matching
// rules differ from provision's comparisons (caseIgnoreMatch ignores case
// where an exact comparison must not; provision's fold also drops
// accents, which no LDAP matching rule does), so a comparison cannot
// always be said exactly in LDAP. Each filter is therefore translated
// twice:
//
//   - sup, a filter whose matches include every entry the comparison
//     matches (a superset, refined in Go), and
//   - sub, a filter whose matches are all matched by the comparison (a
//     subset; "(|)", nothing, when none can be said).
//
// A negation needs both: the entries outside a subset include every entry
// outside the comparison, so sup(not f) is (!sub(f)), and sub(not f) is
// (!sup(f)). Negating the superset instead would drop entries the filter
// matches.

const (
	matchAll     = "(objectClass=*)"
	matchNothing = "(|)"
)

// ldapFilter turns a provision filter into an LDAP filter with escaped
// values whose matches are a superset of the filter's; callers refine them
// with provision.Match.
func (s *Store) ldapFilter(f provision.Filter) (string, error) {
	sup, _, err := s.pushDown(f)
	return sup, err
}

// pushDown returns the superset and subset filters of f (see above).
func (s *Store) pushDown(f provision.Filter) (sup, sub string, err error) {
	switch f := f.(type) {
	case nil:
		return matchAll, matchAll, nil
	case provision.And, provision.Or:
		var kids []provision.Filter
		op := "&"
		if a, ok := f.(provision.And); ok {
			kids = a
		} else {
			kids, op = f.(provision.Or), "|"
		}
		var bs, bu strings.Builder
		bs.WriteString("(" + op)
		bu.WriteString("(" + op)
		for _, k := range kids {
			ks, ku, err := s.pushDown(k)
			if err != nil {
				return "", "", err
			}
			bs.WriteString(ks)
			bu.WriteString(ku)
		}
		bs.WriteString(")")
		bu.WriteString(")")
		return bs.String(), bu.String(), nil
	case provision.Not:
		ks, ku, err := s.pushDown(f.Filter)
		if err != nil {
			return "", "", err
		}
		return not(ku), not(ks), nil
	case provision.Compare:
		return s.ldapCompare(f)
	}
	return "", "", fmt.Errorf("%w: filter node %T", provision.ErrUnsupported, f)
}

// not negates a filter, folding the constant ones.
func not(f string) string {
	switch f {
	case matchAll:
		return matchNothing
	case matchNothing:
		return matchAll
	}
	if inner, ok := strings.CutPrefix(f, "(!"); ok {
		return inner[:len(inner)-1] // f is one filter: (!X) ends with X's ")" and its own
	}
	return "(!" + f + ")"
}

// exactly is a comparison said exactly in LDAP: its superset and subset.
func exactly(f string) (string, string, error) { return f, f, nil }

// atLeast is a superset that is not exact.
func atLeast(f string) (string, string, error) { return f, matchNothing, nil }

// negated turns the filters of a comparison into those of its negation
// (ne from eq).
func negated(sup, sub string, err error) (string, string, error) {
	if err != nil {
		return "", "", err
	}
	return not(sub), not(sup), nil
}

func (s *Store) ldapCompare(c provision.Compare) (sup, sub string, err error) {
	switch c.Field {
	case provision.FieldID:
		return s.idCompare(c)
	case provision.FieldActive:
		return s.activeCompare(c)
	case provision.FieldCreated, provision.FieldUpdated:
		attr := s.l.createdAttr()
		if c.Field == provision.FieldUpdated {
			attr = s.l.modifiedAttr()
		}
		return timeCompare(attr, c)
	}
	attr, ok := s.l.readFrom[c.Field]
	if !ok {
		return "", "", fmt.Errorf("%w: the directory has no attribute for %q", provision.ErrUnsupported, c.Field)
	}
	switch c.Op {
	case provision.OpPresent:
		// A directory string is never empty, so holding the attribute is
		// holding a value.
		return exactly("(" + attr + "=*)")
	case provision.OpNe:
		eq := c
		eq.Op = provision.OpEq
		return negated(s.ldapCompare(eq))
	case provision.OpEq, provision.OpCo, provision.OpSw, provision.OpEw:
	default:
		// Most directory string attributes have no ordering rule; an
		// ordering filter would silently match nothing.
		return "", "", fmt.Errorf("%w: %s on %q in a directory", provision.ErrUnsupported, c.Op, c.Field)
	}
	want := c.Value
	// The forms of the value the directory is asked for: the value, and
	// under a fold also the fold itself. The directory's caseIgnore rules
	// then find every value whose fold equals the filter's fold as long as
	// the stored value has no accents or other marks the fold removes
	// (an ASCII value's fold is its lower case), which no LDAP rule can.
	forms := []string{want}
	if c.Fold {
		want = provision.NormalizeName(want)
		if !strings.EqualFold(want, c.Value) {
			forms = append(forms, want)
		}
	}
	if want == "" {
		// Every value starts with, ends with and contains "" (so does a
		// missing one, which compares as ""); eq "" matches the entries
		// without the attribute. Only a scan finds all of them.
		return atLeast(matchAll)
	}
	var alts []string
	for _, v := range forms {
		alts = append(alts, "("+attr+"="+pattern(c.Op, "", v)+")")
	}
	if c.Field == provision.FieldUserName && c.Fold {
		// The entries gatehouse wrote record their name's fold (caseExact),
		// which the directory compares exactly as the fold compares: no
		// accent or case variant of the name escapes it.
		alts = append(alts, "("+s.l.cfg.StateAttribute+"="+pattern(c.Op, stateName, want)+")")
	}
	if len(alts) == 1 {
		return atLeast(alts[0])
	}
	return atLeast("(|" + strings.Join(alts, "") + ")")
}

// pattern is the assertion of an equality or substring filter for the
// value v after the literal prefix: v escaped, with wildcards for co, sw
// and ew. The prefix of a state value stays in the initial part, so that
// the directory's substring index can use it.
func pattern(op provision.Op, prefix, v string) string {
	v = ldap.EscapeFilter(v)
	p := ldap.EscapeFilter(prefix)
	switch op {
	case provision.OpCo:
		return p + "*" + v + "*"
	case provision.OpSw:
		return p + v + "*"
	case provision.OpEw:
		return p + "*" + v
	}
	return p + v
}

// idCompare: the ID is the entry's anchor (entryUUID, or objectGUID on
// Active Directory), which the directory compares by its value, not its
// spelling.
func (s *Store) idCompare(c provision.Compare) (string, string, error) {
	switch c.Op {
	case provision.OpPresent:
		return exactly(matchAll)
	case provision.OpNe:
		eq := c
		eq.Op = provision.OpEq
		return negated(s.idCompare(eq))
	case provision.OpEq:
	default:
		return "", "", fmt.Errorf("%w: ids take only eq and ne", provision.ErrUnsupported)
	}
	f, ok := s.l.anchorFilter(c.Value)
	if !ok {
		return exactly(matchNothing) // not an id this directory can hold
	}
	if !c.Fold && c.Value != strings.ToLower(c.Value) {
		// IDs are read in lower case: an exact comparison with another
		// spelling matches nothing, the directory's would match.
		return atLeast(f)
	}
	return exactly(f)
}

// activeCompare: an entry is inactive when it holds the disabled mark (on
// Active Directory: the disabled bit, unless gatehouse is still enabling
// the account it created, which counts as active while a login may
// finish it: layout.finishable, which the filter cannot say exactly; an
// entry with the bit and the pending mark is checked after the search).
func (s *Store) activeCompare(c provision.Compare) (string, string, error) {
	disabled := "(" + s.l.cfg.DisabledAttribute + "=" + ldap.EscapeFilter(s.l.cfg.DisabledValue) + ")"
	disabledSup, disabledSub := disabled, disabled
	if s.l.ad {
		disabledSup = "(userAccountControl:1.2.840.113556.1.4.803:=2)"
		disabledSub = "(&" + disabledSup + "(!(" + s.l.cfg.StateAttribute + "=" + statePending + ")))"
	}
	switch {
	case c.Op == provision.OpPresent:
		return exactly(matchAll)
	case c.Op != provision.OpEq && c.Op != provision.OpNe:
		return "", "", fmt.Errorf("%w: active takes only eq and ne", provision.ErrUnsupported)
	case !strings.EqualFold(c.Value, "true") && !strings.EqualFold(c.Value, "false"):
		return exactly(matchNothing) // provision.CompareBool: neither value
	case (c.Op == provision.OpEq) == strings.EqualFold(c.Value, "true"):
		return negated(disabledSup, disabledSub, nil)
	default:
		return disabledSup, disabledSub, nil
	}
}

// generalizedTime is the directory's time syntax, in whole seconds.
const generalizedTime = "20060102150405Z"

// timeCompare pushes a date-time comparison down as a range on the
// directory's timestamp (OpenLDAP and 389 DS keep whole seconds; AD's
// whenChanged too). provision.CompareTimes compares at millisecond
// precision, so the bounds round outwards for the superset and inwards
// for the subset.
func timeCompare(attr string, c provision.Compare) (string, string, error) {
	if c.Op == provision.OpPresent {
		return exactly("(" + attr + "=*)")
	}
	t, err := time.Parse(time.RFC3339Nano, c.Value)
	if err != nil {
		return "", "", fmt.Errorf("%w: %q is not a date-time", provision.ErrInvalid, c.Value)
	}
	t = t.UTC().Truncate(time.Millisecond)
	if t.Year() < 1 || t.Year() >= 9999 {
		// Beyond what four-digit generalized time says once rounded.
		return atLeast(matchAll)
	}
	ceilSec := func(u time.Time) time.Time {
		if f := u.Truncate(time.Second); !f.Equal(u) {
			return f.Add(time.Second)
		}
		return u
	}
	floor, ceil := t.Truncate(time.Second), ceilSec(t)
	// A stored time finer than milliseconds still compares as t when it
	// is below t plus a millisecond.
	upTo := ceilSec(t.Add(time.Millisecond))
	ge := func(u time.Time) string { return "(" + attr + ">=" + u.Format(generalizedTime) + ")" }
	le := func(u time.Time) string { return "(" + attr + "<=" + u.Format(generalizedTime) + ")" }
	switch c.Op {
	case provision.OpGt:
		return ge(floor), ge(floor.Add(time.Second)), nil
	case provision.OpGe:
		return ge(floor), ge(ceil), nil
	case provision.OpLt:
		return le(ceil), le(ceil.Add(-time.Second)), nil
	case provision.OpLe:
		return le(upTo), le(floor), nil
	case provision.OpEq, provision.OpNe:
		sup, sub := "(&"+ge(floor)+le(upTo)+")", matchNothing
		if t.Equal(floor) {
			sub = "(&" + ge(t) + le(t) + ")" // exactly that instant
		}
		if c.Op == provision.OpNe {
			return not(sub), not(sup), nil
		}
		return sup, sub, nil
	}
	return "", "", fmt.Errorf("%w: %s on a date-time", provision.ErrUnsupported, c.Op)
}
