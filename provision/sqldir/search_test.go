package sqldir

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/provision"
	"gatehouse/test/pgtest"
)

// searchStores opens an empty managed store of each kind that runs here.
func searchStores(t *testing.T) map[string]*Store {
	t.Helper()
	out := map[string]*Store{}
	for name, cfg := range map[string]Config{
		SQLite:   {Path: filepath.Join(t.TempDir(), "search.db")},
		Postgres: {Dialect: Postgres, DSN: pgtest.Shared(t).Database(t)},
	} {
		s, err := Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[name] = s
	}
	return out
}

// searchUsers are users whose values fold in every way NormalizeName
// folds (case, width, accents, ligatures, the dotless i), hold LIKE's
// wildcards, sit at the ends of the code point order, or are longer than
// the part of a fold the servers index.
func searchUsers() []provision.User {
	long := strings.Repeat("Ab", 150) // 300 characters: past the 200 a key holds
	return []provision.User{
		{UserName: "José", Email: "Jose@Example.test", DisplayName: "José Núñez", Active: true, GivenName: "Straße", FamilyName: "Ａbc",
			Extra: map[string]string{"email_home": "jose@HOME.test", "department": "Sales"}},
		{UserName: "jose2", Email: "jose2@example.test", DisplayName: "JOSE NUNEZ", Active: true, GivenName: "İlker", FamilyName: "zed"},
		{UserName: "STRASSE", Email: "strasse@example.test", DisplayName: "Straße", Active: true,
			Extra: map[string]string{"department": "sales"}},
		{UserName: "ｆｕｌｌ", Email: "full@example.test", DisplayName: "ﬁle clerk", Active: true,
			Extra: map[string]string{"email_other": "Full@Other.test"}},
		{UserName: "ılık", Email: "ilik@example.test", DisplayName: "Ilık", Active: true},
		{UserName: "100%_sure", Email: "pct@example.test", DisplayName: `back\slash`, Active: true,
			Extra: map[string]string{"department": "R%D_1"}},
		{UserName: "edge\uD7FBa", Email: "edge1@example.test", DisplayName: "edge \uFFFD", Active: true},
		{UserName: "long", Email: "long@example.test", DisplayName: long + "X", Active: true,
			Extra: map[string]string{"department": long + "Y"}},
		{UserName: "long2", Email: "long2@example.test", DisplayName: long, Active: true,
			Extra: map[string]string{"department": long}},
		{UserName: "empty", Email: "", DisplayName: "", Active: false, Extra: map[string]string{"department": ""}},
	}
}

func cmpFold(field string, op provision.Op, v string) provision.Compare {
	return provision.Compare{Field: field, Op: op, Value: v, Fold: true}
}

func anyEmail(v string) provision.Or {
	return provision.Or{cmpFold(provision.FieldEmail, provision.OpEq, v), cmpFold("email_home", provision.OpEq, v), cmpFold("email_other", provision.OpEq, v)}
}

// TestSearchAgreesWithMatch: every filter the indexes answer (a stored
// fold, the extra values table, a prefix range, a union of lookups)
// selects exactly the users provision.Match selects, on SQLite and
// PostgreSQL, and so does the same filter negated.
func TestSearchAgreesWithMatch(t *testing.T) {
	long := strings.Repeat("ab", 150)
	filters := []provision.Filter{
		cmpFold(provision.FieldUserName, provision.OpEq, "jose"),
		cmpFold(provision.FieldUserName, provision.OpEq, "JOSÉ"),
		cmpFold(provision.FieldUserName, provision.OpSw, "jo"),
		cmpFold(provision.FieldUserName, provision.OpSw, "Straß"),
		cmpFold(provision.FieldUserName, provision.OpSw, "FU"),
		cmpFold(provision.FieldUserName, provision.OpSw, "100%"),
		cmpFold(provision.FieldUserName, provision.OpSw, "100_"),
		cmpFold(provision.FieldUserName, provision.OpSw, "1"),
		cmpFold(provision.FieldUserName, provision.OpSw, "edge\uD7FB"),
		cmpFold(provision.FieldUserName, provision.OpSw, "IL"),
		cmpFold(provision.FieldEmail, provision.OpEq, "JOSE@example.TEST"),
		cmpFold(provision.FieldEmail, provision.OpSw, "jose"),
		cmpFold(provision.FieldEmail, provision.OpEq, ""),
		cmpFold(provision.FieldDisplayName, provision.OpEq, "jose nunez"),
		cmpFold(provision.FieldDisplayName, provision.OpEq, "STRASSE"),
		cmpFold(provision.FieldDisplayName, provision.OpEq, "FILE CLERK"),
		cmpFold(provision.FieldDisplayName, provision.OpSw, `back\`),
		cmpFold(provision.FieldDisplayName, provision.OpSw, "edge \uFFFD"),
		cmpFold(provision.FieldDisplayName, provision.OpEq, long),
		cmpFold(provision.FieldDisplayName, provision.OpEq, long+"x"),
		cmpFold(provision.FieldDisplayName, provision.OpSw, long),
		cmpFold(provision.FieldDisplayName, provision.OpSw, long[:100]),
		cmpFold("department", provision.OpEq, "SALES"),
		cmpFold("department", provision.OpSw, "r%d"),
		cmpFold("department", provision.OpSw, "R_"),
		cmpFold("department", provision.OpEq, long),
		cmpFold("department", provision.OpEq, long+"y"),
		cmpFold("department", provision.OpSw, long),
		cmpFold("department", provision.OpPresent, ""),
		cmpFold("department", provision.OpEq, ""),
		cmpFold("department", provision.OpNe, "sales"),
		cmpFold("department", provision.OpCo, "ale"),
		// Every operator folds as Go does on every database, not only
		// those an index answers (PostgreSQL's lower() folds otherwise).
		cmpFold(provision.FieldGivenName, provision.OpEq, "STRASSE"),
		cmpFold(provision.FieldGivenName, provision.OpCo, "rass"),
		cmpFold(provision.FieldGivenName, provision.OpEw, "SSE"),
		cmpFold(provision.FieldGivenName, provision.OpNe, "strasse"),
		cmpFold(provision.FieldGivenName, provision.OpSw, "ilk"),
		cmpFold(provision.FieldFamilyName, provision.OpEq, "abc"),
		cmpFold(provision.FieldFamilyName, provision.OpGt, "b"),
		cmpFold(provision.FieldFamilyName, provision.OpLt, "Z"),
		cmpFold("department", provision.OpCo, "SALE"),
		cmpFold("department", provision.OpEw, "ES"),
		cmpFold("department", provision.OpGe, "r"),
		cmpFold("department", provision.OpLe, "S"),
		cmpFold("email_home", provision.OpCo, "@HOME"),
		provision.Compare{Field: provision.FieldUserName, Op: provision.OpGt, Value: "Z"},
		provision.Compare{Field: provision.FieldUserName, Op: provision.OpLt, Value: "a"},
		anyEmail("jose@home.TEST"),
		anyEmail("FULL@other.test"),
		anyEmail("jose@example.test"),
		anyEmail("nobody@example.test"),
		provision.Or{cmpFold(provision.FieldUserName, provision.OpSw, "jo"), cmpFold("department", provision.OpSw, "sa")},
		provision.And{anyEmail("jose@home.test"), cmpFold(provision.FieldUserName, provision.OpEq, "josé")},
		provision.Or{anyEmail("jose@home.test"), provision.Compare{Field: provision.FieldActive, Op: provision.OpEq, Value: "false"}},
		provision.Compare{Field: provision.FieldExternalID, Op: provision.OpEq, Value: "ext-1"},
	}
	for kind, s := range searchStores(t) {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			var all []provision.User
			for i, u := range searchUsers() {
				u.ExternalID = fmt.Sprintf("ext-%d", i)
				created, err := s.CreateUser(ctx, u)
				if err != nil {
					t.Fatalf("create %q: %v", u.UserName, err)
				}
				all = append(all, created)
			}
			for _, f := range filters {
				for _, f := range []provision.Filter{f, provision.Not{Filter: f}} {
					var want []string
					for _, u := range all {
						if provision.Match(f, u) {
							want = append(want, u.UserName)
						}
					}
					page, err := s.FindUsers(ctx, provision.Query{Filter: f, Limit: 100})
					if err != nil {
						t.Fatalf("%#v: %v", f, err)
					}
					var got []string
					for _, u := range page.Items {
						got = append(got, u.UserName)
					}
					slices.Sort(want)
					slices.Sort(got)
					if !slices.Equal(got, want) || page.Total != len(want) {
						t.Errorf("%#v:\n got %q (total %d)\nwant %q", f, got, page.Total, want)
					}
				}
			}
		})
	}
}

// TestSearchFollowsWrites: the stored folds and extra value rows follow
// every write of a user (SCIM replace, a login's update, delete), so a
// lookup never finds a value the user no longer holds.
func TestSearchFollowsWrites(t *testing.T) {
	for kind, s := range searchStores(t) {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			find := func(f provision.Filter) []string {
				t.Helper()
				page, err := s.FindUsers(ctx, provision.Query{Filter: f, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, u := range page.Items {
					out = append(out, u.UserName)
				}
				return out
			}
			u, err := s.CreateUser(ctx, provision.User{UserName: "ann", Email: "Ann@X.test", DisplayName: "Ann",
				Active: true, Extra: map[string]string{"email_home": "ann@home.test", "team": "Red"}})
			if err != nil {
				t.Fatal(err)
			}
			u.Email, u.DisplayName = "ann.b@x.test", "Ann B"
			u.Extra = map[string]string{"email_home": "ANN@newhome.test"}
			if u, err = s.ReplaceUser(ctx, u, 0); err != nil {
				t.Fatal(err)
			}
			for _, f := range []provision.Filter{anyEmail("ann@x.test"), anyEmail("ann@home.test"),
				cmpFold("team", provision.OpEq, "red"), cmpFold(provision.FieldDisplayName, provision.OpEq, "ann")} {
				if got := find(f); len(got) != 0 {
					t.Errorf("after replace, %#v still finds %q", f, got)
				}
			}
			for _, f := range []provision.Filter{anyEmail("ann.b@x.test"), anyEmail("ann@newhome.test"),
				cmpFold(provision.FieldDisplayName, provision.OpEq, "ann b")} {
				if got := find(f); !slices.Equal(got, []string{"ann"}) {
					t.Errorf("after replace, %#v finds %q, want ann", f, got)
				}
			}
			// A login writes the fields SCIM does not own.
			if err := s.DeleteUser(ctx, u.ID, 0); err != nil {
				t.Fatal(err)
			}
			l := provision.Login{Key: provision.Key{IdP: "idp", Kind: "nameid", Subject: "bob"},
				Claims: provision.Claims{Fields: map[string]string{provision.FieldUserName: "bob", provision.FieldDisplayName: "Bob"},
					Extra: map[string]string{"team": "Blue"}}}
			if _, err := s.Provision(ctx, l); err != nil {
				t.Fatal(err)
			}
			l.Claims.Extra["team"], l.Claims.Fields[provision.FieldDisplayName] = "Green", "Robert"
			if _, err := s.Provision(ctx, l); err != nil {
				t.Fatal(err)
			}
			if got := find(cmpFold("team", provision.OpEq, "blue")); len(got) != 0 {
				t.Errorf("after a login changed team, blue still finds %q", got)
			}
			if got := find(provision.And{cmpFold("team", provision.OpEq, "GREEN"), cmpFold(provision.FieldDisplayName, provision.OpEq, "robert")}); !slices.Equal(got, []string{"bob"}) {
				t.Errorf("after a login changed team and name, the new values find %q, want bob", got)
			}
			var rows int
			if err := s.r.QueryRowContext(ctx, s.d.rebind(`SELECT count(*) FROM gatehouse_user_values WHERE field = 'email_home'`)).Scan(&rows); err != nil || rows != 0 {
				t.Errorf("extra value rows of the deleted user: %d (%v), want 0", rows, err)
			}
		})
	}
}

// TestPrefixEnd: the upper bound of a prefix range is above every string
// with the prefix and skips what has no successor.
func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct {
		p, want string
		ok      bool
	}{
		{"ab", "ac", true},
		{"a\U0010FFFF", "b", true},
		{"\U0010FFFF\U0010FFFF", "", false},
		{"x\uD7FF", "x\uE000", true},
		{"", "", false},
	} {
		got, ok := prefixEnd(tc.p)
		if got != tc.want || ok != tc.ok {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q, %v", tc.p, got, ok, tc.want, tc.ok)
		}
	}
}

// TestWalkPages: a walk through the pages of an ID-ordered query (as
// Okta's import pages) returns every match once, in order, both ways; a
// page asked again is the same page; a user removed from a page already
// read neither shifts the walk (OFFSET would skip a user) nor stays in
// the count.
func TestWalkPages(t *testing.T) {
	for kind, s := range searchStores(t) {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			var ids []string
			for i := range 23 {
				u, err := s.CreateUser(ctx, provision.User{UserName: fmt.Sprintf("walker-%02d", i), Active: i%2 == 0,
					Extra: map[string]string{"team": "w"}})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, u.ID)
			}
			slices.Sort(ids)
			for _, f := range []provision.Filter{nil, cmpFold("team", provision.OpEq, "W")} {
				for _, desc := range []bool{false, true} {
					want := slices.Clone(ids)
					if desc {
						slices.Reverse(want)
					}
					var got []string
					for off := 0; off < len(ids); off += 5 {
						page, err := s.FindUsers(ctx, provision.Query{Filter: f, Offset: off, Limit: 5, Descending: desc, Walk: "okta"})
						if err != nil {
							t.Fatal(err)
						}
						again, err := s.FindUsers(ctx, provision.Query{Filter: f, Offset: off, Limit: 5, Descending: desc, Walk: "okta"})
						if err != nil {
							t.Fatal(err)
						}
						if page.Total != len(ids) || !slices.EqualFunc(page.Items, again.Items, func(a, b provision.User) bool { return a.ID == b.ID }) {
							t.Fatalf("page at %d: total %d, asked again %d items, want total %d and the same page", off, page.Total, len(again.Items), len(ids))
						}
						for _, u := range page.Items {
							got = append(got, u.ID)
						}
					}
					if !slices.Equal(got, want) {
						t.Errorf("filter %v descending %v: the walk read %d users out of order or twice: %q", f, desc, len(got), got)
					}
				}
			}
			// Read two pages, remove a user from the first, read the third.
			walk := func(who string, off int) provision.Page[provision.User] {
				t.Helper()
				p, err := s.FindUsers(ctx, provision.Query{Offset: off, Limit: 5, Walk: who})
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			p1 := walk("okta", 0)
			p2 := walk("okta", 5)
			if err := s.DeleteUser(ctx, p1.Items[0].ID, 0); err != nil {
				t.Fatal(err)
			}
			// Another client reading the first pages meanwhile (after the
			// delete, its second page ends one user later) moves nothing
			// of okta's walk.
			walk("entra", 0)
			walk("entra", 5)
			// Nor do the many pages of many other walks.
			for i := range walkersMax - 2 { // okta and entra are the other two
				walk(fmt.Sprintf("client-%d", i), 5)
			}
			for off := range walkerMarksMax + 1 {
				walk("entra", off)
			}
			p3 := walk("okta", 10)
			if p3.Items[0].ID != ids[10] || p2.Items[4].ID != ids[9] {
				t.Errorf("after a delete, the third page starts at %s, want %s (right after the second page)", p3.Items[0].ID, ids[10])
			}
			if p3.Total != len(ids)-1 {
				t.Errorf("after a delete, the walk counts %d users, want %d", p3.Total, len(ids)-1)
			}
		})
	}
}

// TestSearchStepMigration: a database from before the stored search
// folds (SQLite schema 6) opens with the folds and extra value rows of
// its users computed, so that lookups find them.
func TestSearchStepMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(context.Background(), provision.User{UserName: "old", Email: "Old@Example.test", DisplayName: "Öld",
		Active: true, Extra: map[string]string{"email_home": "OLD@home.test"}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range append(undoSearchSchema(SQLite), `PRAGMA user_version = 6`) {
		mustExecRaw(t, raw, q)
	}
	raw.Close()
	s, err = Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatalf("open a schema 6 database: %v", err)
	}
	defer s.Close()
	for _, f := range []provision.Filter{anyEmail("old@example.test"), anyEmail("old@home.test"), cmpFold(provision.FieldDisplayName, provision.OpEq, "old")} {
		page, err := s.FindUsers(context.Background(), provision.Query{Filter: f, Limit: 5})
		if err != nil || len(page.Items) != 1 {
			t.Errorf("%#v after the migration: %d users (%v), want old", f, len(page.Items), err)
		}
	}
}

// undoSearchSchema takes a managed schema back to before the stored
// search folds (SQLite's migration 7, PostgreSQL's 5), for tests that
// open a database from an earlier version.
func undoSearchSchema(dialect string) []string {
	if dialect == Postgres {
		return []string{`DROP TABLE gatehouse_user_values`, `DROP INDEX ix_gatehouse_users_name_prefix`,
			`DROP INDEX ix_gatehouse_users_updated`, `DROP INDEX ix_gatehouse_users_created`, `DROP INDEX ix_gatehouse_users_external_id`,
			`CREATE INDEX ix_gatehouse_users_external_id ON gatehouse_users(external_id) WHERE external_id <> ''`,
			`ALTER TABLE gatehouse_users DROP COLUMN email_norm`, `ALTER TABLE gatehouse_users DROP COLUMN display_name_norm`}
	}
	return []string{`DROP TABLE gatehouse_user_values`, `DROP INDEX ix_users_email_norm`, `DROP INDEX ix_users_display_name_norm`,
		`DROP INDEX ix_users_updated`, `DROP INDEX ix_users_created`, `DROP INDEX ix_users_external_id`,
		`CREATE INDEX ix_users_external_id ON gatehouse_users(external_id) WHERE external_id <> ''`,
		`ALTER TABLE gatehouse_users DROP COLUMN email_norm`, `ALTER TABLE gatehouse_users DROP COLUMN display_name_norm`}
}

// TestSearchAfterImport: users an import creates or changes are found by
// the same lookups as users SCIM wrote one at a time.
func TestSearchAfterImport(t *testing.T) {
	for kind, s := range searchStores(t) {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			users := []provision.User{
				{UserName: "imp1", Email: "Imp1@X.test", DisplayName: "Ímp One", Active: true, Extra: map[string]string{"email_home": "IMP1@home.test"}},
				{UserName: "imp2", Email: "imp2@x.test", Active: true, Extra: map[string]string{"department": "Ops"}},
			}
			if _, err := s.ImportUsers(ctx, users); err != nil {
				t.Fatal(err)
			}
			users[1].Extra = map[string]string{"department": "Dev"}
			if res, err := s.ImportUsers(ctx, users); err != nil || res[1].Action != provision.ActUpdate {
				t.Fatalf("re-import with a changed department: %+v %v", res, err)
			}
			for f, want := range map[string]struct {
				f    provision.Filter
				user string
			}{
				"home e-mail":  {anyEmail("imp1@HOME.test"), "imp1"},
				"display name": {cmpFold(provision.FieldDisplayName, provision.OpEq, "imp one"), "imp1"},
				"new value":    {cmpFold("department", provision.OpEq, "dev"), "imp2"},
				"old value":    {cmpFold("department", provision.OpEq, "ops"), ""},
			} {
				page, err := s.FindUsers(ctx, provision.Query{Filter: want.f, Limit: 5})
				if err != nil {
					t.Fatal(err)
				}
				got := ""
				if len(page.Items) == 1 {
					got = page.Items[0].UserName
				}
				if got != want.user || len(page.Items) > 1 {
					t.Errorf("%s: found %d users (%q), want %q", f, len(page.Items), got, want.user)
				}
			}
		})
	}
}

// TestQueryPastTimeBoundIsTooMany: a query that runs past the store's own
// time bound, while the caller still has time, is ErrTooMany (SCIM's
// tooMany: narrow the filter), not a store failure.
func TestQueryPastTimeBoundIsTooMany(t *testing.T) {
	s, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "slow.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.timeout = time.Nanosecond // every query outlives it
	co := provision.Compare{Field: "department", Op: provision.OpCo, Value: "x", Fold: true}
	if _, err := s.FindUsers(context.Background(), provision.Query{Filter: co, Limit: 5}); !errors.Is(err, provision.ErrTooMany) {
		t.Errorf("FindUsers past the time bound: %v, want ErrTooMany", err)
	}
	if _, err := s.FindGroups(context.Background(), provision.Query{Limit: 5}); !errors.Is(err, provision.ErrTooMany) {
		t.Errorf("FindGroups past the time bound: %v, want ErrTooMany", err)
	}
	// The caller's own deadline is the caller's: no ErrTooMany.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.FindUsers(ctx, provision.Query{Filter: co, Limit: 5}); err == nil || errors.Is(err, provision.ErrTooMany) {
		t.Errorf("FindUsers for a caller that has gone: %v, want its cancellation, not ErrTooMany", err)
	}
}

// TestLongOrOfLookups: an Or of more lookups than one SQL union may hold
// (SQLite takes 500 SELECTs) is still answered, and exactly.
func TestLongOrOfLookups(t *testing.T) {
	for kind, s := range searchStores(t) {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			if _, err := s.CreateUser(ctx, provision.User{UserName: "many", Email: "n77@x.test", Active: true}); err != nil {
				t.Fatal(err)
			}
			var or provision.Or
			for i := range 200 {
				or = append(or, anyEmail(fmt.Sprintf("n%d@x.test", i)))
			}
			page, err := s.FindUsers(ctx, provision.Query{Filter: or, Limit: 5})
			if err != nil || page.Total != 1 || len(page.Items) != 1 {
				t.Fatalf("an Or of 600 lookups: %d users (%v), want 1", page.Total, err)
			}
		})
	}
}

// TestBadTextInFilter: a filter value that is not UTF-8 or holds a NUL is
// refused as invalid on every database (PostgreSQL would fail the query).
func TestBadTextInFilter(t *testing.T) {
	for kind, s := range searchStores(t) {
		t.Run(kind, func(t *testing.T) {
			for _, v := range []string{"\xff", "a\x00b"} {
				for _, f := range []provision.Filter{
					provision.Compare{Field: provision.FieldID, Op: provision.OpEq, Value: v},
					cmpFold(provision.FieldUserName, provision.OpEq, v),
					cmpFold("department", provision.OpCo, v),
				} {
					if _, err := s.FindUsers(context.Background(), provision.Query{Filter: f, Limit: 5}); !errors.Is(err, provision.ErrInvalid) {
						t.Errorf("%#v: %v, want ErrInvalid", f, err)
					}
				}
			}
			// co, sw and ew of the empty value match every user, with
			// the arguments of the query still in step.
			if _, err := s.CreateUser(context.Background(), provision.User{UserName: "emptyend", Active: true}); err != nil {
				t.Fatal(err)
			}
			for _, op := range []provision.Op{provision.OpCo, provision.OpSw, provision.OpEw} {
				for _, v := range []string{"", "\u0301"} {
					f := provision.And{cmpFold("department", op, v), cmpFold(provision.FieldUserName, provision.OpEq, "emptyend")}
					page, err := s.FindUsers(context.Background(), provision.Query{Filter: f, Limit: 5})
					if err != nil || page.Total != 1 {
						t.Errorf("department %s %q: %d users (%v), want 1", op, v, page.Total, err)
					}
				}
			}
		})
	}
}
