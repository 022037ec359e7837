package session

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"testing"

	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// plainTokensHold decodes doc token by token and fails t when a token
// that plainToken lets through on sight is one the validator refuses.
func plainTokensHold(t *testing.T, doc []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = false
	for {
		tok, err := d.RawToken()
		if err != nil {
			return
		}
		tok = xml.CopyToken(tok)
		if plainToken(tok) {
			if err := xrv.CheckToken(tok); err != nil {
				t.Fatalf("plain token %#v does not round-trip: %v", tok, err)
			}
		}
	}
}

// TestPlainTokensRoundTrip: every token checkRoundTrip lets through
// without the validator is one the validator accepts, for the tricky
// spellings of names, namespace declarations and text, and for every
// SAML document in the test fixtures.
func TestPlainTokensRoundTrip(t *testing.T) {
	for _, doc := range []string{
		`<a xmlns="urn:x" xmlns:xmlns="urn:y" xmlns:xml="http://www.w3.org/XML/1998/namespace" xml:lang="en"/>`,
		`<p:a xmlns:p="urn:p" p:b="1" xmlns:q="" q:c="2"/>`,
		`<a xmlns=""><b xmlns:a="urn:a" a:a="x"/></a>`,
		`<ä:ö xmlns:ä="urn:u" ä:ü="ß">Grüße &amp; &lt;tags&gt; "q" 'a'</ä:ö>`,
		"<a b=\"line\nbreak\ttab&#xD;cr\">text\r\nwith\rcr and \ttab</a>",
		`<a b="&#x9;&#xA;&#xD;&#x20;">&#x85;&#x2028;</a>`,
		`<_a._-1 _b.c-d="v"/>`, `<a xmlns:_="urn:u" _:b="c"/>`,
		`<x:y.z xmlns:x="urn:x"/>`, `<a><![CDATA[<not markup> ]]]]><![CDATA[>]]></a>`,
		`<a b=''/>`, `<a>&#xFFFD;&#x10FFFF;</a>`,
		`<a xml:lang="en" xmlns="urn:x" xmlns:p="urn:p"><p:b xml:space="preserve" xml:lang="fr"/></a>`,
	} {
		plainTokensHold(t, []byte(doc))
	}
	files, _ := filepath.Glob(filepath.Join("..", "test", "testdata", "saml", "*.xml"))
	if len(files) == 0 {
		t.Fatal("no SAML fixtures found in test/testdata")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		plainTokensHold(t, b)
	}
}

// FuzzPlainTokens: no input makes plainToken pass a token the validator
// refuses.
func FuzzPlainTokens(f *testing.F) {
	f.Add([]byte(`<p:a xmlns:p="urn:p" p:b="1">t</p:a>`))
	f.Add([]byte(`<a xmlns:xmlns="u" b="&#x9;">x</a>`))
	f.Add([]byte(`<a:b xmlns:a="x" xmlns="y" a:c="z" c="w" xmlns:p2="x" p2:c="v"/>`))
	f.Add([]byte(`<a xml:lang="en" xmlns:p="urn:p"><p:b xml:lang="fr" p:c="x"/></a>`))
	f.Add([]byte(`<a b="1" b="2" xmlns:b="q" b:b="3"><c xmlns="" d="e"/></a>`))
	f.Add([]byte(`<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a"><saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">g</saml:AttributeValue></saml:Assertion>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		d := xml.NewDecoder(bytes.NewReader(doc))
		d.Strict = false
		for range 64 {
			tok, err := d.RawToken()
			if err != nil {
				if err == io.EOF {
					return
				}
				return
			}
			tok = xml.CopyToken(tok)
			if plainToken(tok) {
				if err := xrv.CheckToken(tok); err != nil {
					t.Fatalf("plain token %#v does not round-trip: %v", tok, err)
				}
			}
		}
	})
}
