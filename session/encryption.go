package session

import (
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"
)

// XML Encryption algorithms gatehouse accepts for an assertion: AES-GCM
// for the content, RSA-OAEP for its key. AES-CBC content only when the
// IdP's allow_cbc says so, and RSA PKCS #1 v1.5 key transport only when
// its allow_rsa1_5 does: an assertion in an unsigned Response is decrypted
// before its signature can be checked, so both are open to padding
// oracles. 3DES never.
const (
	nsXMLEnc     = "http://www.w3.org/2001/04/xmlenc#"
	algRSAOAEP   = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
	algRSAOAEP11 = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
	algRSA15     = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
	algAES128GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
	algAES192GCM = "http://www.w3.org/2009/xmlenc11#aes192-gcm"
	algAES256GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
	algAES128CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
	algAES192CBC = "http://www.w3.org/2001/04/xmlenc#aes192-cbc"
	algAES256CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
)

// contentAlgorithms are advertised in the SP metadata, strongest first.
var contentAlgorithms = []string{algAES256GCM, algAES128GCM, algAES256CBC, algAES128CBC}

// cbcContent are the AES-CBC content algorithms, refused unless allow_cbc.
var cbcContent = map[string]bool{algAES128CBC: true, algAES192CBC: true, algAES256CBC: true}

var acceptedContent = map[string]bool{algAES128GCM: true, algAES192GCM: true, algAES256GCM: true,
	algAES128CBC: true, algAES192CBC: true, algAES256CBC: true}

// encryption is an EncryptedAssertion as the pre-check found it.
type encryption struct {
	el            *etree.Element // the EncryptedAssertion
	data          *etree.Element // its EncryptedData
	key           *etree.Element // the EncryptedKey, a child of either
	dataAlg       string
	keyAlg        string
	keyInsideData bool
}

// inspectEncrypted checks an EncryptedAssertion's shape and algorithms.
func inspectEncrypted(ea *etree.Element) (*encryption, error) {
	var datas, keys []*etree.Element
	for _, c := range ea.ChildElements() {
		switch {
		case c.Tag == "EncryptedData" && c.NamespaceURI() == nsXMLEnc:
			datas = append(datas, c)
		case c.Tag == "EncryptedKey" && c.NamespaceURI() == nsXMLEnc:
			keys = append(keys, c)
		default:
			return nil, fmt.Errorf("encrypted assertion holds an unexpected %s element", c.Tag)
		}
	}
	if len(datas) != 1 {
		return nil, fmt.Errorf("encrypted assertion holds %d EncryptedData elements, want 1", len(datas))
	}
	enc := &encryption{el: ea, data: datas[0]}
	inner := datas[0].FindElements("./KeyInfo/EncryptedKey")
	switch {
	case len(keys)+len(inner) != 1:
		return nil, fmt.Errorf("encrypted assertion holds %d EncryptedKey elements, want 1", len(keys)+len(inner))
	case len(inner) == 1:
		enc.key, enc.keyInsideData = inner[0], true
	default:
		enc.key = keys[0]
	}
	enc.dataAlg = algorithm(enc.data)
	enc.keyAlg = algorithm(enc.key)
	if !acceptedContent[enc.dataAlg] {
		return nil, fmt.Errorf("assertion content encryption %s is not accepted (AES-GCM or AES-CBC)", quoted(enc.dataAlg))
	}
	if enc.keyAlg != algRSAOAEP && enc.keyAlg != algRSAOAEP11 && enc.keyAlg != algRSA15 {
		return nil, fmt.Errorf("assertion key transport %s is not accepted (RSA-OAEP)", quoted(enc.keyAlg))
	}
	return enc, nil
}

func algorithm(e *etree.Element) string {
	if m := e.SelectElement("EncryptionMethod"); m != nil {
		return m.SelectAttrValue("Algorithm", "")
	}
	return ""
}

var errNoDecryptionKey = errors.New("no SP encryption key decrypts the assertion")

// decrypt opens the assertion with the first SP key that can, and returns
// that key and the plaintext assertion element. The algorithms the IdP p
// has not opted in to are refused before any decryption.
func (m *Manager) decrypt(enc *encryption, p IdP) (*rsa.PrivateKey, *etree.Element, error) {
	if enc.keyAlg == algRSA15 && !p.AllowRSA15 {
		return nil, nil, errors.New("assertion key transported with RSA PKCS #1 v1.5, which is refused (the IdP's allow_rsa1_5 turns it on)")
	}
	if cbcContent[enc.dataAlg] && !p.AllowCBC {
		return nil, nil, errors.New("assertion encrypted with AES-CBC, which is refused (the IdP's allow_cbc turns it on; AES-GCM needs nothing)")
	}
	keys := m.decryptionKeys()
	if len(keys) == 0 {
		return nil, nil, errors.New("the assertion is encrypted, and the SP has no encryption key (sp_key_file or sp_keys)")
	}
	registerDecrypters()
	for _, k := range keys {
		// Try the key on the EncryptedKey first: a wrong key fails there.
		sym, err := xmlenc.Decrypt(k, enc.key)
		if err != nil {
			continue
		}
		var plain []byte
		if enc.keyInsideData {
			plain, err = xmlenc.Decrypt(k, enc.data) // the content decrypter opens its KeyInfo itself
		} else {
			plain, err = xmlenc.Decrypt(sym, enc.data)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("decrypt assertion: %w", err)
		}
		a, err := parsePlainAssertion(plain)
		if err != nil {
			return nil, nil, err
		}
		return k, a, nil
	}
	return nil, nil, errNoDecryptionKey
}

// parsePlainAssertion reads a decrypted assertion with the rules of the
// pre-check: no DTD, comments or processing instructions, and one SAML
// Assertion element as the root.
func parsePlainAssertion(b []byte) (*etree.Element, error) {
	d, err := readXML(b, responseLimits)
	if err != nil {
		return nil, fmt.Errorf("decrypted assertion: %w", err)
	}
	root := d.Root()
	if root.Tag != "Assertion" || root.NamespaceURI() != nsAssertion {
		return nil, errors.New("decrypted content is not a SAML Assertion")
	}
	var bad error
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		for _, tok := range e.Child {
			switch t := tok.(type) {
			case *etree.Comment, *etree.ProcInst, *etree.Directive:
				bad = errors.New("decrypted assertion holds comments, directives or processing instructions")
			case *etree.Element:
				if t.Tag == "Assertion" || t.Tag == "EncryptedAssertion" {
					bad = errors.New("decrypted assertion holds another assertion")
				}
				walk(t)
			}
		}
	}
	walk(root)
	return root, bad
}

// registerDecrypters adds AES-192-GCM and AES-256-GCM to crewjam/saml's
// XML Encryption, which ships AES-128-GCM only.
var registerDecrypters = sync.OnceFunc(func() {
	xmlenc.RegisterDecrypter(gcm{alg: algAES192GCM, size: 24})
	xmlenc.RegisterDecrypter(gcm{alg: algAES256GCM, size: 32})
})

// gcm decrypts xmlenc11 AES-GCM content: the cipher value is the 12-byte
// IV, the ciphertext and the 16-byte tag.
type gcm struct {
	alg  string
	size int
}

func (g gcm) Algorithm() string { return g.alg }

func (g gcm) Decrypt(key any, el *etree.Element) ([]byte, error) {
	if ek := el.FindElement("./KeyInfo/EncryptedKey"); ek != nil {
		var err error
		if key, err = xmlenc.Decrypt(key, ek); err != nil {
			return nil, err
		}
	}
	k, ok := key.([]byte)
	if !ok || len(k) != g.size {
		return nil, fmt.Errorf("%s needs a %d-byte key", g.alg, g.size)
	}
	cv := el.FindElement("./CipherData/CipherValue")
	if cv == nil {
		return nil, errors.New("no CipherData/CipherValue")
	}
	ct, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(cv.Text()), ""))
	if err != nil {
		return nil, fmt.Errorf("cipher value: %w", err)
	}
	aead, err := newGCM(k)
	if err != nil {
		return nil, err
	}
	if len(ct) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("cipher value too short")
	}
	return aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], nil)
}
