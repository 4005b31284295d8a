package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// switchSite is nginx answering 502 until fixed, then the site itself,
// counting the requests that reach it.
type switchSite struct {
	*httptest.Server
	fixed    atomic.Bool
	requests atomic.Int64
}

func newSwitchSite(t *testing.T) *switchSite {
	s := &switchSite{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if s.fixed.Load() {
			io.WriteString(w, "<html><body>Welcome to the shop</body></html>")
			return
		}
		w.Header().Set("Server", "nginx/1.24.0")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx/1.24.0</center></body></html>")
	}))
	t.Cleanup(s.Close)
	return s
}

// watchApp is an application with a clock the test moves and a watch
// that looks for due checks often.
func watchApp(t *testing.T, clock *testClock, tweak ...func(*Config)) *testApp {
	return outageApp(t, append([]func(*Config){func(c *Config) {
		c.Now, c.WatchTick = clock.now, 10*time.Millisecond
		c.WatchIntervals, c.WatchFor = []time.Duration{time.Minute, 2 * time.Minute}, time.Hour
	}}, tweak...)...)
}

// watchedReport opens a watched case through the API.
func (a *testApp) watchedReport(target, ip string) string {
	a.t.Helper()
	req, _ := http.NewRequest("POST", a.ts.URL+"/api/cases", strings.NewReader(`{"url": "`+target+`", "watch": true}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&doc)
	if resp.StatusCode != http.StatusCreated {
		a.t.Fatalf("watched report: %d", resp.StatusCode)
	}
	return doc.Token
}

// caseDoc reads a case through the API.
func (a *testApp) caseDoc(token string) (c struct {
	Watch       wizard.Watch
	RecoveredAt time.Time `json:"recovered_at"`
	Probe       probeDoc
}) {
	a.t.Helper()
	_, page := a.do("GET", "/api/cases/"+token, nil)
	if err := json.Unmarshal([]byte(page), &c); err != nil {
		a.t.Fatalf("case %s: %v", token, err)
	}
	return c
}

// doneRuns counts a case's finished probe runs.
func (a *testApp) doneRuns(token string) int {
	n := 0
	for _, r := range a.runsOf(token) {
		if r.State == wizard.ProbeDone {
			n++
		}
	}
	return n
}

// TestWatchUntilRecovered: watched cases are checked again when due, the
// checks of one site coalesced into one probe, until a check finds it
// working: then the case says since when, and the checks stop.
func TestWatchUntilRecovered(t *testing.T) {
	site := newSwitchSite(t)
	clock := &testClock{}
	a := watchApp(t, clock)
	target := site.URL + "/checkout"
	first := a.watchedReport(target, "198.51.100.1")
	a.waitProbed(first)
	second := a.watchedReport(target, "198.51.100.2") // reuses the first's report
	start := clock.now()
	for _, tok := range []string{first, second} {
		c := a.caseDoc(tok)
		if !c.Watch.Watching() || c.Watch.Next.Sub(start) > time.Minute || c.Watch.Until.Sub(start) < 59*time.Minute || !c.RecoveredAt.IsZero() {
			t.Fatalf("a watched case: %+v, recovered %v", c.Watch, c.RecoveredAt)
		}
	}
	if _, page := a.do("GET", "/c/"+first, nil); !strings.Contains(page, "keeps checking until") || !strings.Contains(page, "Stop checking") {
		t.Errorf("the step page does not say the site is watched: %s", excerpt(page, "data-testid=\"watching\""))
	}
	// Nothing is due before the first interval.
	time.Sleep(50 * time.Millisecond)
	if n := a.doneRuns(first); n != 1 {
		t.Fatalf("%d runs before the first check was due", n)
	}

	before := site.requests.Load()
	clock.advance(61 * time.Second)
	waitFor(t, "the first watch check of both cases", func() bool { return a.doneRuns(first) == 2 && a.doneRuns(second) == 2 })
	oneProbe := site.requests.Load() - before
	oneProbeFor(t, a, 1, first, second)
	if c := a.caseDoc(first); c.Watch.Checks != 1 || !c.Watch.Watching() || c.Watch.Next.Sub(clock.now()) > 2*time.Minute || c.Watch.Next.Sub(clock.now()) < time.Minute {
		t.Errorf("after the first check: %+v, want the next 2 min on", c.Watch)
	}

	site.fixed.Store(true)
	clock.advance(2*time.Minute + time.Second)
	waitFor(t, "both cases recover", func() bool {
		return !a.caseDoc(first).RecoveredAt.IsZero() && !a.caseDoc(second).RecoveredAt.IsZero()
	})
	oneProbeFor(t, a, 2, first, second)
	if got := site.requests.Load() - before; got != 2*oneProbe {
		t.Errorf("two checks of two watched cases sent %d requests; one probe sends %d", got, oneProbe)
	}
	c := a.caseDoc(first)
	if c.Watch.Watching() || c.Probe.Report == nil || c.Probe.Report.Verdict.Code != "healthy" {
		t.Errorf("a recovered case: %+v %+v", c.Watch, c.Probe)
	}
	if _, page := a.do("GET", "/c/"+first, nil); !strings.Contains(page, "Working again since") {
		t.Errorf("the step page does not say the site works again: %s", excerpt(page, "<main"))
	}
	// Nothing more is checked.
	clock.advance(time.Hour)
	time.Sleep(50 * time.Millisecond)
	if n := a.doneRuns(first); n != 3 {
		t.Errorf("%d runs after recovering, want 3", n)
	}
}

// oneProbeFor fails t unless run number i of the cases was one probe: the
// run of one case probed, the others shared its report, all asked by the
// watch.
func oneProbeFor(t *testing.T, a *testApp, i int, tokens ...string) {
	t.Helper()
	probed := 0
	for _, tok := range tokens {
		run := a.runsOf(tok)[i]
		if run.Actor != watchActor {
			t.Errorf("case %s's run %d was asked by %q, not the watch", tok, i, run.Actor)
		}
		if run.SharedFrom == 0 {
			probed++
		}
	}
	if probed != 1 {
		t.Errorf("check %d of %d watched cases of one site probed it %d times", i, len(tokens), probed)
	}
}

// TestWatchRunsOut: a watch ends at its end, saying how often it checked,
// and the visitor can start it again, or stop it.
func TestWatchRunsOut(t *testing.T) {
	site := newSwitchSite(t)
	clock := &testClock{}
	a := watchApp(t, clock, func(c *Config) { c.WatchFor = 90 * time.Second })
	tok := a.watchedReport(site.URL+"/", "198.51.100.1")
	a.waitProbed(tok)
	clock.advance(61 * time.Second)
	waitFor(t, "the check", func() bool { return a.doneRuns(tok) == 2 })
	waitFor(t, "the watch to end", func() bool { return !a.caseDoc(tok).Watch.Watching() })
	if c := a.caseDoc(tok); c.Watch.Checks != 1 || c.Watch.Until.IsZero() || !c.RecoveredAt.IsZero() {
		t.Errorf("a watch that ran out: %+v", c.Watch)
	}
	_, page := a.do("GET", "/c/"+tok, nil)
	if !strings.Contains(page, "checked 127.0.0.1 once more") || !strings.Contains(page, "Keep checking until it works again") {
		t.Errorf("the page after the watch ran out: %s", excerpt(page, "watch-ended"))
	}
	if resp, _ := a.do("POST", "/c/"+tok+"/watch", nil); resp.StatusCode != http.StatusSeeOther || !a.caseDoc(tok).Watch.Watching() {
		t.Errorf("watch again: %d", resp.StatusCode)
	}
	if resp, _ := a.do("POST", "/c/"+tok+"/watch", url.Values{"stop": {"1"}}); resp.StatusCode != http.StatusSeeOther || a.caseDoc(tok).Watch.Watching() {
		t.Errorf("stop watching: %d", resp.StatusCode)
	}
	if resp, _ := a.do("POST", "/c/nosuchcase/watch", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("watch no case: %d", resp.StatusCode)
	}
}

// TestWatchStartsWhenUnresolved: a case escalated or unresolved is
// watched, once; staff can start and stop a watch.
func TestWatchStartsWhenUnresolved(t *testing.T) {
	site := newSwitchSite(t)
	clock := &testClock{}
	a := watchApp(t, clock)
	hash, _ := HashPassword("correct horse battery")
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAgent); err != nil {
		t.Fatal(err)
	}
	a.signIn("ann", "correct horse battery")
	tok := a.report(site.URL+"/", "198.51.100.1")
	a.waitProbed(tok)
	if a.caseDoc(tok).Watch.Watching() {
		t.Fatal("a new case is watched without asking")
	}
	if resp, _ := a.do("POST", "/staff/c/"+tok+"/status", url.Values{"status": {"escalated"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("escalate: %d", resp.StatusCode)
	}
	if !a.caseDoc(tok).Watch.Watching() {
		t.Fatal("an escalated case is not watched")
	}
	if resp, _ := a.do("POST", "/staff/c/"+tok+"/watch", url.Values{"stop": {"1"}}); resp.StatusCode != http.StatusSeeOther ||
		resp.Header.Get("Location") != "/staff/c/"+tok || a.caseDoc(tok).Watch.Watching() {
		t.Fatalf("staff stop watching: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Once: moving on to unresolved does not start it again.
	a.do("POST", "/staff/c/"+tok+"/status", url.Values{"status": {"unresolved"}})
	if a.caseDoc(tok).Watch.Watching() {
		t.Error("a watch staff stopped started again")
	}
	if _, page := a.do("GET", "/staff/c/"+tok, nil); !strings.Contains(page, "Keep checking until it works again") {
		t.Errorf("the staff page offers no watch: %s", excerpt(page, "Re-run"))
	}
}

// TestWatchCheckIsNotOlderThanItsInterval: a site recovers 10 s after the
// failing report a case was opened with; a watch checking every 10 s
// notices at its first check, instead of reusing that report for the rest
// of the reuse window (60 s). A report made since the watch's previous
// check is still taken: two watched cases of one site cost one probe.
func TestWatchCheckIsNotOlderThanItsInterval(t *testing.T) {
	site := newSwitchSite(t)
	clock := &testClock{}
	a := watchApp(t, clock, func(c *Config) {
		c.WatchIntervals, c.ReuseWindow = []time.Duration{10 * time.Second}, time.Minute
	})
	tok := a.watchedReport(site.URL+"/", "198.51.100.1")
	a.waitProbed(tok)
	if p := a.probe(tok); p.Report == nil || p.Report.Verdict.Code != "gateway_502" {
		t.Fatalf("the first report: %+v", p)
	}
	site.fixed.Store(true)
	clock.advance(10 * time.Second)
	waitFor(t, "the first watch check", func() bool { return a.doneRuns(tok) == 2 })
	c := a.caseDoc(tok)
	if c.RecoveredAt.IsZero() || c.Watch.Watching() || c.Probe.SharedFrom != 0 {
		t.Fatalf("the first check 10 s after the failing report: recovered %v, watch %+v, shared from run %d; want a fresh probe that finds it working",
			c.RecoveredAt, c.Watch, c.Probe.SharedFrom)
	}

	// A report made since a watch's previous check is taken: a case
	// watched 5 s after another is checked with the other's check of 5 s
	// before, not by probing the site again.
	site.fixed.Store(false)
	other := site.URL + "/other"
	first := a.watchedReport(other, "198.51.100.2")
	a.waitProbed(first)
	clock.advance(5 * time.Second)
	second := a.watchedReport(other, "198.51.100.3") // reuses the first's report
	a.waitProbed(second)
	clock.advance(5 * time.Second)
	waitFor(t, "the first case's check", func() bool { return a.doneRuns(first) == 2 })
	before := site.requests.Load()
	clock.advance(5 * time.Second)
	waitFor(t, "the second case's check", func() bool { return a.doneRuns(second) == 2 })
	checked := a.runsOf(first)[1]
	if got := a.runsOf(second)[1]; checked.SharedFrom != 0 || got.SharedFrom != checked.ID || got.Actor != watchActor {
		t.Errorf("the second case's check (shared from %d, by %q) did not take the first's (run %d, shared from %d), 5 s old",
			got.SharedFrom, got.Actor, checked.ID, checked.SharedFrom)
	}
	if n := site.requests.Load() - before; n != 0 {
		t.Errorf("the second check sent the site %d requests", n)
	}
}
