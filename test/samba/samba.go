// Package samba starts a real Samba Active Directory domain controller for
// tests: Debian's samba, provisioned from scratch in a temporary directory
// (realm GATEHOUSE.TEST), serving only LDAP on 127.0.0.1, with StartTLS and
// LDAPS from a throwaway CA, and a provisioning service account that is no
// domain admin and holds rights below the tenant OUs only.
//
// Samba always listens on the ports 389, 636, 3268 and 3269, so one DC runs
// on a machine at a time: a lock file in os.TempDir() makes test processes
// (the packages of `go test ./...`) take turns, and a DC does not start
// while another directory holds one of those ports.
//
// A test that needs Samba fails when it cannot start; it never skips.
// `make test` installs the Debian packages samba, samba-ad-provision,
// samba-ad-dc, samba-dsdb-modules and ldb-tools.
package samba

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"
)

// Fixed names of the test domain.
const (
	Realm         = "GATEHOUSE.TEST"
	Domain        = "GATEHOUSE"
	BaseDN        = "DC=gatehouse,DC=test"
	AdminDN       = "CN=Administrator,CN=Users," + BaseDN
	AdminPassword = "Gatehouse-Admin-1"
	// BindDN is the provisioning service account: an ordinary user with
	// rights delegated on TenantsDN's subtree (see Delegation).
	BindDN       = "CN=gatehouse-svc,CN=Users," + BaseDN
	BindPassword = "Gatehouse-Svc-1"
	// TenantsDN holds the OUs that NewTenant creates.
	TenantsDN = "OU=Tenants," + BaseDN
	// HostName is the DC's host name; its certificate names it too.
	HostName = "gatehousedc"
	// LockName is the lock file in os.TempDir() that DCs take turns on.
	LockName = "gatehouse-samba-ad.lock"
)

// Ports are the TCP ports on 127.0.0.1 that Samba listens on: LDAP,
// LDAPS, and the global catalog without and with TLS.
var Ports = []int{389, 636, 3268, 3269}

// lockWait is how long New waits for another process's DC to stop.
const lockWait = 5 * time.Minute

// GUIDs of the schema classes and the extended right the service
// account is delegated.
const (
	classUser      = "bf967aba-0de6-11d0-a285-00aa003049e2"
	classGroup     = "bf967a9c-0de6-11d0-a285-00aa003049e2"
	classContainer = "bf967a8b-0de6-11d0-a285-00aa003049e2"
	rightResetPwd  = "00299570-246d-11d0-a768-00aa006e0529"
)

// Delegation returns the ACEs, in SDDL, that are added to TenantsDN's
// security descriptor for the service account whose SID is sid. All of
// them are inherited by every object below (CI): create and delete child
// user, group and container objects (CC, DC); on inherited user, group
// and container objects (IO, inherited object type): read and write all
// properties, list, read the security descriptor, delete (RP WP LC LO RC
// SD); on users, the extended right to reset passwords (CR).
func Delegation(sid string) string {
	var b strings.Builder
	for _, class := range []string{classUser, classGroup, classContainer} {
		fmt.Fprintf(&b, "(OA;CI;CCDC;%s;;%s)", class, sid)
	}
	for _, class := range []string{classUser, classGroup, classContainer} {
		fmt.Fprintf(&b, "(OA;CIIO;RPWPLCLORCSD;;%s;%s)", class, sid)
	}
	fmt.Fprintf(&b, "(OA;CIIO;CR;%s;%s;%s)", rightResetPwd, classUser, sid)
	return b.String()
}

// Server is one running Samba AD DC.
type Server struct {
	// URL is ldap://127.0.0.1:389 (StartTLS available); TLSURL is
	// ldaps://127.0.0.1:636.
	URL, TLSURL string
	// CAFile holds the PEM certificate that signed the server's.
	CAFile string
	CAPool *x509.CertPool
	// ProvisionTime and StartTime are how long samba-tool's provisioning
	// and samba's start (until an LDAPS bind succeeded) took; SetupTime
	// covers the service account and its delegation.
	ProvisionTime, StartTime, SetupTime time.Duration

	dir     string
	bin     string
	tool    string
	lock    *os.File
	mu      sync.Mutex
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	exited  chan struct{}
	tenants atomic.Int64
}

// Start starts a Samba AD DC in a temporary directory and stops it when
// the test ends. It fails the test when Samba cannot start.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// New provisions a domain in dir, which must be empty, and starts its DC.
// It waits for the machine's lock (LockName) first and holds it until
// Stop. The caller stops the server.
func New(dir string) (*Server, error) {
	s := &Server{dir: dir, URL: "ldap://127.0.0.1:389", TLSURL: "ldaps://127.0.0.1:636"}
	var err error
	if s.bin, err = lookPath("samba", "/usr/sbin/samba"); err != nil {
		return nil, err
	}
	if s.tool, err = lookPath("samba-tool", "/usr/bin/samba-tool"); err != nil {
		return nil, err
	}
	if s.lock, err = lockFile(filepath.Join(os.TempDir(), LockName), lockWait); err != nil {
		return nil, err
	}
	if err := s.setup(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func lookPath(name, fallback string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if _, err := os.Stat(fallback); err != nil {
		return "", fmt.Errorf("samba: %s is not installed: install the Debian packages samba samba-ad-provision samba-ad-dc samba-dsdb-modules ldb-tools (make test does): %v", name, err)
	}
	return fallback, nil
}

// lockFile takes an exclusive flock on name, waiting up to wait.
func lockFile(name string, wait time.Duration) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("samba: lock file: %v", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("samba: lock %s: %v", name, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("samba: another test process has held %s for over %s (its Samba DC holds ports 389, 636, 3268 and 3269, which only one DC can have): gave up waiting", name, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CheckPorts returns an error naming the first of ports on host that
// something already listens on.
func CheckPorts(host string, ports []int) error {
	for _, p := range ports {
		addr := net.JoinHostPort(host, fmt.Sprint(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("samba: port %s is taken, by another directory server or program (Samba AD needs %v on %s): %v", addr, ports, host, err)
		}
		l.Close()
	}
	return nil
}

func (s *Server) path(p ...string) string { return filepath.Join(append([]string{s.dir}, p...)...) }

// setup runs with the lock held: it checks the ports, provisions the
// domain, starts samba and delegates the service account.
func (s *Server) setup() error {
	if err := CheckPorts("127.0.0.1", Ports); err != nil {
		return err
	}
	if err := s.writeCerts(); err != nil {
		return fmt.Errorf("samba: certificates: %v", err)
	}
	t0 := time.Now()
	if err := s.provision(); err != nil {
		return err
	}
	s.ProvisionTime = time.Since(t0)
	t0 = time.Now()
	if err := s.start(); err != nil {
		return err
	}
	s.StartTime = time.Since(t0)
	t0 = time.Now()
	if err := s.addServiceAccount(); err != nil {
		return fmt.Errorf("samba: service account: %v", err)
	}
	s.SetupTime = time.Since(t0)
	return nil
}

// provision runs samba-tool domain provision with every directory Samba
// writes to inside dir. SMB_CONF_PATH points at an empty configuration so
// that the machine's /etc/samba/smb.conf is not merged into the new one.
func (s *Server) provision() error {
	for _, d := range []string{"run/ncalrpc", "run/winbindd", "run/ntp_signd", "cache"} {
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return err
		}
	}
	base := s.path("base.conf")
	if err := os.WriteFile(base, []byte("[global]\n"), 0o600); err != nil {
		return err
	}
	args := []string{"domain", "provision", "--dns-backend=NONE", "--targetdir=" + s.dir,
		"--realm=" + Realm, "--domain=" + Domain, "--server-role=dc", "--host-name=" + HostName,
		"--adminpass=" + AdminPassword}
	for _, o := range []string{
		"server services = ldap",
		"interfaces = 127.0.0.1",
		"bind interfaces only = yes",
		"dsdb:schema update allowed = true",
		"tls enabled = yes",
		"tls keyfile = " + s.path("tls", "server.key"),
		"tls certfile = " + s.path("tls", "server.pem"),
		"tls cafile = " + s.path("tls", "ca.pem"),
		"pid directory = " + s.path("run"),
		"ncalrpc dir = " + s.path("run", "ncalrpc"),
		"winbindd socket directory = " + s.path("run", "winbindd"),
		"ntp signd socket directory = " + s.path("run", "ntp_signd"),
		"cache directory = " + s.path("cache"),
		"log file = " + s.path("samba.log"),
	} {
		args = append(args, "--option="+o)
	}
	cmd := exec.Command(s.tool, args...)
	cmd.Env = append(os.Environ(), "SMB_CONF_PATH="+base)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("samba: samba-tool domain provision: %v: %s", err, tail(string(out)))
	}
	return nil
}

func (s *Server) conf() string { return s.path("etc", "smb.conf") }

func (s *Server) logPath() string { return s.path("samba.out") }

// start runs samba in the foreground (-i: interactive, logging to stdout)
// as a single process in a process group of its own, and waits until an
// LDAPS bind as the administrator succeeds. Its standard input is a pipe
// that this process holds: samba -i exits when it closes, so a test
// process that dies does not leave a DC holding the ports.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "-i", "-M", "single", "-s", s.conf())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("samba: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.stdin, s.exited = cmd, stdin, exited
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("samba exited: %s", tail(s.Log()))
		default:
		}
		c, err := s.Dial(AdminDN, AdminPassword)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("samba: no LDAPS bind as the administrator on %s within 60s (last: %v): %s", s.TLSURL, err, tail(s.Log()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

// Stop ends samba (its whole process group), waits for it, and releases
// the machine's lock.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, stdin, exited := s.cmd, s.stdin, s.exited
	s.cmd = nil
	lock := s.lock
	s.lock = nil
	s.mu.Unlock()
	if cmd != nil {
		pgid := cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
		// Anything samba forked dies with the group.
		syscall.Kill(-pgid, syscall.SIGKILL)
		stdin.Close()
	}
	if lock != nil {
		lock.Close() // closing the descriptor releases the flock
	}
}

// Log returns what samba wrote to its standard output and error.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath())
	return string(b)
}

// TLSConfig trusts the harness CA.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.CAPool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// Dial returns a connection over LDAPS bound as dn.
func (s *Server) Dial(dn, password string) (*ldap.Conn, error) {
	c, err := ldap.DialURL(s.TLSURL, ldap.DialWithTLSConfig(s.TLSConfig()))
	if err != nil {
		return nil, err
	}
	if err := c.Bind(dn, password); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Admin returns a connection over LDAPS bound as the domain's
// Administrator, for test setup and inspection.
func (s *Server) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	c, err := s.Dial(AdminDN, AdminPassword)
	if err != nil {
		t.Fatalf("samba: bind as administrator: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Service returns a connection over LDAPS bound as the service account.
func (s *Server) Service(t testing.TB) *ldap.Conn {
	t.Helper()
	c, err := s.Dial(BindDN, BindPassword)
	if err != nil {
		t.Fatalf("samba: bind as the service account: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// UnicodePwd encodes a password as AD's unicodePwd attribute takes it:
// quoted, in UTF-16LE.
func UnicodePwd(password string) string {
	u := utf16.Encode([]rune(`"` + password + `"`))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		b[2*i], b[2*i+1] = byte(r), byte(r>>8)
	}
	return string(b)
}

// addServiceAccount creates TenantsDN and the service account, and adds
// the Delegation ACEs to TenantsDN with samba-tool dsacl (Samba takes
// security descriptors over LDAP only in binary form).
func (s *Server) addServiceAccount() error {
	c, err := s.Dial(AdminDN, AdminPassword)
	if err != nil {
		return err
	}
	defer c.Close()
	ou := ldap.NewAddRequest(TenantsDN, nil)
	ou.Attribute("objectClass", []string{"organizationalUnit"})
	if err := c.Add(ou); err != nil {
		return fmt.Errorf("add %s: %v", TenantsDN, err)
	}
	u := ldap.NewAddRequest(BindDN, nil)
	u.Attribute("objectClass", []string{"user"})
	u.Attribute("sAMAccountName", []string{"gatehouse-svc"})
	u.Attribute("unicodePwd", []string{UnicodePwd(BindPassword)})
	u.Attribute("userAccountControl", []string{"66048"}) // normal account, password never expires
	if err := c.Add(u); err != nil {
		return fmt.Errorf("add %s: %v", BindDN, err)
	}
	res, err := c.Search(ldap.NewSearchRequest(BindDN, ldap.ScopeBaseObject, 0, 1, 0, false, "(objectClass=user)", []string{"objectSid"}, nil))
	if err != nil || len(res.Entries) != 1 {
		return fmt.Errorf("read the objectSid of %s: %v", BindDN, err)
	}
	sid, err := sidString(res.Entries[0].GetRawAttributeValue("objectSid"))
	if err != nil {
		return err
	}
	cmd := exec.Command(s.tool, "dsacl", "set", "-s", s.conf(), "-H", "tdb://"+s.path("private", "sam.ldb"),
		"--objectdn="+TenantsDN, "--sddl="+Delegation(sid))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("samba-tool dsacl set: %v: %s", err, out)
	}
	return nil
}

// sidString formats a binary SID as S-1-...
func sidString(b []byte) (string, error) {
	if len(b) < 8 || len(b) != 8+4*int(b[1]) {
		return "", fmt.Errorf("samba: malformed SID of %d bytes", len(b))
	}
	var auth uint64
	for _, x := range b[2:8] {
		auth = auth<<8 | uint64(x)
	}
	out := fmt.Sprintf("S-%d-%d", b[0], auth)
	for i := 8; i < len(b); i += 4 {
		out += fmt.Sprintf("-%d", uint32(b[i])|uint32(b[i+1])<<8|uint32(b[i+2])<<16|uint32(b[i+3])<<24)
	}
	return out, nil
}

// Tenant is a fresh OU below TenantsDN with OUs for users and groups, so
// that tests can share one DC and still start from an empty directory.
// The service account may write in both.
type Tenant struct {
	Base, UserBase, GroupBase string
}

// NewTenant creates OU=tN,OU=Tenants,<base> with OU=users and OU=groups
// below it.
func (s *Server) NewTenant(t testing.TB) Tenant {
	t.Helper()
	n := s.tenants.Add(1)
	tn := Tenant{Base: fmt.Sprintf("OU=t%d,%s", n, TenantsDN)}
	tn.UserBase, tn.GroupBase = "OU=users,"+tn.Base, "OU=groups,"+tn.Base
	c := s.Admin(t)
	for _, dn := range []string{tn.Base, tn.UserBase, tn.GroupBase} {
		req := ldap.NewAddRequest(dn, nil)
		req.Attribute("objectClass", []string{"organizationalUnit"})
		if err := c.Add(req); err != nil {
			t.Fatalf("samba: add %s: %v", dn, err)
		}
	}
	return tn
}

// ApplyLDIF sends an LDIF of changes in the form ldifde imports (such as
// ldapdir.SchemaAD) as the administrator; see Apply. It fails the test
// when ldapmodify does.
func (s *Server) ApplyLDIF(t testing.TB, ldif string) {
	t.Helper()
	if err := s.Apply(ldif); err != nil {
		t.Fatal(err)
	}
}

// Apply sends an LDIF of changes as the administrator over LDAPS, with
// ldapmodify from ldap-utils, after replacing the forest root placeholder
// DC=X with BaseDN. A TestMain can apply a schema with it once for all
// its tests (adding the same schema twice fails: the entry exists).
func (s *Server) Apply(ldif string) error {
	ldif = strings.ReplaceAll(ldif, ",DC=X\n", ","+BaseDN+"\n")
	cmd := exec.Command("ldapmodify", "-x", "-H", s.TLSURL, "-D", AdminDN, "-w", AdminPassword)
	cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+s.CAFile, "LDAPTLS_REQCERT=demand")
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("samba: ldapmodify (install ldap-utils): %v: %s", err, out)
	}
	return nil
}

// writeCerts writes a throwaway CA and a server certificate for
// 127.0.0.1, localhost and the DC's names into dir/tls.
func (s *Server) writeCerts() error {
	dir := s.path("tls")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	serial := func() (*big.Int, error) {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
		if err != nil {
			return nil, err
		}
		return n.Add(n, big.NewInt(1)), nil // positive
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caSerial, err := serial()
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: caSerial, Subject: pkix.Name{CommonName: "gatehouse test Samba CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvSerial, err := serial()
	if err != nil {
		return err
	}
	fqdn := HostName + "." + strings.ToLower(Realm)
	tmpl := &x509.Certificate{
		SerialNumber: srvSerial, Subject: pkix.Name{CommonName: fqdn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames:    []string{"localhost", HostName, fqdn},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	s.CAFile = filepath.Join(dir, "ca.pem")
	files := map[string][]byte{
		s.CAFile:                         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		filepath.Join(dir, "server.pem"): pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		filepath.Join(dir, "server.key"): pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return err
		}
	}
	s.CAPool = x509.NewCertPool()
	s.CAPool.AddCert(ca)
	return nil
}
