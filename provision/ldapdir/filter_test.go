package ldapdir

import (
	"testing"

	"gatehouse/provision"
)

func filterStore(t *testing.T, mod func(*Config)) *Store {
	t.Helper()
	c := Config{URL: "ldap://x", BindDN: "cn=a", BindPassword: "p", UserBase: "ou=p", GroupBase: "ou=g",
		Attributes: map[string]string{
			provision.FieldUserName: "uid", provision.FieldEmail: "mail", provision.FieldDisplayName: "displayName",
			provision.FieldExternalID: "employeeNumber", "email_home": "homeMail",
		}}.WithDefaults()
	if mod != nil {
		mod(&c)
	}
	l, err := newLayout(c)
	if err != nil {
		t.Fatal(err)
	}
	return &Store{l: l}
}

const testUUID = "9ffd2f8c-7c6b-1041-891d-ed2b08f7655d"

// TestFilterPushDown pins the LDAP filter each filter SCIM clients send
// becomes (as scim/filter.go maps it): a selective filter on the mapped
// attribute, which the README's indexes serve, never a match-all refined
// in Go; and a negation that keeps every entry its filter matches.
func TestFilterPushDown(t *testing.T) {
	s := filterStore(t, nil)
	work := func(v string) provision.Filter {
		return provision.Or{provision.Compare{Field: provision.FieldEmail, Op: provision.OpEq, Value: v, Fold: true}}
	}
	anyEmail := func(v string) provision.Filter {
		return provision.Or{
			provision.Compare{Field: provision.FieldEmail, Op: provision.OpEq, Value: v, Fold: true},
			provision.Compare{Field: "email_home", Op: provision.OpEq, Value: v, Fold: true},
		}
	}
	name := func(op provision.Op, v string) provision.Compare {
		return provision.Compare{Field: provision.FieldUserName, Op: op, Value: v, Fold: true}
	}
	ext := func(v string) provision.Compare {
		return provision.Compare{Field: provision.FieldExternalID, Op: provision.OpEq, Value: v}
	}
	updated := func(op provision.Op, v string) provision.Compare {
		return provision.Compare{Field: provision.FieldUpdated, Op: op, Value: v}
	}
	active := func(v string) provision.Compare {
		return provision.Compare{Field: provision.FieldActive, Op: provision.OpEq, Value: v}
	}
	id := provision.Compare{Field: provision.FieldID, Op: provision.OpEq, Value: testUUID}
	for _, tc := range []struct {
		name string
		f    provision.Filter
		want string
	}{
		{"userName eq", name(provision.OpEq, "Alice"), "(|(uid=Alice)(gatehouseState=name alice))"},
		// The fold drops accents; caseIgnoreMatch does not: the fold is
		// asked for too, and the recorded fold finds "José" from "jose".
		{"userName eq accented", name(provision.OpEq, "José"), `(|(uid=Jos\c3\a9)(uid=jose)(gatehouseState=name jose))`},
		{"userName eq ß", name(provision.OpEq, "Straße"), `(|(uid=Stra\c3\9fe)(uid=strasse)(gatehouseState=name strasse))`},
		{"userName sw", name(provision.OpSw, "Jos"), "(|(uid=Jos*)(gatehouseState=name jos*))"},
		{"userName co", name(provision.OpCo, "li"), "(|(uid=*li*)(gatehouseState=name *li*))"},
		{"userName escaped", name(provision.OpEq, "a*)(uid=*"), `(|(uid=a\2a\29\28uid=\2a)(gatehouseState=name a\2a\29\28uid=\2a))`},
		{"userName sw empty fold", name(provision.OpSw, "\u0301"), matchAll},
		{"externalId eq", ext("AB*c"), `(employeeNumber=AB\2ac)`},
		{"displayName eq", provision.Compare{Field: provision.FieldDisplayName, Op: provision.OpEq, Value: "Alice Liddell", Fold: true}, "(displayName=Alice Liddell)"},
		{"displayName eq accented", provision.Compare{Field: provision.FieldDisplayName, Op: provision.OpEq, Value: "José García", Fold: true},
			`(|(displayName=Jos\c3\a9 Garc\c3\ada)(displayName=jose garcia))`},
		{"emails[type eq work].value eq", work("Alice@Example.test"), "(|(mail=Alice@Example.test))"},
		{"emails.value eq", anyEmail("alice@example.test"), "(|(mail=alice@example.test)(homeMail=alice@example.test))"},
		{"meta.lastModified gt", updated(provision.OpGt, "2026-01-02T03:04:05.678Z"), "(modifyTimestamp>=20260102030405Z)"},
		{"meta.lastModified gt whole second", updated(provision.OpGt, "2026-01-02T03:04:05Z"), "(modifyTimestamp>=20260102030405Z)"},
		{"meta.lastModified ge", updated(provision.OpGe, "2026-01-02T04:04:05.678+01:00"), "(modifyTimestamp>=20260102030405Z)"},
		{"meta.lastModified lt", updated(provision.OpLt, "2026-01-02T03:04:05.678Z"), "(modifyTimestamp<=20260102030406Z)"},
		{"meta.lastModified lt whole second", updated(provision.OpLt, "2026-01-02T03:04:05Z"), "(modifyTimestamp<=20260102030405Z)"},
		{"meta.lastModified le whole second", updated(provision.OpLe, "2026-01-02T03:04:05Z"), "(modifyTimestamp<=20260102030406Z)"},
		{"meta.lastModified eq", updated(provision.OpEq, "2026-01-02T03:04:05.5Z"), "(&(modifyTimestamp>=20260102030405Z)(modifyTimestamp<=20260102030406Z))"},
		{"meta.created ge", provision.Compare{Field: provision.FieldCreated, Op: provision.OpGe, Value: "2026-01-02T03:04:05Z"}, "(createTimestamp>=20260102030405Z)"},
		{"meta.lastModified far future", updated(provision.OpLt, "9999-12-31T23:59:59.9Z"), matchAll},
		{"active eq false", active("false"), "(pwdAccountLockedTime=000001010000Z)"},
		{"active eq true", active("true"), "(!(pwdAccountLockedTime=000001010000Z))"},
		{"active eq neither", active("maybe"), matchNothing},
		{"id eq", id, "(entryUUID=" + testUUID + ")"},
		{"id eq not a uuid", provision.Compare{Field: provision.FieldID, Op: provision.OpEq, Value: "*"}, matchNothing},
		{"id ne", provision.Compare{Field: provision.FieldID, Op: provision.OpNe, Value: testUUID}, "(!(entryUUID=" + testUUID + "))"},
		{"and", provision.And{name(provision.OpSw, "a"), active("true")}, "(&(|(uid=a*)(gatehouseState=name a*))(!(pwdAccountLockedTime=000001010000Z)))"},
		{"or", provision.Or{ext("x"), id}, "(|(employeeNumber=x)(entryUUID=" + testUUID + "))"},
		// The directory's equality ignores case where externalId's must
		// not: (!(employeeNumber=ABC)) would drop "abc", which the filter
		// matches. Only a scan, refined in Go, keeps it.
		{"not externalId eq", provision.Not{Filter: ext("ABC")}, matchAll},
		{"not userName eq", provision.Not{Filter: name(provision.OpEq, "alice")}, matchAll},
		{"externalId ne", provision.Compare{Field: provision.FieldExternalID, Op: provision.OpNe, Value: "x"}, matchAll},
		// Exact comparisons negate exactly.
		{"not active", provision.Not{Filter: active("true")}, "(pwdAccountLockedTime=000001010000Z)"},
		{"not id", provision.And{name(provision.OpEq, "alice"), provision.Not{Filter: id}}, "(&(|(uid=alice)(gatehouseState=name alice))(!(entryUUID=" + testUUID + ")))"},
		{"not meta.lastModified gt", provision.Not{Filter: updated(provision.OpGt, "2026-01-02T03:04:05.678Z")}, "(!(modifyTimestamp>=20260102030406Z))"},
		{"not not", provision.Not{Filter: provision.Not{Filter: ext("x")}}, "(employeeNumber=x)"},
		{"not (a and not b)", provision.Not{Filter: provision.And{active("true"), provision.Not{Filter: ext("x")}}},
			"(!(&(!(pwdAccountLockedTime=000001010000Z))(!(employeeNumber=x))))"},
		{"no filter", nil, matchAll},
	} {
		got, err := s.ldapFilter(tc.f)
		if err != nil || got != tc.want {
			t.Errorf("%s: ldapFilter = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// TestFilterPushDownActiveDirectory: the disabled bit marks inactive
// accounts, except those gatehouse created disabled and is enabling, which
// logins and provision.Match count as active while a login may finish
// them: the search takes every entry with the bit, and the match after it
// decides.
func TestFilterPushDownActiveDirectory(t *testing.T) {
	s := &Store{l: adLayout(t, nil)}
	for v, want := range map[string]string{
		"false": "(userAccountControl:1.2.840.113556.1.4.803:=2)",
		"true":  "(!(&(userAccountControl:1.2.840.113556.1.4.803:=2)(!(gatehouseState=pending-enable))))",
	} {
		got, err := s.ldapFilter(provision.Compare{Field: provision.FieldActive, Op: provision.OpEq, Value: v})
		if err != nil || got != want {
			t.Errorf("active eq %s: %q, %v; want %q", v, got, err, want)
		}
	}
	got, err := s.ldapFilter(provision.Compare{Field: provision.FieldUpdated, Op: provision.OpGe, Value: "2026-01-02T03:04:05Z"})
	if err != nil || got != "(whenChanged>=20260102030405Z)" {
		t.Errorf("meta.lastModified ge: %q, %v", got, err)
	}
}

func TestFilterPushDownRefuses(t *testing.T) {
	s := filterStore(t, nil)
	for _, f := range []provision.Filter{
		provision.Compare{Field: "office", Op: provision.OpEq, Value: "x"},                    // not mapped
		provision.Compare{Field: provision.FieldUserName, Op: provision.OpGt, Value: "x"},     // no ordering rule
		provision.Compare{Field: provision.FieldID, Op: provision.OpSw, Value: "x"},           // ids: eq and ne
		provision.Compare{Field: provision.FieldUpdated, Op: provision.OpGt, Value: "monday"}, // not a date-time
		provision.Not{Filter: provision.Compare{Field: provision.FieldActive, Op: provision.OpGt, Value: "true"}},
	} {
		if got, err := s.ldapFilter(f); err == nil {
			t.Errorf("%#v: %q, want an error", f, got)
		}
	}
}
