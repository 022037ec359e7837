package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// node reads a decoded YAML document by path.
type node map[string]any

func (n node) get(path ...string) any {
	var cur any = map[string]any(n)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (n node) str(path ...string) string { s, _ := n.get(path...).(string); return s }

func (n node) list(path ...string) []node {
	raw, _ := n.get(path...).([]any)
	out := make([]node, 0, len(raw))
	for _, r := range raw {
		if m, ok := r.(map[string]any); ok {
			out = append(out, node(m))
		}
	}
	return out
}

// loadKustomization decodes every resource a kustomization lists.
func loadKustomization(t *testing.T, dir string) []node {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	k := node(raw)
	var objs []node
	for _, r := range k.get("resources").([]any) {
		f, err := os.ReadFile(filepath.Join(dir, r.(string)))
		if err != nil {
			t.Fatalf("resource %v: %v", r, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(f))
		for {
			var raw map[string]any // nested maps decode as map[string]any
			if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%v: %v", r, err)
			}
			o := node(raw)
			if o.str("kind") == "" || o.str("metadata", "name") == "" {
				t.Fatalf("%v: a document without kind or name", r)
			}
			objs = append(objs, o)
		}
	}
	return objs
}

func find(objs []node, kind, name string) node {
	for _, o := range objs {
		if o.str("kind") == kind && o.str("metadata", "name") == name {
			return o
		}
	}
	return nil
}

// selector is the labels a Service, PodDisruptionBudget or NetworkPolicy
// selects pods by.
func (n node) selector() map[string]any {
	if m, ok := n.get("spec", "podSelector", "matchLabels").(map[string]any); ok {
		return m
	}
	if m, ok := n.get("spec", "selector", "matchLabels").(map[string]any); ok {
		return m
	}
	m, _ := n.get("spec", "selector").(map[string]any)
	return m
}

// selects tells whether selector sel picks a pod with these labels.
func selects(sel, labels map[string]any) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

var envRefs = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// TestKubernetesManifests: the manifests parse, and what refers to what
// lines up: probes and Services name real container ports, the ports are
// the ones gatehouse's config listens on, every Secret, key and ConfigMap
// referred to exists, every file and variable the config names is mounted
// or set, the config decodes as gatehouse's own, and gatehouse runs
// non-root on a read-only root filesystem.
func TestKubernetesManifests(t *testing.T) {
	for _, overlay := range []string{"sidecar", "replicas"} {
		t.Run(overlay, func(t *testing.T) {
			objs := loadKustomization(t, filepath.Join("..", "..", "deploy", "kubernetes", overlay))
			var sawGatehouse bool
			for _, d := range objs {
				if d.str("kind") != "Deployment" {
					continue
				}
				spec := node(d.get("spec", "template", "spec").(map[string]any))
				labels, _ := d.get("spec", "template", "metadata", "labels").(map[string]any)
				volumes := map[string]node{}
				for _, v := range spec.list("volumes") {
					volumes[v.str("name")] = v
					if cm := v.str("configMap", "name"); cm != "" && find(objs, "ConfigMap", cm) == nil {
						t.Errorf("%s: volume %s names a missing ConfigMap %s", d.str("metadata", "name"), v.str("name"), cm)
					}
					if s := v.str("secret", "secretName"); s != "" {
						sec := find(objs, "Secret", s)
						if sec == nil {
							t.Errorf("volume %s names a missing Secret %s", v.str("name"), s)
						}
						for _, it := range v.list("secret", "items") {
							if sec.get("stringData", it.str("key")) == nil {
								t.Errorf("volume %s takes key %s, which Secret %s lacks", v.str("name"), it.str("key"), s)
							}
						}
					}
					if c := v.str("persistentVolumeClaim", "claimName"); c != "" && find(objs, "PersistentVolumeClaim", c) == nil {
						t.Errorf("volume %s names a missing claim %s", v.str("name"), c)
					}
				}
				for _, c := range spec.list("containers") {
					ports := map[string]int{}
					for _, p := range c.list("ports") {
						ports[p.str("name")] = p.get("containerPort").(int)
					}
					for _, probe := range []string{"readinessProbe", "livenessProbe"} {
						if p := c.get(probe); p != nil {
							name, _ := c.get(probe, "httpGet", "port").(string)
							if name == "" {
								name, _ = c.get(probe, "tcpSocket", "port").(string)
							}
							if _, ok := ports[name]; !ok {
								t.Errorf("%s: %s uses port %q, which the container does not name", c.str("name"), probe, name)
							}
						}
					}
					env := map[string]bool{}
					for _, e := range c.list("env") {
						env[e.str("name")] = true
						if ref := e.str("valueFrom", "secretKeyRef", "name"); ref != "" {
							sec := find(objs, "Secret", ref)
							if sec == nil || sec.get("stringData", e.str("valueFrom", "secretKeyRef", "key")) == nil {
								t.Errorf("%s: env %s refers to a missing secret key", c.str("name"), e.str("name"))
							}
						}
					}
					if c.str("name") != "gatehouse" {
						continue
					}
					sawGatehouse = true
					if c.get("securityContext", "readOnlyRootFilesystem") != true || c.get("securityContext", "allowPrivilegeEscalation") != false {
						t.Error("gatehouse must run with a read-only root filesystem and no privilege escalation")
					}
					if spec.get("securityContext", "runAsNonRoot") != true {
						t.Error("the pod must run as non-root")
					}
					if c.get("resources", "requests") == nil {
						t.Error("gatehouse has no resource requests")
					}
					// The config, decoded by gatehouse itself.
					cm := find(objs, "ConfigMap", "gatehouse-config")
					text, _ := cm.get("data", "gatehouse.yaml").(string)
					f, err := decodeConfig(strings.NewReader(text))
					if err != nil {
						t.Fatalf("gatehouse.yaml in the ConfigMap: %v", err)
					}
					if fmt.Sprint(ports["http"]) != port(f.Listen) || fmt.Sprint(ports["admin"]) != port(f.AdminListen) {
						t.Errorf("config listens on %s and %s; container ports http=%d admin=%d", f.Listen, f.AdminListen, ports["http"], ports["admin"])
					}
					mounts := map[string]node{}
					for _, m := range c.list("volumeMounts") {
						mounts[m.str("mountPath")] = m
					}
					files := append([]string{f.Session.KeyFile, f.Session.CertFile, f.Session.MetadataCacheDir}, f.Session.Cookie.KeyFiles...)
					for _, p := range f.IdPs {
						files = append(files, p.MetadataSigningCerts...)
					}
					if f.SCIM != nil {
						files = append(files, f.SCIM.TokenFiles...)
					}
					if f.Store.SQLite != nil {
						files = append(files, f.Store.SQLite.Path)
					}
					for _, file := range files {
						if file == "" {
							continue
						}
						var mount node
						var at string
						for p, m := range mounts {
							if (file == p || strings.HasPrefix(file, strings.TrimSuffix(p, "/")+"/")) && len(p) > len(at) {
								mount, at = m, p
							}
						}
						if mount == nil {
							t.Errorf("the config names %s, which no volume mount holds", file)
							continue
						}
						v := volumes[mount.str("name")]
						if sec := v.str("secret", "secretName"); sec != "" {
							key := strings.TrimPrefix(file, at+"/")
							items := v.list("secret", "items")
							if len(items) > 0 && !slices.ContainsFunc(items, func(it node) bool { return it.str("path") == key }) {
								t.Errorf("%s: the secret volume does not project %s", file, key)
							}
							if find(objs, "Secret", sec).get("stringData", key) == nil {
								t.Errorf("%s: Secret %s has no key %s", file, sec, key)
							}
						}
					}
					for _, m := range envRefs.FindAllStringSubmatch(text, -1) {
						if !env[m[1]] {
							t.Errorf("the config reads ${%s}, which the container does not set", m[1])
						}
					}
				}
				// A pod that holds the application beside gatehouse admits
				// traffic from other pods on gatehouse's ports only: the
				// application trusts identity headers.
				var gatehousePorts, appContainers []string
				inPod := false
				for _, c := range spec.list("containers") {
					if c.str("name") != "gatehouse" {
						appContainers = append(appContainers, c.str("name"))
						continue
					}
					inPod = true
					for _, p := range c.list("ports") {
						gatehousePorts = append(gatehousePorts, p.str("name"))
					}
				}
				if inPod && len(appContainers) > 0 {
					guarded := false
					for _, np := range objs {
						if np.str("kind") != "NetworkPolicy" || !selects(np.selector(), labels) {
							continue
						}
						open := []string{}
						for _, rule := range np.list("spec", "ingress") {
							ports := rule.list("ports")
							if len(ports) == 0 {
								open = append(open, "every port")
							}
							for _, p := range ports {
								open = append(open, fmt.Sprint(p.get("port")))
							}
						}
						guarded = slices.Contains(np.get("spec", "policyTypes").([]any), any("Ingress"))
						for _, o := range open {
							if !slices.Contains(gatehousePorts, o) {
								guarded = false
								t.Errorf("NetworkPolicy %s opens %s, beside gatehouse's ports %v", np.str("metadata", "name"), o, gatehousePorts)
							}
						}
					}
					if !guarded {
						t.Errorf("%s: the application containers %v share the pod with gatehouse, and no NetworkPolicy closes their ports", d.str("metadata", "name"), appContainers)
					}
				}
				// Services and disruption budgets select this pod by its labels.
				for _, s := range objs {
					if s.str("kind") != "Service" || !selects(s.selector(), labels) {
						continue
					}
					for _, p := range s.list("spec", "ports") {
						target := p.str("targetPort")
						found := false
						for _, c := range spec.list("containers") {
							for _, cp := range c.list("ports") {
								found = found || cp.str("name") == target
							}
						}
						if !found {
							t.Errorf("Service %s targets port %q, which no container of %s names", s.str("metadata", "name"), target, d.str("metadata", "name"))
						}
					}
				}
			}
			if !sawGatehouse {
				t.Fatal("no gatehouse container")
			}
			for _, s := range objs {
				if kind := s.str("kind"); kind != "Service" && kind != "PodDisruptionBudget" && kind != "NetworkPolicy" {
					continue
				}
				sel := s.selector()
				matched := false
				for _, d := range objs {
					labels, _ := d.get("spec", "template", "metadata", "labels").(map[string]any)
					matched = matched || (d.str("kind") == "Deployment" && selects(sel, labels))
				}
				if !matched {
					t.Errorf("%s %s selects no pod", s.str("kind"), s.str("metadata", "name"))
				}
			}
		})
	}
}
