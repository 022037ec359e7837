package session

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/beevik/etree"
	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// buildTree reads b once, with encoding/xml's strict tokenizer, and
// builds the etree document from the same tokens that the round-trip
// rule judges (see roundtrip.go): a plain token is taken as it is, an
// unusual one goes to xml-roundtrip-validator, at most maxOdd of them.
// It builds what etree's own reader builds from the same bytes
// (TestBuildTreeMatchesEtree holds the two side by side), so goxmldsig
// canonicalises the tree exactly as before; reading and checking in one
// pass halves the XML work of every message from outside.
//
// It is stricter than etree in two ways, both about XML that is not
// well-formed or never occurs in SAML: an element with two attributes of
// one name is refused (etree kept the last), and so is an attribute name
// with a colon but no prefix (":a", "a:b:c").
func buildTree(b []byte, maxOdd int) (*etree.Document, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	d.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	stack := make([]*etree.Element, 1, 16)
	stack[0] = &doc.Element
	odd := 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			if len(stack) != 1 {
				return nil, errors.New("malformed XML: unclosed element")
			}
			return doc, nil
		}
		if err != nil {
			return nil, fmt.Errorf("malformed XML: %w", err)
		}
		if !plainToken(tok) {
			if odd++; odd > maxOdd {
				return nil, fmt.Errorf("invalid XML: more than %d tokens with unusual names or characters: %w", maxOdd, errXMLLimit)
			}
			if err := xrv.CheckToken(tok); err != nil {
				return nil, fmt.Errorf("invalid XML: %w", err)
			}
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			el := &etree.Element{Space: t.Name.Space, Tag: t.Name.Local}
			top.AddChild(el)
			if err := copyAttrs(el, t.Attr); err != nil {
				return nil, err
			}
			stack = append(stack, el)
		case xml.EndElement:
			if len(stack) == 1 || top.Tag != t.Name.Local || top.Space != t.Name.Space {
				return nil, errors.New("malformed XML: end tag does not match its start tag")
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			// SetData marks whitespace-only text, as etree's reader does.
			s := string(t)
			top.CreateText(s).SetData(s)
		case xml.Comment:
			top.CreateComment(string(t))
		case xml.Directive:
			top.CreateDirective(string(t))
		case xml.ProcInst:
			top.CreateProcInst(t.Target, string(t.Inst))
		}
	}
}

// copyAttrs gives el the attributes of its start tag, refusing a name
// given twice.
func copyAttrs(el *etree.Element, attrs []xml.Attr) error {
	if len(attrs) == 0 {
		return nil
	}
	el.Attr = make([]etree.Attr, 0, len(attrs))
	for i, a := range attrs {
		for _, prev := range attrs[:i] {
			if prev.Name == a.Name {
				return fmt.Errorf("malformed XML: attribute %s given twice", quoted(rawName(a.Name)))
			}
		}
		key := a.Name.Local
		switch {
		case a.Name.Space != "":
			key = a.Name.Space + ":" + a.Name.Local
		case strings.IndexByte(key, ':') >= 0:
			return fmt.Errorf("malformed XML: attribute name %s", quoted(key))
		}
		el.CreateAttr(key, a.Value)
	}
	return nil
}

func rawName(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}
