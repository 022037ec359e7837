package scim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gatehouse/provision"
	"gatehouse/provision/storetest/realstore"
	"gatehouse/scim"
)

// memberReads is a real store that counts the member lists the SCIM
// server asks it for: whole lists read (Group or FindGroups with
// members) and lists returned by UpdateGroup.
type memberReads struct {
	provision.Directory
	groups   provision.GroupDirectory
	lists    atomic.Int64
	returned atomic.Int64
}

func (m *memberReads) FindGroups(ctx context.Context, q provision.Query) (provision.Page[provision.Group], error) {
	if q.Members {
		m.lists.Add(1)
	}
	return m.groups.FindGroups(ctx, q)
}

func (m *memberReads) Group(ctx context.Context, id string, members bool) (provision.Group, error) {
	if members {
		m.lists.Add(1)
	}
	return m.groups.Group(ctx, id, members)
}

func (m *memberReads) CreateGroup(ctx context.Context, g provision.Group) (provision.Group, error) {
	return m.groups.CreateGroup(ctx, g)
}

func (m *memberReads) UpdateGroup(ctx context.Context, id string, c provision.GroupChange, ifVersion int64) (provision.Group, error) {
	if c.Members {
		m.returned.Add(1)
	}
	return m.groups.UpdateGroup(ctx, id, c, ifVersion)
}

func (m *memberReads) DeleteGroup(ctx context.Context, id string, ifVersion int64) error {
	return m.groups.DeleteGroup(ctx, id, ifVersion)
}

func (m *memberReads) reset() { m.lists.Store(0); m.returned.Store(0) }

// groupWorld is a SCIM server over a real store. Each seed adds a fresh
// group Staff{n}: alice{n} and bob{n} are SCIM members, jules{n} a member
// by login only; carol{n} and dave{n} are users outside it; a second group
// is named Other{n}. Names in braces stand for the seed's IDs and tag in
// request bodies and in what the world reports, so that two worlds
// compare.
type groupWorld struct {
	*env
	reads *memberReads
	audit *observer.ObservedLogs
	ids   map[string]string // {a}, {b}, {c}, {d}, {j}, {g}, {n}
	jules provision.Login
}

// stores are the real stores these tests run on.
var stores = []struct {
	name string
	open func(testing.TB) provision.Store
}{{"SQLite", realstore.SQLite}, {"PostgreSQL", realstore.Postgres}}

func newGroupWorld(t *testing.T, open func(testing.TB) provision.Store, cfg scim.Config) *groupWorld {
	t.Helper()
	raw := open(t)
	reads := &memberReads{Directory: raw.(provision.Directory), groups: raw.(provision.GroupDirectory)}
	core, logs := observer.New(zap.InfoLevel)
	w := &groupWorld{env: &env{store: reads}, reads: reads, audit: logs}
	if cfg.Tokens == nil {
		cfg.Tokens = []string{token}
	}
	hs := httptest.NewServer(nil)
	t.Cleanup(hs.Close)
	w.base = hs.URL + mount
	var err error
	w.srv, err = scim.NewServer(cfg, reads, scim.Options{BaseURL: w.base, Mount: mount, Logger: zap.NewNop(), Audit: zap.New(core),
		OnUserChange: func(id string) { w.forgot = append(w.forgot, id) }})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = w.srv
	w.client = hs.Client()
	return w
}

// seed adds the users and groups of one case; tag makes their names new.
func (w *groupWorld) seed(t *testing.T, tag string) {
	t.Helper()
	w.ids = map[string]string{"{n}": tag}
	for k, name := range map[string]string{"{a}": "alice", "{b}": "bob", "{c}": "carol", "{d}": "dave"} {
		w.ids[k] = w.createUser(t, user(name+tag))
	}
	const group = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],`
	status, _, body := w.do(t, "POST", "/Groups", w.expand(group+`"displayName":"Staff{n}","members":[{"value":"{a}"},{"value":"{b}"}]}`))
	if status != 201 {
		t.Fatalf("create group: %d %s", status, body)
	}
	w.ids["{g}"] = decode(t, body)["id"].(string)
	// A second group, so that a rename can collide.
	if status, _, body := w.do(t, "POST", "/Groups", w.expand(group+`"displayName":"Other{n}"}`)); status != 201 {
		t.Fatalf("create Other: %d %s", status, body)
	}
	w.jules = provision.Login{Key: provision.Key{IdP: "https://idp.example.test/metadata", Kind: "nameid", Subject: "jules" + tag},
		Claims: provision.Claims{Fields: map[string]string{provision.FieldUserName: "jules" + tag}, Groups: []string{"Staff" + tag}, HasGroups: true}}
	res, err := w.reads.Provision(context.Background(), w.jules)
	if err != nil {
		t.Fatalf("login of jules: %v", err)
	}
	w.ids["{j}"] = res.User.ID
	if got := w.members(t); !slices.Equal(got, []string{"{a}", "{b}", "{j}"}) {
		t.Fatalf("Staff before the PATCH: %v", got)
	}
	w.audit.TakeAll()
	w.forgot = nil
}

// expand puts the IDs in a body.
func (w *groupWorld) expand(s string) string {
	for k, id := range w.ids {
		s = strings.ReplaceAll(s, k, id)
		// An upper-cased ID names no member: IDs compare exactly.
		s = strings.ReplaceAll(s, strings.ToUpper(k), strings.ToUpper(id))
	}
	return s
}

// names takes the IDs out of what a world reports.
func (w *groupWorld) names(s string) string {
	for k, id := range w.ids {
		if id != "" {
			s = strings.ReplaceAll(s, id, k)
		}
	}
	return strings.ReplaceAll(s, w.base, "{base}")
}

// members lists Staff's members, as names.
func (w *groupWorld) members(t *testing.T) []string {
	t.Helper()
	status, _, body := w.do(t, "GET", "/Groups/"+w.ids["{g}"], "")
	if status != 200 {
		t.Fatalf("GET group: %d %s", status, body)
	}
	var out []string
	ms, _ := decode(t, body)["members"].([]any)
	for _, m := range ms {
		out = append(out, w.names(m.(map[string]any)["value"].(string)))
	}
	slices.Sort(out)
	return out
}

// patchOutcome is everything a group PATCH is seen to do.
type patchOutcome struct {
	Status int
	ETag   string
	Body   string // meta (timestamps) left out
	Audit  map[string]any
	Forgot []string
	// Members after the PATCH, and after jules's login stops asserting
	// Staff: a SCIM membership the PATCH gave jules would then show.
	Members, MembersAfterLogin []string
	ListsRead                  int64
}

func (w *groupWorld) patch(t *testing.T, query, body string, hdr ...string) patchOutcome {
	t.Helper()
	w.reads.reset()
	var o patchOutcome
	var h map[string][]string
	var raw string
	o.Status, h, raw = w.do(t, "PATCH", "/Groups/"+w.ids["{g}"]+query, w.expand(body), hdr...)
	o.ListsRead = w.reads.lists.Load()
	o.ETag = strings.Join(h["Etag"], ",")
	if raw != "" {
		doc := decode(t, raw)
		delete(doc, "meta")
		// Members come sorted by ID, and the IDs differ between worlds.
		if ms, ok := doc["members"].([]any); ok {
			slices.SortFunc(ms, func(x, y any) int {
				return strings.Compare(w.names(fmt.Sprint(x.(map[string]any)["value"])), w.names(fmt.Sprint(y.(map[string]any)["value"])))
			})
		}
		b, _ := json.Marshal(doc)
		o.Body = w.names(string(b))
	}
	for _, e := range w.audit.TakeAll() {
		if e.Message != "scim write" {
			continue
		}
		o.Audit = e.ContextMap()
		delete(o.Audit, "request_id")
		if err, ok := o.Audit["error"].(string); ok {
			o.Audit["error"] = w.names(err)
		}
		o.Audit["id"] = w.names(fmt.Sprint(o.Audit["id"]))
	}
	for _, id := range w.forgot {
		o.Forgot = append(o.Forgot, w.names(id))
	}
	slices.Sort(o.Forgot)
	o.Forgot = slices.Compact(o.Forgot)
	w.forgot = nil
	o.Members = w.members(t)
	l := w.jules
	l.Claims.Groups = []string{}
	if _, err := w.reads.Provision(context.Background(), l); err != nil {
		t.Fatalf("login of jules without groups: %v", err)
	}
	o.MembersAfterLogin = w.members(t)
	return o
}

// pathTaken is the path a group PATCH is expected to take.
type pathTaken int

const patchOp = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":`

// TestGroupPatchFastPathMatchesGeneral runs each PATCH on two identical
// groups, once through the member fast path and once through the general
// path, and requires the same answer, stored membership, audit event and
// users reported changed. Cases the fast path must take are checked to
// read no member list; the others must take the general path.
func TestGroupPatchFastPathMatchesGeneral(t *testing.T) {
	const (
		general    pathTaken = iota
		fast                 // in both modes
		quirksOnly           // fast with quirks, general in strict mode
	)
	cases := []struct {
		name, ops string
		query     string
		hdr       []string
		fast      pathTaken
	}{
		{"AddOne", `[{"op":"add","path":"members","value":[{"value":"{c}"}]}]`, "", nil, fast},
		// A key no schema defines is the general path's 400 invalidPath.
		{"AddTypoKey", `[{"op":"add","path":"members","value":[{"value":"{c}","tpye":"User"}]}]`, "", nil, general},
		{"AddObject", `[{"op":"Add","path":"members","value":{"value":"{c}","display":"carol","$ref":null}}]`, "", nil, fast},
		{"AddSeveralAndDuplicates", `[{"op":"add","path":"members","value":[{"value":"{d}"},{"value":"{c}","type":"User"},{"value":"{d}"}]}]`, "", nil, fast},
		{"AddExisting", `[{"op":"add","path":"members","value":[{"value":"{a}"}]}]`, "", nil, fast},
		{"AddLoginMember", `[{"op":"add","path":"members","value":[{"value":"{j}"}]}]`, "", nil, fast},
		{"AddUnknown", `[{"op":"add","path":"members","value":[{"value":"{c}"},{"value":"nobody"},{"value":"ghost"}]}]`, "", nil, fast},
		{"AddEmpty", `[{"op":"add","path":"members","value":[]}]`, "", nil, fast},
		{"AddQualifiedPath", `[{"op":"add","path":"urn:ietf:params:scim:schemas:core:2.0:Group:Members","value":[{"value":"{c}"}]}]`, "", nil, fast},
		{"RemoveByFilter", `[{"op":"remove","path":"members[value eq \"{a}\"]"}]`, "", nil, fast},
		{"RemoveByOrFilter", `[{"op":"remove","path":"members[value eq \"{a}\" or value eq \"{b}\"]"}]`, "", nil, fast},
		{"RemoveEveryone", `[{"op":"remove","path":"members[value eq \"{a}\" or value eq \"{b}\" or value eq \"{j}\"]"}]`, "", nil, fast},
		{"RemoveLoginMember", `[{"op":"remove","path":"members[value eq \"{j}\"]"}]`, "", nil, fast},
		{"RemoveNonMember", `[{"op":"remove","path":"members[value eq \"{c}\"]"}]`, "", nil, fast},
		{"RemoveUnknown", `[{"op":"remove","path":"members[value eq \"nobody\"]"}]`, "", nil, fast},
		{"RemoveOtherCase", `[{"op":"remove","path":"members[value eq \"{A}\"]"}]`, "", nil, fast},
		{"RemoveValueArray", `[{"op":"Remove","path":"members","value":[{"value":"{a}"},{"value":"nobody"}]}]`, "", nil, fast},
		{"RemoveEmptyValueArray", `[{"op":"remove","path":"members","value":[]}]`, "", nil, fast},
		{"EntraAddAndRemove", `[{"op":"Add","path":"members","value":[{"$ref":null,"value":"{c}"}]},{"op":"Remove","path":"members","value":[{"value":"{a}"}]}]`, "", nil, fast},
		{"AddThenRemoveSame", `[{"op":"add","path":"members","value":[{"value":"{c}"},{"value":"{d}"}]},{"op":"remove","path":"members[value eq \"{c}\"]"}]`, "", nil, fast},
		{"AddRemoveAdd", `[{"op":"add","path":"members","value":[{"value":"{c}"},{"value":"{d}"}]},{"op":"remove","path":"members[value eq \"{c}\"]"},{"op":"add","path":"members","value":[{"value":"{c}"}]}]`, "", nil, fast},
		{"RemoveThenAddMember", `[{"op":"remove","path":"members[value eq \"{a}\"]"},{"op":"add","path":"members","value":[{"value":"{a}"}]}]`, "", nil, fast},
		{"AddThenRemoveMember", `[{"op":"add","path":"members","value":[{"value":"{a}"}]},{"op":"remove","path":"members[value eq \"{a}\"]"}]`, "", nil, fast},
		{"UnknownsInOrder", `[{"op":"add","path":"members","value":[{"value":"ghost"},{"value":"nobody"}]},{"op":"remove","path":"members[value eq \"ghost\"]"},{"op":"add","path":"members","value":[{"value":"ghost"}]}]`, "", nil, fast},
		{"RenameAndAdd", `[{"op":"replace","path":"displayName","value":"Team{n}"},{"op":"add","path":"members","value":[{"value":"{c}"}]}]`, "", nil, fast},
		{"OktaRename", `[{"op":"replace","value":{"id":"{g}","displayName":"Team{n}"}}]`, "", nil, fast},
		{"ExternalID", `[{"op":"replace","path":"externalId","value":"ext-1"},{"op":"remove","path":"members[value eq \"{b}\"]"}]`, "", nil, fast},
		{"BadRename", `[{"op":"add","path":"members","value":[{"value":"{c}"}]},{"op":"replace","path":"displayName","value":" "}]`, "", nil, fast},
		{"RenameTaken", `[{"op":"replace","path":"displayName","value":"Other{n}"},{"op":"add","path":"members","value":[{"value":"{c}"}]}]`, "", nil, fast},
		{"BadOpAfterAdd", `[{"op":"add","path":"members","value":[{"value":"{c}"}]},{"op":"remove"}]`, "", nil, fast},
		{"IDChange", `[{"op":"add","path":"members","value":[{"value":"{c}"}]},{"op":"replace","value":{"id":"other"}}]`, "", nil, fast},
		{"StaleIfMatch", `[{"op":"add","path":"members","value":[{"value":"{c}"}]}]`, "", []string{"If-Match", `W/"99"`}, fast},
		{"CurrentIfMatch", `[{"op":"add","path":"members","value":[{"value":"{c}"}]}]`, "", []string{"If-Match", `W/"1"`}, fast},
		{"AttributesWithoutMembers", `[{"op":"add","path":"members","value":[{"value":"{c}"}]}]`, "?attributes=displayName", nil, fast},
		{"AttributesWithMembers", `[{"op":"add","path":"members","value":[{"value":"{c}"}]}]`, "?attributes=members,displayName", nil, fast},
		// A read-only sub-attribute is refused before any member is read.
		{"ReadOnlySubAttribute", `[{"op":"remove","path":"members[value eq \"{a}\"].display"}]`, "", nil, fast},
		{"AttributesQualifiedMembers", `[{"op":"remove","path":"members[value eq \"{a}\"]"}]`, "?attributes=URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:GROUP:members", nil, fast},

		// The general path's cases, answered as before.
		{"ReplaceMembers", `[{"op":"replace","path":"members","value":[{"value":"{c}"}]}]`, "", nil, general},
		{"RemoveAllMembers", `[{"op":"remove","path":"members"}]`, "", nil, general},
		{"AddNull", `[{"op":"add","path":"members","value":null}]`, "", nil, general},
		{"PathlessMembers", `[{"op":"add","value":{"members":[{"value":"{c}"}]}}]`, "", nil, general},
		{"FilterOnDisplay", `[{"op":"remove","path":"members[display eq \"alice\"]"}]`, "", nil, general},
		{"FilterNe", `[{"op":"remove","path":"members[value ne \"{a}\"]"}]`, "", nil, general},
		{"FilterAnd", `[{"op":"remove","path":"members[value eq \"{a}\" and value eq \"{a}\"]"}]`, "", nil, general},
		{"SubAttribute", `[{"op":"remove","path":"members[value eq \"{a}\"].type"}]`, "", nil, general},
		{"AddFiltered", `[{"op":"add","path":"members[value eq \"{a}\"]","value":{"value":"{c}"}}]`, "", nil, general},
		// Strict mode refuses a member type the quirks take.
		{"GroupMemberType", `[{"op":"add","path":"members","value":[{"value":"{c}","type":"Group"}]}]`, "", nil, quirksOnly},
		{"ExistingMemberOddElement", `[{"op":"add","path":"members","value":[{"value":"{a}","type":"Group"}]}]`, "", nil, quirksOnly},
		{"PaddedValue", `[{"op":"add","path":"members","value":[{"value":" {c}"}]}]`, "", nil, general},
		{"NoValue", `[{"op":"add","path":"members","value":[{"display":"carol"}]}]`, "", nil, general},
		{"NotAnObject", `[{"op":"add","path":"members","value":["{c}"]}]`, "", nil, general},
		{"RemoveObjectValue", `[{"op":"remove","path":"members","value":{"value":"{a}"}}]`, "", nil, general},
		// A remove's elements are checked as an add's are (issue 18, F8):
		// each refusal is the general path's 400.
		{"RemoveValueArrayJunk", `[{"op":"Remove","path":"members","value":[{"value":"{a}"},{"value":"nobody"},"junk"]}]`, "", nil, general},
		{"RemoveIDStrings", `[{"op":"remove","path":"members","value":["{a}","{b}"]}]`, "", nil, general},
		{"RemoveNumber", `[{"op":"remove","path":"members","value":[{"value":"{a}"},5]}]`, "", nil, general},
		{"RemoveNoValue", `[{"op":"remove","path":"members","value":[{"display":"alice"}]}]`, "", nil, general},
		{"RemoveTypoKey", `[{"op":"remove","path":"members","value":[{"value":"{a}","bogus":1}]}]`, "", nil, general},
		{"RemoveGroupMemberType", `[{"op":"remove","path":"members","value":[{"value":"{a}","type":"Group"}]}]`, "", nil, quirksOnly},
		// A name the operations leave as it is, is not written.
		{"RenameToSameAndAdd", `[{"op":"replace","path":"displayName","value":"Staff{n}"},{"op":"add","path":"members","value":[{"value":"{c}"}]}]`, "", nil, fast},
	}
	off := false
	for _, st := range stores {
		for _, mode := range []struct {
			name string
			cfg  scim.Config
		}{{"Quirks", scim.Config{}}, {"Strict", scim.Config{Quirks: &off}}} {
			t.Run(st.name+"/"+mode.name, func(t *testing.T) {
				// Two worlds, each case on groups of its own in both.
				fw, gw := newGroupWorld(t, st.open, mode.cfg), newGroupWorld(t, st.open, mode.cfg)
				for i, tc := range cases {
					t.Run(tc.name, func(t *testing.T) {
						tag := fmt.Sprintf("-t%02d", i)
						fw.seed(t, tag)
						gw.seed(t, tag)
						body := patchOp + tc.ops + `}`
						got := fw.patch(t, tc.query, body, tc.hdr...)
						scim.SlowGroupPatch.Store(true)
						want := gw.patch(t, tc.query, body, tc.hdr...)
						scim.SlowGroupPatch.Store(false)
						if want.ListsRead == 0 {
							t.Fatalf("the general path read no member list: the switch to it does not work")
						}
						wantFast := tc.fast == fast || tc.fast == quirksOnly && mode.cfg.Quirks == nil
						if wantFast != (got.ListsRead == 0) {
							t.Errorf("fast path taken = %v (member lists read: %d), want %v", got.ListsRead == 0, got.ListsRead, wantFast)
						}
						got.ListsRead, want.ListsRead = 0, 0
						if d := cmp.Diff(want, got); d != "" {
							t.Errorf("fast path differs from the general path (-general +fast):\n%s", d)
						}
					})
				}
			})
		}
	}
}

// TestGroupPatchReadsNoMemberList: a PATCH that adds or removes named
// members, renames the group or does both, reads no member list, in a
// group of 10 members or of 5,000; the store is not asked to return one
// either, unless the answer shows members.
func TestGroupPatchReadsNoMemberList(t *testing.T) {
	for _, st := range stores {
		for _, n := range []int{10, 5000} {
			t.Run(fmt.Sprint(st.name, "/", n), func(t *testing.T) {
				w := newGroupWorld(t, st.open, scim.Config{})
				w.seed(t, "")
				readsNoMemberList(t, w, n)
			})
		}
	}
}

func readsNoMemberList(t *testing.T, w *groupWorld, n int) {
	ctx := context.Background()
	imp, ok := w.reads.Directory.(provision.Importer)
	if !ok {
		t.Fatal("the store cannot import users")
	}
	users := make([]provision.User, n)
	for i := range users {
		users[i] = provision.User{UserName: fmt.Sprintf("user%05d", i), Active: true}
	}
	done, err := imp.ImportUsers(ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	var ms []provision.Member
	for _, d := range done {
		if d.Err != nil {
			t.Fatal(d.Err)
		}
		ms = append(ms, provision.Member{UserID: d.ID})
	}
	// Members join in chunks: one write of thousands would outlast the
	// store's time bound on a busy machine (under the race detector).
	g, err := w.reads.groups.CreateGroup(ctx, provision.Group{Name: "Big"})
	if err != nil {
		t.Fatal(err)
	}
	for chunk := range slices.Chunk(ms[1:], 250) {
		c := provision.GroupChange{}
		for _, m := range chunk {
			c.Add = append(c.Add, m.UserID)
		}
		if _, err := w.reads.groups.UpdateGroup(ctx, g.ID, c, 0); err != nil {
			t.Fatal(err)
		}
	}
	first, second := ms[0].UserID, ms[1].UserID
	count := func() int {
		t.Helper()
		got, err := w.reads.groups.Group(ctx, g.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		return len(got.Members)
	}
	for _, step := range []struct {
		name, ops, query string
		returned         int64
		members          int
	}{
		{"Add", `[{"op":"add","path":"members","value":[{"value":"` + first + `"}]}]`, "", 0, n},
		{"RemoveByFilter", `[{"op":"remove","path":"members[value eq \"` + first + `\"]"}]`, "", 0, n - 1},
		{"RemoveValueArray", `[{"op":"Remove","path":"members","value":[{"value":"` + second + `"}]}]`, "", 0, n - 2},
		{"OktaRenameAndAdd", `[{"op":"replace","value":{"id":"` + g.ID + `","displayName":"Bigger"}},{"op":"add","path":"members","value":[{"value":"` + second + `"}]}]`, "", 0, n - 1},
		{"AnswerWithoutMembers", `[{"op":"add","path":"members","value":[{"value":"` + first + `"}]}]`, "?attributes=displayName", 0, n},
		{"AnswerWithMembers", `[{"op":"remove","path":"members[value eq \"` + first + `\"]"}]`, "?attributes=members", 1, n - 1},
	} {
		w.reads.reset()
		status, _, body := w.do(t, "PATCH", "/Groups/"+g.ID+step.query, patchOp+step.ops+`}`)
		if status != 204 && status != 200 {
			t.Fatalf("%s: %d %s", step.name, status, body)
		}
		if got := w.reads.lists.Load(); got != 0 {
			t.Errorf("%s: %d member lists read, want none", step.name, got)
		}
		if got := w.reads.returned.Load(); got != step.returned {
			t.Errorf("%s: the store returned the member list %d times, want %d", step.name, got, step.returned)
		}
		if got := count(); got != step.members {
			t.Errorf("%s: %d members, want %d", step.name, got, step.members)
		}
	}
}
