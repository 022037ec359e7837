package ldapdir

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Check connects and binds, confirms that both base DNs exist, that the
// directory's schema knows every object class and attribute the
// configuration names, and that no two of those attributes are one
// attribute under two names (see Config.aliasProblems). It writes nothing. A dial or bind failure is
// returned alone, since nothing else can be checked after it.
func (s *Store) Check(ctx context.Context) error {
	if _, err := s.readBase(ctx, s.l.cfg.UserBase); err != nil {
		if errors.Is(err, errNoBase) {
			return fmt.Errorf("user_base: %w", err)
		}
		return err
	}
	var errs []error
	if _, err := s.readBase(ctx, s.l.cfg.GroupBase); err != nil {
		errs = append(errs, fmt.Errorf("group_base: %w", err))
	}
	attrs, classes, err := s.schema(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, a := range s.l.schemaAttributes() {
		if _, ok := attrs[strings.ToLower(a)]; !ok {
			errs = append(errs, fmt.Errorf("the directory's schema has no attribute %s%s", a, s.schemaHint(a)))
		}
	}
	// Two names of one attribute: the directory's schema says which names
	// are one attribute (its OID), the standard ones and any other.
	errs = append(errs, s.l.cfg.aliasProblems(func(name string) string {
		if oid, ok := attrs[strings.ToLower(name)]; ok {
			return oid
		}
		return strings.ToLower(name)
	})...)
	for _, c := range s.l.schemaClasses() {
		if !classes[strings.ToLower(c)] {
			errs = append(errs, fmt.Errorf("the directory's schema has no object class %s%s", c, s.schemaHint(c)))
		}
	}
	return errors.Join(errs...)
}

func (s *Store) schemaHint(name string) string {
	switch {
	case strings.EqualFold(name, "gatehouseState") || strings.EqualFold(name, "gatehouseAccount"):
		return " (load gatehouse-schema.ldif on cn=config, the include file gatehouse.schema on slapd.conf, " +
			"gatehouse-schema-389ds.ldif on 389 Directory Server; or name attributes your schema has in state_attribute and state_object_class)"
	case strings.EqualFold(name, "pwdAccountLockedTime") && strings.EqualFold(name, s.l.cfg.DisabledAttribute):
		return ppolicyHint
	case strings.EqualFold(name, "nsAccountLock") && strings.EqualFold(name, s.l.cfg.DisabledAttribute):
		return " (389 Directory Server defines it; on OpenLDAP use the openldap profile)"
	case strings.EqualFold(name, "nsMemberOf"):
		return " (389 Directory Server 1.4 and later define it; on OpenLDAP use the openldap profile)"
	}
	return ""
}

// ppolicyHint explains where the default disabled mark comes from.
const ppolicyHint = ": disabled_attribute defaults to pwdAccountLockedTime, which OpenLDAP defines only when the ppolicy " +
	"module is loaded (slapd.conf: moduleload ppolicy and overlay ppolicy; cn=config: olcModuleLoad: ppolicy and an " +
	"olcPPolicyConfig overlay). Load it, or keep the mark in gatehouse's own attribute: " +
	"disabled_attribute: gatehouseState and disabled_value: disabled"

// unknownAttr names the module behind an attribute the directory does
// not know, when that is the disabled mark's.
func (s *Store) unknownAttr(err error) error {
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultUndefinedAttributeType) || s.l.ad {
		return err
	}
	return fmt.Errorf("the directory's schema has no %s%s: %w", s.l.cfg.DisabledAttribute, s.schemaHint(s.l.cfg.DisabledAttribute), err)
}

var (
	schemaName = regexp.MustCompile(`NAME\s+(?:'([^']+)'|\(\s*((?:'[^']+'\s*)+)\))`)
	schemaOID  = regexp.MustCompile(`^\(\s*([^\s()']+)`)
)

// schema reads the names of the attribute types and object classes the
// directory's subschema publishes; attrs gives each attribute name (lower
// case) the attribute's OID, so that the names of one attribute share it.
func (s *Store) schema(ctx context.Context) (attrs map[string]string, classes map[string]bool, err error) {
	root, err := s.search(ctx, ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"subschemaSubentry"}, nil), false)
	if err != nil || len(root.Entries) != 1 || root.Entries[0].GetAttributeValue("subschemaSubentry") == "" {
		return nil, nil, fmt.Errorf("cannot read the root DSE's subschemaSubentry to check the schema: %v", err)
	}
	sub := root.Entries[0].GetAttributeValue("subschemaSubentry")
	res, err := s.search(ctx, ldap.NewSearchRequest(sub, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=subschema)", []string{"attributeTypes", "objectClasses"}, nil), false)
	if err != nil || len(res.Entries) != 1 {
		return nil, nil, fmt.Errorf("cannot read the schema at %s: %v", sub, err)
	}
	// names maps every name a definition gives to its OID (or, when a
	// definition has none that parses, to its first name).
	names := func(defs []string) map[string]string {
		out := map[string]string{}
		for _, d := range defs {
			m := schemaName.FindStringSubmatch(d)
			if m == nil {
				continue
			}
			list := strings.Fields(strings.ReplaceAll(m[2], "'", " "))
			if m[1] != "" {
				list = []string{m[1]}
			}
			if len(list) == 0 {
				continue
			}
			id := strings.ToLower(list[0])
			if o := schemaOID.FindStringSubmatch(strings.TrimSpace(d)); o != nil {
				id = strings.ToLower(o[1])
			}
			for _, n := range list {
				out[strings.ToLower(n)] = id
			}
		}
		return out
	}
	e := res.Entries[0]
	classes = map[string]bool{}
	for n := range names(e.GetEqualFoldAttributeValues("objectClasses")) {
		classes[n] = true
	}
	return names(e.GetEqualFoldAttributeValues("attributeTypes")), classes, nil
}

func (l *layout) schemaAttributes() []string {
	a := []string{l.cfg.StateAttribute, "member", "cn"}
	for _, s := range l.specs {
		a = append(a, s.name)
	}
	if l.cfg.MemberOfAttribute != "none" {
		a = append(a, l.cfg.MemberOfAttribute)
	}
	if l.ad {
		a = append(a, "userAccountControl", "objectGUID")
	} else {
		a = append(a, l.cfg.DisabledAttribute, "entryUUID")
	}
	return a
}

func (l *layout) schemaClasses() []string {
	c := append([]string{l.cfg.GroupObjectClass}, l.cfg.UserObjectClasses...)
	if l.cfg.StateObjectClass != "" {
		c = append(c, l.cfg.StateObjectClass)
	}
	return c
}
