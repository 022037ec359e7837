package scim_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"gatehouse/scim"
)

// userAttrs are 20 attributes of a user, one for each concurrent PATCH.
var userAttrs = []string{"nickName", "title", "displayName", "userType", "preferredLanguage", "locale", "timezone", "profileUrl",
	"name.givenName", "name.familyName", "name.middleName", "name.honorificPrefix", "name.honorificSuffix",
	`emails[type eq "work"].value`, `phoneNumbers[type eq "work"].value`,
	enterprise + ":employeeNumber", enterprise + ":costCenter", enterprise + ":organization", enterprise + ":division", enterprise + ":department"}

// TestConcurrentPatchesAllApply (F4): 20 PATCHes of one user, and 20
// member adds to one group, sent at once without If-Match, all succeed
// and all their changes are kept: a PATCH that loses a race with another
// writer is applied again on the newer record, never answered 412.
func TestConcurrentPatchesAllApply(t *testing.T) {
	const n = 20
	for _, mode := range []string{"Fast", "General"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, scim.Config{})
			uid := e.createUser(t, user("race-target"))
			members := make([]string, n)
			for i := range members {
				members[i] = e.createUser(t, user(fmt.Sprintf("race-member-%02d", i)))
			}
			gid := e.createGroup(t, group("Race"))

			// Each user PATCH writes an attribute of its own, so that
			// every one of them must show afterwards.
			userOps := func(i int) string {
				return fmt.Sprintf(`[{"op":"add","path":%q,"value":"v%02d"}]`, userAttrs[i], i)
			}
			groupOps := func(i int) string {
				ops := fmt.Sprintf(`{"op":"add","path":"members","value":[{"value":%q}]}`, members[i])
				if mode == "General" {
					// A filter the fast path does not read sends the
					// PATCH through the general path.
					ops += `,{"op":"remove","path":"members[value co \"zzzz\"]"}`
				}
				return "[" + ops + "]"
			}
			type answer struct {
				what   string
				status int
				body   string
			}
			answers := make(chan answer, 2*n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(2)
				go func() {
					defer wg.Done()
					<-start
					status, _, body := e.do(t, "PATCH", "/Users/"+uid, patchBody(userOps(i)))
					answers <- answer{fmt.Sprintf("user PATCH %d", i), status, body}
				}()
				go func() {
					defer wg.Done()
					<-start
					status, _, body := e.do(t, "PATCH", "/Groups/"+gid, patchBody(groupOps(i)))
					answers <- answer{fmt.Sprintf("group PATCH %d", i), status, body}
				}()
			}
			close(start)
			wg.Wait()
			close(answers)
			for a := range answers {
				if a.status != 200 && a.status != 204 {
					t.Errorf("%s: %d %s", a.what, a.status, a.body)
				}
			}
			_, _, body := e.do(t, "GET", "/Groups/"+gid, "")
			var got []string
			ms, _ := decode(t, body)["members"].([]any)
			for _, m := range ms {
				got = append(got, m.(map[string]any)["value"].(string))
			}
			slices.Sort(got)
			wantMembers := slices.Clone(members)
			slices.Sort(wantMembers)
			if !slices.Equal(got, wantMembers) {
				t.Errorf("group has %d members, want all %d", len(got), n)
			}
			_, _, body = e.do(t, "GET", "/Users/"+uid, "")
			d := decode(t, body)
			for i, a := range userAttrs {
				if strings.HasPrefix(a, "urn:") {
					a = strings.Replace(a, ":User:", ":User.", 1)
				}
				a = strings.ReplaceAll(a, `[type eq "work"]`, ".0")
				want(t, d, a, fmt.Sprintf("v%02d", i))
			}
		})
	}
}

// TestIfMatchStillRefusesStale (F4): a member PATCH with a stale If-Match
// is 412 and changes nothing, on the fast path as on the general one.
func TestIfMatchStillRefusesStale(t *testing.T) {
	e := newEnv(t, scim.Config{})
	a := e.createUser(t, user("stale-a"))
	gid := e.createGroup(t, group("Stale"))
	// A rename makes the group's version 2.
	if status, _, body := e.do(t, "PATCH", "/Groups/"+gid, patchBody(`[{"op":"replace","path":"displayName","value":"Stale2"}]`)); status != 204 {
		t.Fatalf("rename: %d %s", status, body)
	}
	for _, ops := range []string{
		`[{"op":"add","path":"members","value":[{"value":"` + a + `"}]}]`,
		`[{"op":"add","path":"members","value":[{"value":"` + a + `"}]},{"op":"remove","path":"members[value co \"zzzz\"]"}]`,
	} {
		status, _, body := e.do(t, "PATCH", "/Groups/"+gid, patchBody(ops), "If-Match", `W/"1"`)
		if status != 412 {
			t.Errorf("%s with a stale If-Match: %d %s, want 412", ops, status, body)
		}
	}
	_, _, body := e.do(t, "GET", "/Groups/"+gid, "")
	if ms, _ := decode(t, body)["members"].([]any); len(ms) != 0 {
		t.Errorf("a refused PATCH added members: %s", body)
	}
}
