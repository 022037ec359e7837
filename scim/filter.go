package scim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	filter "github.com/scim2/filter-parser/v2"

	"gatehouse/provision"
)

// Error is a SCIM error response (RFC 7644 §3.12).
type Error struct {
	Status int
	Type   string // scimType; empty when the status says it all
	Detail string
}

func (e *Error) Error() string { return fmt.Sprintf("scim %d %s: %s", e.Status, e.Type, e.Detail) }

func badValue(format string, args ...any) *Error {
	return &Error{Status: 400, Type: "invalidValue", Detail: fmt.Sprintf(format, args...)}
}

func badFilter(format string, args ...any) *Error {
	return &Error{Status: 400, Type: "invalidFilter", Detail: fmt.Sprintf(format, args...)}
}

// MaxFilterLen bounds a filter's length before it is parsed.
const MaxFilterLen = 4096

// entraValuePath matches Entra ID's non-RFC form
// `emails[type eq "work"].value eq "x"`: a value path followed by a
// sub-attribute and a comparison.
var entraValuePath = regexp.MustCompile(`(?i)([a-z][a-z0-9_$-]*)\[([^\[\]"]*(?:"(?:[^"\\]|\\.)*"[^\[\]"]*)*)\]\.([a-z][a-z0-9_$-]*)\s+(pr\b|(?:eq|ne|co|sw|ew|gt|ge|lt|le)\s+(?:"(?:[^"\\]|\\.)*"|true|false|null|[-+0-9.eE]+))`)

// rewriteEntra turns `a[f].b op v` into the RFC form `a[f and b op v]`.
func rewriteEntra(s string) string {
	return entraValuePath.ReplaceAllString(s, `$1[$2 and $3 $4]`)
}

// parseFilter parses a SCIM filter for rt and maps it onto store fields.
func (s *Server) parseFilter(rt *resourceType, raw string) (provision.Filter, error) {
	if len(raw) > MaxFilterLen {
		return nil, badFilter("filter is longer than %d bytes", MaxFilterLen)
	}
	if !plainText(raw) {
		return nil, badFilter("a filter is UTF-8 text without NUL characters")
	}
	if s.cfg.quirks() {
		raw = rewriteEntra(raw)
	}
	expr, err := parseExpr(raw)
	if err != nil {
		return nil, badFilter("filter does not parse: %v", err)
	}
	f, err := toFilter(rt, expr)
	if err != nil {
		return nil, err
	}
	return simplify(f), nil
}

// plainText reports whether s is text a store can hold and compare: valid
// UTF-8 without NUL (which PostgreSQL refuses in text, and C strings end
// at). What a URL carries is not checked by the body reader.
func plainText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// parseExpr guards the parser: a panic on hostile input is a syntax error.
func parseExpr(raw string) (e filter.Expression, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("malformed filter")
		}
	}()
	e, err = filter.ParseFilter([]byte(raw))
	if err == nil && e == nil {
		err = fmt.Errorf("empty filter")
	}
	if err != nil {
		err = fmt.Errorf("malformed filter")
	}
	return e, err
}

var (
	matchAll  provision.Filter = provision.And{}
	matchNone provision.Filter = provision.Or{}
)

func toFilter(rt *resourceType, e filter.Expression) (provision.Filter, error) {
	return mapExpr(e, func(leaf filter.Expression) (provision.Filter, error) {
		switch leaf := leaf.(type) {
		case *filter.AttributeExpression:
			v, err := unescape(leaf.CompareValue)
			if err != nil {
				return nil, err
			}
			return attrFilter(rt, leaf.AttributePath, "", leaf.Operator, v)
		case *filter.ValuePath:
			return valuePathFilter(rt, leaf)
		}
		return nil, badFilter("unsupported filter expression")
	})
}

// mapExpr maps the and/or/not structure of a parsed filter and hands every
// other node to leaf.
func mapExpr(e filter.Expression, leaf func(filter.Expression) (provision.Filter, error)) (provision.Filter, error) {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		l, err := mapExpr(e.Left, leaf)
		if err != nil {
			return nil, err
		}
		r, err := mapExpr(e.Right, leaf)
		if err != nil {
			return nil, err
		}
		if e.Operator == filter.AND {
			return provision.And{l, r}, nil
		}
		return provision.Or{l, r}, nil
	case *filter.NotExpression:
		f, err := mapExpr(e.Expression, leaf)
		if err != nil {
			return nil, err
		}
		return provision.Not{Filter: f}, nil
	}
	return leaf(e)
}

// attrFilter maps one comparison. slot, when set, fixes the type of a
// multi-valued attribute (inside a value path).
func attrFilter(rt *resourceType, p filter.AttributePath, slot string, op filter.CompareOperator, v any) (provision.Filter, error) {
	_, a := rt.lookup(p.URI(), p.AttributeName)
	if a == nil {
		return nil, badFilter("unknown attribute %q", p.String())
	}
	sub := p.SubAttributeName()
	switch {
	case a == attrID:
		return compare(provision.FieldID, op, v, true, "string")
	case a == attrExternalID:
		return compare(provision.FieldExternalID, op, v, true, "string")
	case a == attrMeta:
		switch strings.ToLower(sub) {
		case "created":
			return compare(provision.FieldCreated, op, v, true, "dateTime")
		case "lastmodified":
			return compare(provision.FieldUpdated, op, v, true, "dateTime")
		}
		return nil, badFilter("meta.%s cannot be filtered", sub)
	case a.name == "active":
		return compare(provision.FieldActive, op, v, true, "boolean")
	case a.name == "members":
		if sub != "" && !strings.EqualFold(sub, "value") {
			return nil, badFilter("members.%s cannot be filtered", sub)
		}
		if op != filter.EQ {
			return nil, badFilter("members take only eq")
		}
		return compare(provision.FieldMember, op, v, true, "string")
	case a.slots != nil:
		if sub == "" {
			sub = "value"
		}
		return slotFilter(a, slot, sub, op, v)
	case a.typ == "complex" && a.field != "":
		if sub != "" && !strings.EqualFold(sub, "value") {
			return nil, badFilter("%s.%s cannot be filtered", a.name, sub)
		}
		return compare(a.field, op, v, true, "string")
	case a.typ == "complex":
		s := a.subAttr(sub)
		if s == nil {
			return nil, badFilter("unknown attribute %q", p.String())
		}
		return compare(s.field, op, v, s.caseExact, s.typ)
	case a.field != "":
		if sub != "" {
			return nil, badFilter("%s has no sub-attributes", a.name)
		}
		return compare(a.field, op, v, a.caseExact, a.typ)
	}
	return nil, badFilter("%q cannot be filtered", p.String())
}

// slotFilter maps a comparison on a multi-valued attribute: any typed slot
// may match, or only the fixed one inside a value path. The type
// sub-attribute is known from the slot, so it compares as a constant.
func slotFilter(a *attr, fixed, sub string, op filter.CompareOperator, v any) (provision.Filter, error) {
	types := a.types
	if fixed != "" {
		types = []string{fixed}
	}
	if strings.EqualFold(sub, "type") {
		var anyOf provision.Or
		for _, t := range types {
			ok, err := constCompare(t, op, v)
			if err != nil {
				return nil, err
			}
			if ok {
				anyOf = append(anyOf, slotPresent(a, t))
			}
		}
		return anyOf, nil
	}
	sa := a.subAttr(sub)
	if sa == nil || strings.EqualFold(sub, "primary") {
		return nil, badFilter("%s.%s cannot be filtered", a.name, sub)
	}
	var anyOf provision.Or
	for _, t := range types {
		f, ok := a.slots[t][sa.name]
		if !ok {
			continue
		}
		c, err := compare(f, op, v, sa.caseExact, "string")
		if err != nil {
			return nil, err
		}
		anyOf = append(anyOf, c)
	}
	return anyOf, nil
}

// slotPresent matches when any sub-attribute of slot t has a value.
func slotPresent(a *attr, t string) provision.Filter {
	var anyOf provision.Or
	for _, f := range a.slots[t] {
		anyOf = append(anyOf, provision.Compare{Field: f, Op: provision.OpPresent})
	}
	return anyOf
}

// constCompare evaluates a comparison against a known type value. Types
// are case-insensitive and have no order: gt, ge, lt and le are refused.
func constCompare(have string, op filter.CompareOperator, v any) (bool, error) {
	o, err := toOp(op)
	if err != nil {
		return false, err
	}
	if o == provision.OpPresent {
		return true, nil
	}
	want, ok := v.(string)
	if !ok {
		return false, badFilter("type compares with a string")
	}
	switch o {
	case provision.OpGt, provision.OpGe, provision.OpLt, provision.OpLe:
		return false, badFilter("type takes eq, ne, co, sw, ew or pr")
	}
	return provision.CompareValues(o, have, want, true), nil
}

func valuePathFilter(rt *resourceType, vp *filter.ValuePath) (provision.Filter, error) {
	_, a := rt.lookup(vp.AttributePath.URI(), vp.AttributePath.AttributeName)
	if a == nil {
		return nil, badFilter("unknown attribute %q", vp.AttributePath.String())
	}
	if vp.AttributePath.SubAttribute != nil {
		return nil, badFilter("a value path filters a multi-valued attribute, not %q", vp.AttributePath.String())
	}
	switch {
	case a.name == "members":
		return inner(vp.ValueFilter, func(p filter.AttributePath, op filter.CompareOperator, v any) (provision.Filter, error) {
			return attrFilter(rt, filter.AttributePath{AttributeName: "members", SubAttribute: &p.AttributeName}, "", op, v)
		})
	case a.slots != nil:
		// The same element must satisfy the whole inner filter: evaluate
		// it once per typed slot and accept any slot.
		var anyOf provision.Or
		for _, t := range a.types {
			f, err := inner(vp.ValueFilter, func(p filter.AttributePath, op filter.CompareOperator, v any) (provision.Filter, error) {
				if p.SubAttribute != nil || p.URIPrefix != nil {
					return nil, badFilter("inside [ ] name a sub-attribute of %s", a.name)
				}
				return slotFilter(a, t, p.AttributeName, op, v)
			})
			if err != nil {
				return nil, err
			}
			anyOf = append(anyOf, f)
		}
		return anyOf, nil
	}
	return nil, badFilter("%s is not multi-valued", a.name)
}

// inner maps a value filter (no nested value paths) with leaf mapping fn.
func inner(e filter.Expression, fn func(filter.AttributePath, filter.CompareOperator, any) (provision.Filter, error)) (provision.Filter, error) {
	return mapExpr(e, func(leaf filter.Expression) (provision.Filter, error) {
		ae, ok := leaf.(*filter.AttributeExpression)
		if !ok {
			return nil, badFilter("value paths do not nest")
		}
		v, err := unescape(ae.CompareValue)
		if err != nil {
			return nil, err
		}
		return fn(ae.AttributePath, ae.Operator, v)
	})
}

// compare builds one comparison, checking the value's type against the
// attribute's (RFC 7644 §3.4.2.2: no ordering on booleans).
func compare(field string, op filter.CompareOperator, v any, caseExact bool, typ string) (provision.Filter, error) {
	o, err := toOp(op)
	if err != nil {
		return nil, err
	}
	if o == provision.OpPresent {
		return provision.Compare{Field: field, Op: o}, nil
	}
	switch typ {
	case "boolean":
		b, ok := v.(bool)
		if !ok {
			return nil, badFilter("%s compares with true or false", field)
		}
		if o != provision.OpEq && o != provision.OpNe {
			return nil, badFilter("%s on a boolean attribute", o)
		}
		return provision.Compare{Field: field, Op: o, Value: fmt.Sprint(b)}, nil
	case "dateTime":
		s, ok := v.(string)
		if !ok {
			return nil, badFilter("date-times compare with a quoted value")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, badFilter("%q is not an RFC 3339 date-time", s)
		}
		if o == provision.OpCo || o == provision.OpSw || o == provision.OpEw {
			return nil, badFilter("%s on a date-time", o)
		}
		return provision.Compare{Field: field, Op: o, Value: t.UTC().Format(time.RFC3339Nano)}, nil
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	case nil:
		return nil, badFilter("compare with pr instead of null")
	default:
		return nil, badFilter("%s compares with a string", field)
	}
	if o == provision.OpEq && s == "" {
		return provision.Not{Filter: provision.Compare{Field: field, Op: provision.OpPresent}}, nil
	}
	if o == provision.OpNe && s == "" {
		return provision.Compare{Field: field, Op: provision.OpPresent}, nil
	}
	return provision.Compare{Field: field, Op: o, Value: s, Fold: !caseExact}, nil
}

// compareOps maps the parser's comparison operators onto provision's,
// which evaluates them (provision.CompareValues and its kin).
var compareOps = map[filter.CompareOperator]provision.Op{
	filter.EQ: provision.OpEq, filter.NE: provision.OpNe,
	filter.CO: provision.OpCo, filter.SW: provision.OpSw, filter.EW: provision.OpEw,
	filter.GT: provision.OpGt, filter.GE: provision.OpGe, filter.LT: provision.OpLt, filter.LE: provision.OpLe,
	filter.PR: provision.OpPresent,
}

// toOp maps one operator, named in any case as the RFC allows; anything
// else is an invalid filter.
func toOp(op filter.CompareOperator) (provision.Op, error) {
	if o, ok := compareOps[filter.CompareOperator(strings.ToLower(string(op)))]; ok {
		return o, nil
	}
	return "", badFilter("unknown operator %q", op)
}

// simplify folds the constants (empty And = true, empty Or = false) and
// flattens single-child nodes.
func simplify(f provision.Filter) provision.Filter {
	switch f := f.(type) {
	case provision.And:
		return fold(f, isAll, isNone, func(k []provision.Filter) provision.Filter { return provision.And(k) })
	case provision.Or:
		return fold(f, isNone, isAll, func(k []provision.Filter) provision.Filter { return provision.Or(k) })
	case provision.Not:
		c := simplify(f.Filter)
		switch {
		case isAll(c):
			return matchNone
		case isNone(c):
			return matchAll
		}
		return provision.Not{Filter: c}
	}
	return f
}

func isAll(f provision.Filter) bool  { a, ok := f.(provision.And); return ok && len(a) == 0 }
func isNone(f provision.Filter) bool { o, ok := f.(provision.Or); return ok && len(o) == 0 }

// fold simplifies an And or Or: identity children drop out, an absorbing
// child decides the whole node, and a single remaining child stands alone.
func fold(kids []provision.Filter, identity, absorbing func(provision.Filter) bool, build func([]provision.Filter) provision.Filter) provision.Filter {
	out := []provision.Filter{}
	for _, c := range kids {
		c = simplify(c)
		if absorbing(c) {
			return c
		}
		if !identity(c) {
			out = append(out, c)
		}
	}
	if len(out) == 1 {
		return out[0]
	}
	return build(out)
}

// unescape decodes a string compare value: the parser hands over the text
// between the quotes with its JSON escapes (\" and \\) still in place.
func unescape(v any) (any, error) {
	s, ok := v.(string)
	if !ok || !strings.Contains(s, `\`) {
		return v, nil
	}
	var out string
	if err := json.Unmarshal([]byte(`"`+s+`"`), &out); err != nil {
		return nil, badFilter("a quoted value has a bad escape")
	}
	return out, nil
}
