//go:build linux

package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// table is one scenario's results, printed as markdown.
type table struct {
	title string
	notes []string
	rows  [][4]string // measure, value, goal, result
}

func (t *table) note(format string, a ...any) { t.notes = append(t.notes, fmt.Sprintf(format, a...)) }

func (t *table) add(measure, value, goal, result string) {
	t.rows = append(t.rows, [4]string{measure, value, goal, result})
}

func (t *table) serverRow(g *gatecheck, cpu time.Duration, polls int64, code int, stopErr error) {
	exit := fmt.Sprintf("exit %d after SIGTERM", code)
	if stopErr != nil {
		exit = stopErr.Error()
	}
	t.add("server", fmt.Sprintf("%s of CPU during the scenario, %d case reads answered, %d errors logged, %s", secs(cpu), polls, g.errorsLogged(), exit),
		"no errors, exit 0", passIf(g.errorsLogged() == 0 && code == 0 && stopErr == nil))
}

func (t *table) failed() bool {
	return slices.ContainsFunc(t.rows, func(r [4]string) bool { return r[3] == "FAIL" })
}

func (t *table) print(w io.Writer) {
	fmt.Fprintf(w, "\n### %s\n\n", t.title)
	for _, n := range t.notes {
		fmt.Fprintf(w, "%s\n\n", n)
	}
	fmt.Fprintln(w, "| measure | value | goal | result |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r[0], strings.ReplaceAll(r[1], "|", `\|`), r[2], r[3])
	}
}

func passIf(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// summary is what a burst of reports came to.
type summary struct {
	created, refused, verdicts int
	lastSent                   time.Duration
	answer, verdictAt, late    []time.Duration
	slowest                    time.Duration
	refusals                   map[string]int // message (Retry-After) -> count
	others                     map[string]int // status or error -> count
	codes                      map[string]int // verdict code -> count
}

func summarise(r *run) *summary {
	s := &summary{refusals: map[string]int{}, others: map[string]int{}, codes: map[string]int{}}
	for _, rep := range r.reports {
		if rep == nil { // never sent: the run was cut short
			s.others["not sent"]++
			continue
		}
		s.lastSent = max(s.lastSent, rep.sent)
		if rep.status != 0 {
			s.answer = append(s.answer, rep.answered-rep.sent)
		}
		switch {
		case rep.token != "":
			s.created++
		case rep.status == 429:
			s.refused++
			s.refusals[fmt.Sprintf("%q (Retry-After %s)", rep.refusal, rep.retryAfter)]++
		default:
			s.others[shorten(rep.failure, 80)]++
		}
		if rep.verdict != "" {
			s.verdicts++
			s.verdictAt = append(s.verdictAt, rep.verdictAt)
			s.late = append(s.late, rep.late)
			s.slowest = max(s.slowest, rep.verdictAt)
			s.codes[rep.verdict]++
		}
	}
	return s
}

func (s *summary) refusedText() string {
	if s.refused == 0 {
		return "0"
	}
	return fmt.Sprintf("%d: %s", s.refused, tally(s.refusals))
}

func (s *summary) otherText() string {
	if len(s.others) == 0 {
		return "none"
	}
	return tally(s.others)
}

func (s *summary) answerText() string {
	return percentiles(s.answer)
}

func (s *summary) verdictsText() string {
	if s.verdicts == 0 {
		return fmt.Sprintf("0 of %d", s.created)
	}
	return fmt.Sprintf("%d of %d (%s)", s.verdicts, s.created, tally(s.codes))
}

func (s *summary) verdictTimes() string {
	if len(s.verdictAt) == 0 {
		return "none"
	}
	late := slices.Clone(s.late)
	slices.Sort(late)
	return fmt.Sprintf("%s (%d verdicts, each seen at most %s after the read before it, median %s)",
		percentiles(s.verdictAt), len(s.verdictAt), secs(late[len(late)-1]), secs(late[(len(late)-1)/2]))
}

// tally lists counts, largest first: `246 × "…"`.
func tally(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for i, k := range keys {
		if i == 4 {
			parts = append(parts, fmt.Sprintf("%d more kinds", len(keys)-4))
			break
		}
		parts = append(parts, fmt.Sprintf("%d × %s", m[k], k))
	}
	return strings.Join(parts, "; ")
}

// percentiles is p50 / p95 / max by nearest rank.
func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	d = slices.Clone(d)
	slices.Sort(d)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(d))+0.999999) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	return fmt.Sprintf("%s / %s / %s", secs(rank(0.50)), secs(rank(0.95)), secs(d[len(d)-1]))
}

// spreadText is min / median / max of counts.
func spreadText(n []int) string {
	if len(n) == 0 {
		return "none"
	}
	n = slices.Clone(n)
	slices.Sort(n)
	return fmt.Sprintf("%d / %d / %d", n[0], n[(len(n)-1)/2], n[len(n)-1])
}

// secs formats a duration in seconds, or milliseconds below one.
func secs(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
