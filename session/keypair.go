package session

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
)

// LoadKeyPairs reads and parses the SP key pairs the config names
// (sp_key_file with sp_cert_file, then each of sp_keys) and keeps them
// in KeyPair and Keys[i].Pair, where New takes them: New itself reads no
// file. read reads one file; the caller chooses how (cmd reads them as
// it reads every secret). Each problem names its key path, as
// "sp_keys[1].key_file: ...", one per bad file; no message quotes a
// file's content. A pair with one of its paths missing is left to
// Validate.
func (c *Config) LoadKeyPairs(read func(path string) ([]byte, error)) []error {
	var errs []error
	load := func(key, keyFile, certKey, certFile string) *tls.Certificate {
		if keyFile == "" || certFile == "" {
			return nil
		}
		fail := func(k string, err error) { errs = append(errs, fmt.Errorf("%s: %w", k, err)) }
		var leaf *x509.Certificate
		var chain [][]byte
		if b, err := read(certFile); err != nil {
			fail(certKey, err)
		} else if chain, leaf, err = parseCertPEM(b); err != nil {
			fail(certKey, fmt.Errorf("%s: %w", certFile, err))
		}
		var priv *rsa.PrivateKey
		if b, err := read(keyFile); err != nil {
			fail(key, err)
		} else if priv, err = parseKeyPEM(b); err != nil {
			fail(key, fmt.Errorf("%s: %w", keyFile, err))
		}
		if leaf == nil || priv == nil {
			return nil
		}
		if pub, ok := leaf.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&priv.PublicKey) {
			fail(key, fmt.Errorf("%s: the private key does not match the certificate of %s (%s)", keyFile, certKey, certFile))
			return nil
		}
		return &tls.Certificate{Certificate: chain, PrivateKey: priv, Leaf: leaf}
	}
	c.KeyPair = load("sp_key_file", c.KeyFile, "sp_cert_file", c.CertFile)
	// A copy: the caller's slice keeps what it had.
	c.Keys = slices.Clone(c.Keys)
	for i := range c.Keys {
		k := &c.Keys[i]
		prefix := fmt.Sprintf("sp_keys[%d].", i)
		k.Pair = load(prefix+"key_file", k.KeyFile, prefix+"cert_file", k.CertFile)
	}
	return errs
}

// parseCertPEM returns the DER of every CERTIFICATE block of a PEM file
// (the SP's certificate first, then any chain) and the first parsed.
func parseCertPEM(b []byte) ([][]byte, *x509.Certificate, error) {
	var chain [][]byte
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			chain = append(chain, blk.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, nil, errors.New("no PEM certificate (-----BEGIN CERTIFICATE-----) in it")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, nil, fmt.Errorf("not a valid certificate: %w", err)
	}
	return chain, leaf, nil
}

// errNotRSA says why only RSA keys do.
var errNotRSA = errors.New("an RSA key is needed (SAML signing with RSA-SHA256, assertion keys with RSA-OAEP)")

// parseKeyPEM returns the RSA private key of a PEM file: the first
// private key block, PKCS #1 or PKCS #8, unencrypted. Parser errors are
// not passed on: they describe the key's bytes.
func parseKeyPEM(b []byte) (*rsa.PrivateKey, error) {
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		switch {
		case blk.Type == "ENCRYPTED PRIVATE KEY" || blk.Headers["Proc-Type"] != "":
			return nil, errors.New("the private key is encrypted: gatehouse reads an unencrypted key (protect the file instead)")
		case blk.Type == "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
			if err != nil {
				return nil, errors.New("not a valid PKCS #1 RSA private key")
			}
			return k, nil
		case blk.Type == "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, errors.New("not a valid PKCS #8 private key")
			}
			switch k := k.(type) {
			case *rsa.PrivateKey:
				return k, nil
			case *ecdsa.PrivateKey:
				return nil, fmt.Errorf("an EC key: %w", errNotRSA)
			case ed25519.PrivateKey:
				return nil, fmt.Errorf("an Ed25519 key: %w", errNotRSA)
			}
			return nil, errNotRSA
		case blk.Type == "EC PRIVATE KEY":
			return nil, fmt.Errorf("an EC key: %w", errNotRSA)
		case blk.Type == "OPENSSH PRIVATE KEY":
			return nil, errors.New("an OpenSSH key: convert it to PEM (PKCS #8 or PKCS #1)")
		}
	}
	return nil, errors.New("no PEM private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----) in it")
}
