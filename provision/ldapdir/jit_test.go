package ldapdir_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/provision"
	"gatehouse/provision/ldapdir"
	"gatehouse/test/slapd"
)

// writes counts the write operations a store sent.
func writes(st ldapdir.Stats) int64 { return st.Adds + st.Modifies + st.ModifyDNs + st.Deletes }

// slapdWrites counts the write operations slapd logged since mark.
func slapdWrites(srv *slapd.Server, mark slapd.LogMark) int {
	ops := srv.Ops(mark)
	return ops["ADD"] + ops["MOD"] + ops["DEL"] + ops["MODRDN"]
}

// scimLogin is alice's login from an IdP that may link to a user SCIM
// created and leaves alone the e-mail and display name once SCIM wrote
// them.
func scimLogin() provision.Login {
	l := aliceLogin()
	l.LinkBy = provision.FieldUserName
	l.Reserved = []string{provision.FieldEmail, provision.FieldDisplayName}
	return l
}

// TestSCIMWrittenEmailKeptAtLogin: SCIM wrote the e-mail only, so a login
// links to the user, leaves its e-mail alone and says so in Result.Kept,
// and writes the display name, which SCIM did not write; the entry
// records the fields SCIM wrote, and the repeat login writes nothing.
func TestSCIMWrittenEmailKeptAtLogin(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	ctx := context.Background()
	created, err := s.CreateUser(ctx, provision.User{UserName: "alice", Email: "alice@hr.example.test", DisplayName: "Alice (HR)",
		Active: true, SCIMFields: []string{provision.FieldEmail}})
	if err != nil {
		t.Fatal(err)
	}
	if created.Owner != provision.OwnerSCIM || !slices.Equal(created.SCIMFields, []string{provision.FieldEmail}) {
		t.Fatalf("created owner %q, SCIM fields %q; want scim, [email]", created.Owner, created.SCIMFields)
	}
	state := readEntry(t, srv, "uid=alice,"+tn.People, "gatehouseState").GetAttributeValues("gatehouseState")
	if !slices.Contains(state, "scim field email") || !slices.Contains(state, "scim fields") {
		t.Errorf("state %q does not record the field SCIM wrote", state)
	}

	res, err := s.Provision(ctx, scimLogin())
	if err != nil || res.Outcome != provision.Linked || res.User.ID != created.ID {
		t.Fatalf("first login: %+v %v; want linked to %s", res, err, created.ID)
	}
	if got := res.KeptNames(); !slices.Equal(got, []string{"email (owned by SCIM)"}) {
		t.Errorf("kept = %q, want [email (owned by SCIM)]", got)
	}
	if !slices.Equal(res.Changed, []string{provision.FieldDisplayName, provision.FieldGroups}) {
		t.Errorf("changed = %q, want [display_name groups]", res.Changed)
	}
	got, err := s.User(ctx, created.ID)
	if err != nil || got.Email != "alice@hr.example.test" || got.DisplayName != "Alice Liddell" ||
		!slices.Equal(got.SCIMFields, []string{provision.FieldEmail}) {
		t.Errorf("stored %+v (%v): want SCIM's e-mail, the login's display name, SCIM fields [email]", got, err)
	}

	before, mark := s.Stats(), srv.Mark()
	again, err := s.Provision(ctx, scimLogin())
	if err != nil || again.Outcome != provision.Unchanged || !slices.Equal(again.KeptNames(), []string{"email (owned by SCIM)"}) {
		t.Errorf("repeat login: %+v %v; want unchanged, e-mail kept", again, err)
	}
	if d, n := writes(s.Stats())-writes(before), slapdWrites(srv, mark); d != 0 || n != 0 {
		t.Errorf("repeat login sent %d writes (slapd logged %d)", d, n)
	}
}

// TestLegacySCIMEntryOwnsEveryField: an entry SCIM wrote before gatehouse
// recorded which fields it wrote (the owner mark, no field values) reads
// as SCIM owning every field, so a login keeps every reserved field; a
// SCIM replace then records exactly the fields it is given.
func TestLegacySCIMEntryOwnsEveryField(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	ctx := context.Background()
	created, err := s.CreateUser(ctx, provision.User{UserName: "alice", Email: "alice@hr.example.test", DisplayName: "Alice (HR)",
		Active: true, SCIMFields: []string{provision.FieldEmail}})
	if err != nil {
		t.Fatal(err)
	}
	m := ldap.NewModifyRequest("uid=alice,"+tn.People, nil)
	m.Delete("gatehouseState", []string{"scim field email", "scim fields"})
	if err := srv.Admin(t).Modify(m); err != nil {
		t.Fatal(err)
	}
	legacy, err := s.User(ctx, created.ID)
	if err != nil || !slices.Equal(legacy.SCIMFields, []string{provision.AllFields}) {
		t.Fatalf("legacy entry: SCIM fields %q (%v), want [*]", legacy.SCIMFields, err)
	}
	res, err := s.Provision(ctx, scimLogin())
	if err != nil || res.Outcome != provision.Linked {
		t.Fatalf("first login: %+v %v", res, err)
	}
	if got := res.KeptNames(); !slices.Equal(got, []string{"email (owned by SCIM)", "display_name (owned by SCIM)"}) {
		t.Errorf("kept = %q, want e-mail and display name", got)
	}
	got, _ := s.User(ctx, created.ID)
	if got.Email != "alice@hr.example.test" || got.DisplayName != "Alice (HR)" {
		t.Errorf("the login wrote fields of a legacy SCIM user: %+v", got)
	}

	got.SCIMFields = []string{provision.FieldDisplayName}
	replaced, err := s.ReplaceUser(ctx, got, got.Version)
	if err != nil || !slices.Equal(replaced.SCIMFields, []string{provision.FieldDisplayName}) {
		t.Fatalf("replace: SCIM fields %q (%v), want [display_name]", replaced.SCIMFields, err)
	}
	res, err = s.Provision(ctx, scimLogin())
	if err != nil || res.Outcome != provision.Updated || !slices.Equal(res.Changed, []string{provision.FieldEmail}) ||
		!slices.Equal(res.KeptNames(), []string{"display_name (owned by SCIM)"}) {
		t.Errorf("login after the replace: %+v %v; want the e-mail written, the display name kept", res, err)
	}
}

// TestSCIMSetActiveOwnsNothing: deactivating and reactivating a user
// writes no field, so SCIM owns none of them and the next login writes
// its e-mail; a SCIM replace that carries no field SCIM wrote (a PATCH of
// active alone) owns none either; and SetActive leaves the recorded
// fields of a user SCIM wrote as they are.
func TestSCIMSetActiveOwnsNothing(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	ctx := context.Background()
	first, err := s.Provision(ctx, scimLogin())
	if err != nil {
		t.Fatal(err)
	}
	id := first.User.ID
	for _, active := range []bool{false, true} {
		if err := s.SetActive(ctx, id, active); err != nil {
			t.Fatal(err)
		}
	}
	u, err := s.User(ctx, id)
	if err != nil || len(u.SCIMFields) != 0 || u.Owner != provision.OwnerJIT {
		t.Fatalf("after SetActive: owner %q, SCIM fields %q (%v); want jit and none", u.Owner, u.SCIMFields, err)
	}
	l := scimLogin()
	l.Claims.Fields[provision.FieldEmail] = "alice@new.example.test"
	res, err := s.Provision(ctx, l)
	if err != nil || res.Outcome != provision.Updated || !slices.Equal(res.Changed, []string{provision.FieldEmail}) || len(res.Kept) != 0 {
		t.Errorf("login after SetActive: %+v %v; want the e-mail written, nothing kept", res, err)
	}

	u, _ = s.User(ctx, id)
	u.Active = false
	replaced, err := s.ReplaceUser(ctx, u, u.Version)
	if err != nil || replaced.Owner != provision.OwnerSCIM || len(replaced.SCIMFields) != 0 {
		t.Fatalf("replace of active alone: owner %q, SCIM fields %q (%v); want scim and none", replaced.Owner, replaced.SCIMFields, err)
	}
	if err := s.SetActive(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	l.Claims.Fields[provision.FieldEmail] = "alice@newer.example.test"
	if res, err := s.Provision(ctx, l); err != nil || !slices.Equal(res.Changed, []string{provision.FieldEmail}) || len(res.Kept) != 0 {
		t.Errorf("login after a replace of active alone: %+v %v; want the e-mail written", res, err)
	}

	bob, err := s.CreateUser(ctx, provision.User{UserName: "bob", Email: "bob@example.test", Active: true, SCIMFields: []string{provision.FieldEmail}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetActive(ctx, bob.ID, false); err != nil {
		t.Fatal(err)
	}
	if got, err := s.User(ctx, bob.ID); err != nil || got.Active || !slices.Equal(got.SCIMFields, []string{provision.FieldEmail}) {
		t.Errorf("SetActive changed the recorded SCIM fields: %q active=%v (%v)", got.SCIMFields, got.Active, err)
	}
}

// TestReplaceUserRecordsSCIMFields: ReplaceUser records exactly the fields
// it is given, a replace that changes nothing writes nothing, and a field
// name that cannot be a state value is refused.
func TestReplaceUserRecordsSCIMFields(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	ctx := context.Background()
	u, err := s.CreateUser(ctx, provision.User{UserName: "carol", Active: true})
	if err != nil || len(u.SCIMFields) != 0 {
		t.Fatalf("create with no field: %q %v", u.SCIMFields, err)
	}
	for _, fields := range [][]string{{"office", provision.FieldEmail, provision.FieldDisplayName}, {provision.FieldEmail}, {provision.AllFields}, nil} {
		u.SCIMFields = fields
		if u, err = s.ReplaceUser(ctx, u, u.Version); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.User(ctx, u.ID); !slices.Equal(got.SCIMFields, provision.SortedUnique(fields)) {
			t.Errorf("replace with %q stored %q", fields, got.SCIMFields)
		}
	}
	before := s.Stats()
	if again, err := s.ReplaceUser(ctx, u, u.Version); err != nil || again.Version != u.Version || writes(s.Stats()) != writes(before) {
		t.Errorf("replace with nothing new: version %d -> %d, %d writes (%v)", u.Version, again.Version, writes(s.Stats())-writes(before), err)
	}
	u.SCIMFields = []string{"bad name"}
	if _, err := s.ReplaceUser(ctx, u, 0); !errors.Is(err, provision.ErrInvalid) {
		t.Errorf("a field name with a space: err = %v, want ErrInvalid", err)
	}
}

// TestPlanPreviewsWithoutWriting: Plan answers what Provision would do
// (create, update, unchanged, link, and each refusal) and sends no write,
// by the store's counters and by slapd's log.
func TestPlanPreviewsWithoutWriting(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	ctx := context.Background()
	plan := func(t *testing.T, st *ldapdir.Store, l provision.Login) (provision.Result, error) {
		t.Helper()
		var pl provision.Planner = st // what explain uses
		before, mark := st.Stats(), srv.Mark()
		res, err := pl.Plan(ctx, l)
		if d, n := writes(st.Stats())-writes(before), slapdWrites(srv, mark); d != 0 || n != 0 {
			t.Errorf("Plan sent %d writes (slapd logged %d)", d, n)
		}
		return res, err
	}

	res, err := plan(t, s, aliceLogin())
	if err != nil || res.Outcome != provision.Created || res.User.UserName != "alice" || !slices.Equal(res.User.Groups, []string{"staff"}) ||
		!slices.Equal(res.Changed, []string{provision.FieldUserName, provision.FieldEmail, provision.FieldDisplayName, provision.FieldGroups}) {
		t.Errorf("Plan(first login) = %+v, %v; want created", res, err)
	}
	first, err := s.Provision(ctx, aliceLogin())
	if err != nil || first.Outcome != provision.Created {
		t.Fatalf("Provision after Plan: %+v %v: Plan must not have created the user", first, err)
	}
	if res, err := plan(t, s, aliceLogin()); err != nil || res.Outcome != provision.Unchanged || res.Changed != nil || res.User.ID != first.User.ID {
		t.Errorf("Plan(repeat login) = %+v, %v; want unchanged", res, err)
	}
	changed := aliceLogin()
	changed.Claims.Fields[provision.FieldEmail] = "alice@new.example.test"
	changed.Claims.Groups = []string{"ops"}
	res, err = plan(t, s, changed)
	if err != nil || res.Outcome != provision.Updated || !slices.Equal(res.Changed, []string{provision.FieldEmail, provision.FieldGroups}) ||
		res.User.Email != "alice@new.example.test" || !slices.Equal(res.User.Groups, []string{"ops"}) {
		t.Errorf("Plan(changed login) = %+v, %v; want email and groups updated", res, err)
	}
	if got, err := s.User(ctx, first.User.ID); err != nil || got.Email != "alice@example.test" || got.Version != first.User.Version {
		t.Errorf("after Plan the stored user is %+v (%v)", got, err)
	}

	taken := aliceLogin()
	taken.Key.Subject, taken.Claims.Fields[provision.FieldUserName] = "other-id", "ALICE"
	if _, err := plan(t, s, taken); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("Plan(taken user name) err = %v, want ErrConflict", err)
	}
	unknown := aliceLogin()
	unknown.Key.Subject, unknown.NoCreate = "nobody-id", true
	if _, err := plan(t, s, unknown); !errors.Is(err, provision.ErrNotFound) {
		t.Errorf("Plan(no_create, unknown key) err = %v, want ErrNotFound", err)
	}

	bob, err := s.CreateUser(ctx, provision.User{UserName: "bob", Email: "bob@hr.example.test", Active: true, SCIMFields: []string{provision.FieldEmail}})
	if err != nil {
		t.Fatal(err)
	}
	bobLogin := scimLogin()
	bobLogin.Key.Subject = "bob-id"
	bobLogin.Claims.Fields = map[string]string{provision.FieldUserName: "bob", provision.FieldEmail: "bob@example.test"}
	res, err = plan(t, s, bobLogin)
	if err != nil || res.Outcome != provision.Linked || res.User.ID != bob.ID || !slices.Equal(res.KeptNames(), []string{"email (owned by SCIM)"}) {
		t.Errorf("Plan(login of a SCIM user) = %+v, %v; want linked to %s, e-mail kept", res, err, bob.ID)
	}
	if res, err := s.Provision(ctx, bobLogin); err != nil || res.Outcome != provision.Linked {
		t.Errorf("Provision after Plan(link): %+v %v: Plan must not have linked", res, err)
	}

	if err := s.SetActive(ctx, first.User.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := plan(t, s, changed); !errors.Is(err, provision.ErrDisabled) {
		t.Errorf("Plan(deactivated user) err = %v, want ErrDisabled", err)
	}
	if err := s.DeleteUser(ctx, first.User.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := plan(t, s, aliceLogin()); !errors.Is(err, provision.ErrDisabled) {
		t.Errorf("Plan(login of a user deleted over SCIM) err = %v, want ErrDisabled", err)
	}

	// An entry made before gatehouse at the DN a new user would get: a
	// conflict, or, with adopt_existing, a link to it.
	add := ldap.NewAddRequest("uid=carol,"+tn.People, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("uid", []string{"carol"})
	add.Attribute("cn", []string{"Carol"})
	add.Attribute("sn", []string{"Carroll"})
	if err := srv.Admin(t).Add(add); err != nil {
		t.Fatal(err)
	}
	carol := aliceLogin()
	carol.Key.Subject, carol.Claims.Fields[provision.FieldUserName] = "carol-id", "carol"
	if _, err := plan(t, s, carol); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("Plan(DN held by a foreign entry) err = %v, want ErrConflict", err)
	}
	cfg := baseConfig(srv, tn)
	cfg.AdoptExisting = true
	adopter := open(t, cfg)
	res, err = plan(t, adopter, carol)
	if err != nil || res.Outcome != provision.Linked || res.User.UserName != "carol" || res.User.ID == "" {
		t.Errorf("Plan(adoptable entry) = %+v, %v; want linked", res, err)
	}
	if got, err := adopter.Provision(ctx, carol); err != nil || got.Outcome != provision.Linked || got.User.ID != res.User.ID {
		t.Errorf("Provision(adoptable entry) = %+v, %v; want linked to %s as planned", got, err, res.User.ID)
	}
}

// TestRepeatLoginRepairsStaleNameFold: an entry whose recorded name fold
// is outdated (written under an older fold) or missing is brought up to
// date by the next login, even when nothing of the user changes, so that
// a look-alike name is refused afterwards; the login reports unchanged.
func TestRepeatLoginRepairsStaleNameFold(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	ctx := context.Background()
	if _, err := s.Provision(ctx, aliceLogin()); err != nil {
		t.Fatal(err)
	}
	dn := "uid=alice," + tn.People
	for _, stale := range [][]string{{"name àlice"}, nil} {
		m := ldap.NewModifyRequest(dn, nil)
		m.Delete("gatehouseState", []string{"name alice"})
		if stale != nil {
			m.Add("gatehouseState", stale)
		}
		if err := srv.Admin(t).Modify(m); err != nil {
			t.Fatal(err)
		}
		res, err := s.Provision(ctx, aliceLogin())
		if err != nil || res.Outcome != provision.Unchanged || len(res.Changed) != 0 {
			t.Fatalf("repeat login over stale fold %q: %+v %v, want unchanged", stale, res, err)
		}
		vals := readEntry(t, srv, dn, "gatehouseState").GetAttributeValues("gatehouseState")
		if !slices.Contains(vals, "name alice") || slices.Contains(vals, "name àlice") {
			t.Errorf("after the login over stale fold %q the state is %q", stale, vals)
		}
		if res, err := s.Provision(ctx, aliceLogin()); err != nil || res.Outcome != provision.Unchanged {
			t.Errorf("the next login: %+v %v", res, err)
		}
	}
}
