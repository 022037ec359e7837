package scim

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"

	filter "github.com/scim2/filter-parser/v2"

	"gatehouse/provision"
)

// A PATCH of a group usually adds or removes a few members (Entra ID,
// Okta). Applying it to the rendered group, as patchGroup's general path
// does, reads the whole member list, and so costs the size of the group.
// The member operations below name the members they touch, which is all
// it takes to know the change: whether each named user is a member now.
// memberPatch recognises them, and patchGroup then never reads the
// member list. Every other PATCH takes the general path.

// memberOp is one operation that adds or removes the members it names.
type memberOp struct {
	add bool
	ids []string
}

// memberPatch is a PATCH split into the operations that do not touch
// members, applied to the group's document as ever, and the member
// operations, in request order.
type memberPatch struct {
	other   []operation
	members []memberOp
}

// slowGroupPatch turns the member fast path off; tests set it to run the
// same PATCH through both paths and compare.
var slowGroupPatch atomic.Bool

// memberPatch returns the PATCH split, or false when an operation is not
// one the fast path reads exactly as the general path would: a replace or
// a remove of every member, a filter on anything but the member ID, a
// sub-attribute, or a member element the decoder would refuse or
// rewrite. Those take the general path, which answers them as before.
func (s *Server) memberPatch(pt *patcher, ops []operation) (memberPatch, bool) {
	var mp memberPatch
	if slowGroupPatch.Load() {
		return mp, false
	}
	for _, o := range ops {
		if !s.touchesMembers(pt, o) {
			mp.other = append(mp.other, o)
			continue
		}
		m, ok := s.memberOpOf(pt, o)
		if !ok {
			return mp, false
		}
		mp.members = append(mp.members, m)
	}
	return mp, true
}

// touchesMembers reports whether any write an operation resolves to (a
// path, each key of a path-less value, each attribute of a schema URN)
// names the members attribute. It walks the operation as apply does;
// an error there is not a write to members, and apply reports it.
func (s *Server) touchesMembers(pt *patcher, o operation) bool {
	touches := false
	scratch := map[string]any{}
	_ = pt.walk(o, writes{
		at: func(_, path string, _ any, _ bool) error {
			if t, err := pt.resolve(scratch, path, false); err == nil && t != nil && t.a == s.membersAttr() {
				touches = true
			}
			return nil
		},
		clear: func(*schema) {},
	})
	return touches
}

func (s *Server) membersAttr() *attr { return s.groups.core.attr("members") }

// memberOpOf reads one operation on members: an add of member elements,
// a remove by `value eq` filters, or a remove with a value array (Entra
// ID's form, where the patcher accepts it).
func (s *Server) memberOpOf(pt *patcher, o operation) (memberOp, bool) {
	if o.path == "" || pt.schemaNamed(o.path) != nil {
		return memberOp{}, false // members inside a path-less or schema value
	}
	t, err := pt.resolve(map[string]any{}, o.path, false)
	if err != nil || t == nil || t.a != s.membersAttr() || t.sub != "" {
		return memberOp{}, false
	}
	switch {
	case o.op == "add" && t.filter == nil && o.value != nil:
		// Whatever the patcher refuses in an element (a key no schema
		// defines, say) takes the general path, which says why.
		if pt.apply(map[string]any{"members": []any{}}, o) != nil {
			return memberOp{}, false
		}
		list, ok := o.value.([]any)
		if !ok {
			list = []any{o.value}
		}
		ids := make([]string, 0, len(list))
		for _, el := range list {
			id, err := s.dec().member(el)
			raw, _ := elementValue(el)
			// A value the decoder rewrites (trimmed, normalised) would
			// compare unlike its stored form in a later filter.
			if err != nil || raw != id {
				return memberOp{}, false
			}
			ids = append(ids, id)
		}
		return memberOp{add: true, ids: ids}, true
	case o.op == "remove" && t.filter != nil:
		ids, ok := valueEqIDs(t.filter)
		return memberOp{ids: ids}, ok
	case o.op == "remove" && o.has && o.value != nil:
		list, ok := o.value.([]any)
		// The patcher decides whether this form is allowed (strict mode
		// may refuse it); it cannot fail otherwise on an empty list.
		if !ok || pt.apply(map[string]any{"members": []any{}}, o) != nil {
			return memberOp{}, false
		}
		var ids []string
		for _, el := range list {
			// As containsElement matches: elements with a string value.
			if id, ok := elementValue(el); ok {
				ids = append(ids, id)
			}
		}
		return memberOp{ids: ids}, true
	}
	return memberOp{}, false
}

// valueEqIDs reads `value eq "id"`, alone or joined by or: the member IDs
// it selects. The IDs compare exactly, as matches compares them.
func valueEqIDs(e filter.Expression) ([]string, bool) {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		if e.Operator != filter.OR {
			return nil, false
		}
		l, ok := valueEqIDs(e.Left)
		if !ok {
			return nil, false
		}
		r, ok := valueEqIDs(e.Right)
		return append(l, r...), ok
	case *filter.AttributeExpression:
		p := e.AttributePath
		if e.Operator != filter.EQ || p.URIPrefix != nil || p.SubAttribute != nil || !strings.EqualFold(p.AttributeName, "value") {
			return nil, false
		}
		v, err := unescape(e.CompareValue)
		id, ok := v.(string)
		return []string{id}, ok && err == nil
	}
	return nil, false
}

// change turns the member operations into the change the general path
// would compute from the whole list, asking the store only about the
// users they name. A user's last operation decides: added, it is a member
// after the PATCH, removed, it is not. The change adds those that are not
// members now, in the order the general path appends them, and removes
// those that are.
func (mp memberPatch) change(ctx context.Context, gd provision.GroupDirectory, groupID string) (add, remove []string, err error) {
	last := map[string]bool{} // user ID: its last operation adds
	var order []string        // IDs appended to the member list, as the patcher appends them
	for _, m := range mp.members {
		for _, id := range m.ids {
			switch {
			case m.add && !last[id]:
				// Not in the list (never named, or removed): appended.
				order = append(order, id)
			case !m.add && last[id]:
				order = slices.DeleteFunc(order, func(x string) bool { return x == id })
			}
			last[id] = m.add
		}
	}
	member := func(id string) (bool, error) {
		page, err := gd.FindGroups(ctx, provision.Query{Filter: provision.And{
			provision.Compare{Field: provision.FieldID, Op: provision.OpEq, Value: groupID},
			provision.Compare{Field: provision.FieldMember, Op: provision.OpEq, Value: id},
		}})
		return page.Total > 0, err
	}
	for _, id := range order {
		in, err := member(id)
		if err != nil {
			return nil, nil, err
		}
		if !in {
			add = append(add, id)
		}
	}
	for id, adds := range last {
		if adds {
			continue
		}
		in, err := member(id)
		if err != nil {
			return nil, nil, err
		}
		if in {
			remove = append(remove, id)
		}
	}
	slices.Sort(remove)
	return add, remove, nil
}

// shownMembers reports whether a group answered with these attributes
// and excludedAttributes shows its members, read as project reads them,
// so that the store need only read the member list then.
func (s *Server) shownMembers(p listParams) bool {
	if len(p.attributes) > 0 {
		for _, a := range p.attributes {
			if urn, name, _ := pathParts(s.groups, a); urn == "" && strings.EqualFold(name, "members") {
				return true
			}
		}
		return false
	}
	for _, a := range p.exclude {
		if urn, name, sub := pathParts(s.groups, a); urn == "" && sub == "" && strings.EqualFold(name, "members") {
			return false
		}
	}
	return true
}
