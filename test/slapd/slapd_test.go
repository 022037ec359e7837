package slapd_test

import (
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
