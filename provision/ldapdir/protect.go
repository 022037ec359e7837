package ldapdir

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/provision"
)

// Active Directory objects gatehouse never touches. A login, or SCIM,
// that would join a user to a group granting rights over the domain, or
// adopt, change or delete an account holding such rights, is refused.

// adProtectionAttributes are the attributes adProtected reads.
var adProtectionAttributes = []string{"isCriticalSystemObject", "adminCount", "groupType"}

// adProtected reports an AD object that grants rights in the domain, or
// that AD itself manages: one AD marks critical (the built-in and default
// groups and accounts: Administrators, Domain Admins, krbtgt...), one
// under AdminSDHolder's protection (adminCount 1: the groups whose
// members administer the domain, their members, and groups nested in
// them, once AD's SDProp task has run), and a built-in local group
// (groupType bit 0x1). Nesting that SDProp has not marked yet is found by
// protectedByNesting.
func adProtected(e *ldap.Entry) bool {
	gt, _ := strconv.ParseInt(e.GetEqualFoldAttributeValue("groupType"), 10, 64)
	return strings.EqualFold(e.GetEqualFoldAttributeValue("isCriticalSystemObject"), "TRUE") ||
		e.GetEqualFoldAttributeValue("adminCount") == "1" || gt&0x1 != 0
}

// adDomainUsersRID is the relative ID of Domain Users, every user's
// primary group unless an administrator chose another.
const adDomainUsersRID = "513"

// protectedFilter matches the groups adProtected marks.
const protectedFilter = "(|(isCriticalSystemObject=TRUE)(adminCount=1)(groupType:1.2.840.113556.1.4.803:=1))"

// inChain is AD's matching rule that follows membership transitively
// (LDAP_MATCHING_RULE_IN_CHAIN).
const inChain = "1.2.840.113556.1.4.1941"

// protectedByNesting names a protected group that holds dn (a group or a
// user), directly or through nested groups, or "" when none does: a group
// an administrator nested into Domain Admins grants what Domain Admins
// does, before (or, on Samba, without) adminCount saying so.
func (s *Store) protectedByNesting(ctx context.Context, dn string) (string, error) {
	root, err := s.namingContext(ctx)
	if err != nil {
		return "", err
	}
	res, err := s.search(ctx, ldap.NewSearchRequest(root, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 1, 0, false,
		"(&(objectClass=group)(member:"+inChain+":="+ldap.EscapeFilter(dn)+")"+protectedFilter+")", []string{"1.1"}, nil), false)
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return "", fmt.Errorf("ldapdir: read the groups holding %s: %w", dn, err)
	}
	if res != nil && len(res.Entries) > 0 {
		return res.Entries[0].DN, nil
	}
	return "", nil
}

// namingContext is the domain's root DN (the root DSE's
// defaultNamingContext), read once.
func (s *Store) namingContext(ctx context.Context) (string, error) {
	if v := s.rootDN.Load(); v != nil {
		return *v, nil
	}
	res, err := s.search(ctx, ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"defaultNamingContext"}, nil), false)
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("defaultNamingContext") == "" {
		return "", fmt.Errorf("ldapdir: read the root DSE's defaultNamingContext: %v", err)
	}
	v := res.Entries[0].GetAttributeValue("defaultNamingContext")
	s.rootDN.Store(&v)
	return v, nil
}

// checkUnprotected refuses an AD account that holds rights over the
// domain (adProtected, or a member of a protected group through
// nesting): gatehouse adopts, changes, disables or deletes none. Other
// profiles have no such marks.
func (s *Store) checkUnprotected(ctx context.Context, e *ldap.Entry, what string) error {
	if !s.l.ad {
		return nil
	}
	if adProtected(e) {
		return fmt.Errorf("ldapdir: %s %s: an account Active Directory protects (critical or adminCount): %w", what, e.DN, provision.ErrConflict)
	}
	// A primary group is never listed in the group's member attribute, so
	// the in-chain search below cannot see it: an account whose primary
	// group is not Domain Users (RID 513; Domain Admins is 512) is left to
	// administrators.
	if pg := e.GetEqualFoldAttributeValue("primaryGroupID"); pg != "" && pg != adDomainUsersRID {
		return fmt.Errorf("ldapdir: %s %s: its primary group (RID %s) is not Domain Users: %w", what, e.DN, pg, provision.ErrConflict)
	}
	holder, err := s.protectedByNesting(ctx, e.DN)
	if err != nil {
		return err
	}
	if holder != "" {
		return fmt.Errorf("ldapdir: %s %s: a member of %s, a group Active Directory protects: %w", what, e.DN, holder, provision.ErrConflict)
	}
	return nil
}

// errTombstoneSquatted: the tombstone entry's DN holds something else.
var errTombstoneSquatted = errors.New("the tombstone entry's DN holds a user entry, not gatehouse's tombstones")

// checkTombstoneEntry refuses to read or write tombstones in an entry
// that is a user (one created, before names were reserved, under the
// tombstone entry's name) or holds a login identity: its tombstones would
// travel with that user.
func (s *Store) checkTombstoneEntry(ctx context.Context) error {
	users := s.l.cfg.UserObjectClasses
	filter := "(|(" + s.l.cfg.StateAttribute + "=" + ldap.EscapeFilter(stateKey) + "*)(objectClass=" + ldap.EscapeFilter(users[len(users)-1]) + "))"
	res, err := s.search(ctx, ldap.NewSearchRequest(s.l.tombstoneDN(), ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		filter, []string{"1.1"}, nil), false)
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return nil
	case err != nil:
		return fmt.Errorf("ldapdir: read tombstones: %w", err)
	case len(res.Entries) > 0:
		return fmt.Errorf("ldapdir: %s: %w", s.l.tombstoneDN(), errTombstoneSquatted)
	}
	return nil
}
