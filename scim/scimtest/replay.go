// Package scimtest replays recorded SCIM client requests (Okta's SCIM 2.0
// test suite, Microsoft Entra ID provisioning, RFC checks) against a SCIM
// server and checks each answer. The cases and their format are in
// clients.json; every store runs the same corpus.
package scimtest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
)

//go:embed clients.json
var corpus []byte

// Case is one recorded request and its expected answer.
type Case struct {
	ID           string            `json:"id"`
	Method       string            `json:"method"`
	Path         string            `json:"path"`
	Headers      map[string]string `json:"headers"`
	Body         any               `json:"body"`
	BodyRaw      *string           `json:"body_raw"`
	Save         map[string]string `json:"save"`
	Expect       Expect            `json:"expect"`
	ExpectQuirks *Expect           `json:"expect_quirks"`
	Mode         string            `json:"mode"`
}

// Expect is an expected answer.
type Expect struct {
	Status  []int             `json:"status"`
	JSON    [][]any           `json:"json"`
	Headers map[string]string `json:"headers"`
}

// Cases returns the corpus in order.
func Cases() ([]Case, error) {
	var cs []Case
	if err := json.Unmarshal(corpus, &cs); err != nil {
		return nil, fmt.Errorf("scimtest: corpus: %w", err)
	}
	return cs, nil
}

// Options select how the corpus runs.
type Options struct {
	// Base is the SCIM root URL, without a trailing slash.
	Base string
	// Token is a valid bearer token.
	Token  string
	Client *http.Client
	// Strict checks the RFC expectation of quirks cases instead of the
	// lenient one real clients need.
	Strict bool
	// NoGroups: the store keeps no groups over SCIM, so every /Groups case
	// must answer 501 Not Implemented instead of its expectation.
	NoGroups bool
}

var varRef = regexp.MustCompile(`\{\{([A-Za-z_]+)\}\}`)

// Replay runs every case in order, each as a subtest.
func Replay(t *testing.T, o Options) {
	t.Helper()
	cases, err := Cases()
	if err != nil {
		t.Fatal(err)
	}
	r := fmt.Sprintf("%08x", rand.Uint32())
	vars := map[string]string{"base": o.Base, "auth": "Bearer " + o.Token, "rand": r, "RAND": strings.ToUpper(r), "guid": uuid.NewString()}
	client := o.Client
	if client == nil {
		client = http.DefaultClient
	}
	for _, c := range cases {
		t.Run(c.ID, func(t *testing.T) {
			exp := c.Expect
			if c.Mode == "quirks" && !o.Strict {
				exp = *c.ExpectQuirks
			}
			if o.NoGroups {
				exp = withoutGroups(c, exp)
				if strings.HasPrefix(c.Path, "/Groups") {
					c.Save = nil
				}
			}
			status, hdr, body := do(t, client, c, vars)
			if !slices.Contains(exp.Status, status) {
				t.Fatalf("%s %s: status %d, want one of %v; body: %s", c.Method, sub(c.Path, vars), status, exp.Status, body)
			}
			for name, want := range exp.Headers {
				if want == "present" && hdr.Get(name) == "" {
					t.Errorf("header %s missing", name)
				}
			}
			if status == http.StatusNoContent || len(body) == 0 {
				if len(exp.JSON) > 0 && status != http.StatusNoContent {
					t.Errorf("no body to check %v against", exp.JSON)
				}
				return
			}
			var doc any
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&doc); err != nil {
				t.Fatalf("response is not JSON: %v: %s", err, body)
			}
			for _, a := range exp.JSON {
				if err := check(doc, a, vars); err != nil {
					t.Errorf("%v; body: %s", err, body)
				}
			}
			for name, ptr := range c.Save {
				v, ok := pointer(doc, ptr)
				if s, isStr := v.(string); ok && isStr {
					vars[name] = s
				} else {
					t.Errorf("save %s: %s holds %v", name, ptr, v)
				}
			}
		})
	}
}

func sub(s string, vars map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := vars[m[2:len(m)-2]]; ok {
			return v
		}
		return m
	})
}

// subAll substitutes variables in every string of a JSON value.
func subAll(v any, vars map[string]string) any {
	switch x := v.(type) {
	case string:
		return sub(x, vars)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = subAll(e, vars)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[sub(k, vars)] = subAll(e, vars)
		}
		return out
	}
	return v
}

func do(t *testing.T, client *http.Client, c Case, vars map[string]string) (int, http.Header, []byte) {
	t.Helper()
	var body io.Reader
	switch {
	case c.BodyRaw != nil:
		body = strings.NewReader(sub(*c.BodyRaw, vars))
	case c.Body != nil:
		b, err := json.Marshal(subAll(c.Body, vars))
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(c.Method, vars["base"]+sub(c.Path, vars), body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.Headers {
		req.Header.Set(k, sub(v, vars))
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// pointer resolves a JSON Pointer (RFC 6901).
func pointer(doc any, ptr string) (any, bool) {
	if ptr == "" {
		return doc, true
	}
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			cur = x[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// check evaluates one [pointer, op, value] assertion.
func check(doc any, a []any, vars map[string]string) error {
	ptr, _ := a[0].(string)
	op, _ := a[1].(string)
	var want any
	if len(a) > 2 {
		want = subAll(a[2], vars)
	}
	got, ok := pointer(doc, ptr)
	fail := func() error { return fmt.Errorf("%s %s %v: got %v (present %v)", ptr, op, want, got, ok) }
	switch op {
	case "exists":
		if !ok || got == nil {
			return fail()
		}
	case "absent":
		if ok {
			return fail()
		}
	case "eq":
		if !ok || !same(got, want) {
			return fail()
		}
	case "ne":
		if ok && same(got, want) {
			return fail()
		}
	case "type":
		if !ok || typeName(got) != want {
			return fail()
		}
	case "ge", "le":
		n, isNum := got.(json.Number)
		f, err := n.Float64()
		w, _ := want.(float64)
		if !isNum || err != nil || (op == "ge" && f < w) || (op == "le" && f > w) {
			return fail()
		}
	case "contains", "not_contains":
		list, isList := got.([]any)
		found := false
		for _, e := range list {
			if matchesElement(e, want) {
				found = true
				break
			}
		}
		if !isList || found != (op == "contains") {
			return fail()
		}
	default:
		return fmt.Errorf("unknown assertion %q", op)
	}
	return nil
}

func same(got, want any) bool {
	if n, ok := got.(json.Number); ok {
		f, err := n.Float64()
		w, isNum := want.(float64)
		return err == nil && isNum && f == w
	}
	return reflect.DeepEqual(got, want)
}

func typeName(v any) string {
	switch v.(type) {
	case json.Number:
		return "number"
	case string:
		return "string"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "null"
}

// matchesElement: a scalar equals, or an object has every listed key.
func matchesElement(e, want any) bool {
	wm, ok := want.(map[string]any)
	if !ok {
		return same(e, want)
	}
	em, ok := e.(map[string]any)
	if !ok {
		return false
	}
	for k, v := range wm {
		if !same(em[k], v) {
			return false
		}
	}
	return true
}

// withoutGroups rewrites an expectation for a server without groups: a
// /Groups request answers 501, and discovery must not list the Group
// resource type or schema (one schema fewer).
func withoutGroups(c Case, exp Expect) Expect {
	if strings.HasPrefix(c.Path, "/Groups") {
		return Expect{Status: []int{http.StatusNotImplemented}, JSON: [][]any{{"/status", "eq", "501"}}}
	}
	out := Expect{Status: exp.Status, Headers: exp.Headers}
	for _, a := range exp.JSON {
		b, _ := json.Marshal(a)
		switch {
		case a[1] == "contains" && strings.Contains(string(b), "Group"):
			out.JSON = append(out.JSON, []any{a[0], "not_contains", a[2]})
		case a[0] == "/totalResults" && a[1] == "ge" && c.Path == "/Schemas":
			out.JSON = append(out.JSON, []any{a[0], "ge", a[2].(float64) - 1})
		default:
			out.JSON = append(out.JSON, a)
		}
	}
	return out
}
