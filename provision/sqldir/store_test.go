package sqldir_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
	"gatehouse/provision/storetest"
)

func openTemp(t *testing.T) (*sqldir.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := sqldir.Open(context.Background(), sqldir.Config{Path: path})
	if err != nil {
		t.Fatalf("Open(%s) err = %v", path, err)
	}
	return s, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) provision.Store {
		s, _ := openTemp(t)
		return s
	})
}

// dataVersion reads PRAGMA data_version on an independent connection: it
// changes whenever any other connection commits a change to the file.
func dataVersion(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var v int64
	if err := db.QueryRow("PRAGMA data_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestUnchangedLoginCommitsNothing(t *testing.T) {
	s, path := openTemp(t)
	defer s.Close()
	watch, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	watch.SetMaxOpenConns(1)

	l := provision.Login{Key: provision.Key{IdP: "idp", Kind: "nameid", Subject: "s"},
		Claims: provision.Claims{Fields: map[string]string{provision.FieldUserName: "u", provision.FieldEmail: "u@x"}, Groups: []string{"g"}, HasGroups: true}}
	ctx := context.Background()
	if _, err := s.Provision(ctx, l); err != nil {
		t.Fatal(err)
	}
	before := dataVersion(t, watch)
	for range 3 {
		if res, err := s.Provision(ctx, l); err != nil || res.Outcome != provision.Unchanged {
			t.Fatalf("repeat login: %v %v", res.Outcome, err)
		}
	}
	if after := dataVersion(t, watch); after != before {
		t.Errorf("data_version %d -> %d: an unchanged login committed a write", before, after)
	}
	l.Claims.Fields[provision.FieldEmail] = "u@y"
	if _, err := s.Provision(ctx, l); err != nil {
		t.Fatal(err)
	}
	if after := dataVersion(t, watch); after == before {
		t.Errorf("data_version unchanged after a changed login: the watch cannot see writes")
	}
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	s, path := openTemp(t)
	l := provision.Login{Key: provision.Key{IdP: "idp", Kind: "nameid", Subject: "s"},
		Claims: provision.Claims{Fields: map[string]string{provision.FieldUserName: "u"}}}
	res, err := s.Provision(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := sqldir.Open(context.Background(), sqldir.Config{Path: path})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if again, err := s2.Provision(context.Background(), l); err != nil || again.User.ID != res.User.ID || again.Outcome != provision.Unchanged {
		t.Errorf("after reopen: %+v %v", again, err)
	}
}
