package ldapdir

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/provision"
)

// TestRDNValueEscapesEquals: a user or group name holding "=" (or any
// other character special in a DN) gives a DN in which it is escaped,
// which Active Directory takes, and which parses back to the name.
func TestRDNValueEscapesEquals(t *testing.T) {
	l := adLayout(t, nil)
	for _, name := range []string{"a=b", "=lead", "trail=", `x\=y`, "Finance, EMEA", "#hash", " space ", "a+b;c<d>e\"f", "ü=ö"} {
		u := provision.User{UserName: name}
		for _, dn := range []string{l.dn(&u), l.groupDN(name)} {
			d, err := ldap.ParseDN(dn)
			if err != nil {
				t.Errorf("%q: DN %q does not parse: %v", name, dn, err)
				continue
			}
			if got := d.RDNs[0].Attributes[0].Value; got != name {
				t.Errorf("%q: DN %q names %q", name, dn, got)
			}
			// The RDN's value runs from its first "=" to the first
			// unescaped ","; no "=" in it may stand unescaped.
			value := dn[strings.Index(dn, "=")+1:]
			for i := 0; i < len(value) && value[i] != ','; i++ {
				switch value[i] {
				case '\\':
					i++
				case '=':
					t.Errorf("%q: DN %q holds an unescaped '=' in its RDN value", name, dn)
				}
			}
		}
	}
}

// TestADGroupNameLimit: a group name longer than AD's 64 characters for
// cn is refused as invalid before anything is written (it was an outage
// on every login of the user).
func TestADGroupNameLimit(t *testing.T) {
	l := adLayout(t, nil)
	ok := []string{strings.Repeat("g", 64), strings.Repeat("é", 64)}
	bad := []string{strings.Repeat("g", 65), strings.Repeat("😀", 33)} // 66 UTF-16 units
	for _, g := range ok {
		if err := l.checkGroups([]string{"Staff", g}); err != nil {
			t.Errorf("group of %d characters refused: %v", utf8.RuneCountInString(g), err)
		}
	}
	for _, g := range bad {
		err := l.checkGroups([]string{"Staff", g})
		if !errors.Is(err, provision.ErrInvalid) || !strings.Contains(err.Error(), "64 characters") {
			t.Errorf("group of %d characters: %v, want an invalid-value refusal naming the limit", utf8.RuneCountInString(g), err)
		}
	}
	open := newOpenLDAPLayout(t)
	if err := open.checkGroups(bad); err != nil {
		t.Errorf("OpenLDAP has no such limit, got %v", err)
	}
	if err := l.checkAttr(attrSpec{name: "cn", rdn: true}, strings.Repeat("😀", 33)); !errors.Is(err, provision.ErrInvalid) {
		t.Errorf("a user cn of 66 UTF-16 units: %v, want refused", err)
	}
}

func newOpenLDAPLayout(t *testing.T) *layout {
	t.Helper()
	c := Config{URL: "ldap://127.0.0.1:389", BindDN: "cn=a,dc=x", BindPassword: "p", UserBase: "ou=p,dc=x", GroupBase: "ou=g,dc=x"}.WithDefaults()
	l, err := newLayout(c)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestADGroupSAMAlternative: the alternative logon name of a group whose
// own is held elsewhere in the domain is a valid sAMAccountName, differs
// from the first, and differs between names.
func TestADGroupSAMAlternative(t *testing.T) {
	seen := map[string]string{}
	for _, name := range []string{"Users", "alice", "Domain Admins", strings.Repeat("x", 40), strings.Repeat("x", 41), "a@b", "trail."} {
		alt := groupSAMAlternative(name)
		if alt == samAccountName(name) {
			t.Errorf("%q: alternative %q equals the first choice", name, alt)
		}
		if n := utf8.RuneCountInString(alt); n == 0 || n > 20 || strings.ContainsAny(alt, "\"/\\[]:;|=,+*?<>@ ") || strings.HasSuffix(alt, ".") {
			t.Errorf("%q: alternative %q is not a valid sAMAccountName", name, alt)
		}
		if prev, ok := seen[alt]; ok {
			t.Errorf("%q and %q share the alternative %q", name, prev, alt)
		}
		seen[alt] = name
	}
}

// TestADUPNHasNoSpaces: a user name with a space, or another character a
// logon name may not hold, gets a userPrincipalName without it; names
// that differ only there keep different UPNs; plain names are as before.
func TestADUPNHasNoSpaces(t *testing.T) {
	for in, want := range map[string]string{
		"alice":           "alice@corp.example",
		"alice@other.org": "alice@other.org",
		"o'brien":         "o'brien@corp.example",
	} {
		if got := upn(in, "corp.example"); got != want {
			t.Errorf("upn(%q) = %q, want %q", in, got, want)
		}
	}
	seen := map[string]string{}
	for _, in := range []string{"john smith", "john_smith", "john  smith", "a b@corp.example", "x,y", "tab\tname", "nb\u00a0sp", "a@b@c"} {
		got := upn(in, "corp.example")
		local, _, _ := strings.Cut(got, "@")
		if strings.ContainsFunc(got, unicode.IsSpace) || strings.ContainsAny(local, "\"/\\[]:;|=,+*?<>") || strings.Count(got, "@") != 1 {
			t.Errorf("upn(%q) = %q", in, got)
		}
		if prev, ok := seen[got]; ok {
			t.Errorf("upn(%q) = upn(%q) = %q", in, prev, got)
		}
		seen[got] = in
	}
}

// TestCAFileNamesTheRefusedCertificate: a CA file whose certificate Go
// refuses (Samba's self-made one has a negative serial number) is
// reported with the reason, not as a file without certificates.
func TestCAFileNamesTheRefusedCertificate(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x7e), Subject: pkix.Name{CommonName: "Samba CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	good := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The serial INTEGER 0x7e becomes 0xfe: -2.
	neg := bytes.Replace(der, []byte{0x02, 0x01, 0x7e}, []byte{0x02, 0x01, 0xfe}, 1)
	if bytes.Equal(neg, der) {
		t.Fatal("serial number not found in the certificate")
	}
	bad := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: neg})
	write := func(name string, data ...[]byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Join(data, nil), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := readCAFile(write("good.pem", good)); err != nil {
		t.Errorf("a good CA file: %v", err)
	}
	_, err = readCAFile(write("samba.pem", good, bad))
	if err == nil || !strings.Contains(err.Error(), "negative serial") || !strings.Contains(err.Error(), "PEM block 2") || strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("CA file with a negative serial: %v, want the certificate and reason named", err)
	}
	if _, err := readCAFile(write("empty.pem", []byte("not pem\n"))); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a file without PEM: %v", err)
	}
	c := adConfig()
	c.CAFile = filepath.Join(dir, "samba.pem")
	c.BindPasswordFile, c.BindPassword = "", "x"
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "ca_file") || !strings.Contains(err.Error(), "negative serial") {
		t.Errorf("New with that CA file: %v", err)
	}
}

// TestADBasesOfTheirOwn (red team R1): the domain's root and its built-in
// containers are refused as bases, and so is one base for users and
// groups; an OU anywhere is fine.
func TestADBasesOfTheirOwn(t *testing.T) {
	for _, tc := range []struct {
		users, groups, want string
	}{
		{"OU=People,DC=corp,DC=example", "OU=Groups,DC=corp,DC=example", ""},
		{"OU=People,DC=corp,DC=example", "DC=corp,DC=example", "group_base"},
		{"CN=Users,DC=corp,DC=example", "OU=Groups,DC=corp,DC=example", "user_base"},
		{"OU=People,DC=corp,DC=example", "cn=builtin,dc=corp,dc=example", "group_base"},
		{"OU=People,DC=corp,DC=example", "CN=Users,DC=corp,DC=example", "group_base"},
		{"OU=People,DC=corp,DC=example", "ou=people,dc=corp,dc=example", "the same as user_base"},
		{"CN=Users,OU=Branch,DC=corp,DC=example", "OU=Groups,DC=corp,DC=example", ""},
	} {
		c := adConfig()
		c.UserBase, c.GroupBase = tc.users, tc.groups
		err := c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("users %s groups %s: %v, want %q", tc.users, tc.groups, err, tc.want)
		}
	}
}

// TestADSecurityAttributesUnmappable (red team R1): attributes that name
// or place an AD object, or grant logons, delegation or sync identity,
// cannot be a mapping's target.
func TestADSecurityAttributesUnmappable(t *testing.T) {
	for _, attr := range []string{"altSecurityIdentities", "msDS-KeyCredentialLink", "mS-DS-ConsistencyGuid", "scriptPath",
		"msDS-AllowedToActOnBehalfOfOtherIdentity", "nTSecurityDescriptor", "proxyAddresses", "objectSid", "distinguishedName"} {
		c := adConfig()
		c.Attributes = map[string]string{"x": attr}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "must not set it") {
			t.Errorf("mapping to %s: %v, want refused", attr, err)
		}
	}
}

// TestADLogonNameNeverLooksLikeAComputer (red team R1): a user name
// ending in "$" gets no sAMAccountName ending in "$".
func TestADLogonNameNeverLooksLikeAComputer(t *testing.T) {
	for _, in := range []string{"svc$", "DC01$", "a$b"} {
		if got := samAccountName(in); strings.Contains(got, "$") {
			t.Errorf("samAccountName(%q) = %q", in, got)
		}
	}
}

// TestADPrimaryGroupRefusedWithoutASearch (red team R2): an account whose
// primaryGroupID is not Domain Users' is refused from its own attributes:
// AD's in-chain searches over member do not see a primary group.
func TestADPrimaryGroupRefusedWithoutASearch(t *testing.T) {
	s := &Store{l: adLayout(t, nil)} // no pool: a search would panic
	for _, rid := range []string{"512", "519", "1105"} {
		e := ldap.NewEntry("CN=x,OU=People,DC=corp,DC=example", map[string][]string{"primaryGroupID": {rid}})
		if err := s.checkUnprotected(context.Background(), e, "adopt"); !errors.Is(err, provision.ErrConflict) || !strings.Contains(err.Error(), "primary group") {
			t.Errorf("primary group %s: %v", rid, err)
		}
	}
	e := ldap.NewEntry("CN=x,OU=People,DC=corp,DC=example", map[string][]string{"adminCount": {"1"}, "primaryGroupID": {"513"}})
	if err := s.checkUnprotected(context.Background(), e, "adopt"); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("adminCount 1: %v", err)
	}
}
