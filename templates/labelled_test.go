package templates

import (
	"context"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/wizard"
)

// TestPathReadsAsLabels: a question in "So far" keeps its question mark
// and gains no colon; a statement gains one.
func TestPathReadsAsLabels(t *testing.T) {
	for _, c := range []struct{ title, want string }{
		{"Who are you in this?", "Who are you in this? <strong>"},
		{"What gatecheck found", "What gatecheck found: <strong>"},
	} {
		var b strings.Builder
		if err := pathItem("tok", wizard.PathEntry{Node: "n", Title: c.title, ChoiceLabel: "x"}).Render(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), c.want) || strings.Contains(b.String(), "?:") {
			t.Errorf("%q renders %s, want %q", c.title, b.String(), c.want)
		}
	}
}
