package session

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

func testSigner(t *testing.T) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert
}

// signedDoc is a document whose root is signed by key; keyName replaces
// the signature's certificate with a KeyName, as IdPs that sign without
// embedding their certificate do.
func signedDoc(t *testing.T, key *rsa.PrivateKey, cert *x509.Certificate, keyName bool) *etree.Document {
	t.Helper()
	el := etree.NewElement("samlp:Response")
	el.CreateAttr("xmlns:samlp", nsProtocol)
	el.CreateAttr("xmlns:saml", nsAssertion)
	el.CreateAttr("ID", "_r1")
	el.CreateElement("saml:Issuer").SetText("https://idp.example.test")
	ctx, err := dsig.NewSigningContext(key, [][]byte{cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(signed)
	b, _ := doc.WriteToBytes()
	d, err := buildTree(b, 10)
	if err != nil {
		t.Fatal(err)
	}
	if keyName {
		ki := d.Root().FindElement("./Signature/KeyInfo")
		for _, c := range ki.ChildElements() {
			ki.RemoveChild(c)
		}
		ki.CreateElement("ds:KeyName").SetText("idp")
	}
	return d
}

// TestVerifyLeavesTheTreeAlone: verifying a signature never changes the
// tree it was given, whether detach copied it or not, also when a
// signature without a certificate has its KeyInfo dropped to be tried
// against each configured certificate in turn.
func TestVerifyLeavesTheTreeAlone(t *testing.T) {
	key, cert := testSigner(t)
	_, other := testSigner(t)
	for _, keyName := range []bool{false, true} {
		d := signedDoc(t, key, cert, keyName)
		before, _ := d.WriteToString()
		if _, own := detachShared(d.Root()); own {
			t.Fatal("the root of a document was copied: nothing above it declares a namespace")
		}
		v, err := new(Manager).verifySignatureAt(d.Root(), []*x509.Certificate{other, cert}, time.Now())
		if err != nil {
			t.Fatalf("keyName=%v: %v", keyName, err)
		}
		if v.SelectAttrValue("ID", "") != "_r1" {
			t.Fatalf("keyName=%v: verified element is %s", keyName, v.Tag)
		}
		if after, _ := d.WriteToString(); after != before {
			t.Fatalf("keyName=%v: the tree changed:\n%s\n%s", keyName, before, after)
		}
		if _, err := new(Manager).verifySignatureAt(d.Root(), []*x509.Certificate{other}, time.Now()); err == nil {
			t.Fatalf("keyName=%v: verified against another certificate", keyName)
		}
	}
}

// TestDetachCarriesNamespaces: a child detached from its document
// carries the declarations of its ancestors it does not make itself,
// and is a copy; the original keeps its place.
func TestDetachCarriesNamespaces(t *testing.T) {
	d, err := buildTree([]byte(`<p:a xmlns:p="urn:p" xmlns:q="urn:q"><q:b xmlns:p="urn:other"><c/></q:b></p:a>`), 10)
	if err != nil {
		t.Fatal(err)
	}
	b := d.Root().ChildElements()[0]
	c, own := detachShared(b)
	if !own || c == b || c.Parent() != nil || b.Parent() != d.Root() {
		t.Fatal("a child with namespaces in scope was not copied out")
	}
	if c.SelectAttrValue("xmlns:q", "") != "urn:q" || c.SelectAttrValue("xmlns:p", "") != "urn:other" {
		t.Fatalf("declarations: %v", c.Attr)
	}
	if c.NamespaceURI() != "urn:q" {
		t.Fatalf("detached element's namespace %q", c.NamespaceURI())
	}
	if e := detach(d.Root()); e == d.Root() {
		t.Fatal("detach did not copy")
	}
}
