package proxy

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gatehouse/provision"
	"gatehouse/session"
)

// flightStore is a provision.Store whose Provision counts its calls and
// blocks until the test releases it, so that a test can line up
// concurrent logins behind one call. The user it returns carries the
// login's display name, so each caller can tell whose claims were stored.
type flightStore struct {
	mu       sync.Mutex
	calls    int
	logins   []provision.Login
	release  chan struct{}
	err      error // returned by every Provision when set
	panicMsg string
	// ctxErr is the error of the context a call saw after release: nil
	// unless a call was cancelled underneath the shared work.
	ctxErr error
}

func newFlightStore() *flightStore { return &flightStore{release: make(chan struct{})} }

func (s *flightStore) Provision(ctx context.Context, l provision.Login) (provision.Result, error) {
	s.mu.Lock()
	s.calls++
	s.logins = append(s.logins, l)
	s.mu.Unlock()
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.panicMsg != "" {
		panic(s.panicMsg)
	}
	if err := ctx.Err(); err != nil {
		s.ctxErr = err
		return provision.Result{}, fmt.Errorf("flightstore: %w", err)
	}
	if s.err != nil {
		return provision.Result{}, s.err
	}
	name := l.Claims.Fields[provision.FieldDisplayName]
	u := provision.User{ID: "id-" + l.Key.Subject + "-" + name, UserName: l.Claims.Fields[provision.FieldUserName], DisplayName: name, Active: true}
	return provision.Result{User: u, Outcome: provision.Created, Changed: []string{provision.FieldUserName}}, nil
}

func (s *flightStore) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *flightStore) User(context.Context, string) (provision.User, error) {
	return provision.User{}, provision.ErrNotFound
}
func (s *flightStore) SetActive(context.Context, string, bool) error { return nil }
func (s *flightStore) Ping(context.Context) error                    { return nil }
func (s *flightStore) Close() error                                  { return nil }

// flightProxy is a Proxy with just what login needs: one IdP "corp"
// mapping uid and displayName, audit lines and login events recorded.
type flightProxy struct {
	*Proxy
	audit  *observer.ObservedLogs
	mu     sync.Mutex
	events []LoginEvent
}

func newFlightProxy(t *testing.T, st provision.Store) *flightProxy {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	cfg := Config{JITTimeout: 5 * time.Second}.WithDefaults()
	fp := &flightProxy{audit: logs}
	fp.Proxy = &Proxy{
		cfg: cfg, log: zap.NewNop(), audit: zap.New(core), store: st, now: time.Now,
		idps:    map[string]IdPPolicy{"corp": {Mapping: provision.Mapping{UserName: "uid", DisplayName: "displayName"}}},
		headers: newHeaderSet(cfg.Headers), users: newUserCache(1<<20, zap.NewNop()), known: newKnownUsers(1<<20, zap.NewNop()),
		loginHook: func(e LoginEvent) { fp.mu.Lock(); fp.events = append(fp.events, e); fp.mu.Unlock() },
	}
	return fp
}

func (fp *flightProxy) loginEvents() []LoginEvent {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return append([]LoginEvent(nil), fp.events...)
}

// assertion is alice's login at corp with the given display name.
func assertion(display string) session.Identity {
	return session.Identity{IdP: "corp", EntityID: "https://idp.example.test", NameID: "alice",
		NameIDFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
		Attributes:   map[string][]string{"uid": {"alice"}, "displayName": {display}}}
}

// waitFor polls cond until it holds, failing the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type loginOutcome struct {
	id  string
	err error
}

// startLogins runs n logins of in concurrently and returns their outcomes
// once all are done.
func startLogins(ctx context.Context, p *Proxy, n int, in session.Identity) func() []loginOutcome {
	out := make([]loginOutcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id, err := p.login(ctx, in)
			out[i] = loginOutcome{id, err}
		})
	}
	return func() []loginOutcome { wg.Wait(); return out }
}

// TestConcurrentIdenticalLoginsShareOneStoreCall: N logins of one
// identity with the same claims, all waiting at once, make one store call;
// every one gets the user; exactly one audit line and one login event say
// created, the others say unchanged with coalesced: true.
func TestConcurrentIdenticalLoginsShareOneStoreCall(t *testing.T) {
	const n = 20
	st := newFlightStore()
	fp := newFlightProxy(t, st)
	wait := startLogins(context.Background(), fp.Proxy, n, assertion("Alice"))
	waitFor(t, "every login to wait for the store", func() bool { return fp.jit.Waiting() == n })
	close(st.release)
	for i, o := range wait() {
		if o.err != nil || o.id != "id-alice-Alice" {
			t.Errorf("login %d: id %q, err %v", i, o.id, o.err)
		}
	}
	if c := st.callCount(); c != 1 {
		t.Errorf("store calls = %d, want 1", c)
	}
	outcomes := map[string]int{}
	for _, e := range fp.audit.FilterMessage("login").All() {
		f := e.ContextMap()
		key := fmt.Sprint(f["outcome"])
		if f["coalesced"] == true {
			key += "/coalesced"
		}
		outcomes[key]++
	}
	if want := map[string]int{"created": 1, "unchanged/coalesced": n - 1}; !reflect.DeepEqual(outcomes, want) {
		t.Errorf("audit outcomes = %v, want %v", outcomes, want)
	}
	events := map[string]int{}
	for _, e := range fp.loginEvents() {
		events[fmt.Sprintf("%s/%s/%v", e.Outcome, e.JIT, e.Coalesced)]++
	}
	if want := map[string]int{"created/created/false": 1, "unchanged/unchanged/true": n - 1}; !reflect.DeepEqual(events, want) {
		t.Errorf("login events = %v, want %v", events, want)
	}
	if w := fp.jit.Waiting(); w != 0 {
		t.Errorf("waiting after the logins = %d", w)
	}
}

// TestLoginsWithDifferentClaimsDoNotShare: two concurrent logins of the
// same identity asserting different display names make a store call each,
// and each gets what its own claims stored.
func TestLoginsWithDifferentClaimsDoNotShare(t *testing.T) {
	st := newFlightStore()
	fp := newFlightProxy(t, st)
	waitA := startLogins(context.Background(), fp.Proxy, 1, assertion("Alice A"))
	waitFor(t, "the first store call", func() bool { return st.callCount() == 1 })
	waitB := startLogins(context.Background(), fp.Proxy, 1, assertion("Alice B"))
	waitFor(t, "a second store call for other claims", func() bool { return st.callCount() == 2 })
	close(st.release)
	if o := waitA()[0]; o.err != nil || o.id != "id-alice-Alice A" {
		t.Errorf("login A: %q %v", o.id, o.err)
	}
	if o := waitB()[0]; o.err != nil || o.id != "id-alice-Alice B" {
		t.Errorf("login B: %q %v", o.id, o.err)
	}
	for _, e := range fp.loginEvents() {
		if e.Coalesced || e.Outcome != "created" {
			t.Errorf("login event %+v, want created, not coalesced", e)
		}
	}
}

// TestSequentialLoginsEachAskTheStore: coalescing shares a call in flight
// only; it never serves a finished call's result to a later login.
func TestSequentialLoginsEachAskTheStore(t *testing.T) {
	st := newFlightStore()
	close(st.release)
	fp := newFlightProxy(t, st)
	for range 3 {
		if _, err := fp.login(context.Background(), assertion("Alice")); err != nil {
			t.Fatal(err)
		}
	}
	if c := st.callCount(); c != 3 {
		t.Errorf("store calls = %d, want 3", c)
	}
}

// TestCancelledLeaderDoesNotFailFollowers: the login whose call the
// others share goes away (its request is cancelled) while the store works;
// the store's context stays live, the followers get the user, the leader
// alone fails, and the write its call made is still audited once.
func TestCancelledLeaderDoesNotFailFollowers(t *testing.T) {
	const followers = 5
	st := newFlightStore()
	fp := newFlightProxy(t, st)
	lctx, cancel := context.WithCancel(context.Background())
	waitLeader := startLogins(lctx, fp.Proxy, 1, assertion("Alice"))
	waitFor(t, "the leader's store call", func() bool { return st.callCount() == 1 })
	waitFollowers := startLogins(context.Background(), fp.Proxy, followers, assertion("Alice"))
	waitFor(t, "the followers to join", func() bool { return fp.jit.Waiting() == followers+1 })
	cancel()
	leader := waitLeader()[0]
	var ref *session.Refusal
	if !errors.As(leader.err, &ref) || ref.Reason != "store" || !errors.Is(leader.err, context.Canceled) {
		t.Errorf("cancelled leader: %q %v, want a store refusal for its cancelled context", leader.id, leader.err)
	}
	close(st.release)
	for i, o := range waitFollowers() {
		if o.err != nil || o.id != "id-alice-Alice" {
			t.Errorf("follower %d: %q %v", i, o.id, o.err)
		}
	}
	if st.ctxErr != nil {
		t.Errorf("the shared store call saw its context end: %v", st.ctxErr)
	}
	if c := st.callCount(); c != 1 {
		t.Errorf("store calls = %d, want 1", c)
	}
	waitFor(t, "the abandoned leader's write to be audited", func() bool {
		return fp.audit.FilterField(zap.Bool("abandoned", true)).Len() == 1
	})
	created := fp.audit.FilterField(zap.String("outcome", "created")).All()
	if len(created) != 1 || created[0].ContextMap()["abandoned"] != true {
		t.Errorf("created lines = %v, want one, marked abandoned", created)
	}
}

// TestSharedRefusalIsTheSameRefusal: a refusal of the shared call (here a
// deactivated user) refuses every login that shared it, for the same
// reason, after one store call.
func TestSharedRefusalIsTheSameRefusal(t *testing.T) {
	const n = 8
	st := newFlightStore()
	st.err = fmt.Errorf("flightstore: %w", provision.ErrDisabled)
	fp := newFlightProxy(t, st)
	wait := startLogins(context.Background(), fp.Proxy, n, assertion("Alice"))
	waitFor(t, "every login to wait for the store", func() bool { return fp.jit.Waiting() == n })
	close(st.release)
	for i, o := range wait() {
		var ref *session.Refusal
		if !errors.As(o.err, &ref) || ref.Reason != "disabled" || !errors.Is(o.err, session.ErrAccessDenied) {
			t.Errorf("login %d: %q %v, want refused as disabled", i, o.id, o.err)
		}
	}
	if c := st.callCount(); c != 1 {
		t.Errorf("store calls = %d, want 1", c)
	}
	if c := fp.audit.FilterField(zap.Bool("coalesced", true)).Len(); c != n-1 {
		t.Errorf("coalesced refusal lines = %d, want %d", c, n-1)
	}
}

// TestStorePanicFailsOnlyTheLogins: a store that panics during a shared
// call fails the logins that shared it as a store failure; the process
// (which no handler recover can protect, the call running on a goroutine
// of its own) goes on.
func TestStorePanicFailsOnlyTheLogins(t *testing.T) {
	st := newFlightStore()
	st.panicMsg = "boom"
	close(st.release)
	fp := newFlightProxy(t, st)
	_, err := fp.login(context.Background(), assertion("Alice"))
	var ref *session.Refusal
	if !errors.As(err, &ref) || ref.Reason != "store" {
		t.Errorf("login with a panicking store: %v, want a store refusal", err)
	}
}

// TestFlightKeyCoversEveryLoginField: changing any one field of a Login
// changes its flight key, so two logins share a call only when they ask
// the store the very same thing. A field added to Login or Claims fails
// this test until flightKey covers it and a case here changes it.
func TestFlightKeyCoversEveryLoginField(t *testing.T) {
	base := func() provision.Login {
		return provision.Login{
			Key: provision.Key{IdP: "https://idp", Kind: "nameid", Subject: "alice"},
			Claims: provision.Claims{
				Fields:    map[string]string{provision.FieldUserName: "alice", provision.FieldEmail: "a@example.test"},
				Extra:     map[string]string{"dept": "R&D"},
				Groups:    []string{"admins", "staff"},
				HasGroups: true,
			},
			LinkBy:   provision.LinkByUserName,
			Reserved: []string{provision.FieldEmail},
		}
	}
	changes := map[string][]func(*provision.Login){
		"Key.IdP":     {func(l *provision.Login) { l.Key.IdP = "https://other" }},
		"Key.Kind":    {func(l *provision.Login) { l.Key.Kind = "attr:uid" }},
		"Key.Subject": {func(l *provision.Login) { l.Key.Subject = "alicE" }},
		"Claims.Fields": {
			func(l *provision.Login) { l.Claims.Fields[provision.FieldEmail] = "b@example.test" },
			func(l *provision.Login) { l.Claims.Fields[provision.FieldDisplayName] = "" }, // asserted empty: clears
			func(l *provision.Login) { delete(l.Claims.Fields, provision.FieldEmail) },
		},
		"Claims.Extra": {
			func(l *provision.Login) { l.Claims.Extra["dept"] = "Sales" },
			func(l *provision.Login) { l.Claims.Extra = map[string]string{"dep": "tR&D"} },
		},
		"Claims.Groups": {
			func(l *provision.Login) { l.Claims.Groups = []string{"admins"} },
			func(l *provision.Login) { l.Claims.Groups = []string{"adminsstaff"} },
			func(l *provision.Login) { l.Claims.Groups = []string{"admins", "staff", ""} },
		},
		"Claims.HasGroups": {func(l *provision.Login) { l.Claims.HasGroups = false }},
		"NoCreate":         {func(l *provision.Login) { l.NoCreate = true }},
		"LinkBy":           {func(l *provision.Login) { l.LinkBy = "" }},
		"Reserved": {
			func(l *provision.Login) { l.Reserved = nil },
			func(l *provision.Login) { l.Reserved = []string{provision.FieldEmail, provision.FieldGroups} },
		},
	}
	var fields []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for f := range typ.Fields() {
			if f.Type.Kind() == reflect.Struct {
				walk(prefix+f.Name+".", f.Type)
				continue
			}
			fields = append(fields, prefix+f.Name)
		}
	}
	walk("", reflect.TypeFor[provision.Login]())
	for _, f := range fields {
		if len(changes[f]) == 0 {
			t.Errorf("provision.Login field %s: flightKey must cover it, and this test must change it", f)
		}
	}
	if len(fields) != len(changes) {
		t.Errorf("Login has fields %v; the test changes %d", fields, len(changes))
	}
	want := flightKey(base())
	if again := flightKey(base()); again != want {
		t.Fatal("flightKey is not stable for equal logins")
	}
	for name, fns := range changes {
		for i, change := range fns {
			l := base()
			change(&l)
			if flightKey(l) == want {
				t.Errorf("%s change %d: same flight key as the unchanged login", name, i)
			}
		}
	}
}
