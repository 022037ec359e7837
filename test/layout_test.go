package test

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

const module = "gatehouse"

// TestImportDirection enforces the dependency rules of the design: proxy
// may import session and provision; scim only provision; session and
// provision nothing of ours; proxy and scim never each other. cmd wires
// everything.
func TestImportDirection(t *testing.T) {
	allowed := map[string][]string{
		"proxy":     {"session", "provision"},
		"session":   {},
		"provision": {},
		"scim":      {"provision"},
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	sawProxySession := false // proof that the listing is read at all
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module+"/")
		top := strings.Split(pkg, "/")[0]
		rules, ruled := allowed[top]
		if !ruled {
			continue
		}
		for _, dep := range fields[1:] {
			if !strings.HasPrefix(dep, module+"/") {
				continue
			}
			depTop := strings.Split(strings.TrimPrefix(dep, module+"/"), "/")[0]
			if depTop == top {
				continue // sub-packages of the same tree, e.g. provision/sqldir
			}
			sawProxySession = sawProxySession || (pkg == "proxy" && depTop == "session")
			ok := false
			for _, a := range rules {
				ok = ok || depTop == a
			}
			if !ok {
				t.Errorf("%s imports %s, which the design forbids", pkg, dep)
			}
		}
	}
	if !sawProxySession {
		t.Error("go list output did not show proxy importing session; the check read nothing")
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
