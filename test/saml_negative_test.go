package test

import (
	"bytes"
	"encoding/base64"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
)

var update = flag.Bool("update", false, "rewrite the golden SAML responses in testdata/saml")

const (
	// goldenRequestID is the AuthnRequest ID a golden harness issues
	// (crewjam's "id-" and 20 bytes of its zeroed random source).
	goldenRequestID = "id-0000000000000000000000000000000000000000"
)

// mallory is alice as an attacker would like her to be.
var mallory = person{nameID: alice.nameID, uid: "alice", mail: "mallory@evil.example", display: "Mallory",
	given: "Mallory", family: "Evil", employeeID: "E1001", groups: []string{"admins", "root"}}

// goldenSpec is the spec every fixture starts from: issued at t0 for the
// golden SP, answering the golden request.
func goldenSpec(p person, id string) spec {
	acs := goldenBase + "/.gatehouse/saml/acs"
	return spec{now: t0, issuer: idpEntityID, inResponseTo: goldenRequestID, destination: acs, recipient: acs,
		audience: goldenBase + "/.gatehouse/saml/metadata", nameID: p.nameID, nameIDFormat: fmtPersist, attrs: p.attrs(),
		responseID: "_resp-" + id, assertionID: "_assert-" + id, sessionIndex: "_sess-" + id}
}

// signedAssertion is the usual shape for a spec.
func signedAssertion(t testing.TB, s spec, key signer) []byte {
	resp, a := respond(s)
	return serialize(assemble(resp, sign(t, a, key)))
}

// signedResponseOnly signs the Response and leaves the assertion
// unsigned: the shape XSW1 and XSW2 attack.
func signedResponseOnly(t testing.TB, s spec, key signer) *etree.Element {
	resp, a := respond(s)
	return sign(t, assemble(resp, a), key)
}

// evilAssertion is an unsigned assertion for mallory with its own ID.
func evilAssertion(id string) *etree.Element {
	_, a := respond(goldenSpec(mallory, id))
	return a
}

// mallorySigned is a fixture of mallory's signed assertion with one change.
func mallorySigned(id string, change func(*spec)) func(testing.TB, signer, signer) []byte {
	return func(t testing.TB, idp, _ signer) []byte {
		s := goldenSpec(mallory, id)
		change(&s)
		return signedAssertion(t, s, idp)
	}
}

func child(el *etree.Element, tag string) *etree.Element { return el.SelectElement(tag) }

// goldenCase is one negative SAML test: a fixture, how it is posted, and
// what must happen.
type goldenCase struct {
	name string
	// build writes the fixture; it runs only with -update.
	build func(t testing.TB, idp, other signer) []byte
	// unsolicited posts without login state (IdP-initiated).
	unsolicited bool
	// allowIdPInitiated configures the IdP to allow unsolicited logins.
	allowIdPInitiated bool
}

var goldenCases = []goldenCase{
	{name: "unsigned", build: func(t testing.TB, idp, _ signer) []byte {
		resp, a := respond(goldenSpec(mallory, "unsigned"))
		return serialize(assemble(resp, a))
	}},
	{name: "xsw1_signed_response_inside_signature", build: func(t testing.TB, idp, _ signer) []byte {
		orig := signedResponseOnly(t, goldenSpec(alice, "xsw1"), idp)
		evil := orig.Copy()
		evil.CreateAttr("ID", "_resp-xsw1-evil")
		evil.RemoveChild(child(evil, "Assertion"))
		evil.AddChild(evilAssertion("xsw1-evil"))
		sig := child(evil, "Signature")
		clean := orig.Copy()
		clean.RemoveChild(child(clean, "Signature"))
		sig.AddChild(clean)
		return serialize(evil)
	}},
	{name: "xsw2_signed_response_before_signature", build: func(t testing.TB, idp, _ signer) []byte {
		orig := signedResponseOnly(t, goldenSpec(alice, "xsw2"), idp)
		evil := orig.Copy()
		evil.CreateAttr("ID", "_resp-xsw2-evil")
		evil.RemoveChild(child(evil, "Assertion"))
		evil.AddChild(evilAssertion("xsw2-evil"))
		sig := child(evil, "Signature")
		clean := orig.Copy()
		clean.RemoveChild(child(clean, "Signature"))
		evil.InsertChildAt(sig.Index(), clean)
		return serialize(evil)
	}},
	{name: "xsw3_evil_assertion_before_signed", build: func(t testing.TB, idp, _ signer) []byte {
		resp, a := respond(goldenSpec(alice, "xsw3"))
		signed := sign(t, a, idp)
		resp.AddChild(evilAssertion("xsw3-evil"))
		resp.AddChild(signed)
		return serialize(resp)
	}},
	{name: "xsw4_evil_assertion_wraps_signed", build: func(t testing.TB, idp, _ signer) []byte {
		resp, a := respond(goldenSpec(alice, "xsw4"))
		signed := sign(t, a, idp)
		evil := evilAssertion("xsw4-evil")
		evil.AddChild(signed)
		resp.AddChild(evil)
		return serialize(resp)
	}},
	{name: "xsw5_modified_assertion_copy_appended", build: func(t testing.TB, idp, _ signer) []byte {
		resp, a := respond(goldenSpec(alice, "xsw5"))
		signed := sign(t, a, idp)
		clean := signed.Copy()
		clean.RemoveChild(child(clean, "Signature"))
		evil := evilAssertion("xsw5-evil")
		evil.InsertChildAt(child(evil, "Issuer").Index()+1, child(signed, "Signature").Copy())
		resp.AddChild(evil)
		resp.AddChild(clean)
		return serialize(resp)
	}},
	{name: "xsw6_original_inside_evil_signature", build: func(t testing.TB, idp, _ signer) []byte {
		resp, a := respond(goldenSpec(alice, "xsw6"))
		signed := sign(t, a, idp)
		clean := signed.Copy()
		clean.RemoveChild(child(clean, "Signature"))
		evil := evilAssertion("xsw6-evil")
		sig := child(signed, "Signature").Copy()
		sig.AddChild(clean)
		evil.InsertChildAt(child(evil, "Issuer").Index()+1, sig)
		resp.AddChild(evil)
		return serialize(resp)
	}},
	{name: "xsw7_original_in_extensions", build: func(t testing.TB, idp, _ signer) []byte {
		resp, a := respond(goldenSpec(alice, "xsw7"))
		signed := sign(t, a, idp)
		ext := etree.NewElement("samlp:Extensions")
		ext.AddChild(signed)
		resp.InsertChildAt(child(resp, "Issuer").Index()+1, ext)
		resp.AddChild(evilAssertion("xsw7-evil"))
		return serialize(resp)
	}},
	{name: "xsw8_original_in_signature_object", build: func(t testing.TB, idp, _ signer) []byte {
		resp, a := respond(goldenSpec(alice, "xsw8"))
		signed := sign(t, a, idp)
		clean := signed.Copy()
		clean.RemoveChild(child(clean, "Signature"))
		sig := child(signed, "Signature").Copy()
		sig.CreateElement("ds:Object").AddChild(clean)
		evil := evilAssertion("xsw8-evil")
		evil.InsertChildAt(child(evil, "Issuer").Index()+1, sig)
		resp.AddChild(evil)
		return serialize(resp)
	}},
	{name: "comment_in_nameid", build: func(t testing.TB, idp, _ signer) []byte {
		// Exclusive C14N drops comments, so the signature stays valid; a
		// parser that reads only the first text node would see "admin".
		doc := signedAssertion(t, goldenSpec(alice, "comment"), idp)
		return bytes.Replace(doc, []byte(">"+alice.nameID+"<"), []byte(">admin<!---->"+alice.nameID+"<"), 1)
	}},
	{name: "expired", build: mallorySigned("expired", func(s *spec) {
		s.now = t0.Add(-10 * time.Minute)
	})},
	{name: "not_yet_valid", build: mallorySigned("future", func(s *spec) {
		s.now = t0.Add(10 * time.Minute)
	})},
	{name: "wrong_audience", build: mallorySigned("audience", func(s *spec) {
		s.audience = "https://other-sp.example.test/metadata"
	})},
	{name: "wrong_destination", build: mallorySigned("destination", func(s *spec) {
		s.destination = "https://other-sp.example.test/acs"
	})},
	{name: "wrong_recipient", build: mallorySigned("recipient", func(s *spec) {
		s.recipient = "https://other-sp.example.test/acs"
	})},
	{name: "wrong_issuer", build: mallorySigned("issuer", func(s *spec) {
		s.issuer = "https://evil-idp.example.test/saml"
	})},
	{name: "wrong_in_response_to", build: mallorySigned("irt", func(s *spec) {
		s.inResponseTo = "id-some-other-request"
	})},
	{name: "wrong_in_response_to_with_idp_initiated_allowed", allowIdPInitiated: true, build: mallorySigned("irt-allowed", func(s *spec) {
		// Login state exists, so the strict SP-initiated checks apply even
		// though this IdP may also start logins.
		s.inResponseTo = "id-some-other-request"
	})},
	{name: "two_assertions", build: func(t testing.TB, idp, _ signer) []byte {
		resp, a := respond(goldenSpec(alice, "two-a"))
		_, b := respond(goldenSpec(mallory, "two-b"))
		resp.AddChild(sign(t, a, idp))
		resp.AddChild(sign(t, b, idp))
		return serialize(resp)
	}},
	{name: "doctype_external_entity", build: func(t testing.TB, idp, _ signer) []byte {
		doc := signedAssertion(t, goldenSpec(alice, "xxe"), idp)
		doc = bytes.Replace(doc, []byte(">"+alice.nameID+"<"), []byte(">&xxe;<"), 1)
		return append([]byte(`<?xml version="1.0"?><!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>`), doc...)
	}},
	{name: "doctype_entity_expansion", build: func(t testing.TB, idp, _ signer) []byte {
		doc := signedAssertion(t, goldenSpec(alice, "lol"), idp)
		return append([]byte(`<!DOCTYPE r [<!ENTITY a "aaaaaaaaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>`), doc...)
	}},
	{name: "idp_initiated_not_allowed", unsolicited: true, build: mallorySigned("unsolicited", func(s *spec) {
		s.inResponseTo = ""
	})},
	{name: "idp_initiated_with_in_response_to", unsolicited: true, allowIdPInitiated: true, build: func(t testing.TB, idp, _ signer) []byte {
		// Allowing IdP-initiated logins must not make a stale or stolen
		// SP-initiated response acceptable without its login state.
		return signedAssertion(t, goldenSpec(mallory, "unsolicited-irt"), idp)
	}},
	{name: "signed_by_other_key", build: func(t testing.TB, _, other signer) []byte {
		return signedAssertion(t, goldenSpec(mallory, "otherkey"), other)
	}},
	{name: "response_without_issuer", build: func(t testing.TB, idp, _ signer) []byte {
		resp, a := respond(goldenSpec(mallory, "noiss-resp"))
		signed := sign(t, a, idp)
		resp.RemoveChild(child(resp, "Issuer"))
		return serialize(assemble(resp, signed))
	}},
	{name: "assertion_without_issuer", build: func(t testing.TB, idp, _ signer) []byte {
		resp, a := respond(goldenSpec(mallory, "noiss-assert"))
		a.RemoveChild(child(a, "Issuer"))
		return serialize(assemble(resp, sign(t, a, idp)))
	}},
	{name: "no_issuer_anywhere", build: mallorySigned("noiss", func(s *spec) {
		s.issuer = ""
	})},
	{name: "nameid_in_foreign_namespace", build: func(t testing.TB, idp, _ signer) []byte {
		resp, a := respond(goldenSpec(mallory, "foreign-ns"))
		nid := a.FindElement("./Subject/NameID")
		nid.Space = "evil"
		nid.CreateAttr("xmlns:evil", "urn:example:not-saml")
		return serialize(assemble(resp, sign(t, a, idp)))
	}},
	{name: "transient_nameid_without_key_attribute", build: func(t testing.TB, idp, _ signer) []byte {
		s := goldenSpec(mallory, "transient")
		s.nameIDFormat = fmtTransnt
		s.nameID = "_f00d" // a new value every login: it can never identify a user
		return signedAssertion(t, s, idp)
	}},
}

func goldenPath(name string) string { return filepath.Join("testdata", "saml", name+".xml") }

// TestGoldenFixturesUpToDate regenerates the fixtures with -update and
// otherwise checks that every case has one.
func TestGoldenFixturesUpToDate(t *testing.T) {
	idp, other := loadSigner(t, "idp"), loadSigner(t, "other")
	all := append([]goldenCase{{name: "valid", build: func(t testing.TB, idp, _ signer) []byte {
		return signedAssertion(t, goldenSpec(alice, "valid"), idp)
	}}}, goldenCases...)
	for _, c := range all {
		if *update {
			if err := os.MkdirAll(filepath.Dir(goldenPath(c.name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(goldenPath(c.name), c.build(t, idp, other), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := os.Stat(goldenPath(c.name)); err != nil {
			t.Errorf("%s: fixture missing; run go test ./test -run TestGoldenFixturesUpToDate -update", c.name)
		}
	}
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(goldenPath(name))
	if err != nil {
		t.Fatalf("%v (run go test ./test -run TestGoldenFixturesUpToDate -update)", err)
	}
	return b
}

// pendingLogin starts a login the way a browser does and returns the
// RelayState and the cookie holding the login's sealed state.
func (h *harness) pendingLogin(t testing.TB) (string, *http.Cookie) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, h.base+"/", nil)
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	h.proxy.ServeHTTP(rec, req)
	loc, err := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || err != nil {
		t.Fatalf("start login: %d %v", rec.Code, err)
	}
	for _, c := range rec.Result().Cookies() {
		if strings.Contains(c.Name, "gatehouse_login_") {
			return loc.Query().Get("RelayState"), c
		}
	}
	t.Fatal("start login set no login-state cookie")
	return "", nil
}

// postGolden posts a fixture to the ACS, from a browser with a pending
// login for the golden request unless unsolicited.
func postGolden(t testing.TB, h *harness, doc []byte, unsolicited bool) *httptest.ResponseRecorder {
	t.Helper()
	if unsolicited {
		return h.postACS(doc, "", nil)
	}
	relay, cookie := h.pendingLogin(t)
	return h.postACS(doc, relay, cookie)
}

// postACS posts a response to the ACS in-process, with a RelayState and a
// login-state cookie when given.
func (h *harness) postACS(doc []byte, relay string, cookie *http.Cookie) *httptest.ResponseRecorder {
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}}
	if relay != "" {
		form.Set("RelayState", relay)
	}
	req := httptest.NewRequest(http.MethodPost, goldenBase+"/.gatehouse/saml/acs", strings.NewReader(form.Encode()))
	if cookie != nil {
		req.AddCookie(cookie)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	h.proxy.ServeHTTP(rec, req)
	return rec
}

type snapshot struct {
	users, identities, memberships int
	email                          string
	version                        int
}

func (h *harness) snapshot(t *testing.T) snapshot {
	var s snapshot
	db := h.db()
	db.QueryRow(`SELECT count(*) FROM gatehouse_users`).Scan(&s.users)
	db.QueryRow(`SELECT count(*) FROM gatehouse_identities`).Scan(&s.identities)
	db.QueryRow(`SELECT count(*) FROM gatehouse_memberships`).Scan(&s.memberships)
	db.QueryRow(`SELECT email, version FROM gatehouse_users WHERE user_name = 'alice'`).Scan(&s.email, &s.version)
	return s
}

// TestNegativeSAMLResponses: each golden attack is refused with the
// login-failed page, no session cookie, and no change to the store.
// Alice is provisioned first by a valid response, so an attack that
// slipped through would show as a changed record or an extra user.
func TestNegativeSAMLResponses(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, options{base: goldenBase, allowIdPInitiated: c.allowIdPInitiated})
			if rec := postGolden(t, h, readGolden(t, "valid"), false); rec.Code != http.StatusSeeOther {
				t.Fatalf("control: valid response got %d: %s", rec.Code, rec.Body)
			}
			before := h.snapshot(t)
			if before.users != 1 || before.email != alice.mail {
				t.Fatalf("control: %+v", before)
			}
			rec := postGolden(t, h, readGolden(t, c.name), c.unsolicited)
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "error ID") {
				t.Errorf("status %d, want 403 with an error ID:\n%s", rec.Code, rec.Body)
			}
			for _, ck := range rec.Result().Cookies() {
				if ck.Name == "__Host-gatehouse" && ck.MaxAge >= 0 {
					t.Errorf("a session cookie was issued")
				}
			}
			if after := h.snapshot(t); after != before {
				t.Errorf("store changed: %+v -> %+v", before, after)
			}
		})
	}
}

// TestReplayedResponseRefused: the same response posted twice, each time
// with fresh login state for its request, is accepted once.
func TestReplayedResponseRefused(t *testing.T) {
	h := newHarness(t, options{base: goldenBase})
	doc := readGolden(t, "valid")
	if rec := postGolden(t, h, doc, false); rec.Code != http.StatusSeeOther {
		t.Fatalf("first post: %d %s", rec.Code, rec.Body)
	}
	before := h.snapshot(t)
	if rec := postGolden(t, h, doc, false); rec.Code != http.StatusForbidden {
		t.Errorf("replay: %d, want 403", rec.Code)
	}
	if after := h.snapshot(t); after != before {
		t.Errorf("store changed: %+v -> %+v", before, after)
	}
	refused := h.logs.FilterMessage("request refused").All()
	if len(refused) != 1 || refused[0].ContextMap()["reason"] != "replay" {
		t.Errorf("log = %v", refused)
	}
}

// TestIdPInitiatedLoginWhenAllowed: the positive counterpart of the
// unsolicited rows.
func TestIdPInitiatedLoginWhenAllowed(t *testing.T) {
	h := newHarness(t, options{base: goldenBase, allowIdPInitiated: true})
	s := goldenSpec(alice, "idp-initiated")
	s.inResponseTo = ""
	rec := postGolden(t, h, signedAssertion(t, s, h.idp), true)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/" {
		t.Errorf("%d %s", rec.Code, rec.Header())
	}
	if h.snapshot(t).users != 1 {
		t.Error("user not provisioned")
	}
}

// TestLoginStateCookie: the sealed login state opens only for its own
// RelayState, in time, unaltered, and once.
func TestLoginStateCookie(t *testing.T) {
	valid := readGolden(t, "valid")
	post := func(h *harness, relay string, c *http.Cookie) int { return h.postACS(valid, relay, c).Code }
	for name, tc := range map[string]func(h *harness) (string, *http.Cookie){
		"expired": func(h *harness) (string, *http.Cookie) {
			relay, c := h.pendingLogin(t)
			h.clock.Advance(11 * time.Minute) // login_timeout is 10m
			return relay, c
		},
		"tampered": func(h *harness) (string, *http.Cookie) {
			relay, c := h.pendingLogin(t)
			b := []byte(c.Value)
			b[len(b)/2] ^= 1
			c.Value = string(b)
			return relay, c
		},
		"another login's state under this login's name": func(h *harness) (string, *http.Cookie) {
			_, other := h.pendingLogin(t)
			relay, c := h.pendingLogin(t)
			c.Value = other.Value
			return relay, c
		},
		"relay of another login": func(h *harness) (string, *http.Cookie) {
			_, c := h.pendingLogin(t)
			relay, _ := h.pendingLogin(t)
			return relay, c
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, options{base: goldenBase})
			relay, c := tc(h)
			if code := post(h, relay, c); code != http.StatusForbidden {
				t.Errorf("status %d, want 403", code)
			}
			if h.snapshot(t).users != 0 {
				t.Error("a user was provisioned")
			}
		})
	}
	t.Run("control", func(t *testing.T) {
		h := newHarness(t, options{base: goldenBase})
		relay, c := h.pendingLogin(t)
		if code := post(h, relay, c); code != http.StatusSeeOther {
			t.Errorf("status %d, want 303", code)
		}
	})
}
