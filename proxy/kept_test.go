package proxy

import (
	"context"
	"slices"
	"testing"

	"gatehouse/provision"
)

// keptStore answers every login as a store does for a user whose e-mail
// SCIM wrote, and records the login it was given.
type keptStore struct {
	flightStore
	got provision.Login
}

func (s *keptStore) Provision(_ context.Context, l provision.Login) (provision.Result, error) {
	s.got = l
	return provision.Result{User: provision.User{ID: "u1", UserName: "alice", Active: true}, Outcome: provision.Unchanged,
		Kept: []provision.Kept{{Field: provision.FieldEmail, Reason: provision.KeptSCIM}}}, nil
}

// TestLoginAuditNamesKeptFields: the login passes the IdP's reserved
// fields to the store, and its audit line names each field the store
// left alone and why, so that "outcome: unchanged" with a changed e-mail
// at the IdP explains itself.
func TestLoginAuditNamesKeptFields(t *testing.T) {
	st := &keptStore{}
	fp := newFlightProxy(t, st)
	pol := fp.idps["corp"]
	pol.Reserved = []string{provision.FieldEmail}
	fp.idps["corp"] = pol
	if _, err := fp.login(context.Background(), assertion("Alice")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.got.Reserved, []string{provision.FieldEmail}) {
		t.Errorf("the store got Reserved %q, want the IdP's reserved fields", st.got.Reserved)
	}
	lines := fp.audit.FilterMessage("login").All()
	if len(lines) != 1 {
		t.Fatalf("%d login lines, want 1", len(lines))
	}
	fields := lines[0].ContextMap()
	kept, _ := fields["kept"].([]any)
	if len(kept) != 1 || kept[0] != "email (owned by SCIM)" || fields["outcome"] != "unchanged" {
		t.Errorf("audit line: %v, want outcome unchanged with kept [email (owned by SCIM)]", fields)
	}
}
