package templates

import (
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/wizard"
)

// TestEveryOutcomeInWords: every outcome an end node of the built-in tree
// may have is said in words on the visitor's page, never as its code.
func TestEveryOutcomeInWords(t *testing.T) {
	src := string(wizard.DefaultSource())
	seen := map[wizard.Outcome]bool{}
	for _, line := range strings.Split(src, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "outcome:"); ok {
			seen[wizard.Outcome(strings.Trim(strings.TrimSpace(v), `"'`))] = true
		}
	}
	if len(seen) == 0 {
		t.Fatal("no outcomes found in the built-in tree")
	}
	for o := range seen {
		w, ok := outcomeWords[o]
		if !ok || w == "" || strings.Contains(strings.ToLower(w), string(o)) {
			t.Errorf("outcome %q has no words of its own (%q)", o, w)
		}
	}
}
