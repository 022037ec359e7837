package ldapdir

import (
	"context"
	"errors"
	"testing"
	"time"

	"gatehouse/provision"
)

// TestLoginsOfOneIdentityTakeTurns: a login of an identity waits while
// another login of the same identity runs in this process (so that it
// reads the entry the other finished, memberships included, and does not
// report the user updated: the rare failure of
// ConcurrentFirstLoginsOneCreated); its wait ends with its context; and
// logins of other identities do not wait (but for a hash collision).
func TestLoginsOfOneIdentityTakeTurns(t *testing.T) {
	s, err := New(Config{URL: "ldap://127.0.0.1:1", InsecurePlaintext: true, BindDN: "cn=admin,dc=example,dc=test", BindPassword: "x",
		UserBase: "ou=people,dc=example,dc=test", GroupBase: "ou=groups,dc=example,dc=test"})
	if err != nil {
		t.Fatal(err)
	}
	alice := provision.Key{IdP: "https://idp.example.test", Kind: "nameid", Subject: "alice"}
	release, err := s.turn(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.turn(ctx, alice); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second login of alice during the first: %v, want to wait until its context ends", err)
	}
	free := 0
	for _, subject := range []string{"bob", "carol", "dave", "erin"} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		if r, err := s.turn(ctx, provision.Key{IdP: alice.IdP, Kind: alice.Kind, Subject: subject}); err == nil {
			free++
			r()
		}
		cancel()
	}
	if free < 3 {
		t.Errorf("only %d of 4 other identities could log in during alice's login", free)
	}
	release()
	r, err := s.turn(context.Background(), alice)
	if err != nil {
		t.Fatalf("alice's next login after the first ended: %v", err)
	}
	r()
}
