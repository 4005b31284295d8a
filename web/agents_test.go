package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
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

// apiKey makes an API key and returns its Authorization header.
func (a *testApp) apiKey(name string) string {
	a.t.Helper()
	_, key, err := a.db.CreateAPIKey(context.Background(), name, "")
	if err != nil {
		a.t.Fatal(err)
	}
	return "Bearer " + key
}

// apiCreate opens a case through the API with the Authorization header
// auth ("" for an anonymous caller) and returns its token, or fails.
func (a *testApp) apiCreate(auth, body string) string {
	a.t.Helper()
	resp, doc := a.keyDo("POST", "/api/cases", auth, body)
	var created struct{ Token string }
	if resp.StatusCode != http.StatusCreated || json.Unmarshal([]byte(doc), &created) != nil {
		a.t.Fatalf("create %s: %d %s", body, resp.StatusCode, doc)
	}
	return created.Token
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
	key := a.apiKey("servicedesk")
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
	if resp, body := a.keyDo("POST", "/api/cases", key, `{"url": "`+site.URL+`", "agents": ["office", "nobody"]}`); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "no live agent of that name") {
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
	created := struct{ Token string }{a.apiCreate(key, `{"url": "`+site.URL+`", "agents": ["office", "lab"]}`)}
	a.waitProbed(created.Token)
	answer := <-got
	var job agentJSON
	if !strings.HasPrefix(answer, "200 ") || json.Unmarshal([]byte(answer[4:]), &job) != nil || job.URL != site.URL+"/" || job.Internal {
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

// countingAgents counts the writes of agents' asking (AgentSeen).
type countingAgents struct {
	wizard.AgentStore
	seen atomic.Int64
}

func (c *countingAgents) AgentSeen(ctx context.Context, id int64, addr, version string) error {
	c.seen.Add(1)
	return c.AgentStore.AgentSeen(ctx, id, addr, version)
}

// TestAgentsNeedKeyOrStaff: an anonymous caller that names agents is
// refused before any name is looked at (nothing stored, no job queued),
// with the same answer whether the agent exists or not; with an API key,
// a name never issued and a revoked one get byte-identical answers; a key
// or a signed-in member of staff may ask a live agent.
func TestAgentsNeedKeyOrStaff(t *testing.T) {
	a := newApp(t)
	ctx := context.Background()
	key := a.apiKey("servicedesk")
	a.db.CreateAgent(ctx, "branch")
	a.db.CreateAgent(ctx, "gone")
	a.db.RevokeAgent(ctx, "gone")
	site := healthySite(t)
	create := func(auth, agent string) (int, string) {
		resp, body := a.keyDo("POST", "/api/cases", auth, `{"url": "`+site.URL+`", "agents": ["`+agent+`"]}`)
		return resp.StatusCode, body
	}

	status, branch := create("", "branch")
	if status != http.StatusUnauthorized || !strings.Contains(branch, "needs an API key") {
		t.Errorf("anonymous, a live agent: %d %s", status, branch)
	}
	if status, nosuch := create("", "nosuch"); status != http.StatusUnauthorized || nosuch != branch {
		t.Errorf("anonymous, no such agent: %d %s, unlike %s", status, nosuch, branch)
	}
	if _, n, _ := a.db.FindCases(ctx, wizard.CaseFilter{Limit: 1}); n != 0 {
		t.Errorf("%d cases stored for anonymous callers", n)
	}

	status, nosuch := create(key, "nosuch")
	if status != http.StatusUnprocessableEntity || !strings.Contains(nosuch, "gatecheck agent list") {
		t.Errorf("a key, no such agent: %d %s", status, nosuch)
	}
	if status, gone := create(key, "gone"); status != http.StatusUnprocessableEntity || gone != nosuch {
		t.Errorf("a key, a revoked agent: %d %q, unlike %q", status, gone, nosuch)
	}
	if status, gone := create(key, "GONE"); status != http.StatusUnprocessableEntity || gone != nosuch {
		t.Errorf("a key, a revoked agent in capitals: %d %q, unlike %q", status, gone, nosuch)
	}
	if _, n, _ := a.db.FindCases(ctx, wizard.CaseFilter{Limit: 1}); n != 0 {
		t.Errorf("%d cases stored after refusals", n)
	}

	// Without agents, anonymous callers open cases as before.
	a.apiCreate("", `{"url": "`+site.URL+`", "agents": []}`)
	// A key, and a signed-in member of staff, may ask a live agent.
	byKey := a.apiCreate(key, `{"url": "`+site.URL+`", "agents": ["branch"]}`)
	a.addStaff("ann", wizard.RoleAgent)
	a.signIn("ann", staffPassword)
	resp, body := a.do("POST", "/api/cases", nil, "Content-Type", "application/json")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an empty body: %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("POST", a.ts.URL+"/api/cases", strings.NewReader(`{"url": "`+site.URL+`", "agents": ["branch"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(a.cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var byStaff struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&byStaff)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("a staff session: %d", resp.StatusCode)
	}
	for _, tok := range []string{byKey, byStaff.Token} {
		c, err := a.db.Case(ctx, tok)
		if err != nil {
			t.Fatalf("case %q: %v", tok, err)
		}
		if jobs, _ := a.db.CaseAgentJobs(ctx, c.ID); len(jobs) != 1 || jobs[0].Agent.Name != "branch" {
			t.Errorf("case %s: jobs %+v", tok, jobs)
		}
	}

	// The staff form refuses an unknown and a revoked agent alike.
	tok := a.apiCreate("", `{"url": "`+site.URL+`"}`)
	a.waitProbed(tok)
	var msgs []string
	for _, name := range []string{"nosuch", "gone"} {
		resp, page := a.do("POST", "/staff/c/"+tok+"/agent", url.Values{"agent": {name}})
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("staff re-run from %s: %d", name, resp.StatusCode)
		}
		msgs = append(msgs, alertOf(page))
	}
	if msgs[0] != msgs[1] || !strings.Contains(msgs[0], "no live agent of that name") {
		t.Errorf("the staff form's refusals differ: %q %q", msgs[0], msgs[1])
	}
}

// alertOf is the text of a page's error message.
func alertOf(page string) string {
	_, after, ok := strings.Cut(page, `role="alert">`)
	if !ok {
		return ""
	}
	msg, _, _ := strings.Cut(after, "</")
	return msg
}

// secrets are what an agent fetched inside a customer's network, as
// evidenceReport holds them: a body, a header, a certificate, the
// addresses a name resolved to.
var secrets = []string{"BODY-SECRET-payroll", "X-Intranet-Token", "hdr-secret-value", "CN=secret-cert.corp", "10.9.8.7"}

// evidenceReport is an agent's report full of evidence from inside.
func evidenceReport(url string) string {
	rep := probes.Report{URL: url, Verdict: probes.Verdict{Code: probes.AccessBlocked, Layer: probes.LayerHTTP, Summary: "the site refused access with 403 Forbidden"},
		DNS:    &probes.DNSResult{Name: "intranet.corp", Addresses: []string{"10.9.8.7"}},
		TLS:    &probes.TLSResult{Address: "10.9.8.7:443", Chain: []probes.Certificate{{Subject: "CN=secret-cert.corp"}}},
		HTTP:   &probes.HTTPResult{URL: url, Status: 403, Hops: []probes.Hop{{URL: url, RemoteAddr: "10.9.8.7:443", Status: 403, Header: http.Header{"X-Intranet-Token": {"hdr-secret-value"}}, Body: "BODY-SECRET-payroll"}}},
		Checks: []probes.Check{{Kind: probes.ProbeDNS, Name: "dns", Status: probes.StatusOK, Detail: "resolves to 10.9.8.7"}}}
	b, _ := json.Marshal(rep)
	return string(b)
}

// TestAgentEvidenceForStaffOnly: the holder of a case's link (the API
// without a key or a session, the visitor's page) sees an agent's
// verdict and summary but nothing it fetched; an API key, a staff session
// and the staff export see all of it.
func TestAgentEvidenceForStaffOnly(t *testing.T) {
	a := newApp(t, func(c *Config) { c.AgentPoll = 2 * time.Second })
	ctx := context.Background()
	key := a.apiKey("servicedesk")
	_, office, _ := a.db.CreateAgent(ctx, "office")
	_, lab, _ := a.db.CreateAgent(ctx, "lab")
	site := healthySite(t)
	token := a.apiCreate(key, `{"url": "`+site.URL+`", "agents": ["office", "lab"]}`)
	a.waitProbed(token)
	// office got an answer, full of evidence; lab did not connect, and
	// its failed check names the address it tried.
	noAnswer, _ := json.Marshal(probes.Report{URL: site.URL + "/", Verdict: probes.Verdict{Code: probes.TCPRefused, Summary: "nothing listens there"},
		Checks: []probes.Check{{Kind: probes.ProbeTCP, Name: "tcp", Status: probes.StatusFail, Detail: "connect to 10.9.8.7:443: connection refused"}}})
	for tok, report := range map[string]string{office: evidenceReport(site.URL + "/"), lab: string(noAnswer)} {
		resp, body := a.agentDo("/agent/v1/poll", tok, nil)
		var job agentJSON
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &job) != nil {
			t.Fatalf("poll: %d %s", resp.StatusCode, body)
		}
		if resp, body := a.agentDo(fmt.Sprintf("/agent/v1/jobs/%d/report", job.ID), tok, strings.NewReader(report)); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("report: %d %s", resp.StatusCode, body)
		}
	}

	_, anon := a.keyDo("GET", "/api/cases/"+token, "", "")
	_, page := a.do("GET", "/c/"+token, nil)
	for what, doc := range map[string]string{"the anonymous API": anon, "the visitor's page": page} {
		for _, s := range secrets {
			if strings.Contains(doc, s) {
				t.Errorf("%s shows %q", what, s)
			}
		}
		for _, summary := range []string{"the site refused access with 403 Forbidden", "nothing listens there"} {
			if !strings.Contains(doc, summary) {
				t.Errorf("%s lacks the agent's summary %q", what, summary)
			}
		}
	}
	var doc struct{ Vantages []apiVantage }
	json.Unmarshal([]byte(anon), &doc)
	// The agents reported in no set order: find the office's view.
	i := slices.IndexFunc(doc.Vantages, func(v apiVantage) bool { return v.From == "agent:office" })
	if i < 0 {
		t.Fatalf("no view of agent office: %+v", doc.Vantages)
	}
	if v := doc.Vantages[i]; !v.EvidenceWithheld || v.Report == nil || v.Report.Verdict.Code != probes.AccessBlocked || v.Addr != "127.0.0.1" {
		t.Errorf("the anonymous view: %+v", v)
	}

	_, byKey := a.keyDo("GET", "/api/cases/"+token, key, "")
	a.addStaff("ann", wizard.RoleAgent)
	a.signIn("ann", staffPassword)
	_, bySession := a.do("GET", "/api/cases/"+token, nil)
	_, export := a.do("GET", "/staff/c/"+token+"/export.json", nil)
	for what, doc := range map[string]string{"an API key": byKey, "a staff session": bySession, "the export": export} {
		for _, s := range secrets {
			if !strings.Contains(doc, s) {
				t.Errorf("%s does not show %q", what, s)
			}
		}
		if strings.Contains(doc, "evidence_withheld") {
			t.Errorf("%s says evidence is withheld", what)
		}
	}
	// The visitor's page is the same for everyone with the link.
	if _, page := a.do("GET", "/c/"+token, nil); strings.Contains(page, "10.9.8.7") {
		t.Error("the visitor's page shows staff the agent's evidence")
	}
}

// countingSite is a site on loopback that counts the requests it gets.
func countingSite(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "hello")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestAgentNotSentWhatTheServerRefused: gatecheck's server does not probe
// loopback, so a case of a loopback address gets blocked_target; the job
// of the agent named is never sent to it (its polls get nothing), ends
// "refused", and says so on the case; staff asking for an internal check
// get a job sent, marked internal, whose summary the case link does not
// show.
func TestAgentNotSentWhatTheServerRefused(t *testing.T) {
	a := newApp(t, func(c *Config) {
		c.AgentPoll = time.Second
		c.Prober = probes.New(probes.Config{Timeout: 3 * time.Second, Samples: 1, SampleSpacing: time.Millisecond})
	})
	ctx := context.Background()
	key := a.apiKey("servicedesk")
	_, office, _ := a.db.CreateAgent(ctx, "office")
	site, hits := countingSite(t)
	// A poll waiting when the case is made: the job is not sent before the
	// server's verdict, nor after.
	waiting := make(chan string, 1)
	go func() {
		resp, body := a.agentDo("/agent/v1/poll", office, nil)
		waiting <- fmt.Sprint(resp.StatusCode, " ", body)
	}()
	waitFor(t, "the poll waits", func() bool { a.srv.agentMu.Lock(); defer a.srv.agentMu.Unlock(); return len(a.srv.polls) > 0 })
	token := a.apiCreate(key, `{"url": "`+site.URL+`", "agents": ["office"]}`)
	if doc := a.waitProbed(token); !strings.Contains(fmt.Sprint(doc["probe"]), "blocked_target") {
		t.Fatalf("the server's verdict: %v", doc["probe"])
	}
	if got := <-waiting; got != "204 " {
		t.Fatalf("the waiting poll was sent %s", got)
	}
	for range 2 {
		if resp, body := a.agentDo("/agent/v1/poll", office, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("office was sent %d %s", resp.StatusCode, body)
		}
	}
	c, _ := a.db.Case(ctx, token)
	if jobs, _ := a.db.CaseAgentJobs(ctx, c.ID); len(jobs) != 1 || jobs[0].State != wizard.JobRefused {
		t.Errorf("jobs: %+v", jobs[0])
	}
	if views := a.apiVantages(token); len(views) != 2 || views[1].From != "agent:office" || views[1].State != "refused" {
		t.Errorf("views: %+v", views)
	}
	_, page := a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, `data-agent="office" data-state="refused"`) || !strings.Contains(page, "Not sent: gatecheck&#39;s server refused this address") {
		t.Errorf("the case page does not say the job was not sent: %s", excerpt(page, "data-agent"))
	}

	// Staff ask for an internal check.
	a.addStaff("ann", wizard.RoleAgent)
	a.signIn("ann", staffPassword)
	_, page = a.do("GET", "/staff/c/"+token, nil)
	if !strings.Contains(page, `name="internal" value="1"`) {
		t.Errorf("the staff page has no internal check: %s", excerpt(page, "rerun-agent"))
	}
	if resp, body := a.do("POST", "/staff/c/"+token+"/agent", url.Values{"agent": {"office"}, "internal": {"1"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("internal re-run: %d %.300s", resp.StatusCode, body)
	}
	resp, body := a.agentDo("/agent/v1/poll", office, nil)
	var job agentJSON
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &job) != nil || !job.Internal || job.URL != site.URL+"/" {
		t.Fatalf("the internal job: %d %s", resp.StatusCode, body)
	}
	rep, _ := json.Marshal(probes.Report{URL: job.URL, Verdict: probes.Verdict{Code: probes.TCPRefused, Summary: "10.1.2.3:443 refused the connection"}})
	if resp, body := a.agentDo(fmt.Sprintf("/agent/v1/jobs/%d/report", job.ID), office, strings.NewReader(string(rep))); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("report: %d %s", resp.StatusCode, body)
	}
	_, anon := a.keyDo("GET", "/api/cases/"+token, "", "")
	_, page = a.keyDo("GET", "/c/"+token, "", "")
	if strings.Contains(anon, "10.1.2.3") || strings.Contains(page, "10.1.2.3") || !strings.Contains(anon, "tcp_refused") {
		t.Errorf("the case link shows an internal check's summary: %s", anon)
	}
	if _, staff := a.do("GET", "/api/cases/"+token, nil); !strings.Contains(staff, "10.1.2.3") {
		t.Errorf("staff do not see the internal check's summary")
	}
	if _, staff := a.do("GET", "/staff/c/"+token, nil); !strings.Contains(staff, "an internal check") {
		t.Errorf("the staff page does not mark the internal check")
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the site got %d requests", n)
	}
}

// TestAgentPollCap: one agent's token holds at most maxAgentPolls
// long-polls; the next is a 429 with Retry-After at once; polls at once
// record the agent's asking once, not each.
func TestAgentPollCap(t *testing.T) {
	var counted *countingAgents
	a := newApp(t, func(c *Config) {
		c.AgentPoll = 2 * time.Second
		counted = &countingAgents{AgentStore: c.Store.(wizard.AgentStore)}
		c.Agents = counted
	})
	agent, office, _ := a.db.CreateAgent(context.Background(), "office")
	done := make(chan int, maxAgentPolls)
	for range maxAgentPolls {
		go func() {
			resp, _ := a.agentDo("/agent/v1/poll", office, nil)
			done <- resp.StatusCode
		}()
	}
	waitFor(t, "the polls wait", func() bool {
		a.srv.agentMu.Lock()
		defer a.srv.agentMu.Unlock()
		return a.srv.polls[agent.ID] == maxAgentPolls
	})
	start := time.Now()
	resp, body := a.agentDo("/agent/v1/poll", office, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, `"error"`) {
		t.Errorf("poll %d: %d %s", maxAgentPolls+1, resp.StatusCode, body)
	}
	if took := time.Since(start); took >= a.srv.cfg.AgentPoll {
		t.Errorf("the refusal waited %v, as a long-poll", took)
	}
	for range maxAgentPolls {
		if status := <-done; status != http.StatusNoContent {
			t.Errorf("a poll within the cap: %d", status)
		}
	}
	if n := counted.seen.Load(); n != 1 {
		t.Errorf("%d polls at once recorded the agent's asking %d times", maxAgentPolls, n)
	}
	// The polls ended: the agent may wait again.
	go func() {
		resp, _ := a.agentDo("/agent/v1/poll", office, nil)
		done <- resp.StatusCode
	}()
	if status := <-done; status != http.StatusNoContent {
		t.Errorf("a poll after the others ended: %d", status)
	}
}
