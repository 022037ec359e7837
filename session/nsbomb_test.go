package session

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
)

// nested is a document of depth elements, each declaring per prefixes
// (all in scope at the innermost), around inner.
func nested(depth, per int, inner string) string {
	var b strings.Builder
	for d := range depth {
		fmt.Fprintf(&b, "<e%d", d)
		for p := range per {
			fmt.Fprintf(&b, ` xmlns:p%d_%d="urn:u"`, d, p)
		}
		b.WriteString(">")
	}
	b.WriteString(inner)
	for d := depth - 1; d >= 0; d-- {
		fmt.Fprintf(&b, "</e%d>", d)
	}
	return b.String()
}

// TestScanBoundsNamespacesInScope: a document whose elements nest more
// namespace declarations than responseLimits allow in scope is refused by
// the scan, before any tree is built (red team R1, finding 1: 900
// prefixes in scope made goxmldsig copy them at each of 1,000 elements,
// 0.4 s of CPU for a 19 KB body); declarations that go out of scope do
// not add up, so a response declaring xs and xsi on each of thousands of
// attribute values passes.
func TestScanBoundsNamespacesInScope(t *testing.T) {
	lim := responseLimits
	if err := scanXML([]byte(nested(4, 10, "<x/>")), lim); err != nil {
		t.Fatalf("40 declarations in scope refused: %v", err)
	}
	defaults := strings.Repeat(`<e xmlns="urn:u">`, 41) + strings.Repeat("</e>", 41)
	deep := lim
	deep.maxDepth = 64
	for name, tc := range map[string]struct {
		doc string
		lim xmlLimits
	}{
		"nested":                     {nested(5, 9, "<x/>"), lim},
		"self-closing last":          {nested(4, 10, `<x xmlns:a="urn:a"/>`), lim},
		"default namespace 41 times": {defaults, deep},
		"R1's shape":                 {`<r>` + nested(29, 31, strings.Repeat("<x/>", 900)) + `</r>`, lim},
	} {
		if err := scanXML([]byte(tc.doc), tc.lim); !errors.Is(err, errXMLLimit) || !strings.Contains(err.Error(), "namespace declarations in scope") {
			t.Errorf("%s: %v", name, err)
		}
	}
	var b strings.Builder
	b.WriteString(`<r xmlns:s="urn:s"><s:AttributeStatement><s:Attribute>`)
	for range 5000 {
		b.WriteString(`<s:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">g</s:AttributeValue>`)
	}
	b.WriteString(`</s:Attribute></s:AttributeStatement></r>`)
	if err := scanXML([]byte(b.String()), lim); err != nil {
		t.Fatalf("declarations on each of 5,000 attribute values refused: %v", err)
	}
	// Spellings the scan must count: white space around '=', quotes of
	// either kind, and a declaration glued to the previous value.
	tag := `<a xmlns = "u" xmlns:b='u' c="1"xmlns:d="u"/>`
	if _, _, _, n, err := scanStartTag([]byte(tag), 1, lim); err != nil || n != 3 {
		t.Fatalf("%s: %d declarations counted, %v; want 3", tag, n, err)
	}
}

// TestSignatureOutOfPlaceRefused: a signature anywhere but first or right
// after the Issuer is refused before goxmldsig walks the tree (R1,
// finding 1: an unsigned body placed a Signature after an Extensions of
// many elements, and the search for it walked them all).
func TestSignatureOutOfPlaceRefused(t *testing.T) {
	key, cert := testSigner(t)
	d := signedDoc(t, key, cert, false)
	root := d.Root()
	// Move the signature behind an Extensions.
	sig := root.FindElement("./Signature")
	root.RemoveChild(sig)
	ext := root.CreateElement("samlp:Extensions")
	for range 50 {
		ext.CreateElement("x")
	}
	root.AddChild(sig)
	_, err := new(Manager).verifySignatureAt(root, []*x509.Certificate{cert}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "not where the SAML schema puts it") {
		t.Fatalf("signature after Extensions: %v", err)
	}
	// In place (right after the Issuer) it verifies, Extensions or not:
	// the signature covers them.
	d = signedDoc(t, key, cert, false)
	if _, err := new(Manager).verifySignatureAt(d.Root(), []*x509.Certificate{cert}, time.Now()); err != nil {
		t.Fatalf("signature right after the Issuer: %v", err)
	}
	first := etree.NewElement("a")
	s := first.CreateElement("ds:Signature")
	first.CreateElement("b")
	if !signatureInPlace(first, s) {
		t.Error("a signature as the first child is in place")
	}
	second := etree.NewElement("a")
	second.CreateElement("Other")
	s = second.CreateElement("ds:Signature")
	if signatureInPlace(second, s) {
		t.Error("a signature after an element other than the Issuer is in place")
	}
}

// TestReadXMLRefusesContentAfterTheRoot: nothing but white space (and a
// byte order mark first) may stand outside the root element (R1, finding
// 3: a second Assertion after a valid response was accepted).
func TestReadXMLRefusesContentAfterTheRoot(t *testing.T) {
	for _, doc := range []string{
		`<a/><b/>`, `<a/>text`, `text<a/>`, `<a/><![CDATA[x]]>`, "<a/>\ufeff",
		`<samlp:Response xmlns:samlp="urn:p"/><saml:Assertion xmlns:saml="urn:a"><saml:Subject/></saml:Assertion>`,
	} {
		if _, err := readXML([]byte(doc), responseLimits); err == nil {
			t.Errorf("%q accepted", doc)
		}
	}
	for _, doc := range []string{"<a/>", "\ufeff<a/>", "\ufeff \n<a/>\n", "<?xml version=\"1.0\"?>\n<a/>\r\n"} {
		if _, err := readXML([]byte(doc), responseLimits); err != nil {
			t.Errorf("%q refused: %v", doc, err)
		}
	}
}

// TestScanBoundsAttributesOfTheDocument: a response whose attribute
// values each carry many prefixed attributes is refused by the scan
// (red team R3: with a real signature copied in, 9,000 values of 24
// prefixed attributes each under 25 prefixes in scope cost about a
// second of canonicalisation before the digest failed, four times the
// largest real response); the largest real one, 10,000 values each with
// xsi:type and the xs and xsi declarations (and one more), passes.
func TestScanBoundsAttributesOfTheDocument(t *testing.T) {
	var attrs strings.Builder
	for p := range 24 {
		fmt.Fprintf(&attrs, ` q%d:a=""`, p)
	}
	values := strings.Repeat(`<saml:AttributeValue`+attrs.String()+`/>`, 8000)
	hostile := `<samlp:Response xmlns:samlp="urn:p" xmlns:saml="urn:a"><saml:AttributeStatement><saml:Attribute>` +
		values + `</saml:Attribute></saml:AttributeStatement></samlp:Response>`
	if err := scanXML([]byte(hostile), responseLimits); !errors.Is(err, errXMLLimit) || !strings.Contains(err.Error(), "attributes") {
		t.Fatalf("24 attributes on each of 8,000 values (%d bytes): %v", len(hostile), err)
	}
	var real strings.Builder
	real.WriteString(`<samlp:Response xmlns:samlp="urn:p" xmlns:saml="urn:a"><saml:Assertion><saml:AttributeStatement><saml:Attribute Name="groups">`)
	for range 10_000 {
		real.WriteString(`<saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string" xml:lang="en">g</saml:AttributeValue>`)
	}
	real.WriteString(`</saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>`)
	if err := scanXML([]byte(real.String()), responseLimits); err != nil {
		t.Fatalf("10,000 attribute values with 4 attributes each: %v", err)
	}
}
