//go:build unix

package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

// childEnv, when set, makes the test binary run gatecheck itself (main,
// with its signal handling) instead of the tests: the fault tests start
// the real server as a separate process that they can kill.
const childEnv = "GATECHECK_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		return
	}
	code := m.Run()
	stopPostgres()
	os.Exit(code)
}

// serverProcess is gatecheck serve running as a child process.
type serverProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	stderr string // path of its log
	exited chan struct{}
	err    error // from Wait, once exited is closed
}

// startServer starts gatecheck serve on 127.0.0.1:0 with dbPath, probing
// loopback only, and waits until it serves.
func startServer(t *testing.T, dbPath string, extra ...string) *serverProcess {
	t.Helper()
	return startServerArgs(t, append([]string{"serve", "--addr", "127.0.0.1:0", "--db", dbPath, "--allow-net", "127.0.0.0/8",
		"--samples", "1", "--timeout", "5s", "--trusted-proxy", "127.0.0.1/32"}, extra...)...)
}

// startServerArgs runs gatecheck with args, a serve command of its own
// (one that does not allow loopback, say), as startServer does.
func startServerArgs(t *testing.T, args ...string) *serverProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	logf, err := os.CreateTemp(t.TempDir(), "serve-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	p := &serverProcess{t: t, cmd: cmd, stderr: logf.Name(), exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
	})
	lines := make(chan string, 1)
	go func() {
		defer pr.Close()
		br := bufio.NewReader(pr)
		line, _ := br.ReadString('\n')
		lines <- line
		io.Copy(io.Discard, br)
	}()
	select {
	case line := <-lines:
		_, after, ok := strings.Cut(line, "serving ")
		if !ok {
			t.Fatalf("gatecheck serve did not start: %q\n%s", line, p.log())
		}
		p.base = strings.TrimSuffix(strings.Fields(after)[0], "/")
	case <-time.After(30 * time.Second):
		t.Fatalf("gatecheck serve did not start\n%s", p.log())
	}
	return p
}

// log returns the end of the server's log.
func (p *serverProcess) log() string {
	b, _ := os.ReadFile(p.stderr)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// wait waits for the process to end and returns its exit code (-1 when a
// signal ended it).
func (p *serverProcess) wait(limit time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(limit):
		p.t.Fatalf("gatecheck serve did not stop within %v\n%s", limit, p.log())
	}
	return p.cmd.ProcessState.ExitCode()
}

// storm is many clients writing to one server at once: some open cases
// (through the API and the form), some walk cases back and forth, some
// watch a case's progress stream. It keeps what the server acknowledged.
type storm struct {
	base   string
	client *http.Client

	mu      sync.Mutex
	created map[string]string // token -> ticket, for every 201 or 303 received
	latest  string            // the newest of them
	walked  map[string]int    // token -> answers and backs acknowledged with 303
	wrong   []string          // answers that must never happen (5xx, 201 without a token, ...)
	refused int               // 429s
	failed  int               // transport errors after the fault
	after   int               // answers received after the fault

	faulted  atomic.Bool
	acked    atomic.Int64
	watching atomic.Int64 // progress streams open
}

func newStorm(base string) *storm {
	return &storm{
		base:    base,
		client:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		created: map[string]string{},
		walked:  map[string]int{},
	}
}

// post sends a form or JSON body as a same-origin page or a ticket system
// would, from client address ip behind the trusted proxy.
func (s *storm) post(path, ip string, form url.Values, jsonBody any) (*http.Response, []byte, error) {
	var req *http.Request
	if jsonBody != nil {
		b, _ := json.Marshal(jsonBody)
		req, _ = http.NewRequest("POST", s.base+path, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req, _ = http.NewRequest("POST", s.base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", s.base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// outcome records a request's result; it reports whether the client should
// go on.
func (s *storm) outcome(what string, resp *http.Response, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	faulted := s.faulted.Load()
	switch {
	case err != nil && faulted:
		s.failed++
		return false
	case err != nil:
		s.wrong = append(s.wrong, fmt.Sprintf("%s before the fault: %v", what, err))
		return false
	case faulted:
		s.after++
	}
	if resp.StatusCode >= 500 {
		s.wrong = append(s.wrong, fmt.Sprintf("%s: %d", what, resp.StatusCode))
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		s.refused++
		if resp.Header.Get("Retry-After") == "" {
			s.wrong = append(s.wrong, what+": 429 without Retry-After")
		}
	}
	return true
}

// create opens cases until ctx ends or the server goes away. Most are of
// a page of their own, so that the probes fall behind; one in four is of
// site itself, so that those runs share probes (and are interrupted
// sharing them).
func (s *storm) create(ctx context.Context, worker int, site string) {
	for n := 0; ctx.Err() == nil; n++ {
		ticket := fmt.Sprintf("STORM-%d-%d", worker, n)
		ip := fmt.Sprintf("10.1.%d.%d", worker, n%250)
		target := site
		if n%4 != 3 {
			target = fmt.Sprintf("%s/%d/%d", site, worker, n)
		}
		var token string
		var resp *http.Response
		var body []byte
		var err error
		if n%2 == 0 {
			resp, body, err = s.post("/api/cases", ip, nil, map[string]string{"url": target, "ticket": ticket})
		} else {
			resp, body, err = s.post("/cases", ip, url.Values{"url": {target}, "ticket": {ticket}}, nil)
		}
		if !s.outcome("create "+ticket, resp, err) {
			return
		}
		switch resp.StatusCode {
		case http.StatusCreated:
			var doc struct{ Token string }
			json.Unmarshal(body, &doc)
			token = doc.Token
		case http.StatusSeeOther:
			token = strings.TrimPrefix(resp.Header.Get("Location"), "/c/")
		case http.StatusTooManyRequests:
			continue
		default:
			s.mu.Lock()
			s.wrong = append(s.wrong, fmt.Sprintf("create %s: %d %.200s", ticket, resp.StatusCode, body))
			s.mu.Unlock()
			continue
		}
		s.mu.Lock()
		if token == "" {
			s.wrong = append(s.wrong, fmt.Sprintf("create %s: %d without a token", ticket, resp.StatusCode))
		} else {
			s.created[token] = ticket
			s.latest = token
			s.acked.Add(1)
		}
		s.mu.Unlock()
	}
}

// walk answers a probed case's first question and takes it back, again and
// again: each acknowledged answer or back is one record in the step log.
func (s *storm) walk(ctx context.Context, token string, worker int) {
	ip := fmt.Sprintf("10.2.0.%d", worker)
	for n := 0; ctx.Err() == nil; n++ {
		path, form := "/c/"+token+"/answer", url.Values{"node": {"role-gateway"}, "choice": {[]string{"user", "owner"}[n/2%2]}}
		if n%2 == 1 {
			path, form = "/c/"+token+"/back", url.Values{}
		}
		resp, body, err := s.post(path, ip, form, nil)
		if !s.outcome(path, resp, err) {
			return
		}
		s.mu.Lock()
		if resp.StatusCode == http.StatusSeeOther {
			s.walked[token]++
			s.acked.Add(1)
		} else {
			s.wrong = append(s.wrong, fmt.Sprintf("%s: %d %.200s", path, resp.StatusCode, body))
		}
		s.mu.Unlock()
	}
}

// watch follows the progress stream of the newest case, as the page of
// the visitor who just opened it does, once from writes are acknowledged.
func (s *storm) watch(ctx context.Context, from int64) {
	for ctx.Err() == nil {
		s.mu.Lock()
		token := s.latest
		s.mu.Unlock()
		if token == "" || s.acked.Load() < from {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		resp, err := s.client.Get(s.base + "/c/" + token + "/events")
		if !s.outcome("events", resp, err) {
			return
		}
		s.watching.Add(1)
		io.Copy(io.Discard, resp.Body)
		s.watching.Add(-1)
		resp.Body.Close()
	}
}

// prepareWalks creates n cases and waits for their probes, for walkers.
func (s *storm) prepareWalks(t *testing.T, n int, target string) []string {
	t.Helper()
	var tokens []string
	for i := range n {
		resp, body, err := s.post("/api/cases", fmt.Sprintf("10.3.0.%d", i), nil, map[string]string{"url": target, "ticket": fmt.Sprintf("WALK-%d", i)})
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create: %v %s", err, body)
		}
		var doc struct{ Token string }
		json.Unmarshal(body, &doc)
		tokens = append(tokens, doc.Token)
		s.created[doc.Token] = fmt.Sprintf("WALK-%d", i)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, tok := range tokens {
		for s.probeState(t, tok) != "done" {
			if time.Now().After(deadline) {
				t.Fatalf("the probes of %s did not finish", tok)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return tokens
}

// run starts the storm's clients, the watchers once watchFrom writes are
// acknowledged; the returned function stops them and waits for them.
func (s *storm) run(walks []string, creators, watchers int, watchFrom int64, target string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range creators {
		wg.Add(1)
		go func() { defer wg.Done(); s.create(ctx, i, target) }()
	}
	for i, tok := range walks {
		wg.Add(1)
		go func() { defer wg.Done(); s.walk(ctx, tok, i) }()
	}
	for range watchers {
		wg.Add(1)
		go func() { defer wg.Done(); s.watch(ctx, watchFrom) }()
	}
	return func() { cancel(); wg.Wait(); s.client.CloseIdleConnections() }
}

// waitAcked waits until the storm has n acknowledged writes.
func (s *storm) waitAcked(t *testing.T, p *serverProcess, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.acked.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes acknowledged in 30s\n%s", s.acked.Load(), p.log())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// probeState is the state of a case's probe run, as the API tells it.
func (s *storm) probeState(t *testing.T, token string) string {
	t.Helper()
	resp, err := s.client.Get(s.base + "/api/cases/" + token)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct{ Probe struct{ State string } }
	json.NewDecoder(resp.Body).Decode(&doc)
	return doc.Probe.State
}

// waitOneProbed waits until the probes of one of tokens finish.
func (s *storm) waitOneProbed(t *testing.T, tokens []string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		if s.probeState(t, tokens[i%len(tokens)]) == "done" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("none of the interrupted probe runs finished after the restart")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkStore opens the database left behind and checks it is sound and
// holds every write the storm saw acknowledged. It returns the cases whose
// probes have not finished.
func (s *storm) checkStore(t *testing.T, dbPath string) (unprobed []string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if res, err := db.IntegrityCheck(ctx); err != nil || res != "ok" {
		t.Errorf("integrity check: %q %v", res, err)
	}
	// The full-text index is kept by triggers: it must match the cases.
	raw, err := sql.Open("sqlite3", "file:"+dbPath+"?_query_only=true")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var cases, indexed int
	raw.QueryRow(`SELECT COUNT(*) FROM cases`).Scan(&cases)
	raw.QueryRow(`SELECT COUNT(*) FROM case_search`).Scan(&indexed)
	if cases != indexed || cases < len(s.created) {
		t.Errorf("%d cases stored, %d in the search index, %d acknowledged", cases, indexed, len(s.created))
	}
	missing := 0
	for tok, ticket := range s.created {
		c, err := db.Case(ctx, tok)
		if err != nil || c.Ticket != ticket {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged case %s (%s) is not in the store: %v", tok, ticket, err)
			}
			continue
		}
		// Its probe run was stored before the answer, so it runs (again)
		// at the next start.
		runs, err := db.ProbeRuns(ctx, c.ID)
		if err != nil || len(runs) == 0 {
			t.Errorf("acknowledged case %s has no probe run: %v", tok, err)
		} else if runs[len(runs)-1].State != "done" {
			unprobed = append(unprobed, tok)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged cases are missing", missing, len(s.created))
	}
	for tok, n := range s.walked {
		c, err := db.Case(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		steps, err := db.Steps(ctx, c.ID)
		// The request in flight at the fault may have been stored
		// without its answer arriving: one record more is fine.
		if err != nil || len(steps) < n || len(steps) > n+1 {
			t.Errorf("case %s: %d answers and backs acknowledged, %d records stored (%v)", tok, n, len(steps), err)
		}
	}
	return unprobed
}

func (s *storm) checkAnswers(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range s.wrong {
		if i == 10 {
			t.Errorf("... and %d more", len(s.wrong)-10)
			break
		}
		t.Error(w)
	}
}

func (s *storm) counts() (created, walked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.walked {
		walked += n
	}
	return len(s.created), walked
}

// TestKillDuringWriteStorm kills the server with SIGKILL while many
// clients create and walk cases, then checks that the database is sound
// and holds every acknowledged write, and that the server starts again on
// it and serves those cases.
func TestKillDuringWriteStorm(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "gatecheck.db")
	gw := slow502(t, 100*time.Millisecond) // probes write all along, and fall behind
	p := startServer(t, dbPath, "--probe-workers", "2", "--probe-queue", "100000", "--probes-per-minute", "100000", "--probes-per-host", "0")
	s := newStorm(p.base)
	walks := s.prepareWalks(t, 4, gw.URL)
	stop := s.run(walks, 12, 0, 0, gw.URL)
	s.waitAcked(t, p, 300)

	s.faulted.Store(true)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(10 * time.Second)
	var exit *exec.ExitError
	if !errors.As(p.err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the server was not killed: %v", p.err)
	}
	stop()
	created, walked := s.counts()
	t.Logf("at the kill: %d cases and %d answers acknowledged; %d refused, %d failed after the kill", created, walked, s.refused, s.failed)
	s.checkAnswers(t)
	unprobed := s.checkStore(t, dbPath)
	t.Logf("%d acknowledged cases were still waiting for their probes", len(unprobed))
	if len(unprobed) == 0 {
		t.Fatal("no probe run was interrupted: the storm did not outrun the workers")
	}

	// Started again on the same file, it serves every acknowledged case
	// and resumes the probe runs the kill interrupted.
	p2 := startServer(t, dbPath)
	s.base = p2.base
	for tok, ticket := range s.created {
		resp, err := s.client.Get(p2.base + "/api/cases/" + tok)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Ticket string }
		json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || doc.Ticket != ticket {
			t.Errorf("after the restart, case %s: %d %q", tok, resp.StatusCode, doc.Ticket)
		}
	}
	if !strings.Contains(p2.log(), "resuming interrupted probe runs") {
		t.Errorf("the restarted server did not resume the interrupted probe runs\n%s", p2.log())
	}
	s.waitOneProbed(t, unprobed)
	p2.cmd.Process.Signal(syscall.SIGTERM)
	if code := p2.wait(30 * time.Second); code != 0 {
		t.Errorf("the restarted server exited %d\n%s", code, p2.log())
	}
	s.checkStore(t, dbPath)
}

// TestGracefulShutdownUnderLoad sends SIGTERM while many clients create,
// walk and watch cases: the server must exit 0, answer every request it
// took with a proper status (or refuse the connection once closed), and
// have stored every write it acknowledged.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "gatecheck.db")
	gw := slow502(t, time.Second)
	const workers, watchers = 4, 4
	p := startServer(t, dbPath, "--probe-workers", fmt.Sprint(workers), "--probe-queue", "100000", "--probes-per-minute", "100000", "--probes-per-host", "0")
	s := newStorm(p.base)
	walks := s.prepareWalks(t, 4, gw.URL)
	stop := s.run(walks, 12, watchers, 300, gw.URL)
	s.waitAcked(t, p, 300)
	// Visitors of the newest cases, deep in the queue, watch their
	// progress pages.
	deadline := time.Now().Add(10 * time.Second)
	for s.watching.Load() < watchers {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d progress streams open", s.watching.Load(), watchers)
		}
		time.Sleep(5 * time.Millisecond)
	}

	s.faulted.Store(true)
	sigterm := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := p.wait(30 * time.Second)
	stop()
	created, walked := s.counts()
	t.Logf("at SIGTERM's end: %d cases and %d answers acknowledged; %d answers after SIGTERM, %d refused, %d connections failed after it",
		created, walked, s.after, s.refused, s.failed)
	if code != 0 {
		t.Errorf("gatecheck serve exited %d after SIGTERM\n%s", code, p.log())
	}
	if log := p.log(); !strings.Contains(log, "msg=stopped") || strings.Contains(log, "level=ERROR") {
		t.Errorf("the shutdown was not clean:\n%s", log)
	}
	s.checkAnswers(t)
	s.checkStore(t, dbPath)

	// The shutdown waits for requests, not for the queue: the probe runs
	// waiting at SIGTERM stay for the next start. Before progress streams
	// ended with the shutdown, each open one held it until its case was
	// probed, so the workers went through the queue (or for 20 s).
	raw, err := sql.Open("sqlite3", "file:"+dbPath+"?_query_only=true")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var finishedAfter, waiting int
	raw.QueryRow(`SELECT COUNT(*) FROM probe_runs WHERE state = 'done' AND finished_at > ?`, sigterm.UnixNano()).Scan(&finishedAfter)
	raw.QueryRow(`SELECT COUNT(*) FROM probe_runs WHERE state != 'done'`).Scan(&waiting)
	t.Logf("probe runs finished after SIGTERM: %d; left for the next start: %d", finishedAfter, waiting)
	if finishedAfter > 2*workers {
		t.Errorf("%d probe runs finished after SIGTERM with %d workers: the shutdown worked off the queue", finishedAfter, workers)
	}
	if waiting == 0 {
		t.Error("no probe run was waiting at SIGTERM: the storm did not fill the queue")
	}
}

// slow502 is a gateway that takes delay to answer 502, so that probes
// pile up in the queue and visitors' progress streams stay open.
func slow502(t *testing.T, delay time.Duration) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
		w.Header().Set("Server", "nginx/1.24.0")
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	return srv
}
