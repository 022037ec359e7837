//go:build soak

package test

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSoak runs a mixed load against one gatehouse (SQLite, SCIM on) for
// SOAK_DURATION (default 1m): proxied requests of signed-in users, logins
// through the ACS, and SCIM writes, from several workers. It reports the
// throughput and errors of each and the memory at start and end. Run it
// with `make soak` (SOAK_DURATION=10m make soak).
func TestSoak(t *testing.T) {
	d := time.Minute
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	h := newHarness(t, options{scim: true, realTime: true, warningsOnly: true})
	h.upstream.discard = true
	// The harness clock is fake; move it with the wall clock so that the
	// replay cache and pending requests expire as they would in production.
	ticking := make(chan struct{})
	defer close(ticking)
	go func() {
		last := time.Now()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ticking:
				return
			case now := <-tick.C:
				h.clock.Advance(now.Sub(last))
				last = now
			}
		}
	}()
	mem := func() (heap, sys uint64, goroutines int) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc, m.Sys, runtime.NumGoroutine()
	}
	// Ten signed-in browsers for the proxied traffic.
	var browsers []*http.Client
	for i := range 10 {
		c := h.browser()
		p := alice
		p.nameID, p.uid = fmt.Sprintf("soak-user-%d", i), fmt.Sprintf("soak%d", i)
		readResp(t, h.login(c, "/", p))
		browsers = append(browsers, c)
	}
	heap0, sys0, g0 := mem()
	var proxied, logins, scimWrites, errs atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				switch {
				case w < 5: // proxied requests
					if code, _ := h.get(browsers[(w+i)%len(browsers)], fmt.Sprintf("/page/%d", i), nil); code != http.StatusOK {
						errs.Add(1)
					} else {
						proxied.Add(1)
					}
				case w < 7: // logins, half of them new users
					p := alice
					p.nameID, p.uid = fmt.Sprintf("soak-login-%d-%d", w, i%500), fmt.Sprintf("login%d_%d", w, i%500)
					resp := h.login(h.browser(), "/", p)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						errs.Add(1)
					} else {
						logins.Add(1)
					}
				default: // SCIM writes: create, then deactivate
					body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"scim-%d-%d"}`, w, i)
					req, _ := http.NewRequest(http.MethodPost, h.base+"/.gatehouse/scim/v2/Users", strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+scimToken)
					req.Header.Set("Content-Type", "application/scim+json")
					resp, err := http.DefaultClient.Do(req)
					if err != nil || resp.StatusCode != http.StatusCreated {
						errs.Add(1)
					} else {
						scimWrites.Add(1)
					}
					if resp != nil {
						resp.Body.Close()
					}
				}
			}
		})
	}
	wg.Wait()
	heap1, sys1, g1 := mem()
	secs := d.Seconds()
	t.Logf("soak %s: proxied %d (%.0f/s), logins %d (%.1f/s), SCIM writes %d (%.1f/s), errors %d", d,
		proxied.Load(), float64(proxied.Load())/secs, logins.Load(), float64(logins.Load())/secs,
		scimWrites.Load(), float64(scimWrites.Load())/secs, errs.Load())
	t.Logf("memory: heap %.1f MiB -> %.1f MiB, from the OS %.1f MiB -> %.1f MiB, goroutines %d -> %d",
		float64(heap0)/(1<<20), float64(heap1)/(1<<20), float64(sys0)/(1<<20), float64(sys1)/(1<<20), g0, g1)
	reasons := map[string]int{}
	for _, e := range h.logs.All() {
		reason, _ := e.ContextMap()["reason"].(string)
		reasons[e.Message+" "+reason]++
	}
	if len(reasons) > 0 {
		t.Logf("warnings and errors logged: %v", reasons)
	}
	if errs.Load() > 0 {
		t.Errorf("%d requests failed", errs.Load())
	}
}
