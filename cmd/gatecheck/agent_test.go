//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
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

func postCase(t *testing.T, base string, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(base+"/api/cases", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct{ Token, Error string }
	json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc.Token + doc.Error
}

// waitView polls a case's API until the view from "from" satisfies ok.
func waitView(t *testing.T, p *serverProcess, token, from string, ok func(apiView) bool) apiView {
	t.Helper()
	var last []apiView
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(p.base + "/api/cases/" + token)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Vantages []apiView }
		json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		last = doc.Vantages
		for _, v := range doc.Vantages {
			if v.From == from && ok(v) {
				return v
			}
		}
	}
	t.Fatalf("case %s: no fitting view from %s; views %+v\n%s", token, from, last, p.log())
	return apiView{}
}

func hasReport(v apiView) bool { return len(v.Report) > 0 && v.State == "" }

// TestAgentEndToEnd: the real server and two real agents on loopback; a
// case made through the API with both gets each one's report, from its
// address; an unknown agent is refused; a forged or revoked token makes an
// agent exit 1 with a clear message.
func TestAgentEndToEnd(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "gatecheck.db")
	office, lab := addAgent(t, dbPath, "office"), addAgent(t, dbPath, "lab")
	gone := addAgent(t, dbPath, "gone")
	if code, _, errs := runCmd(t, "agent", "revoke", "--db", dbPath, "gone"); code != 0 {
		t.Fatal(errs)
	}
	p := startServer(t, dbPath, "--agent-poll", "1s", "--agent-lease", "10s")
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer site.Close()

	if code, msg := postCase(t, p.base, `{"url": "`+site.URL+`", "agents": ["office", "nobody"]}`); code != http.StatusUnprocessableEntity || !strings.Contains(msg, `no agent called "nobody"`) {
		t.Errorf("an unknown agent: %d %s", code, msg)
	}
	agentProcess(t, p.base, office)
	agentProcess(t, p.base, lab)
	code, token := postCase(t, p.base, `{"url": "`+site.URL+`", "ticket": "INC-7", "agents": ["office", "lab"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, token)
	}
	for _, name := range []string{"office", "lab"} {
		v := waitView(t, p, token, "agent:"+name, hasReport)
		if v.Addr != "127.0.0.1" || v.Reachable == nil || !*v.Reachable || !strings.Contains(string(v.Report), `"healthy"`) {
			t.Errorf("%s's view: %+v", name, v)
		}
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

// TestAgentKilledMidJob: an agent killed while it probes a slow site
// leaves its job; once the lease passes the job is given back and the case
// says the agent is offline; the agent started again with the same token
// takes the job and finishes it.
func TestAgentKilledMidJob(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "gatecheck.db")
	office := addAgent(t, dbPath, "office")
	p := startServer(t, dbPath, "--agent-poll", "1s", "--agent-lease", "3s")
	// The site hangs until released: the server's own probe times out,
	// the first agent is killed while it waits.
	var hold atomic.Bool
	hold.Store(true)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold.Load() {
			<-r.Context().Done()
			return
		}
		io.WriteString(w, "hello")
	}))
	defer site.Close()
	code, token := postCase(t, p.base, `{"url": "`+site.URL+`", "agents": ["office"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, token)
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
