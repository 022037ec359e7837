package test

import (
	"context"
	"errors"
	"testing"

	"gatehouse/provision"
	"gatehouse/provision/ldapdir"
	"gatehouse/provision/storetest/realstore"
	"gatehouse/test/slapd"
)

// TestRecreatedUserLiftsOnlyWhatItReclaims: a user SCIM deletes leaves
// tombstones for its name, external ID and login keys. Creating a user
// again over SCIM frees what the new user re-claims, and nothing else,
// alike on every store: a new user with the deleted user's external ID
// does not free the deleted name for a login to create it again, and one
// with the deleted name does not free the deleted external ID.
func TestRecreatedUserLiftsOnlyWhatItReclaims(t *testing.T) {
	stores := map[string]func(t *testing.T) provision.Store{
		"sqlite":   func(t *testing.T) provision.Store { return realstore.SQLite(t) },
		"postgres": func(t *testing.T) provision.Store { return realstore.Postgres(t) },
		"ldap": func(t *testing.T) provision.Store {
			srv := slapd.Start(t, slapd.WithSchema(ldapdir.SchemaLDIF, "gatehouseState"))
			cfg := ldapStoreConfig(srv, srv.NewTenant(t))
			cfg.Attributes[provision.FieldExternalID] = "carLicense"
			st, err := ldapdir.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			dir := st.(provision.Directory)
			ctx := context.Background()
			login := func(idp, subject, user, ext string) error {
				fields := map[string]string{provision.FieldUserName: user}
				if ext != "" {
					fields[provision.FieldExternalID] = ext
				}
				_, err := st.Provision(ctx, provision.Login{Key: provision.Key{IdP: idp, Kind: "nameid", Subject: subject},
					Claims: provision.Claims{Fields: fields}})
				return err
			}
			// t4 logs in (key k4), SCIM deletes t4: name, external ID and
			// key are buried.
			if err := login("idp-a", "k4", "t4", "ext-4"); err != nil {
				t.Fatal(err)
			}
			deleteByName(t, dir, "t4")
			// SCIM creates new4 with t4's external ID: the external ID is
			// re-claimed, the name t4 is not.
			if _, err := dir.CreateUser(ctx, provision.User{UserName: "new4", ExternalID: "ext-4", Active: true}); err != nil {
				t.Fatal(err)
			}
			if err := login("idp-a", "k4-again", "t4", ""); !errors.Is(err, provision.ErrDisabled) {
				t.Errorf("a new key with the deleted name t4 after its external ID was re-used: err %v, want ErrDisabled", err)
			}

			// t5 (external ID ext-5) is deleted; SCIM creates T5 with
			// another external ID: the name is re-claimed, ext-5 is not.
			if err := login("idp-a", "k5", "t5", "ext-5"); err != nil {
				t.Fatal(err)
			}
			deleteByName(t, dir, "t5")
			if _, err := dir.CreateUser(ctx, provision.User{UserName: "T5", ExternalID: "other-5", Active: true}); err != nil {
				t.Fatal(err)
			}
			if err := login("idp-b", "k5-b", "t5b", "ext-5"); !errors.Is(err, provision.ErrDisabled) {
				t.Errorf("a new login with the deleted external ID ext-5 after its name was re-used: err %v, want ErrDisabled", err)
			}
		})
	}
}

func deleteByName(t *testing.T, dir provision.Directory, name string) {
	t.Helper()
	page, err := dir.FindUsers(context.Background(), provision.Query{
		Filter: provision.Compare{Field: provision.FieldUserName, Op: provision.OpEq, Value: name, Fold: true}, Limit: 2})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("find %s: %v %v", name, page.Items, err)
	}
	if err := dir.DeleteUser(context.Background(), page.Items[0].ID, 0); err != nil {
		t.Fatal(err)
	}
}
