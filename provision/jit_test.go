package provision

import (
	"errors"
	"slices"
	"testing"
)

// TestDecide is the JIT rule as a table: every store carries out these
// plans, so this is where the rule is pinned, without any store.
func TestDecide(t *testing.T) {
	key := Key{IdP: "https://idp.example", Kind: "nameid", Subject: "s-1"}
	login := func(fields map[string]string, mod ...func(*Login)) Login {
		l := Login{Key: key, Claims: Claims{Fields: fields}}
		for _, m := range mod {
			m(&l)
		}
		return l
	}
	alice := func(mod ...func(*User)) *User {
		u := &User{ID: "u1", UserName: "alice", Email: "alice@example.com", DisplayName: "Alice", Active: true,
			Owner: OwnerJIT, Version: 3, Groups: []string{"Staff"}}
		for _, m := range mod {
			m(u)
		}
		return u
	}
	same := map[string]string{FieldUserName: "alice", FieldEmail: "alice@example.com", FieldDisplayName: "Alice"}
	newMail := map[string]string{FieldUserName: "alice", FieldEmail: "alice@new.example", FieldDisplayName: "Alice B"}
	scimWrote := func(fields ...string) func(*User) {
		return func(u *User) { u.Owner, u.SCIMFields = OwnerSCIM, fields }
	}
	reserve := func(fields ...string) func(*Login) { return func(l *Login) { l.Reserved = fields } }
	groups := func(g ...string) func(*Login) {
		return func(l *Login) { l.Claims.Groups, l.Claims.HasGroups = g, true }
	}

	cases := []struct {
		name    string
		login   Login
		found   Found
		err     error
		act     Action
		changed []string
		kept    []string
		add     []string
		drop    []string
		after   func(t *testing.T, u User)
	}{
		{name: "first login creates", login: login(same, groups("Staff", "staff", "Ops")), act: ActCreate,
			changed: []string{FieldUserName, FieldEmail, FieldDisplayName, FieldGroups}, add: []string{"Ops", "Staff"},
			after: func(t *testing.T, u User) {
				if !u.Active || u.Owner != OwnerJIT || u.Version != 1 || u.UserName != "alice" {
					t.Errorf("created user = %+v", u)
				}
			}},
		{name: "create without a user name is invalid", login: login(map[string]string{FieldEmail: "x@example.com"}), err: ErrInvalid},
		{name: "no_create refuses an unknown key", login: login(same, func(l *Login) { l.NoCreate = true }), err: ErrNotFound},
		{name: "a taken user name is a conflict", login: login(same), found: Found{NameTaken: true}, err: ErrConflict},
		{name: "no_create wins over a taken name", login: login(same, func(l *Login) { l.NoCreate = true }),
			found: Found{NameTaken: true}, err: ErrNotFound},
		{name: "a key deleted over SCIM is refused", login: login(same), found: Found{Tombstoned: true}, err: ErrDisabled},
		{name: "a tombstone wins over a link candidate", login: login(same),
			found: Found{Tombstoned: true, Link: alice(scimWrote())}, err: ErrDisabled},
		{name: "repeat login writes nothing", login: login(same), found: Found{User: alice()}, act: ActNothing},
		{name: "changed fields are written", login: login(newMail), found: Found{User: alice()}, act: ActUpdate,
			changed: []string{FieldEmail, FieldDisplayName},
			after: func(t *testing.T, u User) {
				if u.Email != "alice@new.example" || u.ID != "u1" || u.Version != 3 {
					t.Errorf("after = %+v", u)
				}
			}},
		{name: "a deactivated user is refused and left alone", login: login(newMail),
			found: Found{User: alice(func(u *User) { u.Active = false })}, err: ErrDisabled},
		{name: "a deactivated link candidate is refused", login: login(same),
			found: Found{Link: alice(scimWrote(), func(u *User) { u.Active = false })}, err: ErrDisabled},
		{name: "link claims the SCIM user", login: login(newMail, reserve(FieldEmail)),
			found: Found{Link: alice(scimWrote(FieldEmail))}, act: ActLink,
			changed: []string{FieldDisplayName}, kept: []string{"email (owned by SCIM)"}},
		{name: "link by a name that differs only in case", login: login(map[string]string{FieldUserName: "ALICE", FieldEmail: "alice@example.com", FieldDisplayName: "Alice"},
			func(l *Login) { l.LinkBy = LinkByUserName }),
			found: Found{Link: alice(scimWrote())}, act: ActLink, changed: []string{FieldUserName}},
		{name: "no link by a name that only folds alike", login: login(map[string]string{FieldUserName: "àlice"},
			func(l *Login) { l.LinkBy = LinkByUserName }), found: Found{Link: alice(scimWrote())}, err: ErrConflict},
		{name: "no link by a dotless i", login: login(map[string]string{FieldUserName: "alıce"},
			func(l *Login) { l.LinkBy = LinkByUserName }), found: Found{Link: alice(scimWrote())}, err: ErrConflict},
		{name: "no link by a full-width name", login: login(map[string]string{FieldUserName: "ａｌｉｃｅ"},
			func(l *Login) { l.LinkBy = LinkByUserName }), found: Found{Link: alice(scimWrote())}, err: ErrConflict},
		{name: "link with nothing new still links", login: login(same), found: Found{Link: alice(scimWrote())}, act: ActLink},
		{name: "fields SCIM wrote are kept", login: login(newMail, reserve(FieldEmail, FieldDisplayName, FieldUserName)),
			found: Found{User: alice(scimWrote(FieldDisplayName, FieldEmail))}, act: ActNothing,
			kept: []string{"email (owned by SCIM)", "display_name (owned by SCIM)"}},
		{name: "a SCIM write of active alone owns no field", login: login(newMail, reserve(FieldEmail, FieldDisplayName)),
			found: Found{User: alice(scimWrote())}, act: ActUpdate, changed: []string{FieldEmail, FieldDisplayName}},
		{name: "only the fields SCIM wrote are kept", login: login(newMail, reserve(FieldEmail, FieldDisplayName)),
			found: Found{User: alice(scimWrote(FieldEmail))}, act: ActUpdate,
			changed: []string{FieldDisplayName}, kept: []string{"email (owned by SCIM)"}},
		{name: "a field SCIM may not own is written though SCIM wrote it", login: login(newMail, reserve(FieldDisplayName)),
			found: Found{User: alice(scimWrote(FieldEmail))}, act: ActUpdate, changed: []string{FieldEmail, FieldDisplayName}},
		{name: "all fields for users SCIM wrote before fields were recorded", login: login(newMail, reserve(FieldEmail, FieldDisplayName)),
			found: Found{User: alice(scimWrote(AllFields))}, act: ActNothing,
			kept: []string{"email (owned by SCIM)", "display_name (owned by SCIM)"}},
		{name: "an owned field with the same value is not reported kept", login: login(same, reserve(FieldEmail)),
			found: Found{User: alice(scimWrote(FieldEmail))}, act: ActNothing},
		{name: "extra attributes follow the same ownership", login: Login{Key: key, Reserved: []string{"title", "office"},
			Claims: Claims{Fields: same, Extra: map[string]string{"title": "Boss", "office": "B2", "phone": ""}}},
			found: Found{User: alice(scimWrote("title"), func(u *User) { u.Extra = map[string]string{"title": "Clerk", "phone": "1"} })},
			act:   ActUpdate, changed: []string{"office", "phone"}, kept: []string{"title (owned by SCIM)"},
			after: func(t *testing.T, u User) {
				if u.Extra["title"] != "Clerk" || u.Extra["office"] != "B2" || u.Extra["phone"] != "" {
					t.Errorf("extra after = %v", u.Extra)
				}
			}},
		{name: "groups join and leave in the login's source", login: login(same, groups("Ops", "staff")),
			found: Found{User: alice(func(u *User) { u.Groups = []string{"Admins", "Staff"} }),
				Groups: map[string]string{"staff": "Staff", "admins": "Admins"}},
			act: ActUpdate, changed: []string{FieldGroups}, add: []string{"Ops"}, drop: []string{"admins"},
			after: func(t *testing.T, u User) {
				if !slices.Equal(u.Groups, []string{"Ops", "Staff"}) {
					t.Errorf("groups after = %v", u.Groups)
				}
			}},
		{name: "a group spelled another way is the same group", login: login(same, groups("STAFF")),
			found: Found{User: alice(), Groups: map[string]string{"staff": "Staff"}}, act: ActNothing},
		{name: "memberships of other sources are not this login's to end", login: login(same, groups()),
			found: Found{User: alice(), Groups: map[string]string{}}, act: ActNothing},
		{name: "without asserted groups memberships are left alone", login: login(same),
			found: Found{User: alice(), Groups: map[string]string{"staff": "Staff"}}, act: ActNothing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Decide(c.login, c.found)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				if p.Action != "" && p.Action != ActUpdate && p.Action != ActLink {
					t.Errorf("a refused login planned %s", p.Action)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if p.Action != c.act {
				t.Errorf("action = %s, want %s", p.Action, c.act)
			}
			if !slices.Equal(p.Changed, c.changed) {
				t.Errorf("changed = %q, want %q", p.Changed, c.changed)
			}
			if got := p.Result().KeptNames(); !slices.Equal(got, c.kept) {
				t.Errorf("kept = %q, want %q", got, c.kept)
			}
			if !slices.Equal(p.AddGroups, c.add) || !slices.Equal(p.DropGroups, c.drop) {
				t.Errorf("groups +%q -%q, want +%q -%q", p.AddGroups, p.DropGroups, c.add, c.drop)
			}
			for _, k := range p.Kept {
				if _, ok := p.Claims.Fields[k.Field]; ok {
					t.Errorf("kept field %s is still in the claims to write", k.Field)
				}
				if _, ok := p.Claims.Extra[k.Field]; ok {
					t.Errorf("kept field %s is still in the extra claims to write", k.Field)
				}
			}
			if c.after != nil {
				c.after(t, p.After)
			}
		})
	}
}

// TestDecideLeavesItsInputsAlone: the plan is computed on copies, so a
// store's cached record is never changed by planning.
func TestDecideLeavesItsInputsAlone(t *testing.T) {
	u := &User{ID: "u1", UserName: "bob", Active: true, Extra: map[string]string{"title": "Clerk"}, Groups: []string{"A"}}
	l := Login{Claims: Claims{Fields: map[string]string{FieldUserName: "bob", FieldEmail: "b@example.com"},
		Extra: map[string]string{"title": "Boss"}, Groups: []string{"B"}, HasGroups: true}}
	if _, err := Decide(l, Found{User: u, Groups: map[string]string{"a": "A"}}); err != nil {
		t.Fatal(err)
	}
	if u.Email != "" || u.Extra["title"] != "Clerk" || !slices.Equal(u.Groups, []string{"A"}) {
		t.Errorf("Decide changed the stored user: %+v", u)
	}
}

// TestPlanResult: what each action reports to the caller.
func TestPlanResult(t *testing.T) {
	before := User{ID: "u1", UserName: "a"}
	after := User{ID: "u1", UserName: "b"}
	for act, want := range map[Action]Outcome{ActCreate: Created, ActUpdate: Updated, ActLink: Linked, ActNothing: Unchanged} {
		r := Plan{Action: act, Before: before, After: after, Changed: []string{FieldUserName}}.Result()
		if r.Outcome != want {
			t.Errorf("%s: outcome %s, want %s", act, r.Outcome, want)
		}
		if act == ActNothing && (r.User.UserName != "a" || r.Changed != nil) {
			t.Errorf("nothing: reports %+v", r)
		}
	}
}

// TestSameSpelling: what a link by user name accepts as the same name.
// Case differences and encodings of one accented letter are the same
// spelling; letters that case folding equates but that are not upper and
// lower case of each other, and names that only fold alike, are not.
func TestSameSpelling(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"alice", "ALICE", true},
		{"Alice.Smith", "alice.smith", true},
		{"josé", "jose\u0301", true},    // NFC and NFD
		{"JOSÉ", "jose\u0301", true},    // and case
		{"\u212aelvin", "kelvin", true}, // the Kelvin sign is K in NFC
		{"émile", "Émile", true},
		{"\u017feed", "seed", false},      // long s
		{"\u03d1eta", "\u03b8eta", false}, // theta symbol
		{"\u1c80ek", "\u0432ek", false},   // Cyrillic rounded ve
		{"\u03c2x", "\u03c3x", false},     // final and medial sigma
		{"\u0130van", "ivan", false},      // Turkish dotted capital I
		{"al\u0131ce", "alice", false},    // dotless i
		{"àlice", "alice", false},
		{"ａlice", "alice", false},
		{"strasse", "straße", false},
		{"alice x", "alicex", false},
	} {
		if got := SameSpelling(tc.a, tc.b); got != tc.same {
			t.Errorf("SameSpelling(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}
