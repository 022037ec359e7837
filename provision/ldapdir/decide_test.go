package ldapdir

import (
	"maps"
	"slices"
	"testing"

	"gatehouse/provision"
)

// TestHeldGroupsAgreeWithPlanGroups: for every combination of recorded,
// member and asserted over three groups, the group changes Decide plans
// from heldGroups are the ones planGroups carries out: joins are the
// asserted groups the user is not in, ends are the recorded groups no
// longer asserted, and Decide reports a change of groups exactly when
// planGroups has one (so a plan of nothing needs no group write).
func TestHeldGroupsAgreeWithPlanGroups(t *testing.T) {
	names := []string{"Staff", "ops", "Admins"}
	user := &provision.User{ID: "u1", UserName: "alice", Active: true}
	for combo := range 1 << (3 * len(names)) {
		owned := map[string]bool{}
		m := &membership{byNorm: map[string]groupRef{}}
		c := provision.Claims{Fields: map[string]string{provision.FieldUserName: "alice"}, HasGroups: true}
		for i, name := range names {
			n := provision.NormalizeName(name)
			bits := combo >> (3 * i)
			if bits&1 != 0 {
				owned[n] = true
			}
			if bits&2 != 0 {
				m.byNorm[n] = groupRef{norm: n, name: name, dn: "cn=" + name + ",ou=groups"}
			}
			if bits&4 != 0 {
				c.Groups = append(c.Groups, name)
			}
		}
		slices.Sort(c.Groups)
		u := *user
		u.Groups = m.names()
		l := provision.Login{Key: provision.Key{IdP: "https://idp", Kind: "nameid", Subject: "s"}, Claims: c}
		p, err := provision.Decide(l, provision.Found{User: &u, Groups: heldGroups(c, m, owned)})
		if err != nil {
			t.Fatalf("combo %09b: %v", combo, err)
		}
		gp := planGroups(c, m, owned)
		var add, forget []string
		for _, g := range gp.add {
			add = append(add, g.norm)
		}
		forget = gp.forget
		var decided []string
		for _, g := range p.AddGroups {
			decided = append(decided, provision.NormalizeName(g))
		}
		slices.Sort(decided)
		if !slices.Equal(decided, add) || !slices.Equal(p.DropGroups, forget) {
			t.Errorf("combo %09b (owned %v, member %v, asserted %v): Decide +%q -%q, planGroups +%q -%q",
				combo, slices.Sorted(maps.Keys(owned)), m.names(), c.Groups, decided, p.DropGroups, add, forget)
		}
		if slices.Contains(p.Changed, provision.FieldGroups) != gp.changes() {
			t.Errorf("combo %09b: Decide changed %q, planGroups changes %v", combo, p.Changed, gp.changes())
		}
		if (p.Action == provision.ActNothing) == gp.changes() {
			t.Errorf("combo %09b: action %s with planGroups changes %v", combo, p.Action, gp.changes())
		}
	}
}

// TestSCIMFieldStateValues: the fields SCIM wrote round-trip through the
// state attribute; an entry SCIM owns without the record reads as SCIM
// owning every field; an entry no SCIM write touched owns none.
func TestSCIMFieldStateValues(t *testing.T) {
	for name, tc := range map[string]struct {
		vals []string
		want []string
	}{
		"recorded":         {[]string{stateOwner, stateSCIMFields, "scim field email", "scim field display_name"}, []string{"display_name", "email"}},
		"recorded, none":   {[]string{stateOwner, stateSCIMFields}, nil},
		"legacy SCIM user": {[]string{stateOwner, "version 3"}, []string{provision.AllFields}},
		"login's user":     {[]string{"version 3", "key https://idp nameid s"}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			if got := parseState(tc.vals).SCIMFields(); !slices.Equal(got, tc.want) {
				t.Errorf("SCIMFields = %q, want %q", got, tc.want)
			}
		})
	}
	st := parseState([]string{stateOwner, stateSCIMFields, "scim field email", "scim field title"})
	add, del := st.scimFieldsChange([]string{"title", "office", "title"})
	if !slices.Equal(add, []string{"scim field office"}) || !slices.Equal(del, []string{"scim field email"}) {
		t.Errorf("change to [office title]: +%q -%q", add, del)
	}
	add, del = parseState([]string{stateOwner}).scimFieldsChange(nil)
	if !slices.Equal(add, []string{stateSCIMFields}) || len(del) != 0 {
		t.Errorf("recording no field on a legacy entry: +%q -%q, want the record alone", add, del)
	}
}
