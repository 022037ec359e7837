package ldapdir_test

// The Active Directory profile against a real AD domain controller:
// Samba's, started once for the package by test/samba (it takes seconds,
// and one runs on a machine at a time). Each test works in tenant OUs of
// its own, removed with their subtree when it ends, because AD keeps
// sAMAccountName and userPrincipalName unique across the whole domain:
// tenants that stayed would hold one another's names.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"go.yaml.in/yaml/v3"

	"gatehouse/provision"
	"gatehouse/provision/ldapdir"
	"gatehouse/provision/storetest"
	"gatehouse/test/samba"
)

var (
	adOnce   sync.Once
	adServer *samba.Server
	adErr    error
	adDir    string
)

// startAD returns the package's Samba DC, starting it (and loading the
// gatehouse schema extension) on first use. A DC that cannot start fails
// the test.
func startAD(t *testing.T) *samba.Server {
	t.Helper()
	adOnce.Do(func() {
		if adDir, adErr = os.MkdirTemp("", "ldapdir-samba-"); adErr != nil {
			return
		}
		if adServer, adErr = samba.New(adDir); adErr != nil {
			return
		}
		t.Logf("samba: provision %v, start %v, service account %v",
			adServer.ProvisionTime.Round(time.Millisecond), adServer.StartTime.Round(time.Millisecond), adServer.SetupTime.Round(time.Millisecond))
		adServer.ApplyLDIF(t, ldapdir.SchemaAD)
	})
	if adErr != nil {
		t.Fatalf("the Active Directory tests need Samba's AD DC: %v", adErr)
	}
	return adServer
}

// stopAD stops the DC, if one was started (TestMain).
func stopAD() {
	if adServer != nil {
		adServer.Stop()
	}
	if adDir != "" {
		os.RemoveAll(adDir)
	}
}

// adTenant is a tenant whose subtree is deleted when the test ends.
func adTenant(t *testing.T, srv *samba.Server) samba.Tenant {
	t.Helper()
	tn := srv.NewTenant(t)
	t.Cleanup(func() {
		c, err := ldap.DialURL(srv.TLSURL, ldap.DialWithTLSConfig(srv.TLSConfig()))
		if err != nil {
			t.Errorf("samba: remove tenant: %v", err)
			return
		}
		defer c.Close()
		if err := c.Bind(samba.AdminDN, samba.AdminPassword); err != nil {
			t.Errorf("samba: remove tenant: %v", err)
			return
		}
		req := ldap.NewDelRequest(tn.Base, []ldap.Control{ldap.NewControlString(ldap.ControlTypeSubtreeDelete, true, "")})
		if err := c.Del(req); err != nil {
			t.Errorf("samba: remove tenant %s: %v", tn.Base, err)
		}
	})
	return tn
}

func adStoreConfig(srv *samba.Server, tn samba.Tenant) ldapdir.Config {
	return ldapdir.Config{
		Profile: ldapdir.ProfileActiveDirectory,
		URL:     srv.TLSURL, CAFile: srv.CAFile,
		BindDN: samba.BindDN, BindPassword: samba.BindPassword,
		UserBase: tn.UserBase, GroupBase: tn.GroupBase,
		StateAttribute: "gatehouseState", UPNSuffix: "gatehouse.test",
		Attributes: map[string]string{
			provision.FieldEmail: "mail", provision.FieldDisplayName: "displayName",
			provision.FieldGivenName: "givenName", provision.FieldFamilyName: "sn",
			"department": "department", "office": "physicalDeliveryOfficeName",
		},
	}
}

func adStore(t *testing.T, srv *samba.Server, tn samba.Tenant, mod func(*ldapdir.Config), opts ...ldapdir.Option) *ldapdir.Store {
	t.Helper()
	cfg := adStoreConfig(srv, tn)
	if mod != nil {
		mod(&cfg)
	}
	s, err := ldapdir.New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func adLogin(subject, userName string, groups ...string) provision.Login {
	l := provision.Login{
		Key: provision.Key{IdP: "https://idp.example.test", Kind: "nameid", Subject: subject},
		Claims: provision.Claims{Fields: map[string]string{
			provision.FieldUserName: userName, provision.FieldEmail: userName + "@example.test",
		}},
	}
	if groups != nil {
		l.Claims.Groups, l.Claims.HasGroups = groups, true
	}
	return l
}

// adRead reads one entry as the administrator.
func adRead(t *testing.T, srv *samba.Server, dn string, attrs ...string) *ldap.Entry {
	t.Helper()
	res, err := srv.Admin(t).Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", attrs, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read %s: %v", dn, err)
	}
	return res.Entries[0]
}

func adMembers(t *testing.T, srv *samba.Server, tn samba.Tenant, group string) []string {
	t.Helper()
	res, err := srv.Admin(t).Search(ldap.NewSearchRequest(tn.GroupBase, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=group)(cn="+ldap.EscapeFilter(group)+"))", []string{"member"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("group %q: %d entries, %v", group, len(res.Entries), err)
	}
	return res.Entries[0].GetAttributeValues("member")
}

// domainAdmins is the DN of the test domain's Domain Admins group.
const domainAdmins = "CN=Domain Admins,CN=Users," + samba.BaseDN

// tenantSAM is a sAMAccountName unique to the tenant (AD keeps them unique
// across the whole domain, which the tenants share).
func tenantSAM(tn samba.Tenant, suffix string) string {
	return strings.TrimPrefix(strings.Split(tn.Base, ",")[0], "OU=") + "-" + suffix
}

// adHandMadeUser adds, as the administrator, an enabled account that
// gatehouse did not make: cn name in the tenant's user OU, with attrs.
func adHandMadeUser(t *testing.T, srv *samba.Server, tn samba.Tenant, name string, attrs map[string]string) string {
	t.Helper()
	dn := "CN=" + name + "," + tn.UserBase
	add := ldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
	add.Attribute("sAMAccountName", []string{tenantSAM(tn, name)})
	add.Attribute("userAccountControl", []string{"512"})
	for k, v := range attrs {
		add.Attribute(k, []string{v})
	}
	if err := srv.Admin(t).Add(add); err != nil {
		t.Fatalf("add %s: %v", dn, err)
	}
	return dn
}

// nestIn makes member a member of group, as the administrator, until the
// test ends.
func nestIn(t *testing.T, srv *samba.Server, group, member string) {
	t.Helper()
	m := ldap.NewModifyRequest(group, nil)
	m.Add("member", []string{member})
	if err := srv.Admin(t).Modify(m); err != nil {
		t.Fatalf("add %s to %s: %v", member, group, err)
	}
	t.Cleanup(func() {
		if c, err := srv.Dial(samba.AdminDN, samba.AdminPassword); err == nil {
			back := ldap.NewModifyRequest(group, nil)
			back.Delete("member", []string{member})
			c.Modify(back)
			c.Close()
		}
	})
}

// TestADConformance runs the shared store suite against the AD profile
// on a real domain controller, over LDAPS as a delegated service account.
func TestADConformance(t *testing.T) {
	srv := startAD(t)
	storetest.Run(t, func(t *testing.T) provision.Store {
		return adStore(t, srv, adTenant(t, srv), nil)
	})
}

// TestADCheck: check passes on the delegated service account with the
// schema extension loaded, and names a state attribute that the schema
// knows but that the user class cannot hold (every first login would
// fail: objectClassViolation).
func TestADCheck(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	ctx := context.Background()
	if err := adStore(t, srv, tn, nil).Check(ctx); err != nil {
		t.Errorf("Check = %v", err)
	}
	s := adStore(t, srv, tn, func(c *ldapdir.Config) { c.StateAttribute = "dNSHostName" })
	err := s.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "no class of new users") || !strings.Contains(err.Error(), "dNSHostName") {
		t.Errorf("Check with a state attribute the user class cannot hold = %v", err)
	}
	if _, err := s.Provision(ctx, adLogin("check-1", "checkuser")); err == nil {
		t.Error("a login stored its state in an attribute the user class cannot hold")
	}
}

// TestADStartTLSAndLDAPS: logins work over StartTLS and over LDAPS, with
// the directory's certificate verified against the configured CA.
func TestADStartTLSAndLDAPS(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	for i, url := range []string{srv.URL, srv.TLSURL} {
		s := adStore(t, srv, tn, func(c *ldapdir.Config) { c.URL = url })
		res, err := s.Provision(context.Background(), adLogin("tls-"+strconv.Itoa(i), "tlsuser"+strconv.Itoa(i)))
		if err != nil || res.Outcome != provision.Created {
			t.Errorf("%s: %+v %v", url, res, err)
		}
	}
	s := adStore(t, srv, tn, func(c *ldapdir.Config) { c.CAFile = "" }) // the system roots do not know the harness CA
	if _, err := s.Provision(context.Background(), adLogin("tls-x", "tlsuserx")); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("login against an unverified certificate: %v", err)
	}
}

// TestADAccountCreated: a first login creates an enabled user with the
// logon names AD needs and objectGUID as its ID; a repeat login writes
// nothing (the entry's and the group's uSNChanged stay); a changed
// attribute rewrites only that attribute.
func TestADAccountCreated(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	s := adStore(t, srv, tn, nil)
	ctx := context.Background()
	l := adLogin("acct-1", "carol", "Engineers")
	l.Claims.Fields[provision.FieldDisplayName] = "Carol Ann"
	res, err := s.Provision(ctx, l)
	if err != nil || res.Outcome != provision.Created || len(res.User.ID) != 32 {
		t.Fatalf("first login: %+v %v", res, err)
	}
	dn := "CN=carol," + tn.UserBase
	e := adRead(t, srv, dn, "sAMAccountName", "userPrincipalName", "userAccountControl", "uSNChanged", "displayName")
	if e.GetAttributeValue("sAMAccountName") != "carol" || e.GetAttributeValue("userPrincipalName") != "carol@gatehouse.test" ||
		e.GetAttributeValue("userAccountControl") != "512" {
		t.Errorf("new account: %v", e.Attributes)
	}
	usn, gusn := e.GetAttributeValue("uSNChanged"), adRead(t, srv, "CN=Engineers,"+tn.GroupBase, "uSNChanged").GetAttributeValue("uSNChanged")
	for range 3 {
		if res, err := s.Provision(ctx, l); err != nil || res.Outcome != provision.Unchanged {
			t.Fatalf("repeat login: %+v %v", res, err)
		}
	}
	if got := adRead(t, srv, dn, "uSNChanged").GetAttributeValue("uSNChanged"); got != usn {
		t.Errorf("unchanged logins wrote the user: uSNChanged %s -> %s", usn, got)
	}
	if got := adRead(t, srv, "CN=Engineers,"+tn.GroupBase, "uSNChanged").GetAttributeValue("uSNChanged"); got != gusn {
		t.Errorf("unchanged logins wrote the group: uSNChanged %s -> %s", gusn, got)
	}
	l.Claims.Fields[provision.FieldDisplayName] = "Carol Ann Smith"
	res, err = s.Provision(ctx, l)
	if err != nil || res.Outcome != provision.Updated || !slices.Equal(res.Changed, []string{provision.FieldDisplayName}) {
		t.Fatalf("changed login: %+v %v", res, err)
	}
	if got := adRead(t, srv, dn, "displayName").GetAttributeValue("displayName"); got != "Carol Ann Smith" {
		t.Errorf("displayName = %q", got)
	}
}

// TestADConcurrentLoginsAndGroups: AD answers entryAlreadyExists to adding
// a member already there and unwillingToPerform to removing one already
// gone. Concurrent first logins of one user on several replicas, and
// concurrent logins that drop a group, all succeed.
func TestADConcurrentLoginsAndGroups(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	var stores []*ldapdir.Store
	for range 4 {
		stores = append(stores, adStore(t, srv, tn, nil))
	}
	ctx := context.Background()
	run := func(n int, l provision.Login) []provision.Result {
		res := make([]provision.Result, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { res[i], errs[i] = stores[i%len(stores)].Provision(ctx, l) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("login %d of %d: %v", i, n, err)
			}
		}
		return res
	}
	l := adLogin("conc-1", "dave", "Ops", "Staff")
	res := run(20, l)
	created := 0
	for _, r := range res {
		if r.Outcome == provision.Created {
			created++
		}
		if r.User.ID != res[0].User.ID {
			t.Fatalf("two IDs: %s and %s", r.User.ID, res[0].User.ID)
		}
	}
	if created != 1 {
		t.Errorf("%d logins say they created the user, want 1", created)
	}
	for _, g := range []string{"Ops", "Staff"} {
		if m := adMembers(t, srv, tn, g); len(m) != 1 {
			t.Errorf("group %s members %v", g, m)
		}
	}
	l.Claims.Groups = []string{"Staff"}
	run(12, l)
	if m := adMembers(t, srv, tn, "Ops"); len(m) != 0 {
		t.Errorf("Ops still holds %v after the logins that dropped it", m)
	}
	// Many users joining one new group at once.
	var wg sync.WaitGroup
	errs := make([]error, 12)
	for i := range 12 {
		wg.Go(func() {
			_, errs[i] = stores[i%len(stores)].Provision(ctx, adLogin("conc-u"+strconv.Itoa(i), "conc"+strconv.Itoa(i), "Crowd"))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if m := adMembers(t, srv, tn, "Crowd"); len(m) != 12 {
		t.Errorf("Crowd has %d members, want 12", len(m))
	}
}

// TestADDomainWideNameClash: sAMAccountName is unique across the domain.
// A group whose own logon name another object holds (a built-in group, a
// user) is created with an alternative one; a user whose logon name an
// object outside user_base holds is refused with that reason, not as a
// DN that "belongs to another identity" nor as an outage.
func TestADDomainWideNameClash(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	s := adStore(t, srv, tn, nil)
	ctx := context.Background()
	res, err := s.Provision(ctx, adLogin("clash-1", "erin", "Users", "erin", "Domain Admins"))
	if err != nil || !slices.Equal(res.User.Groups, []string{"Domain Admins", "Users", "erin"}) {
		t.Fatalf("login asserting groups named like domain objects: %+v %v", res, err)
	}
	for _, g := range []string{"Users", "erin", "Domain Admins"} {
		e := adRead(t, srv, "CN="+g+","+tn.GroupBase, "sAMAccountName", "member")
		if sam := e.GetAttributeValue("sAMAccountName"); strings.EqualFold(sam, g) || sam == "" {
			t.Errorf("group %s got sAMAccountName %q", g, sam)
		}
		if len(e.GetAttributeValues("member")) != 1 {
			t.Errorf("group %s members %v", g, e.GetAttributeValues("member"))
		}
	}
	// The built-in groups are untouched.
	if m := adRead(t, srv, "CN=Domain Admins,CN=Users,"+samba.BaseDN, "member").GetAttributeValues("member"); slices.ContainsFunc(m, func(d string) bool {
		return strings.Contains(strings.ToLower(d), strings.ToLower(tn.UserBase))
	}) {
		t.Errorf("a login joined the real Domain Admins: %v", m)
	}
	if again, err := s.Provision(ctx, adLogin("clash-1", "erin", "Users", "erin", "Domain Admins")); err != nil || again.Outcome != provision.Unchanged {
		t.Errorf("repeat login: %+v %v", again, err)
	}

	// An account outside user_base holds the logon name "frank".
	other := "CN=frank-elsewhere," + tn.Base
	add := ldap.NewAddRequest(other, nil)
	add.Attribute("objectClass", []string{"user"})
	add.Attribute("sAMAccountName", []string{"frank"})
	if err := srv.Admin(t).Add(add); err != nil {
		t.Fatal(err)
	}
	_, err = s.Provision(ctx, adLogin("clash-2", "frank"))
	if !errors.Is(err, provision.ErrConflict) || !strings.Contains(err.Error(), "sAMAccountName") || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(other)) {
		t.Errorf("login of a user whose logon name is held elsewhere: %v, want a conflict naming the holder", err)
	}
	if strings.Contains(fmt.Sprint(err), "another identity") {
		t.Errorf("the refusal blames a DN of another identity: %v", err)
	}
	// Another account holds the userPrincipalName "pat@gatehouse.test"
	// (AD answers constraintViolation to that one).
	other = "CN=pat-elsewhere," + tn.Base
	add = ldap.NewAddRequest(other, nil)
	add.Attribute("objectClass", []string{"user"})
	add.Attribute("sAMAccountName", []string{"pat-elsewhere"})
	add.Attribute("userPrincipalName", []string{"pat@gatehouse.test"})
	if err := srv.Admin(t).Add(add); err != nil {
		t.Fatal(err)
	}
	_, err = s.Provision(ctx, adLogin("clash-3", "pat"))
	if !errors.Is(err, provision.ErrConflict) || !strings.Contains(err.Error(), "userPrincipalName") || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(other)) {
		t.Errorf("login of a user whose UPN is held elsewhere: %v, want a conflict naming the holder", err)
	}
}

// TestADHostileDNCharacters: names holding "=" and the other characters
// special in DNs give entries AD takes; a repeat login finds them
// unchanged.
func TestADHostileDNCharacters(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	s := adStore(t, srv, tn, nil)
	ctx := context.Background()
	for i, name := range []string{"a=b", "x=y=z", `back\slash`, "comma, plus+semi;", "#lead", "<angle>", `"quoted"`} {
		l := adLogin("dn-"+strconv.Itoa(i), name, "g="+name, "team=red,blue")
		res, err := s.Provision(ctx, l)
		if err != nil || res.Outcome != provision.Created || res.User.UserName != name {
			t.Errorf("%q: %+v %v", name, res, err)
			continue
		}
		if again, err := s.Provision(ctx, l); err != nil || again.Outcome != provision.Unchanged {
			t.Errorf("%q repeat: %+v %v", name, again, err)
		}
		u, err := s.User(ctx, res.User.ID)
		if err != nil || u.UserName != name || !slices.Contains(u.Groups, "g="+name) {
			t.Errorf("%q read back: %+v %v", name, u, err)
		}
	}
}

// TestADLongGroupName: a group name longer than AD's 64 characters is
// refused as an invalid value, naming the limit, and writes nothing; 64
// characters are fine.
func TestADLongGroupName(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	s := adStore(t, srv, tn, nil)
	ctx := context.Background()
	_, err := s.Provision(ctx, adLogin("long-1", "gina", strings.Repeat("g", 65)))
	if !errors.Is(err, provision.ErrInvalid) || !strings.Contains(err.Error(), "64") {
		t.Errorf("65-character group: %v", err)
	}
	if res, err := srv.Admin(t).Search(ldap.NewSearchRequest(tn.UserBase, ldap.ScopeSingleLevel, 0, 0, 0, false, "(objectClass=user)", nil, nil)); err != nil || len(res.Entries) != 0 {
		t.Errorf("the refused login left %d entries (%v)", len(res.Entries), err)
	}
	if _, err := s.Provision(ctx, adLogin("long-1", "gina", strings.Repeat("g", 64))); err != nil {
		t.Errorf("64-character group: %v", err)
	}
	if _, err := s.Provision(ctx, adLogin("long-2", strings.Repeat("u", 65))); !errors.Is(err, provision.ErrInvalid) {
		t.Errorf("65-character user name: %v", err)
	}
}

// TestADDisabledAccount: an account an administrator disabled is refused
// and never enabled again by a login.
func TestADDisabledAccount(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	s := adStore(t, srv, tn, nil)
	ctx := context.Background()
	l := adLogin("dis-1", "hank")
	if _, err := s.Provision(ctx, l); err != nil {
		t.Fatal(err)
	}
	dn := "CN=hank," + tn.UserBase
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("userAccountControl", []string{"514"})
	if err := srv.Admin(t).Modify(m); err != nil {
		t.Fatal(err)
	}
	l.Claims.Fields[provision.FieldEmail] = "new@example.test"
	if _, err := s.Provision(ctx, l); !errors.Is(err, provision.ErrDisabled) {
		t.Errorf("login of a disabled account: %v", err)
	}
	if uac := adRead(t, srv, dn, "userAccountControl").GetAttributeValue("userAccountControl"); uac != "514" {
		t.Errorf("userAccountControl after the refused login = %s", uac)
	}
}

// TestADRandomPassword: with set_random_password a new account gets a
// password nobody knows and is enabled; an account whose enable step was
// cut off is finished by the next login, which says it changed the user;
// one an administrator set other flags on, or one past the window, is
// left to the administrator; a user SCIM creates inactive stays disabled.
func TestADRandomPassword(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	pw := func(c *ldapdir.Config) { c.SetRandomPassword = true }
	s := adStore(t, srv, tn, pw)
	ctx := context.Background()
	if res, err := s.Provision(ctx, adLogin("pw-1", "ivan")); err != nil || res.Outcome != provision.Created {
		t.Fatalf("first login: %+v %v", res, err)
	}
	e := adRead(t, srv, "CN=ivan,"+tn.UserBase, "userAccountControl", "pwdLastSet", "gatehouseState")
	if e.GetAttributeValue("userAccountControl") != "512" || e.GetAttributeValue("pwdLastSet") == "0" || e.GetAttributeValue("pwdLastSet") == "" {
		t.Errorf("account after the first login: %v", e.Attributes)
	}
	if slices.Contains(e.GetAttributeValues("gatehouseState"), "pending-enable") {
		t.Error("the pending mark stayed")
	}

	// Cut off: created disabled with the pending mark, never enabled.
	pending := func(name, subject, uac string) string {
		dn := "CN=" + name + "," + tn.UserBase
		add := ldap.NewAddRequest(dn, nil)
		add.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
		add.Attribute("sAMAccountName", []string{name})
		add.Attribute("userPrincipalName", []string{name + "@gatehouse.test"})
		add.Attribute("mail", []string{name + "@example.test"})
		add.Attribute("userAccountControl", []string{uac})
		add.Attribute("gatehouseState", []string{"key https://idp.example.test nameid " + subject, "version 1", "name " + name, "pending-enable"})
		if err := srv.Admin(t).Add(add); err != nil {
			t.Fatal(err)
		}
		return dn
	}
	dn := pending("judy", "pw-2", "514")
	res, err := s.Provision(ctx, adLogin("pw-2", "judy"))
	if err != nil || res.Outcome != provision.Updated || !slices.Contains(res.Changed, provision.FieldActive) {
		t.Errorf("login finishing a cut-off account: %+v %v, want updated with active changed", res, err)
	}
	if uac := adRead(t, srv, dn, "userAccountControl").GetAttributeValue("userAccountControl"); uac != "512" {
		t.Errorf("finished account: userAccountControl %s", uac)
	}

	// An administrator disabled it with flags of their own (66050:
	// disabled, password never expires) while it waited.
	dn = pending("kate", "pw-3", "66050")
	if _, err := s.Provision(ctx, adLogin("pw-3", "kate")); !errors.Is(err, provision.ErrDisabled) {
		t.Errorf("login of a pending account an administrator disabled: %v", err)
	}
	if uac := adRead(t, srv, dn, "userAccountControl").GetAttributeValue("userAccountControl"); uac != "66050" {
		t.Errorf("userAccountControl = %s, want the administrator's 66050", uac)
	}

	// Past the window: a store whose clock is 20 minutes ahead.
	dn = pending("liam", "pw-4", "514")
	late := adStore(t, srv, tn, pw, ldapdir.WithClock(func() time.Time { return time.Now().Add(20 * time.Minute) }))
	if _, err := late.Provision(ctx, adLogin("pw-4", "liam")); !errors.Is(err, provision.ErrDisabled) {
		t.Errorf("login of an account pending for 20 minutes: %v", err)
	}
	if uac := adRead(t, srv, dn, "userAccountControl").GetAttributeValue("userAccountControl"); uac != "514" {
		t.Errorf("userAccountControl = %s, want 514", uac)
	}

	// SCIM creates a user inactive.
	u, err := s.CreateUser(ctx, provision.User{UserName: "mona", Email: "mona@example.test", Active: false})
	if err != nil || u.Active {
		t.Fatalf("SCIM create inactive: %+v %v", u, err)
	}
	e = adRead(t, srv, "CN=mona,"+tn.UserBase, "userAccountControl", "pwdLastSet")
	if uac, _ := strconv.Atoi(e.GetAttributeValue("userAccountControl")); uac&2 == 0 || e.GetAttributeValue("pwdLastSet") == "0" {
		t.Errorf("user created inactive over SCIM: %v", e.Attributes)
	}
}

// TestADUPNWithoutSpaces: a user name with spaces gives a
// userPrincipalName without them.
func TestADUPNWithoutSpaces(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	s := adStore(t, srv, tn, nil)
	if _, err := s.Provision(context.Background(), adLogin("upn-1", "nora smith")); err != nil {
		t.Fatal(err)
	}
	e := adRead(t, srv, "CN=nora smith,"+tn.UserBase, "userPrincipalName", "sAMAccountName")
	if upn := e.GetAttributeValue("userPrincipalName"); strings.ContainsAny(upn, " \t") || !strings.HasSuffix(upn, "@gatehouse.test") {
		t.Errorf("userPrincipalName = %q", upn)
	}
	if sam := e.GetAttributeValue("sAMAccountName"); strings.Contains(sam, " ") || sam == "" {
		t.Errorf("sAMAccountName = %q", sam)
	}
}

// TestADSCIMDeleteLeavesTombstone: SCIM's DELETE removes the account and
// records a tombstone in a container under user_base (the schema
// extension lets containers hold gatehouseState); a login of the deleted
// identity is refused, never creating the user again.
func TestADSCIMDeleteLeavesTombstone(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	s := adStore(t, srv, tn, nil)
	ctx := context.Background()
	l := adLogin("del-1", "oscar", "Staff")
	res, err := s.Provision(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, res.User.ID, 0); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	e := adRead(t, srv, "CN=gatehouse-tombstones,"+tn.UserBase, "objectClass", "gatehouseState")
	if !slices.ContainsFunc(e.GetAttributeValues("gatehouseState"), func(v string) bool { return strings.Contains(v, "del-1") }) {
		t.Errorf("tombstone values %v", e.GetAttributeValues("gatehouseState"))
	}
	if _, err := s.Provision(ctx, l); !errors.Is(err, provision.ErrDisabled) {
		t.Errorf("login of a deleted identity: %v", err)
	}
}

// TestADDeployExample: deploy/store-active-directory.example.yaml, with
// only the server, the service account and the OUs replaced, passes check
// against a real domain controller, and a login through it fills every
// attribute it maps.
func TestADDeployExample(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "store-active-directory.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Store struct {
			LDAP ldapdir.Config `yaml:"ldap"`
		} `yaml:"store"`
	}
	dec := yaml.NewDecoder(strings.NewReader(strings.ReplaceAll(string(b), "${GATEHOUSE_LDAP_PASSWORD}", samba.BindPassword)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	c := f.Store.LDAP
	c.URL, c.CAFile, c.BindDN, c.UserBase, c.GroupBase = srv.TLSURL, srv.CAFile, samba.BindDN, tn.UserBase, tn.GroupBase
	for _, random := range []bool{false, true} {
		c.SetRandomPassword = random
		s, err := ldapdir.New(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		ctx := context.Background()
		if err := s.Check(ctx); err != nil {
			t.Errorf("check of the example: %v", err)
		}
		name := "example" + strconv.FormatBool(random)
		l := adLogin("ex-"+name, name, "Example Staff")
		l.Claims.Fields[provision.FieldDisplayName] = "Example User"
		l.Claims.Fields[provision.FieldGivenName] = "Example"
		l.Claims.Fields[provision.FieldFamilyName] = "User"
		l.Claims.Extra = map[string]string{"employee_id": "E-1234"}
		res, err := s.Provision(ctx, l)
		if err != nil || res.Outcome != provision.Created {
			t.Fatalf("login through the example (set_random_password %v): %+v %v", random, res, err)
		}
		e := adRead(t, srv, "CN="+name+","+tn.UserBase, "mail", "displayName", "givenName", "sn", "employeeID", "userPrincipalName", "userAccountControl")
		for attr, want := range map[string]string{"mail": name + "@example.test", "displayName": "Example User", "givenName": "Example",
			"sn": "User", "employeeID": "E-1234", "userPrincipalName": name + "@corp.example.com", "userAccountControl": "512"} {
			if got := e.GetAttributeValue(attr); got != want {
				t.Errorf("%s = %q, want %q", attr, got, want)
			}
		}
		if again, err := s.Provision(ctx, l); err != nil || again.Outcome != provision.Unchanged {
			t.Errorf("repeat login: %+v %v", again, err)
		}
	}
}

// TestADNeverJoinsProtectedGroups: the domain's root and its built-in
// containers are refused as group_base (and user_base); and under an OU
// of gatehouse's own, even bound as a domain administrator, a login
// asserting a group that AD protects (adminCount) or that is nested into
// Domain Admins (which AD marks only later, and Samba never) is refused,
// and the group is left as it was.
func TestADNeverJoinsProtectedGroups(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	for _, base := range []string{samba.BaseDN, "CN=Users," + samba.BaseDN, "CN=Builtin," + samba.BaseDN} {
		cfg := adStoreConfig(srv, tn)
		cfg.GroupBase = base
		if _, err := ldapdir.New(cfg); err == nil || !strings.Contains(err.Error(), "group_base") {
			t.Errorf("group_base %s: %v, want refused", base, err)
		}
		cfg = adStoreConfig(srv, tn)
		cfg.UserBase = base
		if _, err := ldapdir.New(cfg); err == nil || !strings.Contains(err.Error(), "user_base") {
			t.Errorf("user_base %s: %v, want refused", base, err)
		}
	}
	admin := srv.Admin(t)
	group := func(name string, attrs map[string]string) string {
		dn := "CN=" + name + "," + tn.GroupBase
		add := ldap.NewAddRequest(dn, nil)
		add.Attribute("objectClass", []string{"group"})
		add.Attribute("sAMAccountName", []string{tenantSAM(tn, name)})
		for k, v := range attrs {
			add.Attribute(k, []string{v})
		}
		if err := admin.Add(add); err != nil {
			t.Fatalf("add %s: %v", dn, err)
		}
		return dn
	}
	tier0 := group("Tier0", nil)
	nestIn(t, srv, domainAdmins, tier0)
	inner := group("Tier0-inner", nil) // nested two deep
	nestIn(t, srv, tier0, inner)
	marked := group("Marked", map[string]string{"adminCount": "1"})
	s := adStore(t, srv, tn, func(c *ldapdir.Config) { c.BindDN, c.BindPassword = samba.AdminDN, samba.AdminPassword })
	ctx := context.Background()
	for i, dn := range []string{tier0, inner, marked} {
		name := strings.TrimPrefix(strings.Split(dn, ",")[0], "CN=")
		before := adRead(t, srv, dn, "member").GetAttributeValues("member")
		_, err := s.Provision(ctx, adLogin("prot-"+strconv.Itoa(i), "prot"+strconv.Itoa(i), name))
		if !errors.Is(err, provision.ErrConflict) || !strings.Contains(err.Error(), "protects") {
			t.Errorf("login asserting %q: %v, want refused", name, err)
		}
		if after := adRead(t, srv, dn, "member").GetAttributeValues("member"); !slices.Equal(before, after) {
			t.Errorf("%s members changed: %v -> %v", dn, before, after)
		}
	}
	if m := adRead(t, srv, domainAdmins, "member").GetAttributeValues("member"); slices.ContainsFunc(m, func(d string) bool {
		return strings.Contains(strings.ToLower(d), strings.ToLower(tn.UserBase))
	}) {
		t.Errorf("a user of the tenant is in Domain Admins: %v", m)
	}
}

// TestADTombstoneNameReserved (red team R1): on AD users are named by
// cn, as the tombstone entry is. A login or a SCIM create named
// gatehouse-tombstones is refused, in any case; and a user entry that
// holds that DN already (made before the name was reserved) is never
// taken for the tombstones: logins and deletions refuse rather than
// write tombstones into it.
func TestADTombstoneNameReserved(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	s := adStore(t, srv, tn, nil)
	ctx := context.Background()
	for i, name := range []string{"gatehouse-tombstones", "GATEHOUSE-TOMBSTONES", "Gatehouse-Tombstones"} {
		if _, err := s.Provision(ctx, adLogin("tomb-"+strconv.Itoa(i), name)); !errors.Is(err, provision.ErrInvalid) {
			t.Errorf("login named %q: %v, want refused", name, err)
		}
		if _, err := s.CreateUser(ctx, provision.User{UserName: name, Active: true}); !errors.Is(err, provision.ErrInvalid) {
			t.Errorf("SCIM create of %q: %v, want refused", name, err)
		}
	}
	res, err := s.Provision(ctx, adLogin("tomb-r", "renamer"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Provision(ctx, adLogin("tomb-r", "gatehouse-tombstones")); !errors.Is(err, provision.ErrInvalid) {
		t.Errorf("rename to the tombstone entry's name: %v, want refused", err)
	}
	// A squatter made by hand.
	add := ldap.NewAddRequest("CN=gatehouse-tombstones,"+tn.UserBase, nil)
	add.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
	add.Attribute("sAMAccountName", []string{tenantSAM(tn, "squat")})
	add.Attribute("gatehouseState", []string{"key https://idp.example.test nameid squatter", "version 1"})
	if err := srv.Admin(t).Add(add); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, res.User.ID, 0); err == nil || !strings.Contains(err.Error(), "tombstone") {
		t.Errorf("delete with a squatted tombstone entry: %v, want refused", err)
	}
	if _, err := s.Provision(ctx, adLogin("tomb-new", "newcomer")); err == nil || !strings.Contains(err.Error(), "tombstone") {
		t.Errorf("first login with a squatted tombstone entry: %v, want refused", err)
	}
	if vals := adRead(t, srv, "CN=gatehouse-tombstones,"+tn.UserBase, "gatehouseState").GetAttributeValues("gatehouseState"); len(vals) != 2 {
		t.Errorf("the squatter's state changed: %v", vals)
	}
}

// TestADProtectedAccountsLeftAlone (red team R1): an account nested into
// Domain Admins is never adopted by a login (adopt_existing), nor
// disabled, replaced or deleted over SCIM.
func TestADProtectedAccountsLeftAlone(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	dn := adHandMadeUser(t, srv, tn, "opsadmin", map[string]string{"userPrincipalName": "opsadmin@corp.example"})
	nestIn(t, srv, domainAdmins, dn)
	s := adStore(t, srv, tn, func(c *ldapdir.Config) {
		c.AdoptExisting, c.BindDN, c.BindPassword = true, samba.AdminDN, samba.AdminPassword
	})
	ctx := context.Background()
	if _, err := s.Provision(ctx, adLogin("adopt-1", "opsadmin")); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("adopting a Domain Admins member: %v, want refused", err)
	}
	id := adRead(t, srv, dn, "objectGUID").GetRawAttributeValue("objectGUID")
	uid := fmt.Sprintf("%x", id)
	if err := s.SetActive(ctx, uid, false); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("SCIM disable of a Domain Admins member: %v", err)
	}
	if _, err := s.ReplaceUser(ctx, provision.User{ID: uid, UserName: "opsadmin", Email: "x@example.test", Active: true}, 0); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("SCIM replace of a Domain Admins member: %v", err)
	}
	if err := s.DeleteUser(ctx, uid, 0); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("SCIM delete of a Domain Admins member: %v", err)
	}
	e := adRead(t, srv, dn, "userPrincipalName", "userAccountControl", "mail")
	if e.GetAttributeValue("userPrincipalName") != "opsadmin@corp.example" || e.GetAttributeValue("userAccountControl") != "512" || e.GetAttributeValue("mail") != "" {
		t.Errorf("the protected account changed: %v", e.Attributes)
	}
}

// TestADPrimaryGroupProtects (red team R2): an account whose primary
// group is Domain Admins is not in that group's member attribute, yet is
// one of them: a login never adopts it, and SCIM never disables it.
func TestADPrimaryGroupProtects(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	admin := srv.Admin(t)
	dn := adHandMadeUser(t, srv, tn, "pgadmin", nil)
	da := domainAdmins
	nestIn(t, srv, da, dn)
	pg := ldap.NewModifyRequest(dn, nil)
	pg.Replace("primaryGroupID", []string{"512"})
	if err := admin.Modify(pg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := srv.Dial(samba.AdminDN, samba.AdminPassword); err == nil {
			back := ldap.NewModifyRequest(dn, nil)
			back.Replace("primaryGroupID", []string{"513"})
			c.Modify(back)
			c.Close()
		}
	})
	// As AD does: the primary group's membership is implicit, not in
	// member (Samba keeps the value; remove it).
	drop := ldap.NewModifyRequest(da, nil)
	drop.Delete("member", []string{dn})
	admin.Modify(drop)
	if members := adRead(t, srv, da, "member").GetAttributeValues("member"); slices.Contains(members, dn) {
		t.Fatal("the account is still listed in Domain Admins' member")
	}
	s := adStore(t, srv, tn, func(c *ldapdir.Config) {
		c.AdoptExisting, c.BindDN, c.BindPassword = true, samba.AdminDN, samba.AdminPassword
	})
	ctx := context.Background()
	if _, err := s.Provision(ctx, adLogin("pg-1", "pgadmin")); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("adopting an account whose primary group is Domain Admins: %v, want refused", err)
	}
	uid := fmt.Sprintf("%x", adRead(t, srv, dn, "objectGUID").GetRawAttributeValue("objectGUID"))
	if err := s.SetActive(ctx, uid, false); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("SCIM disable: %v, want refused", err)
	}
	if uac := adRead(t, srv, dn, "userAccountControl").GetAttributeValue("userAccountControl"); uac != "512" {
		t.Errorf("userAccountControl = %s", uac)
	}
}

// TestADPromotedAccountNotChangedByLogins (red team R3): an account
// gatehouse created, which an administrator then made a domain
// administrator, is not changed by a login any more: a login that would
// write is refused, an unchanged one goes through.
func TestADPromotedAccountNotChangedByLogins(t *testing.T) {
	srv := startAD(t)
	tn := adTenant(t, srv)
	s := adStore(t, srv, tn, nil)
	ctx := context.Background()
	l := adLogin("promo-1", "promoted")
	if _, err := s.Provision(ctx, l); err != nil {
		t.Fatal(err)
	}
	dn := "CN=promoted," + tn.UserBase
	nestIn(t, srv, domainAdmins, dn)
	if res, err := s.Provision(ctx, l); err != nil || res.Outcome != provision.Unchanged {
		t.Errorf("unchanged login of the promoted account: %+v %v", res, err)
	}
	l.Claims.Fields[provision.FieldEmail] = "attacker-chosen@evil.example"
	if _, err := s.Provision(ctx, l); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("a login changing the promoted account: %v, want refused", err)
	}
	if mail := adRead(t, srv, dn, "mail").GetAttributeValue("mail"); mail != "promoted@example.test" {
		t.Errorf("mail = %q", mail)
	}
}
