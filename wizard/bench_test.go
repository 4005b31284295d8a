package wizard

import (
	"testing"

	"github.com/gatecheck/gatecheck/probes"
)

// BenchmarkNextLongestPath replays the longest path of the default tree:
// the cost of rendering one wizard step.
//
//	go test ./wizard -run XXX -bench Next -benchmem
func BenchmarkNextLongestPath(b *testing.B) {
	tr := Default()
	var longest []Answer
	for _, p := range paths(tr) {
		if len(p) > len(longest) {
			longest = p
		}
	}
	f := facts(probes.Gateway502)
	b.ReportMetric(float64(len(longest)), "answers")
	for b.Loop() {
		if _, err := tr.Next(settings(), f, longest); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseDefaultTree(b *testing.B) {
	for b.Loop() {
		if _, err := Parse("502.yaml", default502); err != nil {
			b.Fatal(err)
		}
	}
}
