package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/zap"

	"gatehouse/provision"
)

// The identity caches are bounded by an estimate of what their entries
// hold. These tests fill each cache with realistic entries, built by the
// proxy's own code, and compare the heap they hold (runtime.GC and
// ReadMemStats with and without the cache) with the bytes counted: the
// count must cover the heap, without being far above it.

// userShape is the size of a user record: its names' length, its number
// of groups, and whether SCIM wrote it (an external ID, the fields SCIM
// owns, two extra attributes) or a login did (none of these).
type userShape struct {
	name    string
	nameLen int
	groups  int
	scim    bool
}

var userShapes = []userShape{
	{"short name, no groups, JIT", 5, 0, false},
	{"short name, no groups, SCIM", 5, 0, true},
	{"short name, 20 groups, JIT", 5, 20, false},
	{"short name, 20 groups, SCIM", 5, 20, true},
	{"long name, no groups, JIT", 60, 0, false},
	{"long name, no groups, SCIM", 60, 0, true},
	{"long name, 20 groups, JIT", 60, 20, false},
	{"long name, 20 groups, SCIM", 60, 20, true},
}

// memEntries is how many entries each measurement caches.
const memEntries = 2000

// maxOverCount bounds how far above the heap an estimate may be.
const maxOverCount = 1.6

// storedUser is user i of shape s as a store read returns it: every
// string its own allocation.
func storedUser(s userShape, i int) provision.User {
	name := fmt.Sprintf("u%04d", i%10000)
	if s.nameLen > 6 {
		name = fmt.Sprintf("%s%06d", strings.Repeat("n", s.nameLen-6), i)
	}
	u := provision.User{
		ID: fmt.Sprintf("01a251e4-6ef3-750c-9f62-%012d", i), UserName: name, Email: name + "@example.com",
		DisplayName: "Display " + name, GivenName: "Given " + name[1:], FamilyName: "Family " + name[1:],
		Active: true, Owner: strings.Clone(provision.OwnerJIT), Version: 3,
	}
	if s.scim {
		u.ExternalID, u.Owner = fmt.Sprintf("9c1d3e2f-58a7-4b6e-8d0c-%012d", i), strings.Clone(provision.OwnerSCIM)
		u.Extra = map[string]string{
			strings.Clone("department"):      fmt.Sprintf("Research and Development %d", i%7),
			strings.Clone("employee_number"): fmt.Sprintf("E%07d", i),
		}
		u.SCIMFields = strings.Split(strings.Clone("displayName,emails,externalId,name.familyName,name.givenName,userName"), ",")
	}
	for j := range s.groups {
		u.Groups = append(u.Groups, fmt.Sprintf("app-%02d-department-%d-users", j, i%7))
	}
	return u
}

// memGate is a proxy configured as in production: the default identity
// headers and one extra, and, when signed, the identity token.
func memGate(t *testing.T, signed bool) *Proxy {
	t.Helper()
	g := newGate(t, nil)
	cfg := Config{Upstream: gateUpstream, BaseURL: gateBase, UserCacheBytes: 256 << 20, KnownUsersBytes: 256 << 20,
		Headers: HeaderConfig{Extra: map[string]string{"X-Forwarded-Employee-Number": "employee_number"}}}
	var keys []*ecdsa.PrivateKey
	if signed {
		cfg.SignedIdentity = &SignedIdentityConfig{Issuer: gateBase, KeyFiles: []string{"identity.pem"}}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	p, err := New(cfg, Options{Logger: zap.NewNop(), Sessions: g.sessions, Store: g.store, Pages: NewPages(zap.NewNop()),
		Transport: g.upstream, Now: g.clock.Now, IdentityKeys: keys})
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	return p
}

// heapHeld runs fill, then reports the heap that drop releases.
func heapHeld(fill func(), drop func()) int64 {
	var with, without runtime.MemStats
	fill()
	runtime.GC()
	runtime.ReadMemStats(&with)
	drop()
	runtime.GC()
	runtime.ReadMemStats(&without)
	return int64(with.HeapAlloc) - int64(without.HeapAlloc)
}

// checkEstimate reports a count below the heap held or far above it.
func checkEstimate(t *testing.T, held, counted int64) {
	t.Helper()
	ratio := float64(held) / float64(counted)
	t.Logf("%d entries: %d bytes held on the heap, %d counted (held/counted %.2f; %d and %d bytes an entry)",
		memEntries, held, counted, ratio, held/memEntries, counted/memEntries)
	if held > counted {
		t.Errorf("the entries hold %d bytes on the heap, over the %d counted (%.2fx)", held, counted, ratio)
	}
	if float64(counted) > maxOverCount*float64(held) {
		t.Errorf("%d bytes counted for %d held on the heap: over %.1fx", counted, held, maxOverCount)
	}
}

// TestUserCacheEstimateCoversTheHeap: what the identity cache's entries
// hold on the heap (the record, the identity headers, the signed
// identity when configured, the map slot) is at most what
// user_cache_bytes counts for them.
func TestUserCacheEstimateCoversTheHeap(t *testing.T) {
	for _, signed := range []bool{false, true} {
		for _, s := range userShapes {
			t.Run(fmt.Sprintf("%s, signed %v", s.name, signed), func(t *testing.T) {
				p := memGate(t, signed)
				now := p.now()
				var n int
				var counted int64
				held := heapHeld(func() {
					for i := range memEntries {
						e := p.identityOf(storedUser(s, i), now)
						p.users.put(e)
						if p.signer != nil {
							if _, err := p.signer.tokenFor(e, now); err != nil {
								t.Fatal(err)
							}
						}
					}
				}, func() {
					n, counted = p.users.usage()
					p.users = nil
				})
				if n != memEntries {
					t.Fatalf("%d identities cached, want %d", n, memEntries)
				}
				checkEstimate(t, held, counted)
			})
		}
	}
}

// TestKnownUsersEstimateCoversTheHeap: what the last known good records
// hold on the heap (the record, its login key, the list element and
// both maps' slots) is at most what known_users_bytes counts for them.
func TestKnownUsersEstimateCoversTheHeap(t *testing.T) {
	for _, s := range userShapes {
		t.Run(s.name, func(t *testing.T) {
			p := memGate(t, false)
			var n int
			var counted int64
			held := heapHeld(func() {
				for i := range memEntries {
					u := storedUser(s, i)
					subject := fmt.Sprintf("%s%06d@example.com", strings.Repeat("s", max(s.nameLen-6, 0)), i)
					p.known.remember(provision.Key{IdP: gateIdPID, Kind: "nameid", Subject: subject}, u)
				}
			}, func() {
				n, counted = p.known.usage()
				p.known = nil
			})
			if n != memEntries {
				t.Fatalf("%d records kept, want %d", n, memEntries)
			}
			checkEstimate(t, held, counted)
		})
	}
}
