package ldapdir

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/provision"
)

// The ldap store serves SCIM users (provision.Directory). Groups over SCIM
// are not offered on LDAP yet: logins still manage group memberships.

var _ provision.Directory = (*Store)(nil)

// Supports reports whether a field has an attribute in the mapping.
func (s *Store) Supports(field string) bool {
	_, ok := s.l.readFrom[field]
	return ok
}

// tombstoneDN is the entry whose state values remember users deleted over
// SCIM ("tomb key <idp> <kind> <subject>", "tomb name <user name>",
// "tomb ext <external id>"), so that no login re-creates them.
func (l *layout) tombstoneDN() string { return "cn=gatehouse-tombstones," + l.cfg.UserBase }

const (
	tombKey  = "tomb key "
	tombName = "tomb name "
	tombExt  = "tomb ext "
	tombLink = "tomb link "
)

// userFilter restricts a filter to user entries: the most specific
// (last) configured user class; never computers on Active Directory.
func (s *Store) userFilter(f string) string {
	oc := s.l.cfg.UserObjectClasses[len(s.l.cfg.UserObjectClasses)-1]
	extra := ""
	if s.l.ad {
		extra = "(!(objectClass=computer))"
	}
	if f == matchAll {
		f = "" // the class alone: an index answers it, a presence test may not
	}
	return "(&(objectClass=" + ldap.EscapeFilter(oc) + ")" + extra + f + ")"
}

// FindUsers searches the directory with the pushed-down filter (paged),
// refines the result exactly, and sorts and pages it in memory.
func (s *Store) FindUsers(ctx context.Context, q provision.Query) (provision.Page[provision.User], error) {
	var page provision.Page[provision.User]
	lf, exact, err := s.pushDown(q.Filter)
	if err != nil {
		return page, fmt.Errorf("ldapdir: %w", err)
	}
	if q.SortBy != "" && q.SortBy != provision.FieldID && q.SortBy != provision.FieldCreated && q.SortBy != provision.FieldUpdated && !s.Supports(q.SortBy) {
		return page, fmt.Errorf("ldapdir: %w: sorting by %q", provision.ErrUnsupported, q.SortBy)
	}
	if lf == exact && (q.SortBy == "" || q.SortBy == provision.FieldID) {
		if page, ok, err := s.findInIDOrder(ctx, q, lf); ok || err != nil {
			return page, err
		}
	}
	res, err := s.search(ctx, ldap.NewSearchRequest(s.l.cfg.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		s.userFilter(lf), s.l.userAttributes(), nil), true)
	if err != nil {
		return page, fmt.Errorf("ldapdir: find users: %w", err)
	}
	var all []provision.User
	for _, e := range res.Entries {
		u := s.l.user(e, parseState(e.GetEqualFoldAttributeValues(s.l.cfg.StateAttribute)))
		if provision.Match(q.Filter, u) {
			all = append(all, u)
		}
	}
	sortUsers(all, q)
	page.Total = len(all)
	if q.Limit > 0 && q.Offset < len(all) {
		page.Items = all[q.Offset:min(len(all), q.Offset+q.Limit)]
	}
	return page, nil
}

// findInIDOrder answers a query whose filter the directory evaluates
// exactly (no refinement in Go: an unfiltered list, ids, active, whole
// seconds) in ID order, the order SCIM clients page a full listing in.
// The total still counts every match, but from their anchors alone; only
// the page's entries are read whole. ok is false when an entry lacks an
// anchor that can be searched for, and the caller reads everything.
func (s *Store) findInIDOrder(ctx context.Context, q provision.Query, lf string) (page provision.Page[provision.User], ok bool, err error) {
	res, err := s.search(ctx, ldap.NewSearchRequest(s.l.cfg.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		s.userFilter(lf), []string{s.l.anchorAttr()}, nil), true)
	if err != nil {
		return page, false, fmt.Errorf("ldapdir: find users: %w", err)
	}
	ids := make([]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		id := s.l.id(e)
		if _, ok := s.l.anchorFilter(id); !ok {
			return page, false, nil
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if q.Descending {
		slices.Reverse(ids)
	}
	page.Total = len(ids)
	if q.Limit <= 0 || q.Offset >= len(ids) {
		return page, true, nil
	}
	var f strings.Builder
	f.WriteString("(|")
	for _, id := range ids[q.Offset:min(len(ids), q.Offset+q.Limit)] {
		af, _ := s.l.anchorFilter(id)
		f.WriteString(af)
	}
	f.WriteString(")")
	pf := f.String()
	if lf != matchAll {
		// The filter again: an entry changed since the count is left
		// out rather than shown not matching.
		pf = "(&" + lf + pf + ")"
	}
	res, err = s.search(ctx, ldap.NewSearchRequest(s.l.cfg.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		s.userFilter(pf), s.l.userAttributes(), nil), true)
	if err != nil {
		return page, false, fmt.Errorf("ldapdir: find users: %w", err)
	}
	for _, e := range res.Entries {
		page.Items = append(page.Items, s.l.user(e, parseState(e.GetEqualFoldAttributeValues(s.l.cfg.StateAttribute))))
	}
	sortUsers(page.Items, q)
	return page, true, nil
}

// sortUsers orders users like the SQL stores: empty values last when
// ascending, first when descending, then by ID.
func sortUsers(us []provision.User, q provision.Query) {
	key := func(u provision.User) string {
		switch q.SortBy {
		case "", provision.FieldID:
			return u.ID
		case provision.FieldCreated:
			return u.Created.Format(time.RFC3339Nano)
		case provision.FieldUpdated:
			return u.Updated.Format(time.RFC3339Nano)
		}
		v := u.Field(q.SortBy)
		if q.SortFold {
			v = provision.NormalizeName(v)
		}
		return v
	}
	slices.SortStableFunc(us, func(a, b provision.User) int {
		ka, kb := key(a), key(b)
		if (ka == "") != (kb == "") {
			if ka == "" != q.Descending {
				return 1
			}
			return -1
		}
		n := strings.Compare(ka, kb)
		if q.Descending {
			n = -n
		}
		return cmp.Or(n, strings.Compare(a.ID, b.ID))
	})
}

// CreateUser adds a SCIM-owned entry without any login identity, which
// records in.SCIMFields as the fields SCIM wrote.
func (s *Store) CreateUser(ctx context.Context, in provision.User) (provision.User, error) {
	u := in
	if err := checkUser(&u); err != nil {
		return provision.User{}, err
	}
	if err := s.l.checkNaming(&u); err != nil {
		return provision.User{}, err
	}
	if err := s.nameFree(ctx, u.UserName, "", ""); err != nil {
		return provision.User{}, err
	}
	req, err := s.l.addRequest(&u, provision.Key{}, nil, "")
	if err != nil {
		return provision.User{}, err
	}
	if !u.Active {
		s.l.addDisabled(req)
	}
	if err := s.add(ctx, req); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
			return provision.User{}, fmt.Errorf("ldapdir: %s: %w", req.DN, provision.ErrConflict)
		}
		return provision.User{}, fmt.Errorf("ldapdir: add %s: %w", req.DN, refused(s.unknownAttr(err)))
	}
	if err := s.liftTombstones(ctx, &u); err != nil {
		return provision.User{}, err
	}
	cur, err := s.readDN(ctx, req.DN)
	if err != nil {
		return provision.User{}, fmt.Errorf("ldapdir: read back %s: %w", req.DN, err)
	}
	if cur.st.pending {
		// A user SCIM creates inactive gets its password, and stays
		// disabled.
		if cur, err = s.enable(ctx, cur, u.Active); err != nil {
			return provision.User{}, err
		}
	}
	return s.l.user(cur.e, cur.st), nil
}

func checkUser(u *provision.User) error {
	if err := provision.CheckUser(*u); err != nil {
		return fmt.Errorf("ldapdir: %w", err)
	}
	for _, f := range []string{provision.FieldUserName, provision.FieldExternalID, provision.FieldEmail, provision.FieldDisplayName,
		provision.FieldGivenName, provision.FieldFamilyName} {
		if err := checkValue(f, u.Field(f)); err != nil {
			return err
		}
	}
	for f, v := range u.Extra {
		if err := checkValue(f, v); err != nil {
			return err
		}
	}
	for _, f := range u.SCIMFields {
		if f == "" || strings.ContainsFunc(f, unicode.IsSpace) {
			return fmt.Errorf("ldapdir: %w: SCIM field name %q", provision.ErrInvalid, f)
		}
		if err := checkValue("scim fields", f); err != nil {
			return err
		}
	}
	return nil
}

// addDisabled marks a new entry disabled.
func (l *layout) addDisabled(req *ldap.AddRequest) {
	for i, a := range req.Attributes {
		if l.ad && strings.EqualFold(a.Type, "userAccountControl") {
			uac, _ := strconv.Atoi(a.Vals[0])
			req.Attributes[i].Vals = []string{strconv.Itoa(uac | uacDisabled)}
			return
		}
	}
	if l.ad {
		return
	}
	for i, a := range req.Attributes {
		if strings.EqualFold(a.Type, l.cfg.DisabledAttribute) { // the state attribute: one attribute, one more value
			req.Attributes[i].Vals = append(a.Vals, l.cfg.DisabledValue)
			return
		}
	}
	req.Attribute(l.cfg.DisabledAttribute, []string{l.cfg.DisabledValue})
}

// ReplaceUser writes every mapped field of in, the active state, the
// SCIM owner mark and the fields SCIM wrote (in.SCIMFields, exactly), by
// compare-and-swap on the version.
func (s *Store) ReplaceUser(ctx context.Context, in provision.User, ifVersion int64) (provision.User, error) {
	want := in
	if err := checkUser(&want); err != nil {
		return provision.User{}, err
	}
	cur, err := s.findByID(ctx, in.ID)
	if err != nil {
		return provision.User{}, err
	}
	if err := s.checkUnprotected(ctx, cur.e, "replace"); err != nil {
		return provision.User{}, err
	}
	if err := provision.CheckVersion("ldapdir: user "+in.ID, cur.st.version, ifVersion); err != nil {
		return provision.User{}, err
	}
	all := map[string]bool{}
	for f := range s.l.readFrom {
		all[f] = true
	}
	dn := cur.e.DN
	before := s.l.user(cur.e, cur.st)
	if provision.NormalizeName(want.UserName) != provision.NormalizeName(before.UserName) {
		if err := s.nameFree(ctx, want.UserName, dn, ""); err != nil {
			return provision.User{}, err
		}
	}
	renamed := false
	if want.Field(s.l.rdnField) != before.Field(s.l.rdnField) {
		if want.Field(s.l.rdnField) == "" {
			return provision.User{}, fmt.Errorf("ldapdir: %w: %s, which names the entry, is empty", provision.ErrInvalid, s.l.rdnField)
		}
		if dn, renamed, err = s.rename(ctx, cur, &want); err != nil {
			return provision.User{}, err
		}
	}
	changes, _, err := s.l.diffAttributes(cur.e, &want, all)
	if err != nil {
		return provision.User{}, err
	}
	req := ldap.NewModifyRequest(dn, nil)
	req.Changes = changes
	if before.Active != want.Active {
		s.l.activeChange(req, cur.e, want.Active)
	}
	add, del := cur.st.nameChange(want.UserName)
	fa, fd := cur.st.scimFieldsChange(want.SCIMFields)
	add, del = append(add, fa...), append(del, fd...)
	if len(req.Changes) == 0 && !renamed && cur.st.scim && len(add)+len(del) == 0 {
		return before, nil
	}
	if !cur.st.scim {
		add = append(add, stateOwner)
	}
	s.l.bumpState(req, cur, add, del)
	if err := s.modify(ctx, req); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute) || ldap.IsErrorWithCode(err, ldap.LDAPResultAttributeOrValueExists) {
			return provision.User{}, fmt.Errorf("ldapdir: user %s changed concurrently: %w", in.ID, provision.ErrVersion)
		}
		return provision.User{}, fmt.Errorf("ldapdir: modify %s: %w", dn, refused(s.unknownAttr(err)))
	}
	out, err := s.readDN(ctx, dn)
	if err != nil {
		return provision.User{}, fmt.Errorf("ldapdir: read back %s: %w", dn, err)
	}
	return s.l.user(out.e, out.st), nil
}

// activeChange adds the modification that enables or disables e.
func (l *layout) activeChange(req *ldap.ModifyRequest, e *ldap.Entry, active bool) {
	if l.ad {
		old := e.GetEqualFoldAttributeValue("userAccountControl")
		uac, _ := strconv.ParseInt(old, 10, 64)
		if active {
			uac &^= uacDisabled
		} else {
			uac |= uacDisabled
		}
		req.Delete("userAccountControl", []string{old})
		req.Add("userAccountControl", []string{strconv.FormatInt(uac, 10)})
		return
	}
	if active {
		var drop []string
		for _, v := range e.GetEqualFoldAttributeValues(l.cfg.DisabledAttribute) {
			if strings.EqualFold(v, l.cfg.DisabledValue) {
				drop = append(drop, v)
			}
		}
		req.Delete(l.cfg.DisabledAttribute, drop)
		return
	}
	if have := e.GetEqualFoldAttributeValues(l.cfg.DisabledAttribute); len(have) > 0 && !l.disabledInState() {
		// Another value (nsAccountLock: false): the attribute may be
		// single-valued.
		req.Replace(l.cfg.DisabledAttribute, []string{l.cfg.DisabledValue})
		return
	}
	req.Add(l.cfg.DisabledAttribute, []string{l.cfg.DisabledValue})
}

// disabledInState reports the disabled mark kept in the state attribute
// (disabled_attribute: gatehouseState), for directories without ppolicy.
func (l *layout) disabledInState() bool {
	return !l.ad && strings.EqualFold(l.cfg.DisabledAttribute, l.cfg.StateAttribute)
}

// DeleteUser records tombstones for the user's identities, user name and
// external ID, takes it out of its groups and deletes the entry.
func (s *Store) DeleteUser(ctx context.Context, id string, ifVersion int64) error {
	cur, err := s.findByID(ctx, id)
	if err != nil {
		return err
	}
	if err := s.checkUnprotected(ctx, cur.e, "delete"); err != nil {
		return err
	}
	if err := provision.CheckVersion("ldapdir: user "+id, cur.st.version, ifVersion); err != nil {
		return err
	}
	u := s.l.user(cur.e, cur.st)
	tombs := []string{tombName + provision.NormalizeName(u.UserName)}
	if u.ExternalID != "" {
		tombs = append(tombs, tombExt+u.ExternalID)
	}
	for _, k := range cur.st.keys {
		// The link value ties the key's tombstone to the user name and
		// external ID, so that re-creating the user lifts it too. Names
		// hold no control characters (checked), so \x1f separates.
		tombs = append(tombs, "tomb "+k, tombLink+provision.NormalizeName(u.UserName)+"\x1f"+u.ExternalID+"\x1f"+k)
	}
	if err := s.addTombstones(ctx, tombs); err != nil {
		return err
	}
	m, err := s.memberships(ctx, cur.e)
	if err != nil {
		return err
	}
	for _, g := range m.byNorm {
		if err := s.leave(ctx, g.dn, cur.e.DN); err != nil {
			return err
		}
	}
	err = s.p.do(ctx, func(c *ldap.Conn) error {
		s.stats.deletes.Add(1)
		return c.Del(ldap.NewDelRequest(cur.e.DN, nil))
	})
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return fmt.Errorf("ldapdir: delete %s: %w", cur.e.DN, err)
	}
	return nil
}

// tombstoneClasses are the classes of the tombstone entry.
func (l *layout) tombstoneClasses() []string {
	classes := []string{"applicationProcess"}
	if l.ad {
		classes = []string{"container"}
	}
	if l.cfg.StateObjectClass != "" {
		classes = append(classes, l.cfg.StateObjectClass)
	}
	return classes
}

func (s *Store) addTombstones(ctx context.Context, vals []string) error {
	if err := s.checkTombstoneEntry(ctx); err != nil {
		return err
	}
	dn := s.l.tombstoneDN()
	var missing []string
	for _, v := range vals {
		ok, err := s.compare(ctx, dn, s.l.cfg.StateAttribute, v)
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute) {
			return fmt.Errorf("ldapdir: read tombstones: %w", err)
		}
		if !ok {
			missing = append(missing, v)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	req := ldap.NewModifyRequest(dn, nil)
	req.Add(s.l.cfg.StateAttribute, missing)
	err := s.modify(ctx, req)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		add := ldap.NewAddRequest(dn, nil)
		add.Attribute("objectClass", s.l.tombstoneClasses())
		add.Attribute("cn", []string{"gatehouse-tombstones"})
		add.Attribute(s.l.cfg.StateAttribute, missing)
		err = s.add(ctx, add)
	}
	if err != nil {
		return fmt.Errorf("ldapdir: write tombstones: %w", err)
	}
	return nil
}

// liftTombstones forgets the tombstones of a user SCIM creates again.
func (s *Store) liftTombstones(ctx context.Context, u *provision.User) error {
	var vals []string
	for _, f := range folds(u.UserName) {
		vals = append(vals, tombName+f)
	}
	if u.ExternalID != "" {
		vals = append(vals, tombExt+u.ExternalID)
	}
	if err := s.checkTombstoneEntry(ctx); err != nil {
		return err
	}
	dn := s.l.tombstoneDN()
	tomb, err := s.readDN(ctx, dn)
	if errors.Is(err, errNoEntry) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ldapdir: read tombstones: %w", err)
	}
	have := tomb.e.GetEqualFoldAttributeValues(s.l.cfg.StateAttribute)
	names := folds(u.UserName)
	for _, v := range have {
		rest, ok := strings.CutPrefix(v, tombLink)
		if !ok {
			continue
		}
		parts := strings.SplitN(rest, "\x1f", 3)
		if len(parts) == 3 && (slices.Contains(names, parts[0]) || parts[1] != "" && parts[1] == u.ExternalID) {
			vals = append(vals, v, "tomb "+parts[2])
		}
	}
	for _, v := range vals {
		if !slices.Contains(have, v) {
			continue
		}
		req := ldap.NewModifyRequest(dn, nil)
		req.Delete(s.l.cfg.StateAttribute, []string{v})
		if err := s.modify(ctx, req); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute) {
			return fmt.Errorf("ldapdir: lift tombstone: %w", err)
		}
	}
	return nil
}

// buried reports whether a login's key, user name or external ID belongs
// to a user deleted over SCIM.
func (s *Store) buried(ctx context.Context, l provision.Login) (bool, error) {
	vals := []string{"tomb " + keyValue(l.Key)}
	if n := l.Claims.Fields[provision.FieldUserName]; n != "" {
		for _, f := range folds(n) {
			vals = append(vals, tombName+f)
		}
	}
	if x := l.Claims.Fields[provision.FieldExternalID]; x != "" {
		vals = append(vals, tombExt+x)
	}
	if err := s.checkTombstoneEntry(ctx); err != nil {
		return false, err
	}
	for _, v := range vals {
		ok, err := s.compare(ctx, s.l.tombstoneDN(), s.l.cfg.StateAttribute, v)
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return false, nil
		}
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute) {
			continue // every tombstone was lifted
		}
		if err != nil {
			return false, fmt.Errorf("ldapdir: read tombstones: %w", err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// linkable finds the SCIM-owned entry, claimed by no login yet, that a
// first login may link to (Login.LinkBy).
func (s *Store) linkable(ctx context.Context, l provision.Login) (*entry, error) {
	v := l.Claims.Fields[l.LinkBy]
	attr, ok := s.l.readFrom[l.LinkBy]
	if l.LinkBy == "" || v == "" || !ok {
		return nil, nil
	}
	filter := "(&(" + s.l.cfg.StateAttribute + "=" + ldap.EscapeFilter(stateOwner) + ")(" + attr + "=" + ldap.EscapeFilter(v) + "))"
	cur, err := s.findOne(ctx, filter, func(st state) bool { return st.scim && len(st.keys) == 0 })
	if err != nil || cur == nil {
		return nil, err
	}
	u := s.l.user(cur.e, cur.st)
	have := u.Field(l.LinkBy)
	if l.LinkBy == provision.FieldUserName && provision.NormalizeName(have) != provision.NormalizeName(v) ||
		l.LinkBy != provision.FieldUserName && have != v {
		return nil, nil // the directory's matching rule was looser than ours
	}
	return cur, nil
}
