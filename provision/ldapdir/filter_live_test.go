package ldapdir_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/provision"
	"gatehouse/provision/ldapdir"
	"gatehouse/test/slapd"
)

// RecommendedIndexes are the OpenLDAP indexes the README recommends for
// SCIM queries, as olcDbIndex values, with the test's mapping of
// external_id to employeeNumber.
var recommendedIndexes = []string{
	"objectClass eq",
	"gatehouseState eq,sub",
	"uid eq,sub",
	"mail eq",
	"displayName eq",
	"employeeNumber eq",
	"entryUUID eq",
	"createTimestamp,modifyTimestamp eq",
	"pwdAccountLockedTime eq",
}

// TestREADMERecommendsTheTestedIndexes keeps the README's index lines and
// the ones TestFindUsersPushDown runs slapd with the same.
func TestREADMERecommendsTheTestedIndexes(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range recommendedIndexes {
		if !strings.Contains(string(b), "olcDbIndex: "+spec+"\n") {
			t.Errorf("README does not recommend olcDbIndex: %s", spec)
		}
	}
}

// TestFindUsersPushDown runs the filters SCIM clients send against a slapd
// with the README's indexes: each returns exactly the users provision.Match
// selects from all of them (the pushed-down filter is a superset, refined
// in Go), including accent, ß and case variants of names and a negation
// of a comparison the directory makes case-insensitive; and slapd's trace
// log shows every comparison it evaluated read from an index.
func TestFindUsersPushDown(t *testing.T) {
	srv := slapd.Start(t, slapd.WithSchema(ldapdir.SchemaLDIF), slapd.WithIndex(recommendedIndexes...), slapd.WithDebug("trace"))
	cfg := baseConfig(srv, srv.NewTenant(t))
	cfg.Attributes[provision.FieldExternalID] = "employeeNumber"
	s := open(t, cfg)
	ctx := context.Background()
	mk := func(name, display, mail, ext string, active bool) provision.User {
		u, err := s.CreateUser(ctx, provision.User{UserName: name, DisplayName: display, Email: mail, ExternalID: ext, Active: active})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return u
	}
	jose := mk("José", "José García", "jose@example.test", "", true)
	alice := mk("alice", "Alice Liddell", "alice@example.test", "abc", true)
	bob := mk("bob", "Jose Garcia", "bob@example.test", "ABC", false)
	strasse := mk("Straße", "", "", "", true)
	all, err := s.FindUsers(ctx, provision.Query{Limit: 100})
	if err != nil || all.Total != 4 {
		t.Fatalf("all users: %d, %v", all.Total, err)
	}
	latest := slices.MaxFunc(all.Items, func(a, b provision.User) int { return a.Updated.Compare(b.Updated) }).Updated
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

	name := func(op provision.Op, v string) provision.Compare {
		return provision.Compare{Field: provision.FieldUserName, Op: op, Value: v, Fold: true}
	}
	ext := func(v string) provision.Compare {
		return provision.Compare{Field: provision.FieldExternalID, Op: provision.OpEq, Value: v}
	}
	updated := func(op provision.Op, at time.Time) provision.Compare {
		return provision.Compare{Field: provision.FieldUpdated, Op: op, Value: stamp(at)}
	}
	active := func(v string) provision.Compare {
		return provision.Compare{Field: provision.FieldActive, Op: provision.OpEq, Value: v}
	}
	for _, tc := range []struct {
		name string
		f    provision.Filter
		want []string // user names, when the case pins them; nil: Match decides
		scan bool     // slapd cannot answer it from an index
	}{
		{name: "userName eq unaccented", f: name(provision.OpEq, "jose"), want: []string{"José"}},
		{name: "userName eq upper case", f: name(provision.OpEq, "JOSÉ"), want: []string{"José"}},
		{name: "userName eq ss", f: name(provision.OpEq, "STRASSE"), want: []string{"Straße"}},
		{name: "userName sw unaccented", f: name(provision.OpSw, "jose"), want: []string{"José"}},
		{name: "userName sw ss", f: name(provision.OpSw, "strass"), want: []string{"Straße"}},
		{name: "userName sw", f: name(provision.OpSw, "AL"), want: []string{"alice"}},
		{name: "userName co", f: name(provision.OpCo, "ss"), want: []string{"Straße"}, scan: true},
		{name: "externalId eq is exact", f: ext("abc"), want: []string{"alice"}},
		{name: "not externalId eq", f: provision.Not{Filter: ext("ABC")}, want: []string{"José", "Straße", "alice"}, scan: true},
		{name: "displayName eq accented finds unaccented", f: provision.Compare{Field: provision.FieldDisplayName, Op: provision.OpEq, Value: "JOSÉ GARCÍA", Fold: true},
			want: []string{"José", "bob"}},
		{name: "displayName eq", f: provision.Compare{Field: provision.FieldDisplayName, Op: provision.OpEq, Value: "alice liddell", Fold: true}, want: []string{"alice"}},
		{name: "emails[type eq work].value eq", f: provision.Or{provision.Compare{Field: provision.FieldEmail, Op: provision.OpEq, Value: "ALICE@example.test", Fold: true}},
			want: []string{"alice"}},
		{name: "meta.lastModified gt latest", f: updated(provision.OpGt, latest), want: []string{}},
		{name: "meta.lastModified ge latest", f: updated(provision.OpGe, latest)},
		{name: "meta.lastModified gt a second before", f: updated(provision.OpGt, latest.Add(-time.Second))},
		{name: "meta.lastModified lt latest", f: updated(provision.OpLt, latest)},
		{name: "meta.lastModified le latest", f: updated(provision.OpLe, latest), want: []string{"José", "Straße", "alice", "bob"}},
		{name: "meta.created ge", f: provision.Compare{Field: provision.FieldCreated, Op: provision.OpGe, Value: stamp(jose.Created)}},
		{name: "active eq false", f: active("false"), want: []string{"bob"}},
		{name: "active eq true", f: active("true"), want: []string{"José", "Straße", "alice"}, scan: true},
		{name: "id eq", f: provision.Compare{Field: provision.FieldID, Op: provision.OpEq, Value: alice.ID}, want: []string{"alice"}},
		{name: "id eq upper case", f: provision.Compare{Field: provision.FieldID, Op: provision.OpEq, Value: strings.ToUpper(alice.ID)}, want: []string{}},
		{name: "and", f: provision.And{name(provision.OpSw, "jos"), active("true")}, want: []string{"José"}},
		{name: "or", f: provision.Or{name(provision.OpEq, "bob"), provision.Compare{Field: provision.FieldID, Op: provision.OpEq, Value: strasse.ID}},
			want: []string{"Straße", "bob"}},
		{name: "and not", f: provision.And{active("false"), provision.Not{Filter: provision.Compare{Field: provision.FieldID, Op: provision.OpEq, Value: bob.ID}}},
			want: []string{}},
	} {
		mark := srv.Mark()
		if !checkFind(t, s, all.Items, tc.name, tc.f, tc.want) {
			continue
		}
		if unindexed := unindexedComparisons(srv.Log()[mark:]); !tc.scan && len(unindexed) > 0 {
			t.Errorf("%s: slapd evaluated %q without an index", tc.name, unindexed)
		}
	}
}

// checkFind runs FindUsers with f and compares its users with those
// provision.Match selects from all (and those with the names want pins,
// when set). It reports whether the search ran.
func checkFind(t *testing.T, s *ldapdir.Store, all []provision.User, name string, f provision.Filter, pin []string) bool {
	t.Helper()
	var want []string
	for _, u := range all {
		if provision.Match(f, u) {
			want = append(want, u.UserName)
		}
	}
	slices.Sort(want)
	if pin != nil && !slices.Equal(want, pin) {
		t.Fatalf("%s: provision.Match selects %q, the case expects %q", name, want, pin)
	}
	page, err := s.FindUsers(context.Background(), provision.Query{Filter: f, Limit: 100})
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return false
	}
	var got []string
	for _, u := range page.Items {
		got = append(got, u.UserName)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) || page.Total != len(want) {
		t.Errorf("%s: FindUsers = %q (total %d), want %q", name, got, page.Total, want)
	}
	return true
}

var candidatesLine = regexp.MustCompile(`^\S+ (\S+) => mdb_(?:equality|substring|inequality)_candidates \((\S+)\)$`)

// unindexedComparisons reads slapd's trace log: back-mdb logs "=>
// mdb_<kind>_candidates (attr)" when it evaluates a comparison, and then,
// in the same thread, "=> key_read" when it reads an index for it;
// anything else (the candidates without a key read, or "no keys" for a
// substring too short for the index) means it could not use one.
func unindexedComparisons(log string) []string {
	lines := strings.Split(log, "\n")
	var out []string
	for i, l := range lines {
		m := candidatesLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		indexed := false
		for _, next := range lines[i+1:] {
			if f := strings.Fields(next); len(f) > 2 && f[1] == m[1] {
				indexed = strings.HasSuffix(next, "=> key_read")
				break
			}
		}
		if !indexed {
			out = append(out, m[2])
		}
	}
	return out
}

// TestFindUsersPushDown389DS: on 389 Directory Server with the shipped
// index LDIFs, the filters that OpenLDAP answers from an index are
// answered from one too (389 marks a search it could not, partly or
// wholly, notes=U or notes=A in its access log), and give the users
// provision.Match selects.
func TestFindUsersPushDown389DS(t *testing.T) {
	ds := slapd.Start389(t)
	ds.ApplyLDIF(t, ldapdir.Schema389DS)
	ds.ApplyLDIF(t, ldapdir.Index389DS)
	ds.WaitTask(t, "cn=gatehouse-reindex,cn=index,cn=tasks,cn=config")
	ds.ApplyLDIF(t, ldapdir.SCIMIndex389DS)
	ds.WaitTask(t, "cn=gatehouse-scim-reindex,cn=index,cn=tasks,cn=config")
	tn := ds.NewTenant(t)
	s := open(t, ldapdir.Config{
		Profile: ldapdir.Profile389DS, URL: ds.URL, InsecurePlaintext: true,
		BindDN: slapd.BindDN, BindPassword: slapd.BindPassword, UserBase: tn.People, GroupBase: tn.Groups,
		Attributes: map[string]string{
			provision.FieldUserName: "uid", provision.FieldEmail: "mail", provision.FieldDisplayName: "displayName",
			provision.FieldExternalID: "employeeNumber",
		},
	})
	ctx := context.Background()
	for _, u := range []provision.User{
		{UserName: "jose", DisplayName: "José García", Email: "jose@example.test", Active: true},
		{UserName: "alice", DisplayName: "Alice Liddell", Email: "alice@example.test", ExternalID: "abc", Active: true},
		{UserName: "bob", DisplayName: "Jose Garcia", Email: "bob@example.test", ExternalID: "ABC"},
		{UserName: "strasse", Active: true},
	} {
		if _, err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("create %s: %v", u.UserName, err)
		}
	}
	// 389 DS stops reading indexes for an and once the candidates are
	// fewer than its filter test threshold (10), and would mark nothing
	// unindexed; more users keep it reading.
	for i := range 16 {
		if _, err := s.CreateUser(ctx, provision.User{UserName: fmt.Sprintf("user%02d", i), Active: true}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.FindUsers(ctx, provision.Query{Limit: 100})
	if err != nil || all.Total != 20 {
		t.Fatalf("all users: %d, %v", all.Total, err)
	}
	alice := all.Items[slices.IndexFunc(all.Items, func(u provision.User) bool { return u.UserName == "alice" })]
	name := func(op provision.Op, v string) provision.Compare {
		return provision.Compare{Field: provision.FieldUserName, Op: op, Value: v, Fold: true}
	}
	for _, tc := range []struct {
		name string
		f    provision.Filter
		want []string
	}{
		{"userName eq accented", name(provision.OpEq, "JOSÉ"), []string{"jose"}},
		{"userName sw accented", name(provision.OpSw, "Josè"), []string{"jose"}},
		{"userName sw ß", name(provision.OpSw, "STRAß"), []string{"strasse"}},
		{"externalId eq", provision.Compare{Field: provision.FieldExternalID, Op: provision.OpEq, Value: "ABC"}, []string{"bob"}},
		{"displayName eq", provision.Compare{Field: provision.FieldDisplayName, Op: provision.OpEq, Value: "José García", Fold: true}, []string{"bob", "jose"}},
		{"emails.value eq", provision.Or{provision.Compare{Field: provision.FieldEmail, Op: provision.OpEq, Value: "ALICE@example.test", Fold: true}}, []string{"alice"}},
		{"meta.lastModified gt", provision.Compare{Field: provision.FieldUpdated, Op: provision.OpGt, Value: alice.Updated.Add(-time.Hour).Format(time.RFC3339)}, nil},
		{"meta.created lt", provision.Compare{Field: provision.FieldCreated, Op: provision.OpLt, Value: alice.Created.Add(time.Hour).Format(time.RFC3339)}, nil},
		{"active eq false", provision.Compare{Field: provision.FieldActive, Op: provision.OpEq, Value: "false"}, []string{"bob"}},
		{"id eq", provision.Compare{Field: provision.FieldID, Op: provision.OpEq, Value: alice.ID}, []string{"alice"}},
	} {
		checkFind(t, s, all.Items, tc.name, tc.f, tc.want)
	}
	ds.Stop()
	access := ds.AccessLog() // written out by the time it stops
	if !strings.Contains(access, "SRCH") {
		t.Fatal("no search in 389's access log")
	}
	for _, l := range strings.Split(access, "\n") {
		if strings.Contains(l, "notes=U") || strings.Contains(l, "notes=A") {
			op := regexp.MustCompile(`conn=\d+ op=\d+ `).FindString(l)
			t.Errorf("389 DS searched without an index: %s", regexp.MustCompile(`(?m)^.*`+op+`SRCH.*$`).FindString(access))
		}
	}
}

// TestExactQueriesPageFromAnchors: a query the directory answers exactly
// in ID order (here unfiltered, and active eq false) counts its matches
// from their entryUUID alone and reads only the page's entries whole; its
// pages and totals are those of the path that reads and refines every
// match.
func TestExactQueriesPageFromAnchors(t *testing.T) {
	srv := startServer(t)
	s := open(t, baseConfig(srv, srv.NewTenant(t)))
	ctx := context.Background()
	for i := range 7 {
		if _, err := s.CreateUser(ctx, provision.User{UserName: fmt.Sprintf("u%d", i), Active: i%3 != 0}); err != nil {
			t.Fatal(err)
		}
	}
	// sw "" matches every user but is refined in Go: the reference.
	everyone := provision.Compare{Field: provision.FieldUserName, Op: provision.OpSw, Fold: true}
	inactive := provision.Compare{Field: provision.FieldActive, Op: provision.OpEq, Value: "false"}
	ids := func(p provision.Page[provision.User]) []string {
		var out []string
		for _, u := range p.Items {
			out = append(out, u.ID)
		}
		return out
	}
	for _, c := range []struct {
		f, ref provision.Filter
	}{{nil, everyone}, {inactive, provision.And{everyone, inactive}}} {
		for _, desc := range []bool{false, true} {
			for off := 0; off <= 7; off++ {
				for _, limit := range []int{0, 1, 3} {
					q := provision.Query{Filter: c.f, Offset: off, Limit: limit, Descending: desc}
					mark := srv.Mark()
					got, err := s.FindUsers(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					log := srv.Log()[mark:]
					q.Filter = c.ref
					want, err := s.FindUsers(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if got.Total != want.Total || !slices.Equal(ids(got), ids(want)) {
						t.Errorf("%v offset %d limit %d desc %v: %d %q, want %d %q", c.f, off, limit, desc, got.Total, ids(got), want.Total, ids(want))
					}
					if !strings.Contains(log, "SRCH attr=entryUUID\n") {
						t.Errorf("%v offset %d limit %d: the count read more than the anchors:\n%s", c.f, off, limit, log)
					}
				}
			}
		}
	}
}
