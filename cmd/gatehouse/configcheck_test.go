package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
)

// configProblems checks a config as `gatehouse check` does (without the
// live checks) and returns its problem lines, the file named
// gatehouse.yaml.
func configProblems(t *testing.T, text string, env map[string]string) []string {
	t.Helper()
	data, err := os.ReadFile(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	_, report := checkConfig("gatehouse.yaml", data, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	return report.Lines()
}

var testEnv = map[string]string{"TEST_GATEHOUSE_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "TEST_EMPTY": ""}

// TestConfigProblems: every structural problem is one line with the
// file, line, column, key path and a message without Go type names;
// goodConfig is 15 lines, so an appended section starts on line 16.
func TestConfigProblems(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		want         []string
	}{
		{"UnknownTopLevel", goodConfig + "listn: \":8081\"\n",
			[]string{`gatehouse.yaml:16:1: listn: unknown key; did you mean "listen"?`}},
		{"UnknownNested", goodConfig + "log:\n  levle: debug\n",
			[]string{`gatehouse.yaml:17:3: log.levle: unknown key; did you mean "level"?`}},
		{"UnknownNoNearMiss", goodConfig + "state:\n  flurb: 1\n",
			[]string{`gatehouse.yaml:17:3: state.flurb: unknown key; valid here: dir, redis, replay_cache_max_bytes`}},
		{"UnknownFarFromAll", goodConfig + "frobnicate: true\n",
			[]string{`gatehouse.yaml:16:1: frobnicate: unknown key`}},
		{"UnknownInListElement", goodConfig + "authorization:\n  - {path: /x/, allow: public, methds: [GET]}\n",
			[]string{`gatehouse.yaml:17:32: authorization[0].methds: unknown key; did you mean "methods"?`}},
		{"UnknownInIdP", strings.Replace(goodConfig, "    mapping:\n", "    metdata_url: https://idp.example.test/md\n    mapping:\n", 1),
			[]string{`gatehouse.yaml:10:5: idps[0].metdata_url: unknown key; did you mean "metadata_url"?`}},
		{"CaseAndSeparators", goodConfig + "Shutdown-Timeout: 5s\n",
			[]string{`gatehouse.yaml:16:1: Shutdown-Timeout: unknown key; did you mean "shutdown_timeout"?`}},
		{"Transposition", goodConfig + "metadata_refersh: 1h\n",
			[]string{`gatehouse.yaml:16:1: metadata_refersh: unknown key; did you mean "metadata_refresh"?`}},
		{"StringForList", goodConfig + "upgrades: websocket\n",
			[]string{`gatehouse.yaml:16:11: upgrades: want a list, got a single value; put it in brackets, [like this], for a list of one`}},
		{"StringForSection", goodConfig + "headers: X-User\n",
			[]string{`gatehouse.yaml:16:10: headers: want a section of key: value lines, got a single value`}},
		{"ListForMap", goodConfig + "headers:\n  extra: [X-Dept]\n",
			[]string{`gatehouse.yaml:17:10: headers.extra: want a map of name: value pairs, got a list`}},
		{"ListForString", goodConfig + "listen: [\":1\", \":2\"]\n",
			[]string{`gatehouse.yaml:16:9: listen: want a single value, got a list`}},
		{"StringForInt", goodConfig + "max_path_length: long\n",
			[]string{`gatehouse.yaml:16:18: max_path_length: want a whole number, got "long"`}},
		{"QuotedInt", goodConfig + "rate_limit:\n  per_minute: \"30\"\n",
			[]string{`gatehouse.yaml:17:15: rate_limit.per_minute: want a whole number, got "30"; write it without quotes`}},
		{"IntOutOfRange", goodConfig + "public_max_concurrent: 99999999999999999999\n",
			[]string{`gatehouse.yaml:16:24: public_max_concurrent: want a whole number from -9223372036854775808 to 9223372036854775807, got 99999999999999999999`}},
		{"StringForBool", goodConfig + "preserve_host: sometimes\n",
			[]string{`gatehouse.yaml:16:16: preserve_host: want true or false, got "sometimes"`}},
		{"BadDuration", goodConfig + "clock_skew: soon\n",
			[]string{`gatehouse.yaml:16:13: clock_skew: want a duration like 24h, got "soon"`}},
		{"DurationWithoutUnit", goodConfig + "login_timeout: 30\n",
			[]string{`gatehouse.yaml:16:16: login_timeout: want a duration like 24h, got "30"; a duration needs a unit: 30s, 5m, 24h`}},
		{"StringForListElement", strings.Replace(goodConfig, "store:", "  - partner\nstore:", 1),
			[]string{`gatehouse.yaml:13:5: idps[1]: want a section of key: value lines, got a single value`}},
		{"DurationInListElement", goodConfig + "federations:\n  - [a]\n",
			[]string{`gatehouse.yaml:17:5: federations[0]: want a section of key: value lines, got a list`}},
		{"DuplicateKey", goodConfig + "listen: \":1\"\nlisten: \":2\"\n",
			[]string{`gatehouse.yaml:17:1: listen: duplicate key (first on line 16); remove one`}},
		{"DuplicateNested", strings.Replace(goodConfig, "      groups: memberOf\n", "      groups: memberOf\n      groups: isMemberOf\n", 1),
			[]string{`gatehouse.yaml:13:7: idps[0].mapping.groups: duplicate key (first on line 12); remove one`}},
		{"UnsetEnv", strings.Replace(goodConfig, "TEST_GATEHOUSE_KEY", "TEST_GATEHOUSE_UNSET", 1),
			[]string{`gatehouse.yaml:5:10: cookie.keys[0]: environment variable TEST_GATEHOUSE_UNSET is not set`}},
		{"KeyOfAnotherSection", strings.Replace(goodConfig, "    mapping:\n", "    metadata_refresh: 12h\n    mapping:\n", 1),
			[]string{`gatehouse.yaml:10:5: idps[0].metadata_refresh: unknown key; metadata_refresh goes at the top level`}},
		{"KeyOfSeveralSections", goodConfig + "tls:\n  idle_timeout: 1h\n",
			[]string{`gatehouse.yaml:17:3: tls.idle_timeout: unknown key; idle_timeout goes under cookie or store.ldap`}},
		{"EmptyEnv", strings.Replace(goodConfig, `["${TEST_GATEHOUSE_KEY}"]`, `["${TEST_GATEHOUSE_KEY}", "${TEST_EMPTY}"]`, 1),
			[]string{`gatehouse.yaml:5:35: cookie.keys[1]: environment variable TEST_EMPTY is set but empty`}},
		{"EnvWhereNotRead", goodConfig + "listen: ${PORT}\n",
			[]string{`gatehouse.yaml:16:9: listen: ${PORT} is not expanded here: environment references are read only in ` + envKeysText}},
		{"MergeKey", goodConfig + "tls: &t\n  redirect_listen: 127.0.0.1:0\nstate:\n  <<: *t\n",
			[]string{`gatehouse.yaml:17:3: state.redirect_listen: unknown key; redirect_listen goes under tls`}},
		{"AliasCycle", goodConfig + "public_paths: &p [*p]\n",
			[]string{`gatehouse.yaml:16:19: public_paths[0]: an alias to a value that contains it`}},
		{"SemanticGetsPosition", goodConfig + "clock_skew: 10m\n",
			[]string{`gatehouse.yaml:16:1: clock_skew: must be between 0 and 3m0s`}},
		{"SemanticOfListElement", goodConfig + "authorization:\n  - {path: /x/}\n",
			[]string{`gatehouse.yaml:17:5: authorization[0]: set allow (public, authenticated or deny) or require`}},
		{"SecretNotEchoed", strings.Replace(goodConfig, `["${TEST_GATEHOUSE_KEY}"]`, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 1),
			[]string{`gatehouse.yaml:5:9: cookie.keys: want a list, got a single value; put it in brackets, [like this], for a list of one`}},
		{"SecretSectionNotEchoed", goodConfig + "state:\n  redis: redis://:hunter2@redis.example.test\n",
			[]string{`gatehouse.yaml:17:10: state.redis: want a section of key: value lines, got a single value`}},
		{"FieldsOfOtherSections", goodConfig + "log:\n  access: false\nshutdown_delay: 5s\npages:\n  app_name: Payroll\n", nil},
		{"QuotedVersion", strings.Replace(goodConfig, "version: 1", `version: "1"`, 1),
			[]string{`gatehouse.yaml:1:10: version: want a whole number, got "1"; write it without quotes`}},
		{"WrongVersion", strings.Replace(goodConfig, "version: 1", "version: 2", 1),
			[]string{`gatehouse.yaml:1:1: version: must be 1, got 2`}},
		{"NoVersion", strings.Replace(goodConfig, "version: 1\n", "", 1),
			[]string{`gatehouse.yaml: version: required: set version: 1`}},
		{"SecondDocument", goodConfig + "---\nversion: 1\n",
			[]string{`gatehouse.yaml:16: a second YAML document: the config is one document (remove the --- line)`}},
		{"NotYAML", "version: 1\nlisten: [\n", []string{`gatehouse.yaml:2: not valid YAML: did not find expected node content`}},
		{"NotAMap", "- version\n", []string{`gatehouse.yaml:1:1: the config must be a map of key: value lines, got a list`}},
		{"Empty", "# nothing\n", []string{`gatehouse.yaml: config is empty`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := configProblems(t, tc.config, testEnv)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestConfigProblemsAllAtOnce: structural and semantic problems come in
// one list, in file order, problems without a place last; a value
// refused as malformed is not reported again by the validation.
func TestConfigProblemsAllAtOnce(t *testing.T) {
	config := `version: 1
base_url: https://app.example.test
upstrem: http://127.0.0.1:9000
clock_skew: 10m
cookie:
  keys: ["${TEST_GATEHOUSE_UNSET}", "${TEST_GATEHOUSE_KEY}"]
  idle_timeout: 30s
  max_age: forever
idps:
  - name: corp
    entity_id: https://idp.example.test
    metadata_file: $DIR/idp.xml
    force_authn: "sometimes"
    mapping: {user_name: uid, grups: memberOf}
store:
  sqlite: {path: $DIR/gatehouse.db}
log: {level: loud}
`
	want := []string{
		`gatehouse.yaml:3:1: upstrem: unknown key; did you mean "upstream"?`,
		`gatehouse.yaml:4:1: clock_skew: must be between 0 and 3m0s`,
		`gatehouse.yaml:6:10: cookie.keys[0]: environment variable TEST_GATEHOUSE_UNSET is not set`,
		`gatehouse.yaml:7:3: cookie.idle_timeout: at least 1m`,
		`gatehouse.yaml:8:12: cookie.max_age: want a duration like 24h, got "forever"`,
		`gatehouse.yaml:13:18: idps[0].force_authn: want true or false, got "sometimes"`,
		`gatehouse.yaml:14:31: idps[0].mapping.grups: unknown key; did you mean "groups"?`,
		`gatehouse.yaml:17:7: log.level: unrecognized level: "loud"`,
		`gatehouse.yaml: upstream: must be an http(s) URL without query, got ""`,
	}
	if got := configProblems(t, config, testEnv); !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// check prints the same lines, then the count, and exits 1.
	path := writeConfig(t, config)
	t.Setenv("TEST_GATEHOUSE_KEY", testEnv["TEST_GATEHOUSE_KEY"])
	code, _, errOut := check(t, path)
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	if code != 1 || len(lines) != len(want)+1 || lines[len(lines)-1] != path+": 9 problems" ||
		lines[0] != path+want[0][len("gatehouse.yaml"):] {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
	// serve refuses to start with the same list.
	var out, serveErr bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--config", path}, &out, &serveErr); code != 1 ||
		!strings.Contains(serveErr.String(), path+": 9 problems:\n") || !strings.Contains(serveErr.String(), strings.Join(lines[:len(want)], "\n")) {
		t.Errorf("serve: exit %d:\n%s", code, serveErr.String())
	}
}

// TestConfigMessagesNameNoGoTypes: no message of a malformed config
// names a Go type or package.
func TestConfigMessagesNameNoGoTypes(t *testing.T) {
	config := goodConfig + "listn: x\ntls: [a]\nrate_limit: {burst: x}\nsp_keys: {a: b}\nstate: {redis: 5}\nscim: yes\nfederations: [{mapping: [x]}]\n"
	for _, line := range configProblems(t, config, testEnv) {
		for _, goish := range []string{"main.", "session.", "proxy.", "scim.Config", "[]string", "map[", "struct", "int64", "time.Duration", "!!"} {
			if strings.Contains(line, goish) {
				t.Errorf("%q names %q", line, goish)
			}
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"listen", "log", "login_timeout", "tls", "upstream"}
	for key, want := range map[string]string{
		"listn":         `; did you mean "listen"?`,
		"lsiten":        `; did you mean "listen"?`,
		"LOG":           `; did you mean "log"?`,
		"Login-Timeout": `; did you mean "login_timeout"?`,
		"up_stream":     `; did you mean "upstream"?`,
		"ls":            `; did you mean "tls"?`,
		"x":             `; valid here: listen, log, login_timeout, tls, upstream`,
		"tl":            `; did you mean "tls"?`,
		"lg":            `; did you mean "log"?`,
		"entirely_else": `; valid here: listen, log, login_timeout, tls, upstream`,
	} {
		if got := suggest(key, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
}
