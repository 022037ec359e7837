package main

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// gatehouseBinary builds cmd/gatehouse once, static, as make build does.
var gatehouseBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mkimage-test-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gatehouse")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "gatehouse/cmd/gatehouse")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// smallBinary builds a small static Go program: the image's shape does
// not depend on what the binary is, and gzip over gatehouse's 50 MB is
// slow under the race detector.
var smallBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mkimage-small-")
	if err != nil {
		return "", err
	}
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module small\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"small\") }\n"), 0o644)
	cmd := exec.Command("go", "build", "-trimpath", "-o", "small", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "small"), nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	for _, built := range []func() (string, error){gatehouseBinary, smallBinary} {
		if bin, err := built(); err == nil {
			os.RemoveAll(filepath.Dir(bin))
		}
	}
	os.Exit(code)
}

func small(t *testing.T) string {
	t.Helper()
	bin, err := smallBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func binary(t *testing.T) string {
	t.Helper()
	bin, err := gatehouseBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// selfSigned returns a fresh certificate, DER.
func selfSigned(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// caBundle writes a PEM bundle of one certificate.
func caBundle(t *testing.T) (string, []byte) {
	t.Helper()
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: selfSigned(t, "test root")})
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, pemBytes
}

// layerFile is one entry of the image's layer.
type layerFile struct {
	mode     int64
	uid, gid int
	typ      byte
	modTime  time.Time
	body     []byte
}

func layerFiles(t *testing.T, o options) map[string]layerFile {
	t.Helper()
	img, err := build(o)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]layerFile{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		files[strings.TrimSuffix(h.Name, "/")] = layerFile{mode: h.Mode, uid: h.Uid, gid: h.Gid, typ: h.Typeflag, modTime: h.ModTime, body: body}
	}
	return files
}

// TestImageShape: the image runs the binary as 65532 with serve's default
// command, carries the CA bundle, owns only its state directory to the
// non-root user, labels version and revision, and dates everything at the
// given time.
func TestImageShape(t *testing.T) {
	bin := small(t)
	ca, caPEM := caBundle(t)
	created := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	o := options{Binary: bin, CACerts: ca, Version: "v1.2.3", Revision: "0123abcd", Created: created}
	img, err := build(o)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" || strings.Join(c.Entrypoint, " ") != "/gatehouse" ||
		strings.Join(c.Cmd, " ") != "serve --config /etc/gatehouse/gatehouse.yaml" {
		t.Errorf("config: user %q entrypoint %q cmd %q", c.User, c.Entrypoint, c.Cmd)
	}
	if cf.OS != "linux" || cf.Architecture == "" || !cf.Created.Time.Equal(created) {
		t.Errorf("os %q arch %q created %v", cf.OS, cf.Architecture, cf.Created)
	}
	for k, want := range map[string]string{"org.opencontainers.image.version": "v1.2.3",
		"org.opencontainers.image.revision": "0123abcd", "org.opencontainers.image.created": "2026-11-03T10:00:00Z"} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
	if _, ok := c.Volumes["/var/lib/gatehouse"]; !ok {
		t.Errorf("volumes %v", c.Volumes)
	}

	files := layerFiles(t, o)
	want := map[string]struct {
		mode int64
		uid  int
	}{
		"etc": {0o755, 0}, "etc/passwd": {0o644, 0}, "etc/group": {0o644, 0}, "etc/nsswitch.conf": {0o644, 0},
		"etc/ssl": {0o755, 0}, "etc/ssl/certs": {0o755, 0}, "etc/ssl/certs/ca-certificates.crt": {0o644, 0},
		"etc/gatehouse": {0o755, 0}, "home": {0o755, 0}, "home/nonroot": {0o700, 65532}, "tmp": {0o1777, 0},
		"var": {0o755, 0}, "var/lib": {0o755, 0}, "var/lib/gatehouse": {0o700, 65532}, "gatehouse": {0o755, 0},
	}
	for n, f := range files {
		w, ok := want[n]
		if !ok {
			t.Errorf("unexpected file %s in the image", n)
			continue
		}
		if f.mode != w.mode || f.uid != w.uid || f.gid != w.uid {
			t.Errorf("%s: mode %o owner %d:%d, want %o %d", n, f.mode, f.uid, f.gid, w.mode, w.uid)
		}
		if !f.modTime.Equal(created) {
			t.Errorf("%s: time %v, want %v", n, f.modTime, created)
		}
	}
	for n := range want {
		if _, ok := files[n]; !ok {
			t.Errorf("%s missing from the image", n)
		}
	}
	binBytes, _ := os.ReadFile(bin)
	if !bytes.Equal(files["gatehouse"].body, binBytes) || !bytes.Equal(files["etc/ssl/certs/ca-certificates.crt"].body, caPEM) {
		t.Error("the binary or the CA bundle in the image differ from the inputs")
	}
	if !strings.Contains(string(files["etc/passwd"].body), "nonroot:x:65532:65532:") {
		t.Errorf("passwd: %q", files["etc/passwd"].body)
	}
}

// TestImageReproducible: the same inputs give the same image digest; a
// different time gives another.
func TestImageReproducible(t *testing.T) {
	bin := small(t)
	ca, _ := caBundle(t)
	o := options{Binary: bin, CACerts: ca, Version: "v1", Revision: "r", Created: time.Unix(1700000000, 0)}
	digest := func(o options) string {
		img, err := build(o)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	a, b := digest(o), digest(o)
	if a != b {
		t.Errorf("two builds of the same inputs: %s and %s", a, b)
	}
	o.Created = o.Created.Add(time.Second)
	if c := digest(o); c == a {
		t.Error("a different timestamp gave the same digest")
	}
}

// TestImageRefusesBadInputs: a file that is not a Go binary, a CA file
// without certificates and a missing binary are clear errors.
func TestImageRefusesBadInputs(t *testing.T) {
	ca, _ := caBundle(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "gatehouse")
	os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755)
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("nothing here\n"), 0o644)
	for _, c := range []struct {
		name string
		o    options
		want string
	}{
		{"not a Go binary", options{Binary: script, CACerts: ca}, "no Go build information"},
		{"missing binary", options{Binary: filepath.Join(dir, "nope"), CACerts: ca}, "no Go build information"},
		{"no certificates", options{Binary: small(t), CACerts: empty}, "holds no PEM certificate"},
		{"missing CA file", options{Binary: small(t), CACerts: filepath.Join(dir, "nope.pem")}, "ca certificates:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := build(c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// TestImageTarballLoads: run writes a docker-archive tarball with the
// version and latest tags, readable back by go-containerregistry.
func TestImageTarballLoads(t *testing.T) {
	ca, _ := caBundle(t)
	out := filepath.Join(t.TempDir(), "sub", "image.tar")
	var stdout bytes.Buffer
	if err := run([]string{"-binary", small(t), "-ca", ca, "-o", out, "-version", "v9.9.9+dirty", "-created", "1700000000",
		"-name", "localhost/gatehouse-test"}, &stdout); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "localhost/gatehouse-test:v9.9.9-dirty, localhost/gatehouse-test:latest") {
		t.Errorf("output: %s", stdout.String())
	}
	for _, tag := range []string{"v9.9.9-dirty", "latest"} {
		img, err := tarball.ImageFromPath(out, ptr(mustTag(t, "localhost/gatehouse-test:"+tag)))
		if err != nil {
			t.Fatalf("tag %s: %v", tag, err)
		}
		if cf, err := img.ConfigFile(); err != nil || cf.Created.Unix() != 1700000000 {
			t.Errorf("tag %s: config %v %v", tag, cf, err)
		}
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	if err := run([]string{"-created", "yesterday"}, io.Discard); err == nil || !strings.Contains(err.Error(), "Unix seconds") {
		t.Errorf("bad -created: %v", err)
	}
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

func ptr[T any](v T) *T { return &v }
