package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// TestDemoInRealBrowser signs in to the demo with headless Chromium: real
// redirects, the IdP's form and its auto-submitting response page, and the
// browser's own cookie rules (SameSite, host-only cookies, ports). It
// leaves a screenshot of the application page in the test's temp dir
// (kept with GATEHOUSE_SCREENSHOT_DIR).
func TestDemoInRealBrowser(t *testing.T) {
	d := startDemo(t)
	b := launchChromium(t)
	base := fmt.Sprintf("http://localhost:%d", d.port)

	b.navigate(base + "/reports?q=1")
	b.waitFor(`document.querySelector("input[name=password]") !== null`)
	b.eval(fmt.Sprintf(`document.querySelector("input[name=user]").value = "alice";
		document.querySelector("input[name=password]").value = %q;
		document.querySelector("form").submit(); "ok"`, d.password))
	b.waitFor(`document.body && document.body.innerText.includes("Hello, alice")`)

	if href := b.eval(`location.href`); href != base+"/reports?q=1" {
		t.Errorf("landed on %s, want the page first asked for", href)
	}
	text := b.eval(`document.body.innerText`)
	for _, want := range []string{"X-Forwarded-Email\talice@example.com", "X-Forwarded-Groups\tadmins,staff"} {
		if !strings.Contains(text, want) {
			t.Errorf("application page lacks %q:\n%s", want, text)
		}
	}
	cookieRow := regexp.MustCompile(`(?m)^Cookie\t(.*)$`).FindStringSubmatch(text)
	if cookieRow != nil && strings.Contains(cookieRow[1], "gatehouse") {
		t.Errorf("gatehouse's cookie reached the application: %s", cookieRow[1])
	}
	b.screenshot(filepath.Join(screenshotDir(t), "demo-app.png"))

	// Signing out asks first (a link or a cross-site GET never signs
	// out); the form posts from gatehouse's origin, which the browser
	// says (Origin). Then gatehouse's own page, and the next visit starts
	// a new login.
	b.navigate(base + "/.gatehouse/logout")
	b.waitFor(`document.body && document.body.innerText.includes("Sign out?")`)
	b.eval(`document.querySelector('form[method=post] button').click()`)
	b.waitFor(`document.body && document.body.innerText.includes("Signed out")`)
	b.screenshot(filepath.Join(screenshotDir(t), "signed-out.png"))
	// The IdP still has its own session, so the new login completes by
	// itself; wait for it to land back on the application, or its form
	// post would race the next navigation.
	b.navigate(base + "/")
	b.waitFor(`location.port === "` + fmt.Sprint(d.port) + `" && document.body && document.body.innerText.includes("Hello, alice")`)

	// A failure page: short, with an error ID, nothing internal.
	b.navigate(base + "/.gatehouse/login?idp=nosuch")
	b.waitFor(`document.body && document.body.innerText.includes("Sign-in failed")`)
	if text := b.eval(`document.body.innerText`); !regexp.MustCompile(`error ID [0-9a-f]{12}`).MatchString(text) || strings.Contains(text, "nosuch") {
		t.Errorf("failure page:\n%s", text)
	}
	b.screenshot(filepath.Join(screenshotDir(t), "login-failed.png"))
}

func screenshotDir(t *testing.T) string {
	if d := os.Getenv("GATEHOUSE_SCREENSHOT_DIR"); d != "" {
		return d
	}
	return t.TempDir()
}

// browser is a page of a headless Chromium driven over the DevTools
// protocol: just the four calls these tests need.
type browser struct {
	t  *testing.T
	ws *websocket.Conn
	id int
}

func launchChromium(t *testing.T) *browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is required for the browser test: apt-get install chromium (.ci/run does this)")
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--remote-allow-origins=*",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--user-data-dir="+t.TempDir(),
		"--window-size=1100,900", "about:blank")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, after, ok := strings.Cut(sc.Text(), "DevTools listening on "); ok {
				found <- after
			}
		}
	}()
	var browserWS string
	select {
	case browserWS = <-found:
	case <-time.After(30 * time.Second):
		t.Fatal("chromium did not start")
	}
	host := strings.TrimPrefix(browserWS, "ws://")
	host = host[:strings.Index(host, "/")]
	resp, err := http.Get("http://" + host + "/json/list")
	if err != nil {
		t.Fatal(err)
	}
	var targets []struct{ Type, WebSocketDebuggerURL string }
	json.NewDecoder(resp.Body).Decode(&targets)
	resp.Body.Close()
	for _, tg := range targets {
		if tg.Type == "page" {
			ws, err := websocket.Dial(tg.WebSocketDebuggerURL, "", "http://127.0.0.1/")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ws.Close() })
			return &browser{t: t, ws: ws}
		}
	}
	t.Fatal("chromium has no page")
	return nil
}

// call sends one DevTools command and returns its result. A protocol
// error (such as "Execution context was destroyed" while a page
// navigates) is returned, not fatal; a broken connection is fatal.
func (b *browser) call(method string, params any) (json.RawMessage, error) {
	b.t.Helper()
	b.id++
	if err := websocket.JSON.Send(b.ws, map[string]any{"id": b.id, "method": method, "params": params}); err != nil {
		b.t.Fatal(err)
	}
	b.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var msg struct {
			ID     int
			Result json.RawMessage
			Error  *struct{ Message string }
		}
		if err := websocket.JSON.Receive(b.ws, &msg); err != nil {
			b.t.Fatalf("%s: %v", method, err)
		}
		if msg.ID != b.id {
			continue // an event
		}
		if msg.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, msg.Error.Message)
		}
		return msg.Result, nil
	}
}

func (b *browser) navigate(url string) {
	b.t.Helper()
	if _, err := b.call("Page.navigate", map[string]any{"url": url}); err != nil {
		b.t.Fatal(err)
	}
}

// eval returns the expression's value as a string: "" for undefined, and
// for an expression that could not run (mid-navigation, say).
func (b *browser) eval(expr string) string {
	b.t.Helper()
	res, err := b.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if err != nil {
		return ""
	}
	var r struct {
		Result struct {
			Value any
		}
		ExceptionDetails *struct{ Text string }
	}
	json.Unmarshal(res, &r)
	if r.ExceptionDetails != nil || r.Result.Value == nil {
		return ""
	}
	return fmt.Sprint(r.Result.Value)
}

// waitFor polls a boolean expression for up to 20 seconds.
func (b *browser) waitFor(cond string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b.eval(cond) == "true" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("timed out waiting for %s; at %s:\n%s", cond, b.eval("location.href"), b.eval("document.body && document.body.innerText"))
}

func (b *browser) screenshot(path string) {
	b.t.Helper()
	res, err := b.call("Page.captureScreenshot", map[string]any{"format": "png"})
	if err != nil {
		b.t.Fatal(err)
	}
	var r struct{ Data string }
	json.Unmarshal(res, &r)
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil || len(png) == 0 {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
