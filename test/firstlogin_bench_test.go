package test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/provision"
)

// BenchmarkFirstLogin measures first logins per second at the store: the
// JIT upsert of a new user (account, identity, two group memberships) by
// 1, 16 and 64 concurrent logins, on SQLite and on PostgreSQL, each
// login a different user. It reports the rate at each concurrency
// (median of alternating rounds), the ratios c16/c1 and c64/c1 (on
// SQLite's one writer they stay near 1: the writer queue serialises, and
// must not collapse; on PostgreSQL's pool they should rise), and the p99
// and slowest login at 64 (a queue that is not first come first served
// shows in the slowest). It also reports the process's CPU time and heap
// allocations per login at concurrency 1, which a busy machine disturbs
// less than the rates.
func BenchmarkFirstLogin(b *testing.B) {
	for _, be := range benchStores {
		b.Run(be.name, func(b *testing.B) {
			st := openBenchStore(b, be.config(b))
			const rounds, cell = 3, 1500 * time.Millisecond
			levels := []int{1, 16, 64}
			var seq atomic.Int64
			// rate runs c workers, each making first logins of new users
			// one after another for d, and returns logins per second and
			// each login's time.
			rate := func(c int, d time.Duration) (float64, []time.Duration) {
				var done atomic.Int64
				var once sync.Once
				var failed error
				var mu sync.Mutex
				var took []time.Duration
				stop := time.Now().Add(d)
				start := time.Now()
				var wg sync.WaitGroup
				for range c {
					wg.Go(func() {
						var mine []time.Duration
						defer func() { mu.Lock(); took = append(took, mine...); mu.Unlock() }()
						for time.Now().Before(stop) {
							t0 := time.Now()
							i := seq.Add(1)
							name := fmt.Sprintf("first%07d", i)
							res, err := st.Provision(context.Background(), provision.Login{
								Key: provision.Key{IdP: "https://idp.example.test", Kind: "nameid", Subject: name},
								Claims: provision.Claims{Fields: map[string]string{provision.FieldUserName: name,
									provision.FieldEmail: name + "@example.com", provision.FieldDisplayName: "User " + name},
									Groups: []string{"admins", "staff"}, HasGroups: true},
								LinkBy: provision.LinkByUserName})
							if err == nil && res.Outcome != provision.Created {
								err = fmt.Errorf("outcome %s, want created", res.Outcome)
							}
							if err != nil {
								once.Do(func() { failed = fmt.Errorf("first login of %s at concurrency %d: %w", name, c, err) })
								return
							}
							mine = append(mine, time.Since(t0))
							done.Add(1)
						}
					})
				}
				wg.Wait()
				if failed != nil {
					b.Fatal(failed)
				}
				return float64(done.Load()) / time.Since(start).Seconds(), took
			}
			for range b.N {
				rate(16, 300*time.Millisecond) // warm up: groups exist, pool filled
				got := map[int][]float64{}
				var at64 []time.Duration
				var cpu1 time.Duration
				var allocs1 uint64
				var n1 int
				for range rounds {
					for _, c := range levels {
						var m0, m1 runtime.MemStats
						if c == 1 {
							runtime.ReadMemStats(&m0)
							cpu1 -= cpuTime(b)
						}
						r, took := rate(c, cell)
						if c == 1 {
							cpu1 += cpuTime(b)
							runtime.ReadMemStats(&m1)
							allocs1 += m1.Mallocs - m0.Mallocs
							n1 += len(took)
						}
						got[c] = append(got[c], r)
						if c == 64 {
							at64 = append(at64, took...)
						}
					}
				}
				b.ReportMetric(float64(cpu1.Microseconds())/float64(n1), "c1-cpu-µs/login")
				b.ReportMetric(float64(allocs1)/float64(n1), "c1-allocs/login")
				med := map[int]float64{}
				for _, c := range levels {
					med[c] = median(got[c])
					b.ReportMetric(med[c], fmt.Sprintf("c%d-logins/s", c))
				}
				b.ReportMetric(med[16]/med[1], "c16/c1")
				b.ReportMetric(med[64]/med[1], "c64/c1")
				slices.Sort(at64)
				b.ReportMetric(float64(at64[len(at64)*99/100].Microseconds())/1000, "c64-p99-ms")
				b.ReportMetric(float64(at64[len(at64)-1].Microseconds())/1000, "c64-max-ms")
				if q := st.WriteQueue(); q.TimedOut != 0 {
					b.Errorf("writer queue: %d writes timed out (%+v)", q.TimedOut, q)
				}
			}
		})
	}
}
