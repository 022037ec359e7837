package session

import (
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"
)

const (
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
)

// shape is what the structural pre-check learns about a response before
// any signature is checked. It is used to reject early and to pick the IdP
// of an unsolicited response; nothing in it is trusted for identity.
type shape struct {
	root         *etree.Element // the Response, as read (not yet verified)
	issuer       string         // assertion Issuer, else response Issuer
	inResponseTo string         // Response/@InResponseTo
	responseID   string
	issueInstant string // Response/@IssueInstant
	encrypted    *encryption
}

// readXML is the one reader of XML from outside: responses, logout
// messages, attribute query answers, metadata, decrypted assertions. It
// first scans the bytes against lim (size, elements, depth, attributes per
// element, no DTD, entity or other directive), building nothing; then it
// reads the tree in one pass (buildTree), which refuses XML that does not
// survive a round trip and malformed XML; last it refuses anything at the
// top level but one root element, the XML declaration and white space.
func readXML(b []byte, lim xmlLimits) (*etree.Document, error) {
	if err := scanXML(b, lim); err != nil {
		return nil, err
	}
	d, err := buildTree(b, lim.maxOdd)
	if err != nil {
		return nil, err
	}
	if d.Root() == nil {
		return nil, errors.New("malformed XML: no root element")
	}
	roots := 0
	for i, tok := range d.Child {
		switch tok := tok.(type) {
		case *etree.Comment, *etree.Directive:
			return nil, errors.New("comments and directives are not accepted")
		case *etree.ProcInst:
			if tok.Target != "xml" {
				return nil, errors.New("processing instructions are not accepted")
			}
		case *etree.Element:
			if roots++; roots > 1 {
				return nil, errors.New("malformed XML: more than one root element")
			}
		case *etree.CharData:
			text := tok.Data
			if i == 0 {
				text = strings.TrimPrefix(text, "\ufeff") // a byte order mark
			}
			if strings.Trim(text, " \t\r\n") != "" {
				return nil, errors.New("malformed XML: text outside the root element")
			}
		}
	}
	return d, nil
}

// precheck rejects responses whose structure the SP refuses whatever their
// signature: DTDs and entities, comments and processing instructions
// (comment injection into signed text), anything other than exactly one
// Assertion or EncryptedAssertion anywhere in the document (signature
// wrapping, CVE-2022-41912), a missing Issuer, Subject or Conditions (which
// crewjam/saml up to v0.5.1 dereferences without checking), and a NameID
// outside the SAML assertion namespace (GO-2026-6909).
func precheck(doc []byte) (shape, error) {
	var sh shape
	d, err := readXML(doc, responseLimits)
	if err != nil {
		return sh, err
	}
	root := d.Root()
	if root.Tag != "Response" || root.NamespaceURI() != nsProtocol {
		return sh, errors.New("root element is not a SAML protocol Response")
	}
	sh.root = root
	sh.inResponseTo = root.SelectAttrValue("InResponseTo", "")
	sh.responseID = root.SelectAttrValue("ID", "")
	sh.issueInstant = root.SelectAttrValue("IssueInstant", "")

	var assertions []*etree.Element
	var walk func(e *etree.Element) error
	walk = func(e *etree.Element) error {
		for _, tok := range e.Child {
			switch t := tok.(type) {
			case *etree.Comment:
				return errors.New("comments are not accepted")
			case *etree.ProcInst, *etree.Directive:
				return errors.New("processing instructions and directives are not accepted")
			case *etree.Element:
				if t.Tag == "Assertion" || t.Tag == "EncryptedAssertion" {
					assertions = append(assertions, t)
				}
				if err := walk(t); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return sh, err
	}
	if len(assertions) != 1 {
		return sh, fmt.Errorf("response holds %d assertion elements, want exactly 1", len(assertions))
	}
	a := assertions[0]
	if a.Parent() != root || a.NamespaceURI() != nsAssertion {
		return sh, errors.New("the assertion is not a SAML assertion child of the response")
	}
	// SAML lets an unsigned Response omit its Issuer; every IdP we know
	// sends it, and requiring it closes the nil-Issuer panics of
	// crewjam/saml up to v0.5.1.
	ri := childrenNS(root, nsAssertion, "Issuer")
	if len(ri) != 1 || ri[0].Text() == "" {
		return sh, errors.New("response must have exactly one Issuer")
	}
	if a.Tag == "EncryptedAssertion" {
		// The assertion's own shape is checked once it is decrypted.
		enc, err := inspectEncrypted(a)
		if err != nil {
			return sh, err
		}
		sh.encrypted, sh.issuer = enc, ri[0].Text()
		return sh, nil
	}
	err = checkAssertionShape(a, ri[0].Text())
	sh.issuer = ri[0].Text()
	return sh, err
}

// checkAssertionShape applies the structural rules to one assertion
// element, plain or decrypted: its Issuer equals the response's, and it
// has exactly one Subject with one NameID in the SAML namespace and one
// Conditions.
func checkAssertionShape(a *etree.Element, responseIssuer string) error {
	issuers := childrenNS(a, nsAssertion, "Issuer")
	if len(issuers) != 1 || issuers[0].Text() == "" {
		return errors.New("assertion must have exactly one Issuer")
	}
	if issuers[0].Text() != responseIssuer {
		return errors.New("response and assertion issuers differ")
	}
	subjects := childrenNS(a, nsAssertion, "Subject")
	if len(subjects) != 1 {
		return errors.New("assertion must have exactly one Subject")
	}
	for _, c := range subjects[0].ChildElements() {
		if c.Tag == "NameID" && c.NamespaceURI() != nsAssertion {
			return errors.New("NameID outside the SAML assertion namespace")
		}
	}
	if n := len(childrenNS(subjects[0], nsAssertion, "NameID")); n != 1 {
		return fmt.Errorf("subject has %d NameID elements, want exactly 1", n)
	}
	if len(childrenNS(a, nsAssertion, "Conditions")) != 1 {
		return errors.New("assertion must have exactly one Conditions")
	}
	return nil
}

func childrenNS(e *etree.Element, ns, tag string) []*etree.Element {
	var out []*etree.Element
	for _, c := range e.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			out = append(out, c)
		}
	}
	return out
}
