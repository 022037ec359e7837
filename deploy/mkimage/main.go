package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image's fixed shape.
const (
	uid        = 65532 // the non-root user gatehouse runs as (distroless's "nonroot")
	stateDir   = "var/lib/gatehouse"
	configDir  = "etc/gatehouse"
	caPath     = "etc/ssl/certs/ca-certificates.crt"
	configFile = "/etc/gatehouse/gatehouse.yaml"
)

// options say what to build.
type options struct {
	Binary   string    // a static linux gatehouse binary
	CACerts  string    // a PEM bundle of CA certificates
	Version  string    // label value; empty: the binary's module version
	Revision string    // label value; empty: the binary's vcs.revision
	Created  time.Time // every timestamp in the image; zero: the binary's vcs.time, else the Unix epoch
}

// stamp is what the binary's build information says.
type stamp struct {
	version, revision string
	created           time.Time
	arch              string
}

// readStamp reads the binary's build information and refuses a binary the
// empty image cannot run: not Go, not linux, or linked against libc.
func readStamp(binary string) (stamp, error) {
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		return stamp{}, fmt.Errorf("binary %s: no Go build information: %w", binary, err)
	}
	s := stamp{version: bi.Main.Version}
	settings := map[string]string{}
	for _, kv := range bi.Settings {
		settings[kv.Key] = kv.Value
	}
	if settings["GOOS"] != "linux" {
		return stamp{}, fmt.Errorf("binary %s: built for GOOS=%q; the image needs linux", binary, settings["GOOS"])
	}
	if settings["CGO_ENABLED"] != "0" {
		return stamp{}, fmt.Errorf("binary %s: not static (CGO_ENABLED=%q); build it with CGO_ENABLED=0, as make build does", binary, settings["CGO_ENABLED"])
	}
	s.arch = settings["GOARCH"]
	s.revision = settings["vcs.revision"]
	if settings["vcs.modified"] == "true" && s.revision != "" {
		s.revision += "-dirty"
	}
	if t, err := time.Parse(time.RFC3339, settings["vcs.time"]); err == nil {
		s.created = t.UTC()
	}
	return s, nil
}

// build assembles the image.
func build(o options) (v1.Image, error) {
	st, err := readStamp(o.Binary)
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	ca, err := os.ReadFile(o.CACerts)
	if err != nil {
		return nil, fmt.Errorf("ca certificates: %w", err)
	}
	if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("ca certificates: %s holds no PEM certificate", o.CACerts)
	}
	version, revision, created := o.Version, o.Revision, o.Created
	if version == "" {
		version = st.version
	}
	if revision == "" {
		revision = st.revision
	}
	if created.IsZero() {
		created = st.created
	}
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC().Truncate(time.Second)

	layer, err := rootLayer(bin, ca, created)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: created}, CreatedBy: "gatehouse mkimage", Comment: "gatehouse " + version}})
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Author = "linux", st.arch, ""
	cf.Created = v1.Time{Time: created}
	cf.Config = v1.Config{
		User:       strconv.Itoa(uid) + ":" + strconv.Itoa(uid),
		Entrypoint: []string{"/gatehouse"},
		Cmd:        []string{"serve", "--config", configFile},
		WorkingDir: "/",
		Env:        []string{"SSL_CERT_FILE=/" + caPath},
		Volumes:    map[string]struct{}{"/" + stateDir: {}},
		// 8080: the application's traffic; 9090: metrics and probes (admin_listen).
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9090/tcp": {}},
		StopSignal:   "SIGTERM",
		Labels: map[string]string{
			"org.opencontainers.image.title":    "gatehouse",
			"org.opencontainers.image.version":  version,
			"org.opencontainers.image.revision": revision,
			"org.opencontainers.image.created":  created.Format(time.RFC3339),
		},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return img, nil
}

// entry is one file or directory of the layer.
type entry struct {
	name     string
	mode     int64
	owner    int
	dir      bool
	contents []byte
}

const passwd = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
const group = "root:x:0:\nnonroot:x:65532:\n"

// layout is the image's whole file system, parents before children.
func layout(bin, ca []byte) []entry {
	return []entry{
		{name: "etc", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, contents: []byte(passwd)},
		{name: "etc/group", mode: 0o644, contents: []byte(group)},
		{name: "etc/nsswitch.conf", mode: 0o644, contents: []byte("hosts: files dns\n")},
		{name: "etc/ssl", mode: 0o755, dir: true},
		{name: "etc/ssl/certs", mode: 0o755, dir: true},
		{name: caPath, mode: 0o644, contents: ca},
		{name: configDir, mode: 0o755, dir: true},
		{name: "home", mode: 0o755, dir: true},
		{name: "home/nonroot", mode: 0o700, owner: uid, dir: true},
		{name: "tmp", mode: 0o1777, dir: true},
		{name: "var", mode: 0o755, dir: true},
		{name: "var/lib", mode: 0o755, dir: true},
		{name: stateDir, mode: 0o700, owner: uid, dir: true},
		{name: "gatehouse", mode: 0o755, contents: bin},
	}
}

// rootLayer writes the layout as one gzipped tar with fixed times and
// owners, so the same inputs give the same digest.
func rootLayer(bin, ca []byte, created time.Time) (v1.Layer, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range layout(bin, ca) {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.owner, Gid: e.owner, ModTime: created, Format: tar.FormatPAX}
		if e.owner == uid {
			h.Uname, h.Gname = "nonroot", "nonroot"
		} else {
			h.Uname, h.Gname = "root", "root"
		}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.contents))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer: %w", err)
		}
		if _, err := tw.Write(e.contents); err != nil {
			return nil, fmt.Errorf("layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.DefaultCompression) // no name, no time in the header
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	compressed := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(compressed)), nil })
}

// tagRe is what a tag may hold; anything else in a version becomes "-".
var tagRe = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// tags names the image by repository: its version and latest.
func tags(repository string, img v1.Image) ([]name.Tag, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	out := []name.Tag{}
	for _, t := range []string{cf.Config.Labels["org.opencontainers.image.version"], "latest"} {
		t = strings.TrimLeft(tagRe.ReplaceAllString(t, "-"), ".-")
		if t == "" || len(t) > 128 {
			continue
		}
		tag, err := name.NewTag(repository+":"+t, name.StrictValidation)
		if err != nil {
			return nil, fmt.Errorf("image name: %w", err)
		}
		out = append(out, tag)
	}
	return out, nil
}

// write saves the image as a docker-archive tarball under each tag; the
// file appears whole or not at all.
func write(file string, img v1.Image, tagged []name.Tag) error {
	refs := map[name.Reference]v1.Image{}
	for _, t := range tagged {
		refs[t] = img
	}
	tmp := file + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", file, err)
	}
	return os.Rename(tmp, file)
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.Binary, "binary", "bin/gatehouse", "the static gatehouse binary (make build)")
	fs.StringVar(&o.CACerts, "ca", "/etc/ssl/certs/ca-certificates.crt", "CA certificates to ship (Debian's ca-certificates bundle)")
	fs.StringVar(&o.Version, "version", "", "org.opencontainers.image.version (default: the binary's version)")
	fs.StringVar(&o.Revision, "revision", "", "org.opencontainers.image.revision (default: the binary's commit)")
	out := fs.String("o", "bin/gatehouse-image.tar", "output: a docker-archive tarball")
	repo := fs.String("name", "localhost/gatehouse", "image name; tagged with the version and latest")
	epoch := fs.String("created", os.Getenv("SOURCE_DATE_EPOCH"), "image timestamp in Unix seconds (default: the commit's time)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *epoch != "" {
		sec, err := strconv.ParseInt(*epoch, 10, 64)
		if err != nil || sec < 0 {
			return errors.New("-created: want Unix seconds")
		}
		o.Created = time.Unix(sec, 0)
	}
	start := time.Now()
	img, err := build(o)
	if err != nil {
		return err
	}
	tagged, err := tags(*repo, img)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(path.Dir(*out), 0o755); err != nil {
		return err
	}
	if err := write(*out, img, tagged); err != nil {
		return err
	}
	digest, err := img.ConfigName()
	if err != nil {
		return err
	}
	fi, err := os.Stat(*out)
	if err != nil {
		return err
	}
	names := make([]string, len(tagged))
	for i, t := range tagged {
		names[i] = t.String()
	}
	fmt.Fprintf(stdout, "%s: %s (image ID %s), %.1f MB, built in %s\nload it with: podman load -i %s\n",
		*out, strings.Join(names, ", "), digest.Hex[:12], float64(fi.Size())/1e6, time.Since(start).Round(time.Millisecond), *out)
	return nil
}
