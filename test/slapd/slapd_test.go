package slapd_test

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/provision/ldapdir"
	"gatehouse/test/slapd"
)

// TestStartAndTLS proves the harness: slapd answers on both listeners,
// StartTLS and LDAPS verify against the test CA, the service account can
// bind and write below a tenant, and the stats log counts operations.
func TestStartAndTLS(t *testing.T) {
	s := slapd.Start(t, slapd.WithSchema(ldapdir.SchemaLDIF, "gatehouseState"))
	tn := s.NewTenant(t)

	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(s.TLSConfig()); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if err := c.Bind(slapd.BindDN, slapd.BindPassword); err != nil {
		t.Fatalf("bind: %v", err)
	}
	m := s.Mark()
	add := ldap.NewAddRequest("uid=x,"+tn.People, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson", "gatehouseAccount"})
	add.Attribute("uid", []string{"x"})
	add.Attribute("cn", []string{"x"})
	add.Attribute("sn", []string{"x"})
	add.Attribute("gatehouseState", []string{"version 1"})
	if err := c.Add(add); err != nil {
		t.Fatalf("add: %v", err)
	}
	if got := s.Ops(m)["ADD"]; got != 1 {
		t.Errorf("ADD ops logged = %d, want 1", got)
	}

	tc, err := ldap.DialURL(s.TLSURL, ldap.DialWithTLSConfig(s.TLSConfig()))
	if err != nil {
		t.Fatalf("ldaps: %v", err)
	}
	defer tc.Close()
	if err := tc.Bind(slapd.BindDN, slapd.BindPassword); err != nil {
		t.Fatalf("bind over ldaps: %v", err)
	}
}

// TestSlapdConfWithoutPPolicy proves the slapd.conf mode: slapd starts
// from a slapd.conf that includes the gatehouse schema file and indexes
// gatehouseState, and without ppolicy its schema has no
// pwdAccountLockedTime.
func TestSlapdConfWithoutPPolicy(t *testing.T) {
	s := slapd.Start(t, slapd.SlapdConf(), slapd.WithSchemaInclude(ldapdir.SchemaInclude, "gatehouseState"), slapd.WithoutPPolicy())
	c := s.Admin(t)
	res, err := c.Search(ldap.NewSearchRequest("cn=Subschema", ldap.ScopeBaseObject, 0, 0, 0, false,
		"(objectClass=subschema)", []string{"attributeTypes"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read the subschema: %v", err)
	}
	var state, lock bool
	for _, a := range res.Entries[0].GetAttributeValues("attributeTypes") {
		state = state || strings.Contains(a, "NAME 'gatehouseState'")
		lock = lock || strings.Contains(a, "NAME 'pwdAccountLockedTime'")
	}
	if !state || lock {
		t.Errorf("schema: gatehouseState %v (want true), pwdAccountLockedTime %v (want false)", state, lock)
	}
}

// TestDS389Start proves the 389 Directory Server harness: it starts,
// answers the directory manager and the provisioning account, and takes
// the schema gatehouse ships for it.
func TestDS389Start(t *testing.T) {
	d := slapd.Start389(t)
	d.ApplyLDIF(t, ldapdir.Schema389DS)
	d.ApplyLDIF(t, ldapdir.Index389DS)
	d.WaitTask(t, "cn=gatehouse-reindex,cn=index,cn=tasks,cn=config") // the backend is read-only meanwhile
	tn := d.NewTenant(t)
	c, err := ldap.DialURL(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(slapd.BindDN, slapd.BindPassword); err != nil {
		t.Fatalf("bind as the provisioning account: %v", err)
	}
	add := ldap.NewAddRequest("uid=x,"+tn.People, nil)
	add.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson", "nsMemberOf", "gatehouseAccount"})
	for _, a := range []string{"uid", "cn", "sn"} {
		add.Attribute(a, []string{"x"})
	}
	add.Attribute("gatehouseState", []string{"version 1"})
	if err := c.Add(add); err != nil {
		t.Fatalf("add with the gatehouse schema: %v", err)
	}
}
