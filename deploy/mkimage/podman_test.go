package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hybridCgroups is what crun, podman's default runtime on Debian, says
// when the machine mounts cgroup v1 controllers beside a cgroup v2
// hierarchy that still holds a controller: it runs nothing there.
const hybridCgroups = "cgroups in hybrid mode not supported"

// podman runs containers from one loaded image and removes what it made.
type podman struct {
	t       *testing.T
	image   string
	runtime []string // global flags choosing the OCI runtime
}

func (p *podman) cmd(args ...string) *exec.Cmd {
	return exec.Command("podman", append(append([]string{}, p.runtime...), args...)...)
}

// run starts a container and waits for it, returning its output.
func (p *podman) run(args ...string) (string, error) {
	// A rootful podman raises the container's open-file and process limits
	// to its own maximum, which needs CAP_SYS_RESOURCE; sandboxes and some
	// CI runners withhold it. Limits set here are lowered, never raised.
	full := append([]string{"run", "--rm", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"}, args...)
	out, err := p.cmd(full...).CombinedOutput()
	return string(out), err
}

// newPodman loads the image tarball and finds an OCI runtime that can run
// it here: podman's default, or runc where crun cannot work.
func newPodman(t *testing.T, tarPath, image string) *podman {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatal("podman is not installed: make test installs it (Debian: apt-get install podman)")
	}
	if out, err := exec.Command("podman", "load", "-i", tarPath).CombinedOutput(); err != nil {
		t.Fatalf("podman load: %v\n%s", err, out)
	}
	p := &podman{t: t, image: image}
	t.Cleanup(func() {
		if out, err := exec.Command("podman", "rmi", "-f", image, strings.Split(image, ":")[0]+":latest").CombinedOutput(); err != nil {
			t.Logf("podman rmi: %v\n%s", err, out)
		}
	})
	out, err := p.run(image, "version")
	if err != nil && strings.Contains(out, hybridCgroups) {
		if _, lerr := exec.LookPath("runc"); lerr != nil {
			t.Fatalf("podman's default runtime cannot run containers on this machine (%s: a cgroup v2 hierarchy "+
				"that still holds a controller beside cgroup v1 mounts), and runc, which can, is not installed "+
				"(Debian: apt-get install runc)", hybridCgroups)
		}
		t.Logf("the default OCI runtime refuses this machine's hybrid cgroups; using runc")
		p.runtime = []string{"--runtime", "runc"}
		out, err = p.run(image, "version")
	}
	if err != nil {
		t.Fatalf("podman run %s version: %v\n%s", image, err, out)
	}
	return p
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

const idpMetadata = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.test">
<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/sso"/>
</md:IDPSSODescriptor></md:EntityDescriptor>`

const containerConfig = `version: 1
listen: 127.0.0.1:%d
admin_listen: 127.0.0.1:%d
base_url: http://127.0.0.1:%d
upstream: http://127.0.0.1:%d
public_paths: [/public]
cookie:
  insecure: true
  keys: ["${GATEHOUSE_TEST_COOKIE_KEY}"]
idps:
  - name: corp
    entity_id: https://idp.example.test
    metadata_file: /etc/gatehouse/idp.xml
    mapping:
      user_name: uid
store:
  sqlite:
    path: /var/lib/gatehouse/gatehouse.db
`

// configDir writes a config directory the container's user can read.
func writeConfigDir(t *testing.T, config string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := fmt.Sprintf(idpMetadata, base64.StdEncoding.EncodeToString(selfSigned(t, "idp.example.test")))
	for name, body := range map[string]string{"idp.xml": meta, "gatehouse.yaml": config} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestImageRunsUnderPodman builds the image as make image does, loads it
// into podman and runs it: version, check with a mounted config, and serve
// on the host's network in front of an upstream on 127.0.0.1, where a
// public path is proxied and a protected one is sent to the IdP.
func TestImageRunsUnderPodman(t *testing.T) {
	bin := binary(t)
	caFile, _ := caBundle(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	repo := "localhost/gatehouse-test-" + suffix
	tarPath := filepath.Join(t.TempDir(), "image.tar")
	start := time.Now()
	if err := run([]string{"-binary", bin, "-ca", caFile, "-o", tarPath, "-version", "v0.0.0-test", "-revision", "feedface",
		"-name", repo}, io.Discard); err != nil {
		t.Fatal(err)
	}
	built := time.Since(start)
	fi, _ := os.Stat(tarPath)
	image := repo + ":v0.0.0-test"
	p := newPodman(t, tarPath, image)
	size, _ := p.cmd("image", "inspect", "--format", "{{.Size}}", image).Output()
	t.Logf("image built in %s: tarball %.1f MB, %s bytes in podman's store", built.Round(time.Millisecond),
		float64(fi.Size())/1e6, strings.TrimSpace(string(size)))

	out, err := p.run(image, "version")
	if err != nil || !strings.HasPrefix(out, "gatehouse ") || !strings.Contains(out, "linux/") {
		t.Errorf("version: %v\n%s", err, out)
	}
	labels, _ := p.cmd("image", "inspect", "--format",
		`{{index .Labels "org.opencontainers.image.version"}} {{index .Labels "org.opencontainers.image.revision"}} {{.Config.User}}`, image).Output()
	if got := strings.TrimSpace(string(labels)); got != "v0.0.0-test feedface 65532:65532" {
		t.Errorf("podman sees labels and user %q", got)
	}

	var seen = make(chan string, 16)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.URL.Path
		io.WriteString(w, "upstream answered "+r.URL.Path)
	}))
	defer upstream.Close()
	upPort := upstream.Listener.Addr().(*net.TCPAddr).Port
	port, admin := freePort(t), freePort(t)
	key := make([]byte, 32)
	rand.Read(key)
	env := "GATEHOUSE_TEST_COOKIE_KEY=" + base64.StdEncoding.EncodeToString(key)
	dir := writeConfigDir(t, fmt.Sprintf(containerConfig, port, admin, port, upPort))
	mount := dir + ":/etc/gatehouse:ro"

	out, err = p.run("-v", mount, "-e", env, image, "check", "--config", "/etc/gatehouse/gatehouse.yaml")
	if err != nil || !strings.Contains(out, ": ok") {
		t.Errorf("check in the container: %v\n%s", err, out)
	}
	bad := writeConfigDir(t, strings.Replace(fmt.Sprintf(containerConfig, port, admin, port, upPort), "/etc/gatehouse/idp.xml", "/etc/gatehouse/missing.xml", 1))
	out, err = p.run("-v", bad+":/etc/gatehouse:ro", "-e", env, image, "check", "--config", "/etc/gatehouse/gatehouse.yaml")
	if code := exitCode(err); code != 1 || !strings.Contains(out, "idps[0].metadata_file") {
		t.Errorf("check of a config naming a missing metadata file: exit %d\n%s", code, out)
	}

	name := "gatehouse-test-" + suffix
	// The default command: serve --config /etc/gatehouse/gatehouse.yaml.
	if out, err := p.cmd("run", "-d", "--name", name, "--network", "host", "--ulimit", "nofile=4096:4096",
		"--ulimit", "nproc=4096:4096", "-v", mount, "-e", env, image).CombinedOutput(); err != nil {
		t.Fatalf("podman run -d: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := p.cmd("logs", name).CombinedOutput()
			t.Logf("container log:\n%s", logs)
		}
		if out, err := p.cmd("rm", "-f", "-v", name).CombinedOutput(); err != nil {
			t.Logf("podman rm: %v\n%s", err, out)
		}
	})
	client := &http.Client{Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", admin))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		state, _ := p.cmd("inspect", "--format", "{{.State.Status}}", name).Output()
		if s := strings.TrimSpace(string(state)); s != "running" || time.Now().After(deadline) {
			t.Fatalf("gatehouse in the container is not ready (container %s): %v", s, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	resp, err := client.Get(base + "/public/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "upstream answered /public/hello" {
		t.Errorf("public path: %d %q", resp.StatusCode, body)
	}
	select {
	case got := <-seen:
		if got != "/public/hello" {
			t.Errorf("upstream saw %q", got)
		}
	default:
		t.Error("the upstream saw no request")
	}

	// A protected path: gatehouse answers with redirects that end at the
	// IdP's single sign-on service, and the upstream sees nothing.
	next := base + "/private/report"
	var location string
	for range 5 {
		req, _ := http.NewRequest(http.MethodGet, next, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 3 {
			t.Fatalf("%s: %d, want a redirect", next, resp.StatusCode)
		}
		u, err := resp.Location()
		if err != nil {
			t.Fatal(err)
		}
		location = u.String()
		if u.Host != "127.0.0.1:"+strconv.Itoa(port) {
			break
		}
		next = location
	}
	if !strings.HasPrefix(location, "https://idp.example.test/sso?") || !strings.Contains(location, "SAMLRequest=") {
		t.Errorf("the protected path ends at %q, want the IdP's SSO service with a SAMLRequest", location)
	}
	select {
	case got := <-seen:
		t.Errorf("the upstream saw %q without a session", got)
	default:
	}

	resp, err = client.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", admin))
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte(`gatehouse_requests_total{code="200"}`)) || !bytes.Contains(metrics, []byte("gatehouse_store_up 1")) {
		t.Errorf("the container's metrics lack the request count or the store:\n%s", metrics)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestDockerignoreKeepsSecretsOut gives podman's builder a context laid out
// like a checkout after `make build`, `make image`, `make demo` and a test
// run, with the repository's .dockerignore, and checks what a COPY . sees:
// the sources, go.mod, go.sum and every file a package embeds stay; bin/,
// .git, the demo's keys and state, and keys or test output anywhere go.
func TestDockerignoreKeepsSecretsOut(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatal("podman is not installed: make test installs it (Debian: apt-get install podman)")
	}
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	keep := []string{"go.mod", "go.sum", "README.md", "cmd/gatehouse/main.go", "proxy/proxy.go",
		"deploy/Dockerfile", "deploy/gatehouse.example.yaml", "test/testdata/saml/response.xml"}
	// Every file a package of the module embeds must reach the build.
	out, err := exec.Command("go", "list", "-f", `{{$d := .Dir}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}`, "gatehouse/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, f)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("embedded file %s outside the module", f)
		}
		keep = append(keep, filepath.ToSlash(rel))
	}
	drop := []string{"bin/gatehouse", "bin/gatehouse-image.tar", ".git/config", ".git/objects/ab/cdef",
		"demo-data/idp.key", "demo-data/idp.crt", "demo-data/cookie.key", "demo-data/scim-token",
		"demo-data/gatehouse.db", "demo-data/gatehouse.yaml", "demo-data/idp-metadata.xml",
		"test/testdata/idp.key", "deploy/tls/server.pem", "secrets/client.p12", "gatehouse",
		"proxy/proxy.test", "cover.out", "cpu.prof", "state/gatehouse.db-wal", "provision/testdata/fuzz/FuzzMapping/1a2b"}
	ctx := t.TempDir()
	for _, f := range append(append([]string{}, keep...), drop...) {
		p := filepath.Join(ctx, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ctx, ".dockerignore"), ignore, 0o644); err != nil {
		t.Fatal(err)
	}
	containerfile := filepath.Join(t.TempDir(), "Containerfile")
	os.WriteFile(containerfile, []byte("FROM scratch\nCOPY . /ctx/\n"), 0o644)
	dest := t.TempDir()
	tag := "localhost/gatehouse-context-test:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if out, err := exec.Command("podman", "build", "-q", "-t", tag, "-f", containerfile,
		"--output", "type=local,dest="+dest, ctx).CombinedOutput(); err != nil {
		t.Fatalf("podman build: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("podman", "rmi", "-f", tag).Run() })
	for _, f := range keep {
		if _, err := os.Stat(filepath.Join(dest, "ctx", filepath.FromSlash(f))); err != nil {
			t.Errorf("%s did not reach the build context: %v", f, err)
		}
	}
	for _, f := range drop {
		if _, err := os.Stat(filepath.Join(dest, "ctx", filepath.FromSlash(f))); err == nil {
			t.Errorf("%s reached the build context", f)
		}
	}
}
