// Package slapd starts a real OpenLDAP server for tests: Debian's slapd on
// free loopback ports, with its own temporary cn=config (or a slapd.conf,
// with SlapdConf), the memberof and ppolicy overlays (ppolicy optional), StartTLS and LDAPS from a throwaway CA, a provisioning
// service account with write access below the suffix, and slapd's stats
// log captured so that tests can count the operations it served.
//
// A test that needs slapd fails when it cannot start; it never skips.
// `make test` installs the Debian packages slapd and ldap-utils.
package slapd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Fixed names of the test directory.
const (
	Suffix          = "dc=example,dc=test"
	AdminDN         = "cn=admin," + Suffix
	AdminPassword   = "admin-secret"
	BindDN          = "cn=provisioner,ou=services," + Suffix
	BindPassword    = "provisioner-secret"
	moduleDir       = "/usr/lib/ldap"
	debianSchemaDir = "/etc/ldap/schema"
)

// Server is one running slapd.
type Server struct {
	// URL is ldap://127.0.0.1:port (StartTLS available); TLSURL is the
	// ldaps:// listener.
	URL, TLSURL string
	// CAFile holds the PEM certificate that signed the server's.
	CAFile string
	CAPool *x509.CertPool

	dir     string
	bin     string
	urls    string
	conf    bool     // configured by slapd.conf, not cn=config
	debug   []string // log levels beyond stats
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	tenants atomic.Int64
}

// Option adjusts the server before it starts.
type Option func(*settings)

type settings struct {
	schemas  []string // extra cn=config schema LDIF documents
	includes []string // extra slapd.conf schema files (SlapdConf)
	indexes  []string
	// rawIndexes are whole index specifications (WithIndex).
	rawIndexes []string
	conf       bool
	noPPolicy  bool
	debug      []string
}

// WithDebug adds slapd log levels (slapd -d) to stats, such as "trace",
// under which back-mdb names the attributes it searched without an index.
func WithDebug(level string) Option { return func(s *settings) { s.debug = append(s.debug, level) } }

// SlapdConf configures slapd from a slapd.conf file, as installations
// that predate cn=config do, instead of a cn=config directory. Schemas
// then come from WithSchemaInclude.
func SlapdConf() Option { return func(s *settings) { s.conf = true } }

// WithSchemaInclude adds a schema file in slapd.conf syntax, included from
// slapd.conf (SlapdConf), and equality indexes on the given attributes.
func WithSchemaInclude(schema string, index ...string) Option {
	return func(s *settings) {
		s.includes = append(s.includes, schema)
		s.indexes = append(s.indexes, index...)
	}
}

// WithIndex adds database indexes as written after olcDbIndex (cn=config)
// or index (slapd.conf), such as "uid eq,sub", so that tests can check
// that slapd accepts and uses the indexes the README recommends.
func WithIndex(spec ...string) Option {
	return func(s *settings) { s.rawIndexes = append(s.rawIndexes, spec...) }
}

// WithoutPPolicy leaves the ppolicy module out: the directory's schema
// then has no pwdAccountLockedTime.
func WithoutPPolicy() Option { return func(s *settings) { s.noPPolicy = true } }

// WithSchema adds a cn=config schema LDIF (olcSchemaConfig entries) and
// equality indexes on the given attributes.
func WithSchema(ldif string, index ...string) Option {
	return func(s *settings) {
		s.schemas = append(s.schemas, ldif)
		s.indexes = append(s.indexes, index...)
	}
}

// Start starts slapd in a temporary directory and stops it when the test
// ends. It fails the test when slapd cannot start.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := New(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// New starts slapd with its configuration and data in dir, which must be
// empty. The caller stops it.
func New(dir string, opts ...Option) (*Server, error) {
	var set settings
	for _, o := range opts {
		o(&set)
	}
	bin, err := exec.LookPath("slapd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/slapd"); serr != nil {
			return nil, fmt.Errorf("slapd is not installed: install the Debian packages slapd and ldap-utils (make test does): %v", err)
		}
		bin = "/usr/sbin/slapd"
	}
	slapadd := filepath.Join(filepath.Dir(bin), "slapadd")
	for _, need := range []string{slapadd, filepath.Join(moduleDir, "back_mdb.so"), filepath.Join(moduleDir, "memberof.so"), filepath.Join(debianSchemaDir, "core.ldif")} {
		if _, err := os.Stat(need); err != nil {
			return nil, fmt.Errorf("slapd installation incomplete: %v", err)
		}
	}
	if len(set.schemas) > 0 && set.conf || len(set.includes) > 0 && !set.conf {
		return nil, fmt.Errorf("slapd: WithSchema is for cn=config, WithSchemaInclude for SlapdConf")
	}
	s := &Server{dir: dir, bin: bin, conf: set.conf, debug: set.debug}
	if err := s.writeCerts(); err != nil {
		return nil, fmt.Errorf("slapd certificates: %v", err)
	}
	confDir := filepath.Join(s.dir, "slapd.d")
	dataDir := filepath.Join(s.dir, "data")
	for _, d := range []string{confDir, dataDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	if set.conf {
		conf, err := s.slapdConf(dataDir, set)
		if err != nil {
			return nil, fmt.Errorf("slapd.conf: %v", err)
		}
		if err := slapAddConf(slapadd, conf, baseLDIF); err != nil {
			return nil, fmt.Errorf("slapd base entries: %v", err)
		}
	} else {
		if err := slapAdd(slapadd, "-n0", confDir, s.configLDIF(dataDir, set)); err != nil {
			return nil, fmt.Errorf("slapd config: %v", err)
		}
		if err := slapAdd(slapadd, "-n1", confDir, baseLDIF); err != nil {
			return nil, fmt.Errorf("slapd base entries: %v", err)
		}
	}
	var lastErr error
	for range 5 { // a free port can be taken between probing and binding
		p1, p2, err := freePorts()
		if err != nil {
			return nil, err
		}
		s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", p1)
		s.TLSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", p2)
		s.urls = s.URL + "/ " + s.TLSURL + "/"
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("slapd did not start: %v", lastErr)
}

func slapAdd(bin, db, confDir, ldif string) error {
	args := []string{db, "-F", confDir}
	if db == "-n1" {
		args = append(args, "-q")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("slapadd %s: %v: %s", db, err, out)
	}
	return nil
}

func slapAddConf(bin, conf, ldif string) error {
	cmd := exec.Command(bin, "-f", conf, "-b", Suffix, "-q")
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("slapadd -f %s: %v: %s", conf, err, out)
	}
	return nil
}

func freePorts() (int, int, error) {
	var ports [2]int
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports[0], ports[1], nil
}

// start runs slapd in the foreground (-d) with its stats log on stderr,
// and waits until it accepts connections.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The log goes straight to a file, not through a pipe: slapd has
	// written a request's lines before it answers, so a test that reads
	// the file after its call returns sees them.
	logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cfg := []string{"-F", filepath.Join(s.dir, "slapd.d")}
	if s.conf {
		cfg = []string{"-f", filepath.Join(s.dir, "slapd.conf")}
	}
	args := append(cfg, "-h", s.urls, "-d", "stats")
	for _, l := range s.debug {
		args = append(args, "-d", l)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	addr := strings.TrimPrefix(s.URL, "ldap://")
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("slapd exited: %s", tail(s.Log()))
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("slapd did not listen on %s within 15s: %s", addr, tail(s.Log()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// Stop ends slapd cleanly.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill ends slapd abruptly, as a crash would.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig os.Signal) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGCONT) // a paused server cannot act on SIGTERM
	cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// Pause freezes slapd (SIGSTOP): connections stay open and unanswered.
// It returns once the kernel reports the process stopped, since a signal
// reaches a busy process a moment after it is sent.
func (s *Server) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmd.Process.Signal(syscall.SIGSTOP)
	stat := fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			return
		}
		// The state follows the parenthesised command name.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
	}
}

// Resume undoes Pause.
func (s *Server) Resume() { s.mu.Lock(); defer s.mu.Unlock(); s.cmd.Process.Signal(syscall.SIGCONT) }

// Restart starts a stopped or killed slapd again on the same ports and
// data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	var err error
	for range 50 { // the old listener's port may linger for a moment
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("slapd restart: %v", err)
}

// LogMark is a position in the stats log.
type LogMark int64

func (s *Server) logPath() string { return filepath.Join(s.dir, "slapd.log") }

// Mark returns the current end of the stats log.
func (s *Server) Mark() LogMark {
	fi, err := os.Stat(s.logPath())
	if err != nil {
		return 0
	}
	return LogMark(fi.Size())
}

var (
	opLine   = regexp.MustCompile(`(?m) (conn=\d+ op=\d+) (ADD|MOD|DEL|MODRDN|SRCH|BIND|CMP) `)
	opDNLine = regexp.MustCompile(`(?m) (conn=\d+ op=\d+) (ADD|MOD|DEL|MODRDN|SRCH|CMP) (?:base|dn)="([^"]*)"`)
)

// OpsOn counts the operations slapd logged since m on the entry dn (as
// the request named it, compared case-insensitively), by kind.
func (s *Server) OpsOn(m LogMark, dn string) map[string]int {
	text := s.Log()
	if int(m) <= len(text) {
		text = text[m:]
	}
	seen := map[string]bool{}
	out := map[string]int{}
	for _, sm := range opDNLine.FindAllStringSubmatch(text, -1) {
		if !seen[sm[1]] && strings.EqualFold(sm[3], dn) {
			seen[sm[1]] = true
			out[sm[2]]++
		}
	}
	return out
}

// Ops counts the operations slapd logged since m, by kind (ADD, MOD, DEL,
// MODRDN, SRCH, BIND, CMP). slapd logs each request as it arrives, so a
// refused write counts too.
func (s *Server) Ops(m LogMark) map[string]int {
	text := s.Log()
	if int(m) <= len(text) {
		text = text[m:]
	}
	seen := map[string]bool{}
	out := map[string]int{}
	for _, sm := range opLine.FindAllStringSubmatch(text, -1) {
		if !seen[sm[1]] { // one operation logs several lines
			seen[sm[1]] = true
			out[sm[2]]++
		}
	}
	return out
}

// Log returns everything slapd logged.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath())
	return string(b)
}

// Admin returns a connection bound as the directory's root DN, for test
// setup and inspection.
func (s *Server) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatalf("dial slapd: %v", err)
	}
	if err := c.Bind(AdminDN, AdminPassword); err != nil {
		c.Close()
		t.Fatalf("bind as admin: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Tenant is a fresh subtree with people and groups containers, so that
// tests can share one server and still start from an empty directory.
type Tenant struct {
	Base, People, Groups string
}

// NewTenant creates ou=tN,<suffix> with ou=people and ou=groups below it.
func (s *Server) NewTenant(t testing.TB) Tenant {
	t.Helper()
	n := s.tenants.Add(1)
	tn := Tenant{Base: fmt.Sprintf("ou=t%d,%s", n, Suffix)}
	tn.People, tn.Groups = "ou=people,"+tn.Base, "ou=groups,"+tn.Base
	c := s.Admin(t)
	for _, dn := range []string{tn.Base, tn.People, tn.Groups} {
		req := ldap.NewAddRequest(dn, nil)
		req.Attribute("objectClass", []string{"organizationalUnit"})
		req.Attribute("ou", []string{strings.TrimPrefix(strings.SplitN(dn, ",", 2)[0], "ou=")})
		if err := c.Add(req); err != nil {
			t.Fatalf("add %s: %v", dn, err)
		}
	}
	return tn
}

func (s *Server) configLDIF(dataDir string, set settings) string {
	var indexes string
	for _, a := range set.indexes {
		indexes += "olcDbIndex: " + a + " eq\n"
	}
	for _, spec := range indexSpecs(set) {
		indexes += "olcDbIndex: " + spec + "\n"
	}
	schemas := set.schemas
	var b strings.Builder
	fmt.Fprintf(&b, `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: %[1]s/slapd.pid
olcTLSCACertificateFile: %[1]s/ca.pem
olcTLSCertificateFile: %[1]s/server.pem
olcTLSCertificateKeyFile: %[1]s/server.key

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: %[2]s
olcModuleLoad: back_mdb
olcModuleLoad: memberof
%[4]s
dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://%[3]s/core.ldif

include: file://%[3]s/cosine.ldif

include: file://%[3]s/inetorgperson.ldif

`, s.dir, moduleDir, debianSchemaDir, ppolicyModule(set))
	for _, sc := range schemas {
		b.WriteString(strings.TrimSpace(sc))
		b.WriteString("\n\n")
	}
	fmt.Fprintf(&b, `dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: 5000

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: %[1]s
olcRootDN: %[2]s
olcRootPW: %[3]s
olcDbDirectory: %[4]s
olcDbMaxSize: 268435456
%[6]solcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to dn.subtree="ou=services,%[1]s" by users read
olcAccess: {2}to * by dn.exact="%[5]s" write by users read

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
`, Suffix, AdminDN, AdminPassword, dataDir, BindDN, indexes)
	if !set.noPPolicy {
		b.WriteString(`
dn: olcOverlay={1}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {1}ppolicy
`)
	}
	return b.String()
}

// baseIndexes are the indexes every test server has.
var baseIndexes = []string{"objectClass eq", "entryUUID eq", "uid eq", "cn eq", "mail eq", "member eq"}

// indexSpecs lists the index specifications of the database: the base
// ones, except for the attributes WithIndex indexes itself (slapd refuses
// two definitions for one attribute), then those of WithIndex.
func indexSpecs(set settings) []string {
	named := map[string]bool{}
	for _, spec := range set.rawIndexes {
		attrs, _, _ := strings.Cut(spec, " ")
		for _, a := range strings.Split(attrs, ",") {
			named[strings.ToLower(a)] = true
		}
	}
	var out []string
	for _, spec := range baseIndexes {
		if attr, _, _ := strings.Cut(spec, " "); !named[strings.ToLower(attr)] {
			out = append(out, spec)
		}
	}
	return append(out, set.rawIndexes...)
}

func ppolicyModule(set settings) string {
	if set.noPPolicy {
		return ""
	}
	return "olcModuleLoad: ppolicy\n"
}

// slapdConf writes slapd.conf: the same server as configLDIF, in the
// older file syntax, with schema files included.
func (s *Server) slapdConf(dataDir string, set settings) (string, error) {
	var b strings.Builder
	for _, f := range []string{"core", "cosine", "inetorgperson"} {
		fmt.Fprintf(&b, "include %s/%s.schema\n", debianSchemaDir, f)
	}
	for i, sc := range set.includes {
		name := filepath.Join(s.dir, fmt.Sprintf("extra%d.schema", i))
		if err := os.WriteFile(name, []byte(sc), 0o600); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "include %s\n", name)
	}
	fmt.Fprintf(&b, `pidfile %[1]s/slapd.pid
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server.key
modulepath %[2]s
moduleload back_mdb
moduleload memberof
`, s.dir, moduleDir)
	if !set.noPPolicy {
		b.WriteString("moduleload ppolicy\n")
	}
	fmt.Fprintf(&b, `sizelimit 5000

database config
access to * by * none

database mdb
suffix "%[1]s"
rootdn "%[2]s"
rootpw %[3]s
directory %[4]s
maxsize 268435456
`, Suffix, AdminDN, AdminPassword, dataDir)
	for _, a := range set.indexes {
		fmt.Fprintf(&b, "index %s eq\n", a)
	}
	for _, spec := range indexSpecs(set) {
		fmt.Fprintf(&b, "index %s\n", spec)
	}
	fmt.Fprintf(&b, `access to attrs=userPassword by self write by anonymous auth by * none
access to dn.subtree="ou=services,%[1]s" by users read
access to * by dn.exact="%[2]s" write by users read
overlay memberof
memberof-refint TRUE
`, Suffix, BindDN)
	if !set.noPPolicy {
		b.WriteString("overlay ppolicy\n")
	}
	name := filepath.Join(s.dir, "slapd.conf")
	return name, os.WriteFile(name, []byte(b.String()), 0o600)
}

var baseLDIF = `dn: ` + Suffix + `
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=services,` + Suffix + `
objectClass: organizationalUnit
ou: services

dn: ` + BindDN + `
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: provisioner
userPassword: ` + BindPassword + `
`

func (s *Server) writeCerts() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatehouse test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	s.CAFile = filepath.Join(s.dir, "ca.pem")
	files := map[string][]byte{
		s.CAFile:                           pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		filepath.Join(s.dir, "server.pem"): pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		filepath.Join(s.dir, "server.key"): pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
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

// TLSConfig trusts the server's CA.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.CAPool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}
