package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"gatehouse/provision"
	"gatehouse/scim"
)

// BenchmarkSCIM measures SCIM at the scale of issue 18, on SQLite and on
// PostgreSQL: 100,000 users, a 10,000-member group and a 10-member one.
// Each request is a full HTTP round trip, each lookup a different user
// that exists (no cache can answer), each figure the median of 200
// requests (co: 50; a figure that scans stops early once it has taken
// scaleBudget; sw and co ask for count=10, the other lists for the
// default 100), reported in ms and as a ratio to the userName eq lookup
// of the same run, which is what an indexed lookup costs there. The
// answers of lastModified_gt and of the pages hold 100 users each:
// page_first, a first page, is their floor.
// Every answer is checked: a wrong total fails the benchmark.
//
// The goal: every lookup and deep page under 5 ms median, a member added
// to or removed from the large group as cheap as from the small one
// (patch_*_10k_vs_10 near 1); co may scan, within the request timeout.
func BenchmarkSCIM(b *testing.B) {
	users := make([]provision.User, scaleUsers)
	for i := range users {
		users[i] = scaleUser(i)
	}
	for _, be := range benchStores {
		b.Run(be.name, func(b *testing.B) {
			cfg := be.config(b)
			st := openBenchStore(b, cfg)
			start := time.Now()
			ids, how := scaleSeed(b, st, users)
			seeded := time.Since(start)
			var large, small []string
			for i, id := range ids {
				switch {
				case i%10 == 3 && len(large) < scaleLarge:
					large = append(large, id)
				case i%10 == 5 && len(small) < scaleSmall:
					small = append(small, id)
				}
			}
			start = time.Now()
			bigGroup := scaleGroup(b, st, "All Staff", large)
			smallGroup := scaleGroup(b, st, "Board", small)
			for t := range scaleTeams {
				scaleGroup(b, st, fmt.Sprintf("Team %04d", t), nil)
			}
			grouped := time.Since(start)
			var deltas []string
			for k := range scaleDeltas {
				deltas = append(deltas, ids[k*(scaleUsers/scaleDeltas)+11])
			}
			since := scaleTouch(b, st, deltas)
			settle(b, cfg)

			srv, err := scim.NewServer(scim.Config{Tokens: []string{scimToken}}, st, scim.Options{BaseURL: "http://bench/scim", Mount: "/scim", Logger: zap.NewNop()})
			if err != nil {
				b.Fatal(err)
			}
			hs := httptest.NewServer(srv)
			defer hs.Close()
			r := &scaleRun{b: b, hs: hs, users: users, ids: ids}
			for range b.N {
				figs := r.measure(since, bigGroup, smallGroup)
				for _, g := range []provision.Group{bigGroup, smallGroup} {
					if got, err := st.Group(context.Background(), g.ID, true); err != nil || len(got.Members) != len(g.Members) {
						b.Errorf("group %s after the PATCHes: %d members (error %v), want %d", g.Name, len(got.Members), err, len(g.Members))
					}
				}
				r.report(be.name, figs, fmt.Sprintf("%d users seeded by %s in %s (%.0f/s); groups in %s",
					len(users), how, seeded.Round(time.Millisecond), float64(len(users))/seeded.Seconds(), grouped.Round(time.Millisecond)))
				b.ReportMetric(float64(len(users))/seeded.Seconds(), "seeded_users/s")
			}
		})
	}
}

// scaleRun is one store's server and directory.
type scaleRun struct {
	b     *testing.B
	hs    *httptest.Server
	users []provision.User
	ids   []string
}

// scaleFigure is the timing of one kind of request.
type scaleFigure struct {
	name     string
	med, p99 time.Duration
	n        int // requests timed
	failed   bool
}

// scaleList is the part of a ListResponse the checks read.
type scaleList struct {
	Total     int              `json:"totalResults"`
	Resources []map[string]any `json:"Resources"`
}

// do sends one request and reads the whole answer: the time is the full
// round trip.
func (r *scaleRun) do(method, path, body string) (int, []byte, time.Duration) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, r.hs.URL+"/scim"+path, rd)
	if err != nil {
		r.b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+scimToken)
	req.Header.Set("Content-Type", "application/scim+json")
	start := time.Now()
	resp, err := r.hs.Client().Do(req)
	if err != nil {
		r.b.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		r.b.Fatal(err)
	}
	return resp.StatusCode, data, took
}

// scaleReq is one request of a figure and the check of its answer.
type scaleReq struct {
	method, path, body string
	status             int
	check              func(body []byte) error
}

// scaleBudget bounds the time of one figure: a filter that scans stops
// after scaleMinSamples requests once it is spent, so that a slow store
// still finishes the benchmark within make bench's timeout.
const (
	scaleBudget     = 20 * time.Second
	scaleMinSamples = 20
)

// series sends n requests made by next (fewer when they exhaust
// scaleBudget) and returns their median and p99. A wrong status stops the
// figure; a wrong answer is reported and the figure kept.
func (r *scaleRun) series(name string, n int, next func(j int) scaleReq) scaleFigure {
	f := scaleFigure{name: name}
	took := make([]time.Duration, 0, n)
	wrong := 0
	start := time.Now()
	for j := range n {
		if j >= scaleMinSamples && time.Since(start) > scaleBudget {
			break
		}
		q := next(j)
		status, body, d := r.do(q.method, q.path, q.body)
		if status != q.status {
			r.b.Errorf("%s: %s %s: status %d, want %d: %.300s", name, q.method, q.path, status, q.status, body)
			f.failed = true
			return f
		}
		took = append(took, d)
		if q.check != nil {
			if err := q.check(body); err != nil {
				if wrong++; wrong <= 3 {
					r.b.Errorf("%s: %s %s: %v", name, q.method, q.path, err)
				}
			}
		}
	}
	f.med, f.p99, f.n = scalePercentiles(took)
	return f
}

func scalePercentiles(d []time.Duration) (med, p99 time.Duration, n int) {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100], len(d)
}

// list checks a ListResponse: its total, and the one user it must name
// when wantID is set.
func scaleCheck(wantTotal int, wantID string) func([]byte) error {
	return func(body []byte) error {
		var l scaleList
		if err := json.Unmarshal(body, &l); err != nil {
			return err
		}
		if l.Total != wantTotal {
			return fmt.Errorf("totalResults %d, want %d", l.Total, wantTotal)
		}
		if wantID != "" && (len(l.Resources) != 1 || l.Resources[0]["id"] != wantID) {
			return fmt.Errorf("resources %v, want only %s", l.Resources, wantID)
		}
		return nil
	}
}

func scaleWhere(filter string, extra ...string) string {
	return "/Users?" + strings.Join(append(extra, "filter="+url.QueryEscape(filter)), "&")
}

// measure times every figure of issue 18.
func (r *scaleRun) measure(since time.Time, bigGroup, smallGroup provision.Group) []scaleFigure {
	const n = 200
	users, ids := r.users, r.ids
	// The same users are asked for on every store.
	rng := rand.New(rand.NewPCG(18, 100_000))
	pick := func() int { return rng.IntN(len(users)) }
	pickHome := func() int { return 10*rng.IntN(len(users)/10) + 7 }
	get := func(path string, check func([]byte) error) scaleReq {
		return scaleReq{method: "GET", path: path, status: 200, check: check}
	}
	// Varied case where the attribute ignores case.
	spell := func(s string, j int) string {
		if j%2 == 1 {
			return strings.ToUpper(s)
		}
		return strings.ToLower(s)
	}
	displayNames := map[string]int{}
	prefixes := map[string]int{}
	lowerNames := make([]string, len(users))
	for i, u := range users {
		displayNames[provision.NormalizeName(u.DisplayName)]++
		lowerNames[i] = strings.ToLower(u.UserName)
		prefixes[lowerNames[i][:2]]++
	}

	for range 20 { // warm up connections, statements and caches of the store
		r.do("GET", scaleWhere(fmt.Sprintf(`userName eq "%s"`, users[pick()].UserName)), "")
	}
	var figs []scaleFigure
	add := func(f scaleFigure) { figs = append(figs, f) }
	add(r.series("eq", n, func(j int) scaleReq {
		i := pick()
		return get(scaleWhere(fmt.Sprintf(`userName eq "%s"`, spell(users[i].UserName, j))), scaleCheck(1, ids[i]))
	}))
	add(r.series("emails_work_entra", n, func(j int) scaleReq {
		i := pick()
		return get(scaleWhere(fmt.Sprintf(`emails[type eq "work"].value eq "%s"`, spell(users[i].Email, j))), scaleCheck(1, ids[i]))
	}))
	// Three in four work addresses, one in four home addresses.
	email := func(j int) (int, string) {
		if j%4 == 3 {
			i := pickHome()
			return i, users[i].Extra["email_home"]
		}
		i := pick()
		return i, spell(users[i].Email, j)
	}
	add(r.series("emails_value", n, func(j int) scaleReq {
		i, v := email(j)
		return get(scaleWhere(fmt.Sprintf(`emails.value eq "%s"`, v)), scaleCheck(1, ids[i]))
	}))
	add(r.series("emails_bracket", n, func(j int) scaleReq {
		i, v := email(j)
		return get(scaleWhere(fmt.Sprintf(`emails[value eq "%s"]`, v)), scaleCheck(1, ids[i]))
	}))
	add(r.series("externalId", n, func(j int) scaleReq {
		i := pick()
		return get(scaleWhere(fmt.Sprintf(`externalId eq "%s"`, users[i].ExternalID)), scaleCheck(1, ids[i]))
	}))
	add(r.series("displayName", n, func(j int) scaleReq {
		name := users[pick()].DisplayName
		if j%2 == 1 {
			name = strings.ToLower(name)
		}
		return get(scaleWhere(fmt.Sprintf(`displayName eq "%s"`, name)), scaleCheck(displayNames[provision.NormalizeName(name)], ""))
	}))
	add(r.series("sw", n, func(j int) scaleReq {
		p := scalePairs[rng.IntN(len(scalePairs))]
		return get(scaleWhere(fmt.Sprintf(`userName sw "%s"`, scaleCase(p, j)), "count=10"), scaleCheck(prefixes[p], ""))
	}))
	add(r.series("lastModified_gt", n, func(j int) scaleReq {
		stamp := since.Add(-time.Duration(j) * time.Millisecond).UTC().Format("2006-01-02T15:04:05.000Z")
		return get(scaleWhere(fmt.Sprintf(`meta.lastModified gt "%s"`, stamp)), scaleCheck(scaleDeltas, ""))
	}))
	fullPage := func(body []byte) error {
		var l scaleList
		if err := json.Unmarshal(body, &l); err != nil {
			return err
		}
		if l.Total != len(users) || len(l.Resources) != 100 {
			return fmt.Errorf("totalResults %d, %d resources; want %d, 100", l.Total, len(l.Resources), len(users))
		}
		return nil
	}
	// A first page: what rendering 100 users costs, the floor of every
	// page below.
	add(r.series("page_first", n, func(j int) scaleReq {
		return get(fmt.Sprintf("/Users?startIndex=%d&count=100", 1+j%100), fullPage)
	}))
	// Straight to startIndex 90,000 (at 100,000 users), give or take 100.
	deep := len(users)*9/10 - 100
	add(r.series("page_jump", n, func(j int) scaleReq {
		return get(fmt.Sprintf("/Users?startIndex=%d&count=100", deep+j), fullPage)
	}))
	add(r.walk())
	add(r.series("co", 50, func(j int) scaleReq {
		digits := fmt.Sprintf("%04d", rng.IntN(10_000))
		want := 0
		for _, name := range lowerNames {
			if strings.Contains(name, digits) {
				want++
			}
		}
		return get(scaleWhere(fmt.Sprintf(`userName co "%s"`, digits), "count=10"), scaleCheck(want, ""))
	}))
	noMembers := func(body []byte) error {
		var l scaleList
		if err := json.Unmarshal(body, &l); err != nil {
			return err
		}
		if l.Total != 1 || len(l.Resources) != 1 {
			return fmt.Errorf("totalResults %d, %d resources; want one group", l.Total, len(l.Resources))
		}
		if _, ok := l.Resources[0]["members"]; ok {
			return fmt.Errorf("members listed despite excludedAttributes=members")
		}
		return nil
	}
	add(r.series("groups_eq", n, func(j int) scaleReq {
		name := spell(fmt.Sprintf("Team %04d", rng.IntN(scaleTeams)), j)
		return get("/Groups?excludedAttributes=members&filter="+url.QueryEscape(fmt.Sprintf(`displayName eq "%s"`, name)), noMembers)
	}))
	add(r.series("groups_eq_10k", n, func(j int) scaleReq {
		return get("/Groups?excludedAttributes=members&filter="+url.QueryEscape(fmt.Sprintf(`displayName eq "%s"`, spell(bigGroup.Name, j))), noMembers)
	}))

	// PATCH: add a user who is in neither group, then remove it, as Entra
	// does; the small and the large group take turns.
	patch := func(g provision.Group, op string, user string) scaleReq {
		o := fmt.Sprintf(`{"op":"add","path":"members","value":[{"value":%q}]}`, user)
		if op == "remove" {
			o = fmt.Sprintf(`{"op":"remove","path":%q}`, fmt.Sprintf(`members[value eq "%s"]`, user))
		}
		return scaleReq{method: "PATCH", path: "/Groups/" + g.ID, status: 204,
			body: `{"schemas":["` + scim.URNPatch + `"],"Operations":[` + o + `]}`}
	}
	const pairs = 100
	var took [4][]time.Duration
	for k := range pairs {
		for gi, g := range []provision.Group{smallGroup, bigGroup} {
			user := ids[10*(k+gi*pairs)+9]
			for oi, op := range []string{"add", "remove"} {
				q := patch(g, op, user)
				status, body, d := r.do(q.method, q.path, q.body)
				if status != q.status {
					r.b.Errorf("PATCH %s of group %s: status %d: %.300s", op, g.Name, status, body)
					return figs
				}
				took[2*gi+oi] = append(took[2*gi+oi], d)
			}
		}
	}
	for x, name := range []string{"patch_add_10", "patch_remove_10", "patch_add_10k", "patch_remove_10k"} {
		f := scaleFigure{name: name}
		f.med, f.p99, f.n = scalePercentiles(took[x])
		add(f)
	}
	return figs
}

// walk pages through every user with count=100 as a full sync does, and
// times the last 100 pages (startIndex 90001 onwards).
func (r *scaleRun) walk() scaleFigure {
	f := scaleFigure{name: "page_walk"}
	seen := make(map[string]bool, len(r.users))
	var took []time.Duration
	for start := 1; start <= len(r.users); start += 100 {
		status, body, d := r.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=100", start), "")
		if status != 200 {
			r.b.Errorf("page_walk: startIndex %d: status %d: %.300s", start, status, body)
			f.failed = true
			return f
		}
		if start > len(r.users)-100*100 {
			took = append(took, d)
		}
		var l scaleList
		if err := json.Unmarshal(body, &l); err != nil {
			r.b.Fatal(err)
		}
		for _, u := range l.Resources {
			id, _ := u["id"].(string)
			if seen[id] {
				r.b.Errorf("page_walk: user %s listed twice (page at %d)", id, start)
			}
			seen[id] = true
		}
	}
	if len(seen) != len(r.users) {
		r.b.Errorf("page_walk: %d users listed, want %d", len(seen), len(r.users))
	}
	f.med, f.p99, f.n = scalePercentiles(took)
	return f
}

// report gives each median in ms and as a ratio to the userName eq
// median, and prints them as a table.
func (r *scaleRun) report(store string, figs []scaleFigure, seeding string) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	byName := map[string]scaleFigure{}
	for _, f := range figs {
		byName[f.name] = f
	}
	eq := byName["eq"].med
	var tb strings.Builder
	fmt.Fprintf(&tb, "%s: %s\n%-18s %9s %9s %8s %5s\n", store, seeding, "request", "median_ms", "p99_ms", "vs_eq", "n")
	for _, f := range figs {
		if f.failed {
			fmt.Fprintf(&tb, "%-18s %9s\n", f.name, "failed")
			continue
		}
		r.b.ReportMetric(ms(f.med), f.name+"_ms")
		ratio := float64(f.med) / float64(eq)
		if f.name != "eq" {
			r.b.ReportMetric(ratio, f.name+"_vs_eq")
		}
		fmt.Fprintf(&tb, "%-18s %9.3f %9.3f %8.2f %5d\n", f.name, ms(f.med), ms(f.p99), ratio, f.n)
	}
	for _, op := range []string{"add", "remove"} {
		big, small := byName["patch_"+op+"_10k"], byName["patch_"+op+"_10"]
		if big.med > 0 && small.med > 0 {
			ratio := float64(big.med) / float64(small.med)
			r.b.ReportMetric(ratio, "patch_"+op+"_10k_vs_10")
			fmt.Fprintf(&tb, "patch_%s 10k/10 members: %.2f\n", op, ratio)
		}
	}
	// The testing package cuts a benchmark's log to ten lines, so the
	// table goes to standard output, which go test passes through whole.
	fmt.Fprintf(os.Stdout, "--- SCIM at scale, %s", tb.String())
}
