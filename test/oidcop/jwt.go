package oidcop

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// JWTParts decodes a compact JWS's header and payload (numbers kept as
// json.Number) and returns its signature segment as it is. It checks
// nothing.
func JWTParts(token string) (header, payload map[string]any, sig string, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, "", fmt.Errorf("oidcop: a compact JWS has 3 parts, not %d", len(parts))
	}
	if header, err = decodeSegment(parts[0]); err != nil {
		return nil, nil, "", fmt.Errorf("oidcop: JWT header: %w", err)
	}
	if payload, err = decodeSegment(parts[1]); err != nil {
		return nil, nil, "", fmt.Errorf("oidcop: JWT payload: %w", err)
	}
	return header, payload, parts[2], nil
}

func decodeSegment(seg string) (map[string]any, error) {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

func encodeSegment(m map[string]any) (string, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// EditJWT decodes token, lets edit change its header and payload, and
// encodes it again, with the original signature when keepSig (which then
// no longer matches) or with an empty signature segment (as alg "none"
// has).
func EditJWT(token string, edit func(header, payload map[string]any), keepSig bool) (string, error) {
	header, payload, sig, err := JWTParts(token)
	if err != nil {
		return "", err
	}
	edit(header, payload)
	h, err := encodeSegment(header)
	if err != nil {
		return "", fmt.Errorf("oidcop: JWT header: %w", err)
	}
	pl, err := encodeSegment(payload)
	if err != nil {
		return "", fmt.Errorf("oidcop: JWT payload: %w", err)
	}
	if !keepSig {
		sig = ""
	}
	return h + "." + pl + "." + sig, nil
}

// AlgNone turns token into an unsecured JWT: header alg "none", no
// signature.
func AlgNone(token string) (string, error) {
	return EditJWT(token, func(h, _ map[string]any) { h["alg"] = "none"; delete(h, "kid") }, false)
}

// TamperIDToken makes every token endpoint response carry an ID token
// changed by edit (keepSig as in EditJWT). Tamper(nil) ends it.
func (p *Provider) TamperIDToken(edit func(header, payload map[string]any), keepSig bool) {
	p.Tamper(func(r *http.Request, status int, _ http.Header, body []byte) []byte {
		if r.URL.Path != "/token" || status != http.StatusOK {
			return body
		}
		out, err := EditTokenResponse(body, func(idToken string) (string, error) {
			return EditJWT(idToken, edit, keepSig)
		})
		if err != nil {
			return body
		}
		return out
	})
}

// EditTokenResponse replaces the id_token of a token endpoint response
// body with what edit makes of it; the other members stay as they were.
func EditTokenResponse(body []byte, edit func(idToken string) (string, error)) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("oidcop: token response: %w", err)
	}
	var idToken string
	if err := json.Unmarshal(m["id_token"], &idToken); err != nil {
		return nil, fmt.Errorf("oidcop: token response has no id_token: %w", err)
	}
	changed, err := edit(idToken)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(changed)
	if err != nil {
		return nil, err
	}
	m["id_token"] = raw
	return json.Marshal(m)
}
