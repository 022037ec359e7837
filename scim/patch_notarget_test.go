package scim_test

import (
	"testing"
)

// TestPatchFilteredReplaceNoTarget: a replace whose value filter selects
// no element is 400 noTarget (RFC 7644 §3.5.2.3) in both modes; it never
// creates the element (quirks mode did, for `type eq "x"`). Only add may
// create a missing element, and only of a type the schema knows.
func TestPatchFilteredReplaceNoTarget(t *testing.T) {
	base := user("nt-{{n}}", `"emails":[{"type":"work","value":"w@corp.test"}]`, `"phoneNumbers":[{"type":"mobile","value":"555"}]`)
	modes(t, func(t *testing.T, quirks bool) {
		runPatchCases(t, quirks, base, []patchCase{
			{"ReplaceUnknownType", `[{"op":"replace","path":"emails[type eq \"pager\"].value","value":"p@x.test"}]`, 400, "noTarget", nil},
			{"ReplaceMissingHome", `[{"op":"replace","path":"emails[type eq \"home\"].value","value":"h@x.test"}]`, 400, "noTarget", nil},
			{"ReplaceMissingElementObject", `[{"op":"replace","path":"phoneNumbers[type eq \"work\"]","value":{"value":"111"}}]`, 400, "noTarget", nil},
			{"ReplaceComplexFilterNoMatch", `[{"op":"replace","path":"emails[type eq \"work\" and value eq \"other@corp.test\"].value","value":"x@x.test"}]`, 400, "noTarget", nil},
			{"ReplaceAbsentAttribute", `[{"op":"replace","path":"addresses[type eq \"work\"].locality","value":"Oslo"}]`, 400, "noTarget", nil},
			{"ReplaceNoTargetIsAtomic", `[{"op":"replace","path":"title","value":"CEO"},{"op":"replace","path":"emails[type eq \"home\"].value","value":"h@x.test"}]`, 400, "noTarget", nil},
			{"ReplaceMatchingStillWorks", `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"new@corp.test"}]`, 200, "", func(t *testing.T, d map[string]any) {
				want(t, d, "emails.len", 1)
				want(t, d, "emails.0.value", "new@corp.test")
			}},
			{"AddCreatesKnownType", `[{"op":"add","path":"emails[type eq \"home\"].value","value":"h@x.test"}]`, 200, "", func(t *testing.T, d map[string]any) {
				want(t, d, "emails.len", 2)
				want(t, d, "emails.1.type", "home")
				want(t, d, "emails.1.value", "h@x.test")
			}},
			{"AddCreatesKnownTypeObject", `[{"op":"add","path":"phoneNumbers[type eq \"work\"]","value":{"value":"111"}}]`, 200, "", func(t *testing.T, d map[string]any) {
				want(t, d, "phoneNumbers.len", 2)
			}},
			{"AddUnknownType", `[{"op":"add","path":"emails[type eq \"pager\"].value","value":"p@x.test"}]`, 400, "invalidValue", nil},
			{"AddComplexFilterNoMatch", `[{"op":"add","path":"emails[type eq \"home\" and value eq \"h@x.test\"].value","value":"h@x.test"}]`, 400, "noTarget", nil},
		})
	})
}
