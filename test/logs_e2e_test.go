package test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"

	"gatehouse/provision"
	"gatehouse/proxy"
)

// accessLines are the access log's lines so far.
func (h *harness) accessLines() []map[string]any {
	var out []map[string]any
	for _, e := range h.logs.FilterLoggerName("proxy.access").All() {
		out = append(out, e.ContextMap())
	}
	return out
}

// accessLine is the access-log line of the request with the given ID.
func (h *harness) accessLine(t *testing.T, id string) map[string]any {
	t.Helper()
	for _, l := range h.accessLines() {
		if l["request_id"] == id {
			return l
		}
	}
	t.Fatalf("no access-log line with request_id %q in %v", id, h.accessLines())
	return nil
}

// do sends req with c and returns the response, its body read.
func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readAll(t, resp)
}

// TestAccessLogLine: a proxied request of a signed-in user, the login
// itself, and a reserved path each get one access-log line at the end of
// the request, with the fields the README lists; the path is logged
// without its query (a query may carry a SAMLResponse or a token).
func TestAccessLogLine(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	login := h.login(c, "/", alice)
	readAll(t, login)
	// The ACS post is logged with the user it signed in.
	var acs map[string]any
	for _, l := range h.accessLines() {
		if l["path"] == proxy.DefaultPrefix+proxy.PathACS {
			acs = l
		}
	}
	if acs == nil || acs["user"] != "alice" || acs["status"] != int64(http.StatusSeeOther) || acs["method"] != "POST" {
		t.Errorf("ACS access line = %v", acs)
	}

	req, _ := http.NewRequest(http.MethodGet, h.base+"/reports/q1?SAMLResponse=c2VjcmV0&token=hunter2", nil)
	req.Header.Set("User-Agent", "logs-test/1")
	resp, body := do(t, c, req)
	id := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != 200 || id == "" {
		t.Fatalf("%d %q (X-Request-Id %q)", resp.StatusCode, body, id)
	}
	if got := h.upstream.last(t).Header.Values("X-Request-Id"); len(got) != 1 || got[0] != id {
		t.Errorf("upstream X-Request-Id = %q, want [%s]", got, id)
	}
	l := h.accessLine(t, id)
	want := map[string]any{"method": "GET", "path": "/reports/q1", "status": int64(200), "bytes": int64(len(body)),
		"user": "alice", "client_ip": "127.0.0.1", "proto": "HTTP/1.1", "user_agent": "logs-test/1",
		"host": strings.TrimPrefix(h.base, "http://")}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("%s = %v (%T), want %v", k, l[k], l[k], v)
		}
	}
	if l["user_id"] == "" || l["user_id"] == nil {
		t.Errorf("user_id missing: %v", l)
	}
	for _, k := range []string{"duration", "upstream_duration"} {
		if d, ok := l[k].(time.Duration); !ok || d <= 0 {
			t.Errorf("%s = %v", k, l[k])
		}
	}
	for _, e := range h.logs.All() {
		if s := fmt.Sprint(e.ContextMap()); strings.Contains(s, "hunter2") || strings.Contains(s, "c2VjcmV0") {
			t.Errorf("a query value reached the log: %s %s", e.Message, s)
		}
	}

	// A reserved path: logged, with no upstream time.
	req, _ = http.NewRequest(http.MethodGet, h.base+proxy.DefaultPrefix+proxy.PathHealthz, nil)
	resp, _ = do(t, http.DefaultClient, req)
	l = h.accessLine(t, resp.Header.Get("X-Request-Id"))
	if l["status"] != int64(200) || l["upstream_duration"] != nil || l["user"] != nil {
		t.Errorf("healthz access line = %v", l)
	}
	// Every request so far has exactly one line.
	seen := map[any]int{}
	for _, l := range h.accessLines() {
		seen[l["request_id"]]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("request %v has %d access-log lines", id, n)
		}
	}
}

// TestAccessLogWebSocket: an upgraded connection is logged once, when
// the tunnel closes, with status 101, its lifetime as duration and the
// bytes sent to the client through it.
func TestAccessLogWebSocket(t *testing.T) {
	h := newHarness(t, options{})
	wsUpstream(h)
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	conn, br := openTunnel(t, h, c)
	echo(t, conn, br)
	for _, l := range h.accessLines() {
		if l["path"] == "/ws" {
			t.Fatalf("the tunnel was logged while open: %v", l)
		}
	}
	conn.Close()
	var l map[string]any
	for deadline := time.Now().Add(10 * time.Second); l == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, x := range h.accessLines() {
			if x["path"] == "/ws" {
				l = x
			}
		}
	}
	if l == nil {
		t.Fatal("no access-log line for the tunnel after it closed")
	}
	// The 101 head, then "echo hello\n" went to the client.
	if l["status"] != int64(101) || l["upgraded"] != true || l["user"] != "alice" || l["bytes"].(int64) < int64(len("echo hello\n")) {
		t.Errorf("tunnel access line = %v", l)
	}
}

// TestRequestIDFromClientIgnored (security): a client that is not a
// trusted proxy cannot choose the request ID the logs and the upstream
// see, under any spelling of the header.
func TestRequestIDFromClientIgnored(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	// One well-formed value: from a client, still not taken.
	req, _ := http.NewRequest(http.MethodGet, h.base+"/x", nil)
	req.Header["X-Request-Id"] = []string{"forged-id"}
	resp, _ := do(t, c, req)
	if id := resp.Header.Get("X-Request-Id"); id == "forged-id" || h.upstream.last(t).Header.Get("X-Request-Id") != id {
		t.Errorf("a client's X-Request-Id was taken: response %q, upstream %q", id, h.upstream.last(t).Header.Get("X-Request-Id"))
	}
	// Every spelling is stripped before gatehouse's is set.
	req, _ = http.NewRequest(http.MethodGet, h.base+"/x", nil)
	req.Header["X-Request-Id"] = []string{"forged-id"}
	req.Header["X_Request_Id"] = []string{"forged-id-2"}
	req.Header["X-Request-ID"] = []string{"forged-id-3"}
	resp, _ = do(t, c, req)
	id := resp.Header.Get("X-Request-Id")
	if strings.HasPrefix(id, "forged") || len(id) != 16 {
		t.Errorf("response X-Request-Id = %q, want a new 16-character ID", id)
	}
	up := h.upstream.last(t)
	for name, vs := range up.Header {
		if proxy.NormalizeHeaderName(name) == proxy.NormalizeHeaderName("X-Request-Id") && (name != "X-Request-Id" || len(vs) != 1 || vs[0] != id) {
			t.Errorf("upstream got %s: %q, want only X-Request-Id: %s", name, vs, id)
		}
	}
	if l := h.accessLine(t, id); l["path"] != "/x" {
		t.Errorf("access line %v", l)
	}
}

// TestRequestIDFromTrustedProxy: behind trusted_proxies, a short safe
// X-Request-Id is kept end to end; a long one, or one with spaces or
// control characters, is replaced.
func TestRequestIDFromTrustedProxy(t *testing.T) {
	h := newHarness(t, options{proxy: func(c *proxy.Config) { c.TrustedProxies = []string{"127.0.0.1/32"} }})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	for _, tc := range []struct {
		name, sent string
		kept       bool
	}{
		{"token", "lb-7f3a9c21-0001", true},
		{"uuid", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"128 bytes", strings.Repeat("a", 128), true},
		{"129 bytes", strings.Repeat("a", 129), false},
		{"space", "two words", false},
		{"control character", "id\tx", false},
		{"non-ASCII", "idé", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, h.base+"/x", nil)
			req.Header["X-Request-Id"] = []string{tc.sent}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			id := resp.Header.Get("X-Request-Id")
			if (id == tc.sent) != tc.kept {
				t.Errorf("X-Request-Id %q answered as %q, kept=%v", tc.sent, id, tc.kept)
			}
			if got := h.upstream.last(t).Header.Get("X-Request-Id"); got != id {
				t.Errorf("upstream got %q, response says %q", got, id)
			}
		})
	}
}

// TestRequestIDInRefusals: the log line of an error page, refused before
// anything else (414), and on the ACS, carries the request ID the
// response names.
func TestRequestIDInRefusals(t *testing.T) {
	h := newHarness(t, options{})
	req, _ := http.NewRequest(http.MethodGet, h.base+"/"+strings.Repeat("a", 3000), nil)
	resp, _ := do(t, http.DefaultClient, req)
	ids := refusalIDs(h.logs)
	if resp.StatusCode != http.StatusRequestURITooLong || len(ids) != 1 || ids[0] != resp.Header.Get("X-Request-Id") {
		t.Errorf("414: refusal request IDs %v, response %q", ids, resp.Header.Get("X-Request-Id"))
	}
	resp = h.login(h.browser(), "/", person{nameID: "zw-uid", uid: "ali\u200bce"}) // an invisible character: a mapping refusal
	readAll(t, resp)
	ids = refusalIDs(h.logs)
	if len(ids) != 2 || ids[1] != resp.Header.Get("X-Request-Id") || ids[1] == "" {
		t.Errorf("ACS: refusal request IDs %v, response %q", ids, resp.Header.Get("X-Request-Id"))
	}
}

func refusalIDs(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.FilterMessage("request refused").All() {
		out = append(out, fmt.Sprint(e.ContextMap()["request_id"]))
	}
	return out
}

// TestLoginRefusalReasons: each way provisioning refuses a login is
// logged (request refused, audit) and counted with its own reason, as the
// README's table says, never as "login".
func TestLoginRefusalReasons(t *testing.T) {
	bob := person{nameID: "b0b-0002", uid: "alice", mail: "bob@example.com"} // alice's user name, another identity
	for _, tc := range []struct {
		name   string
		o      options
		setup  func(t *testing.T, h *harness)
		who    person
		reason string
		status int
	}{
		{name: "mapping", who: person{nameID: "zw-uid", uid: "ali\u200bce"}, reason: "mapping", status: http.StatusForbidden},
		{name: "not_provisioned", o: options{mapping: &provision.Mapping{UserName: attrUID, NoCreate: true}}, who: alice,
			reason: "not_provisioned", status: http.StatusForbidden},
		{name: "disabled", who: alice, reason: "disabled", status: http.StatusForbidden, setup: func(t *testing.T, h *harness) {
			readResp(t, h.login(h.browser(), "/", alice))
			id := h.auditEvents()[0]["user_id"].(string)
			if err := h.store.SetActive(context.Background(), id, false); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "rejected", who: bob, reason: "rejected", status: http.StatusForbidden, setup: func(t *testing.T, h *harness) {
			readResp(t, h.login(h.browser(), "/", alice))
		}},
		{name: "store", who: alice, reason: "store", status: http.StatusServiceUnavailable, setup: func(t *testing.T, h *harness) {
			h.sqlite.Close() // the real store, gone
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.o)
			var problems []string
			samlFailures := 0
			h.pages.OnProblem = func(reason string, status int, login bool) {
				problems = append(problems, fmt.Sprint(reason, " ", status))
				if login {
					samlFailures++
				}
			}
			if tc.setup != nil {
				tc.setup(t, h)
			}
			resp := h.login(h.browser(), "/", tc.who)
			readAll(t, resp)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if r := h.refusals(); len(r) == 0 || r[len(r)-1] != tc.reason {
				t.Errorf("request refused reasons %v, want last %q", r, tc.reason)
			}
			if want := fmt.Sprint(tc.reason, " ", tc.status); len(problems) == 0 || problems[len(problems)-1] != want {
				t.Errorf("counted %v, want last %q", problems, want)
			}
			// The SAML response was accepted: gatehouse_logins_total counts
			// the refusal, gatehouse_saml_failures_total must not as well.
			if samlFailures != 0 {
				t.Errorf("a provisioning refusal counted as %d SAML failures", samlFailures)
			}
			ev := h.auditEvents()
			if last := ev[len(ev)-1]; last["event"] != "login" || last["outcome"] != "refused" || last["reason"] != tc.reason ||
				last["client_ip"] != "127.0.0.1" || last["request_id"] != resp.Header.Get("X-Request-Id") {
				t.Errorf("audit %v", last)
			}
		})
	}
}

// scimAudit are the SCIM audit events so far.
func (h *harness) scimAudit() []map[string]any {
	var out []map[string]any
	for _, e := range h.logs.FilterLoggerName("scim.audit").All() {
		out = append(out, e.ContextMap())
	}
	return out
}

// TestSCIMWritesAudited: every SCIM write, successful or refused, writes
// one audit event naming the action (deactivation and reactivation by
// name), the resource, the token that authenticated it (never the token)
// and the request ID; reads write none.
func TestSCIMWritesAudited(t *testing.T) {
	h := newHarness(t, options{scim: true})
	type want struct {
		action, name, result string
		status               int64
	}
	var wants []want
	step := func(method, path, body string, w want) map[string]any {
		t.Helper()
		status, doc := h.scimDo(method, path, body)
		if int64(status) != w.status {
			t.Fatalf("%s %s: %d %v, want %d", method, path, status, doc, w.status)
		}
		wants = append(wants, w)
		return doc
	}
	doc := step("POST", "/Users", aliceSCIM, want{"users.create", "ALICE", "ok", 201})
	id := doc["id"].(string)
	step("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`,
		want{"users.deactivate", "ALICE", "ok", 200})
	step("PUT", "/Users/"+id, strings.Replace(aliceSCIM, `"active":true`, `"active":true,"id":"`+id+`"`, 1), want{"users.reactivate", "ALICE", "ok", 200})
	step("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"Alice A."}]}`,
		want{"users.patch", "ALICE", "ok", 200})
	step("POST", "/Users", aliceSCIM, want{"users.create", "ALICE", "refused", 409})
	if status, _ := h.scimDo("GET", "/Users/"+id, ""); status != 200 {
		t.Fatalf("get: %d", status)
	}
	g := step("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Finance","members":[{"value":"`+id+`"}]}`,
		want{"groups.create", "Finance", "ok", 201})
	gid := g["id"].(string)
	step("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"`+id+`\"]"}]}`,
		want{"groups.patch", "Finance", "ok", 204})
	step("DELETE", "/Groups/"+gid, "", want{"groups.delete", "Finance", "ok", 204})
	step("DELETE", "/Users/"+id, "", want{"users.delete", "ALICE", "ok", 204})
	step("DELETE", "/Users/"+id, "", want{"users.delete", "", "refused", 404})

	ev := h.scimAudit()
	if len(ev) != len(wants) {
		t.Fatalf("%d audit events for %d writes: %v", len(ev), len(wants), ev)
	}
	ids := map[any]bool{}
	for i, w := range wants {
		e := ev[i]
		name := e["user_name"]
		if strings.HasPrefix(w.action, "groups.") {
			name = e["display_name"]
		}
		if name == nil {
			name = ""
		}
		if e["action"] != w.action || name != w.name || e["result"] != w.result || e["status"] != w.status || e["client"] != "tokens[0]" {
			t.Errorf("event %d = %v, want %+v", i, e, w)
		}
		if rid, _ := e["request_id"].(string); rid == "" || ids[rid] {
			t.Errorf("event %d request_id %q (empty or repeated)", i, rid)
		} else {
			ids[rid] = true
		}
		if strings.Contains(fmt.Sprint(e), scimToken) {
			t.Errorf("event %d names the token: %v", i, e)
		}
	}
	if ev[0]["id"] != id || ev[len(ev)-1]["id"] != id {
		t.Errorf("resource ids: %v, %v, want %s", ev[0]["id"], ev[len(ev)-1]["id"], id)
	}
	if g := ev[5]; g["members_added"] != int64(1) {
		t.Errorf("group create: %v", g)
	}
	if g := ev[6]; g["members_removed"] != int64(1) {
		t.Errorf("group patch: %v", g)
	}
}

// TestSAMLFailureCountsOnlyMessages: gatehouse_saml_failures_total (the
// login flag of OnProblem) counts refused SAML messages, not a login
// started for an IdP that does not exist: any web page could raise that
// count with an image tag and set off the login-failure alert.
func TestSAMLFailureCountsOnlyMessages(t *testing.T) {
	h := newHarness(t, options{base: goldenBase})
	saml := map[string]int{}
	h.pages.OnProblem = func(reason string, status int, login bool) {
		if login {
			saml[reason]++
		}
	}
	for range 3 {
		rec := httptest.NewRecorder()
		h.proxy.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, goldenBase+"/.gatehouse/login?idp=no-such-idp", nil))
		if rec.Code != http.StatusForbidden {
			t.Fatalf("login for an unknown IdP: %d", rec.Code)
		}
	}
	if len(saml) != 0 {
		t.Errorf("logins for an unknown IdP counted as SAML failures: %v", saml)
	}
	h.postACS([]byte("<samlp:Response/>"), "", nil)
	if saml["no_login_state"] != 1 {
		t.Errorf("a response without a login state is a refused SAML message: %v", saml)
	}
}
