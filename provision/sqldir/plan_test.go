package sqldir_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
)

// TestPlan: Plan tells what Provision would do, and writes nothing.
func TestPlan(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) provision.Store{
		"sqlite":          func(t *testing.T) provision.Store { s, _ := openTemp(t); return s },
		"postgres":        func(t *testing.T) provision.Store { s, _ := openPostgres(t); return s },
		"postgres-mapped": func(t *testing.T) provision.Store { s, _, _ := openMappedPostgres(t); return s },
		"sqlite-mapped":   func(t *testing.T) provision.Store { s, _, _ := openMappedSQLite(t); return s },
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			pl := s.(provision.Planner)
			ctx := context.Background()
			l := mappedLogin("plan-subject", "paula", "staff")
			for range 2 {
				res, err := pl.Plan(ctx, l)
				if err != nil || res.Outcome != provision.Created || !slices.Contains(res.Changed, provision.FieldEmail) ||
					!slices.Contains(res.Changed, provision.FieldGroups) || res.User.UserName != "paula" {
					t.Fatalf("Plan(new user) = %+v, %v; want created with email and groups", res, err)
				}
			}
			first, err := s.Provision(ctx, l)
			if err != nil || first.Outcome != provision.Created {
				t.Fatalf("Provision after Plan: %q %v: Plan must not have created the user", first.Outcome, err)
			}
			if res, err := pl.Plan(ctx, l); err != nil || res.Outcome != provision.Unchanged || len(res.Changed) != 0 {
				t.Errorf("Plan(unchanged) = %+v, %v", res, err)
			}
			l.Claims.Fields[provision.FieldEmail] = "paula@new.example.test"
			l.Claims.Groups = []string{"writers"}
			res, err := pl.Plan(ctx, l)
			if err != nil || res.Outcome != provision.Updated || !slices.Equal(res.Changed, []string{provision.FieldEmail, provision.FieldGroups}) ||
				res.User.Email != "paula@new.example.test" || !slices.Equal(res.User.Groups, []string{"writers"}) {
				t.Errorf("Plan(changed) = %+v, %v", res, err)
			}
			if again, err := s.User(ctx, first.User.ID); err != nil || again.Email != "paula@example.test" || again.Version != first.User.Version {
				t.Errorf("after Plan the stored user is %+v (%v): Plan wrote", again, err)
			}
			if err := s.SetActive(ctx, first.User.ID, false); err != nil {
				t.Fatal(err)
			}
			if _, err := pl.Plan(ctx, l); !errors.Is(err, provision.ErrDisabled) {
				t.Errorf("Plan(disabled user) err = %v, want ErrDisabled", err)
			}
			taken := mappedLogin("other-subject", "PAULA")
			taken.LinkBy = provision.LinkNone
			if _, err := pl.Plan(ctx, taken); !errors.Is(err, provision.ErrConflict) {
				t.Errorf("Plan(taken name) err = %v, want ErrConflict", err)
			}
		})
	}
}

var _ provision.Planner = (*sqldir.Store)(nil)
var _ provision.Planner = (*sqldir.Mapped)(nil)
