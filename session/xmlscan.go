package session

import (
	"bytes"
	"errors"
	"fmt"
)

// xmlLimits bound what one XML document from outside may contain. They
// are enforced by scanXML, a single pass over the bytes that builds
// nothing, before any validator or tree sees the document.
type xmlLimits struct {
	name        string // what the document is, for errors
	maxBytes    int
	maxElements int
	maxDepth    int
	maxAttrs    int // attributes (namespace declarations included) on one element
	// maxInScope bounds the namespace declarations in scope at any
	// element: its own and its ancestors'. goxmldsig copies the prefixes
	// in scope at every element it walks, so this is what makes its work
	// on a small document small.
	maxInScope int
	// maxAllAttrs, when set, bounds the attributes of the whole document:
	// canonicalisation works on every one of them (and on the namespace
	// each prefixed one needs) before a digest can be compared.
	maxAllAttrs int
	// maxOther, when set, bounds the elements that are not attribute
	// values (AttributeValue in Attribute in AttributeStatement): the
	// only element a real message holds by the thousand.
	maxOther int
	// maxOdd bounds the tokens with unusual names or characters, which
	// the round-trip check judges one by one (see buildTree).
	maxOdd int
	// comments admits comments and processing instructions (metadata);
	// SAML messages may hold neither.
	comments bool
}

// The limits of each kind of document gatehouse reads. They are sized to
// real messages, with room:
//
//   - a Response of a user in 10,000 groups (provision's bound) is 1 to
//     1.5 MB (an AttributeValue is 70-150 bytes, more with long DN-style
//     group names) and 10,100 elements; a typical one is 5-15 KB and
//     under 100 elements. SAML
//     nests about 8 deep (Response, Assertion, AttributeStatement,
//     Attribute, AttributeValue, with structured values a few more;
//     EncryptedAssertion, EncryptedData, KeyInfo, EncryptedKey,
//     CipherData, CipherValue), and an element carries a dozen
//     attributes and namespace declarations at most. Fewer than 20
//     declarations are in scope anywhere, even from IdPs that declare
//     the default namespace again on every element.
//   - a LogoutRequest or LogoutResponse is 1-6 KB (the larger ones signed
//     in the XML, with the certificate) and about 20 elements.
//   - metadata: a federation aggregate (eduGAIN, InCommon) runs to tens of
//     megabytes and hundreds of thousands of elements.
//
// Comments, processing instructions and CDATA sections count as elements
// (each is a token every later reader pays for), and a SAML message may
// hold no comment or processing instruction at all but the XML
// declaration: the pre-check refuses them later anyway, and refusing them
// here keeps a document of a million empty comments from ever reaching a
// parser. A response may hold thousands of elements only as attribute
// values (a user's groups); everything else is bounded by maxOther, so a
// small body of many empty elements is refused by this scan.
var (
	responseLimits = xmlLimits{name: "SAML response", maxBytes: 2 << 20, maxElements: 12_000, maxDepth: 32, maxAttrs: 32,
		maxInScope: 40, maxAllAttrs: 48_000, maxOther: 1_000, maxOdd: 64}
	sloLimits      = xmlLimits{name: "logout message", maxBytes: 32 << 10, maxElements: 200, maxDepth: 16, maxAttrs: 32, maxInScope: 40, maxOdd: 16}
	metadataLimits = xmlLimits{name: "metadata", maxBytes: maxMetadataBytes, maxElements: 4_000_000, maxDepth: 64, maxAttrs: 64,
		maxInScope: 128, maxOdd: 100_000, comments: true}
)

// errXMLLimit is wrapped by every refusal of scanXML for a limit, so the
// caller can give it its own reason.
var errXMLLimit = errors.New("beyond the limits for this message")

var errDoctype = errors.New("document type declarations, entities and other directives are not accepted")

// scanXML walks the bytes once and refuses a document that is larger,
// holds more elements, nests deeper or carries more attributes on one
// element than lim allows, or that holds a DTD, an entity declaration or
// any other <! directive than a comment or CDATA section. It is a filter,
// not a parser: it only needs to agree with encoding/xml on well-formed
// input, because the strict parser that runs next stops at the first
// malformed byte, before anything the scan could have missed.
func scanXML(b []byte, lim xmlLimits) error {
	return scan(b, lim, false)
}

// scanXMLHead is scanXML on the first bytes of a document: running out of
// input inside markup is not an error.
func scanXMLHead(b []byte, lim xmlLimits) error {
	return scan(b, lim, true)
}

var errNotXML = errors.New("not an XML document")

func scan(b []byte, lim xmlLimits, head bool) error {
	if len(b) > lim.maxBytes {
		return fmt.Errorf("%s larger than %d bytes: %w", lim.name, lim.maxBytes, errXMLLimit)
	}
	if rest := bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n"); len(rest) > 0 && rest[0] != '<' || len(rest) == 0 && !head {
		return errNotXML
	}
	elements, depth, other, inScope, allAttrs := 0, 0, 0, 0, 0
	var stack [][]byte // local names of the open elements, when maxOther is set
	var decls []int    // the namespace declarations of each open element
	node := func() error {
		if elements++; elements > lim.maxElements {
			return fmt.Errorf("%s holds more than %d elements: %w", lim.name, lim.maxElements, errXMLLimit)
		}
		return nil
	}
	for i := 0; i < len(b); {
		lt := bytes.IndexByte(b[i:], '<')
		if lt < 0 {
			break
		}
		i += lt + 1
		if i >= len(b) {
			if head {
				return nil
			}
			return errTruncated
		}
		var err error
		switch b[i] {
		case '?':
			if !lim.comments && !(elements == 0 && depth == 0 && bytes.HasPrefix(b[i:], []byte("?xml")) && len(b) > i+4 && isXMLSpace(b[i+4])) {
				return errMarkup
			}
			if err = node(); err == nil {
				i, err = skipPast(b, i, "?>")
			}
		case '!':
			switch {
			case head && len(b)-i < 8 && (bytes.HasPrefix([]byte("![CDATA["), b[i:]) || bytes.HasPrefix([]byte("!--"), b[i:])):
				return nil // cut off before it says what it is
			case bytes.HasPrefix(b[i:], []byte("!--")):
				if !lim.comments {
					return errMarkup
				}
				if err = node(); err == nil {
					i, err = skipPast(b, i+3, "-->")
				}
			case bytes.HasPrefix(b[i:], []byte("![CDATA[")):
				if err = node(); err == nil {
					i, err = skipPast(b, i+8, "]]>")
				}
			default:
				return errDoctype
			}
		case '/':
			if depth--; depth < 0 {
				return errors.New("malformed XML: end tag without a start tag")
			}
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			if n := len(decls); n > 0 {
				inScope -= decls[n-1]
				decls = decls[:n-1]
			}
			i, err = skipPast(b, i, ">")
		default:
			if err := node(); err != nil {
				return err
			}
			if depth+1 > lim.maxDepth {
				return fmt.Errorf("%s nests deeper than %d elements: %w", lim.name, lim.maxDepth, errXMLLimit)
			}
			if lim.maxOther > 0 {
				local := localName(b[i:])
				if !attributeValue(stack, local) {
					if other++; other > lim.maxOther {
						return fmt.Errorf("%s holds more than %d elements besides attribute values: %w", lim.name, lim.maxOther, errXMLLimit)
					}
				}
				stack = append(stack, local)
			}
			var selfClosing bool
			var attrs, ns int
			i, selfClosing, attrs, ns, err = scanStartTag(b, i, lim)
			if err == nil && inScope+ns > lim.maxInScope {
				err = fmt.Errorf("%s has more than %d namespace declarations in scope at one element: %w", lim.name, lim.maxInScope, errXMLLimit)
			}
			if allAttrs += attrs; err == nil && lim.maxAllAttrs > 0 && allAttrs > lim.maxAllAttrs {
				err = fmt.Errorf("%s holds more than %d attributes: %w", lim.name, lim.maxAllAttrs, errXMLLimit)
			}
			if !selfClosing {
				depth++
				decls = append(decls, ns)
				inScope += ns
			} else if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
		if err != nil {
			if head && errors.Is(err, errTruncated) {
				return nil
			}
			return err
		}
	}
	return nil
}

// errMarkup refuses a comment or processing instruction in a SAML
// message.
var errMarkup = errors.New("comments and processing instructions are not accepted")

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// localName is the local part of the element name that b starts with.
func localName(b []byte) []byte {
	end := bytes.IndexAny(b, " \t\r\n/>")
	if end < 0 {
		end = len(b)
	}
	name := b[:end]
	if c := bytes.IndexByte(name, ':'); c >= 0 {
		name = name[c+1:]
	}
	return name
}

// attributeValue reports whether an element named local, under the open
// elements stack, is an attribute value: AttributeValue in Attribute in
// AttributeStatement.
func attributeValue(stack [][]byte, local []byte) bool {
	n := len(stack)
	return n >= 2 && string(local) == "AttributeValue" && string(stack[n-1]) == "Attribute" && string(stack[n-2]) == "AttributeStatement"
}

// errTruncated is markup cut off by the end of the input.
var errTruncated = errors.New("malformed XML: unterminated markup")

// skipPast returns the index just after the first end at or after i.
func skipPast(b []byte, i int, end string) (int, error) {
	n := bytes.Index(b[i:], []byte(end))
	if n < 0 {
		return 0, errTruncated
	}
	return i + n + len(end), nil
}

// scanStartTag reads a start tag from just after its '<' to just after
// its '>', counting attributes (each '=' outside a quoted value) and
// namespace declarations among them, and honouring quotes, in which '>'
// may appear.
func scanStartTag(b []byte, i int, lim xmlLimits) (next int, selfClosing bool, attrs, decls int, err error) {
	var quote byte
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '=':
			if attrs++; attrs > lim.maxAttrs {
				return 0, false, 0, 0, fmt.Errorf("%s has an element with more than %d attributes: %w", lim.name, lim.maxAttrs, errXMLLimit)
			}
			if nsDeclName(attrNameBefore(b, i)) {
				decls++
			}
		case c == '>':
			return i + 1, b[i-1] == '/', attrs, decls, nil
		}
	}
	return 0, false, 0, 0, errTruncated
}

// attrNameBefore is the name an '=' at b[eq] follows (white space allowed
// between them, as XML does).
func attrNameBefore(b []byte, eq int) []byte {
	end := eq
	for end > 0 && isXMLSpace(b[end-1]) {
		end--
	}
	start := end
	for start > 0 && !isXMLSpace(b[start-1]) && b[start-1] != '<' && b[start-1] != '"' && b[start-1] != '\'' {
		start--
	}
	return b[start:end]
}

// nsDeclName reports whether an attribute name declares a namespace:
// xmlns, or xmlns:prefix.
func nsDeclName(name []byte) bool {
	return bytes.HasPrefix(name, []byte("xmlns")) && (len(name) == 5 || name[5] == ':')
}
