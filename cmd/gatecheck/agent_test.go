//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// addAgent registers an agent in the database and returns its token.
func addAgent(t *testing.T, dbPath, name string) string {
	t.Helper()
	code, out, errs := runCmd(t, "agent", "add", "--db", dbPath, name)
	if code != 0 {
		t.Fatalf("agent add %s: %d %s", name, code, errs)
	}
	return strings.TrimSpace(out)
}

// agentProcess is gatecheck agent run as a child process, probing loopback.
// Its log goes to the file returned.
func agentProcess(t *testing.T, base, token string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "agent", "run", "--server", base, "--allow-net", "127.0.0.0/8", "--samples", "1", "--timeout", "5s")
	cmd.Env = append(os.Environ(), childEnv+"=1", "GATECHECK_AGENT_TOKEN="+token)
	logs, err := os.CreateTemp(t.TempDir(), "agent-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		}
	})
	return cmd, logs.Name()
}

// runCmdCtx runs gatecheck in this process until ctx ends.
func runCmdCtx(ctx context.Context, t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

type apiView struct {
	From      string          `json:"from"`
	Addr      string          `json:"addr"`
	State     string          `json:"state"`
	Reachable *bool           `json:"reachable"`
	Report    json.RawMessage `json:"report"`
}

// postCase opens a case through the API with the Authorization header
// auth ("" for none), and returns the status and the token or the error.
func postCase(t *testing.T, base, auth, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/cases", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct{ Token, Error string }
	json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc.Token + doc.Error
}

// addAPIKey makes an API key in the database and returns its
// Authorization header.
func addAPIKey(t *testing.T, dbPath string) string {
	t.Helper()
	code, out, errs := runCmd(t, "apikey", "add", "--db", dbPath, "servicedesk")
	if code != 0 {
		t.Fatalf("apikey add: %d %s", code, errs)
	}
	return "Bearer " + strings.TrimSpace(out)
}

// staffPost adds a member of staff, signs in and returns a function that
// posts a form as them, returning the status.
func staffPost(t *testing.T, base, dbPath string) func(path string, form url.Values) int {
	t.Helper()
	if code, _, errs := runWith(t, "correct horse battery\n", "user", "add", "--db", dbPath, "ann"); code != 0 {
		t.Fatalf("user add: %d %s", code, errs)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var cookie *http.Cookie
	post := func(path string, form url.Values) int {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		for _, c := range resp.Cookies() {
			if c.Name == "gatecheck_session" {
				cookie = c
			}
		}
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if post("/staff/login", url.Values{"name": {"ann"}, "password": {"correct horse battery"}}); cookie == nil {
		t.Fatal("staff sign-in failed")
	}
	return post
}

// countingSite is a site on loopback that counts the requests it gets.
func countingSite(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "hello")
	}))
	t.Cleanup(site.Close)
	return site, &hits
}

// waitView polls a case's API until the view from "from" satisfies ok.
func waitView(t *testing.T, p *serverProcess, token, from string, ok func(apiView) bool) apiView {
	t.Helper()
	var last []byte
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(p.base + "/api/cases/" + token)
		if err != nil {
			t.Fatal(err)
		}
		last, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		var doc struct{ Vantages []apiView }
		json.Unmarshal(last, &doc)
		for _, v := range doc.Vantages {
			if v.From == from && ok(v) {
				return v
			}
		}
	}
	t.Fatalf("case %s: no fitting view from %s; the case:\n%.3000s\n%s", token, from, last, p.log())
	return apiView{}
}

func hasReport(v apiView) bool { return len(v.Report) > 0 && v.State == "" }

// TestAgentEndToEnd: the real server (which probes loopback) and two
// real agents (run with --allow-net 127.0.0.0/8) on loopback. Agents are
// asked with an API key only (anonymous callers are refused, an unknown
// agent too); a case made so gets each one's report, from its address,
// made with the agent's default guard: a job that is not an internal
// check does not get its --allow-net ranges, so the loopback site is
// refused there. Staff asking for an internal check get the site's view
// from inside. A forged or revoked token makes an agent exit 1 with a
// clear message.
func TestAgentEndToEnd(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "gatecheck.db")
	office, lab := addAgent(t, dbPath, "office"), addAgent(t, dbPath, "lab")
	gone := addAgent(t, dbPath, "gone")
	if code, _, errs := runCmd(t, "agent", "revoke", "--db", dbPath, "gone"); code != 0 {
		t.Fatal(errs)
	}
	key := addAPIKey(t, dbPath)
	p := startServer(t, dbPath, "--agent-poll", "1s", "--agent-lease", "10s")
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer site.Close()

	if code, msg := postCase(t, p.base, "", `{"url": "`+site.URL+`", "agents": ["office"]}`); code != http.StatusUnauthorized || !strings.Contains(msg, "needs an API key") {
		t.Errorf("anonymous, an agent: %d %s", code, msg)
	}
	if code, msg := postCase(t, p.base, key, `{"url": "`+site.URL+`", "agents": ["office", "nobody"]}`); code != http.StatusUnprocessableEntity || !strings.Contains(msg, "no live agent of that name") {
		t.Errorf("an unknown agent: %d %s", code, msg)
	}
	agentProcess(t, p.base, office)
	agentProcess(t, p.base, lab)
	code, token := postCase(t, p.base, key, `{"url": "`+site.URL+`", "ticket": "INC-7", "agents": ["office", "lab"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, token)
	}
	for _, name := range []string{"office", "lab"} {
		v := waitView(t, p, token, "agent:"+name, hasReport)
		if v.Addr != "127.0.0.1" || v.Reachable == nil || *v.Reachable || !strings.Contains(string(v.Report), `"blocked_target"`) {
			t.Errorf("%s's view of a job that is not internal: from %s, reachable %v, %.400s", name, v.Addr, v.Reachable, v.Report)
		}
	}

	post := staffPost(t, p.base, dbPath)
	if status := post("/staff/c/"+token+"/agent", url.Values{"agent": {"office"}, "internal": {"1"}}); status != http.StatusSeeOther {
		t.Fatalf("internal check: %d\n%s", status, p.log())
	}
	v := waitView(t, p, token, "agent:office", func(v apiView) bool { return hasReport(v) && strings.Contains(string(v.Report), `"healthy"`) })
	if v.Addr != "127.0.0.1" || v.Reachable == nil || !*v.Reachable {
		t.Errorf("office's internal check: from %s, reachable %v, %.400s", v.Addr, v.Reachable, v.Report)
	}

	for _, tok := range []string{"gca_forged0000000000000000000000", gone} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		code, _, errs := runCmdCtx(ctx, t, "agent", "run", "--server", p.base, "--token", tok)
		cancel()
		if code != 1 || !strings.Contains(errs, "the server refused this agent's token: it was never issued, or it was revoked") {
			t.Errorf("a refused token: exit %d\n%s", code, errs)
		}
	}
}

// TestAgentNeverFetchesWhatTheServerRefused: gatecheck's server does not
// probe loopback; an agent inside "the customer's network" that may
// (--allow-net 127.0.0.0/8) is named on a case of a loopback site. The
// job is refused, never sent: the site gets no request at all, the agent
// probes nothing, and the case says why. Staff asking for an internal
// check then get it fetched from there.
func TestAgentNeverFetchesWhatTheServerRefused(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "gatecheck.db")
	office := addAgent(t, dbPath, "office")
	key := addAPIKey(t, dbPath)
	p := startServerArgs(t, "serve", "--addr", "127.0.0.1:0", "--db", dbPath, "--samples", "1", "--timeout", "5s",
		"--trusted-proxy", "127.0.0.1/32", "--agent-poll", "1s", "--agent-lease", "10s")
	site, hits := countingSite(t)
	_, logPath := agentProcess(t, p.base, office)

	code, token := postCase(t, p.base, key, `{"url": "`+site.URL+`", "agents": ["office"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, token)
	}
	waitView(t, p, token, "agent:office", func(v apiView) bool { return v.State == "refused" })
	// The agent asks again meanwhile (its long-polls last 1 s): there is
	// still nothing for it.
	time.Sleep(2500 * time.Millisecond)
	if n := hits.Load(); n != 0 {
		t.Errorf("the site got %d requests", n)
	}
	if b, _ := os.ReadFile(logPath); bytes.Contains(b, []byte("msg=probing")) {
		t.Errorf("the agent probed:\n%s", b)
	}

	post := staffPost(t, p.base, dbPath)
	if status := post("/staff/c/"+token+"/agent", url.Values{"agent": {"office"}, "internal": {"1"}}); status != http.StatusSeeOther {
		t.Fatalf("internal check: %d\n%s", status, p.log())
	}
	v := waitView(t, p, token, "agent:office", hasReport)
	if !strings.Contains(string(v.Report), `"healthy"`) || hits.Load() == 0 {
		t.Errorf("the internal check: %d requests, %s", hits.Load(), v.Report)
	}
}

// TestAgentKilledMidJob: an agent killed while it probes a slow site (an
// internal check staff asked for) leaves its job; once the lease passes
// the job is given back and the case says the agent is offline; the agent
// started again with the same token takes the job and finishes it.
func TestAgentKilledMidJob(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "gatecheck.db")
	office := addAgent(t, dbPath, "office")
	p := startServer(t, dbPath, "--agent-poll", "1s", "--agent-lease", "3s")
	// Once the case is open, the site hangs until released: the first
	// agent is killed while it waits.
	var hold atomic.Bool
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold.Load() {
			<-r.Context().Done()
			return
		}
		io.WriteString(w, "hello")
	}))
	defer site.Close()
	code, token := postCase(t, p.base, "", `{"url": "`+site.URL+`"}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, token)
	}
	waitView(t, p, token, "server", hasReport)
	hold.Store(true)
	post := staffPost(t, p.base, dbPath)
	if status := post("/staff/c/"+token+"/agent", url.Values{"agent": {"office"}, "internal": {"1"}}); status != http.StatusSeeOther {
		t.Fatalf("internal check: %d\n%s", status, p.log())
	}
	first, logPath := agentProcess(t, p.base, office)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(logPath); bytes.Contains(b, []byte("msg=probing")) {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("the agent never probed the site\n%s\n%s", b, p.log())
		}
	}
	first.Process.Kill()
	first.Wait()
	waitView(t, p, token, "agent:office", func(v apiView) bool { return v.State == "offline" })

	hold.Store(false)
	agentProcess(t, p.base, office)
	v := waitView(t, p, token, "agent:office", hasReport)
	if !strings.Contains(string(v.Report), `"healthy"`) {
		t.Errorf("the second agent's view: %s", v.Report)
	}
}
