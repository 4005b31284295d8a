package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// agentDo sends an agent's request with its token.
func (a *testApp) agentDo(path, token string, body io.Reader) (*http.Response, string) {
	a.t.Helper()
	req, _ := http.NewRequest("POST", a.ts.URL+path, body)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("User-Agent", "gatecheck-agent/1.2.3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (a *testApp) apiCreate(body string) (*http.Response, string) {
	a.t.Helper()
	req, _ := http.NewRequest("POST", a.ts.URL+"/api/cases", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func reportJSON(code probes.Code) string {
	b, _ := json.Marshal(&probes.Report{URL: "http://x/", Verdict: probes.Verdict{Code: code, Summary: "what " + string(code) + " means"}})
	return string(b)
}

// TestAgentProtocol: tokens, long-polls woken by a new job, reports by the
// job's own agent only and once, limits on the report, and the view in the
// API, on the pages and in the tree: an agent refused while gatecheck's
// server gets through leads to the allowlist escalation naming the
// agent's address.
func TestAgentProtocol(t *testing.T) {
	a := newApp(t, func(c *Config) { c.AgentPoll = 3 * time.Second })
	ctx := context.Background()
	_, office, _ := a.db.CreateAgent(ctx, "office")
	_, lab, _ := a.db.CreateAgent(ctx, "lab")
	_, gone, _ := a.db.CreateAgent(ctx, "gone")
	a.db.RevokeAgent(ctx, "gone")

	for _, tok := range []string{"gca_forged", gone, "nope"} {
		resp, body := a.agentDo("/agent/v1/poll", tok, nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
			t.Errorf("poll with %q: %d %s", tok, resp.StatusCode, body)
		}
	}
	if resp, _ := a.agentDo("/agent/v1/poll", office, nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("idle poll: %d", resp.StatusCode)
	}

	// An unknown agent: 422, and no case stored.
	site := healthySite(t)
	if resp, body := a.apiCreate(`{"url": "` + site.URL + `", "agents": ["office", "nobody"]}`); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "nobody") {
		t.Errorf("an unknown agent: %d %s", resp.StatusCode, body)
	}
	if _, n, _ := a.db.FindCases(ctx, wizard.CaseFilter{Limit: 1}); n != 0 {
		t.Errorf("%d cases stored after a refusal", n)
	}

	// A poll waiting when the case is made gets the job before it ends.
	got := make(chan string, 1)
	go func() {
		resp, body := a.agentDo("/agent/v1/poll", office, nil)
		got <- fmt.Sprint(resp.StatusCode, " ", body)
	}()
	waitFor(t, "the poll waits", func() bool { a.srv.agentMu.Lock(); defer a.srv.agentMu.Unlock(); return len(a.srv.polls) > 0 })
	resp, body := a.apiCreate(`{"url": "` + site.URL + `", "agents": ["office", "lab"]}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var created struct{ Token string }
	json.Unmarshal([]byte(body), &created)
	a.waitProbed(created.Token)
	answer := <-got
	var job agentJSON
	if !strings.HasPrefix(answer, "200 ") || json.Unmarshal([]byte(answer[4:]), &job) != nil || job.URL != site.URL+"/" {
		t.Fatalf("the waiting poll: %s", answer)
	}
	views := a.apiVantages(created.Token)
	if len(views) != 3 || views[1].From != "agent:office" || views[1].State != "waiting" || views[2].From != "agent:lab" || views[2].State != "offline" {
		t.Errorf("views while the agents work: %+v", views)
	}

	report := fmt.Sprintf("/agent/v1/jobs/%d/report", job.ID)
	if resp, _ := a.agentDo(report, lab, strings.NewReader(reportJSON(probes.Healthy))); resp.StatusCode != http.StatusNotFound {
		t.Errorf("lab reports office's job: %d", resp.StatusCode)
	}
	if resp, _ := a.agentDo(report, office, strings.NewReader(`{"verdict": `)); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a report that does not decode: %d", resp.StatusCode)
	}
	big := `{"url": "` + strings.Repeat("x", maxAgentReport) + `"}`
	if resp, _ := a.agentDo(report, office, strings.NewReader(big)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("an oversized report: %d", resp.StatusCode)
	}
	if resp, body := a.agentDo(report, office, strings.NewReader(reportJSON(probes.AccessBlocked))); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("office's report: %d %s", resp.StatusCode, body)
	}
	if resp, _ := a.agentDo(report, office, strings.NewReader(reportJSON(probes.AccessBlocked))); resp.StatusCode != http.StatusConflict {
		t.Errorf("a second report: %d", resp.StatusCode)
	}

	views = a.apiVantages(created.Token)
	if len(views) != 3 || views[1].From != "agent:office" || views[1].State != "" || views[1].Addr != "127.0.0.1" || views[1].Report == nil || views[1].Reachable == nil || *views[1].Reachable {
		t.Errorf("views after office's report: %+v", views)
	}
	// lab asked (its report of office's job), so it is online and its job
	// waits for it.
	// Refused from the office, fine from gatecheck: the allowlist
	// escalation, naming the office's address; the page shows both views.
	_, page := a.do("GET", "/c/"+created.Token, nil)
	for _, want := range []string{"Ask CloudOps to allow your network&#39;s address", "Please add 127.0.0.1 (our network&#39;s public address",
		"Seen from gatecheck&#39;s agent office at 127.0.0.1", `data-agent="office" data-state="done"`, `data-agent="lab" data-state="waiting"`, "Waiting for agent lab (online)"} {
		if !strings.Contains(page, want) {
			t.Errorf("case page lacks %s", want)
		}
	}

	// Staff: the agents page, and a re-run from lab.
	hash, _ := HashPassword("correct horse battery")
	a.db.CreateUser(ctx, "ann", hash, wizard.RoleAgent)
	a.signIn("ann", "correct horse battery")
	_, page = a.do("GET", "/staff/agents", nil)
	for _, want := range []string{`data-agent="office" data-state="online"`, `data-agent="lab" data-state="online"`, `data-agent="gone" data-state="revoked"`, "1.2.3"} {
		if !strings.Contains(page, want) {
			t.Errorf("agents page lacks %s", want)
		}
	}
	if resp, _ := a.do("POST", "/staff/c/"+created.Token+"/agent", url.Values{"agent": {"nobody"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("re-run from an unknown agent: %d", resp.StatusCode)
	}
	before := len(a.runsOf(created.Token))
	if resp, body := a.do("POST", "/staff/c/"+created.Token+"/agent", url.Values{"agent": {"lab"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("re-run from lab: %d %.300s", resp.StatusCode, body)
	}
	runs := a.runsOf(created.Token)
	c, _ := a.db.Case(ctx, created.Token)
	jobs, _ := a.db.CaseAgentJobs(ctx, c.ID)
	if len(runs) != before+1 || len(jobs) != 3 || jobs[2].Agent.Name != "lab" || jobs[2].RunID != runs[len(runs)-1].ID || jobs[2].Actor != "ann" {
		t.Errorf("after the re-run: %d runs, jobs %+v", len(runs), jobs)
	}
	if resp, body := a.agentDo("/agent/v1/poll", lab, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("lab's poll after the re-run: %d %s", resp.StatusCode, body)
	}
}
