package session

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScanXML: the pre-scan refuses each hostile shape with errXMLLimit
// (or errDoctype), and lets real messages through.
func TestScanXML(t *testing.T) {
	lim := xmlLimits{name: "test", maxBytes: 4096, maxElements: 10, maxDepth: 3, maxAttrs: 2}
	meta := lim
	meta.comments = true
	saml := xmlLimits{name: "response", maxBytes: 1 << 16, maxElements: 200, maxDepth: 8, maxAttrs: 4, maxOther: 10}
	values := func(n int, parents ...string) string {
		open, end := "", ""
		for _, p := range parents {
			open, end = open+"<saml:"+p+">", "</saml:"+p+">"+end
		}
		return "<samlp:Response>" + open + strings.Repeat("<saml:AttributeValue>g</saml:AttributeValue>", n) + end + "</samlp:Response>"
	}
	for _, tc := range []struct {
		name, doc string
		want      error // nil: accepted
		lim       *xmlLimits
	}{
		{"small document", `<?xml version="1.0"?><a x="1" y="2"><b/><c>t&gt;</c></a>`, nil, nil},
		{"comments where admitted", `<?xml version="1.0"?><a><!-- <d/><d/><d/><d/><d/><d/><d/><d/><d/><d/><d/> --></a>`, nil, &meta},
		{"comments count as elements", `<a>` + strings.Repeat("<!---->", 10) + `</a>`, errXMLLimit, &meta},
		{"comment in a SAML message", `<a><!--x--></a>`, errMarkup, nil},
		{"processing instruction in a SAML message", `<a><?php x?></a>`, errMarkup, nil},
		{"XML declaration after the root", `<a/><?xml version="1.0"?>`, errMarkup, nil},
		{"CDATA sections count as elements", `<a>` + strings.Repeat("<![CDATA[x]]>", 10) + `</a>`, errXMLLimit, nil},
		{"many attribute values", values(150, "Assertion", "AttributeStatement", "Attribute"), nil, &saml},
		{"many empty elements in Extensions", "<samlp:Response><samlp:Extensions>" + strings.Repeat("<e/>", 11) + "</samlp:Extensions></samlp:Response>", errXMLLimit, &saml},
		{"attribute values outside a statement", values(11, "Extensions", "Attribute"), errXMLLimit, &saml},
		{"attribute values outside an attribute", values(11, "AttributeStatement"), errXMLLimit, &saml},
		{"too many elements", `<a>` + strings.Repeat("<b/>", 10) + `</a>`, errXMLLimit, nil},
		{"too deep", `<a><b><c><d/></c></b></a>`, errXMLLimit, nil},
		{"too many attributes", `<a x="1" y="2" z="3"/>`, errXMLLimit, nil},
		{"namespace declarations count", `<a xmlns="u" xmlns:p="v" xmlns:q="w"/>`, errXMLLimit, nil},
		{"too large", `<a>` + strings.Repeat(" ", 5000) + `</a>`, errXMLLimit, nil},
		{"elements hidden by a quoted '>'", `<a x=">"><b/><b/><b/><b/><b/><b/><b/><b/><b/><b/></a>`, errXMLLimit, nil},
		{"markup in CDATA is text", `<a><![CDATA[<b/><b/><b/><b/><b/><b/><b/><b/><b/><b/><b/>]]></a>`, nil, nil},
		{"doctype", `<!DOCTYPE a><a/>`, errDoctype, nil},
		{"entity", `<a><!ENTITY x "y"></a>`, errDoctype, nil},
		{"lower-case doctype", `<!doctype a><a/>`, errDoctype, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := lim
			if tc.lim != nil {
				l = *tc.lim
			}
			err := scanXML([]byte(tc.doc), l)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("scanXML = %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzScanXML(f *testing.F) {
	f.Add([]byte(`<a x="1"><b/><!--c--><![CDATA[d]]></a>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := xmlLimits{name: "fuzz", maxBytes: 1 << 16, maxElements: 20, maxDepth: 4, maxAttrs: 3}
		if err := scanXML(b, lim); err != nil {
			return
		}
		// What the scan admits, the reader builds within the limits.
		d, err := readXML(b, lim)
		if err != nil {
			return
		}
		n := 0
		for _, e := range d.FindElements("//*") {
			n++
			if len(e.Attr) > lim.maxAttrs {
				t.Fatalf("%d attributes admitted", len(e.Attr))
			}
		}
		if n > lim.maxElements {
			t.Fatalf("%d elements admitted", n)
		}
	})
}

// TestCanonicalReturn: return paths are canonical and never under the
// reserved prefix, however spelled.
func TestCanonicalReturn(t *testing.T) {
	for target, want := range map[string]string{
		"/":                         "/",
		"/reports?q=1#x":            "/reports?q=1#x",
		"/a//b/./c/../d/":           "/a/b/d/",
		"/app;jsessionid=1/x":       "/app;jsessionid=1/x",
		"/x/../.gatehouse/logout":   "",
		"/.GateHouse/logout":        "",
		"/.gatehouse":               "",
		"/.gatehouse;p/logout":      "",
		"/%2e%2e/.gatehouse/logout": "",
		"/x%2F..%2F.gatehouse":      "",
		"/x%5c":                     "",
		"/%252e":                    "",
		"/a\\b":                     "",
		"//evil.example/":           "",
		"/\u00e9":                   "",
		"/a\x00":                    "",
		"/a b":                      "",
		"/%zz":                      "",
		"relative":                  "",
		"/.gatehousex/ok":           "/.gatehousex/ok",
	} {
		got, ok := CanonicalReturn(target, "/.gatehouse/")
		if ok != (want != "") || got != want {
			t.Errorf("CanonicalReturn(%q) = %q %v, want %q", target, got, ok, want)
		}
	}
}

// TestRevocationFile: revocations survive a reopen; a torn last line and
// garbage are skipped; expired ones are dropped by compaction.
func TestRevocationFile(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), RevocationFile)
	r, err := OpenRevocationFile(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r.Revoke(ctx, "sid\x00a", now, now.Add(time.Hour))
	r.Revoke(ctx, "sub\x00corp\x00alice bob", now, now.Add(time.Minute))
	r.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("garbage line\n1800000000000 18000")
	f.Close()

	r, err = OpenRevocationFile(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sid\x00a", "sub\x00corp\x00alice bob"} {
		if _, ok := r.RevokedAt(k); !ok {
			t.Errorf("%q not revoked after a reopen", k)
		}
	}
	r.Close()
	now = now.Add(2 * time.Minute)
	r, _ = OpenRevocationFile(path, clock)
	defer r.Close()
	if _, ok := r.RevokedAt("sub\x00corp\x00alice bob"); ok {
		t.Error("an expired revocation came back")
	}
	b, _ := os.ReadFile(path)
	if n := bytes.Count(b, []byte("\n")); n != 1 || bytes.Contains(b, []byte("garbage")) {
		t.Errorf("compacted file holds:\n%s", b)
	}
}

// TestSealerBindsAudience: a value sealed for one SP entity ID does not
// open for another with the same key.
func TestSealerBindsAudience(t *testing.T) {
	a, _ := newSealer([][]byte{key(1)}, "https://a.example/saml")
	b, _ := newSealer([][]byte{key(1)}, "https://b.example/saml")
	v, _ := a.seal("gatehouse", []byte("payload"))
	if _, err := b.open("gatehouse", v); err == nil {
		t.Error("a cookie of another deployment sharing the key opened")
	}
	if got, err := a.open("gatehouse", v); err != nil || string(got) != "payload" {
		t.Errorf("own cookie: %q %v", got, err)
	}
}

// TestMetadataRedirectStaysHTTPS: a metadata fetch refuses a redirect to
// http, and stops after a few redirects.
func TestMetadataRedirectStaysHTTPS(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(entityXML("https://idp", keyDesc, "https://idp/sso")))
	}))
	defer plain.Close()
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/downgrade":
			http.Redirect(w, r, plain.URL+"/metadata", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, srv.URL+"/loop", http.StatusFound)
		}
	}))
	defer srv.Close()
	idps := []IdP{
		{Name: "downgrade", EntityID: "https://idp", MetadataURL: srv.URL + "/downgrade", MetadataUnsigned: true},
		{Name: "loop", EntityID: "https://idp", MetadataURL: srv.URL + "/loop", MetadataUnsigned: true},
	}
	errs := CheckMetadata(context.Background(), srv.Client(), idps)
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "redirect from https to http") || !strings.Contains(errs[1].Error(), "redirects") {
		t.Errorf("errs = %v", errs)
	}
}

func FuzzCanonicalReturn(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/.gatehouse/logout", "/x;y/z?q#f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		got, ok := CanonicalReturn(target, "/.gatehouse/")
		if !ok {
			return
		}
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || underPrefix(got, "/.gatehouse/") {
			t.Fatalf("CanonicalReturn(%q) = %q", target, got)
		}
		if again, ok := CanonicalReturn(got, "/.gatehouse/"); !ok || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q %v", target, got, again, ok)
		}
	})
}

// TestACSFormDecoding: the ACS's own form reader agrees with the form
// encoding (percent escapes, '+' for space) and drops the white space of
// wrapped base64; bad escapes are errors.
func TestACSFormDecoding(t *testing.T) {
	doc := []byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>`)
	b64 := base64.StdEncoding.EncodeToString(doc)
	wrapped := b64[:20] + "\r\n" + b64[20:]
	body := "RelayState=" + url.QueryEscape("tok en/1") + "&SAMLResponse=" + url.QueryEscape(wrapped) + "&SAMLResponse=second"
	req := httptest.NewRequest(http.MethodPost, "/acs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	f, err := readACSForm(httptest.NewRecorder(), req)
	if err != nil || f.relay != "tok en/1" {
		t.Fatalf("form: %+v %v", f, err)
	}
	got, reason, err := decodeResponse(f.response)
	if err != nil || !bytes.Equal(got, doc) {
		t.Errorf("decodeResponse = %q %s %v", got, reason, err)
	}
	for _, bad := range []string{"%", "%4", "%zz", "abc%g0"} {
		if _, err := formUnescape([]byte(bad), -1, true); err == nil {
			t.Errorf("formUnescape(%q) accepted", bad)
		}
	}
	if out, _ := formUnescape([]byte("a+b%2Bc"), -1, false); string(out) != "a b+c" {
		t.Errorf("formUnescape = %q", out)
	}
	req = httptest.NewRequest(http.MethodPost, "/acs", strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	if _, err := readACSForm(httptest.NewRecorder(), req); err == nil {
		t.Error("a text/plain body was read as a form")
	}
}
