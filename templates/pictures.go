package templates

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// The pictures of a report: a timing waterfall per redirect hop, the
// certificate's validity window, where a request fails from each place
// it was tried, and the probing page's plain steps. Each is drawn on the
// server (SVG with attributes, no inline styles, so that the CSP can
// forbid those) and comes with its text equivalent.

// waterfallWidth is the SVG width a waterfall's time axis spans.
const waterfallWidth = 600.0

// phase is one kind of time a request spends, in the order a request
// goes through them. Other is the part of the total that no measured
// phase covers (writing the request, the transport's own work).
type phase struct {
	Name, Class string
	ms          func(probes.HopTiming) float64
}

// phases are the timing phases drawn, in order. The remainder ("other")
// goes before the wait, where most of it is spent: between the
// connection being ready and the request being written. On a request
// that failed, the remainder is the time until it failed: the phase it
// failed in never finished, so it was never measured.
var phases = []phase{
	{"Name lookup", "dns", func(t probes.HopTiming) float64 { return t.DNSMS }},
	{"Connecting", "connect", func(t probes.HopTiming) float64 { return t.ConnectMS }},
	{"Secure connection", "tls", func(t probes.HopTiming) float64 { return t.TLSMS }},
	{"Other", "other", nil},
	{"Until it failed", "failed", nil},
	{"Waiting for the answer", "wait", func(t probes.HopTiming) float64 { return t.WaitMS }},
	{"Receiving the page", "transfer", func(t probes.HopTiming) float64 { return t.TransferMS }},
}

// bar is one phase of a hop's bar.
type bar struct {
	Name  string
	X, W  float64
	MS    float64
	Class string
}

// hopBar is one redirect hop drawn on a waterfall: its phases, laid end to
// end from X, spanning W (the hop's total on the waterfall's scale).
type hopBar struct {
	N       int // 1 for the first request
	URL     string
	TotalMS float64 // what the bar stands for: the hop's total, or the phases' sum when that is more
	X, W    float64
	Bars    []bar
}

// bars lays out a hop's phases as one bar, scaled so that the hop's total
// spans width: only the phases that happened (a zero phase, such as TLS
// on http, is not drawn), and the part of the total no phase accounts for
// as "Other". Should the phases add up to more than the total (clocks
// read at different moments), the bar stands for their sum.
func bars(t probes.HopTiming, failed bool, x0, width float64) (total float64, out []bar) {
	sum := 0.0
	for _, p := range phases {
		if p.ms != nil && p.ms(t) > 0 {
			sum += p.ms(t)
		}
	}
	total = max(t.TotalMS, sum)
	if total <= 0 {
		return 0, nil
	}
	x := x0
	for _, p := range phases {
		if p.ms == nil && (p.Class == "failed") != failed {
			continue
		}
		v := t.TotalMS - sum // the remainder, for Other
		if p.ms != nil {
			v = p.ms(t)
		}
		// Under a microsecond is nothing a person can see or act on.
		if v < 0.001 {
			continue
		}
		w := v / total * width
		out = append(out, bar{Name: p.Name, X: x, W: w, MS: v, Class: p.Class})
		x += w
	}
	return total, out
}

// Waterfall is a report's hops on one time axis: each hop starts where
// the one before it ended, and its bar spans its own total.
type Waterfall struct {
	Hops    []hopBar
	TotalMS float64
	Legend  []phase // the phases some hop spent time in
}

// NewWaterfall lays out the timings of a request's hops; failed is the
// index of the hop the request failed at, or -1.
func NewWaterfall(ts []probes.HopTiming, failed int) Waterfall {
	var wf Waterfall
	for i, t := range ts {
		total, _ := bars(t, i == failed, 0, 1)
		wf.TotalMS += total
	}
	if wf.TotalMS <= 0 {
		return Waterfall{}
	}
	used := map[string]bool{}
	at := 0.0
	for i, t := range ts {
		total, _ := bars(t, i == failed, 0, 1)
		w := total / wf.TotalMS * waterfallWidth
		_, bs := bars(t, i == failed, at, w)
		for _, b := range bs {
			used[b.Class] = true
		}
		wf.Hops = append(wf.Hops, hopBar{N: i + 1, URL: t.URL, TotalMS: total, X: at, W: w, Bars: bs})
		at += w
	}
	for _, p := range phases {
		if used[p.Class] {
			wf.Legend = append(wf.Legend, p)
		}
	}
	return wf
}

// failedHop is the index of the hop a report's request failed at (its
// last, with no answer), or -1.
func failedHop(r *probes.Report) int {
	if r == nil || r.HTTP == nil || len(r.HTTP.Hops) != len(r.Timings) {
		return -1
	}
	if last := len(r.HTTP.Hops) - 1; last >= 0 && r.HTTP.Hops[last].Status == 0 && r.HTTP.Error != "" {
		return last
	}
	return -1
}

// Failed reports whether any stage of the lanes failed.
func anyFailed(lanes []Lane) bool {
	for _, l := range lanes {
		for _, s := range l.Stages {
			if s.State == "fail" {
				return true
			}
		}
	}
	return false
}

// Label is the hop's bar in words, for screen readers and as its tooltip.
func (h hopBar) Label() string {
	parts := make([]string, 0, len(h.Bars))
	for _, b := range h.Bars {
		parts = append(parts, strings.ToLower(b.Name[:1])+b.Name[1:]+" "+ms(b.MS))
	}
	return fmt.Sprintf("Request %d took %s: %s", h.N, ms(h.TotalMS), strings.Join(parts, ", "))
}

// ms says a duration in milliseconds for people: tenths under 10 ms, so
// that a short phase does not read "0 ms".
func ms(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v > 0 && v < 0.05:
		return "under 0.1 ms"
	case v < 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }

// f3 writes an SVG coordinate precisely enough that the bar's segments add
// up to its drawn width.
func f3(v float64) string { return fmt.Sprintf("%.3f", v) }

// breakable marks the places a long URL may wrap (after a slash, a dot, a
// question mark, an ampersand or an equals sign) rather than mid-word.
func breakable(s string) []string {
	var out []string
	start := 0
	for i, r := range s {
		if strings.ContainsRune("/.?&=-_#", r) {
			out = append(out, s[start:i+1])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// CertWindow is a certificate's validity drawn on a time axis with today
// on it.
type CertWindow struct {
	Names, Issuer       string
	NotBefore, NotAfter time.Time
	Now                 time.Time
	// NowWord names the marker: "Today", or "When checked" for an older
	// report.
	NowWord              string
	State                string // valid, expired or not-yet-valid
	StartX, EndX, TodayX float64
}

// certWidth is the SVG width a certificate window spans.
const certWidth = 600.0

// NewCertWindow draws the leaf certificate of a TLS result as seen at
// now; ok is false when the handshake gave no certificate.
func NewCertWindow(t *probes.TLSResult, now time.Time) (CertWindow, bool) {
	if t == nil || len(t.Chain) == 0 || t.Chain[0].NotAfter.IsZero() {
		return CertWindow{}, false
	}
	leaf := t.Chain[0]
	cw := CertWindow{Names: joinNames(leaf), Issuer: issuerName(leaf.Issuer), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, Now: now, NowWord: "Today"}
	if day(now) != day(time.Now()) {
		cw.NowWord = "When checked"
	}
	switch {
	case now.Before(leaf.NotBefore):
		cw.State = "not-yet-valid"
	case now.After(leaf.NotAfter):
		cw.State = "expired"
	default:
		cw.State = "valid"
	}
	// The axis spans the window and today, with a margin on both sides so
	// that a marker at an end is not cut off.
	from, to := leaf.NotBefore, leaf.NotAfter
	if now.Before(from) {
		from = now
	}
	if now.After(to) {
		to = now
	}
	span := float64(to.Sub(from))
	if span <= 0 {
		span = float64(time.Hour)
	}
	margin := 30.0
	x := func(t time.Time) float64 { return margin + float64(t.Sub(from))/span*(certWidth-2*margin) }
	cw.StartX, cw.EndX, cw.TodayX = x(leaf.NotBefore), x(leaf.NotAfter), x(now)
	return cw, true
}

// Status says in words where today is in the window.
func (c CertWindow) Status() string {
	switch c.State {
	case "expired":
		return "It expired on " + day(c.NotAfter) + ", " + days(c.Now.Sub(c.NotAfter)) + " ago."
	case "not-yet-valid":
		return "It is not valid yet: it starts on " + day(c.NotBefore) + ", in " + days(c.NotBefore.Sub(c.Now)) + "."
	}
	return "It is valid today, until " + day(c.NotAfter) + " (" + days(c.NotAfter.Sub(c.Now)) + " left)."
}

// Label is the picture in words.
func (c CertWindow) Label() string {
	return "The certificate is valid from " + day(c.NotBefore) + " to " + day(c.NotAfter) + ". " + c.NowWord + ": " + day(c.Now) + ". " + c.Status()
}

func day(t time.Time) string { return t.UTC().Format("2 Jan 2006") }

// days says a duration in whole days, or hours under a day.
func days(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	if d < 24*time.Hour {
		h := int(math.Ceil(d.Hours()))
		if h == 1 {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", h)
	}
	n := int(d.Hours() / 24)
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

// issuerName is the issuer's common name, or its organisation, or the
// whole name.
func issuerName(dn string) string {
	for _, key := range []string{"CN=", "O="} {
		for _, part := range strings.Split(dn, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(part), key); ok && v != "" {
				return v
			}
		}
	}
	return dn
}

// Stage is one layer a request goes through, on the "where it fails"
// diagram.
type Stage struct {
	Name  string
	State string // ok, fail or unknown
}

// Lane is one place the site was tried from and how far it got.
type Lane struct {
	Who    string
	Stages []Stage
	Note   string // the lane's result in a few words
}

// stageNames are the layers of a request, as the diagram names them.
var stageNames = []string{"Name", "Connection", "Security", "Page"}

// stateWords say a stage's state for screen readers and in the legend.
var stateWords = map[string]string{"ok": "worked", "fail": "failed here", "unknown": "not known"}

// ServerLane is how far gatecheck's server got with the URL.
func ServerLane(r *probes.Report) Lane {
	l := Lane{Who: "gatecheck's server"}
	states := []string{"unknown", "unknown", "unknown", "unknown"}
	if r == nil {
		l.Stages, l.Note = stages(states), "Checking"
		return l
	}
	var dnsOK, tcpOK, tcpFail, tlsFail, tlsOK bool
	https := strings.HasPrefix(r.URL, "https:")
	for _, c := range r.Checks {
		switch c.Kind {
		case probes.ProbeDNS:
			dnsOK = c.Status != probes.StatusFail
			if !dnsOK {
				states[0] = "fail"
			}
		case probes.ProbeGuard:
			if c.Status == probes.StatusFail {
				states[0] = "fail"
			}
		case probes.ProbeTCP:
			if c.Status == probes.StatusOK {
				tcpOK = true
			} else {
				tcpFail = true
			}
		case probes.ProbeTLS:
			if https {
				tlsFail, tlsOK = c.Status == probes.StatusFail, c.Status != probes.StatusFail
			}
		}
	}
	if states[0] == "fail" {
		l.Stages, l.Note = stages(states), "Could not find the site's address"
		return l
	}
	if dnsOK {
		states[0] = "ok"
	}
	switch {
	case tcpOK:
		states[1] = "ok"
	case tcpFail:
		states[1] = "fail"
		l.Stages, l.Note = stages(states), "Could not connect"
		return l
	}
	switch {
	case !https:
		states[2] = "none"
	case tlsFail:
		states[2] = "fail"
		l.Stages, l.Note = stages(states), "The secure connection failed"
		return l
	case tlsOK:
		states[2] = "ok"
	}
	if h := r.HTTP.Final(); h != nil && h.Status > 0 {
		if h.Status >= 400 {
			states[3] = "fail"
			l.Note = fmt.Sprintf("The site answered with an error (%d)", h.Status)
		} else {
			states[3] = "ok"
			l.Note = "The site answered"
		}
	} else if r.HTTP != nil && r.HTTP.Error != "" {
		states[3] = "fail"
		l.Note = "No answer from the site"
	}
	l.Stages = stages(states)
	return l
}

// BrowserLane is how far the visitor's browser got: it can tell only
// whether a server answered, not what it answered.
func BrowserLane(v *wizard.Vantage, c *BrowserCheck) Lane {
	l := Lane{Who: "Your browser"}
	states := []string{"unknown", "unknown", "unknown", "unknown"}
	switch {
	case v == nil && c != nil && c.Skip == "":
		l.Note = "Being checked"
	case v == nil || v.Reachable == nil:
		l.Note = "Not checked"
	case *v.Reachable:
		states[0], states[1] = "ok", "ok"
		l.Note = "A server answered"
	default:
		states[1] = "fail"
		l.Note = "Could not connect"
	}
	l.Stages = stages(states)
	return l
}

func stages(states []string) []Stage {
	out := make([]Stage, len(stageNames))
	for i, n := range stageNames {
		out[i] = Stage{Name: n, State: states[i]}
	}
	return out
}

// Shown are the stages drawn: those the request goes through (no
// security on plain http), none when nothing is known of any.
func (l Lane) Shown() []Stage {
	var out []Stage
	known := false
	for _, s := range l.Stages {
		if s.State != "none" {
			out = append(out, s)
		}
		known = known || (s.State != "none" && s.State != "unknown")
	}
	if !known {
		return nil
	}
	return out
}

// Label is the lane in words.
func (l Lane) Label() string {
	var parts []string
	for _, s := range l.Shown() {
		parts = append(parts, strings.ToLower(s.Name)+" "+stateWords[s.State])
	}
	if len(parts) == 0 {
		return l.Who + ": " + l.Note + "."
	}
	return l.Who + ": " + strings.Join(parts, ", ") + ". " + l.Note + "."
}

// stageMark is the symbol drawn for a stage's state.
func stageMark(state string) string {
	switch state {
	case "ok":
		return "✓"
	case "fail":
		return "✕"
	case "none":
		return "–"
	}
	return "?"
}

// ProgressStep is one plain step of the probing page.
type ProgressStep struct {
	Label string
	// Kinds are the checks that finish the step; the page's script
	// reads them from the step's data-kinds.
	Kinds []probes.ProbeKind
	State string // done, running or waiting
	// Problem is set on a done step one of whose checks failed: it is
	// marked as where the trouble is, not ticked.
	Problem bool
}

// progressSteps are the probing page's steps, in the order a request goes
// through them, and the kinds of check that finish each.
var progressSteps = []ProgressStep{
	{Label: "Looking up the name", Kinds: []probes.ProbeKind{probes.ProbeDNS, probes.ProbeGuard}},
	{Label: "Connecting to the site's server", Kinds: []probes.ProbeKind{probes.ProbeTCP}},
	{Label: "Setting up a secure connection", Kinds: []probes.ProbeKind{probes.ProbeTLS}},
	{Label: "Asking the site for the page", Kinds: []probes.ProbeKind{probes.ProbeHTTP}},
	{Label: "Asking again a few times, to catch failures that come and go", Kinds: []probes.ProbeKind{probes.ProbeSamples}},
}

// plainProgress marks the steps for the checks so far: a step is done once
// a check of its kinds came in. Without secure (an http URL with no https
// twin to shake hands with), there is no secure connection step. While
// the check runs (started), the lookup runs first, then every step it
// unlocks at once (the probes after it run side by side); a check still
// waiting for its turn has every step waiting. static/app.js applies the
// same rule as checks arrive.
func plainProgress(checks []probes.Check, started, secure bool) (steps []ProgressStep, done int) {
	got, failed := map[probes.ProbeKind]bool{}, map[probes.ProbeKind]bool{}
	for _, c := range checks {
		got[c.Kind] = true
		failed[c.Kind] = failed[c.Kind] || c.Status == probes.StatusFail
	}
	for _, s := range progressSteps {
		if !secure && slices.Contains(s.Kinds, probes.ProbeTLS) {
			continue
		}
		i := len(steps)
		s.State = "waiting"
		for _, k := range s.Kinds {
			if got[k] {
				s.State = "done"
			}
			s.Problem = s.Problem || failed[k]
		}
		switch {
		case s.State == "done":
			done++
		case started && (i == 0 || steps[0].State == "done"):
			s.State = "running"
		}
		steps = append(steps, s)
	}
	return steps, done
}

// stepWords say a step's state for screen readers.
var stepWords = map[string]string{"done": "done", "running": "under way", "waiting": "waiting"}

// stepStateWords says a step's state for screen readers, a problem too.
func stepStateWords(s ProgressStep) string {
	if s.Problem && s.State == "done" {
		return "(done: a problem was found here)"
	}
	return "(" + stepWords[s.State] + ")"
}

func kindsAttr(ks []probes.ProbeKind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, " ")
}

// ProbingProgress is what the probing page says of where the check
// stands, besides the raw checks.
type ProbingProgress struct {
	// Started is set once the check runs (not waiting in the queue).
	Started bool
	// Secure is set when the check shakes hands over TLS: an https URL,
	// or an http one whose https twin is tried too.
	Secure bool
	// Usually says how long a check takes: "Checking a site usually takes
	// about 6 seconds."
	Usually string
}

// titleHost is the host of a URL for the probing page's title, or the URL
// itself when it has none.
func titleHost(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return raw
}

// viewLanes are the places the site was tried from, for the "where it fails"
// diagram: gatecheck's server, the browser (labelled as the table beside
// it labels it, "From your browser") and each agent.
func viewLanes(r *probes.Report, browser *wizard.Vantage, check *BrowserCheck, browserLabel string, agents []AgentRow) []Lane {
	b := BrowserLane(browser, check)
	if who, ok := strings.CutPrefix(browserLabel, "From "); ok {
		b.Who = upperFirst(who)
	}
	lanes := []Lane{ServerLane(r), b}
	for _, a := range agents {
		l := Lane{Who: "Agent " + a.Name, Stages: stages([]string{"unknown", "unknown", "unknown", "unknown"}), Note: agentNotes[a.State]}
		if a.Report != nil {
			l = ServerLane(a.Report)
			l.Who = "Agent " + a.Name
		}
		lanes = append(lanes, l)
	}
	return lanes
}

// agentNotes say in a few words where an agent's job stands before it has
// a view to draw.
var agentNotes = map[string]string{
	"done": "Its view was not stored", "waiting": "Waiting for it", "working": "Checking now",
	"offline": "Offline", "expired": "Did not answer", "refused": "Not asked: the address is not public",
}
