package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretValueProblemsAtTheirKeys: a secret that was read but cannot
// be used (a short SCIM token, a Redis URL that is not one, a cookie key
// that is not base64) is one problem at the setting it came from, with
// that setting's line, and no follow-on "at least one is required".
// (Before, a token from token_files[0] was reported as scim.tokens[0] or
// at the index scim gave it among the usable ones, the URL of url_file
// as state.redis.url, and a bad key file also as "cookie.keys: at least
// one key is required".)
func TestSecretValueProblemsAtTheirKeys(t *testing.T) {
	const goodToken = "scim-token-0123456789abcdefghijklmnopqrstuv"
	noKeys := strings.Replace(goodConfig, "  keys: [\"${TEST_GATEHOUSE_KEY}\"]\n", "", 1)
	env := map[string]string{"TEST_GATEHOUSE_KEY": testEnv["TEST_GATEHOUSE_KEY"], "GOOD_TOKEN": goodToken, "SHORT_TOKEN": "short-token-hunter2"}
	for _, tc := range []struct {
		name, text, secret string
		want               []string
	}{
		{"SCIMTokenFileShort", goodConfig + "scim:\n  token_files: [$DIR/secret]\n", "short-token-hunter2\n",
			[]string{"gatehouse.yaml:17:17: scim.token_files[0]: at least 32 characters"}},
		{"SCIMTokenFileAfterEnvToken", goodConfig + "scim:\n  tokens: [\"${GOOD_TOKEN}\"]\n  token_files: [$DIR/secret]\n", "short-token-hunter2",
			[]string{"gatehouse.yaml:18:17: scim.token_files[0]: at least 32 characters"}},
		{"SCIMTokenFileWhiteSpace", goodConfig + "scim:\n  token_files: [$DIR/secret]\n", "hunter2 hunter2 hunter2 hunter2 hunter2\n",
			[]string{"gatehouse.yaml:17:17: scim.token_files[0]: contains white space"}},
		{"SCIMEnvTokenAfterUnsetOne", goodConfig + "scim:\n  tokens: [\"${UNSET_TOKEN}\", \"${SHORT_TOKEN}\"]\n", "",
			[]string{"gatehouse.yaml:17:12: scim.tokens[0]: environment variable UNSET_TOKEN is not set",
				"gatehouse.yaml:17:30: scim.tokens[1]: at least 32 characters"}},
		{"RedisURLFile", goodConfig + "state:\n  redis:\n    url_file: $DIR/secret\n", "http://hunter2@cache.example.test\n",
			[]string{"gatehouse.yaml:18:5: state.redis.url_file: not a redis:// or rediss:// URL"}},
		{"CookieKeyFileOnly", strings.Replace(goodConfig, "  keys: [\"${TEST_GATEHOUSE_KEY}\"]", "  key_files: [$DIR/secret]", 1), "hunter2!\n",
			[]string{"gatehouse.yaml:5:15: cookie.key_files[0]: not base64"}},
		{"CookieKeyFileShort", strings.Replace(goodConfig, "  keys: [\"${TEST_GATEHOUSE_KEY}\"]", "  key_files: [$DIR/secret]", 1), "aHVudGVyMg==\n",
			[]string{"gatehouse.yaml:5:15: cookie.key_files[0]: decodes to 7 bytes, want 32"}},
		{"CookieKeyEnvUnset", strings.Replace(goodConfig, "${TEST_GATEHOUSE_KEY}", "${UNSET_KEY}", 1), "",
			[]string{"gatehouse.yaml:5:10: cookie.keys[0]: environment variable UNSET_KEY is not set"}},
		// With nothing configured, "at least one" is the problem itself.
		{"NoCookieKeyAtAll", noKeys, "", []string{"gatehouse.yaml:4:1: cookie.keys: at least one key is required"}},
		{"NoSCIMTokenAtAll", goodConfig + "scim:\n  max_results: 100\n", "", []string{"gatehouse.yaml:16:1: scim.tokens: at least one bearer token is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.text)
			if tc.secret != "" {
				mustDo(t, os.WriteFile(filepath.Join(filepath.Dir(path), "secret"), []byte(tc.secret), 0o600))
			}
			data, err := os.ReadFile(path)
			mustDo(t, err)
			_, report := checkConfig("gatehouse.yaml", data, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			lines := report.Lines()
			ok := len(lines) == len(tc.want)
			for i := 0; ok && i < len(lines); i++ {
				ok = strings.HasPrefix(lines[i], tc.want[i])
			}
			if !ok {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(tc.want, "\n"))
			}
			if strings.Contains(strings.Join(lines, "\n"), "hunter2") {
				t.Error("a secret was echoed")
			}
		})
	}
}
