package session

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"
	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// referenceTree is how gatehouse read XML before buildTree: the
// round-trip rule over every token (non-strict, as the validator reads),
// then etree's strict reader. buildTree must agree with it.
func referenceTree(b []byte, maxOdd int) (*etree.Document, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false
	d.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	odd := 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if plainToken(tok) {
			continue
		}
		if odd++; odd > maxOdd {
			return nil, errXMLLimit
		}
		if err := xrv.CheckToken(tok); err != nil {
			return nil, err
		}
	}
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, err
	}
	return doc, nil
}

// dumpTree writes every token of e with what distinguishes it: names,
// prefixes, attributes in order with the namespace each resolves to,
// text and whether etree counts it as whitespace, comments, directives,
// processing instructions, and each token's parent and index.
func dumpTree(w *strings.Builder, e *etree.Element, depth int) {
	for i, c := range e.Child {
		if c.Parent() != e || c.Index() != i {
			fmt.Fprintf(w, "%*s!parent or index wrong at %d\n", depth, "", i)
		}
		switch t := c.(type) {
		case *etree.Element:
			fmt.Fprintf(w, "%*s<%q %q ns=%q", depth, "", t.Space, t.Tag, t.NamespaceURI())
			for _, a := range t.Attr {
				fmt.Fprintf(w, " [%q %q=%q ns=%q el=%v]", a.Space, a.Key, a.Value, a.NamespaceURI(), a.Element() == t)
			}
			w.WriteString(">\n")
			dumpTree(w, t, depth+1)
		case *etree.CharData:
			fmt.Fprintf(w, "%*stext %q ws=%v cdata=%v\n", depth, "", t.Data, t.IsWhitespace(), t.IsCData())
		case *etree.Comment:
			fmt.Fprintf(w, "%*scomment %q\n", depth, "", t.Data)
		case *etree.Directive:
			fmt.Fprintf(w, "%*sdirective %q\n", depth, "", t.Data)
		case *etree.ProcInst:
			fmt.Fprintf(w, "%*spi %q %q\n", depth, "", t.Target, t.Inst)
		}
	}
}

func dump(d *etree.Document) string {
	var w strings.Builder
	dumpTree(&w, &d.Element, 0)
	return w.String()
}

// stricterThanEtree reports whether doc holds what buildTree refuses on
// purpose and etree took: an attribute given twice, or an attribute name
// with a colon but no prefix.
func stricterThanEtree(doc []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = false
	for {
		tok, err := d.RawToken()
		if err != nil {
			return false
		}
		if s, ok := tok.(xml.StartElement); ok {
			seen := map[xml.Name]bool{}
			for _, a := range s.Attr {
				if seen[a.Name] || a.Name.Space == "" && strings.Contains(a.Name.Local, ":") {
					return true
				}
				seen[a.Name] = true
			}
		}
	}
}

// agree fails t unless buildTree and the reference accept the same
// documents and build the same trees.
func agree(t *testing.T, name string, doc []byte, maxOdd int) {
	t.Helper()
	got, gerr := buildTree(doc, maxOdd)
	want, werr := referenceTree(doc, maxOdd)
	switch {
	case gerr != nil && werr != nil:
	case gerr != nil && werr == nil:
		if !stricterThanEtree(doc) {
			t.Errorf("%s: buildTree refuses what the reference accepts: %v\n%q", name, gerr, doc)
		}
	case gerr == nil && werr != nil:
		t.Errorf("%s: buildTree accepts what the reference refuses (%v):\n%q", name, werr, doc)
	default:
		if g, w := dump(got), dump(want); g != w {
			t.Errorf("%s: trees differ\nbuildTree:\n%s\nreference:\n%s", name, g, w)
		}
		var gb, wb bytes.Buffer
		got.WriteTo(&gb)
		want.WriteTo(&wb)
		if gb.String() != wb.String() {
			t.Errorf("%s: trees write differently\n%s\n%s", name, gb.String(), wb.String())
		}
	}
}

var treeCases = []string{
	`<a/>`,
	`<?xml version="1.0" encoding="UTF-8"?>` + "\n<a>\n  <b c='1' d=\"2\">text &amp; more</b>\n</a>\n",
	`<p:a xmlns:p="urn:p" p:b="1" xmlns:q="" q:c="2"/>`,
	`<a xmlns=""><b xmlns:a="urn:a" a:a="x"/></a>`,
	`<ä:ö xmlns:ä="urn:u" ä:ü="ß">Grüße &amp; &lt;tags&gt; "q" 'a'</ä:ö>`,
	"<a b=\"line\nbreak\ttab&#xD;cr\">text\r\nwith\rcr and \ttab</a>",
	`<a><![CDATA[<not markup> ]]]]><![CDATA[>]]></a>`,
	`<a>  </a>`, "<a>\n\t<b/> \r\n</a>", `<a> x </a>`,
	`<a><!-- c --><?pi data?><!DOCTYPE x></a>`,
	`<!-- before --><a/><!-- after -->`,
	`<a:b:c xmlns:a="urn:a"/>`, `<a x:y:z="1"/>`, `<a :b="1"/>`, `<:a/>`, `<a: b="1"/>`,
	`<a xmlns:xmlns="urn:y" xmlns:xml="urn:z" xml:lang="en"/>`,
	`<a b="1" b="2"/>`, `<a b="1" p:b="2" xmlns:p="urn:p"/>`, `<a p:b="1" p:b="2"/>`,
	`<a><b></a></b>`, `<a></b>`, `<a>`, `</a>`, `<a/><b/>`, `text<a/>`, `<a/>text`,
	`<a b=c/>`, `<a b/>`, `<a>&unknown;</a>`, `<a>&#0;</a>`, `<a>&#x110000;</a>`,
	"<a>\xff</a>", "<a b=\"\xc3\"/>", "\xef\xbb\xbf<a/>",
	`<p:a xmlns:p="urn:p"></q:a>`, `<p:a xmlns:p="urn:p"></a>`, `<a></p:a>`,
	`<r>` + strings.Repeat(`<a·b/>`, 25) + `</r>`,
}

// TestBuildTreeMatchesEtree: buildTree accepts exactly what the
// round-trip check followed by etree's reader accepted, and builds the
// same tree, for edge cases and for every SAML fixture in the tests; it
// refuses more only where it means to (TestBuildTreeStricter).
func TestBuildTreeMatchesEtree(t *testing.T) {
	for i, c := range treeCases {
		agree(t, fmt.Sprintf("case %d", i), []byte(c), 10)
		agree(t, fmt.Sprintf("case %d, large budget", i), []byte(c), 100)
	}
	files, _ := filepath.Glob(filepath.Join("..", "test", "testdata", "saml", "*.xml"))
	more, _ := filepath.Glob(filepath.Join("..", "test", "testdata", "interop", "*", "*.xml"))
	files = append(files, more...)
	if len(files) < 20 {
		t.Fatalf("only %d XML fixtures found in test/testdata", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		agree(t, f, b, responseLimits.maxOdd)
	}
}

// TestBuildTreeStricter: the two refusals etree did not make.
func TestBuildTreeStricter(t *testing.T) {
	for _, doc := range []string{`<a b="1" b="2"/>`, `<a p:b="1" p:b="2" xmlns:p="urn:p"/>`, `<a :b="1"/>`} {
		if _, err := buildTree([]byte(doc), 10); err == nil {
			t.Errorf("%s accepted", doc)
		}
		if _, err := referenceTree([]byte(doc), 10); err != nil && doc != `<a :b="1"/>` {
			t.Errorf("%s: the reference refuses it too (%v); the case proves nothing", doc, err)
		}
	}
	if _, err := buildTree([]byte(`<a b="1" p:b="2" xmlns:p="urn:p"/>`), 10); err != nil {
		t.Errorf("one local name under two prefixes refused: %v", err)
	}
}

// TestOddTokensStillJudged: what the validator refuses is still refused,
// and a document cannot make the slow path run more than its budget.
func TestOddTokensStillJudged(t *testing.T) {
	for name, doc := range map[string]string{
		"element with two colons":   `<a:b:c xmlns:a="urn:a"/>`,
		"attribute with two colons": `<a x:y:z="1"/>`,
		"xmlns:xml declared anew":   `<a xmlns:xmlns="urn:y" xmlns:xml="urn:z" xml:lang="en"/>`,
	} {
		if _, err := buildTree([]byte(doc), 10); err == nil {
			t.Errorf("%s: %s accepted", name, doc)
		}
		if err := xrv.Validate(strings.NewReader(doc)); err == nil {
			t.Errorf("%s: the validator itself accepts %s; the case proves nothing", name, doc)
		}
	}
	// Each self-closing element is two tokens, a start and an end.
	odd := "<r>" + strings.Repeat("<a·b/>", 25) + "</r>"
	if _, err := buildTree([]byte(odd), 50); err != nil {
		t.Fatalf("50 unusual tokens within a budget of 50: %v", err)
	}
	if _, err := buildTree([]byte(odd), 49); !errors.Is(err, errXMLLimit) {
		t.Fatalf("50 unusual tokens over a budget of 49: %v", err)
	}
}

// FuzzBuildTree: buildTree and the reference agree on every input.
func FuzzBuildTree(f *testing.F) {
	for _, c := range treeCases {
		f.Add([]byte(c))
	}
	if b, err := os.ReadFile(filepath.Join("..", "test", "testdata", "saml", "valid.xml")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if len(doc) > 64<<10 {
			return
		}
		agree(t, "fuzz", doc, 8)
	})
}
