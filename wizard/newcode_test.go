package wizard

import (
	"slices"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/probes"
)

// TestANewVerdictCodeKeepsStoredTrees: verdict codes are only ever added.
// A code added after a tree was written makes that tree fail the strict
// check operators run on the trees they write (they must give it a way),
// but not the lenient one of trees stored with their cases: those cases
// keep their tree, and a check with no choice for the new code asks the
// person, then goes on.
func TestANewVerdictCodeKeepsStoredTrees(t *testing.T) {
	want := Default().ID() // parsed before the code exists, as at start
	old := probes.Codes
	t.Cleanup(func() { probes.Codes = old })
	const added = probes.Code("quic_failed")
	probes.Codes = append(slices.Clone(old), added)

	if _, err := Parse("502.yaml", DefaultSource()); err == nil || !strings.Contains(err.Error(), "no choice for "+string(added)) {
		t.Fatalf("the strict check of the built-in tree with a new code: %v", err)
	}
	tr, err := ParseStored("stored tree", DefaultSource())
	if err != nil {
		t.Fatalf("a stored tree that predates a code: %v", err)
	}
	if tr.ID() != want {
		t.Errorf("the stored tree is %s, not the version it was (%s)", tr.ID(), want)
	}

	// A case whose site fails in the new way walks its own tree: asked
	// where the tree has no answer for the code, then on to an end.
	f := Facts{Report: report(added), URL: "https://shop.example/", RequesterIP: "203.0.113.7", Now: now}
	var answers []Answer
	asked := 0
	for range 40 {
		st, err := tr.Next(settings(), f, answers)
		if err != nil {
			t.Fatalf("after %d answers: %v", len(answers), err)
		}
		if st.Done {
			if asked == 0 {
				t.Error("no check asked about the code the tree predates")
			}
			return
		}
		if st.Kind == KindCheck {
			asked++
		}
		answers = append(answers, Answer{Node: st.Node, Choice: st.Choices[0].ID, At: now})
	}
	t.Fatal("the walk did not end")
}
