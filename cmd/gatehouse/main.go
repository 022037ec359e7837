// Command gatehouse puts SAML single sign-on and just-in-time user
// provisioning in front of a web application.
//
// Usage:
//
//	gatehouse serve --config gatehouse.yaml
//	gatehouse check --config gatehouse.yaml
//	gatehouse import --config gatehouse.yaml users.json
//	gatehouse demo
//	gatehouse version   (or --version)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `gatehouse: SAML single sign-on and JIT provisioning in front of a web application

Usage:
  gatehouse serve --config FILE   run the proxy
  gatehouse check --config FILE   validate a config; print every problem; exit 1 if any
  gatehouse explain --config FILE --idp NAME --response FILE [--userinfo FILE] [--at issued|now|TIME]
                                  validate a saved SAML response (offline) or OpenID Connect ID
                                  token (against the provider's keys) and show the user it maps
                                  to and what a login would write (writes nothing)
  gatehouse import [--config FILE] [--format scim|csv] [--batch N] FILE|-
                                  create or update users from SCIM JSON or CSV, as SCIM
                                  would; a re-run writes nothing new; exit 1 if any failed
  gatehouse demo [--port N]       run a demo SAML IdP, a demo OpenID provider, a demo application
                                  and gatehouse on this machine
  gatehouse version               print the version and commit (also --version)
`

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var err error
	switch cmd {
	case "serve":
		path := fs.String("config", "gatehouse.yaml", "config file")
		if fs.Parse(args) != nil {
			return 2
		}
		err = serveCommand(ctx, *path, stderr)
	case "check":
		path := fs.String("config", "gatehouse.yaml", "config file")
		if fs.Parse(args) != nil {
			return 2
		}
		return checkCommand(ctx, *path, stdout, stderr)
	case "explain":
		path := fs.String("config", "gatehouse.yaml", "config file")
		idp := fs.String("idp", "", "the IdP's name in the config")
		resp := fs.String("response", "", "file holding the response: XML, base64, or a SAMLResponse= form body; for an OpenID provider, the ID token")
		userinfo := fs.String("userinfo", "", "OpenID providers: a file holding the UserInfo response (JSON) of the same login")
		at := fs.String("at", "issued", "check times as at: issued (the response's IssueInstant), now, or an RFC 3339 time")
		if fs.Parse(args) != nil {
			return 2
		}
		if *idp == "" || *resp == "" {
			fmt.Fprintln(stderr, "gatehouse explain: --idp and --response are required")
			return 2
		}
		return explainCommand(ctx, *path, *idp, *resp, *userinfo, *at, stdout, stderr)
	case "import":
		o := importOptions{}
		fs.StringVar(&o.config, "config", "gatehouse.yaml", "config file")
		fs.StringVar(&o.format, "format", "", "scim (JSON array, ListResponse or one User per line) or csv; default by the file's extension")
		fs.IntVar(&o.batch, "batch", 1000, "users per transaction")
		if fs.Parse(args) != nil {
			return 2
		}
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "gatehouse import: name one input file, or - for standard input")
			return 2
		}
		o.input = fs.Arg(0)
		return importCommand(ctx, o, os.Stdin, stdout, stderr)
	case "demo":
		port := fs.Int("port", 8080, "port of gatehouse; the demo IdP, the application, the admin listener and the demo OpenID provider use the next four")
		dir := fs.String("dir", "demo-data", "directory for the demo's keys, config and SQLite file")
		if fs.Parse(args) != nil {
			return 2
		}
		err = demoCommand(ctx, *dir, *port, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, readBuildInfo())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 1
	}
	return 0
}

// buildVersion and buildRevision are set by `make build`, from `git
// describe --tags --always --dirty` and `git rev-parse HEAD`: -ldflags
// "-X main.buildVersion=... -X main.buildRevision=...".
var buildVersion, buildRevision string

// buildInfo is what the binary knows of its build.
type buildInfo struct {
	Version   string // buildVersion, else the module version, else "(devel)"
	Revision  string // the commit (vcs.revision); "" when built outside a checkout
	Modified  bool   // built with uncommitted changes (vcs.modified)
	Time      string // the commit's time (vcs.time)
	GoVersion string
}

// readBuildInfo reads the linker-set version and the Go toolchain's build
// information (stamped by `go build` in a git checkout).
func readBuildInfo() buildInfo {
	b := buildInfo{Version: buildVersion, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			case "vcs.time":
				b.Time = s.Value
			}
		}
	}
	if b.Revision == "" && buildRevision != "" {
		b.Revision = buildRevision
		b.Modified = strings.HasSuffix(buildVersion, "-dirty")
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}

// revision is the commit, marked "-dirty" when built with changes.
func (b buildInfo) revision() string {
	if b.Revision != "" && b.Modified {
		return b.Revision + "-dirty"
	}
	return b.Revision
}

// String is the version line: "gatehouse VERSION (commit REV, TIME) GO OS/ARCH".
func (b buildInfo) String() string {
	var extra []string
	if r := b.revision(); r != "" {
		extra = append(extra, "commit "+r)
	}
	if b.Time != "" {
		extra = append(extra, b.Time)
	}
	s := "gatehouse " + b.Version
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	return s + " " + b.GoVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
}

func checkCommand(ctx context.Context, path string, stdout, stderr io.Writer) int {
	f, report := readConfig(path, os.LookupEnv)
	if len(report.Problems) == 0 {
		report.add(liveChecks(ctx, f)...)
	}
	for _, line := range report.Lines() {
		fmt.Fprintln(stderr, line)
	}
	if len(report.Problems) > 0 {
		fmt.Fprintf(stderr, "%s: %s\n", path, report.Count())
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}
