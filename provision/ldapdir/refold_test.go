package ldapdir_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/provision"
)

// TestRecordedFoldsRefoldedOnStart: an entry written while the fold kept
// accents records "name àlice"; a store started since rewrites that
// record before its first name check, so that "alice" and "ALİCE" collide
// with it and a folded lookup finds it.
func TestRecordedFoldsRefoldedOnStart(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	cfg := baseConfig(srv, tn)
	ctx := context.Background()
	u, err := open(t, cfg).CreateUser(ctx, provision.User{UserName: "àlice", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	// As the previous release recorded it.
	dn := "uid=àlice," + tn.People
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace("gatehouseState", []string{"version 1", "owner scim", "name àlice"})
	if err := srv.Admin(t).Modify(req); err != nil {
		t.Fatalf("record the old fold: %v", err)
	}

	s := open(t, cfg) // a new process
	page, err := s.FindUsers(ctx, provision.Query{Filter: provision.Compare{Field: provision.FieldUserName, Op: provision.OpEq, Value: "ALICE", Fold: true}, Limit: 5})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != u.ID {
		t.Errorf("FindUsers(userName eq ALICE, folded) = %+v, %v; want àlice", page.Items, err)
	}
	for _, name := range []string{"alice", "ALİCE"} {
		if _, err := s.CreateUser(ctx, provision.User{UserName: name, Active: true}); !errors.Is(err, provision.ErrConflict) {
			t.Errorf("CreateUser(%q) beside an entry recording the old fold: err = %v, want ErrConflict", name, err)
		}
	}
	got := readEntry(t, srv, dn, "gatehouseState").GetAttributeValues("gatehouseState")
	want := "name " + provision.NormalizeName("àlice")
	if len(got) != 3 || slices.Contains(got, "name àlice") || !slices.Contains(got, want) {
		t.Errorf("state after the refold = %q, want it to record %q only", got, want)
	}
}
