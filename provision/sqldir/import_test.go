package sqldir_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
)

// importStores opens a fresh managed store on each database that runs
// here, with a raw connection to look at its tables.
func importStores(t *testing.T) map[string]func(t *testing.T) (*sqldir.Store, *sql.DB) {
	return map[string]func(t *testing.T) (*sqldir.Store, *sql.DB){
		"sqlite": func(t *testing.T) (*sqldir.Store, *sql.DB) {
			s, path := openTemp(t)
			raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { raw.Close(); s.Close() })
			return s, raw
		},
		"postgres": func(t *testing.T) (*sqldir.Store, *sql.DB) {
			s, dsn := openPostgres(t)
			raw, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { raw.Close(); s.Close() })
			return s, raw
		},
	}
}

func importUser(name string, fields ...string) provision.User {
	u := provision.User{UserName: name, Active: true, Email: name + "@example.com", SCIMFields: []string{provision.FieldEmail, provision.FieldUserName}}
	for i := 0; i+1 < len(fields); i += 2 {
		u.SetField(fields[i], fields[i+1])
	}
	return u
}

func mustImport(t *testing.T, s *sqldir.Store, users ...provision.User) []provision.Imported {
	t.Helper()
	res, err := s.ImportUsers(context.Background(), users)
	if err != nil {
		t.Fatalf("ImportUsers err = %v", err)
	}
	if len(res) != len(users) {
		t.Fatalf("ImportUsers gave %d results for %d users", len(res), len(users))
	}
	return res
}

func actions(res []provision.Imported) string {
	out := ""
	for _, r := range res {
		if r.Err != nil {
			out += "error "
		} else {
			out += string(r.Action) + " "
		}
	}
	return out
}

func byName(t *testing.T, s *sqldir.Store, name string) provision.User {
	t.Helper()
	page, err := s.FindUsers(context.Background(), provision.Query{Filter: provision.Compare{Field: provision.FieldUserName, Op: provision.OpEq, Value: name, Fold: true}, Limit: 10})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("FindUsers(%q) = %d users, %v; want 1", name, len(page.Items), err)
	}
	return page.Items[0]
}

func countRows(t *testing.T, raw *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := raw.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestImportUsers(t *testing.T) {
	for name, open := range importStores(t) {
		t.Run(name, func(t *testing.T) {
			ph := func(n int) string { // placeholders of the raw connection
				if name == "postgres" {
					return fmt.Sprintf("$%d", n)
				}
				return "?"
			}
			ctx := context.Background()

			t.Run("create then rerun writes nothing", func(t *testing.T) {
				s, raw := open(t)
				var batch []provision.User
				for i := range 700 { // more than one INSERT's worth of rows
					batch = append(batch, importUser(fmt.Sprintf("user%04d", i), "department", "d"+fmt.Sprint(i%7)))
				}
				res := mustImport(t, s, batch...)
				for i, r := range res {
					if r.Err != nil || r.Action != provision.ActCreate || r.ID == "" {
						t.Fatalf("user %d: %+v, want created", i, r)
					}
				}
				u := byName(t, s, "user0042")
				if u.Owner != provision.OwnerSCIM || u.Version != 1 || u.Extra["department"] != "d0" ||
					fmt.Sprint(u.SCIMFields) != "[email user_name]" || !u.Active || u.Created.IsZero() || !u.Created.Equal(u.Updated) {
					t.Errorf("imported user = %+v", u)
				}
				before := countRows(t, raw, `SELECT count(*) FROM gatehouse_users WHERE version = 1`)
				var stamp string
				raw.QueryRow(`SELECT max(CAST(updated_at AS text)) FROM gatehouse_users`).Scan(&stamp)
				var dv int64
				if name == "sqlite" {
					dv = dataVersion(t, raw)
				}
				res = mustImport(t, s, batch...)
				for i, r := range res {
					if r.Err != nil || r.Action != provision.ActNothing || r.ID != "" && i == 42 && r.ID != u.ID {
						t.Fatalf("rerun user %d: %+v, want unchanged", i, r)
					}
				}
				if got := countRows(t, raw, `SELECT count(*) FROM gatehouse_users WHERE version = 1`); got != before || got != 700 {
					t.Errorf("after rerun %d users at version 1, want 700", got)
				}
				var stamp2 string
				raw.QueryRow(`SELECT max(CAST(updated_at AS text)) FROM gatehouse_users`).Scan(&stamp2)
				if stamp2 != stamp {
					t.Errorf("rerun moved updated_at from %s to %s", stamp, stamp2)
				}
				if name == "sqlite" && dataVersion(t, raw) != dv {
					t.Error("rerun wrote to the database")
				}
			})

			t.Run("changed attribute updates with version+1", func(t *testing.T) {
				s, _ := open(t)
				mustImport(t, s, importUser("ann"), importUser("bob"))
				a0 := byName(t, s, "ann")
				changed := importUser("ann", provision.FieldDisplayName, "Ann A.")
				changed.SCIMFields = append(changed.SCIMFields, provision.FieldDisplayName, provision.FieldEmail)
				res := mustImport(t, s, changed, importUser("bob"))
				if got := actions(res); got != "update nothing " {
					t.Fatalf("actions = %q", got)
				}
				a := byName(t, s, "ann")
				if a.ID != a0.ID || a.Version != 2 || a.DisplayName != "Ann A." || !a.Created.Equal(a0.Created) || !a.Updated.After(a0.Updated) && !a.Updated.Equal(a0.Updated) ||
					fmt.Sprint(a.SCIMFields) != "[display_name email user_name]" {
					t.Errorf("updated user = %+v (was %+v)", a, a0)
				}
				if b := byName(t, s, "bob"); b.Version != 1 {
					t.Errorf("unchanged bob at version %d", b.Version)
				}
			})

			t.Run("name taken case-insensitively updates that user", func(t *testing.T) {
				s, raw := open(t)
				jit, err := s.CreateUser(ctx, importUser("Carol"))
				if err != nil {
					t.Fatal(err)
				}
				res := mustImport(t, s, importUser("CAROL"))
				if res[0].Err != nil || res[0].Action != provision.ActUpdate || res[0].ID != jit.ID {
					t.Fatalf("result = %+v, want update of %s", res[0], jit.ID)
				}
				if n := countRows(t, raw, `SELECT count(*) FROM gatehouse_users`); n != 1 {
					t.Errorf("%d users, want 1", n)
				}
				if u := byName(t, s, "carol"); u.UserName != "CAROL" || u.Version != 2 {
					t.Errorf("user = %+v", u)
				}
			})

			t.Run("tombstoned name and external ID lifted as CreateUser would", func(t *testing.T) {
				s, raw := open(t)
				gone, err := s.CreateUser(ctx, importUser("dave", provision.FieldExternalID, "ext-dave"))
				if err != nil {
					t.Fatal(err)
				}
				other, err := s.CreateUser(ctx, importUser("erin", provision.FieldExternalID, "ext-erin"))
				if err != nil {
					t.Fatal(err)
				}
				for _, id := range []string{gone.ID, other.ID} {
					if err := s.DeleteUser(ctx, id, 0); err != nil {
						t.Fatal(err)
					}
				}
				if n := countRows(t, raw, `SELECT count(*) FROM gatehouse_tombstones`); n != 2 {
					t.Fatalf("%d tombstones, want 2", n)
				}
				res := mustImport(t, s, importUser("Dave", provision.FieldExternalID, "ext-dave"), importUser("frank"))
				if got := actions(res); got != "create create " {
					t.Fatalf("actions = %q", got)
				}
				if n := countRows(t, raw, `SELECT count(*) FROM gatehouse_tombstones WHERE user_name_norm = `+ph(1)+` OR external_id = `+ph(2), "dave", "ext-dave"); n != 0 {
					t.Errorf("%d tombstones of dave left, want 0", n)
				}
				if n := countRows(t, raw, `SELECT count(*) FROM gatehouse_tombstones WHERE user_name_norm = `+ph(1), "erin"); n != 1 {
					t.Errorf("erin's tombstone: %d rows, want 1 (only the created users' are lifted)", n)
				}
			})

			t.Run("invalid user gets its own error, the rest is written", func(t *testing.T) {
				s, raw := open(t)
				bad := importUser("bad\u200buser") // an invisible character: not canonical
				res := mustImport(t, s, importUser("gina"), bad, importUser("hank"))
				if res[1].Err == nil || !errors.Is(res[1].Err, provision.ErrInvalid) {
					t.Errorf("invalid user: %+v, want ErrInvalid", res[1])
				}
				if res[0].Action != provision.ActCreate || res[2].Action != provision.ActCreate {
					t.Errorf("actions = %q, want the valid users created", actions(res))
				}
				if n := countRows(t, raw, `SELECT count(*) FROM gatehouse_users`); n != 2 {
					t.Errorf("%d users stored, want 2", n)
				}
			})

			t.Run("duplicate names in one batch: the later one is refused", func(t *testing.T) {
				s, raw := open(t)
				res := mustImport(t, s, importUser("ivan"), importUser("Ivan", provision.FieldDisplayName, "second"), importUser("judy"))
				if res[0].Action != provision.ActCreate || res[2].Action != provision.ActCreate || !errors.Is(res[1].Err, provision.ErrConflict) {
					t.Errorf("results = %+v", res)
				}
				if n := countRows(t, raw, `SELECT count(*) FROM gatehouse_users`); n != 2 {
					t.Errorf("%d users, want 2", n)
				}
				if u := byName(t, s, "ivan"); u.UserName != "ivan" || u.DisplayName != "" {
					t.Errorf("ivan = %+v, want the first of the batch", u)
				}
			})

			t.Run("a user read before the batch must be unchanged", func(t *testing.T) {
				s, _ := open(t)
				mustImport(t, s, importUser("kim"))
				cur := byName(t, s, "kim")
				next := cur
				next.DisplayName = "Kim"
				if _, err := s.ReplaceUser(ctx, provision.User{ID: cur.ID, UserName: "kim", Active: true, Email: "k@example.com"}, 0); err != nil {
					t.Fatal(err)
				}
				res := mustImport(t, s, next)
				if !errors.Is(res[0].Err, provision.ErrVersion) {
					t.Errorf("stale replace = %+v, want ErrVersion", res[0])
				}
			})
		})
	}
}
