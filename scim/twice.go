package scim

import (
	"fmt"
	"slices"
	"strings"
)

// One attribute can be spelled several ways in one body: displayName,
// urn:...:core:2.0:User:displayName, or inside an object keyed by its
// schema URN; name.givenName, or givenName inside a name object. Read
// one after the other, the last spelling would silently win. A body or a
// PATCH operation that names one attribute (or one sub-attribute) through
// two spellings means two things, and is refused, as a key given twice
// is (checkKeys).

// spot is one attribute a spelling names: the whole attribute when sub
// and filter are empty.
type spot struct {
	sc     *schema
	a      *attr
	sub    string // canonical sub-attribute name
	filter string // a value filter, as written
	as     string // the spelling, as sent
}

// overlaps reports whether two spots write the same value: the same
// attribute, whole in one of them, or the same sub-attribute of the same
// elements.
func (x spot) overlaps(y spot) bool {
	if x.sc != y.sc || x.a != y.a {
		return false
	}
	whole := func(s spot) bool { return s.sub == "" && s.filter == "" }
	if whole(x) || whole(y) {
		return true
	}
	return x.filter == y.filter && (x.sub == y.sub || x.sub == "" || y.sub == "")
}

// spots collects the spots of one body or operation and refuses one that
// overlaps a spot collected before.
type spots []spot

func (ss *spots) add(s spot) error {
	for _, o := range *ss {
		if o.overlaps(s) {
			pair := []string{o.as, s.as}
			slices.Sort(pair) // the same answer whatever order the keys came in
			return badValue("%s is given twice, as %s and as %s; give it once", s.a.name, quoteKey(pair[0]), quoteKey(pair[1]))
		}
	}
	*ss = append(*ss, s)
	return nil
}

// once wraps the writes of one operation so that two of them that name
// the same attribute through different spellings are refused before
// either is applied. A path that does not resolve is left for the write
// to refuse; one that is ignored (an attribute not kept) writes nothing.
func (p *patcher) once(w writes) writes {
	var seen spots
	at := w.at
	w.at = func(op, path string, v any, has bool) error {
		t, err := p.resolve(map[string]any{}, path, false)
		if err == nil && t != nil {
			s := spot{sc: t.sc, a: t.a, sub: t.sub, as: path}
			if t.filter != nil {
				s.filter = fmt.Sprint(t.filter)
			}
			if err := seen.add(s); err != nil {
				return err
			}
		}
		return at(op, path, v, has)
	}
	return w
}

// flatTwice refuses a resource body that gives an attribute both under a
// top-level key holding its schema URN and its path (Entra ID's flattened
// form, urn:...:enterprise:2.0:User:department) and in the object form
// (the department of the enterprise object), or twice flattened. The
// decoder reads only the object form, so the flattened value would be
// dropped without a word.
func flatTwice(rt *resourceType, doc map[string]any) error {
	var seen spots
	for _, k := range sortedKeys(doc) {
		urn, rest := rt.splitURN(k)
		if urn == "" {
			continue
		}
		name, sub, _ := strings.Cut(rest, ".")
		sc, a := rt.lookup(urn, name)
		if a == nil {
			continue
		}
		if s := a.subAttr(sub); s != nil {
			sub = s.name
		}
		container := doc
		if sc != rt.core {
			container, _ = getObject(doc, sc.id)
		}
		if _, ok := get(container, a.name); ok {
			return badValue("%s is given twice, as %s and in the %s object; give it once", a.name, quoteKey(k), quoteKey(sc.id))
		}
		if err := seen.add(spot{sc: sc, a: a, sub: sub, as: k}); err != nil {
			return err
		}
	}
	return nil
}

func getObject(m map[string]any, key string) (map[string]any, bool) {
	v, _ := get(m, key)
	o, ok := v.(map[string]any)
	return o, ok
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
