package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// gatedSite is a broken site, nginx answering 502 because its application
// is down, that can hold every request until released, and counts the
// requests that reach it.
// requestGate holds a test site's requests: hold makes them wait, release
// lets them (and those waiting) through. Its zero value is open.
type requestGate struct {
	mu   sync.Mutex
	gate chan struct{} // nil or closed: open
}

// wait blocks until the gate is open; false when ctx ends first.
func (g *requestGate) wait(ctx context.Context) bool {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate == nil {
		return true
	}
	select {
	case <-gate:
		return true
	case <-ctx.Done():
		return false
	}
}

// hold makes requests wait until release.
func (g *requestGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate == nil {
		g.gate = make(chan struct{})
		return
	}
	select {
	case <-g.gate:
		g.gate = make(chan struct{})
	default:
	}
}

func (g *requestGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate == nil {
		return
	}
	select {
	case <-g.gate:
	default:
		close(g.gate)
	}
}

type gatedSite struct {
	*httptest.Server
	requests atomic.Int64
	requestGate
}

// newGatedSite starts a site listening on ip (a loopback address), open.
func newGatedSite(t *testing.T, ip string) *gatedSite {
	t.Helper()
	s := &gatedSite{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if !s.wait(r.Context()) {
			return
		}
		w.Header().Set("Server", "nginx/1.24.0")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx/1.24.0</center></body></html>")
	}))
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	s.Listener = ln
	s.Start()
	// After the app's clean-up, which cancels the probes.
	t.Cleanup(s.Close)
	t.Cleanup(s.release)
	return s
}

// testClock is a clock tests move forward.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// outageApp is an application whose clients are told apart by
// X-Forwarded-For from a trusted proxy, as behind a load balancer.
func outageApp(t *testing.T, tweak ...func(*Config)) *testApp {
	return newApp(t, append([]func(*Config){func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}}, tweak...)...)
}

// report opens a case for target through the API, from client address ip.
func (a *testApp) report(target, ip string) string {
	a.t.Helper()
	body, _ := json.Marshal(map[string]string{"url": target})
	req, _ := http.NewRequest("POST", a.ts.URL+"/api/cases", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		a.t.Fatalf("report of %s from %s: %d %s", target, ip, resp.StatusCode, page)
	}
	var doc struct{ Token string }
	json.Unmarshal(page, &doc)
	return doc.Token
}

// probeDoc is the probe part of a case in the API.
type probeDoc struct {
	State         wizard.ProbeState
	QueuePosition int       `json:"queue_position"`
	CheckedAt     time.Time `json:"checked_at"`
	SharedFrom    int64     `json:"shared_from"`
	Report        *struct{ Verdict struct{ Code string } }
}

func (a *testApp) probe(token string) probeDoc {
	a.t.Helper()
	_, page := a.do("GET", "/api/cases/"+token, nil)
	var doc struct{ Probe probeDoc }
	if err := json.Unmarshal([]byte(page), &doc); err != nil {
		a.t.Fatalf("case %s: %v: %s", token, err, page)
	}
	return doc.Probe
}

// runsOf returns the probe runs of the case with token.
func (a *testApp) runsOf(token string) []*wizard.ProbeRun {
	a.t.Helper()
	c, err := a.db.Case(context.Background(), token)
	if err != nil {
		a.t.Fatal(err)
	}
	runs, err := a.db.ProbeRuns(context.Background(), c.ID)
	if err != nil {
		a.t.Fatal(err)
	}
	return runs
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// oneDiagnosis is how many requests one diagnosis of site sends it, as a
// case of its own path measures.
func oneDiagnosis(a *testApp, site *gatedSite) int64 {
	before := site.requests.Load()
	a.waitProbed(a.report(site.URL+"/measure", "192.0.2.250"))
	return site.requests.Load() - before
}

// pinnedClock is the real clock until pinned, then stands still.
type pinnedClock struct{ at atomic.Pointer[time.Time] }

func (c *pinnedClock) now() time.Time {
	if t := c.at.Load(); t != nil {
		return *t
	}
	return time.Now()
}
func (c *pinnedClock) pin(t time.Time) { c.at.Store(&t) }

// TestReuseWindowEdge: a report exactly the reuse window after a probe
// finished is still within it (the README's "within --reuse-window") and
// takes its report; a nanosecond later it is not.
func TestReuseWindowEdge(t *testing.T) {
	site := newGatedSite(t, "127.0.0.1")
	clock := &pinnedClock{}
	a := outageApp(t, func(c *Config) { c.Now, c.ReuseWindow = clock.now, time.Minute })
	target := site.URL + "/cart"
	// The runner times a finished probe by its own clock: pinned, the
	// probe finishes at done exactly.
	done := time.Now().Truncate(time.Second)
	clock.pin(done)
	first := a.report(target, "198.51.100.1")
	a.waitProbed(first)
	source := a.runsOf(first)[0]

	clock.pin(done.Add(time.Minute))
	edge := a.report(target, "198.51.100.2")
	if p := a.probe(edge); p.State != wizard.ProbeDone || p.SharedFrom != source.ID {
		t.Errorf("a report exactly 60 s after the check: %+v; want the check's report (run %d)", p, source.ID)
	}

	clock.pin(done.Add(time.Minute + time.Nanosecond))
	past := a.report(target, "198.51.100.3")
	a.waitProbed(past)
	if runs := a.runsOf(past); runs[0].SharedFrom == source.ID {
		t.Errorf("a report 60 s and 1 ns after the check reused it (run %d)", source.ID)
	}
}

// TestReportsJoinARunningProbe: reports of a site while its probe runs
// join that probe: one diagnosis reaches the site, every case gets the
// report, and every case's page follows the same live progress.
func TestReportsJoinARunningProbe(t *testing.T) {
	site := newGatedSite(t, "127.0.0.1")
	a := outageApp(t, func(c *Config) { c.ProbeWorkers, c.ProbeQueue = 2, 1 })
	per := oneDiagnosis(a, site)

	site.hold()
	target := site.URL + "/shop"
	before := site.requests.Load()
	var tokens []string
	for i := range 20 {
		tokens = append(tokens, a.report(target, fmt.Sprintf("198.51.100.%d", i+1)))
	}
	if waiting, running := a.srv.runner.Stats(); waiting != 0 || running != 1 {
		t.Errorf("20 reports of one site: %d jobs waiting, %d running; want one job", waiting, running)
	}
	// The first and last case follow the same progress stream.
	streams := make(chan string, 2)
	for _, tok := range []string{tokens[0], tokens[19]} {
		resp, err := http.Get(a.ts.URL + "/c/" + tok + "/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		go func() {
			var got strings.Builder
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				got.WriteString(sc.Text() + "\n")
				if strings.HasPrefix(sc.Text(), "data: ") && strings.HasSuffix(got.String(), "event: done\n"+sc.Text()+"\n") {
					break
				}
			}
			streams <- got.String()
		}()
	}
	for _, tok := range tokens {
		if _, page := a.do("GET", "/c/"+tok, nil); !strings.Contains(page, "data-events") || !strings.Contains(page, "once for all 20 reports") {
			t.Fatalf("case %s does not show the shared probe's progress: %s", tok, excerpt(page, "data-queue"))
		}
	}
	site.release()
	for range 2 {
		select {
		case got := <-streams:
			if !strings.Contains(got, "event: check") || !strings.Contains(got, "event: done\ndata: gateway_502") {
				t.Errorf("a joined case's stream missed checks or the end:\n%s", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a progress stream did not end")
		}
	}
	var leader int64
	for i, tok := range tokens {
		a.waitProbed(tok)
		runs := a.runsOf(tok)
		if len(runs) != 1 || runs[0].Report == nil || runs[0].Report.Verdict.Code != "gateway_502" {
			t.Fatalf("case %d: runs %+v", i, runs)
		}
		switch {
		case i == 0 && runs[0].SharedFrom != 0:
			t.Errorf("the first report's run shares another's: %d", runs[0].SharedFrom)
		case i == 0:
			leader = runs[0].ID
		case runs[0].SharedFrom != leader:
			t.Errorf("case %d shares run %d, want the first report's %d", i, runs[0].SharedFrom, leader)
		}
	}
	if got := site.requests.Load() - before; got != per {
		t.Errorf("20 reports sent the site %d requests; one diagnosis sends %d", got, per)
	}
	// Staff see which run a case's report came from.
	hash, _ := HashPassword("correct horse battery")
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAgent); err != nil {
		t.Fatal(err)
	}
	a.signIn("ann", "correct horse battery")
	if _, page := a.do("GET", "/staff/c/"+tokens[5], nil); !strings.Contains(page, fmt.Sprintf("Joined probe run %d of the same site", leader)) {
		t.Errorf("the staff timeline does not say the case joined run %d: %s", leader, excerpt(page, "Probes finished"))
	}
}

// TestReuseInsideTheWindowNotAfter: a report within the reuse window of a
// finished probe takes its report at once, saying so and how old it is;
// after the window, the site is probed again.
func TestReuseInsideTheWindowNotAfter(t *testing.T) {
	site := newGatedSite(t, "127.0.0.1")
	clock := &testClock{}
	a := outageApp(t, func(c *Config) { c.Now, c.ReuseWindow = clock.now, time.Minute })
	target := site.URL + "/cart"
	first := a.report(target, "198.51.100.1")
	a.waitProbed(first)
	source := a.runsOf(first)[0]
	before := site.requests.Load()

	clock.advance(59 * time.Second)
	reused := a.report(target, "198.51.100.2")
	// Finished before the API answered: no probe, no wait.
	p := a.probe(reused)
	if p.State != wizard.ProbeDone || p.SharedFrom != source.ID || !p.CheckedAt.Equal(source.Report.FinishedAt()) {
		t.Errorf("a report 59 s after a check: %+v; want done, shared from run %d, checked at %v", p, source.ID, source.Report.FinishedAt())
	}
	if n := site.requests.Load() - before; n != 0 {
		t.Errorf("a reused report sent the site %d requests", n)
	}
	_, page := a.do("GET", "/c/"+reused, nil)
	if !strings.Contains(page, "59 s ago") || !strings.Contains(page, "a check made for another report of this site") ||
		!strings.Contains(page, `action="/c/`+reused+`/recheck"`) {
		t.Errorf("the step page does not say the check is another report's, 59 s old, or offer a fresh one: %s", excerpt(page, `data-testid="checked"`))
	}
	if _, page := a.do("GET", "/c/"+first, nil); strings.Contains(page, "another report of this site") {
		t.Errorf("the first report's page calls its own check another's")
	}

	hash, _ := HashPassword("correct horse battery")
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAgent); err != nil {
		t.Fatal(err)
	}
	a.signIn("ann", "correct horse battery")
	if _, page := a.do("GET", "/staff/c/"+reused, nil); !strings.Contains(page, fmt.Sprintf("Reused the report of probe run %d of the same site", source.ID)) {
		t.Errorf("the staff timeline does not say the case reused run %d: %s", source.ID, excerpt(page, "Probes finished"))
	}

	clock.advance(2 * time.Second) // 61 s: past the window
	later := a.report(target, "198.51.100.3")
	a.waitProbed(later)
	if runs := a.runsOf(later); runs[0].SharedFrom != 0 {
		t.Errorf("a report 61 s after a check reused it (run %d)", runs[0].SharedFrom)
	}
	if site.requests.Load() == before {
		t.Error("a report after the window did not probe the site")
	}
}

// TestFreshCheckCoalesces: "Check again now" probes afresh rather than
// reuse, joins a check of the site under way, and counts against the
// visitor's limit.
func TestFreshCheckCoalesces(t *testing.T) {
	site := newGatedSite(t, "127.0.0.1")
	a := outageApp(t, func(c *Config) { c.ProbesPerMinute, c.ProbeBurst = 1, 1 })
	target := site.URL + "/login"
	first := a.report(target, "198.51.100.1")
	a.waitProbed(first)
	b := a.report(target, "198.51.100.2")
	d := a.report(target, "198.51.100.3")
	for _, tok := range []string{b, d} {
		if p := a.probe(tok); p.SharedFrom == 0 {
			t.Fatalf("case %s did not reuse the first check: %+v", tok, p)
		}
	}
	before := site.requests.Load()

	site.hold()
	resp, _ := a.do("POST", "/c/"+b+"/recheck", nil, "X-Forwarded-For", "198.51.100.4")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("check again: %d", resp.StatusCode)
	}
	waitFor(t, "the fresh check runs", func() bool { _, running := a.srv.runner.Stats(); return running == 1 })
	if _, page := a.do("GET", "/c/"+b, nil); !strings.Contains(page, "data-events") {
		t.Errorf("the page does not follow the fresh check: %s", excerpt(page, "<main"))
	}
	// Another visitor's fresh check joins it.
	resp, _ = a.do("POST", "/c/"+d+"/recheck", nil, "X-Forwarded-For", "198.51.100.5")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("second check again: %d", resp.StatusCode)
	}
	if waiting, running := a.srv.runner.Stats(); waiting != 0 || running != 1 {
		t.Errorf("two fresh checks of one site: %d waiting, %d running; want one job", waiting, running)
	}
	site.release()
	waitFor(t, "both fresh checks finish", func() bool {
		rb, rd := a.runsOf(b), a.runsOf(d)
		return len(rb) == 2 && len(rd) == 2 && rb[1].State == wizard.ProbeDone && rd[1].State == wizard.ProbeDone
	})
	rb, rd := a.runsOf(b), a.runsOf(d)
	if rb[1].SharedFrom != 0 || rd[1].SharedFrom != rb[1].ID || rb[1].Actor != "visitor" {
		t.Errorf("fresh checks: b's run %+v, d's run shares %d", rb[1], rd[1].SharedFrom)
	}
	got := site.requests.Load() - before
	if per := oneDiagnosis(a, site); got != per {
		t.Errorf("two fresh checks sent %d requests; one diagnosis sends %d", got, per)
	}
	if _, page := a.do("GET", "/c/"+d, nil); !strings.Contains(page, "just now") {
		t.Errorf("after its fresh check the page still shows the old one: %s", excerpt(page, `data-testid="checked"`))
	}
	// It counts against the visitor's limit (one a minute here).
	resp, page := a.do("POST", "/c/"+b+"/recheck", nil, "X-Forwarded-For", "198.51.100.4")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a second fresh check within the minute: %d %s", resp.StatusCode, excerpt(page, "<main"))
	}
	if resp, _ := a.do("POST", "/c/nosuchcase/recheck", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("check again on no case: %d", resp.StatusCode)
	}
}

// TestHostCap: one host is probed at most HostProbesPerMinute times a
// minute, staff re-runs included; jobs over the cap wait (and say why)
// while other hosts go ahead, and start once the minute has passed.
func TestHostCap(t *testing.T) {
	site := newGatedSite(t, "127.0.0.1")
	other := newGatedSite(t, "127.0.0.2")
	clock := &testClock{}
	a := outageApp(t, func(c *Config) {
		c.Now, c.HostProbesPerMinute, c.ReuseWindow = clock.now, 2, -1
	})
	hash, _ := HashPassword("correct horse battery")
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAgent); err != nil {
		t.Fatal(err)
	}
	one := a.report(site.URL+"/1", "198.51.100.1")
	two := a.report(site.URL+"/2", "198.51.100.2")
	a.waitProbed(one)
	a.waitProbed(two)
	before := site.requests.Load()

	three := a.report(site.URL+"/3", "198.51.100.3")
	if p := a.probe(three); p.State != wizard.ProbeQueued || p.QueuePosition != 1 {
		t.Errorf("a third probe of the host within the minute: %+v; want it waiting", p)
	}
	if _, page := a.do("GET", "/c/"+three, nil); !strings.Contains(page, "at most 2 times a minute") {
		t.Errorf("the waiting case does not say why: %s", excerpt(page, "data-queue"))
	}
	// Another host goes ahead meanwhile.
	a.waitProbed(a.report(other.URL+"/", "198.51.100.4"))
	// A staff re-run counts too.
	a.signIn("ann", "correct horse battery")
	if resp, _ := a.do("POST", "/staff/c/"+one+"/probe", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("re-run: %d", resp.StatusCode)
	}
	if waiting, _ := a.srv.runner.Stats(); waiting != 2 {
		t.Errorf("%d jobs waiting for the host; want the third report and the re-run", waiting)
	}
	if n := site.requests.Load() - before; n != 0 {
		t.Errorf("the capped host got %d more requests", n)
	}

	clock.advance(61 * time.Second)
	a.waitProbed(three)
	waitFor(t, "the re-run runs", func() bool { runs := a.runsOf(one); return runs[len(runs)-1].State == wizard.ProbeDone })
	if site.requests.Load() == before {
		t.Error("the waiting probes never reached the site")
	}
}

// TestOutageFlood: 300 reports of one broken site from 300 addresses at
// once are 300 cases (no 429: they take one place in the queue), one
// diagnosis reaches the site, every case gets its verdict, and goroutines
// and open files come back to where they were.
func TestOutageFlood(t *testing.T) {
	const reports, senders = 300, 30
	site := newGatedSite(t, "127.0.0.1")
	a := outageApp(t, func(c *Config) {
		c.ProbesPerMinute, c.ProbeBurst = 6, 5 // the defaults: each address sends one
		c.ProbeQueue = 50
	})
	per := oneDiagnosis(a, site)
	tr := &http.Transport{MaxIdleConnsPerHost: senders}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	a.client.CloseIdleConnections()
	baseline := takeResources()

	site.hold()
	before := site.requests.Load()
	target := site.URL + "/checkout"
	tokens := make([]string, reports)
	statuses := make([]int, reports)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < reports; i = int(next.Add(1) - 1) {
				body, _ := json.Marshal(map[string]string{"url": target})
				req, _ := http.NewRequest("POST", a.ts.URL+"/api/cases", strings.NewReader(string(body)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.1.%d.%d", i/256, i%256))
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("report %d: %v", i, err)
					continue
				}
				var doc struct{ Token string }
				json.NewDecoder(resp.Body).Decode(&doc)
				resp.Body.Close()
				statuses[i], tokens[i] = resp.StatusCode, doc.Token
			}
		})
	}
	wg.Wait()
	site.release()
	for i, st := range statuses {
		if st != http.StatusCreated || tokens[i] == "" {
			t.Fatalf("report %d: %d; want every report to be a case", i, st)
		}
	}
	waitFor(t, "the probe finishes", func() bool { w, r := a.srv.runner.Stats(); return w+r == 0 })
	for _, tok := range tokens {
		resp, body := getJSON(t, client, a.ts.URL+"/api/cases/"+tok)
		var doc struct{ Probe probeDoc }
		json.Unmarshal(body, &doc)
		if resp.StatusCode != http.StatusOK || doc.Probe.State != wizard.ProbeDone || doc.Probe.Report == nil || doc.Probe.Report.Verdict.Code != "gateway_502" {
			t.Fatalf("case %s: %d %+v", tok, resp.StatusCode, doc.Probe)
		}
	}
	if got := site.requests.Load() - before; got != per {
		t.Errorf("%d reports sent the site %d requests; one diagnosis sends %d", reports, got, per)
	}
	if pending, err := a.db.InterruptedProbes(context.Background()); err != nil || len(pending) != 0 {
		t.Errorf("%d probe runs left unfinished (%v)", len(pending), err)
	}
	tr.CloseIdleConnections()
	a.client.CloseIdleConnections()
	baseline.check(t)
}
