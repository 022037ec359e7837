package scim

import (
	"slices"
	"strings"
	"testing"

	"gatehouse/provision"
	"gatehouse/provision/storetest/realstore"
)

// TestChangedFieldsAreOwned: a PATCH owns every field whose value it
// changed, whatever its operations were read to name, and a change of
// active alone owns nothing.
func TestChangedFieldsAreOwned(t *testing.T) {
	srv, err := NewServer(Config{TokenSHA256: []string{strings.Repeat("ab", 32)}}, realstore.SQLite(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cur := provision.User{UserName: "alice", Email: "alice@example.com", GivenName: "Alice", Active: true}
	next := cur
	next.Email, next.GivenName, next.FamilyName = "alice@new.example", "", "Liddell"
	if got, want := srv.changedFields(cur, next), []string{provision.FieldEmail, provision.FieldFamilyName, provision.FieldGivenName}; !slices.Equal(provision.SortedUnique(got), want) {
		t.Errorf("changed fields = %q, want %q", got, want)
	}
	off := cur
	off.Active = false
	if got := srv.changedFields(cur, off); len(got) != 0 {
		t.Errorf("a change of active alone named %q", got)
	}
}
