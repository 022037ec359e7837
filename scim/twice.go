package scim

import (
	"fmt"
	"maps"
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

// spellings brings the other spellings of an attribute in a create or
// replace body to the one the decoder reads (a core attribute at the top
// level, an extension attribute in the object keyed by its schema URN),
// so that none is dropped without a word:
//
//   - a top-level key holding a schema URN and the attribute's path (Entra
//     ID's flattened form, urn:...:enterprise:2.0:User:department);
//   - a core attribute path with a sub-attribute (name.givenName);
//   - the keys of an object keyed by the core schema URN, as a path-less
//     PATCH value may hold them;
//   - a key inside an extension object that repeats the extension's URN.
//
// One attribute (or sub-attribute) given through two of these, or beside
// its plain form, means two things and is refused, as in a PATCH
// operation. An id, externalId or meta qualified by the core URN names
// nothing (RFC 7643 §3.1: common attributes belong to no schema) and is
// refused. Strict mode has already refused a URN key that schemas does
// not list (checkResource); the rest is read the same in both modes.
// doc itself is left as it is.
func spellings(rt *resourceType, doc map[string]any) (map[string]any, error) {
	type flat struct {
		spot
		v any
	}
	var seen spots
	var flats []flat
	out := maps.Clone(doc)
	// named collects one spelling "as", the path rest under urn.
	named := func(as, urn, rest string, v any) error {
		name, sub, dotted := strings.Cut(rest, ".")
		if urn != "" && strings.EqualFold(urn, rt.core.id) && isCommonAttr(name) {
			return badValue("%s: %s is a common attribute, not one of the %s schema; give it as %s", quoteKey(as), name, rt.core.id, name)
		}
		sc, a := rt.lookup(urn, name)
		if urn == "" && sc != rt.core {
			return nil // an extension attribute goes in its object
		}
		if a == nil || a == attrID || a == attrMeta || a == attrExternalID {
			return nil // unknown: ignored as any unknown attribute is
		}
		if dotted {
			s := a.subAttr(sub)
			if s == nil {
				return nil
			}
			if a.slots != nil {
				return badValue("%s: %s is multi-valued; give it as an array of objects", quoteKey(as), a.name)
			}
			sub = s.name
		}
		sp := spot{sc: sc, a: a, sub: sub, as: as}
		if err := seen.add(sp); err != nil {
			return err
		}
		flats = append(flats, flat{sp, v})
		return nil
	}
	// The plain forms first, so that a second spelling is the one named.
	for _, k := range sortedKeys(doc) {
		if !strings.Contains(k, ":") && !strings.Contains(k, ".") {
			if a := rt.core.attr(k); a != nil {
				if err := seen.add(spot{sc: rt.core, a: a, as: k}); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, ext := range rt.ext {
		obj, ok := getObject(doc, ext.id)
		if !ok {
			continue
		}
		var copied map[string]any
		for _, k := range sortedKeys(obj) {
			urn, rest := rt.splitURN(k)
			if urn == "" {
				if a := ext.attr(k); a != nil {
					if err := seen.add(spot{sc: ext, a: a, as: k}); err != nil {
						return nil, err
					}
				}
				continue
			}
			if !strings.EqualFold(urn, ext.id) {
				return nil, badValue("the %s object holds %s, an attribute of another schema", quoteKey(ext.id), quoteKey(k))
			}
			if copied == nil {
				copied = maps.Clone(obj)
				set(out, ext.id, copied)
			}
			delete(copied, k)
			if err := named(k, urn, rest, obj[k]); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range sortedKeys(doc) {
		v := doc[k]
		if strings.EqualFold(k, rt.core.id) {
			delete(out, k)
			m, ok := v.(map[string]any)
			if !ok {
				if v == nil {
					continue
				}
				return nil, badValue("%s must be an object", quoteKey(k))
			}
			for _, ik := range sortedKeys(m) {
				if err := named(k+":"+ik, rt.core.id, ik, m[ik]); err != nil {
					return nil, err
				}
			}
			continue
		}
		urn, rest := rt.splitURN(k)
		if urn == "" && !strings.Contains(k, ".") {
			continue // plain, or an unknown URN
		}
		n := len(flats)
		if err := named(k, urn, rest, v); err != nil {
			return nil, err
		}
		if len(flats) > n {
			delete(out, k)
		}
	}
	// Each spelling now names a value no other names: write it where the
	// decoder reads it.
	for _, f := range flats {
		container := out
		if f.sc != rt.core {
			obj, ok := getObject(out, f.sc.id)
			if !ok {
				obj = map[string]any{}
			} else {
				obj = maps.Clone(obj)
			}
			set(out, f.sc.id, obj)
			container = obj
		}
		if f.sub == "" {
			set(container, f.a.name, f.v)
			continue
		}
		sub, _ := getObject(container, f.a.name)
		if sub == nil {
			sub = map[string]any{}
			set(container, f.a.name, sub)
		}
		sub[f.sub] = f.v
	}
	return out, nil
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

// isCommonAttr reports whether name is one of the attributes every
// resource has outside any schema (RFC 7643 §3.1).
func isCommonAttr(name string) bool {
	return strings.EqualFold(name, "id") || strings.EqualFold(name, "externalId") || strings.EqualFold(name, "meta")
}
