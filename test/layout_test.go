package test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "gatehouse"

// layoutTags are the build tags whose files the layout check reads as
// well (test/soak_test.go is behind soak); a file behind any other tag
// fails the check until its tag is added here.
const layoutTags = "soak"

// importEdge is one import of a package of ours by another, from the
// package's own code or from its tests (in-package or external _test
// files). Paths are inside the module: "provision/sqldir".
type importEdge struct {
	from, to string
	test     bool
}

// layoutRule is what one package may import from the module, and why.
type layoutRule struct {
	// code is what its non-test files may import; "*" is every package
	// that is not test support.
	code []string
	// tests is what its _test files may import besides code, itself and
	// (for cmd and test) "*": any package at all.
	tests []string
	why   string
}

// layoutRules is the design's dependency direction (shared design notes,
// "Dependencies flow one way"), one rule per package. A new package fails
// the check until it has a rule here with its reason.
var layoutRules = map[string]layoutRule{
	"cmd/gatehouse": {code: []string{"*"}, tests: []string{"*"},
		why: "cmd is main: it reads the config, chooses the store backend and wires every package; it is the one place that knows them all"},
	"deploy/mkimage": {
		why: "mkimage packs the built binary into a container image; it links no gatehouse code, so building the image never depends on the proxy's packages"},
	"proxy": {code: []string{"session", "provision"},
		why: "proxy is the request path: it uses session for sign-in and provision's Store interface for users, never a backend (provision/sqldir, provision/ldapdir: cmd chooses those) and never scim (the second door into the store, beside it, not under it)"},
	"session": {tests: []string{"test/redistest", "test/oidcop"},
		why: "session is the SAML SP and the session cookie; it imports nothing of ours, so it knows no store and no proxy (its tests may start Redis with test/redistest for the shared replay cache, and an OpenID Provider with test/oidcop)"},
	"provision": {
		why: "provision is the shared contract (User, Store, sentinel errors, canonical names) that every other package imports; importing anything of ours from it would turn the arrows around"},
	"provision/sqldir": {code: []string{"provision"}, tests: []string{"provision/storetest", "test/pgtest"},
		why: "a backend implements provision.Store and imports only provision; its tests run the conformance suite (provision/storetest) and may start PostgreSQL (test/pgtest)"},
	"provision/ldapdir": {code: []string{"provision"}, tests: []string{"provision/storetest", "test/slapd", "test/samba"},
		why: "a backend implements provision.Store and imports only provision; its tests run the conformance suite (provision/storetest) and may start OpenLDAP (test/slapd) and Samba AD (test/samba)"},
	"provision/storetest": {code: []string{"provision"},
		why: "the conformance suite is written against provision.Store alone, so every backend runs it unchanged and none is built into another's tests"},
	"provision/storetest/realstore": {code: []string{"provision", "provision/sqldir", "test/pgtest"},
		why: "realstore opens real SQLite and PostgreSQL stores for the tests of store consumers (scim) and hands them back as provision.Store, so those tests never name a backend; it is the one test-support package that imports a backend, and backends' own tests do not use it"},
	"scim": {code: []string{"provision"}, tests: []string{"scim/scimtest", "provision/storetest/realstore", "test/pgtest"},
		why: "scim serves SCIM 2.0 over provision.Store alone, whatever backend cmd chose, and never imports proxy; its tests replay recorded clients (scim/scimtest) against real stores opened by provision/storetest/realstore, not by a backend package, on the PostgreSQL cluster of test/pgtest (pgtest.Main in TestMain)"},
	"scim/scimtest": {
		why: "scimtest replays recorded SCIM clients over HTTP against any server; it needs nothing of ours"},
	"test": {tests: []string{"*"},
		why: "test holds the end-to-end tests across packages; outside its tests it has only doc.go, so nothing ships from it"},
	"test/peers/samlsp": {
		why: "the peer SP that make bench measures gatehouse against (crewjam/saml's samlsp), built and run as a process of its own; it links no gatehouse code, so it measures only itself"},
	"test/peers/bareproxy": {
		why: "the bare Go reverse proxy that make bench measures gatehouse's proxied path against, as a process of its own; it links no gatehouse code, so it measures only itself"},
	"test/pgtest": {
		why: "the PostgreSQL harness starts throwaway clusters; it knows nothing of gatehouse"},
	"test/redistest": {
		why: "the Redis harness starts a throwaway redis-server; it knows nothing of gatehouse"},
	"test/oidcop": {
		why: "the OpenID Provider harness runs oidc-provider under node behind a TLS front; it knows nothing of gatehouse"},
	"test/slapd": {tests: []string{"provision/ldapdir"},
		why: "the OpenLDAP harness knows nothing of gatehouse; its own test loads ldapdir's schema, the schema it exists to serve"},
	"test/samba": {tests: []string{"provision/ldapdir"},
		why: "the Samba AD harness knows nothing of gatehouse; its own test applies ldapdir's Active Directory schema, the schema it exists to serve"},
}

// testSupport are the packages that only tests import. The value is why.
var testSupport = map[string]string{
	"provision/storetest":           "the conformance suite calls testing.T",
	"provision/storetest/realstore": "it opens stores in a test's temporary directory and on a throwaway PostgreSQL cluster",
	"scim/scimtest":                 "it replays a test corpus and calls testing.T",
	"test/pgtest":                   "it starts throwaway PostgreSQL servers",
	"test/redistest":                "it starts a throwaway redis-server",
	"test/oidcop":                   "it starts a throwaway OpenID Provider",
	"test/slapd":                    "it starts throwaway OpenLDAP and 389 DS servers",
	"test/samba":                    "it starts a throwaway Samba AD domain controller",
}

// testSupportWhy is the reason for the test-support rule.
const testSupportWhy = "test support is imported by tests only (or by other test support): it is never linked into the gatehouse binary"

// backends are the provision.Store implementations.
var backends = []string{"provision/sqldir", "provision/ldapdir"}

// backendWhy is the reason for the rule between backends.
const backendWhy = "backends never import each other, not even in their tests or through another package: each stands alone behind provision.Store, and cmd alone chooses among them"

// checkLayout returns a description of every edge that breaks a rule,
// with the rule's reason, and of every package that has no rule. pkgs is
// every package of the module; edges every import between them.
func checkLayout(pkgs []string, edges []importEdge) []string {
	var bad []string
	for _, p := range pkgs {
		if _, ok := layoutRules[p]; !ok {
			bad = append(bad, p+" has no layout rule: add one to layoutRules in test/layout_test.go saying what it may import and why")
		}
	}
	// reach is what each package's code imports, directly or not.
	code := map[string][]string{}
	for _, e := range edges {
		if !e.test {
			code[e.from] = append(code[e.from], e.to)
		}
	}
	reach := func(from string) map[string]bool {
		seen := map[string]bool{}
		next := []string{from}
		for len(next) > 0 {
			p := next[len(next)-1]
			next = next[:len(next)-1]
			for _, q := range code[p] {
				if !seen[q] {
					seen[q] = true
					next = append(next, q)
				}
			}
		}
		return seen
	}
	for _, e := range edges {
		if e.from == e.to {
			continue // an external test package importing the package it tests
		}
		where := "code"
		if e.test {
			where = "tests"
		}
		broken := func(why string) {
			bad = append(bad, e.from+" imports "+e.to+" in its "+where+": "+why)
		}
		rule, ok := layoutRules[e.from]
		if !ok {
			continue // reported above
		}
		if _, helper := testSupport[e.to]; helper && !e.test {
			if _, fromHelper := testSupport[e.from]; !fromHelper {
				broken(testSupportWhy + " (" + e.to + ": " + testSupport[e.to] + ")")
				continue
			}
		}
		if slices.Contains(backends, e.from) {
			via := reach(e.to)
			via[e.to] = true
			other := ""
			for _, b := range backends {
				if b != e.from && via[b] {
					other = b
				}
			}
			if other != "" {
				broken(backendWhy + " (" + e.to + " brings in " + other + ")")
				continue
			}
		}
		allowed := rule.code
		if e.test {
			allowed = append(slices.Clone(rule.code), rule.tests...)
		}
		_, toHelper := testSupport[e.to]
		if slices.Contains(allowed, e.to) || (slices.Contains(rule.code, "*") && !toHelper) ||
			(e.test && slices.Contains(rule.tests, "*")) {
			continue
		}
		broken(rule.why)
	}
	return bad
}

// goListLayout lists the module's packages and the imports among them,
// from code and from tests, with `go list`.
func goListLayout(t *testing.T) ([]string, []importEdge) {
	t.Helper()
	cmd := exec.Command("go", "list", "-tags", layoutTags,
		"-json=ImportPath,Imports,TestImports,XTestImports,IgnoredGoFiles", module+"/...")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	ours := func(p string) (string, bool) {
		if p == module {
			return "", true
		}
		return strings.CutPrefix(p, module+"/")
	}
	var pkgs []string
	var edges []importEdge
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
			IgnoredGoFiles                     []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		from, _ := ours(p.ImportPath)
		pkgs = append(pkgs, from)
		for _, f := range p.IgnoredGoFiles {
			t.Errorf("%s/%s is left out by its build constraints, so its imports are not checked: add its tag to layoutTags", from, f)
		}
		for _, list := range []struct {
			imports []string
			test    bool
		}{{p.Imports, false}, {p.TestImports, true}, {p.XTestImports, true}} {
			for _, imp := range list.imports {
				if to, ok := ours(imp); ok {
					edges = append(edges, importEdge{from: from, to: to, test: list.test})
				}
			}
		}
	}
	return pkgs, edges
}

// TestImportDirection enforces the dependency rules of the design at
// package level (sub-packages included), for code and for tests; the
// rules and their reasons are layoutRules, testSupport and backends.
func TestImportDirection(t *testing.T) {
	pkgs, edges := goListLayout(t)
	// Proof that the listing was read, code and tests alike.
	for _, want := range []importEdge{
		{from: "proxy", to: "session"},
		{from: "provision/sqldir", to: "provision/storetest", test: true},
	} {
		if !slices.Contains(edges, want) {
			t.Errorf("go list did not show %+v; the check read nothing", want)
		}
	}
	for p := range layoutRules {
		if !slices.Contains(pkgs, p) {
			t.Errorf("layoutRules names %s, which is no longer a package: remove or rename its rule", p)
		}
	}
	for _, b := range checkLayout(pkgs, edges) {
		t.Errorf("LAYOUT RULE BROKEN: %s", b)
	}
}

// TestLayoutCheckerReportsForbiddenEdges feeds checkLayout made-up import
// lists: each forbidden edge is reported with its rule's reason, and the
// allowed ones are not, so TestImportDirection can fail.
func TestLayoutCheckerReportsForbiddenEdges(t *testing.T) {
	all := make([]string, 0, len(layoutRules))
	for p := range layoutRules {
		all = append(all, p)
	}
	sort.Strings(all)
	code := func(from, to string) importEdge { return importEdge{from: from, to: to} }
	test := func(from, to string) importEdge { return importEdge{from: from, to: to, test: true} }
	for _, c := range []struct {
		name  string
		pkgs  []string
		edges []importEdge
		want  string // a part of the one report; "" for none
	}{
		{"ProxyImportsSQLBackend", all, []importEdge{code("proxy", "provision/sqldir")}, "proxy imports provision/sqldir in its code: proxy is the request path"},
		{"ProxyTestsImportLDAPBackend", all, []importEdge{test("proxy", "provision/ldapdir")}, "never a backend"},
		{"ProxyImportsSCIM", all, []importEdge{code("proxy", "scim")}, "never scim"},
		{"SCIMImportsLDAPBackend", all, []importEdge{code("scim", "provision/ldapdir")}, "scim serves SCIM 2.0 over provision.Store alone"},
		{"SCIMTestsImportSQLBackend", all, []importEdge{test("scim", "provision/sqldir")}, "scim imports provision/sqldir in its tests"},
		{"SCIMImportsProxy", all, []importEdge{code("scim", "proxy")}, "never imports proxy"},
		{"SessionImportsProvision", all, []importEdge{code("session", "provision")}, "session is the SAML SP"},
		{"ProvisionImportsSession", all, []importEdge{code("provision", "session")}, "would turn the arrows around"},
		{"SQLImportsLDAP", all, []importEdge{code("provision/sqldir", "provision/ldapdir")}, backendWhy},
		{"LDAPTestsImportSQL", all, []importEdge{test("provision/ldapdir", "provision/sqldir")}, backendWhy},
		{"LDAPTestsReachSQLThroughRealstore", all, []importEdge{
			code("provision/storetest/realstore", "provision/sqldir"), test("provision/ldapdir", "provision/storetest/realstore"),
		}, "provision/storetest/realstore brings in provision/sqldir"},
		{"StoretestImportsBackend", all, []importEdge{code("provision/storetest", "provision/sqldir")}, "the conformance suite"},
		{"CodeImportsTestHelper", all, []importEdge{code("session", "test/redistest")}, testSupportWhy},
		{"CmdImportsTestHelper", all, []importEdge{code("cmd/gatehouse", "test/pgtest")}, testSupportWhy},
		{"CmdImportsStoretest", all, []importEdge{code("cmd/gatehouse", "provision/storetest")}, testSupportWhy},
		{"PackageWithoutRule", append(slices.Clone(all), "proxy/extra"), nil, "proxy/extra has no layout rule"},
		{"EdgeFromPackageWithoutRule", append(slices.Clone(all), "proxy/extra"), []importEdge{code("proxy/extra", "provision/sqldir")}, "proxy/extra has no layout rule"},

		{"CmdWiresBackends", all, []importEdge{code("cmd/gatehouse", "provision/sqldir"), code("cmd/gatehouse", "scim"), test("cmd/gatehouse", "test/slapd")}, ""},
		{"ProxyImportsSessionAndProvision", all, []importEdge{code("proxy", "session"), code("proxy", "provision")}, ""},
		{"BackendTestsRunConformance", all, []importEdge{
			code("provision/storetest", "provision"), test("provision/sqldir", "provision/storetest"), test("provision/sqldir", "test/pgtest"),
			test("provision/ldapdir", "provision/storetest"), test("provision/ldapdir", "test/slapd"), test("provision/ldapdir", "provision/ldapdir"),
		}, ""},
		{"SCIMTestsUseRealstore", all, []importEdge{
			code("provision/storetest/realstore", "provision/sqldir"), code("provision/storetest/realstore", "test/pgtest"),
			test("scim", "provision/storetest/realstore"), test("scim", "test/pgtest"), test("scim", "scim/scimtest"),
		}, ""},
		{"EndToEndTestsImportAll", all, []importEdge{test("test", "proxy"), test("test", "provision/ldapdir"), test("test", "test/slapd")}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := checkLayout(c.pkgs, c.edges)
			switch {
			case c.want == "" && len(got) > 0:
				t.Errorf("allowed edges were reported: %q", got)
			case c.want != "" && len(got) != 1:
				t.Errorf("want one report containing %q, got %q", c.want, got)
			case c.want != "" && !strings.Contains(got[0], c.want):
				t.Errorf("report %q does not give the reason %q", got[0], c.want)
			}
		})
	}
}

// TestKnownAdvisoriesPinned stands in for govulncheck, whose database these
// machines cannot reach: goxmldsig below v1.6.1 has a signature bypass
// (GHSA-479m-364c-43vc) and a canonicalisation DoS (GHSA-qhrp-hfff-vphr);
// crewjam/saml below v0.5.1 has known signature and parsing flaws.
func TestKnownAdvisoriesPinned(t *testing.T) {
	for mod, min := range map[string]string{
		"github.com/russellhaering/goxmldsig": "v1.6.1",
		"github.com/crewjam/saml":             "v0.5.1",
	} {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", mod).Output()
		if err != nil {
			t.Fatalf("go list -m %s: %v", mod, err)
		}
		got := strings.TrimSpace(string(out))
		if semverLess(got, min) {
			t.Errorf("%s resolves to %s; at least %s is required", mod, got, min)
		}
	}
}

// semverLess compares vMAJOR.MINOR.PATCH versions, ignoring pre-release
// and build suffixes (a pre-release of the minimum counts as below it).
func semverLess(a, b string) bool {
	pa, preA := parseSemver(a)
	pb, _ := parseSemver(b)
	for i := range pa {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return preA
}

func parseSemver(v string) ([3]int, bool) {
	var out [3]int
	v = strings.TrimPrefix(v, "v")
	core, _, _ := strings.Cut(v, "+")
	core, pre, hasPre := strings.Cut(core, "-")
	for i, p := range strings.SplitN(core, ".", 3) {
		out[i], _ = strconv.Atoi(p)
	}
	return out, hasPre && pre != ""
}

func TestSemverLess(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"v1.4.0", "v1.6.1", true},
		{"v1.6.0", "v1.6.1", true},
		{"v1.6.1", "v1.6.1", false},
		{"v1.6.1-rc1", "v1.6.1", true},
		{"v1.10.0", "v1.6.1", false},
		{"v2.0.0", "v1.6.1", false},
		{"v0.5.0", "v0.5.1", true},
		{"v0.5.2", "v0.5.1", false},
	} {
		if got := semverLess(c.a, c.b); got != c.want {
			t.Errorf("semverLess(%s, %s) = %v", c.a, c.b, got)
		}
	}
}
