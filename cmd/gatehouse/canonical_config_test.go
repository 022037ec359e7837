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
		{"PrefixWithListQuote", mapping("      group_prefix: \"\\\"corp:\"\n"), []string{"idps[0].mapping.group_prefix: contains one of"}},
		{"PrefixWithListSemicolon", mapping("      group_prefix: \"corp;\"\n"), []string{"idps[0].mapping.group_prefix: contains one of"}},
		{"OverlappingPrefixes", strings.Replace(mapping("      group_prefix: \"corp:\"\n"), "store:", `  - name: partner
    entity_id: https://partner.example.test
    metadata_file: $DIR/idp.xml
    mapping:
      user_name: uid
      group_prefix: "CORP:eu:"
store:`, 1), []string{"idps[1].mapping.group_prefix: \"CORP:eu:\" overlaps idps[0].mapping.group_prefix"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, tc.config, tc.problems) })
	}
}

// TestGroupPrefixesMayNotOverlap: distinct prefixes pass; a prefix that
// starts another, compared folded, is refused.
func TestGroupPrefixesMayNotOverlap(t *testing.T) {
	f := &File{IdPs: []IdPConfig{{}, {}}}
	f.IdPs[0].Mapping.GroupPrefix, f.IdPs[1].Mapping.GroupPrefix = "corp:", "partner:"
	if errs := f.checkGroupPrefixes(); len(errs) != 0 {
		t.Errorf("distinct prefixes: %v", errs)
	}
	f.IdPs[1].Mapping.GroupPrefix = "ＣＯＲＰ:"
	if errs := f.checkGroupPrefixes(); len(errs) != 1 {
		t.Errorf("a full-width spelling of the same prefix: %v, want one problem", errs)
	}
}
