package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"gatehouse/test/redistest"
)

var updateMonitoring = flag.Bool("update-monitoring", false, "rewrite deploy/kubernetes/monitoring/prometheusrule.yaml from the alert rules")

var (
	monitoringDir  = filepath.Join("..", "..", "deploy", "monitoring")
	rulesFile      = filepath.Join(monitoringDir, "gatehouse-alerts.yaml")
	dashboardFile  = filepath.Join(monitoringDir, "grafana-dashboard.json")
	operatorDir    = filepath.Join("..", "..", "deploy", "kubernetes", "monitoring")
	prometheusRule = filepath.Join(operatorDir, "prometheusrule.yaml")
)

// promtool finds promtool (Debian's prometheus package; make test installs it).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: make test installs it (Debian: apt-get install prometheus)")
	}
	return p
}

// TestAlertRules: promtool accepts the rules, and its unit tests (a store
// outage, expiring certificates, a spike of SAML failures, no target at
// all) fire the alerts they should, when they should.
func TestAlertRules(t *testing.T) {
	bin := promtool(t)
	if out, err := exec.Command(bin, "check", "rules", rulesFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "test", "rules", "gatehouse-alerts.test.yaml")
	cmd.Dir = monitoringDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// operatorRule renders the PrometheusRule that carries the rules file's
// groups unchanged.
func operatorRule(t *testing.T) []byte {
	t.Helper()
	src, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	_, groups, ok := bytes.Cut(src, []byte("\ngroups:\n"))
	if !ok {
		t.Fatal("the rules file has no top-level groups:")
	}
	var b bytes.Buffer
	b.WriteString(`# Generated from deploy/monitoring/gatehouse-alerts.yaml; do not edit here. Regenerate with
#   go test ./cmd/gatehouse -run TestPrometheusRuleMatchesAlertRules -update-monitoring
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: gatehouse
  labels:
    app.kubernetes.io/name: gatehouse
spec:
  groups:
`)
	for _, line := range strings.SplitAfter(string(groups), "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
	}
	return b.Bytes()
}

// TestPrometheusRuleMatchesAlertRules: the operator's PrometheusRule holds
// exactly the groups of the plain rules file.
func TestPrometheusRuleMatchesAlertRules(t *testing.T) {
	want := operatorRule(t)
	if *updateMonitoring {
		if err := os.WriteFile(prometheusRule, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(prometheusRule)
	if err != nil {
		t.Fatal(err)
	}
	var plain struct{ Groups any }
	var op struct {
		Kind string
		Spec struct{ Groups any }
	}
	src, _ := os.ReadFile(rulesFile)
	if err := yaml.Unmarshal(src, &plain); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(got, &op); err != nil {
		t.Fatalf("prometheusrule.yaml: %v", err)
	}
	if op.Kind != "PrometheusRule" || plain.Groups == nil || !equalJSON(t, plain.Groups, op.Spec.Groups) {
		t.Error("prometheusrule.yaml's groups differ from deploy/monitoring/gatehouse-alerts.yaml")
	}
	if !bytes.Equal(got, want) {
		t.Error("prometheusrule.yaml is not what the rules file generates; run this test with -update-monitoring")
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return bytes.Equal(ja, jb)
}

// dashboard is what the test reads of the Grafana JSON model.
type dashboard struct {
	Title, UID    string
	SchemaVersion int
	Templating    struct {
		List []struct {
			Name, Type string
			Query      any
		}
	}
	Panels []panel
}

type panel struct {
	ID         int
	Type       string
	Title      string
	Datasource *struct{ Type, UID string }
	GridPos    *struct{ H, W, X, Y int }
	Targets    []struct {
		RefID string
		Expr  string
	}
	Panels []panel // a collapsed row's
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	return d
}

func (d dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// dashboardVars are the values the test puts for the dashboard's variables.
var dashboardVars = strings.NewReplacer("$__rate_interval", "5m", "$job", "gatehouse", "$instance", ".*")

// TestGrafanaDashboard: the dashboard is a Grafana JSON model to import:
// a title and uid, a Prometheus data source variable every query panel
// uses, unique panel ids inside the 24-column grid, and every query is
// PromQL that promtool parses.
func TestGrafanaDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 30 {
		t.Errorf("title %q uid %q schemaVersion %d", d.Title, d.UID, d.SchemaVersion)
	}
	var sawDatasource bool
	for _, v := range d.Templating.List {
		sawDatasource = sawDatasource || (v.Type == "datasource" && v.Name == "datasource" && v.Query == "prometheus")
	}
	if !sawDatasource {
		t.Error("no Prometheus data source variable named datasource")
	}
	ids := map[int]bool{}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	queries := 0
	for _, p := range d.allPanels() {
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %q: id %d missing or repeated", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W < 1 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H < 1 {
			t.Errorf("panel %q: gridPos %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.RefID == "" || strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: a target without refId or expr", p.Title)
			}
			queries++
			fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %q\n", queries, dashboardVars.Replace(tg.Expr))
		}
	}
	f := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool(t), "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("a dashboard query is not PromQL: %v\n%s", err, out)
	}
}

// metricName finds metric names in PromQL. Label names and values are
// lower case too; a name is what stands before "{", "[", ")", an operator
// or the end, and is one of the families gatehouse, Go or the process
// collector export, or up.
var metricName = regexp.MustCompile(`\b(gatehouse_[a-z_]+|process_[a-z_]+|go_[a-z_]+|up)\b`)

// usedMetrics lists every metric the alert rules and the dashboard read.
func usedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	add := func(where, expr string) {
		expr = regexp.MustCompile(`"[^"]*"`).ReplaceAllString(expr, `""`) // label values are not names
		for _, m := range metricName.FindAllString(expr, -1) {
			if !slices.Contains(used[m], where) {
				used[m] = append(used[m], where)
			}
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	src, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(src, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			add("alert "+r.Alert, r.Expr)
		}
	}
	d := loadDashboard(t)
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			add("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			add("variable "+v.Name, fmt.Sprint(q["query"]))
		}
	}
	if len(used) < 15 {
		t.Fatalf("found only %d metric names; the extraction is broken: %v", len(used), slices.Sorted(maps.Keys(used)))
	}
	return used
}

// scrapeFamilies reads a /metrics page: each family's name and type.
func scrapeFamilies(t *testing.T, url string, into map[string]string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			into[f[2]] = f[3]
		}
	}
}

// TestMonitoringMetricsExist: every metric the alert rules and the
// dashboard use is one a running gatehouse exports. It scrapes the demo
// after a login, a refused login and SCIM calls (so the counters with
// labels have series), and an instance with Redis, whose gauge exists only
// then; up is Prometheus's own.
func TestMonitoringMetricsExist(t *testing.T) {
	used := usedMetrics(t)
	families := map[string]string{}

	d := startDemo(t)
	base := demoTraffic(t, d)
	token, err := os.ReadFile(filepath.Join(d.dir, "scim-token"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{strings.TrimSpace(string(token)), "wrong"} {
		req, _ := http.NewRequest(http.MethodGet, base+"/.gatehouse/scim/v2/Users", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	scrapeFamilies(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", d.port+3), families)

	// An instance with Redis.
	srv := redistest.Start(t)
	admin := freeAddr(t)
	cfg := strings.Replace(goodConfig, "upstream: http://127.0.0.1:9000",
		"upstream: http://127.0.0.1:9000\nlisten: 127.0.0.1:0\nadmin_listen: "+admin+"\nstate:\n  redis:\n    url: ${TEST_GATEHOUSE_REDIS}", 1)
	startServing(t, cfg, map[string]string{"TEST_GATEHOUSE_REDIS": "redis://" + srv.Addr}, nil)
	scrapeFamilies(t, "http://"+admin+"/metrics", families)

	var missing []string
	for _, m := range slices.Sorted(maps.Keys(used)) {
		if m == "up" { // made by Prometheus for every target
			continue
		}
		if _, ok := families[m]; ok {
			continue
		}
		base, found := "", false
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(m, suffix); ok {
				base, found = b, true
			}
		}
		if found && (families[base] == "histogram" || families[base] == "summary") {
			continue
		}
		missing = append(missing, fmt.Sprintf("%s (used by %s)", m, strings.Join(used[m], ", ")))
	}
	if len(missing) > 0 {
		t.Errorf("metrics the rules or the dashboard use that gatehouse does not export:\n  %s", strings.Join(missing, "\n  "))
	}
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestMonitoringManifests: the operator overlay lines up with the replicas
// layout: the metrics Service selects gatehouse's pods and names their
// admin port, the ServiceMonitor selects that Service and port, and its job
// is one the alert rules select.
func TestMonitoringManifests(t *testing.T) {
	objs := loadKustomization(t, operatorDir)
	svc := find(objs, "Service", "gatehouse-metrics")
	sm := find(objs, "ServiceMonitor", "gatehouse")
	if svc == nil || sm == nil || find(objs, "PrometheusRule", "gatehouse") == nil {
		t.Fatal("the overlay lacks the metrics Service, the ServiceMonitor or the PrometheusRule")
	}
	replicas := loadKustomization(t, filepath.Join("..", "..", "deploy", "kubernetes", "replicas"))
	dep := find(replicas, "Deployment", "gatehouse")
	podLabels, _ := dep.get("spec", "template", "metadata", "labels").(map[string]any)
	if !selects(svc.get("spec", "selector").(map[string]any), podLabels) {
		t.Error("the metrics Service does not select gatehouse's pods")
	}
	var adminPort bool
	for _, c := range node(dep.get("spec", "template", "spec").(map[string]any)).list("containers") {
		for _, p := range c.list("ports") {
			adminPort = adminPort || (c.str("name") == "gatehouse" && p.str("name") == svc.list("spec", "ports")[0].str("targetPort"))
		}
	}
	if !adminPort {
		t.Error("the metrics Service's targetPort is not a port of the gatehouse container")
	}
	svcLabels, _ := svc.get("metadata", "labels").(map[string]any)
	if !selects(sm.get("spec", "selector", "matchLabels").(map[string]any), svcLabels) {
		t.Error("the ServiceMonitor does not select the metrics Service")
	}
	if ep := sm.list("spec", "endpoints"); len(ep) != 1 || ep[0].str("port") != svc.list("spec", "ports")[0].str("name") {
		t.Error("the ServiceMonitor's endpoint does not name the Service's port")
	}
	job, _ := svcLabels[sm.str("spec", "jobLabel")].(string)
	if !regexp.MustCompile(`^gatehouse.*$`).MatchString(job) {
		t.Errorf("the scrape job would be %q; the alert rules select job=~\"gatehouse.*\"", job)
	}
}
