package session

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// assertionFromTree reads a verified assertion element into crewjam/saml's
// type straight from its tree. It fills every field of saml.Assertion
// exactly as unmarshalAssertion does (etree's writer, then encoding/xml
// with crewjam/saml's UnmarshalXML methods), without writing the tree out
// and parsing it again. What that reading does, and this one therefore
// does too:
//
//   - Names are resolved with the declarations of el and its descendants
//     only (the writer drops the ancestors'); an unbound prefix stays the
//     namespace, "xml" is the XML namespace. The root must be Assertion in
//     the SAML assertion namespace, and Assertion.XMLName stays empty (the
//     embedded-alias decoding never sets it). Issuer and Subject match
//     only in the SAML assertion namespace, xsi:type only in the
//     XMLSchema-instance namespace; every other element and attribute
//     matches on its local name in any namespace, a namespace declaration
//     such as xmlns:ID included. Unknown elements are skipped.
//   - An attribute given twice (under two prefixes) is read twice, the
//     last one winning. A single-valued element given twice is read into
//     the same value: attributes the later one has overwrite, those it
//     lacks are kept, its character data replaces the earlier, lists
//     grow; but the times crewjam/saml reads as RelaxedTime through an
//     alias (Conditions' NotBefore and NotOnOrAfter, SubjectConfirmationData's
//     NotOnOrAfter) are reset, to zero when the later element lacks them.
//   - Character data is the element's own text, its children's left out,
//     comments and processing instructions ignored. A character not allowed
//     in XML or a byte not valid UTF-8 in text or an attribute becomes
//     U+FFFD; CR LF and a lone CR become LF. A CDATA section holding such a
//     character fails the whole read.
//   - IssueInstant, AuthnInstant, SessionNotOnOrAfter and the RelaxedTime
//     ones above: empty or absent is the zero time, else RFC 3339 rounded
//     to the millisecond, or an error. SubjectConfirmationData's NotBefore:
//     strict RFC 3339, an empty value an error. ProxyRestriction's Count:
//     an integer (surrounding space allowed, empty is 0) or an error.
//
// It refuses (errTreeRefused) two things that encoding/xml may accept but
// no IdP sends and gatehouse's readers already refuse: a processing
// instruction with target "xml" or no target, and a directive, anywhere
// in the assertion. It assumes the names in the tree are well-formed, as
// any tree built by a parser is.
func assertionFromTree(el *etree.Element) (*saml.Assertion, error) {
	if el == nil {
		return nil, errors.New("assertion: no element")
	}
	var r treeReader
	r.ns = r.nsArray[:0]
	a := new(saml.Assertion)
	if err := r.assertion(el, a); err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	return a, nil
}

var errTreeRefused = errors.New("processing instructions and directives are not read")

const (
	nsXML = "http://www.w3.org/XML/1998/namespace"
	nsXSI = "http://www.w3.org/2001/XMLSchema-instance"
)

// treeReader resolves namespace prefixes as it descends.
type treeReader struct {
	ns      []nsBinding // innermost last
	nsArray [8]nsBinding
}

type nsBinding struct{ prefix, uri string }

// push adds the declarations of el to the scope and returns the mark to
// pop back to.
func (r *treeReader) push(el *etree.Element) int {
	mark := len(r.ns)
	for i := range el.Attr {
		a := &el.Attr[i]
		switch {
		case a.Space == "xmlns":
			r.ns = append(r.ns, nsBinding{a.Key, cleanText(a.Value)})
		case a.Space == "" && a.Key == "xmlns":
			r.ns = append(r.ns, nsBinding{"", cleanText(a.Value)})
		}
	}
	return mark
}

func (r *treeReader) pop(mark int) { r.ns = r.ns[:mark] }

func (r *treeReader) lookup(prefix string) (string, bool) {
	for i := len(r.ns) - 1; i >= 0; i-- {
		if r.ns[i].prefix == prefix {
			return r.ns[i].uri, true
		}
	}
	return "", false
}

// elemSpace is the namespace encoding/xml gives el's name.
func (r *treeReader) elemSpace(el *etree.Element) string {
	s := el.Space
	switch {
	case s == "xmlns":
		return s
	case s == "xml":
		s = nsXML
	case s == "" && el.Tag == "xmlns":
		return s
	}
	if uri, ok := r.lookup(s); ok {
		return uri
	}
	return s
}

// attrSpace is the namespace encoding/xml gives a's name.
func (r *treeReader) attrSpace(a *etree.Attr) string {
	s := a.Space
	switch s {
	case "", "xmlns":
		return s
	case "xml":
		s = nsXML
	}
	if uri, ok := r.lookup(s); ok {
		return uri
	}
	return s
}

// each calls f for every child element of el with the child's
// declarations in scope, checks the other tokens, and skips (checking
// them) the children f does not take.
func (r *treeReader) each(el *etree.Element, f func(c *etree.Element, space string) (bool, error)) error {
	for _, tok := range el.Child {
		c, ok := tok.(*etree.Element)
		if !ok {
			if err := checkToken(tok); err != nil {
				return err
			}
			continue
		}
		mark := r.push(c)
		took, err := f(c, r.elemSpace(c))
		r.pop(mark)
		if err == nil && !took {
			err = skipTree(c)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *treeReader) assertion(el *etree.Element, a *saml.Assertion) error {
	mark := r.push(el)
	defer r.pop(mark)
	if el.Tag != "Assertion" {
		return fmt.Errorf("expected element type <Assertion> but have <%s>", el.Tag)
	}
	if r.elemSpace(el) != nsAssertion {
		return errors.New("the assertion element is not in the SAML assertion namespace")
	}
	var issued saml.RelaxedTime
	for i := range el.Attr {
		at := &el.Attr[i]
		switch at.Key {
		case "ID":
			a.ID = cleanText(at.Value)
		case "IssueInstant":
			if err := issued.UnmarshalText([]byte(cleanText(at.Value))); err != nil {
				return err
			}
		case "Version":
			a.Version = cleanText(at.Value)
		}
	}
	err := r.each(el, func(c *etree.Element, space string) (bool, error) {
		switch {
		case c.Tag == "Issuer" && space == nsAssertion:
			return true, r.issuer(c, space, &a.Issuer)
		case c.Tag == "Signature":
			if a.Signature == nil {
				a.Signature = new(etree.Element)
			}
			return true, signatureFields(c, a.Signature)
		case c.Tag == "Subject" && space == nsAssertion:
			if a.Subject == nil {
				a.Subject = new(saml.Subject)
			}
			return true, r.subject(c, space, a.Subject)
		case c.Tag == "Conditions":
			if a.Conditions == nil {
				a.Conditions = new(saml.Conditions)
			}
			return true, r.conditions(c, a.Conditions)
		case c.Tag == "AuthnStatement":
			a.AuthnStatements = append(a.AuthnStatements, saml.AuthnStatement{})
			return true, r.authnStatement(c, &a.AuthnStatements[len(a.AuthnStatements)-1])
		case c.Tag == "AttributeStatement":
			a.AttributeStatements = append(a.AttributeStatements, saml.AttributeStatement{})
			return true, r.attributeStatement(c, &a.AttributeStatements[len(a.AttributeStatements)-1])
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	a.IssueInstant = time.Time(issued)
	return nil
}

func (r *treeReader) issuer(el *etree.Element, space string, v *saml.Issuer) error {
	v.XMLName.Space, v.XMLName.Local = space, el.Tag
	for i := range el.Attr {
		at := &el.Attr[i]
		switch at.Key {
		case "NameQualifier":
			v.NameQualifier = cleanText(at.Value)
		case "SPNameQualifier":
			v.SPNameQualifier = cleanText(at.Value)
		case "Format":
			v.Format = cleanText(at.Value)
		case "SPProvidedID":
			v.SPProvidedID = cleanText(at.Value)
		}
	}
	return textOnly(el, &v.Value)
}

func (r *treeReader) nameID(el *etree.Element, v *saml.NameID) error {
	for i := range el.Attr {
		at := &el.Attr[i]
		switch at.Key {
		case "NameQualifier":
			v.NameQualifier = cleanText(at.Value)
		case "SPNameQualifier":
			v.SPNameQualifier = cleanText(at.Value)
		case "Format":
			v.Format = cleanText(at.Value)
		case "SPProvidedID":
			v.SPProvidedID = cleanText(at.Value)
		}
	}
	return textOnly(el, &v.Value)
}

func (r *treeReader) subject(el *etree.Element, space string, s *saml.Subject) error {
	s.XMLName.Space, s.XMLName.Local = space, el.Tag
	return r.each(el, func(c *etree.Element, _ string) (bool, error) {
		switch c.Tag {
		case "NameID":
			if s.NameID == nil {
				s.NameID = new(saml.NameID)
			}
			return true, r.nameID(c, s.NameID)
		case "SubjectConfirmation":
			s.SubjectConfirmations = append(s.SubjectConfirmations, saml.SubjectConfirmation{})
			return true, r.subjectConfirmation(c, &s.SubjectConfirmations[len(s.SubjectConfirmations)-1])
		}
		return false, nil
	})
}

func (r *treeReader) subjectConfirmation(el *etree.Element, sc *saml.SubjectConfirmation) error {
	for i := range el.Attr {
		if at := &el.Attr[i]; at.Key == "Method" {
			sc.Method = cleanText(at.Value)
		}
	}
	return r.each(el, func(c *etree.Element, _ string) (bool, error) {
		switch c.Tag {
		case "NameID":
			if sc.NameID == nil {
				sc.NameID = new(saml.NameID)
			}
			return true, r.nameID(c, sc.NameID)
		case "SubjectConfirmationData":
			if sc.SubjectConfirmationData == nil {
				sc.SubjectConfirmationData = new(saml.SubjectConfirmationData)
			}
			return true, r.subjectConfirmationData(c, sc.SubjectConfirmationData)
		}
		return false, nil
	})
}

func (r *treeReader) subjectConfirmationData(el *etree.Element, d *saml.SubjectConfirmationData) error {
	var notOnOrAfter saml.RelaxedTime
	for i := range el.Attr {
		at := &el.Attr[i]
		switch at.Key {
		case "NotOnOrAfter":
			if err := notOnOrAfter.UnmarshalText([]byte(cleanText(at.Value))); err != nil {
				return err
			}
		case "NotBefore":
			if err := d.NotBefore.UnmarshalText([]byte(cleanText(at.Value))); err != nil {
				return err
			}
		case "Recipient":
			d.Recipient = cleanText(at.Value)
		case "InResponseTo":
			d.InResponseTo = cleanText(at.Value)
		case "Address":
			d.Address = cleanText(at.Value)
		}
	}
	if err := checkChildren(el); err != nil {
		return err
	}
	d.NotOnOrAfter = time.Time(notOnOrAfter)
	return nil
}

func (r *treeReader) conditions(el *etree.Element, c *saml.Conditions) error {
	var notBefore, notOnOrAfter saml.RelaxedTime
	for i := range el.Attr {
		at := &el.Attr[i]
		switch at.Key {
		case "NotBefore":
			if err := notBefore.UnmarshalText([]byte(cleanText(at.Value))); err != nil {
				return err
			}
		case "NotOnOrAfter":
			if err := notOnOrAfter.UnmarshalText([]byte(cleanText(at.Value))); err != nil {
				return err
			}
		}
	}
	err := r.each(el, func(e *etree.Element, _ string) (bool, error) {
		switch e.Tag {
		case "AudienceRestriction":
			c.AudienceRestrictions = append(c.AudienceRestrictions, saml.AudienceRestriction{})
			ar := &c.AudienceRestrictions[len(c.AudienceRestrictions)-1]
			return true, r.each(e, func(a *etree.Element, _ string) (bool, error) {
				if a.Tag != "Audience" {
					return false, nil
				}
				return true, textOnly(a, &ar.Audience.Value)
			})
		case "OneTimeUse":
			if c.OneTimeUse == nil {
				c.OneTimeUse = new(saml.OneTimeUse)
			}
			return true, checkChildren(e)
		case "ProxyRestriction":
			if c.ProxyRestriction == nil {
				c.ProxyRestriction = new(saml.ProxyRestriction)
			}
			return true, r.proxyRestriction(e, c.ProxyRestriction)
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	c.NotBefore, c.NotOnOrAfter = time.Time(notBefore), time.Time(notOnOrAfter)
	return nil
}

func (r *treeReader) proxyRestriction(el *etree.Element, p *saml.ProxyRestriction) error {
	return r.each(el, func(c *etree.Element, _ string) (bool, error) {
		switch c.Tag {
		case "Count":
			if p.Count == nil {
				p.Count = new(int)
			}
			var s string
			if err := textOnly(c, &s); err != nil {
				return true, err
			}
			if s == "" {
				*p.Count = 0
				return true, nil
			}
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, strconv.IntSize)
			if err != nil {
				return true, err
			}
			*p.Count = int(n)
			return true, nil
		case "Audiences":
			p.Audiences = append(p.Audiences, saml.Audience{})
			return true, textOnly(c, &p.Audiences[len(p.Audiences)-1].Value)
		}
		return false, nil
	})
}

func (r *treeReader) authnStatement(el *etree.Element, s *saml.AuthnStatement) error {
	var instant saml.RelaxedTime
	var sessionEnd *saml.RelaxedTime
	for i := range el.Attr {
		at := &el.Attr[i]
		switch at.Key {
		case "AuthnInstant":
			if err := instant.UnmarshalText([]byte(cleanText(at.Value))); err != nil {
				return err
			}
		case "SessionNotOnOrAfter":
			if sessionEnd == nil {
				sessionEnd = new(saml.RelaxedTime)
			}
			if err := sessionEnd.UnmarshalText([]byte(cleanText(at.Value))); err != nil {
				return err
			}
		case "SessionIndex":
			s.SessionIndex = cleanText(at.Value)
		}
	}
	err := r.each(el, func(c *etree.Element, _ string) (bool, error) {
		switch c.Tag {
		case "SubjectLocality":
			if s.SubjectLocality == nil {
				s.SubjectLocality = new(saml.SubjectLocality)
			}
			for i := range c.Attr {
				at := &c.Attr[i]
				switch at.Key {
				case "Address":
					s.SubjectLocality.Address = cleanText(at.Value)
				case "DNSName":
					s.SubjectLocality.DNSName = cleanText(at.Value)
				}
			}
			return true, checkChildren(c)
		case "AuthnContext":
			return true, r.each(c, func(e *etree.Element, _ string) (bool, error) {
				if e.Tag != "AuthnContextClassRef" {
					return false, nil
				}
				ac := &s.AuthnContext
				if ac.AuthnContextClassRef == nil {
					ac.AuthnContextClassRef = new(saml.AuthnContextClassRef)
				}
				return true, textOnly(e, &ac.AuthnContextClassRef.Value)
			})
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	s.AuthnInstant = time.Time(instant)
	s.SessionNotOnOrAfter = (*time.Time)(sessionEnd)
	return nil
}

func (r *treeReader) attributeStatement(el *etree.Element, s *saml.AttributeStatement) error {
	return r.each(el, func(c *etree.Element, _ string) (bool, error) {
		if c.Tag != "Attribute" {
			return false, nil
		}
		s.Attributes = append(s.Attributes, saml.Attribute{})
		return true, r.attribute(c, &s.Attributes[len(s.Attributes)-1])
	})
}

func (r *treeReader) attribute(el *etree.Element, a *saml.Attribute) error {
	for i := range el.Attr {
		at := &el.Attr[i]
		switch at.Key {
		case "FriendlyName":
			a.FriendlyName = cleanText(at.Value)
		case "Name":
			a.Name = cleanText(at.Value)
		case "NameFormat":
			a.NameFormat = cleanText(at.Value)
		}
	}
	return r.each(el, func(c *etree.Element, _ string) (bool, error) {
		if c.Tag != "AttributeValue" {
			return false, nil
		}
		a.Values = append(a.Values, saml.AttributeValue{})
		return true, r.attributeValue(c, &a.Values[len(a.Values)-1])
	})
}

func (r *treeReader) attributeValue(el *etree.Element, v *saml.AttributeValue) error {
	for i := range el.Attr {
		at := &el.Attr[i]
		if at.Key == "type" && r.attrSpace(at) == nsXSI {
			v.Type = cleanText(at.Value)
		}
	}
	err := r.each(el, func(c *etree.Element, _ string) (bool, error) {
		if c.Tag != "NameID" {
			return false, nil
		}
		if v.NameID == nil {
			v.NameID = new(saml.NameID)
		}
		return true, r.nameID(c, v.NameID)
	})
	if err != nil {
		return err
	}
	v.Value, err = charData(el)
	return err
}

// signatureFields fills s the way encoding/xml fills an etree.Element,
// which has no XML mapping of its own: from child elements named after
// its exported fields (Space, Tag, Attr with Space, Key and Value; Child
// adds a nil token). Namespaces play no part below this point.
func signatureFields(el *etree.Element, s *etree.Element) error {
	for _, tok := range el.Child {
		c, ok := tok.(*etree.Element)
		if !ok {
			if err := checkToken(tok); err != nil {
				return err
			}
			continue
		}
		var err error
		switch c.Tag {
		case "Space":
			err = textOnly(c, &s.Space)
		case "Tag":
			err = textOnly(c, &s.Tag)
		case "Attr":
			var a etree.Attr
			err = attrFields(c, &a)
			s.Attr = append(s.Attr, a)
		case "Child":
			s.Child = append(s.Child, nil)
			err = skipTree(c)
		default:
			err = skipTree(c)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func attrFields(el *etree.Element, a *etree.Attr) error {
	for _, tok := range el.Child {
		c, ok := tok.(*etree.Element)
		if !ok {
			if err := checkToken(tok); err != nil {
				return err
			}
			continue
		}
		var err error
		switch c.Tag {
		case "Space":
			err = textOnly(c, &a.Space)
		case "Key":
			err = textOnly(c, &a.Key)
		case "Value":
			err = textOnly(c, &a.Value)
		default:
			err = skipTree(c)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// textOnly sets *v to el's character data, its child elements skipped.
func textOnly(el *etree.Element, v *string) error {
	if err := checkChildren(el); err != nil {
		return err
	}
	s, err := charData(el)
	if err != nil {
		return err
	}
	*v = s
	return nil
}

// checkChildren checks el's content, none of which is read.
func checkChildren(el *etree.Element) error {
	for _, tok := range el.Child {
		var err error
		if c, ok := tok.(*etree.Element); ok {
			err = skipTree(c)
		} else {
			err = checkToken(tok)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// skipTree checks el and everything below it, none of which is read:
// encoding/xml still reads every token of what it skips.
func skipTree(el *etree.Element) error {
	return checkChildren(el)
}

// checkToken fails where encoding/xml fails on a token other than an
// element as etree writes it, and refuses what this reader refuses.
func checkToken(tok etree.Token) error {
	switch t := tok.(type) {
	case *etree.CharData:
		if t.IsCData() && !validXMLText(t.Data) {
			return errors.New("CDATA section holds a character not allowed in XML")
		}
	case *etree.ProcInst:
		if t.Target == "" || t.Target == "xml" {
			return errTreeRefused
		}
	case *etree.Directive:
		return errTreeRefused
	}
	return nil
}

// charData is el's own character data as encoding/xml reads it back from
// etree's output: its text and CDATA sections in order, its children's
// left out. Adjacent text tokens are written as one run, in which CR LF
// and a lone CR become LF; each CDATA section is a run of its own.
func charData(el *etree.Element) (string, error) {
	switch len(el.Child) {
	case 0:
		return "", nil
	case 1:
		if t, ok := el.Child[0].(*etree.CharData); ok && !t.IsCData() {
			return cleanText(t.Data), nil
		}
	}
	var out, run strings.Builder
	flush := func() {
		out.WriteString(normalizeNewlines(run.String()))
		run.Reset()
	}
	for _, tok := range el.Child {
		t, ok := tok.(*etree.CharData)
		if ok && !t.IsCData() {
			run.WriteString(sanitizeText(t.Data))
			continue
		}
		flush()
		if ok {
			if !validXMLText(t.Data) {
				return "", errors.New("CDATA section holds a character not allowed in XML")
			}
			out.WriteString(normalizeNewlines(t.Data))
		}
	}
	flush()
	return out.String(), nil
}

// cleanText is s as encoding/xml reads it back from etree's escaped text
// or attribute value: sanitized, then with its line ends normalised.
func cleanText(s string) string {
	return normalizeNewlines(sanitizeText(s))
}

// sanitizeText replaces what etree's writer replaces by U+FFFD: a
// character outside XML's range and a byte that is not valid UTF-8.
func sanitizeText(s string) string {
	if plainText(s) {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		i += w
		if xmlChar(r) && !(r == utf8.RuneError && w == 1) {
			continue
		}
		b.WriteString(s[last : i-w])
		b.WriteRune(utf8.RuneError)
		last = i
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// plainText reports whether s is printable ASCII, tabs and newlines, which
// need no sanitizing.
func plainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// validXMLText reports whether s is valid UTF-8 of characters XML allows,
// as encoding/xml requires of every text it reads.
func validXMLText(s string) bool {
	if plainText(s) {
		return true
	}
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 || !xmlChar(r) {
			return false
		}
		i += w
	}
	return true
}

func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// normalizeNewlines turns CR LF and a lone CR into LF, as encoding/xml
// does in text and attribute values.
func normalizeNewlines(s string) string {
	if strings.IndexByte(s, '\r') < 0 {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}
