package session

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// The ACS reads its form itself instead of with Request.ParseForm, which
// decodes every byte of every parameter before the login state can be
// looked up (about 14 ms of CPU for the largest body the ACS admits).
// readACSForm only finds the two parameters; the SAMLResponse is decoded
// later, and its head first, so that a hostile body costs little.

// acsForm is the ACS POST: RelayState decoded, SAMLResponse still
// form-encoded.
type acsForm struct {
	relay    string
	response []byte
}

// errFormTooLarge is a body beyond maxFormBytes.
var errFormTooLarge = errors.New("form too large")

// readACSForm reads an application/x-www-form-urlencoded body of at most
// maxFormBytes and returns the first RelayState and SAMLResponse in it.
func readACSForm(w http.ResponseWriter, r *http.Request) (acsForm, error) {
	var f acsForm
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/x-www-form-urlencoded" {
		return f, errors.New("not a form (Content-Type)")
	}
	if r.ContentLength > maxFormBytes {
		return f, errFormTooLarge
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, maxFormBytes), r.ContentLength)
	if err != nil {
		if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
			return f, errFormTooLarge
		}
		return f, fmt.Errorf("read form: %w", err)
	}
	relaySeen := false
	for len(body) > 0 {
		var kv []byte
		kv, body, _ = bytes.Cut(body, []byte{'&'})
		k, v, _ := bytes.Cut(kv, []byte{'='})
		switch string(k) { // the two names need no unescaping in practice
		case "SAMLResponse":
			if f.response == nil {
				f.response = v
			}
		case "RelayState":
			if !relaySeen && len(v) <= 3*maxRelayState {
				relay, err := formUnescape(v, -1, false)
				if err != nil {
					return f, err
				}
				f.relay, relaySeen = string(relay), true
			}
		}
	}
	return f, nil
}

// readBody reads a body of the declared length into one buffer of that
// size (io.ReadAll would grow and copy it a dozen times), or of unknown
// length with io.ReadAll.
func readBody(body io.Reader, length int64) ([]byte, error) {
	if length <= 0 {
		return io.ReadAll(body)
	}
	buf := make([]byte, length)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	if n, err := body.Read(make([]byte, 1)); n > 0 || err != io.EOF {
		return nil, errors.New("read form: body longer than its Content-Length")
	}
	return buf, nil
}

// maxRelayState is SAML's bound on RelayState (bindings §3.5.3).
const maxRelayState = 80

// formUnescape decodes a form-encoded value ('+' a space, %XX a byte),
// keeping at most max output bytes (max < 0: all), and with dropSpace
// leaving out white space (base64 that an IdP wrapped into lines).
func formUnescape(v []byte, max int, dropSpace bool) ([]byte, error) {
	n := len(v)
	if max >= 0 && max < n {
		n = max
	}
	out := make([]byte, 0, n)
	for i := 0; i < len(v) && (max < 0 || len(out) < max); i++ {
		c := v[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(v) || unhex(v[i+1]) < 0 || unhex(v[i+2]) < 0 {
				return nil, errors.New("form: bad percent-encoding")
			}
			c = byte(unhex(v[i+1])<<4 | unhex(v[i+2]))
			i += 2
		}
		if dropSpace && (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// headChars is how much of the base64 SAMLResponse is decoded and scanned
// before the rest: 48 KiB of XML, where every hostile shape but one padded
// to look like a real response shows itself.
const headChars = 64 << 10

// decodeResponse decodes the form-encoded base64 SAMLResponse: first its
// head, which must scan clean (scanXMLHead), then the whole, which must
// fit responseLimits.
func decodeResponse(raw []byte) ([]byte, string, error) {
	head, err := formUnescape(raw, headChars, true)
	if err != nil {
		return nil, "form", err
	}
	whole := len(head) < headChars // the head is all there is
	if !whole {
		dec := make([]byte, base64.StdEncoding.DecodedLen(len(head)))
		n, err := base64.StdEncoding.Decode(dec, head)
		if err != nil {
			return nil, "encoding", fmt.Errorf("SAMLResponse is not base64: %w", err)
		}
		if err := scanXMLHead(dec[:n], responseLimits); err != nil {
			if errors.Is(err, errXMLLimit) {
				return nil, "size", err
			}
			return nil, "structure", err
		}
	}
	enc := head
	if !whole {
		if enc, err = formUnescape(raw, -1, true); err != nil {
			return nil, "form", err
		}
	}
	if base64.StdEncoding.DecodedLen(len(enc)) > responseLimits.maxBytes+2 {
		return nil, "size", fmt.Errorf("response larger than %d bytes: %w", responseLimits.maxBytes, errXMLLimit)
	}
	doc := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
	n, err := base64.StdEncoding.Decode(doc, enc)
	if err != nil {
		return nil, "encoding", fmt.Errorf("SAMLResponse is not base64: %w", err)
	}
	return doc[:n], "", nil
}
