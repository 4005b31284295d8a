package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

// probeCounter is an upstream that answers 502 slowly and remembers how
// many distinct probes (one path per case) it served at once.
type probeCounter struct {
	mu      sync.Mutex
	inside  map[string]int // path -> requests in the handler
	maxSeen int
	served  int
}

func (p *probeCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.inside[r.URL.Path]++
	p.maxSeen = max(p.maxSeen, len(p.inside))
	p.served++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		if p.inside[r.URL.Path]--; p.inside[r.URL.Path] == 0 {
			delete(p.inside, r.URL.Path)
		}
		p.mu.Unlock()
	}()
	select {
	case <-time.After(30 * time.Millisecond):
	case <-r.Context().Done():
	}
	w.Header().Set("Server", "nginx/1.24.0")
	w.WriteHeader(http.StatusBadGateway)
	io.WriteString(w, "<html><body><center><h1>502 Bad Gateway</h1></center></body></html>")
}

// openFDs counts this process's open file descriptors, or -1 where
// /proc is missing.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// floodResult is what one diagnosis request of the flood got.
type floodResult struct {
	status   int
	token    string
	retry    string
	message  string
	state    string // the case's probe state right after creation
	position int    // and its queue position
}

// TestProbeQueueFlood sends 1,000 diagnosis requests at once, each from
// its own client address behind a trusted proxy so that the global queue,
// not the per-client limit, is what turns them away. Every answer must be
// a case (with its queue position) or a 429 with Retry-After, never a 5xx;
// no more probes run at once than there are workers; every accepted case
// gets its diagnosis; and once the queue drains, goroutines and file
// descriptors are back where they were.
func TestProbeQueueFlood(t *testing.T) {
	const (
		requests = 1000
		clients  = 50
		workers  = 4
		queue    = 50
	)
	up := &probeCounter{inside: map[string]int{}}
	upstream := httptest.NewServer(up)
	defer upstream.Close()
	a := newApp(t, func(c *Config) {
		c.ProbeWorkers, c.ProbeQueue = workers, queue
		c.ProbesPerMinute, c.ProbeBurst = 6, 5 // the defaults: each address sends one
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		// No probe gives up on a loaded machine: one that did would leave
		// its request in the upstream's count after the worker moved on.
		c.Prober = probes.New(probes.Config{Timeout: time.Minute, Samples: 1, SampleSpacing: time.Millisecond,
			AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	})
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// Warm up (pools, the tree cache) before taking the baseline.
	a.waitProbed(a.createCase(upstream.URL+"/warm-up", ""))
	tr.CloseIdleConnections()
	a.client.CloseIdleConnections()
	time.Sleep(100 * time.Millisecond)
	baseline := takeResources()

	// Watch the runner while the flood lasts.
	var maxRunning, maxWaiting atomic.Int64
	watchDone := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			w, r := a.srv.runner.Stats()
			if int64(r) > maxRunning.Load() {
				maxRunning.Store(int64(r))
			}
			if int64(w) > maxWaiting.Load() {
				maxWaiting.Store(int64(w))
			}
			select {
			case <-watchDone:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()

	results := make([]floodResult, requests)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= requests {
					return
				}
				results[i] = floodOne(t, client, a.ts.URL, upstream.URL, i)
			}
		}()
	}
	wg.Wait()
	close(watchDone)
	watch.Wait()

	// Tally, keeping one example of each kind of wrong answer.
	var created, refused int
	maxPosition := 0
	var tokens []string
	wrong := map[string][]int{}
	for i, r := range results {
		switch r.status {
		case http.StatusCreated, http.StatusSeeOther:
			created++
			tokens = append(tokens, r.token)
			switch {
			case r.token == "":
				wrong["created without a case"] = append(wrong["created without a case"], i)
			case r.state == "queued" && (r.position < 1 || r.position > queue):
				wrong["queued without a position"] = append(wrong["queued without a position"], i)
			case r.state != "queued" && r.state != "running" && r.state != "done":
				wrong["unknown probe state"] = append(wrong["unknown probe state"], i)
			}
			maxPosition = max(maxPosition, r.position)
		case http.StatusTooManyRequests:
			refused++
			if n, err := strconv.Atoi(r.retry); err != nil || n < 1 {
				wrong["429 without Retry-After"] = append(wrong["429 without Retry-After"], i)
			}
			// The queue is everyone's: say gatecheck is busy, do not
			// blame the client's address.
			if !strings.Contains(r.message, "busy") || strings.Contains(r.message, "your address") {
				wrong["429 with an unclear message"] = append(wrong["429 with an unclear message"], i)
			}
		default:
			wrong[fmt.Sprintf("status %d", r.status)] = append(wrong[fmt.Sprintf("status %d", r.status)], i)
		}
	}
	for kind, is := range wrong {
		r := results[is[0]]
		t.Errorf("%d answers: %s; request %d got %d (state %q, position %d): %.300s", len(is), kind, is[0], r.status, r.state, r.position, r.message)
	}
	t.Logf("%d requests: %d cases created, %d refused with 429; largest queue position seen %d", requests, created, refused, maxPosition)
	if created == 0 || refused == 0 {
		t.Errorf("the flood should both fill the queue and be turned away: %d created, %d refused", created, refused)
	}
	if maxPosition < 2 {
		t.Errorf("no case was seen waiting behind another (largest position %d)", maxPosition)
	}

	// Every accepted case gets its diagnosis.
	deadline := time.Now().Add(15 * time.Second)
	for w, r := a.srv.runner.Stats(); w+r > 0; w, r = a.srv.runner.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("the queue did not drain: %d waiting, %d running", w, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tok := range tokens {
		resp, body := getJSON(t, client, a.ts.URL+"/api/cases/"+tok)
		var doc struct{ Probe struct{ State string } }
		json.Unmarshal(body, &doc)
		if resp.StatusCode != http.StatusOK || doc.Probe.State != "done" {
			t.Errorf("case %s after the drain: %d, probe %q", tok, resp.StatusCode, doc.Probe.State)
		}
	}
	// A refused request leaves nothing behind: no case, no probe run
	// waiting for the next start.
	_, stored, err := a.db.FindCases(context.Background(), wizard.CaseFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if stored != created+1 { // and the warm-up
		t.Errorf("%d cases stored for %d created (+1 warm-up): refused requests left cases behind", stored, created)
	}
	if pending, err := a.db.InterruptedProbes(context.Background()); err != nil || len(pending) != 0 {
		t.Errorf("%d probe runs left unfinished after the drain (%v)", len(pending), err)
	}

	up.mu.Lock()
	maxProbes, served := up.maxSeen, up.served
	up.mu.Unlock()
	t.Logf("upstream: %d requests, at most %d probes at once; runner: at most %d running, %d waiting", served, maxProbes, maxRunning.Load(), maxWaiting.Load())
	if maxProbes > workers || maxRunning.Load() > workers {
		t.Errorf("%d probes ran at once (runner says %d) with %d workers", maxProbes, maxRunning.Load(), workers)
	}
	if maxProbes < 2 {
		t.Errorf("the upstream never saw two probes at once (%d): the flood did not load the workers", maxProbes)
	}
	if maxWaiting.Load() > queue {
		t.Errorf("%d probes waited with a queue of %d", maxWaiting.Load(), queue)
	}

	// Back to the baseline once idle: nothing leaks per request or case.
	tr.CloseIdleConnections()
	a.client.CloseIdleConnections()
	baseline.check(t)
}

// resources are a process's goroutines and open file descriptors, to
// check a flood leaves none behind.
type resources struct{ goroutines, fds int }

func takeResources() resources { return resources{runtime.NumGoroutine(), openFDs()} }

// check fails t unless the counts come back near the baseline r.
// Connections and pooled database handles take a moment to close: it waits
// for the counts to settle, then allows a slack far below one per case (a
// leak per request or per case would show as dozens).
func (r resources) check(t *testing.T) {
	t.Helper()
	const settled, slack = 2, 10
	var after resources
	deadline := time.Now().Add(5 * time.Second)
	for {
		after = takeResources()
		if after.goroutines <= r.goroutines+settled && after.fds <= r.fds+settled || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("goroutines %d before, %d after; open files %d before, %d after", r.goroutines, after.goroutines, r.fds, after.fds)
	if after.goroutines > r.goroutines+slack {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before the flood, %d after it drained\n%s", r.goroutines, after.goroutines, buf[:runtime.Stack(buf, true)])
	}
	if after.fds > r.fds+slack {
		t.Errorf("open files: %d before the flood, %d after it drained", r.fds, after.fds)
	}
}

// floodOne sends diagnosis request i, as a form post or through the API
// (alternately), from address 10.0.x.y behind the trusted proxy, and
// reads the case back at once.
func floodOne(t *testing.T, client *http.Client, base, upstream string, i int) floodResult {
	target := fmt.Sprintf("%s/p/%d", upstream, i)
	var req *http.Request
	if i%2 == 0 {
		body, _ := json.Marshal(map[string]string{"url": target, "ticket": fmt.Sprintf("FLOOD-%d", i)})
		req, _ = http.NewRequest("POST", base+"/api/cases", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
	} else {
		form := url.Values{"url": {target}, "ticket": {fmt.Sprintf("FLOOD-%d", i)}}
		req, _ = http.NewRequest("POST", base+"/cases", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("request %d: %v", i, err)
		return floodResult{}
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	res := floodResult{status: resp.StatusCode, retry: resp.Header.Get("Retry-After"), message: string(body)}
	switch resp.StatusCode {
	case http.StatusCreated:
		var doc struct{ Token string }
		json.Unmarshal(body, &doc)
		res.token = doc.Token
	case http.StatusSeeOther:
		res.token = strings.TrimPrefix(resp.Header.Get("Location"), "/c/")
	case http.StatusTooManyRequests:
		if i%2 == 0 {
			var doc struct{ Error string }
			json.Unmarshal(body, &doc)
			res.message = doc.Error
		} else if _, msg, ok := strings.Cut(res.message, `role="alert"><p>`); ok {
			res.message, _, _ = strings.Cut(msg, "</p>")
		}
		return res
	default:
		return res
	}
	if res.token == "" {
		return res
	}
	_, body = getJSON(t, client, base+"/api/cases/"+res.token)
	var doc struct {
		Probe struct {
			State         string `json:"state"`
			QueuePosition int    `json:"queue_position"`
		} `json:"probe"`
	}
	json.Unmarshal(body, &doc)
	res.state, res.position = doc.Probe.State, doc.Probe.QueuePosition
	return res
}

func getJSON(t *testing.T, client *http.Client, u string) (*http.Response, []byte) {
	resp, err := client.Get(u)
	if err != nil {
		t.Errorf("GET %s: %v", u, err)
		return &http.Response{}, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// A re-run refused because the queue is full stores nothing: before the
// queue's place was reserved first, the refused run stayed queued in the
// store, the case showed "queued" for ever and the run started at the next
// start, past the queue's limit.
func TestRefusedRerunLeavesNoRun(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	// After the app's own clean-up, which cancels the probes.
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	gw := brokenGateway(t)
	a := newApp(t, func(c *Config) {
		c.ProbeWorkers, c.ProbeQueue = 1, 1
		// Long enough that the slow probe holds the worker until the end.
		c.Prober = probes.New(probes.Config{Timeout: time.Minute, Samples: 1, SampleSpacing: time.Millisecond,
			AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	})
	hash, _ := HashPassword("correct horse battery")
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAgent); err != nil {
		t.Fatal(err)
	}
	resp, _ := a.do("POST", "/staff/login", url.Values{"name": {"ann"}, "password": {"correct horse battery"}})
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			a.cookie = c
		}
	}
	if a.cookie == nil {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	done := a.createCase(gw.URL, "")
	a.waitProbed(done)
	c, err := a.db.Case(context.Background(), done)
	if err != nil {
		t.Fatal(err)
	}
	a.createCase(slow.URL+"/running", "") // runs, and blocks the only worker
	deadline := time.Now().Add(10 * time.Second)
	for _, running := a.srv.runner.Stats(); running != 1; _, running = a.srv.runner.Stats() {
		if time.Now().After(deadline) {
			t.Fatal("the slow probe did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.createCase(slow.URL+"/waiting", "") // waits, and fills the queue
	if waiting, running := a.srv.runner.Stats(); waiting != 1 || running != 1 {
		t.Fatalf("the queue is not full: %d waiting, %d running", waiting, running)
	}
	resp, page := a.do("POST", "/staff/c/"+done+"/probe", nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(page, "busy") {
		t.Fatalf("re-run with a full queue: %d %q %q", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Location"))
	}
	runs, err := a.db.ProbeRuns(context.Background(), c.ID)
	if err != nil || len(runs) != 1 || runs[0].State != wizard.ProbeDone {
		t.Errorf("after a refused re-run the case has %d runs (%v), want its one finished run", len(runs), err)
	}
	pending, _ := a.db.InterruptedProbes(context.Background())
	if len(pending) != 2 {
		t.Errorf("%d runs waiting in the store, want the 2 the queue took", len(pending))
	}
}

// A worker that takes a job just as the runner closes finds the store
// refusing its cancelled context: that is the shutdown, to be resumed at
// the next start, not an error to log on every graceful stop.
func TestRunnerClosingLogsNoError(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatecheck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := &wizard.Case{URL: "http://127.0.0.1:9/", Host: "127.0.0.1", TreeVersion: wizard.Default().ID()}
	if err := db.CreateCase(ctx, c, wizard.DefaultSource()); err != nil {
		t.Fatal(err)
	}
	run, err := db.QueueProbe(ctx, c.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	r := NewRunner(probes.New(probes.Config{AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}), db,
		slog.New(slog.NewTextHandler(&logged, nil)), RunnerConfig{Workers: 1, Queue: 1})
	r.cancel() // the shutdown has begun when the worker takes the job
	if err := r.Enqueue(ctx, targetOf(c), run.ID, c.ID, false, anyRecent); err != nil {
		t.Fatal(err)
	}
	r.Start()
	deadline := time.Now().Add(10 * time.Second)
	for waiting, _ := r.Stats(); waiting > 0; waiting, _ = r.Stats() {
		if time.Now().After(deadline) {
			t.Fatal("the worker did not take the job")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logged.String(), "level=ERROR") {
		t.Errorf("closing logged an error:\n%s", logged.String())
	}
	if pending, err := db.InterruptedProbes(ctx); err != nil || pending[run.ID] != c.ID {
		t.Errorf("the run is not left for the next start: %v %v", pending, err)
	}
}
