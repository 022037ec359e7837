package scim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"gatehouse/provision"
)

// listParams are the query parameters of a list or .search (RFC 7644
// §3.4.2), from the URL (names case-insensitive) or a SearchRequest body.
type listParams struct {
	filter              string
	sortBy, sortOrder   string
	startIndex, count   int
	hasCount            bool
	attributes, exclude []string
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func queryParams(r *http.Request) (listParams, error) {
	p := listParams{startIndex: 1}
	for k, vs := range r.URL.Query() {
		v := vs[0]
		switch strings.ToLower(k) {
		case "filter":
			p.filter = v
		case "sortby":
			p.sortBy = v
		case "sortorder":
			p.sortOrder = v
		case "startindex":
			n, err := strconv.Atoi(v)
			if err != nil {
				return p, badValue("startIndex must be an integer")
			}
			p.startIndex = n
		case "count":
			n, err := strconv.Atoi(v)
			if err != nil {
				return p, badValue("count must be an integer")
			}
			p.count, p.hasCount = n, true
		case "attributes":
			p.attributes = splitList(v)
		case "excludedattributes":
			p.exclude = splitList(v)
		}
	}
	return p, nil
}

// searchParams reads a SearchRequest body (RFC 7644 §3.4.3); its schemas
// must list the SearchRequest URN (checkMessage).
func searchParams(body map[string]any, quirks bool) (listParams, error) {
	p := listParams{startIndex: 1}
	if err := checkMessage(body, URNSearch, quirks); err != nil {
		return p, err
	}
	str := func(name string) (string, error) {
		v, ok := get(body, name)
		if !ok || v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", badValue("%s must be a string", name)
		}
		return s, nil
	}
	num := func(name string) (int, bool, error) {
		v, ok := get(body, name)
		if !ok || v == nil {
			return 0, false, nil
		}
		n, ok := v.(json.Number)
		if !ok {
			return 0, false, badValue("%s must be an integer", name)
		}
		i, err := strconv.Atoi(n.String())
		if err != nil {
			return 0, false, badValue("%s must be an integer", name)
		}
		return i, true, nil
	}
	strs := func(name string) ([]string, error) {
		v, ok := get(body, name)
		if !ok || v == nil {
			return nil, nil
		}
		switch x := v.(type) {
		case string:
			return splitList(x), nil
		case []any:
			var out []string
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, badValue("%s must hold strings", name)
				}
				out = append(out, s)
			}
			return out, nil
		}
		return nil, badValue("%s must be an array of strings", name)
	}
	var err error
	if p.filter, err = str("filter"); err != nil {
		return p, err
	}
	if p.sortBy, err = str("sortBy"); err != nil {
		return p, err
	}
	if p.sortOrder, err = str("sortOrder"); err != nil {
		return p, err
	}
	if n, ok, err := num("startIndex"); err != nil {
		return p, err
	} else if ok {
		p.startIndex = n
	}
	if p.count, p.hasCount, err = num("count"); err != nil {
		return p, err
	}
	if p.attributes, err = strs("attributes"); err != nil {
		return p, err
	}
	if p.exclude, err = strs("excludedAttributes"); err != nil {
		return p, err
	}
	return p, nil
}

// query turns list parameters into a store query: startIndex below 1
// counts as 1 and a negative count as 0 (RFC 7644 §3.4.2.4); count is
// capped at MaxResults.
func (s *Server) query(rt *resourceType, p listParams) (provision.Query, error) {
	q := provision.Query{Offset: max(p.startIndex, 1) - 1, Limit: s.cfg.DefaultCount}
	if p.hasCount {
		q.Limit = min(max(p.count, 0), s.cfg.MaxResults)
	}
	if p.filter != "" {
		f, err := s.parseFilter(rt, p.filter)
		if err != nil {
			return q, err
		}
		q.Filter = f
	}
	switch strings.ToLower(p.sortOrder) {
	case "", "ascending":
	case "descending":
		q.Descending = true
	default:
		return q, badValue("sortOrder is ascending or descending")
	}
	if p.sortBy != "" {
		field, fold, err := sortField(rt, p.sortBy)
		if err != nil {
			return q, err
		}
		q.SortBy, q.SortFold = field, fold
	}
	return q, nil
}

// sortField maps sortBy to a store field. A multi-valued attribute sorts
// by its primary (first) value.
func sortField(rt *resourceType, path string) (string, bool, error) {
	urn, rest := rt.splitURN(path)
	name, sub, _ := strings.Cut(rest, ".")
	_, a := rt.lookup(urn, name)
	bad := badValue("cannot sort by %q", path)
	switch {
	case a == nil:
		return "", false, bad
	case a == attrID:
		return provision.FieldID, false, nil
	case a == attrExternalID:
		return provision.FieldExternalID, false, nil
	case a == attrMeta:
		switch strings.ToLower(sub) {
		case "created":
			return provision.FieldCreated, false, nil
		case "lastmodified":
			return provision.FieldUpdated, false, nil
		}
		return "", false, bad
	case a.slots != nil:
		if sub != "" && !strings.EqualFold(sub, "value") || len(a.types) == 0 {
			return "", false, bad
		}
		f, ok := a.slots[a.types[0]]["value"]
		if !ok {
			return "", false, bad
		}
		return f, true, nil
	case a.typ == "complex" && a.field != "":
		return a.field, false, nil
	case a.typ == "complex":
		if s := a.subAttr(sub); s != nil && s.field != "" {
			return s.field, !s.caseExact, nil
		}
		return "", false, bad
	case a.field != "" && sub == "":
		return a.field, !a.caseExact, nil
	}
	return "", false, bad
}

// listResponse renders one page.
func listResponse(resources []any, total, startIndex int) map[string]any {
	if resources == nil {
		resources = []any{}
	}
	return map[string]any{"schemas": []string{URNList}, "totalResults": total, "itemsPerPage": len(resources),
		"startIndex": max(startIndex, 1), "Resources": resources}
}

// project applies attributes / excludedAttributes (RFC 7644 §3.9); id,
// schemas and meta are always returned.
func project(rt *resourceType, doc map[string]any, attributes, exclude []string) map[string]any {
	if len(attributes) > 0 {
		out := map[string]any{}
		for _, k := range []string{"id", "schemas", "meta"} {
			if v, ok := doc[k]; ok {
				out[k] = v
			}
		}
		for _, p := range attributes {
			copyPath(rt, doc, out, p)
		}
		return out
	}
	for _, p := range exclude {
		removePath(rt, doc, p)
	}
	return doc
}

// pathParts splits "urn:...:attr.sub" into the container key (the URN or
// ""), the attribute and the sub-attribute.
func pathParts(rt *resourceType, p string) (urn, name, sub string) {
	urn, rest := rt.splitURN(p)
	if urn == "" {
		for _, s := range rt.schemas() {
			if strings.EqualFold(p, s.id) {
				return s.id, "", ""
			}
		}
	}
	name, sub, _ = strings.Cut(rest, ".")
	if urn == rt.core.id {
		urn = ""
	}
	if urn == "" {
		// An unqualified extension attribute lives under its URN.
		if sc, a := rt.lookup("", name); a != nil && sc != nil && sc != rt.core {
			urn = sc.id
		}
	}
	return urn, name, sub
}

func copyPath(rt *resourceType, from, to map[string]any, p string) {
	urn, name, sub := pathParts(rt, p)
	src, dst := from, to
	if urn != "" {
		v, ok := from[urn].(map[string]any)
		if !ok {
			return
		}
		if name == "" {
			to[urn] = v
			return
		}
		d, ok := to[urn].(map[string]any)
		if !ok {
			d = map[string]any{}
			to[urn] = d
		}
		src, dst = v, d
	}
	v, ok := get(src, name)
	if !ok {
		return
	}
	if sub == "" {
		set(dst, name, v)
		return
	}
	switch x := v.(type) {
	case map[string]any:
		sv, ok := get(x, sub)
		if !ok {
			return
		}
		d, ok := dst[name].(map[string]any)
		if !ok {
			d = map[string]any{}
		}
		d[sub] = sv
		set(dst, name, d)
	case []any:
		var list []any
		for _, el := range x {
			if m, ok := el.(map[string]any); ok {
				if sv, ok := get(m, sub); ok {
					list = append(list, map[string]any{sub: sv})
				}
			}
		}
		if list != nil {
			set(dst, name, list)
		}
	}
}

func removePath(rt *resourceType, doc map[string]any, p string) {
	urn, name, sub := pathParts(rt, p)
	c := doc
	if urn != "" {
		if name == "" {
			delete(doc, urn)
			return
		}
		m, ok := doc[urn].(map[string]any)
		if !ok {
			return
		}
		c = m
	}
	if strings.EqualFold(name, "id") || strings.EqualFold(name, "schemas") {
		return
	}
	if sub == "" {
		del(c, name)
		return
	}
	v, _ := get(c, name)
	switch x := v.(type) {
	case map[string]any:
		del(x, sub)
	case []any:
		for _, el := range x {
			if m, ok := el.(map[string]any); ok {
				del(m, sub)
			}
		}
	}
}

// wantsMembers reports whether a group response will show members, so the
// store need not load them otherwise (Entra ID reads groups with
// excludedAttributes=members).
func wantsMembers(p listParams) bool {
	if len(p.attributes) > 0 {
		for _, a := range p.attributes {
			if name, _, _ := strings.Cut(strings.TrimPrefix(a, URNGroup+":"), "."); strings.EqualFold(name, "members") {
				return true
			}
		}
		return false
	}
	for _, a := range p.exclude {
		if strings.EqualFold(strings.TrimPrefix(a, URNGroup+":"), "members") {
			return false
		}
	}
	return true
}
