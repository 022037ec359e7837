package main

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// rawUnsafe are the runes no log line may carry raw: line and paragraph
// separators, NEL, bidi overrides and isolates.
var rawUnsafe = []string{"\u2028", "\u2029", "\u0085", "\u202e", "\u2066", "\u200b"}

func checkSafeLines(t *testing.T, out []byte, maxLine int) {
	t.Helper()
	for _, r := range rawUnsafe {
		if bytes.Contains(out, []byte(r)) {
			t.Errorf("a log line carries %U raw", []rune(r)[0])
		}
	}
	for line := range bytes.SplitSeq(out, []byte("\n")) {
		if len(line) > maxLine {
			t.Errorf("a log line of %d bytes: %.200s...", len(line), line)
		}
	}
}

// TestEveryLogLineSafe: whichever package writes a line (a SCIM audit
// event quoting a resource ID, a logout event quoting a NameID, an error
// quoting a request method), its strings, errors, string lists, fields
// added with With and the message lose their separator, control and bidi
// runes and are bounded: a red-team finding (SCIM audit lines carried
// U+2028 and U+202E raw, a SCIM line a 60 KB method).
func TestEveryLogLineSafe(t *testing.T) {
	for _, level := range []string{"info", "warn"} {
		t.Run(level, func(t *testing.T) {
			var buf lockedBuffer
			logger, err := newLogger(LogConfig{Level: level, Format: "json"}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			hostile := "x\u2028y\u2029z\u0085\u202eevil\u2066\u200b"
			logger.Named("audit").With(zap.String("client", "tokens[0]"+hostile)).Info("scim write"+hostile,
				zap.String("id", hostile), zap.Error(errors.New("no user "+hostile)), zap.Strings("session_indexes", []string{hostile, "plain"}),
				zap.ByteString("raw", []byte(hostile)))
			logger.Named("scim").Warn("scim request", zap.String("method", strings.Repeat("A", 60_000)))
			logger.Named("audit").Warn("logout", zap.String("name_id", hostile))
			logger.Named("proxy").Warn("plain line", zap.String("path", "/reports/q1"), zap.Strings("changed", []string{"email"}))
			out := buf.Bytes()
			checkSafeLines(t, out, 8<<10)
			lines := buf.lines(t)
			if len(lines) != 4 {
				t.Fatalf("%d lines: %s", len(lines), out)
			}
			if id := lines[0]["id"]; id != `x\u2028y\u2029z\u0085\u202eevil\u2066\u200b` {
				t.Errorf("id written as %q", id)
			}
			if m := lines[1]["method"].(string); len(m) > maxLogField+32 || !strings.HasSuffix(m, "...[truncated]") {
				t.Errorf("a 60 KB method written as %d bytes", len(m))
			}
			if p := lines[3]; p["path"] != "/reports/q1" || p["changed"].([]any)[0] != "email" {
				t.Errorf("a plain line changed: %v", p)
			}
		})
	}
}

// TestSCIMLinesSafeOverTheWire: the red team's requests against a real
// serve: a SCIM DELETE of a user ID holding U+2028 and U+202E, a PUT of
// one holding NELs, and a 60 KB request method, leave no raw separator in
// any line and no line over 8 KiB.
func TestSCIMLinesSafeOverTheWire(t *testing.T) {
	t.Setenv("TEST_SCIM_TOKEN", "scim-token-0123456789abcdefghijklmnopqrstuv")
	cfg := strings.Replace(goodConfig, "upstream: http://127.0.0.1:9000", "upstream: http://127.0.0.1:9000\nlisten: 127.0.0.1:0", 1) +
		"scim:\n  tokens: [\"${TEST_SCIM_TOKEN}\"]\n"
	env := map[string]string{"TEST_SCIM_TOKEN": "scim-token-0123456789abcdefghijklmnopqrstuv"}
	var buf lockedBuffer
	a, stop := startServing(t, cfg, env, &buf)
	base := "http://" + a + "/.gatehouse/scim/v2/Users/"
	for _, c := range []struct{ method, path, body string }{
		{http.MethodDelete, "x%E2%80%A8y%E2%80%AE", ""},
		{http.MethodPut, strings.Repeat("%C2%85", 300), `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"n"}`},
	} {
		req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		req.Host = "app.example.test" // base_url's host: others are redirected there
		req.Header.Set("Authorization", "Bearer "+env["TEST_SCIM_TOKEN"])
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s of an unknown user: %d", c.method, resp.StatusCode)
		}
	}
	conn, err := net.Dial("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte(strings.Repeat("A", 60_000) + " /.gatehouse/scim/v2/Users HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n"))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var answer bytes.Buffer
	answer.ReadFrom(conn)
	conn.Close()
	if !bytes.HasPrefix(answer.Bytes(), []byte("HTTP/1.1 ")) {
		t.Errorf("no answer to a 60 KB method: %q", answer.String())
	}
	stop()
	out := buf.Bytes()
	if !bytes.Contains(out, []byte(`"scim write"`)) {
		t.Fatalf("no SCIM audit line:\n%s", out)
	}
	checkSafeLines(t, out, 8<<10)
}

// Bytes is a copy of what was written so far.
func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}
