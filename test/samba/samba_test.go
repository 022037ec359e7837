package samba_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/provision/ldapdir"
	"gatehouse/test/samba"
)

// server is the one DC the package's tests share (each in its own
// tenant): provisioning takes seconds, and only one DC runs at a time.
var server *samba.Server

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "samba-ad-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server, err = samba.New(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: the Active Directory tests need Samba:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	fmt.Printf("samba: provision %v, start %v, service account %v\n",
		server.ProvisionTime.Round(1e6), server.StartTime.Round(1e6), server.SetupTime.Round(1e6))
	code := m.Run()
	t0 := time.Now()
	server.Stop()
	fmt.Printf("samba: stop %v\n", time.Since(t0).Round(1e6))
	os.RemoveAll(dir)
	os.Exit(code)
}

func addUser(c *ldap.Conn, dn, sam string) error {
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"user"})
	req.Attribute("sAMAccountName", []string{sam})
	return c.Add(req)
}

// TestStartAndTLS proves the harness: LDAPS and StartTLS both verify
// against the harness CA and take the administrator's and the service
// account's binds, and the service account can create, reset the password
// of and delete a user in its tenant OU.
func TestStartAndTLS(t *testing.T) {
	tn := server.NewTenant(t)
	server.Admin(t) // LDAPS

	c, err := ldap.DialURL(server.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(server.TLSConfig()); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if err := c.Bind(samba.BindDN, samba.BindPassword); err != nil {
		t.Fatalf("bind as the service account after StartTLS: %v", err)
	}
	dn := "CN=alice," + tn.UserBase
	if err := addUser(c, dn, "alice-start"); err != nil {
		t.Fatalf("the service account adds a user in its tenant: %v", err)
	}
	mod := ldap.NewModifyRequest(dn, nil)
	mod.Replace("unicodePwd", []string{samba.UnicodePwd("Alice-Secret-1")})
	mod.Replace("displayName", []string{"Alice"})
	if err := c.Modify(mod); err != nil {
		t.Fatalf("the service account resets a tenant user's password: %v", err)
	}
	enable := ldap.NewModifyRequest(dn, nil)
	enable.Replace("userAccountControl", []string{"512"})
	if err := c.Modify(enable); err != nil {
		t.Fatalf("the service account enables a tenant user: %v", err)
	}
	alice, err := server.Dial(dn, "Alice-Secret-1")
	if err != nil {
		t.Fatalf("the user binds with the password the service account set: %v", err)
	}
	alice.Close()
	g := ldap.NewAddRequest("CN=staff,"+tn.GroupBase, nil)
	g.Attribute("objectClass", []string{"group"})
	g.Attribute("member", []string{dn})
	if err := c.Add(g); err != nil {
		t.Fatalf("the service account adds a group: %v", err)
	}
	tomb := ldap.NewAddRequest("CN=gatehouse-tombstones,"+tn.UserBase, nil)
	tomb.Attribute("objectClass", []string{"container"})
	if err := c.Add(tomb); err != nil {
		t.Fatalf("the service account adds the tombstone container: %v", err)
	}
	for _, d := range []string{"CN=staff," + tn.GroupBase, dn, "CN=gatehouse-tombstones," + tn.UserBase} {
		if err := c.Del(ldap.NewDelRequest(d, nil)); err != nil {
			t.Fatalf("the service account deletes %s: %v", d, err)
		}
	}
	// The plain LDAP port refuses a simple bind without TLS (Samba's
	// "ldap server require strong auth" default).
	plain, err := ldap.DialURL(server.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Bind(samba.BindDN, samba.BindPassword); !ldap.IsErrorWithCode(err, ldap.LDAPResultStrongAuthRequired) {
		t.Fatalf("simple bind without TLS: %v, want strongAuthRequired", err)
	}
}

// TestServiceAccountConfined is the regression test of the delegation:
// the service account is no domain admin and writes nowhere outside the
// tenant OUs.
func TestServiceAccountConfined(t *testing.T) {
	c := server.Service(t)
	for _, dn := range []string{"CN=mallory,CN=Users," + samba.BaseDN, "CN=mallory," + samba.BaseDN} {
		err := addUser(c, dn, "mallory")
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
			t.Errorf("the service account adds %s: %v, want insufficientAccessRights", dn, err)
		}
	}
	mod := ldap.NewModifyRequest(samba.AdminDN, nil)
	mod.Replace("unicodePwd", []string{samba.UnicodePwd("Taken-Over-1")})
	if err := c.Modify(mod); err == nil {
		t.Errorf("the service account reset the administrator's password")
	}
	ou := ldap.NewAddRequest("OU=x,"+samba.TenantsDN, nil)
	ou.Attribute("objectClass", []string{"organizationalUnit"})
	if err := c.Add(ou); !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		t.Errorf("the service account adds an OU: %v, want insufficientAccessRights", err)
	}
	res, err := c.Search(ldap.NewSearchRequest("CN=Domain Admins,CN=Users,"+samba.BaseDN, ldap.ScopeBaseObject, 0, 1, 0, false,
		"(member="+ldap.EscapeFilter(samba.BindDN)+")", []string{"1.1"}, nil))
	if err != nil || len(res.Entries) != 0 {
		t.Errorf("the service account is a domain admin (%v)", err)
	}
}

// TestCheckPorts: a port something listens on is refused, by name.
func TestCheckPorts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	err = samba.CheckPorts("127.0.0.1", []int{port})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d is taken", port)) {
		t.Fatalf("CheckPorts on a held port: %v", err)
	}
	l.Close()
	if err := samba.CheckPorts("127.0.0.1", []int{port}); err != nil {
		t.Fatalf("CheckPorts on a free port: %v", err)
	}
	// While the DC runs, its own ports are taken.
	if err := samba.CheckPorts("127.0.0.1", samba.Ports); err == nil || !strings.Contains(err.Error(), "127.0.0.1:389") {
		t.Fatalf("CheckPorts while Samba runs: %v", err)
	}
}

// TestSchemaAD applies ldapdir's Active Directory schema as an operator
// would, and checks that gatehouseState is in the schema, holds several
// values on users and containers, and is found by an equality search.
func TestSchemaAD(t *testing.T) {
	if !strings.Contains(ldapdir.SchemaAD, ",DC=X\n") {
		t.Fatal("SchemaAD does not use the DC=X placeholder for the forest root")
	}
	server.ApplyLDIF(t, ldapdir.SchemaAD)
	c := server.Admin(t)
	res, err := c.Search(ldap.NewSearchRequest("CN=Aggregate,CN=Schema,CN=Configuration,"+samba.BaseDN, ldap.ScopeBaseObject, 0, 1, 0, false,
		"(objectClass=*)", []string{"attributeTypes"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read the subschema: %v", err)
	}
	found := false
	for _, v := range res.Entries[0].GetAttributeValues("attributeTypes") {
		if strings.Contains(v, "NAME 'gatehouseState'") {
			found = true
			if !strings.Contains(v, "1.2.840.113556.1.8000.2554.") || strings.Contains(v, "SINGLE-VALUE") {
				t.Errorf("gatehouseState in the subschema: %s", v)
			}
		}
	}
	if !found {
		t.Fatal("gatehouseState is not in the subschema's attributeTypes")
	}

	tn := server.NewTenant(t)
	svc := server.Service(t)
	user := ldap.NewAddRequest("CN=bob,"+tn.UserBase, nil)
	user.Attribute("objectClass", []string{"user"})
	user.Attribute("sAMAccountName", []string{"bob-schema"})
	user.Attribute("gatehouseState", []string{"key https://idp.example/ nameid Bob-1", "version 1", "group jit:x staff"})
	if err := svc.Add(user); err != nil {
		t.Fatalf("add a user with gatehouseState: %v", err)
	}
	tomb := ldap.NewAddRequest("CN=gatehouse-tombstones,"+tn.UserBase, nil)
	tomb.Attribute("objectClass", []string{"container"})
	tomb.Attribute("gatehouseState", []string{"tombstone a", "tombstone b"})
	if err := svc.Add(tomb); err != nil {
		t.Fatalf("add a container with gatehouseState: %v", err)
	}
	mod := ldap.NewModifyRequest("CN=bob,"+tn.UserBase, nil)
	mod.Add("gatehouseState", []string{"name bob"})
	if err := svc.Modify(mod); err != nil {
		t.Fatalf("add a gatehouseState value: %v", err)
	}
	for filter, want := range map[string]string{
		"(gatehouseState=version 1)":   "CN=bob," + tn.UserBase,
		"(gatehouseState=name bob)":    "CN=bob," + tn.UserBase,
		"(gatehouseState=tombstone b)": "CN=gatehouse-tombstones," + tn.UserBase,
	} {
		res, err := svc.Search(ldap.NewSearchRequest(tn.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false, filter, []string{"gatehouseState"}, nil))
		if err != nil || len(res.Entries) != 1 || !strings.EqualFold(res.Entries[0].DN, want) {
			t.Fatalf("search %s: %v %v", filter, err, res)
		}
	}
	res, err = svc.Search(ldap.NewSearchRequest("CN=bob,"+tn.UserBase, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"gatehouseState"}, nil))
	if err != nil || len(res.Entries) != 1 || len(res.Entries[0].GetAttributeValues("gatehouseState")) != 4 {
		t.Fatalf("bob's gatehouseState: %v %v", err, res)
	}
}
