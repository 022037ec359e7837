package scim

import (
	"strconv"
	"strings"
	"testing"
)

// TestCheckKeysLinear: the duplicate-key scan takes a body of many keys
// and deep nesting (about the 1 MiB cap), and folds as strings.EqualFold.
func TestCheckKeysLinear(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"a":{`)
	for i := 0; i < 50000; i++ {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(`"k`)
		sb.WriteString(strconv.Itoa(i))
		sb.WriteString(`":1`)
	}
	sb.WriteString(`}}`)
	if err := checkKeys([]byte(sb.String())); err != nil {
		t.Fatalf("distinct keys refused: %v", err)
	}
	deep := strings.Repeat(`{"a":[`, 4000) + strings.Repeat(`]}`, 4000)
	if err := checkKeys([]byte(deep)); err != nil {
		t.Fatalf("deep body refused: %v", err)
	}
	for _, pair := range [][2]string{{"k", "\u212a"}, {"s", "\u017f"}, {"ǅ", "ǆ"}, {"Σ", "ς"}, {"ß", "ẞ"}} {
		if !strings.EqualFold(pair[0], pair[1]) {
			if foldKey(pair[0]) == foldKey(pair[1]) {
				t.Errorf("foldKey joins %q and %q, which EqualFold tells apart", pair[0], pair[1])
			}
			continue
		}
		if foldKey(pair[0]) != foldKey(pair[1]) {
			t.Errorf("foldKey tells %q and %q apart, which EqualFold joins", pair[0], pair[1])
		}
	}
}
