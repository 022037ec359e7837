package slapd

import (
	"fmt"
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

// 389 Directory Server (Debian's 389-ds-base) for tests. The instance is
// made without dscreate, which registers instances under /etc/dirsrv:
// Debian's dse.ldif template is filled in with a temporary directory, the
// memberOf plugin switched on, and ns-slapd run in the foreground on a
// free loopback port. A backend for Suffix, its base entry and the
// provisioning account are then added over LDAP. `make test` installs
// 389-ds-base.
const (
	ds389Bin      = "/usr/sbin/ns-slapd"
	ds389Template = "/usr/share/dirsrv/data/template-dse.ldif"
	ds389Config   = "/etc/dirsrv/config"
	ds389Schema   = "/etc/dirsrv/schema/99user.ldif"
	// DS389RootDN is 389's directory manager.
	DS389RootDN       = "cn=Directory Manager"
	DS389RootPassword = "directory-manager-secret"
)

var placeholder = regexp.MustCompile(`%[a-z_]+%`)

// DS389 is one running 389 Directory Server.
type DS389 struct {
	// URL is ldap://127.0.0.1:port, without TLS.
	URL string

	dir     string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	tenants atomic.Int64
}

// Start389 starts 389 Directory Server in a temporary directory and stops
// it when the test ends. It fails the test when the server cannot start.
func Start389(t testing.TB) *DS389 {
	t.Helper()
	d, err := New389(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

// New389 starts 389 Directory Server with its configuration and data in
// dir. The caller stops it.
func New389(dir string) (*DS389, error) {
	for _, need := range []string{ds389Bin, ds389Template, ds389Schema} {
		if _, err := os.Stat(need); err != nil {
			return nil, fmt.Errorf("389 Directory Server is not installed: install the Debian package 389-ds-base (make test does): %v", err)
		}
	}
	d := &DS389{dir: dir}
	var lastErr error
	for range 5 { // a free port can be taken between probing and binding
		port, _, err := freePorts()
		if err != nil {
			return nil, err
		}
		if err := d.configure(port); err != nil {
			return nil, err
		}
		d.URL = fmt.Sprintf("ldap://127.0.0.1:%d", port)
		if lastErr = d.start(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		return nil, fmt.Errorf("389 Directory Server did not start: %v", lastErr)
	}
	// The first start completes dse.ldif as an upgrade would (the
	// entryUUID plugin among others), and those plugins run from the next
	// start on: restart, as dscreate does.
	d.Stop()
	if err := d.start(); err != nil {
		return nil, fmt.Errorf("389 Directory Server did not restart: %v", err)
	}
	if err := d.setup(); err != nil {
		d.Stop()
		return nil, fmt.Errorf("389 Directory Server setup: %v", err)
	}
	return d, nil
}

func (d *DS389) path(p ...string) string { return filepath.Join(append([]string{d.dir}, p...)...) }

// configure writes dse.ldif for the port.
func (d *DS389) configure(port int) error {
	for _, sub := range []string{"etc/schema", "db", "bak", "ldif", "lock", "log", "run", "tmp"} {
		if err := os.MkdirAll(d.path(sub), 0o700); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(ds389Config)
	if err != nil {
		return err
	}
	copyFile := func(from, to string) error {
		b, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o600)
	}
	for _, e := range entries {
		if err := copyFile(filepath.Join(ds389Config, e.Name()), d.path("etc", e.Name())); err != nil {
			return err
		}
	}
	if err := copyFile(ds389Schema, d.path("etc", "schema", "99user.ldif")); err != nil {
		return err
	}
	tmpl, err := os.ReadFile(ds389Template)
	if err != nil {
		return err
	}
	user := "root"
	if os.Geteuid() != 0 {
		user = os.Getenv("USER")
	}
	r := strings.NewReplacer(
		"%bak_dir%", d.path("bak"), "%cert_dir%", d.path("etc"), "%config_dir%", d.path("etc"),
		"%db_dir%", d.path("db"), "%db_home_dir%", d.path("db"), "%db_lib%", "bdb",
		"%ds_passwd%", "{CLEAR}"+DS389RootPassword, "%ds_port%", fmt.Sprint(port), "%ds_suffix%", Suffix,
		"%ds_user%", user, "%fqdn%", "localhost", "%inst_dir%", d.dir, "%ldapi%", d.path("run", "ldapi"),
		"%ldapi_autobind%", "off", "%ldapi_enabled%", "off", "%ldif_dir%", d.path("ldif"),
		"%lock_dir%", d.path("lock"), "%log_dir%", d.path("log"), "%rootdn%", DS389RootDN,
		"%run_dir%", d.path("run"), "%schema_dir%", d.path("etc", "schema"), "%tmp_dir%", d.path("tmp"),
	)
	dse := r.Replace(string(tmpl))
	// Loopback only, and the memberOf plugin on (it is off by default).
	portLine := fmt.Sprintf("nsslapd-port: %d\n", port)
	if !strings.Contains(dse, portLine) {
		return fmt.Errorf("the dse.ldif template has no %q line", strings.TrimSpace(portLine))
	}
	dse = strings.Replace(dse, portLine, portLine+"nsslapd-listenhost: 127.0.0.1\n", 1)
	i := strings.Index(dse, "dn: cn=MemberOf Plugin,cn=plugins,cn=config\n")
	j := strings.Index(dse[max(i, 0):], "\n\n")
	if i < 0 || j < 0 || !strings.Contains(dse[i:i+j], "nsslapd-pluginenabled: off") {
		return fmt.Errorf("the dse.ldif template has no memberOf plugin entry to enable")
	}
	dse = dse[:i] + strings.Replace(dse[i:i+j], "nsslapd-pluginenabled: off", "nsslapd-pluginenabled: on", 1) + dse[i+j:]
	if m := placeholder.FindString(dse); m != "" {
		return fmt.Errorf("the dse.ldif template has a placeholder this harness does not fill: %s", m)
	}
	return os.WriteFile(d.path("etc", "dse.ldif"), []byte(dse), 0o600)
}

// start runs ns-slapd in the foreground and waits until it answers.
func (d *DS389) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	logf, err := os.OpenFile(d.path("ns-slapd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(ds389Bin, "-D", d.path("etc"), "-i", d.path("run", "ns-slapd.pid"), "-d", "0")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			out, _ := os.ReadFile(d.path("ns-slapd.out"))
			errs, _ := os.ReadFile(d.path("log", "errors"))
			return fmt.Errorf("ns-slapd exited: %s %s", tail(string(out)), tail(string(errs)))
		default:
		}
		if c, err := ldap.DialURL(d.URL); err == nil {
			_, serr := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 1, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
			c.Close()
			if serr == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("ns-slapd did not answer on %s within 30s", d.URL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.cmd, d.exited = cmd, exited
	return nil
}

// Stop ends the server.
func (d *DS389) Stop() {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

func (d *DS389) root() (*ldap.Conn, error) {
	c, err := ldap.DialURL(d.URL)
	if err != nil {
		return nil, err
	}
	if err := c.Bind(DS389RootDN, DS389RootPassword); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// setup adds the userRoot backend for Suffix, the base entries and the
// provisioning account, which may write below the suffix.
func (d *DS389) setup() error {
	c, err := d.root()
	if err != nil {
		return err
	}
	defer c.Close()
	type ent struct {
		dn    string
		attrs map[string][]string
	}
	for _, e := range []ent{
		// As dscreate does: a default index for entryUUID (gatehouse's
		// user IDs), before the backend that inherits it.
		{"cn=entryUUID,cn=default indexes,cn=config,cn=ldbm database,cn=plugins,cn=config", map[string][]string{
			"objectClass": {"top", "nsIndex"}, "cn": {"entryUUID"}, "nsSystemIndex": {"false"}, "nsIndexType": {"eq", "pres"}}},
		{"cn=userRoot,cn=ldbm database,cn=plugins,cn=config", map[string][]string{
			"objectClass": {"top", "extensibleObject", "nsBackendInstance"}, "cn": {"userRoot"}, "nsslapd-suffix": {Suffix}}},
		{`cn="` + Suffix + `",cn=mapping tree,cn=config`, map[string][]string{
			"objectClass": {"top", "extensibleObject", "nsMappingTree"}, "cn": {Suffix},
			"nsslapd-state": {"backend"}, "nsslapd-backend": {"userRoot"}}},
		{Suffix, map[string][]string{"objectClass": {"top", "domain"}, "dc": {"example"},
			"aci": {`(targetattr="*")(version 3.0; acl "gatehouse provisioner"; allow (all) userdn="ldap:///` + BindDN + `";)`,
				`(targetattr!="userPassword")(version 3.0; acl "authenticated read"; allow (read, search, compare) userdn="ldap:///all";)`}}},
		{"ou=services," + Suffix, map[string][]string{"objectClass": {"top", "organizationalUnit"}, "ou": {"services"}}},
		{BindDN, map[string][]string{"objectClass": {"top", "person"}, "cn": {"provisioner"}, "sn": {"provisioner"},
			"userPassword": {BindPassword}}},
	} {
		req := ldap.NewAddRequest(e.dn, nil)
		for a, v := range e.attrs {
			req.Attribute(a, v)
		}
		if err := c.Add(req); err != nil {
			return fmt.Errorf("add %s: %v", e.dn, err)
		}
	}
	return nil
}

// Admin returns a connection bound as the directory manager.
func (d *DS389) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	c, err := d.root()
	if err != nil {
		t.Fatalf("bind to 389 DS as directory manager: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ApplyLDIF sends an LDIF of changes (changetype modify or add, as the
// files gatehouse ships for 389 DS) as the directory manager, with
// ldapmodify from ldap-utils.
func (d *DS389) ApplyLDIF(t testing.TB, ldif string) {
	t.Helper()
	cmd := exec.Command("ldapmodify", "-x", "-H", d.URL, "-D", DS389RootDN, "-w", DS389RootPassword)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ldapmodify (install ldap-utils): %v: %s", err, out)
	}
}

// NewTenant creates ou=tN,<suffix> with ou=people and ou=groups below it.
func (d *DS389) NewTenant(t testing.TB) Tenant {
	t.Helper()
	n := d.tenants.Add(1)
	tn := Tenant{Base: fmt.Sprintf("ou=t%d,%s", n, Suffix)}
	tn.People, tn.Groups = "ou=people,"+tn.Base, "ou=groups,"+tn.Base
	c := d.Admin(t)
	for _, dn := range []string{tn.Base, tn.People, tn.Groups} {
		req := ldap.NewAddRequest(dn, nil)
		req.Attribute("objectClass", []string{"top", "organizationalUnit"})
		req.Attribute("ou", []string{strings.TrimPrefix(strings.SplitN(dn, ",", 2)[0], "ou=")})
		if err := c.Add(req); err != nil {
			t.Fatalf("add %s: %v", dn, err)
		}
	}
	return tn
}

// AccessLog returns 389's access log (buffered: complete after Stop).
func (d *DS389) AccessLog() string {
	b, _ := os.ReadFile(d.path("log", "access"))
	return string(b)
}

// WaitTask waits until the task entry at dn (under cn=tasks,cn=config)
// reports success.
func (d *DS389) WaitTask(t testing.TB, dn string) {
	t.Helper()
	c := d.Admin(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, 0, 1, 0, false, "(objectClass=*)",
			[]string{"nsTaskExitCode", "nsTaskStatus"}, nil))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("task %s: %v", dn, err)
		}
		if code := res.Entries[0].GetAttributeValue("nsTaskExitCode"); code != "" {
			if code != "0" {
				t.Fatalf("task %s failed (%s): %s", dn, code, res.Entries[0].GetAttributeValue("nsTaskStatus"))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s did not finish within 30s", dn)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
