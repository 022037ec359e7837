package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// TestDemoInRealBrowser signs in to the demo with headless Chromium: real
// redirects, the chooser, the IdP's form and its auto-submitting response
// page, and the browser's own cookie rules (SameSite, host-only cookies,
// ports); then bob signs in through the demo OpenID provider and out
// again (RP-initiated logout). It leaves screenshots of the pages in the
// test's temp dir (kept with GATEHOUSE_SCREENSHOT_DIR).
func TestDemoInRealBrowser(t *testing.T) {
	d := startDemo(t)
	b := launchChromium(t)
	base := fmt.Sprintf("http://localhost:%d", d.port)

	b.navigate(base + "/reports?q=1")
	b.waitFor(`document.body && document.body.innerText.includes("Choose your organisation")`)
	if got := b.eval(`[...document.querySelectorAll("a.button")].map(a => a.innerText).join("|")`); got != "Demo identity provider|Demo OpenID provider" {
		t.Errorf("chooser offers %q", got)
	}
	b.screenshot(filepath.Join(screenshotDir(t), "chooser.png"))
	b.eval(`document.querySelector('a.button[href*="idp=demo&"]').click(); "ok"`)
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
	b.waitFor(`document.querySelector('a.button[href*="idp=demo&"]') !== null`)
	b.eval(`document.querySelector('a.button[href*="idp=demo&"]').click(); "ok"`)
	b.waitFor(`location.port === "` + fmt.Sprint(d.port) + `" && document.body && document.body.innerText.includes("Hello, alice")`)

	// A failure page: short, with an error ID, nothing internal.
	b.navigate(base + "/.gatehouse/login?idp=nosuch")
	b.waitFor(`document.body && document.body.innerText.includes("Sign-in failed")`)
	if text := b.eval(`document.body.innerText`); !regexp.MustCompile(`error ID [A-Z2-7]{16}`).MatchString(text) || strings.Contains(text, "nosuch") {
		t.Errorf("failure page:\n%s", text)
	}
	b.screenshot(filepath.Join(screenshotDir(t), "login-failed.png"))

	// bob, through the OpenID provider: its own form, then the callback
	// lands on the application with his identity; signing out passes
	// through the provider's end_session and back to gatehouse.
	if _, err := b.call("Network.clearBrowserCookies", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	b.navigate(base + "/")
	b.waitFor(`document.querySelector('a.button[href*="idp=demo-oidc"]') !== null`)
	b.eval(`document.querySelector('a.button[href*="idp=demo-oidc"]').click(); "ok"`)
	b.waitFor(`document.querySelector("select[name=user]") !== null`)
	b.screenshot(filepath.Join(screenshotDir(t), "op-login.png"))
	b.eval(fmt.Sprintf(`document.querySelector("select[name=user]").value = "bob";
		document.querySelector("input[name=password]").value = %q;
		document.querySelector("form").submit(); "ok"`, regexp.MustCompile(`bob / (\S+)`).FindStringSubmatch(d.banner)[1]))
	b.waitFor(`document.body && document.body.innerText.includes("Hello, bob")`)
	if href := b.eval(`location.href`); href != base+"/" {
		t.Errorf("landed on %s", href)
	}
	text = b.eval(`document.body.innerText`)
	for _, want := range []string{"X-Forwarded-Email\tbob@example.com", "X-Forwarded-Groups\tstaff", "X-Forwarded-Display-Name\tBob Baker"} {
		if !strings.Contains(text, want) {
			t.Errorf("application page lacks %q:\n%s", want, text)
		}
	}
	b.screenshot(filepath.Join(screenshotDir(t), "demo-app-oidc.png"))
	b.navigate(base + "/.gatehouse/logout")
	b.waitFor(`document.body && document.body.innerText.includes("Sign out?")`)
	b.eval(`document.querySelector('form[method=post] button').click()`)
	b.waitFor(`document.body && document.body.innerText.includes("Signed out")`)
	if href := b.eval(`location.href`); href != base+"/.gatehouse/oidc/signed-out" {
		t.Errorf("signed out at %s, not after the provider's end_session", href)
	}
}

// screenshotDir is GATEHOUSE_SCREENSHOTS (or GATEHOUSE_SCREENSHOT_DIR)
// when set, to look at the pages; else the test's temp dir.
func screenshotDir(t *testing.T) string {
	for _, env := range []string{"GATEHOUSE_SCREENSHOTS", "GATEHOUSE_SCREENSHOT_DIR"} {
		if d := os.Getenv(env); d != "" {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	return t.TempDir()
}

// TestErrorPagesInRealBrowser renders gatehouse's refusal pages in
// Chromium and follows their next steps: an anonymous visitor at a path a
// deny rule closes, the chooser with an IdP whose metadata cannot load, a
// signed-in user a rule refuses (Back, Sign out), a user deactivated over
// SCIM while signed in (Sign out), and that user's next login, refused
// (Try again). The pages are left as screenshots (see screenshotDir).
func TestErrorPagesInRealBrowser(t *testing.T) {
	dir := t.TempDir()
	_, stop := runDemo(t, dir)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// A second IdP whose metadata URL answers nothing, two rules and the
	// application's name.
	// (SCIM serves both, so each says how a first login finds a user.)
	edited := strings.Replace(string(cfg), "\nstore:", `
  - name: partner
    display_name: Partner organisation
    entity_id: https://partner.example/idp
    metadata_url: https://127.0.0.1:1/metadata
    metadata_unsigned: true
    mapping: {link_by: user_name}
authorization:
  - path: /admin/
    require: {any_of: {groups: [admins]}}
  - path: /closed/
    allow: deny
public_paths: [/demo-logo.svg]
pages:
  app_name: Demo payroll
  logo_url: /demo-logo.svg
  support_contact: help@example.com
store:`, 1)
	if err := os.WriteFile(cfgPath, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	d, stop := runDemo(t, dir)
	t.Cleanup(func() { stop() })
	bobPassword := regexp.MustCompile(`bob / (\S+)`).FindStringSubmatch(d.banner)[1]
	base := fmt.Sprintf("http://localhost:%d", d.port)
	shots := screenshotDir(t)
	b := launchChromium(t)
	text := func() string { return b.eval(`document.body ? document.body.innerText : ""`) }
	click := func(selector string) {
		t.Helper()
		if b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return "none"; e.click(); return "ok" })()`, selector)) != "ok" {
			t.Fatalf("no %s on %s:\n%s", selector, b.eval("location.href"), text())
		}
	}
	signIn := func(user, password string) {
		t.Helper()
		b.waitFor(`document.querySelector("a.button") !== null && document.body.innerText.includes("Choose your organisation")`)
		click(`a.button[href*="idp=demo&"]`)
		b.waitFor(`document.querySelector("input[name=password]") !== null`)
		b.eval(fmt.Sprintf(`document.querySelector("input[name=user]").value = %q;
			document.querySelector("input[name=password]").value = %q;
			document.querySelector("form").submit(); "ok"`, user, password))
		b.waitFor(`document.body && document.body.innerText.includes("Hello, ` + user + `")`)
	}

	// Anonymous, at a closed path: no talk of an account, no sign-in or
	// sign-out; the way out is the start page.
	b.navigate(base + "/closed/report")
	b.waitFor(`document.body && document.body.innerText.includes("Not available")`)
	page := text()
	if strings.Contains(page, "account may not") || strings.Contains(page, "Sign in") || strings.Contains(page, "Sign out") ||
		!strings.Contains(page, "Demo payroll") || b.eval(`document.title`) != "Not available · Demo payroll" ||
		b.eval(`(() => { const i = document.querySelector("header img"); return i && i.complete && i.naturalWidth > 0 })()`) != "true" {
		t.Errorf("anonymous deny page (title %q):\n%s", b.eval(`document.title`), page)
	}
	if !regexp.MustCompile(`error ID [A-Z2-7]{16}`).MatchString(page) || !strings.Contains(page, "help@example.com") {
		t.Errorf("deny page lacks the error ID or the support contact:\n%s", page)
	}
	b.screenshot(filepath.Join(shots, "deny-anonymous.png"))
	click(`a.button`) // Go to the start page: a login is needed there, so the chooser

	// The chooser: the IdP without metadata is greyed, not a link.
	b.waitFor(`document.body && document.body.innerText.includes("Choose your organisation")`)
	if got := b.eval(`[...document.querySelectorAll("a.button")].map(a => a.innerText).join("|")`); got != "Demo identity provider|Demo OpenID provider" {
		t.Errorf("chooser links: %q, want only the demo IdPs", got)
	}
	if got := b.eval(`(() => { const s = document.querySelector("span.button.off"); return s ? s.textContent + "|" + getComputedStyle(s).cursor : "" })()`); got != "Partner organisation unavailable|not-allowed" {
		t.Errorf("unavailable IdP shown as %q", got)
	}
	b.screenshot(filepath.Join(shots, "chooser-unavailable.png"))

	// bob, signed in, is refused /admin/: Back returns to the page he
	// came from, Sign out signs him out.
	signIn("bob", bobPassword)
	b.eval(`location.href = "/admin/"; "ok"`) // a navigation from the application's page: the browser sends its Referer
	b.waitFor(`document.body && document.body.innerText.includes("Access denied")`)
	page = text()
	if !strings.Contains(page, "signed in as bob") || !strings.Contains(page, "Back") || !strings.Contains(page, "Sign out") {
		t.Errorf("signed-in deny page:\n%s", page)
	}
	b.screenshot(filepath.Join(shots, "deny-signed-in.png"))
	click(`a.button`) // Back
	b.waitFor(`document.body && document.body.innerText.includes("Hello, bob")`)
	if href := b.eval(`location.href`); href != base+"/" {
		t.Errorf("Back landed on %s", href)
	}
	b.navigate(base + "/admin/")
	b.waitFor(`document.body && document.body.innerText.includes("Access denied")`)
	click(`form[method=post][action="/.gatehouse/logout"] button`)
	b.waitFor(`document.body && document.body.innerText.includes("Signed out")`)
	b.navigate(base + "/admin/")
	b.waitFor(`document.body && document.body.innerText.includes("Choose your organisation")`) // signed out: a new login

	// alice signs in, then SCIM deactivates her: her next request gets
	// the deactivated page, whose Sign out works.
	if _, err := b.call("Network.clearBrowserCookies", map[string]any{}); err != nil { // the demo IdP's session is bob's
		t.Fatal(err)
	}
	b.navigate(base + "/")
	signIn("alice", d.password)
	scimDeactivate(t, base, dir, "alice")
	b.navigate(base + "/reports")
	b.waitFor(`document.body && document.body.innerText.includes("Account deactivated")`)
	if page = text(); !strings.Contains(page, "signed in as alice") || strings.Contains(page, "Try again") {
		t.Errorf("deactivated page:\n%s", page)
	}
	b.screenshot(filepath.Join(shots, "deactivated.png"))
	if _, err := b.call("Emulation.setEmulatedMedia", map[string]any{"features": []map[string]string{{"name": "prefers-color-scheme", "value": "dark"}}}); err == nil {
		b.screenshot(filepath.Join(shots, "deactivated-dark.png"))
		b.call("Emulation.setEmulatedMedia", map[string]any{"features": []map[string]string{}})
	}
	click(`form[method=post][action="/.gatehouse/logout"] button`)
	b.waitFor(`document.body && document.body.innerText.includes("Signed out")`)
	if href := b.eval(`location.href`); href != base+"/.gatehouse/logout" {
		t.Errorf("Sign out landed on %s", href)
	}

	// Her next login (the IdP still has her session) is refused: Try
	// again starts a fresh login to the address she asked for.
	b.navigate(base + "/reports?month=5")
	b.waitFor(`document.body && document.body.innerText.includes("Choose your organisation")`)
	click(`a.button[href*="idp=demo&"]`)
	b.waitFor(`document.body && document.body.innerText.includes("Access denied")`)
	if got := b.eval(`(() => { const a = [...document.querySelectorAll("a.button")].find(a => a.innerText === "Try again"); return a ? a.getAttribute("href") : "" })()`); got != "/.gatehouse/login?return=%2Freports%3Fmonth%3D5" {
		t.Errorf("Try again leads to %q\n%s", got, text())
	}
	b.screenshot(filepath.Join(shots, "login-refused.png"))
	click(`a.button`) // Try again
	b.waitFor(`document.body && document.body.innerText.includes("Choose your organisation")`)
	if got := b.eval(`document.querySelector('a.button[href*="idp=demo&"]').getAttribute("href")`); !strings.Contains(got, "return=%2Freports%3Fmonth%3D5") {
		t.Errorf("the fresh login lost the return address: %s", got)
	}
}

// scimDeactivate sets a user inactive over the demo's SCIM endpoint.
func scimDeactivate(t *testing.T, base, dir, userName string) {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(dir, "scim-token"))
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) map[string]any {
		req, _ := http.NewRequest(method, base+"/.gatehouse/scim/v2"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("SCIM %s %s: %d %v", method, path, resp.StatusCode, out)
		}
		return out
	}
	list := do("GET", "/Users?filter="+url.QueryEscape(`userName eq "`+userName+`"`), "")
	res, _ := list["Resources"].([]any)
	if len(res) != 1 {
		t.Fatalf("SCIM finds %d users named %s", len(res), userName)
	}
	id, _ := res[0].(map[string]any)["id"].(string)
	do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`)
}

// browser is a page of a headless Chromium driven over the DevTools
// protocol: just the four calls these tests need.
type browser struct {
	t  *testing.T
	ws *websocket.Conn
	id int
}

// launchChromium starts a headless Chromium; flags are added to its
// command line.
func launchChromium(t *testing.T, flags ...string) *browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is required for the browser test: apt-get install chromium (.ci/run does this)")
	}
	// The profile directory is removed once Chromium and its helper
	// processes, which write to it until they exit, are gone: the
	// browser runs in a process group of its own, killed whole, and the
	// removal tries again while the last of them exit.
	profile, err := os.MkdirTemp("", "gatehouse-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--remote-allow-origins=*",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--user-data-dir="+profile,
		"--window-size=1100,900")
	cmd.Args = append(append(cmd.Args, flags...), "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		os.RemoveAll(profile)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		for range 50 {
			if err := os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("remove the Chromium profile %s: still in use", profile)
	})
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
