package test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"gatehouse/proxy"
)

// encodedLogLines are the lines the logs so far would be in production
// (the JSON encoder), each with the logger's name and message.
func (h *harness) encodedLogLines(t *testing.T) [][]byte {
	t.Helper()
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	var out [][]byte
	for _, e := range h.logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(buf.Bytes()))
		buf.Free()
	}
	return out
}

// unsafeInLog are the raw characters no log line may carry from a
// client: they split lines for some tools or reorder what is displayed.
var unsafeInLog = []string{"\u0085", "\u2028", "\u2029", "\u202a", "\u202e", "\u2066", "\u2069", "\u200e", "\ufeff", "\xff"}

// TestLogLinesEscapeClientText (security, F1): a user agent, a host and a
// path carrying NEL, the line and paragraph separators, bidi overrides
// and isolates, and bytes that are not UTF-8 are logged with those
// characters written as \uXXXX text (invalid bytes as U+FFFD), in the
// access line and in the "request refused" line alike.
func TestLogLinesEscapeClientText(t *testing.T) {
	h := newHarness(t, options{})
	evil := "ok\u0085NEL\u2028LS\u2029PS\u202eRLO\u2066LRI\u2069PDI\u200eLRM\ufeffBOM\xffbad"
	req, _ := http.NewRequest(http.MethodGet, h.base+"/hello", nil)
	req.Header.Set("User-Agent", evil)
	resp, _ := do(t, http.DefaultClient, req)
	l := h.accessLine(t, resp.Header.Get("X-Request-Id"))
	want := `ok\u0085NEL\u2028LS\u2029PS\u202eRLO\u2066LRI\u2069PDI\u200eLRM\ufeffBOM` + "\ufffd" + "bad"
	if l["user_agent"] != want {
		t.Errorf("user_agent logged as %q, want %q", l["user_agent"], want)
	}
	// A refused request logs the decoded path: a separator in it is
	// escaped too (414: the path is too long).
	req, _ = http.NewRequest(http.MethodGet, h.base+"/"+strings.Repeat("a", 3000)+"%E2%80%A8fake%C2%85line%E2%80%AE", nil)
	resp, _ = do(t, http.DefaultClient, req)
	if resp.StatusCode != http.StatusRequestURITooLong {
		t.Fatalf("long path: %d", resp.StatusCode)
	}
	refused := h.logs.FilterMessage("request refused").All()
	if len(refused) != 1 || !strings.Contains(refused[0].ContextMap()["path"].(string), `\u2028fake\u0085line\u202e`) &&
		!strings.Contains(refused[0].ContextMap()["path"].(string), "[truncated]") {
		t.Errorf("refusal lines %v", refused)
	}
	for _, line := range h.encodedLogLines(t) {
		for _, c := range unsafeInLog {
			if bytes.Contains(line, []byte(c)) {
				t.Errorf("log line carries %q raw: %s", c, line)
			}
		}
	}
}

// TestLogLinesBounded (security, F3): a 60 KB Host, method, path, or
// query value on the login endpoint produces no log line of more than
// 8 KiB, in the access log or in the "request refused" lines.
func TestLogLinesBounded(t *testing.T) {
	h := newHarness(t, options{})
	big := strings.Repeat("A", 60_000)
	send := func(method, target, host string) {
		t.Helper()
		req, err := http.NewRequest(method, h.base+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%.20s %.40s: %v", method, target, err)
		}
		readAll(t, resp)
	}
	send(http.MethodGet, "/x", strings.ToLower(big)+".example")     // host
	send(big, "/x", "")                                             // a method that is a token
	send(strings.ToLower(big), "/x", "")                            // one that is refused, quoted in the error
	send(http.MethodGet, "/"+big, "")                               // path (414, logged decoded)
	send(http.MethodGet, "/"+strings.Repeat("%E2%80%A8", 7000), "") // a path whose every rune is escaped
	send(http.MethodGet, proxy.DefaultPrefix+proxy.PathLogin+"?idp="+big, "")
	lines := h.encodedLogLines(t)
	if len(lines) < 6 {
		t.Fatalf("%d log lines", len(lines))
	}
	for _, line := range lines {
		if len(line) > 8<<10 {
			t.Errorf("log line of %d bytes: %.300s...", len(line), line)
		}
	}
}

// TestAccessLogCanonicalPath (security, F5): when the path the rules
// judged and the upstream got differs from the path as received, the
// access line names both; a plain path has no canonical_path.
func TestAccessLogCanonicalPath(t *testing.T) {
	h := newHarness(t, options{authorization: []proxy.Rule{
		{Path: "/", Allow: proxy.AllowAuthenticated},
	}})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	for _, tc := range []struct{ sent, canonical string }{
		{"/%61dmin/secret", "/admin/secret"},
		{"/x/..//admin/secret", "/admin/secret"},
		{"/admin/./secret", "/admin/secret"},
		{"/admin/secret", ""},
	} {
		before := len(h.accessLines())
		code, up := spelled(t, h, c, http.MethodGet, tc.sent, nil)
		if code != http.StatusOK || up == nil {
			t.Errorf("%s: %d", tc.sent, code)
			continue
		}
		lines := h.accessLines()[before:]
		if len(lines) != 1 {
			t.Fatalf("%s: %d access lines", tc.sent, len(lines))
		}
		l := lines[0]
		got, has := l["canonical_path"]
		if l["path"] != tc.sent || (tc.canonical == "" && has) || (tc.canonical != "" && got != tc.canonical) {
			t.Errorf("%s: path %v, canonical_path %v (present %v), want %q", tc.sent, l["path"], got, has, tc.canonical)
		}
		if tc.canonical != "" && up.URL.EscapedPath() != tc.canonical {
			t.Errorf("%s: the upstream got %s, the log says %s", tc.sent, up.URL.EscapedPath(), got)
		}
	}
}

// TestRequestIDFromTrustedProxyCharset (security, F6): a trusted proxy's
// X-Request-Id is kept only when it is made of [A-Za-z0-9._:@/+=-]
// (UUIDs, cloud trace IDs, base64); markup, quotes, braces, commas,
// semicolons and backslashes get a new ID everywhere.
func TestRequestIDFromTrustedProxyCharset(t *testing.T) {
	h := newHarness(t, options{proxy: func(c *proxy.Config) { c.TrustedProxies = []string{"127.0.0.1/32"} }})
	for _, tc := range []struct {
		sent string
		kept bool
	}{
		{"Root=1-67891233-abcdef012345678912345678", true},
		{"105445aa7843bc8bf206b12000100000/1", true},
		{"dGVzdCtpZC8xMjM0NQ==", true},
		{"user@lb:4711.x_y", true},
		{`<script>alert(1)</script>"{}`, false},
		{`"quoted"`, false},
		{"a,b", false},
		{"a;o=1", false},
		{`a\b`, false},
		{"{x}", false},
		{"100%", false},
	} {
		req, _ := http.NewRequest(http.MethodGet, h.base+"/x", nil)
		req.Header["X-Request-Id"] = []string{tc.sent}
		resp, _ := do(t, http.DefaultClient, req)
		id := resp.Header.Get("X-Request-Id")
		if (id == tc.sent) != tc.kept {
			t.Errorf("X-Request-Id %q answered as %q, kept=%v", tc.sent, id, tc.kept)
		}
		if l := h.accessLine(t, id); l["request_id"] != id {
			t.Errorf("access line %v", l)
		}
	}
}

// TestProbesGetHeadOnly (F8): the probes on the public listener answer
// GET and HEAD; any other method gets 405 with Allow: GET, HEAD.
func TestProbesGetHeadOnly(t *testing.T) {
	h := newHarness(t, options{})
	for _, name := range []string{proxy.PathHealthz, proxy.PathLivez, proxy.PathReadyz, proxy.PathReadyz + "?verbose"} {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch} {
			req, _ := http.NewRequest(m, h.base+proxy.DefaultPrefix+name, nil)
			resp, _ := do(t, http.DefaultClient, req)
			want := http.StatusOK
			if m != http.MethodGet && m != http.MethodHead {
				want = http.StatusMethodNotAllowed
			}
			if resp.StatusCode != want || (want == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "GET, HEAD") {
				t.Errorf("%s %s: %d, Allow %q; want %d", m, name, resp.StatusCode, resp.Header.Get("Allow"), want)
			}
		}
	}
}
