package ldapdir

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/provision"
)

// groupRef is one group: its normalised name, its name as stored (or as
// asserted, for a group not created yet) and its DN when known.
type groupRef struct {
	norm, name, dn string
	// protected: an AD group that gatehouse never joins anyone to
	// (adProtected).
	protected bool
}

// membership is the set of groups under group_base a user belongs to.
type membership struct {
	byNorm map[string]groupRef
}

func (m *membership) names() []string {
	var out []string
	for _, g := range m.byNorm {
		out = append(out, g.name)
	}
	slices.Sort(out)
	return out
}

func (m *membership) without(remove []groupRef) *membership {
	out := &membership{byNorm: maps.Clone(m.byNorm)}
	for _, g := range remove {
		delete(out.byNorm, g.norm)
	}
	return out
}

// memberships reads the user's groups: from the back-link attribute when
// the directory keeps one, else by a paged search of the groups.
func (s *Store) memberships(ctx context.Context, e *ldap.Entry) (*membership, error) {
	m := &membership{byNorm: map[string]groupRef{}}
	if s.l.cfg.MemberOfAttribute != "none" {
		for _, dn := range e.GetEqualFoldAttributeValues(s.l.cfg.MemberOfAttribute) {
			if g, ok := s.l.groupFromDN(dn); ok {
				m.byNorm[g.norm] = g
			}
		}
		return m, nil
	}
	res, err := s.search(ctx, ldap.NewSearchRequest(s.l.cfg.GroupBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass="+ldap.EscapeFilter(s.l.cfg.GroupObjectClass)+")(member="+ldap.EscapeFilter(e.DN)+"))", []string{"cn"}, nil), true)
	if err != nil {
		return nil, fmt.Errorf("ldapdir: read groups of %s: %w", e.DN, err)
	}
	for _, ge := range res.Entries {
		if name := ge.GetAttributeValue("cn"); name != "" {
			n := provision.NormalizeName(name)
			m.byNorm[n] = groupRef{norm: n, name: name, dn: ge.DN}
		}
	}
	return m, nil
}

// groupFromDN names a group from a memberOf value, if it lies under the
// group base. The name is the value of the group's RDN (its cn).
func (l *layout) groupFromDN(dn string) (groupRef, bool) {
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 || len(d.RDNs[0].Attributes) != 1 || !l.groupBase.AncestorOfFold(d) {
		return groupRef{}, false
	}
	name := d.RDNs[0].Attributes[0].Value
	return groupRef{norm: provision.NormalizeName(name), name: name, dn: dn}, true
}

// groupPlan is what a login changes in memberships of its own source.
type groupPlan struct {
	add    []groupRef // asserted, not a member: join (and own it)
	remove []groupRef // owned, no longer asserted, still a member: leave
	forget []string   // owned, no longer asserted: drop the ownership record
}

func (p groupPlan) changes() bool { return len(p.add)+len(p.remove)+len(p.forget) > 0 }

// wanted maps the normalised names of the asserted groups to their names.
func wanted(c provision.Claims) map[string]string {
	want := map[string]string{}
	for _, g := range c.Groups {
		if n := provision.NormalizeName(g); want[n] == "" {
			want[n] = g
		}
	}
	return want
}

// planGroups compares asserted groups with current memberships and with
// the memberships this source owns. A membership the source does not own
// (an administrator's, another IdP's, SCIM's) is never removed.
func planGroups(c provision.Claims, m *membership, owned map[string]bool) groupPlan {
	var p groupPlan
	if !c.HasGroups {
		return p
	}
	want := wanted(c)
	for _, n := range slices.Sorted(maps.Keys(want)) {
		if _, ok := m.byNorm[n]; !ok {
			p.add = append(p.add, groupRef{norm: n, name: want[n]})
		}
	}
	for _, n := range slices.Sorted(maps.Keys(owned)) {
		if _, ok := want[n]; ok {
			continue
		}
		p.forget = append(p.forget, n)
		if g, ok := m.byNorm[n]; ok {
			p.remove = append(p.remove, g)
		}
	}
	return p
}

// heldGroups are the memberships of the login's source as Decide compares
// them with the asserted groups (provision.Found.Groups), chosen so that
// its plan and planGroups agree: the groups the entry records as the
// source's, and the groups the user is in that the login asserts
// (whoever made them, they need no join). A recorded group the user has
// left is held when the login no longer asserts it (the record goes) and
// not held when it does (the join is done again).
func heldGroups(c provision.Claims, m *membership, owned map[string]bool) map[string]string {
	held := map[string]string{}
	want := wanted(c)
	for n := range owned {
		g, member := m.byNorm[n]
		_, asserted := want[n]
		switch {
		case member:
			held[n] = g.name
		case !asserted:
			held[n] = n
		}
	}
	for n := range want {
		if g, ok := m.byNorm[n]; ok {
			held[n] = g.name
		}
	}
	return held
}

// applyGroups carries out the plan for the user at userDN and returns the
// names of the user's groups afterwards.
func (s *Store) applyGroups(ctx context.Context, userDN string, p groupPlan, m *membership) ([]string, error) {
	names, _, err := s.applyGroupsWrote(ctx, userDN, p, m)
	return names, err
}

// applyGroupsWrote is applyGroups that also reports whether any of its
// writes took effect: a member another writer had just added or removed
// the same way is no write of this one.
func (s *Store) applyGroupsWrote(ctx context.Context, userDN string, p groupPlan, m *membership) ([]string, bool, error) {
	if m == nil {
		m = &membership{byNorm: map[string]groupRef{}}
	}
	m = m.without(nil)
	wrote := false
	for _, g := range p.remove {
		w, err := s.leaveWrote(ctx, g.dn, userDN)
		if err != nil {
			return nil, wrote, err
		}
		wrote = wrote || w
		delete(m.byNorm, g.norm)
	}
	for _, g := range p.add {
		joined, w, err := s.joinWrote(ctx, g, userDN)
		if err != nil {
			return nil, wrote, err
		}
		wrote = wrote || w
		m.byNorm[g.norm] = joined
	}
	return m.names(), wrote, nil
}

// leave removes a member. A member already gone is fine; a groupOfNames
// that would become empty gets the placeholder member instead. Where
// groups may not be empty (OpenLDAP's groupOfNames, or a directory that
// has refused an empty group once), the group's members are read first so
// that the last member's removal asks for the placeholder in the same
// modify, instead of sending one that fails.
func (s *Store) leave(ctx context.Context, groupDN, userDN string) error {
	_, err := s.leaveWrote(ctx, groupDN, userDN)
	return err
}

// leaveWrote is leave that also reports whether it removed the member
// (false: the member or the group was already gone).
func (s *Store) leaveWrote(ctx context.Context, groupDN, userDN string) (bool, error) {
	req := ldap.NewModifyRequest(groupDN, nil)
	req.Delete("member", []string{userDN})
	placed := false
	if s.l.mustMember || s.emptyRefused.Load() {
		last, err := s.lastMember(ctx, groupDN, userDN)
		if err != nil {
			return false, err
		}
		if last {
			req.Add("member", []string{s.l.cfg.EmptyGroupMember})
			placed = true
		}
	}
	err := s.modify(ctx, req)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultObjectClassViolation) && !placed {
		// The group emptied under us, or this directory's groups may not
		// be empty: remember it, and retry with the placeholder.
		s.emptyRefused.Store(true)
		req.Add("member", []string{s.l.cfg.EmptyGroupMember})
		err = s.modify(ctx, req)
	}
	switch {
	case err == nil:
		return true, nil
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute), ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return false, nil
	case ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform):
		// Active Directory answers unwillingToPerform to the removal of
		// a member that is gone already (a concurrent login removed it),
		// and to removals it refuses for other reasons: ask the group.
		member, cerr := s.compare(ctx, groupDN, "member", userDN)
		if ldap.IsErrorWithCode(cerr, ldap.LDAPResultNoSuchObject) || cerr == nil && !member {
			return false, nil
		}
	}
	return false, fmt.Errorf("ldapdir: remove member from %s: %w", groupDN, err)
}

// lastMember reports whether userDN is the group's only member that is not
// the placeholder, with no placeholder in the group yet. A group that is
// gone is not an error: the modify that follows finds it gone too.
func (s *Store) lastMember(ctx context.Context, groupDN, userDN string) (bool, error) {
	res, err := s.search(ctx, ldap.NewSearchRequest(groupDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"member"}, nil), false)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ldapdir: read members of %s: %w", groupDN, err)
	}
	if len(res.Entries) != 1 {
		return false, nil
	}
	self := false
	for _, m := range res.Entries[0].GetEqualFoldAttributeValues("member") {
		switch {
		case sameDN(m, s.l.cfg.EmptyGroupMember):
			return false, nil // the placeholder is there already
		case sameDN(m, userDN):
			self = true
		default:
			return false, nil // another member stays
		}
	}
	return self, nil
}

// joinWrote adds the user to the group with g's name, creating the group
// when there is none, and reports whether it added the member (false: the
// user was a member already).
func (s *Store) joinWrote(ctx context.Context, g groupRef, userDN string) (groupRef, bool, error) {
	altSAM := false // the group's own sAMAccountName is held elsewhere in the domain
	for range maxAttempts {
		found, err := s.findGroup(ctx, g)
		if err != nil {
			return g, false, err
		}
		if found == nil {
			req := s.l.groupAddRequest(g.name, userDN, altSAM)
			err := s.add(ctx, req)
			if ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
				// Created concurrently (join it), or the name is held by
				// something that is not a group this store can join.
				if altSAM, err = s.groupClash(ctx, g, req, altSAM); err != nil {
					return g, false, err
				}
				continue
			}
			if err != nil {
				return g, false, fmt.Errorf("ldapdir: create group %q: %w", g.name, refused(err))
			}
			g.dn = req.DN
			return g, true, nil
		}
		if found.protected {
			return g, false, fmt.Errorf("ldapdir: group %q is %s, a group Active Directory protects (built-in, critical or adminCount): "+
				"a login never joins one: %w", g.name, found.dn, provision.ErrConflict)
		}
		if s.l.ad {
			holder, err := s.protectedByNesting(ctx, found.dn)
			if err != nil {
				return g, false, err
			}
			if holder != "" {
				return g, false, fmt.Errorf("ldapdir: group %q is %s, a member of %s, a group Active Directory protects: "+
					"a login never joins one: %w", g.name, found.dn, holder, provision.ErrConflict)
			}
		}
		req := ldap.NewModifyRequest(found.dn, nil)
		req.Add("member", []string{userDN})
		if !s.l.ad {
			// A groupOfNames that was emptied holds the placeholder; it goes
			// when a real member arrives.
			if has, err := s.compare(ctx, found.dn, "member", s.l.cfg.EmptyGroupMember); err == nil && has {
				req.Delete("member", []string{s.l.cfg.EmptyGroupMember})
			}
		}
		err = s.modify(ctx, req)
		switch {
		case err == nil:
			return *found, true, nil
		case ldap.IsErrorWithCode(err, ldap.LDAPResultAttributeOrValueExists),
			// Active Directory answers entryAlreadyExists to a member
			// that is there already (a concurrent login added it).
			ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists):
			return *found, false, nil
		case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject), ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute):
			continue // deleted or changed meanwhile
		}
		return g, false, fmt.Errorf("ldapdir: add member to %s: %w", found.dn, err)
	}
	return g, false, fmt.Errorf("ldapdir: group %q kept changing under %d attempts", g.name, maxAttempts)
}

// groupClash tells why the add of a new group (req) found something
// already there. An entry at the group's DN that findGroup did not find
// is not a group of group_object_class with that name: a conflict, never
// joined. No entry at the DN means that Active Directory found the
// group's sAMAccountName held elsewhere in the domain (it is unique
// across users, groups and computers): the next add takes an
// alternative one (groupSAMAlternative); when that is held too, the
// login is refused. Otherwise the group was created meanwhile, and the
// caller finds and joins it.
func (s *Store) groupClash(ctx context.Context, g groupRef, req *ldap.AddRequest, altSAM bool) (bool, error) {
	res, err := s.search(ctx, ldap.NewSearchRequest(req.DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"objectClass"}, nil), false)
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) || err == nil && len(res.Entries) == 0:
		if !s.l.ad {
			return altSAM, nil // gone again: look again
		}
		if altSAM {
			return altSAM, fmt.Errorf("ldapdir: create group %q: its sAMAccountName %q and the alternative %q are both held by other objects in the domain: %w",
				g.name, samAccountName(g.name), groupSAMAlternative(g.name), provision.ErrConflict)
		}
		return true, nil
	case err != nil:
		return altSAM, fmt.Errorf("ldapdir: read %s: %w", req.DN, err)
	}
	if !hasValueFold(res.Entries[0].GetEqualFoldAttributeValues("objectClass"), s.l.cfg.GroupObjectClass) {
		return altSAM, fmt.Errorf("ldapdir: group %q: %s is an entry of another class than %s: %w",
			g.name, res.Entries[0].DN, s.l.cfg.GroupObjectClass, provision.ErrConflict)
	}
	return altSAM, nil
}

// compare reports whether the entry at dn holds value in attr, by the
// attribute's equality rule.
func (s *Store) compare(ctx context.Context, dn, attr, value string) (bool, error) {
	if s.l.ad {
		// Samba's AD DC turns a compare into a search expression without
		// escaping the value: one holding "\" or a parenthesis fails
		// ("Unable to parse search expression"). A base search with the
		// value escaped asks the same question of every AD.
		res, err := s.search(ctx, ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
			"("+attr+"="+ldap.EscapeFilter(value)+")", []string{"1.1"}, nil), false)
		if err != nil {
			return false, err
		}
		return len(res.Entries) == 1, nil
	}
	var ok bool
	err := s.p.do(ctx, func(c *ldap.Conn) error {
		s.stats.compares.Add(1)
		var err error
		ok, err = c.Compare(dn, attr, value)
		return err
	})
	return ok, err
}

// findGroup looks a group up by name under the group base.
func (s *Store) findGroup(ctx context.Context, g groupRef) (*groupRef, error) {
	attrs := []string{"cn"}
	if s.l.ad {
		attrs = append(attrs, adProtectionAttributes...)
	}
	res, err := s.search(ctx, ldap.NewSearchRequest(s.l.cfg.GroupBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass="+ldap.EscapeFilter(s.l.cfg.GroupObjectClass)+")(cn="+ldap.EscapeFilter(g.name)+"))", attrs, nil), false)
	if err != nil {
		return nil, fmt.Errorf("ldapdir: find group %q: %w", g.name, err)
	}
	var found []groupRef
	for _, e := range res.Entries {
		for _, cn := range e.GetAttributeValues("cn") {
			if provision.NormalizeName(cn) == g.norm {
				found = append(found, groupRef{norm: g.norm, name: cn, dn: e.DN, protected: s.l.ad && adProtected(e)})
				break
			}
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return &found[0], nil
	}
	want, _ := ldap.ParseDN(s.l.groupDN(g.name))
	for i := range found {
		if d, err := ldap.ParseDN(found[i].dn); err == nil && d.EqualFold(want) {
			return &found[i], nil
		}
	}
	return nil, fmt.Errorf("ldapdir: %d groups named %q under %s: %w", len(found), g.name, s.l.cfg.GroupBase, provision.ErrConflict)
}

func (l *layout) groupDN(name string) string {
	return "cn=" + escapeRDNValue(name) + "," + l.cfg.GroupBase
}

// groupAddRequest builds a new group holding its first member, so that a
// groupOfNames is never empty. On AD, altSAM gives it the alternative
// sAMAccountName (groupSAMAlternative).
func (l *layout) groupAddRequest(name, firstMember string, altSAM bool) *ldap.AddRequest {
	req := ldap.NewAddRequest(l.groupDN(name), nil)
	req.Attribute("objectClass", []string{"top", l.cfg.GroupObjectClass})
	req.Attribute("cn", []string{name})
	req.Attribute("member", []string{firstMember})
	if l.ad {
		sam := samAccountName(name)
		if altSAM {
			sam = groupSAMAlternative(name)
		}
		req.Attribute("sAMAccountName", []string{sam})
	}
	return req
}
