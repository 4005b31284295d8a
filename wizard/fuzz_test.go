package wizard

import (
	"testing"
	"time"
)

// FuzzParse feeds the tree loader arbitrary bytes: it must return a tree or
// errors, never panic, and a tree it accepts must be walkable.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add(default502)
	f.Add([]byte("version: 1\nstart: a\nnodes: [{id: a, kind: end, outcome: resolved}]"))
	f.Add([]byte("nodes:\n  - id: a\n    kind: check\n    field: verdict\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := Parse("fuzz.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if _, err := tr.Next(Settings{}, Facts{Now: time.Unix(0, 0)}, nil); err != nil {
			t.Fatalf("an accepted tree cannot start: %v", err)
		}
	})
}
