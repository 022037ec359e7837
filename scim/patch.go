package scim

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	filter "github.com/scim2/filter-parser/v2"

	"gatehouse/provision"
)

// patcher applies PATCH operations (RFC 7644 §3.5.2) to a resource object.
// It never writes: the caller decodes the result, which validates it, and
// stores it in one conditional write, so a PATCH is all or nothing.
type patcher struct {
	rt     *resourceType
	id     string // the resource's id: an "id" equal to it in a value is ignored
	quirks bool
	// member decodes one element of a group's members as a create does
	// (decoder.member); nil for users. A remove checks its elements
	// with it, as an add's are checked when the result is decoded.
	member func(el any) (string, error)
}

// operation is one decoded PATCH operation.
type operation struct {
	op    string // add, remove, replace
	path  string
	value any
	has   bool // value was given
}

func noTarget(format string, args ...any) *Error {
	return &Error{Status: 400, Type: "noTarget", Detail: fmt.Sprintf(format, args...)}
}

func badPath(format string, args ...any) *Error {
	return &Error{Status: 400, Type: "invalidPath", Detail: fmt.Sprintf(format, args...)}
}

func mutability(format string, args ...any) *Error {
	return &Error{Status: 400, Type: "mutability", Detail: fmt.Sprintf(format, args...)}
}

// parseOps reads the Operations of a PatchOp body.
func (p *patcher) parseOps(body map[string]any) ([]operation, error) {
	if err := checkMessage(body, URNPatch, p.quirks); err != nil {
		return nil, err
	}
	raw, _ := get(body, "Operations")
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return nil, &Error{Status: 400, Type: "invalidSyntax", Detail: "Operations must be a non-empty array"}
	}
	if len(list) > MaxOperations {
		return nil, &Error{Status: 400, Type: "invalidSyntax", Detail: fmt.Sprintf("at most %d operations", MaxOperations)}
	}
	ops := make([]operation, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, &Error{Status: 400, Type: "invalidSyntax", Detail: fmt.Sprintf("Operations[%d] must be an object", i)}
		}
		var o operation
		opv, _ := get(m, "op")
		o.op, _ = opv.(string)
		// Entra ID capitalises op; its documentation asks servers not to
		// match structural names case-sensitively, and the RFC names
		// attributes case-insensitively anyway.
		o.op = strings.ToLower(o.op)
		if o.op != "add" && o.op != "remove" && o.op != "replace" {
			return nil, &Error{Status: 400, Type: "invalidSyntax", Detail: fmt.Sprintf("Operations[%d].op must be add, remove or replace", i)}
		}
		if pv, ok := get(m, "path"); ok && pv != nil {
			if o.path, ok = pv.(string); !ok {
				return nil, badPath("Operations[%d].path must be a string", i)
			}
		}
		o.value, o.has = get(m, "value")
		if !o.has && o.op != "remove" {
			// RFC 7644 §3.5.2.1 and §3.5.2.3: add and replace carry a
			// value. Without one, a replace would read as unassign.
			return nil, &Error{Status: 400, Type: "invalidSyntax", Detail: fmt.Sprintf("Operations[%d] (%s) needs a value", i, o.op)}
		}
		ops = append(ops, o)
	}
	return ops, nil
}

// MaxOperations bounds the operations of one PATCH.
const MaxOperations = 1000

// applyAll applies ops in order; the first failure stops it.
func (p *patcher) applyAll(doc map[string]any, ops []operation) error {
	for _, o := range ops {
		if err := p.apply(doc, o); err != nil {
			return err
		}
	}
	return nil
}

// apply applies one operation to doc.
func (p *patcher) apply(doc map[string]any, o operation) error {
	return p.walk(o, p.writesTo(doc))
}

// writes receives the writes one operation resolves to: an operation at
// one attribute path, and the clearing of a whole extension. Applying an
// operation and naming the fields it writes walk it with the same code
// (walk), so that no form of it can be read one way by one and another
// way by the other.
type writes struct {
	at    func(op, path string, v any, has bool) error
	clear func(sc *schema)
}

// writesTo returns the writes that apply each one to doc.
func (p *patcher) writesTo(doc map[string]any) writes {
	return writes{
		at:    func(op, path string, v any, has bool) error { return p.at(doc, op, path, v, has) },
		clear: func(sc *schema) { del(doc, sc.id) },
	}
}

// walk resolves an operation into its writes and hands them to w in the
// order they apply: each key of a path-less value, and the attributes of a
// schema URN path or key.
func (p *patcher) walk(o operation, w writes) error {
	if o.path == "" || p.schemaNamed(o.path) != nil {
		// Several writes: no two may name one attribute (twice.go).
		w = p.once(w)
	}
	if o.path == "" {
		if o.op == "remove" {
			return noTarget("remove needs a path")
		}
		obj, ok := o.value.(map[string]any)
		if !ok {
			return badValue("%s without a path needs an object value", o.op)
		}
		for k, v := range obj {
			if err := p.pathless(w, o.op, k, v); err != nil {
				return err
			}
		}
		return nil
	}
	if sc := p.schemaNamed(o.path); sc != nil {
		return p.wholeSchema(w, o, sc)
	}
	return w.at(o.op, o.path, o.value, o.has)
}

// schemaNamed returns the schema of rt whose URN is the whole of path, or
// nil.
func (p *patcher) schemaNamed(path string) *schema {
	for _, sc := range p.rt.schemas() {
		if strings.EqualFold(path, sc.id) {
			return sc
		}
	}
	return nil
}

// wholeSchema resolves an operation whose path is a schema URN: it names
// every attribute of that schema (RFC 7644 §3.5.2). Add and replace set
// the attributes of an object value and leave the others; remove clears
// an extension. The core schema cannot be removed: it holds userName.
func (p *patcher) wholeSchema(w writes, o operation, sc *schema) error {
	if o.op == "remove" {
		switch {
		case o.has && o.value != nil:
			return badValue("remove takes a path, not a value")
		case sc == p.rt.core:
			return badPath("remove cannot name the core schema %s; name its attributes", sc.id)
		}
		for _, a := range sc.attrs {
			if a.mutability == "readOnly" || a.mutability == "immutable" {
				return mutability("%s holds %s, which cannot be removed", sc.id, a.name)
			}
		}
		w.clear(sc)
		return nil
	}
	obj, ok := o.value.(map[string]any)
	if !ok {
		return badValue("%s of %s needs an object value", o.op, sc.id)
	}
	return p.schemaObject(w, o.op, sc, obj)
}

// schemaObject resolves an add or replace of the attributes of one
// schema, given as an object: the value of a schema URN path, or of a
// schema URN key in a path-less value.
func (p *patcher) schemaObject(w writes, op string, sc *schema, obj map[string]any) error {
	for k, v := range obj {
		var err error
		switch {
		case sc != p.rt.core:
			err = w.at(op, sc.id+":"+k, v, true)
		case strings.HasPrefix(strings.ToLower(k), "urn:"):
			// A schema's attributes hold no other schema.
			err = badValue("%s holds no schema; %s belongs beside it", sc.id, k)
		default:
			// The core attributes, and the common ones (externalId),
			// as in a path-less value.
			err = p.pathless(w, op, k, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// pathless resolves one key of a path-less add or replace.
func (p *patcher) pathless(w writes, op, k string, v any) error {
	switch {
	case strings.EqualFold(k, "schemas"), strings.EqualFold(k, "meta"):
		return nil
	case strings.EqualFold(k, "id"):
		if s, _ := v.(string); s == p.id {
			return nil // Okta repeats the id in a group rename
		}
		return mutability("id cannot be changed")
	}
	if sc := p.schemaNamed(k); sc != nil {
		sub, ok := v.(map[string]any)
		if !ok {
			return badValue("%s must be an object", sc.id)
		}
		return p.schemaObject(w, op, sc, sub)
	}
	// Entra ID sends path-less replaces whose keys are paths
	// ("name.givenName", "urn:...:employeeNumber"): apply each as a path.
	// A plain attribute name is the one-segment case of the same rule.
	return w.at(op, k, v, true)
}

// target is a resolved PATCH path.
type target struct {
	container map[string]any // doc, or the extension object
	sc        *schema        // the schema holding a (the core one for the common attributes)
	a         *attr
	filter    filter.Expression // value filter, or nil
	sub       string            // sub-attribute (after the filter, or of a complex attribute)
}

// resolve resolves a PATCH path against doc. It returns nil and no error
// for a path the store has no place for but RFC 7643 defines (password,
// roles, an attribute schema.keep dropped), which is ignored as on create
// and replace; a path naming no attribute of a schema the server declares
// is a typo, refused with invalidPath.
func (p *patcher) resolve(doc map[string]any, path string, create bool) (*target, error) {
	urn, rest := p.rt.splitURN(path)
	if urn == "" && strings.HasPrefix(strings.ToLower(path), "urn:") {
		// A standard schema this store keeps nothing of: its
		// attributes are known, and ignored (typos are not).
		if std, stdRest := p.rt.standardURN(path); std != "" {
			return nil, p.unkept(path, std, stdRest)
		}
		if slices.ContainsFunc(p.rt.rfcSchemas(), func(id string) bool { return strings.EqualFold(id, path) }) {
			return nil, nil
		}
		// A schema the server does not declare. Entra ID sends the
		// custom extension attributes an admin mapped in the Entra
		// portal (urn:ietf:params:scim:schemas:extension:<name>:2.0:User),
		// which this server may not have: quirks mode ignores them.
		if p.quirks {
			return nil, nil
		}
		return nil, badPath("path %s names a schema this server does not declare; see /Schemas", quoteKey(path))
	}
	parsed, err := parsePath(rest)
	if err != nil {
		return nil, badPath("path %q does not parse", path)
	}
	if parsed.AttributePath.URIPrefix != nil {
		return nil, badPath("path %q names an unknown schema", path)
	}
	if urn != "" && strings.EqualFold(urn, p.rt.core.id) && isCommonAttr(parsed.AttributePath.AttributeName) {
		// id, externalId and meta belong to every resource (RFC 7643
		// §3.1), to no schema: under the core URN they name nothing,
		// and ignoring them would answer 200 and write nothing.
		return nil, badPath("path %s: %s is a common attribute, not one of the %s schema; give it without the URN", quoteKey(path), parsed.AttributePath.AttributeName, urn)
	}
	sc, a := p.rt.lookup(urn, parsed.AttributePath.AttributeName)
	if a == nil {
		return nil, p.unkept(path, urn, rest)
	}
	if a == attrID || a == attrMeta || a.mutability == "readOnly" {
		return nil, mutability("%s is read-only", a.name)
	}
	t := &target{container: doc, sc: sc, a: a, filter: parsed.ValueExpression}
	if sc != nil && sc != p.rt.core {
		v, _ := get(doc, sc.id)
		m, ok := v.(map[string]any)
		if !ok {
			m = map[string]any{}
			if create {
				set(doc, sc.id, m)
			}
		}
		t.container = m
	}
	switch {
	case parsed.AttributePath.SubAttribute != nil && parsed.ValueExpression != nil:
		return nil, badPath("path %q has a sub-attribute before a filter", path)
	case parsed.AttributePath.SubAttribute != nil:
		t.sub = *parsed.AttributePath.SubAttribute
	case parsed.SubAttribute != nil:
		t.sub = *parsed.SubAttribute
	}
	if t.sub != "" {
		s := a.subAttr(t.sub)
		if s == nil && p.rt.rfcDefined(sc.id, a.name, t.sub) {
			return nil, nil // defined by RFC 7643, not kept by this store: ignored
		}
		if s == nil {
			return nil, badPath("%s has no sub-attribute %q", a.name, t.sub)
		}
		if s.mutability == "readOnly" {
			return nil, mutability("%s.%s is read-only", a.name, s.name)
		}
		t.sub = s.name
	}
	if t.filter != nil && !a.multi {
		return nil, badPath("%s is not multi-valued; it takes no filter", a.name)
	}
	return t, nil
}

// unkept answers a path (rest, under the schema urn or unqualified) that
// names no attribute this store keeps: nil, so that it is ignored, when
// RFC 7643 defines the attribute (and sub-attribute); else invalidPath,
// since a name no declared schema defines is a typo (nmae.givenName,
// userNme) that would otherwise answer 200 and change nothing.
func (p *patcher) unkept(path, urn, rest string) error {
	parsed, err := parsePath(rest)
	if err != nil {
		return badPath("path %s does not parse", quoteKey(path))
	}
	sub := ""
	switch {
	case parsed.AttributePath.SubAttribute != nil:
		sub = *parsed.AttributePath.SubAttribute
	case parsed.SubAttribute != nil:
		sub = *parsed.SubAttribute
	}
	if parsed.AttributePath.URIPrefix == nil && p.rt.rfcReadOnly(urn, parsed.AttributePath.AttributeName) {
		// Not kept, but not the client's to write either (a user's
		// groups): refused as a kept read-only attribute is.
		return mutability("%s is read-only", parsed.AttributePath.AttributeName)
	}
	if parsed.AttributePath.URIPrefix == nil && p.rt.rfcDefined(urn, parsed.AttributePath.AttributeName, sub) {
		// The server does not keep this attribute (password, roles,
		// one the store has no field for): ignored, as on create.
		return nil
	}
	return badPath("path %s names no attribute of the %s schemas; see /Schemas", quoteKey(path), p.rt.name)
}

// checkSubKeys refuses a key of a complex value (an element of a
// multi-valued attribute, or a singular complex attribute's object) that
// names no sub-attribute of a: a typo, like an unknown path. A
// sub-attribute RFC 7643 defines that the store does not keep passes, and
// is ignored when the result is decoded.
func (p *patcher) checkSubKeys(sc *schema, a *attr, obj map[string]any) error {
	for k := range obj {
		if a.subAttr(k) == nil && !p.rt.rfcDefined(sc.id, a.name, k) {
			return badPath("%s has no sub-attribute %s; see /Schemas", a.name, quoteKey(k))
		}
	}
	return nil
}

// parsePath guards the path parser against panics on hostile input.
func parsePath(s string) (p filter.Path, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed path")
		}
	}()
	if s == "" {
		return p, fmt.Errorf("empty path")
	}
	return filter.ParsePath([]byte(s))
}

func (p *patcher) at(doc map[string]any, op, path string, v any, has bool) error {
	t, err := p.resolve(doc, path, op != "remove")
	if err != nil {
		return err
	}
	if t == nil {
		// An attribute RFC 7643 defines that this store does not keep
		// (password, an unmapped one), or in quirks mode one of a schema
		// the server does not declare: ignored, as on create and replace.
		return nil
	}
	if t.filter != nil {
		return p.filtered(t, op, v)
	}
	key := t.a.name
	if op == "remove" {
		return p.remove(t, v, has)
	}
	if v == nil {
		// null is unassigned (RFC 7643 §2.5).
		return p.remove(t, nil, false)
	}
	if t.sub == "" {
		// A sub-attribute's value is that sub-attribute's own.
		v = p.coerce(t.a, v)
	}
	if t.sub != "" {
		if t.a.multi {
			return badPath("name an element of %s with a filter, e.g. %s[type eq \"work\"].%s", key, key, t.sub)
		}
		m, _ := get(t.container, key)
		obj, ok := m.(map[string]any)
		if !ok {
			obj = map[string]any{}
		}
		set(obj, t.sub, v)
		set(t.container, key, obj)
		return nil
	}
	switch {
	case t.a.multi:
		list, ok := v.([]any)
		if !ok {
			list = []any{v}
		}
		for _, el := range list {
			if m, ok := el.(map[string]any); ok {
				if err := p.checkSubKeys(t.sc, t.a, m); err != nil {
					return err
				}
			}
		}
		if op == "replace" {
			set(t.container, key, list)
			return nil
		}
		cur, _ := get(t.container, key)
		have, _ := cur.([]any)
		for _, el := range list {
			if !containsElement(have, el) {
				have = append(have, el)
			}
		}
		set(t.container, key, have)
	case t.a.typ == "complex":
		obj, ok := v.(map[string]any)
		if !ok {
			return badValue("%s must be an object", key)
		}
		if err := p.checkSubKeys(t.sc, t.a, obj); err != nil {
			return err
		}
		cur, _ := get(t.container, key)
		merged, ok := cur.(map[string]any)
		if !ok {
			merged = map[string]any{}
		}
		for k, sv := range obj {
			s := t.a.subAttr(k)
			if s == nil {
				continue
			}
			if s.mutability == "readOnly" {
				continue
			}
			set(merged, s.name, sv)
		}
		set(t.container, key, merged)
	default:
		set(t.container, key, v)
	}
	return nil
}

// coerce applies the quirks for values of the wrong shape: a singular
// complex attribute given as a one-element array or as a bare string
// (Entra ID's manager).
func (p *patcher) coerce(a *attr, v any) any {
	if !p.quirks || a.multi || a.typ != "complex" {
		return v
	}
	if list, ok := v.([]any); ok && len(list) == 1 {
		v = list[0]
	}
	if s, ok := v.(string); ok && a.subAttr("value") != nil {
		return map[string]any{"value": s}
	}
	return v
}

func (p *patcher) remove(t *target, v any, has bool) error {
	key := t.a.name
	if t.sub != "" {
		cur, _ := get(t.container, key)
		if obj, ok := cur.(map[string]any); ok {
			del(obj, t.sub)
			if len(obj) == 0 {
				del(t.container, key)
			}
		}
		return nil
	}
	if has && v != nil {
		// Entra ID removes members with a value array and no filter; it
		// means those elements only, never the whole attribute. That is
		// unambiguous, so strict mode takes it too.
		list, ok := v.([]any)
		if !t.a.multi || !ok {
			return badValue("remove takes a path, or for a multi-valued attribute an array of the values to remove")
		}
		if err := p.checkElements(t, list); err != nil {
			return err
		}
		cur, _ := get(t.container, key)
		have, _ := cur.([]any)
		var keep []any
		for _, el := range have {
			if !containsElement(list, el) {
				keep = append(keep, el)
			}
		}
		set(t.container, key, keep)
		return nil
	}
	del(t.container, key)
	return nil
}

// checkElements refuses the elements of a remove's value array that an
// add of them would refuse: one that is not an object, has a key no
// schema defines, or (a member) names no user ID. Skipped, they would
// remove nothing and answer success.
func (p *patcher) checkElements(t *target, list []any) error {
	for _, el := range list {
		m, ok := el.(map[string]any)
		if ok {
			if err := p.checkSubKeys(t.sc, t.a, m); err != nil {
				return err
			}
		}
		if p.member != nil && t.sc == p.rt.core && t.a.name == "members" {
			if _, err := p.member(el); err != nil {
				return err
			}
			continue
		}
		if !ok {
			return badValue("each of %s must be an object", t.a.name)
		}
	}
	return nil
}

// filtered applies an operation to the elements a value filter selects.
func (p *patcher) filtered(t *target, op string, v any) error {
	key := t.a.name
	cur, _ := get(t.container, key)
	list, _ := cur.([]any)
	var hits []int
	for i, el := range list {
		m, ok := el.(map[string]any)
		if !ok {
			continue
		}
		ok, err := matches(t.a, t.filter, m)
		if err != nil {
			return err
		}
		if ok {
			hits = append(hits, i)
		}
	}
	if op == "remove" {
		var keep []any
		for i, el := range list {
			hit := slices.Contains(hits, i)
			switch {
			case !hit:
				keep = append(keep, el)
			case t.sub != "":
				m := el.(map[string]any)
				del(m, t.sub)
				keep = append(keep, m)
			}
		}
		if keep == nil {
			del(t.container, key)
		} else {
			set(t.container, key, keep)
		}
		return nil
	}
	if len(hits) == 0 {
		// A replace needs a target (RFC 7644 §3.5.2.3: a filter that
		// matches nothing is noTarget). An add of a target that does not
		// exist adds it (§3.5.2.1): `emails[type eq "home"].value`
		// describes the element to create, when the schema has that type.
		typ, ok := simpleTypeFilter(t.filter)
		if op != "add" || !ok {
			return noTarget("no value of %s matches the filter", key)
		}
		if !slices.Contains(t.a.types, typ) {
			if len(t.a.types) == 0 {
				return badValue("%s has no types; add the element to %s itself", key, key)
			}
			return badValue("%s of type %s cannot be stored; types: %s", key, quoteKey(typ), strings.Join(t.a.types, ", "))
		}
		list = append(list, map[string]any{"type": typ})
		hits = []int{len(list) - 1}
	}
	for _, i := range hits {
		m := list[i].(map[string]any)
		if t.sub != "" {
			if v == nil {
				del(m, t.sub)
			} else {
				set(m, t.sub, v)
			}
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return badValue("a filtered %s without a sub-attribute needs an object value", op)
		}
		if err := p.checkSubKeys(t.sc, t.a, obj); err != nil {
			return err
		}
		for k, sv := range obj {
			set(m, k, sv)
		}
	}
	set(t.container, key, list)
	return nil
}

// simpleTypeFilter recognises `type eq "x"`.
func simpleTypeFilter(e filter.Expression) (string, bool) {
	ae, ok := e.(*filter.AttributeExpression)
	if !ok || ae.Operator != filter.EQ || !strings.EqualFold(ae.AttributePath.AttributeName, "type") || ae.AttributePath.SubAttribute != nil {
		return "", false
	}
	v, err := unescape(ae.CompareValue)
	s, ok := v.(string)
	return slotType(s), ok && err == nil
}

// slotType is the slot a type value names: folded as filters compare
// types (provision.NormalizeName), so that `type eq "Ｗork"` names the
// slot it matches, "work", wherever a type is read.
func slotType(s string) string { return provision.NormalizeName(s) }

// containsElement reports whether list holds el: elements with a "value"
// compare by it (members, e-mails), others as a whole.
func containsElement(list []any, el any) bool {
	ev, hasValue := elementValue(el)
	for _, x := range list {
		if hasValue {
			if xv, ok := elementValue(x); ok && xv == ev {
				return true
			}
			continue
		}
		if reflect.DeepEqual(x, el) {
			return true
		}
	}
	return false
}

func elementValue(el any) (string, bool) {
	m, ok := el.(map[string]any)
	if !ok {
		return "", false
	}
	v, ok := get(m, "value")
	s, isStr := v.(string)
	return s, ok && isStr
}

// matches evaluates a value filter against one element in memory (one
// element of one resource: never a scan of the store).
func matches(a *attr, e filter.Expression, el map[string]any) (bool, error) {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		l, err := matches(a, e.Left, el)
		if err != nil {
			return false, err
		}
		if e.Operator == filter.AND && !l {
			return false, nil
		}
		if e.Operator == filter.OR && l {
			return true, nil
		}
		return matches(a, e.Right, el)
	case *filter.NotExpression:
		m, err := matches(a, e.Expression, el)
		return !m, err
	case *filter.AttributeExpression:
		s := a.subAttr(e.AttributePath.AttributeName)
		if s == nil || e.AttributePath.SubAttribute != nil {
			return false, badFilter("%s has no sub-attribute %q", a.name, e.AttributePath.String())
		}
		have, present := get(el, s.name)
		if e.Operator == filter.PR {
			return present && have != nil && have != "", nil
		}
		want, err := unescape(e.CompareValue)
		if err != nil {
			return false, err
		}
		return compareValue(have, e.Operator, want, s.caseExact)
	}
	return false, badFilter("unsupported filter in path")
}

// compareValue evaluates one comparison of a value filter with
// provision's operators. A boolean takes eq and ne, and a stored string
// counts as true when it says so in any case; a string compares as the
// store's filters do, folded unless the sub-attribute is case-exact, a
// value of another type or a missing one comparing as "". Numbers and
// null cannot be compared.
func compareValue(have any, op filter.CompareOperator, want any, caseExact bool) (bool, error) {
	o, err := toOp(op)
	if err != nil {
		return false, err
	}
	switch w := want.(type) {
	case bool:
		if o != provision.OpEq && o != provision.OpNe {
			return false, badFilter("%s on a boolean", op)
		}
		h, _ := have.(bool)
		if hs, ok := have.(string); ok {
			h = strings.EqualFold(hs, "true")
		}
		return provision.CompareBool(o, h, strconv.FormatBool(w)), nil
	case string:
		h, _ := have.(string)
		return provision.CompareValues(o, h, w, !caseExact), nil
	}
	return false, badFilter("unsupported comparison %s", op)
}
