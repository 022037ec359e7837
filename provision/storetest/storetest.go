// Package storetest is the conformance suite every provision.Store
// backend runs unchanged: Run(t, newStore).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gatehouse/provision"
)

// Run exercises a Store. newStore must return an empty store; the suite
// closes it.
func Run(t *testing.T, newStore func(t *testing.T) provision.Store) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.run(t, s)
		})
	}
}

const idp = "https://idp.example.test/metadata"

func key(subject string) provision.Key {
	return provision.Key{IdP: idp, Kind: "nameid", Subject: subject}
}

func login(subject string, fields map[string]string, groups ...string) provision.Login {
	c := provision.Claims{Fields: fields}
	if groups != nil {
		c.Groups, c.HasGroups = provision.SortedUnique(groups), true
	}
	return provision.Login{Key: key(subject), Claims: c}
}

func alice() provision.Login {
	return login("alice-id", map[string]string{
		provision.FieldUserName: "alice", provision.FieldEmail: "alice@example.test",
		provision.FieldDisplayName: "Alice Liddell", provision.FieldGivenName: "Alice", provision.FieldFamilyName: "Liddell",
	}, "staff", "readers")
}

func mustProvision(t *testing.T, s provision.Store, l provision.Login) provision.Result {
	t.Helper()
	res, err := s.Provision(context.Background(), l)
	if err != nil {
		t.Fatalf("Provision(%q) err = %v", l.Key.Subject, err)
	}
	return res
}

var cases = []struct {
	name string
	run  func(t *testing.T, s provision.Store)
}{
	{"FirstLoginCreates", func(t *testing.T, s provision.Store) {
		res := mustProvision(t, s, alice())
		if res.Outcome != provision.Created {
			t.Fatalf("Outcome = %q, want created", res.Outcome)
		}
		got, err := s.User(context.Background(), res.User.ID)
		if err != nil {
			t.Fatalf("User(%s) err = %v", res.User.ID, err)
		}
		want := provision.User{ID: res.User.ID, UserName: "alice", Email: "alice@example.test", DisplayName: "Alice Liddell",
			GivenName: "Alice", FamilyName: "Liddell", Groups: []string{"readers", "staff"}, Active: true, Owner: provision.OwnerJIT, Version: 1}
		if d := cmp.Diff(want, got, cmpUser); d != "" {
			t.Errorf("stored user (-want +got):\n%s", d)
		}
		if d := cmp.Diff(got, res.User, cmpUser); d != "" {
			t.Errorf("returned user differs from stored (-stored +returned):\n%s", d)
		}
	}},
	{"UnchangedLoginWritesNothing", func(t *testing.T, s provision.Store) {
		first := mustProvision(t, s, alice())
		again := mustProvision(t, s, alice())
		if again.Outcome != provision.Unchanged || len(again.Changed) != 0 {
			t.Fatalf("second login: Outcome = %q, Changed = %v, want unchanged and none", again.Outcome, again.Changed)
		}
		got, _ := s.User(context.Background(), first.User.ID)
		if got.Version != first.User.Version || !got.Updated.Equal(first.User.Updated) {
			t.Errorf("unchanged login moved version %d -> %d, updated %v -> %v", first.User.Version, got.Version, first.User.Updated, got.Updated)
		}
	}},
	{"ChangedLoginUpdatesOnlyChangedFields", func(t *testing.T, s provision.Store) {
		first := mustProvision(t, s, alice())
		l := alice()
		l.Claims.Fields[provision.FieldEmail] = "alice@new.example.test"
		l.Claims.Fields[provision.FieldDisplayName] = "Alice L."
		res := mustProvision(t, s, l)
		if res.Outcome != provision.Updated {
			t.Fatalf("Outcome = %q, want updated", res.Outcome)
		}
		if d := cmp.Diff([]string{provision.FieldEmail, provision.FieldDisplayName}, res.Changed); d != "" {
			t.Errorf("Changed (-want +got):\n%s", d)
		}
		got, _ := s.User(context.Background(), first.User.ID)
		if got.Email != "alice@new.example.test" || got.DisplayName != "Alice L." || got.GivenName != "Alice" {
			t.Errorf("stored user = %+v", got)
		}
		if got.Version != first.User.Version+1 {
			t.Errorf("Version = %d, want %d", got.Version, first.User.Version+1)
		}
	}},
	{"AbsentFieldIsKeptEmptyIsCleared", func(t *testing.T, s provision.Store) {
		first := mustProvision(t, s, alice())
		l := alice()
		delete(l.Claims.Fields, provision.FieldEmail)
		l.Claims.Fields[provision.FieldGivenName] = ""
		res := mustProvision(t, s, l)
		if d := cmp.Diff([]string{provision.FieldGivenName}, res.Changed); d != "" {
			t.Errorf("Changed (-want +got):\n%s", d)
		}
		got, _ := s.User(context.Background(), first.User.ID)
		if got.Email != "alice@example.test" || got.GivenName != "" {
			t.Errorf("email = %q (want kept), given name = %q (want cleared)", got.Email, got.GivenName)
		}
	}},
	{"ExtraAttributes", func(t *testing.T, s provision.Store) {
		l := alice()
		l.Claims.Extra = map[string]string{"department": "R&D", "office": "B-12"}
		first := mustProvision(t, s, l)
		l.Claims.Extra = map[string]string{"department": "Research", "office": ""}
		res := mustProvision(t, s, l)
		if d := cmp.Diff([]string{"department", "office"}, res.Changed); d != "" {
			t.Errorf("Changed (-want +got):\n%s", d)
		}
		got, _ := s.User(context.Background(), first.User.ID)
		if d := cmp.Diff(map[string]string{"department": "Research"}, got.Extra); d != "" {
			t.Errorf("Extra (-want +got):\n%s", d)
		}
	}},
	{"GroupsSyncOwnSourceOnly", func(t *testing.T, s provision.Store) {
		first := mustProvision(t, s, alice()) // staff, readers from this IdP
		other := provision.Login{Key: provision.Key{IdP: "https://other.example.test", Kind: "nameid", Subject: "x"},
			Claims: provision.Claims{Fields: map[string]string{provision.FieldUserName: "carol"}, Groups: []string{"auditors"}, HasGroups: true}}
		mustProvision(t, s, other)
		l := alice()
		l.Claims.Groups = []string{"Staff", "writers"} // case of an existing group differs: same group
		res := mustProvision(t, s, l)
		if d := cmp.Diff([]string{provision.FieldGroups}, res.Changed); d != "" {
			t.Errorf("Changed (-want +got):\n%s", d)
		}
		got, _ := s.User(context.Background(), first.User.ID)
		if d := cmp.Diff([]string{"staff", "writers"}, got.Groups); d != "" {
			t.Errorf("Groups (-want +got):\n%s", d)
		}
		again := mustProvision(t, s, l)
		if again.Outcome != provision.Unchanged {
			t.Errorf("repeat with case-different group name: Outcome = %q, want unchanged", again.Outcome)
		}
		l.Claims.HasGroups, l.Claims.Groups = false, nil
		if res := mustProvision(t, s, l); res.Outcome != provision.Unchanged {
			t.Errorf("login without a groups attribute: Outcome = %q, want unchanged (memberships kept)", res.Outcome)
		}
	}},
	{"IdentityIsScopedToIdP", func(t *testing.T, s provision.Store) {
		a := mustProvision(t, s, alice())
		l := login("alice-id", map[string]string{provision.FieldUserName: "alice2"})
		l.Key.IdP = "https://elsewhere.example.test"
		b := mustProvision(t, s, l)
		if a.User.ID == b.User.ID {
			t.Errorf("same subject at two IdPs matched one user %s", a.User.ID)
		}
	}},
	{"UserNameTakenIsConflict", func(t *testing.T, s provision.Store) {
		mustProvision(t, s, alice())
		_, err := s.Provision(context.Background(), login("mallory-id", map[string]string{provision.FieldUserName: "ALICE"}))
		if !errors.Is(err, provision.ErrConflict) {
			t.Errorf("Provision(user name ALICE of another subject) err = %v, want ErrConflict", err)
		}
	}},
	{"DisabledUserIsRefusedAndStaysDisabled", func(t *testing.T, s provision.Store) {
		first := mustProvision(t, s, alice())
		ctx := context.Background()
		if err := s.SetActive(ctx, first.User.ID, false); err != nil {
			t.Fatalf("SetActive(false) err = %v", err)
		}
		before, _ := s.User(ctx, first.User.ID)
		l := alice()
		l.Claims.Fields[provision.FieldEmail] = "changed@example.test"
		if _, err := s.Provision(ctx, l); !errors.Is(err, provision.ErrDisabled) {
			t.Fatalf("Provision(disabled) err = %v, want ErrDisabled", err)
		}
		after, _ := s.User(ctx, first.User.ID)
		if after.Active || after.Version != before.Version || after.Email != "alice@example.test" {
			t.Errorf("disabled user changed by login: %+v", after)
		}
	}},
	{"NoCreateRefusesNewUsers", func(t *testing.T, s provision.Store) {
		l := alice()
		l.NoCreate = true
		if _, err := s.Provision(context.Background(), l); !errors.Is(err, provision.ErrNotFound) {
			t.Fatalf("Provision(NoCreate, new user) err = %v, want ErrNotFound", err)
		}
		mustProvision(t, s, alice())
		l.Claims.Fields[provision.FieldEmail] = "x@example.test"
		if res := mustProvision(t, s, l); res.Outcome != provision.Updated {
			t.Errorf("Provision(NoCreate, existing user) Outcome = %q, want updated", res.Outcome)
		}
	}},
	{"UnknownUser", func(t *testing.T, s provision.Store) {
		if _, err := s.User(context.Background(), "00000000-0000-0000-0000-000000000000"); !errors.Is(err, provision.ErrNotFound) {
			t.Errorf("User(unknown) err = %v, want ErrNotFound", err)
		}
		if err := s.SetActive(context.Background(), "00000000-0000-0000-0000-000000000000", false); !errors.Is(err, provision.ErrNotFound) {
			t.Errorf("SetActive(unknown) err = %v, want ErrNotFound", err)
		}
	}},
	{"HostileValuesRoundTrip", func(t *testing.T, s provision.Store) {
		values := []string{`*`, `)(uid=*`, `\`, `a,b+c`, `#lead`, `in ner`, `' OR '1'='1`, `100%_x[y]`, "Zoë 😀 名前", `"quoted"`}
		for i, v := range values {
			l := login(v, map[string]string{provision.FieldUserName: fmt.Sprintf("%s-%d", v, i), provision.FieldDisplayName: v}, v)
			res := mustProvision(t, s, l)
			got, err := s.User(context.Background(), res.User.ID)
			if err != nil || got.DisplayName != v || len(got.Groups) != 1 || got.Groups[0] != v {
				t.Errorf("value %q: stored %+v, err %v", v, got, err)
			}
			if again := mustProvision(t, s, l); again.Outcome != provision.Unchanged || again.User.ID != res.User.ID {
				t.Errorf("value %q: repeat login Outcome = %q, user %s vs %s", v, again.Outcome, again.User.ID, res.User.ID)
			}
		}
	}},
	{"PaddedAndInvisibleValuesAreRefused", func(t *testing.T, s provision.Store) {
		ctx := context.Background()
		for _, tc := range []struct {
			name   string
			fields map[string]string
			groups []string
		}{
			{"leading space", map[string]string{provision.FieldUserName: " alice"}, nil},
			{"trailing space", map[string]string{provision.FieldUserName: "alice "}, nil},
			{"NBSP", map[string]string{provision.FieldUserName: "\u00a0bob"}, nil},
			{"ideographic space", map[string]string{provision.FieldUserName: "bob\u3000"}, nil},
			{"zero width space", map[string]string{provision.FieldUserName: "alice\u200b"}, nil},
			{"bidi override", map[string]string{provision.FieldUserName: "\u202eecila"}, nil},
			{"mixed-script look-alike", map[string]string{provision.FieldUserName: "\u0430lice"}, nil},
			{"padded group", map[string]string{provision.FieldUserName: "carol"}, []string{" admins"}},
			{"invisible group", map[string]string{provision.FieldUserName: "carol"}, []string{"ad\u200dmins"}},
			{"padded display name", map[string]string{provision.FieldUserName: "carol", provision.FieldDisplayName: "Carol "}, nil},
			{"invisible email", map[string]string{provision.FieldUserName: "carol", provision.FieldEmail: "carol@exa\u00admple.test"}, nil},
		} {
			_, err := s.Provision(ctx, login("subject-"+tc.name, tc.fields, tc.groups...))
			if !errors.Is(err, provision.ErrInvalid) {
				t.Errorf("%s: Provision err = %v, want ErrInvalid", tc.name, err)
			}
		}
		if d, ok := s.(provision.Directory); ok {
			for _, name := range []string{"bob ", "\u00a0bob", "alice\u200b", " "} {
				if _, err := d.CreateUser(ctx, provision.User{UserName: name, Active: true}); !errors.Is(err, provision.ErrInvalid) {
					t.Errorf("CreateUser(%q) err = %v, want ErrInvalid", name, err)
				}
			}
			if _, err := d.CreateUser(ctx, provision.User{UserName: "dave", DisplayName: "Dave\u200e", Active: true}); !errors.Is(err, provision.ErrInvalid) {
				t.Errorf("CreateUser(display name with LRM) err = %v, want ErrInvalid", err)
			}
			page, err := d.FindUsers(ctx, provision.Query{Limit: 10})
			if err != nil || page.Total != 0 {
				t.Errorf("users after refused writes: %d (%v), want 0", page.Total, err)
			}
		}
		if g, ok := s.(provision.GroupDirectory); ok {
			for _, name := range []string{" admins", "admins\u00a0", "ad\u2060mins"} {
				if _, err := g.CreateGroup(ctx, provision.Group{Name: name}); !errors.Is(err, provision.ErrInvalid) {
					t.Errorf("CreateGroup(%q) err = %v, want ErrInvalid", name, err)
				}
			}
		}
	}},
	{"LookAlikeUserNamesCollide", func(t *testing.T, s provision.Store) {
		ctx := context.Background()
		mustProvision(t, s, alice())
		mustProvision(t, s, login("strasse-id", map[string]string{provision.FieldUserName: "straße"}))
		for i, name := range []string{"ａlice", "ＡＬＩＣＥ", "Alice", "STRASSE", "strasse", "STRAẞE"} {
			_, err := s.Provision(ctx, login(fmt.Sprintf("mallory-%d", i), map[string]string{provision.FieldUserName: name}))
			if !errors.Is(err, provision.ErrConflict) {
				t.Errorf("Provision(user name %q of another subject) err = %v, want ErrConflict", name, err)
			}
		}
		if d, ok := s.(provision.Directory); ok {
			// A folded lookup finds the name under any of its spellings.
			for _, spelling := range []string{"STRASSE", "strasse", "Straße"} {
				page, err := d.FindUsers(ctx, provision.Query{Filter: provision.Compare{Field: provision.FieldUserName, Op: provision.OpEq, Value: spelling, Fold: true}, Limit: 5})
				if err != nil || len(page.Items) != 1 || page.Items[0].UserName != "straße" {
					t.Errorf("FindUsers(userName eq %q, folded) = %+v, %v; want straße", spelling, page.Items, err)
				}
			}
			for _, name := range []string{"ａlice", "ALICE", "STRASSE"} {
				if _, err := d.CreateUser(ctx, provision.User{UserName: name, Active: true}); !errors.Is(err, provision.ErrConflict) {
					t.Errorf("CreateUser(%q) err = %v, want ErrConflict", name, err)
				}
			}
		}
	}},
	{"CaseMappingAndAccentLookAlikesCollide", func(t *testing.T, s provision.Store) {
		// Names that other software's case-insensitive or accent-
		// insensitive comparisons take for one (Python's upper(), Java's
		// equalsIgnoreCase, MySQL's utf8mb4_0900_ai_ci) are one name.
		ctx := context.Background()
		mustProvision(t, s, alice())
		mustProvision(t, s, login("bjorn-id", map[string]string{provision.FieldUserName: "Bjørn"}))
		variants := []string{"al\u0131ce", "AL\u0131CE", "al\u0130ce", "ali\u0307ce", "àlice", "alicé", "ÀLICE", "a\u0300lice", "ålice", "bjorn", "BJÖRN"}
		for i, name := range variants {
			_, err := s.Provision(ctx, login(fmt.Sprintf("mallory-%d", i), map[string]string{provision.FieldUserName: name}))
			if !errors.Is(err, provision.ErrConflict) {
				t.Errorf("Provision(user name %q of another subject) err = %v, want ErrConflict", name, err)
			}
		}
		if d, ok := s.(provision.Directory); ok {
			for _, name := range variants {
				if _, err := d.CreateUser(ctx, provision.User{UserName: name, Active: true}); !errors.Is(err, provision.ErrConflict) {
					t.Errorf("CreateUser(%q) err = %v, want ErrConflict", name, err)
				}
			}
			page, err := d.FindUsers(ctx, provision.Query{Filter: provision.Compare{Field: provision.FieldUserName, Op: provision.OpEq, Value: "BJORN", Fold: true}, Limit: 5})
			if err != nil || len(page.Items) != 1 || page.Items[0].UserName != "Bjørn" {
				t.Errorf("FindUsers(userName eq BJORN, folded) = %+v, %v; want Bjørn", page.Items, err)
			}
		}
		if g, ok := s.(provision.GroupDirectory); ok {
			if _, err := g.CreateGroup(ctx, provision.Group{Name: "admins"}); err != nil {
				t.Fatalf("CreateGroup(admins) err = %v", err)
			}
			for _, name := range []string{"ädmins", "ADMİNS", "adm\u0131ns", "ådmins"} {
				if _, err := g.CreateGroup(ctx, provision.Group{Name: name}); !errors.Is(err, provision.ErrConflict) {
					t.Errorf("CreateGroup(%q) err = %v, want ErrConflict", name, err)
				}
			}
		}
	}},
	{"LatinLookAlikeLettersRefusedInNames", func(t *testing.T, s provision.Store) {
		ctx := context.Background()
		for i, name := range []string{"a\u01c0ice", "\u0251lice", "ᴀlice", "ALⱭ"} {
			if _, err := s.Provision(ctx, login(fmt.Sprintf("mallory-%d", i), map[string]string{provision.FieldUserName: name})); !errors.Is(err, provision.ErrInvalid) {
				t.Errorf("Provision(user name %q) err = %v, want ErrInvalid", name, err)
			}
		}
		if _, err := s.Provision(ctx, login("mallory-g", map[string]string{provision.FieldUserName: "mallory"}, "\u0251dmins")); !errors.Is(err, provision.ErrInvalid) {
			t.Errorf("Provision(group ɑdmins) err = %v, want ErrInvalid", err)
		}
		if d, ok := s.(provision.Directory); ok {
			if _, err := d.CreateUser(ctx, provision.User{UserName: "a\u01c0ice", Active: true}); !errors.Is(err, provision.ErrInvalid) {
				t.Errorf("CreateUser(aǀice) err = %v, want ErrInvalid", err)
			}
		}
		if g, ok := s.(provision.GroupDirectory); ok {
			if _, err := g.CreateGroup(ctx, provision.Group{Name: "\u01c0nternal"}); !errors.Is(err, provision.ErrInvalid) {
				t.Errorf("CreateGroup(ǀnternal) err = %v, want ErrInvalid", err)
			}
		}
	}},
	{"LookAlikeGroupNamesAreOneGroup", func(t *testing.T, s provision.Store) {
		first := mustProvision(t, s, alice()) // readers, staff
		l := alice()
		l.Claims.Groups = []string{"ＲＥＡＤＥＲＳ", "Staff"}
		if res := mustProvision(t, s, l); res.Outcome != provision.Unchanged {
			t.Errorf("groups asserted full-width and in capitals: Outcome = %q, Changed = %v, want unchanged", res.Outcome, res.Changed)
		}
		l.Claims.Groups = []string{"Rèaders", "ſTAFF"}
		if res := mustProvision(t, s, l); res.Outcome != provision.Unchanged {
			t.Errorf("groups asserted with an accent and a long s: Outcome = %q, Changed = %v, want unchanged", res.Outcome, res.Changed)
		}
		got, _ := s.User(context.Background(), first.User.ID)
		if d := cmp.Diff([]string{"readers", "staff"}, got.Groups); d != "" {
			t.Errorf("Groups (-want +got):\n%s", d)
		}
	}},
	{"UpdateGroupReturnsMembersOnlyWhenAsked", func(t *testing.T, s provision.Store) {
		// A SCIM PATCH of one member must not cost the size of the group:
		// UpdateGroup applies the change and leaves the member list
		// unread unless the change asks for it.
		g, ok := s.(provision.GroupDirectory)
		if !ok {
			return
		}
		ctx := context.Background()
		alice := mustProvision(t, s, alice()).User.ID
		bob := mustProvision(t, s, login("bob-id", map[string]string{provision.FieldUserName: "bob"})).User.ID
		grp, err := g.CreateGroup(ctx, provision.Group{Name: "admins", Members: []provision.Member{{UserID: alice}}})
		if err != nil {
			t.Fatalf("CreateGroup err = %v", err)
		}
		name := "Admins"
		got, err := g.UpdateGroup(ctx, grp.ID, provision.GroupChange{Name: &name, Add: []string{bob}}, grp.Version)
		if err != nil {
			t.Fatalf("UpdateGroup(add bob) err = %v", err)
		}
		if got.Members != nil || got.Name != "Admins" || got.Version != grp.Version+1 {
			t.Errorf("UpdateGroup(add bob) = %+v, want Admins at version %d without a member list", got, grp.Version+1)
		}
		ids := func(ms []provision.Member) []string {
			var out []string
			for _, m := range ms {
				out = append(out, m.UserID)
			}
			slices.Sort(out) // the store's collation orders them
			return out
		}
		stored, err := g.Group(ctx, grp.ID, true)
		if err != nil {
			t.Fatalf("Group err = %v", err)
		}
		if d := cmp.Diff(ids([]provision.Member{{UserID: alice}, {UserID: bob}}), ids(stored.Members)); d != "" {
			t.Errorf("members after adding bob (-want +got):\n%s", d)
		}
		got, err = g.UpdateGroup(ctx, grp.ID, provision.GroupChange{Remove: []string{alice}, Members: true}, got.Version)
		if err != nil {
			t.Fatalf("UpdateGroup(remove alice, members) err = %v", err)
		}
		if d := cmp.Diff([]string{bob}, ids(got.Members)); d != "" {
			t.Errorf("members returned after removing alice (-want +got):\n%s", d)
		}
		if _, err := g.UpdateGroup(ctx, grp.ID, provision.GroupChange{Add: []string{"nobody"}}, 0); !errors.Is(err, provision.ErrInvalid) {
			t.Errorf("UpdateGroup(add unknown) err = %v, want ErrInvalid", err)
		}
	}},
	{"ConcurrentFirstLoginsCreateOneUser", func(t *testing.T, s provision.Store) {
		const n = 50
		var wg sync.WaitGroup
		ids := make([]string, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := s.Provision(context.Background(), alice())
				ids[i], errs[i] = res.User.ID, err
			}()
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("login %d err = %v", i, errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("login %d got user %s, login 0 got %s", i, ids[i], ids[0])
			}
		}
		got, err := s.User(context.Background(), ids[0])
		if err != nil || got.Version != 1 {
			t.Errorf("after %d concurrent identical logins: version %d err %v, want 1 write", n, got.Version, err)
		}
	}},
	// A login whose writes all lost to another login that had just made
	// the same change did nothing: it reports unchanged, and exactly one
	// of the concurrent logins reports the write.
	{"ConcurrentFirstLoginsOneCreated", func(t *testing.T, s provision.Store) {
		got := concurrentOutcomes(t, s, 20, alice())
		if got[provision.Created] != 1 || got[provision.Unchanged] != 19 {
			t.Errorf("outcomes of 20 concurrent identical first logins: %v, want 1 created, 19 unchanged", got)
		}
	}},
	{"ConcurrentChangedLoginsOneUpdated", func(t *testing.T, s provision.Store) {
		mustProvision(t, s, alice())
		changed := alice()
		changed.Claims.Fields[provision.FieldEmail] = "alice@new.example.test"
		changed.Claims.Groups = []string{"auditors", "staff"} // one group in, one out
		got := concurrentOutcomes(t, s, 20, changed)
		if got[provision.Updated] != 1 || got[provision.Unchanged] != 19 {
			t.Errorf("outcomes of 20 concurrent identical changed logins: %v, want 1 updated, 19 unchanged", got)
		}
	}},
	{"Ping", func(t *testing.T, s provision.Store) {
		if err := s.Ping(context.Background()); err != nil {
			t.Errorf("Ping() = %v", err)
		}
	}},
}

var cmpUser = cmp.Options{
	cmp.FilterPath(func(p cmp.Path) bool {
		n := p.Last().String()
		return n == ".Created" || n == ".Updated"
	}, cmp.Ignore()),
}

// concurrentOutcomes runs n copies of l at once and counts their outcomes.
func concurrentOutcomes(t *testing.T, s provision.Store, n int, l provision.Login) map[provision.Outcome]int {
	t.Helper()
	var wg sync.WaitGroup
	outs := make([]provision.Outcome, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := s.Provision(context.Background(), l)
			outs[i], errs[i] = res.Outcome, err
		}()
	}
	close(start)
	wg.Wait()
	got := map[provision.Outcome]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("login %d err = %v", i, errs[i])
		}
		got[outs[i]]++
	}
	return got
}
