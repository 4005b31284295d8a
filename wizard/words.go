package wizard

import (
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/probes"
)

// Words is what a visitor reads about a finding: a headline in sentence
// case and one sentence that explains it, in plain language. Verdict codes,
// Go error strings and settings names never appear in them; the precise
// text stays in the report's evidence and on staff pages.
type Words struct {
	Headline string
	Explain  string
}

// VisitorWords says in plain words what the report found, as of now.
//
// TODO(words helper): replace with the table from verdict (and its
// details) to words; this first version only sentence-cases the summary.
func VisitorWords(r *probes.Report, now time.Time) Words {
	if r == nil {
		return Words{Headline: "Checking the site"}
	}
	s := strings.TrimSpace(r.Verdict.Summary)
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return Words{Headline: s}
}
