package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestAdminProfilesOnlyWhenAsked: Go's profiles are served on the admin
// listener with admin_pprof: true, and nowhere else: not on the admin
// listener without it, never on the public listener, and admin_pprof
// without admin_listen is a configuration problem.
func TestAdminProfilesOnlyWhenAsked(t *testing.T) {
	get := func(url string) (int, string) {
		t.Helper()
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, on := range []bool{false, true} {
		admin := freeAddr(t)
		extra := "upstream: http://127.0.0.1:9000\nlisten: 127.0.0.1:0\nadmin_listen: " + admin + "\n"
		if on {
			extra += "admin_pprof: true\n"
		}
		addr, stop := startServing(t, strings.Replace(goodConfig, "upstream: http://127.0.0.1:9000", extra, 1), nil, nil)
		code, body := get("http://" + admin + "/debug/pprof/")
		served := code == http.StatusOK && strings.Contains(body, "goroutine")
		if served != on {
			t.Errorf("admin_pprof %v: /debug/pprof/ on the admin listener answers %d (served: %v)", on, code, served)
		}
		if code, body := get("http://" + addr + "/debug/pprof/"); strings.Contains(body, "Types of profiles") {
			t.Errorf("admin_pprof %v: the public listener served the profiles (%d)", on, code)
		}
		stop()
	}
	f, report := readConfig(writeConfig(t, strings.Replace(goodConfig, "upstream: http://127.0.0.1:9000",
		"upstream: http://127.0.0.1:9000\nadmin_pprof: true", 1)), func(string) (string, bool) { return testKey, true })
	_ = f
	if err := report.Err(); err == nil || !strings.Contains(err.Error(), "admin_pprof: needs admin_listen") {
		t.Errorf("admin_pprof without admin_listen: %v", err)
	}
}
