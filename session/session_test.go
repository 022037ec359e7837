package session

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeyLen) }

func TestSealerRoundTripAndRotation(t *testing.T) {
	old, _ := newSealer([][]byte{key(1)}, "https://sp.example/metadata")
	rotated, _ := newSealer([][]byte{key(2), key(1)}, "https://sp.example/metadata")
	v, err := old.seal("gatehouse", []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.open("gatehouse", v); err != nil || string(got) != "payload" {
		t.Errorf("rotated keys do not open an old cookie: %q %v", got, err)
	}
	if _, err := old.open("other-cookie", v); !errors.Is(err, errBadCookie) {
		t.Error("a value moved to another cookie name must not open")
	}
	fresh, _ := newSealer([][]byte{key(3)}, "https://sp.example/metadata")
	if _, err := fresh.open("gatehouse", v); !errors.Is(err, errBadCookie) {
		t.Error("a value sealed with a dropped key must not open")
	}
	raw := []byte(v)
	for i := range raw {
		tampered := append([]byte(nil), raw...)
		tampered[i] ^= 1
		if _, err := old.open("gatehouse", string(tampered)); err == nil && string(tampered) != v {
			t.Fatalf("tampered byte %d still opens", i)
		}
	}
}

func TestSessionEncoding(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := Session{ID: "0123456789abcdefghijkl", UserID: "u1", IdP: "corp", NameID: "alice", NameIDFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
		SessionIndex: "_i", AuthnContext: "https://refeds.org/profile/mfa",
		Issued: now, LastSeen: now.Add(time.Minute)}
	got, err := decodeSession(s.encode())
	if err != nil || got != s {
		t.Errorf("round trip: %+v %v", got, err)
	}
	// A cookie of the previous format (before AuthnContext) still opens,
	// so upgrading gatehouse signs nobody out.
	v1 := pack(sessionFormatV1, []time.Time{s.Issued, s.LastSeen}, s.UserID, s.IdP, s.NameID, s.SessionIndex)
	want := s
	want.AuthnContext, want.NameIDFormat, want.ID = "", "", ""
	if got, err := decodeSession(v1); err != nil || got != want {
		t.Errorf("format 1 cookie: %+v %v", got, err)
	}
	long := s
	long.NameID = strings.Repeat("n", 10_000)
	if len(long.encode()) > MaxCookieLen {
		t.Error("an oversized NameID must not make the cookie oversized")
	}
	for _, bad := range [][]byte{nil, {0}, {sessionFormat}, append(s.encode(), 0), s.encode()[:5]} {
		if _, err := decodeSession(bad); err == nil {
			t.Errorf("decodeSession(%x) accepted", bad)
		}
	}
}

func FuzzDecodeSession(f *testing.F) {
	f.Add(Session{UserID: "u", IdP: "i", Issued: time.Unix(1, 0), LastSeen: time.Unix(2, 0)}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSession(b)
		if err == nil && s.UserID == "" {
			t.Fatal("decoded a session without a user")
		}
	})
}

func TestSafeReturn(t *testing.T) {
	for target, want := range map[string]bool{
		"/":                             true,
		"/reports?q=1#x":                true,
		"/a/b/c":                        true,
		"":                              false,
		"https://evil.example/":         false,
		"//evil.example/":               false,
		"/\\evil.example":               false,
		"\\\\evil.example":              false,
		"https:evil.example":            false,
		"javascript:alert(1)":           false,
		"/\tevil":                       false,
		"/.gatehouse/saml/acs":          false,
		"/%0d%0aSet-Cookie:x=1":         true, // stays encoded; no raw control bytes
		"/a\r\nLocation: //evil":        false,
		"/" + strings.Repeat("a", 3000): false,
	} {
		if got := SafeReturn(target, "/.gatehouse/"); got != want {
			t.Errorf("SafeReturn(%q) = %v, want %v", target, got, want)
		}
	}
}

func TestPrecheck(t *testing.T) {
	const head = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="r">`
	const issuer = `<saml:Issuer>idp</saml:Issuer>`
	const assertion = `<saml:Assertion ID="a"><saml:Issuer>idp</saml:Issuer><saml:Subject><saml:NameID>n</saml:NameID></saml:Subject><saml:Conditions/></saml:Assertion>`
	ok := head + issuer + assertion + `</samlp:Response>`
	if sh, err := precheck([]byte(ok)); err != nil || sh.issuer != "idp" {
		t.Fatalf("valid shape refused: %v", err)
	}
	for name, doc := range map[string]string{
		"not xml":            "garbage",
		"wrong root":         `<x/>`,
		"doctype":            `<!DOCTYPE x>` + ok,
		"comment":            strings.Replace(ok, "<saml:NameID>n", "<saml:NameID>n<!---->", 1),
		"processing instr":   strings.Replace(ok, issuer, issuer+"<?pi x?>", 1),
		"no assertion":       head + issuer + `</samlp:Response>`,
		"two assertions":     head + issuer + assertion + assertion + `</samlp:Response>`,
		"nested assertion":   head + issuer + `<samlp:Extensions>` + assertion + `</samlp:Extensions></samlp:Response>`,
		"no response issuer": head + assertion + `</samlp:Response>`,
		"issuers differ":     head + `<saml:Issuer>other</saml:Issuer>` + assertion + `</samlp:Response>`,
		"foreign NameID":     strings.Replace(ok, "<saml:NameID>n</saml:NameID>", `<e:NameID xmlns:e="urn:e">n</e:NameID>`, 1),
		"no conditions":      strings.Replace(ok, "<saml:Conditions/>", "", 1),
		"encrypted":          head + issuer + `<saml:EncryptedAssertion/></samlp:Response>`,
	} {
		if _, err := precheck([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzPrecheck: no input panics the structural check.
func FuzzPrecheck(f *testing.F) {
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"/></samlp:Response>`))
	f.Add([]byte(`<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		precheck(doc)
	})
}

func TestConfigValidateNamesKeys(t *testing.T) {
	c := Config{BaseURL: "ftp://x", ClockSkew: time.Hour, IdPs: []IdP{{Name: "Bad Name"}, {Name: "b", EntityID: "e", MetadataURL: "http://insecure"}}}
	c = c.WithDefaults()
	err := c.Validate()
	for _, key := range []string{"base_url", "clock_skew", "cookie.keys", "idps[0].name", "idps[0].entity_id", "idps[0]: exactly one", "idps[1].metadata_url"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("no problem reported at %s in %v", key, err)
		}
	}
}

func TestLoginStateEncoding(t *testing.T) {
	st := loginState{Token: strings.Repeat("t", tokenLen), RequestID: "id-1", IdP: "corp", ReturnTo: "/a?b=c", Expires: time.Unix(1_800_000_000, 0)}
	got, err := decodeState(st.encode())
	if err != nil || got != st {
		t.Errorf("round trip: %+v %v", got, err)
	}
	for _, bad := range [][]byte{nil, {0}, {stateFormat}, append(st.encode(), 1), st.encode()[:8]} {
		if _, err := decodeState(bad); err == nil {
			t.Errorf("decodeState(%x) accepted", bad)
		}
	}
}

// FuzzDecodeState: no input panics the decoder, and whatever decodes
// survives a round trip.
func FuzzDecodeState(f *testing.F) {
	f.Add(loginState{Token: "t", RequestID: "r", IdP: "i", ReturnTo: "/", Expires: time.Unix(1, 0)}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			return
		}
		if again, err := decodeState(st.encode()); err != nil || again != st {
			t.Fatalf("state does not round-trip: %+v", st)
		}
	})
}
