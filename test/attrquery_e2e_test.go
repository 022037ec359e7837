package test

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"gatehouse/session"
)

// addAttributeAuthority adds an AttributeAuthorityDescriptor with a SOAP
// AttributeService to an IdP metadata file.
func addAttributeAuthority(t testing.TB, file, location string, s signer) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	aa := fmt.Sprintf(`  <md:AttributeAuthorityDescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:AttributeService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location=%q/>
  </md:AttributeAuthorityDescriptor>
</md:EntityDescriptor>`, base64.StdEncoding.EncodeToString(s.cert.Raw), location)
	os.WriteFile(file, []byte(strings.Replace(string(b), "</md:EntityDescriptor>", aa, 1)), 0o600)
}

// authority is a test SAML attribute authority: it checks the query's
// signature with the SP's certificate and answers as answer says.
type authority struct {
	t       testing.TB
	mu      sync.Mutex
	spCert  *x509.Certificate
	idp     signer
	now     func() time.Time
	answer  string // "ok", "unsigned", "other-key", "wrong-id", "other-subject", "down"
	queries []*etree.Element
	errors  []string
}

func (a *authority) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, _ := io.ReadAll(r.Body)
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil || r.Header.Get("SOAPAction") == "" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/xml") {
		a.errors = append(a.errors, fmt.Sprintf("not a SOAP request: %v", err))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	q := doc.FindElement("//AttributeQuery")
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{a.spCert}})
	vc.Clock = dsig.NewFakeClockAt(a.now())
	if _, err := vc.Validate(q); err != nil {
		a.errors = append(a.errors, "query signature: "+err.Error())
		w.WriteHeader(http.StatusForbidden)
		return
	}
	a.queries = append(a.queries, q)
	if a.answer == "down" {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	nameID := q.FindElement("./Subject/NameID").Text()
	if a.answer == "other-subject" {
		nameID = "someone-else"
	}
	inResponseTo := q.SelectAttrValue("ID", "")
	if a.answer == "wrong-id" {
		inResponseTo = "_not-the-query"
	}
	s := spec{now: a.now(), issuer: idpEntityID, inResponseTo: "", destination: "", recipient: "", audience: q.FindElement("./Issuer").Text(),
		nameID: nameID, nameIDFormat: fmtPersist, responseID: "_aa-resp", assertionID: "_aa-assert", sessionIndex: "_aa",
		attrs: []attr{{attrEmployeeID, []string{"E7777"}}, {attrGroups, []string{"payroll", "staff"}}}}
	resp, assertion := respond(s)
	resp.RemoveAttr("Destination")
	resp.CreateAttr("InResponseTo", inResponseTo)
	switch a.answer {
	case "unsigned":
	case "other-key":
		assertion = sign(a.t, assertion, loadSigner(a.t, "other"))
	default:
		assertion = sign(a.t, assertion, a.idp)
	}
	env := etree.NewElement("soap:Envelope")
	env.CreateAttr("xmlns:soap", "http://schemas.xmlsoap.org/soap/envelope/")
	env.CreateElement("soap:Body").AddChild(assemble(resp, assertion))
	w.Header().Set("Content-Type", "text/xml")
	w.Write(serialize(env))
}

// TestAttributeQuery: after a login, a signed query to the IdP's
// attribute authority supplements the assertion (its own values win);
// an answer that is unsigned, signed by another key, about another subject,
// not answering the query, or missing fails the login closed.
func TestAttributeQuery(t *testing.T) {
	spKey, spCert := spKeyPair(t, t.TempDir(), "sp")
	for _, tc := range []struct{ answer, want string }{
		{"ok", ""}, {"unsigned", "neither the Response nor its assertion is signed"}, {"other-key", "signature"},
		{"wrong-id", "does not answer this query"}, {"other-subject", "another subject"}, {"down", "HTTP 503"},
	} {
		t.Run(tc.answer, func(t *testing.T) {
			aa := &authority{t: t, spCert: spCert, idp: loadSigner(t, "idp"), answer: tc.answer}
			srv := httptest.NewTLSServer(aa)
			defer srv.Close()
			h := newHarness(t, options{spKeys: []session.SPKey{spKey}, attributeService: srv.URL + "/aa", httpClient: srv.Client(),
				corp: func(p *session.IdP) {
					p.AttributeQuery, p.AttributeQueryNames = true, []string{attrEmployeeID, attrGroups}
				}})
			aa.now = h.clock.Now
			bob := person{nameID: "b0b-0002", uid: "bob", mail: "bob@example.com", groups: []string{"engineering"}} // no employee ID
			resp := h.login(h.browser(), "/", bob)
			body := readAll(t, resp)
			if len(aa.errors) > 0 {
				t.Fatalf("the authority refused gatehouse's query: %v", aa.errors)
			}
			if len(aa.queries) != 1 || aa.queries[0].FindElement("./Subject/NameID").Text() != bob.nameID ||
				len(aa.queries[0].SelectElements("Attribute")) != 2 {
				t.Fatalf("queries: %d", len(aa.queries))
			}
			if tc.want != "" {
				logged := h.logs.FilterMessage("request refused").All()
				if resp.StatusCode != http.StatusServiceUnavailable || len(logged) == 0 || logged[0].ContextMap()["reason"] != "attribute_query" ||
					!strings.Contains(logged[0].ContextMap()["error"].(string), tc.want) {
					t.Fatalf("answer %s: %d, logged %v", tc.answer, resp.StatusCode, logged)
				}
				return
			}
			if !strings.Contains(body, "user=bob") {
				t.Fatalf("login with the attribute query: %d %s", resp.StatusCode, body)
			}
			var emp, groups string
			h.db().QueryRow(`SELECT json_extract(extra, '$.employee_id') FROM gatehouse_users WHERE user_name = 'bob'`).Scan(&emp)
			if emp != "E7777" {
				t.Errorf("employee_id = %q, want the authority's E7777", emp)
			}
			h.db().QueryRow(`SELECT group_concat(g.name) FROM gatehouse_memberships m JOIN gatehouse_groups g ON g.id = m.group_id`).Scan(&groups)
			if groups != "engineering" {
				t.Errorf("groups = %q: the assertion's own groups must win over the authority's", groups)
			}
		})
	}
}
