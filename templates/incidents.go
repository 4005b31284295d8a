package templates

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// IncidentWindow is one of the windows staff look back over.
type IncidentWindow struct {
	Param string // in addresses: 10m, 1h, ...
	Label string // for people: 10 min, 1 hour, ...
}

// IncidentSummary is an incident as the list and its page show it.
type IncidentSummary struct {
	*wizard.Incident
	Link   string         // its staff page, in the same window
	Notice *wizard.Notice // the host's active notice, if any
	Since  time.Time      // the window's start, where PerMinute begins
	Window IncidentWindow
}

// IncidentListView is the staff list of incidents.
type IncidentListView struct {
	Windows    []IncidentWindow
	Window     IncidentWindow
	MinReports int
	Incidents  []IncidentSummary
	Unchecked  int // cases of the window still being checked, not grouped
	Notices    []NoticeLink
}

// NoticeLink is an active notice with the incident page it belongs to.
type NoticeLink struct {
	*wizard.Notice
	Link string
}

// IncidentView is one incident with its cases and the bulk actions.
type IncidentView struct {
	IncidentSummary
	Windows     []IncidentWindow
	Explanation string
	Cases       []*wizard.Case // the newest, up to a page
	More        int            // cases not listed
	Action      string         // the incident's address, for the forms
	Until       string         // the latest report shown, the bulk forms' bound
	Statuses    []wizard.Status
	Done        string // what the last action did
	Error       string
	NoteDraft   string // a refused note or notice, given back to edit
	NoticeDraft string
}

// HostNotice is what a visitor sees of a notice for their case's host.
type HostNotice struct {
	Host, Body, Author string
	At                 time.Time
	Others             int // other cases of the host in the last hour
}

// chartBar is one minute of an incident's chart.
type chartBar struct {
	X, Y, W, H float64
	Title      string
}

const chartWidth, chartHeight = 600.0, 60.0

// chartBars lays out the reports per minute as SVG rectangles (attributes,
// not inline styles, for the CSP); minutes without reports get none.
func chartBars(s IncidentSummary) []chartBar {
	n := len(s.PerMinute)
	peak := slices.Max(append([]int{0}, s.PerMinute...))
	if peak == 0 {
		return nil
	}
	w := chartWidth / float64(n)
	var out []chartBar
	for i, c := range s.PerMinute {
		if c == 0 {
			continue
		}
		h := max(float64(c)/float64(peak)*(chartHeight-4), 1)
		out = append(out, chartBar{X: float64(i) * w, Y: chartHeight - h, W: max(w-0.5, 0.5), H: h,
			Title: fmt.Sprintf("%s: %s", s.Since.Add(time.Duration(i)*time.Minute).UTC().Format("15:04"), plural(c, "report"))})
	}
	return out
}

// chartLabel describes the chart for those who do not see it.
func chartLabel(s IncidentSummary) string {
	peak := slices.Max(append([]int{0}, s.PerMinute...))
	end := s.Since.Add(time.Duration(len(s.PerMinute)) * time.Minute)
	return fmt.Sprintf("Reports per minute from %s to %s UTC: at most %d in a minute", s.Since.UTC().Format("15:04"), end.UTC().Format("15:04"), peak)
}

// plural says n things, "1 report" or "3 reports".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// incidentFinding is what an incident's cases found, in words, for its
// title ("the site's gateway (nginx) could not get an answer…"); the
// verdict code stays in the headline below it.
func incidentFinding(s IncidentSummary) string {
	h := wizard.FindingHeadline(s.Host, probes.Code(s.Verdict), s.Gateway)
	if h == "" {
		return s.Verdict
	}
	return strings.ToLower(h[:1]) + h[1:]
}

// peakLabel reads the chart's top line: the most reports in a minute.
func peakLabel(s IncidentSummary) string {
	peak := slices.Max(append([]int{0}, s.PerMinute...))
	if peak == 1 {
		return "1 report a minute"
	}
	return fmt.Sprintf("%d reports a minute", peak)
}

// chartTicks are the times under the chart: its start, middle and end,
// in UTC (the caption says so).
func chartTicks(s IncidentSummary) []string {
	n := len(s.PerMinute)
	at := func(i int) string { return s.Since.Add(time.Duration(i) * time.Minute).UTC().Format("15:04") }
	return []string{at(0), at(n / 2), at(n) + " UTC"}
}

// incidentHeadline is "212 reports in 1 hour: gateway_502 from nginx".
func incidentHeadline(s IncidentSummary) string {
	h := fmt.Sprintf("%s in %s: %s", plural(s.Reports, "report"), s.Window.Label, s.Verdict)
	if s.Gateway != "" {
		h += " from " + GatewayLabel(s.Gateway)
	}
	return h
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// othersText is "212 other people reported shop.example.com in the last
// hour."
func othersText(n *HostNotice) string {
	switch n.Others {
	case 0:
		return "Nobody else reported " + n.Host + " in the last hour."
	case 1:
		return "1 other person reported " + n.Host + " in the last hour."
	}
	return fmt.Sprintf("%d other people reported %s in the last hour.", n.Others, n.Host)
}
