package main

import (
	"strings"
	"testing"
)

// TestCanonicalFormKeys: mapping.trim_whitespace, mapping.group_prefix and
// scim.trim_whitespace decode, and a group prefix that could not start a
// canonical group name, or that holds the header's group separator, is
// refused by check with its key path.
func TestCanonicalFormKeys(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	t.Setenv("TEST_SCIM_TOKEN", "scim-token-0123456789abcdefghijklmnopqrstuv")
	mapping := func(extra string) string {
		return strings.Replace(goodConfig, "      groups: memberOf\n", "      groups: memberOf\n"+extra, 1)
	}
	for _, tc := range []struct {
		name, config string
		problems     []string
	}{
		{"PrefixAndTrim", mapping("      group_prefix: \"corp:\"\n      trim_whitespace: true\n") +
			"scim:\n  tokens: [\"${TEST_SCIM_TOKEN}\"]\n  trim_whitespace: true\n", nil},
		{"PaddedPrefix", mapping("      group_prefix: \" corp:\"\n"), []string{"idps[0].mapping.group_prefix:", "leading or trailing white space"}},
		{"InvisiblePrefix", mapping("      group_prefix: \"corp\\u200b:\"\n"), []string{"idps[0].mapping.group_prefix:", "invisible"}},
		{"PrefixWithSeparator", mapping("      group_prefix: \"corp,\"\n"), []string{"idps[0].mapping.group_prefix: contains the group separator"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, tc.config, tc.problems) })
	}
}
