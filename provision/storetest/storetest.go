// Package storetest is the conformance suite every provision.Store
// backend runs unchanged: Run(t, newStore).
package storetest

import (
	"context"
	"errors"
	"fmt"
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
		values := []string{`*`, `)(uid=*`, `\`, `a,b+c`, `#lead`, `trail `, `' OR '1'='1`, `100%_x[y]`, "Zoë 😀 名前", `"quoted"`}
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
