package ldapdir

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
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
	missingClass := false
	for _, c := range s.l.schemaClasses() {
		if !classes[strings.ToLower(c)] {
			missingClass = true
			errs = append(errs, fmt.Errorf("the directory's schema has no object class %s%s", c, s.schemaHint(c)))
		}
	}
	if _, known := attrs[strings.ToLower(s.l.cfg.StateAttribute)]; known && !missingClass {
		errs = append(errs, s.checkHolders(ctx, attrs)...)
	}
	return errors.Join(errs...)
}

// checkHolders confirms that the entries gatehouse creates may hold the
// state attribute: an attribute the schema knows, but that no class of
// the entry allows, fails every first login (objectClassViolation). The
// user entries have the configured classes; the tombstone entry that
// SCIM's DELETE writes has its own (AD: container).
func (s *Store) checkHolders(ctx context.Context, attrs map[string]string) []error {
	allowed := s.subschemaAllowed
	if s.l.ad {
		allowed = s.adAllowed
	}
	state := strings.ToLower(s.l.cfg.StateAttribute)
	want := attrs[state]
	holds := func(classes []string) (bool, error) {
		may, err := allowed(ctx, classes)
		if err != nil {
			return false, err
		}
		for a := range may {
			if a == state || attrs[a] == want || a == want {
				return true, nil
			}
		}
		return false, nil
	}
	var errs []error
	hint := ""
	if s.l.ad {
		hint = " (gatehouse-schema-ad.ldif adds it to the user and container classes' mayContain)"
	}
	users := s.l.userClasses()
	switch ok, err := holds(users); {
	case err != nil:
		errs = append(errs, err)
	case !ok:
		errs = append(errs, fmt.Errorf("state_attribute: no class of new users (%s) may hold %s: every first login would fail%s",
			strings.Join(users, ", "), s.l.cfg.StateAttribute, hint))
	}
	tomb := s.l.tombstoneClasses()
	switch ok, err := holds(tomb); {
	case err != nil:
		errs = append(errs, err)
	case !ok:
		errs = append(errs, fmt.Errorf("state_attribute: the tombstone entry's classes (%s) may not hold %s: SCIM DELETE would fail%s",
			strings.Join(tomb, ", "), s.l.cfg.StateAttribute, hint))
	}
	return errs
}

// subschemaAllowed is the set of attributes (lower-case names or OIDs, as
// the definitions give them) that entries of the classes may hold: their
// MUST and MAY, their superclasses' and, where a directory lists them,
// their auxiliary classes'.
func (s *Store) subschemaAllowed(ctx context.Context, classes []string) (map[string]bool, error) {
	defs, err := s.classDefinitions(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	seen := map[string]bool{}
	todo := slices.Clone(classes)
	for len(todo) > 0 {
		c := strings.ToLower(todo[0])
		todo = todo[1:]
		d, ok := defs[c]
		if seen[c] || !ok {
			continue
		}
		seen[c] = true
		for _, a := range append(d.must, d.may...) {
			out[a] = true
		}
		todo = append(todo, d.sup...)
		todo = append(todo, d.aux...)
	}
	return out, nil
}

// classDef is one object class of the subschema.
type classDef struct {
	sup, aux, must, may []string
}

var schemaList = map[string]*regexp.Regexp{
	"SUP": regexp.MustCompile(`\sSUP\s+(?:\(([^)]*)\)|(\S+))`), "AUX": regexp.MustCompile(`\sAUX\s+(?:\(([^)]*)\)|(\S+))`),
	"MUST": regexp.MustCompile(`\sMUST\s+(?:\(([^)]*)\)|(\S+))`), "MAY": regexp.MustCompile(`\sMAY\s+(?:\(([^)]*)\)|(\S+))`),
}

// classDefinitions reads the subschema's object classes, by every name
// (lower case).
func (s *Store) classDefinitions(ctx context.Context) (map[string]classDef, error) {
	e, err := s.subschema(ctx, "objectClasses")
	if err != nil {
		return nil, err
	}
	list := func(key, def string) []string {
		m := schemaList[key].FindStringSubmatch(def)
		if m == nil {
			return nil
		}
		var out []string
		for _, f := range strings.FieldsFunc(m[1]+m[2], func(r rune) bool { return r == '$' || r == ' ' || r == '\'' }) {
			out = append(out, strings.ToLower(f))
		}
		return out
	}
	defs := map[string]classDef{}
	for _, d := range e.GetEqualFoldAttributeValues("objectClasses") {
		m := schemaName.FindStringSubmatch(d)
		if m == nil {
			continue
		}
		def := classDef{sup: list("SUP", d), aux: list("AUX", d), must: list("MUST", d), may: list("MAY", d)}
		names := strings.Fields(strings.ReplaceAll(m[2], "'", " "))
		if m[1] != "" {
			names = []string{m[1]}
		}
		for _, n := range names {
			defs[strings.ToLower(n)] = def
		}
	}
	return defs, nil
}

// adAllowed is subschemaAllowed for Active Directory, from the classSchema
// entries of the schema partition, which name every class's own and
// system attributes and its auxiliary classes (AD's subschema lists
// neither the auxiliary classes nor their attributes).
func (s *Store) adAllowed(ctx context.Context, classes []string) (map[string]bool, error) {
	root, err := s.search(ctx, ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"schemaNamingContext"}, nil), false)
	if err != nil || len(root.Entries) != 1 || root.Entries[0].GetAttributeValue("schemaNamingContext") == "" {
		return nil, fmt.Errorf("cannot read the root DSE's schemaNamingContext to check the user class: %v", err)
	}
	schemaNC := root.Entries[0].GetAttributeValue("schemaNamingContext")
	out := map[string]bool{}
	seen := map[string]bool{}
	todo := slices.Clone(classes)
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		if seen[strings.ToLower(c)] {
			continue
		}
		seen[strings.ToLower(c)] = true
		res, err := s.search(ctx, ldap.NewSearchRequest(schemaNC, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 1, 0, false,
			"(&(objectClass=classSchema)(lDAPDisplayName="+ldap.EscapeFilter(c)+"))",
			[]string{"mayContain", "systemMayContain", "mustContain", "systemMustContain", "auxiliaryClass", "systemAuxiliaryClass", "subClassOf"}, nil), false)
		if err != nil {
			return nil, fmt.Errorf("cannot read the class %s from %s: %w", c, schemaNC, err)
		}
		if len(res.Entries) != 1 {
			continue
		}
		e := res.Entries[0]
		for _, a := range []string{"mayContain", "systemMayContain", "mustContain", "systemMustContain"} {
			for _, v := range e.GetEqualFoldAttributeValues(a) {
				out[strings.ToLower(v)] = true
			}
		}
		for _, a := range []string{"auxiliaryClass", "systemAuxiliaryClass", "subClassOf"} {
			todo = append(todo, e.GetEqualFoldAttributeValues(a)...)
		}
	}
	return out, nil
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
	e, err := s.subschema(ctx, "attributeTypes", "objectClasses")
	if err != nil {
		return nil, nil, err
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
	classes = map[string]bool{}
	for n := range names(e.GetEqualFoldAttributeValues("objectClasses")) {
		classes[n] = true
	}
	return names(e.GetEqualFoldAttributeValues("attributeTypes")), classes, nil
}

// subschema reads attributes of the directory's subschema entry.
func (s *Store) subschema(ctx context.Context, attributes ...string) (*ldap.Entry, error) {
	root, err := s.search(ctx, ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"subschemaSubentry"}, nil), false)
	if err != nil || len(root.Entries) != 1 || root.Entries[0].GetAttributeValue("subschemaSubentry") == "" {
		return nil, fmt.Errorf("cannot read the root DSE's subschemaSubentry to check the schema: %v", err)
	}
	sub := root.Entries[0].GetAttributeValue("subschemaSubentry")
	res, err := s.search(ctx, ldap.NewSearchRequest(sub, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=subschema)", attributes, nil), false)
	if err != nil || len(res.Entries) != 1 {
		return nil, fmt.Errorf("cannot read the schema at %s: %v", sub, err)
	}
	return res.Entries[0], nil
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

// userClasses are the classes of new user entries.
func (l *layout) userClasses() []string {
	c := slices.Clone(l.cfg.UserObjectClasses)
	if l.cfg.StateObjectClass != "" {
		c = append(c, l.cfg.StateObjectClass)
	}
	return c
}

func (l *layout) schemaClasses() []string {
	c := append([]string{l.cfg.GroupObjectClass}, l.cfg.UserObjectClasses...)
	if l.cfg.StateObjectClass != "" {
		c = append(c, l.cfg.StateObjectClass)
	}
	return c
}
