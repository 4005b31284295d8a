package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
	"github.com/gatecheck/gatecheck/wizard/sqlite/pgtest"
)

// The test binary's PostgreSQL server, started by the first test that
// asks for a database and stopped by TestMain.
var (
	pgOnce sync.Once
	pgSrv  *pgtest.Server
	pgErr  error
	pgN    int
	pgMu   sync.Mutex
)

func stopPostgres() {
	if pgSrv != nil {
		pgSrv.Stop()
	}
}

// postgresURL returns the URL of a new, empty PostgreSQL database; without
// PostgreSQL the test is skipped, or fails when GATECHECK_POSTGRES=require.
func postgresURL(t *testing.T) string {
	t.Helper()
	pgOnce.Do(func() { pgSrv, pgErr = pgtest.Start(context.Background()) })
	if pgErr != nil {
		if pgtest.Required() {
			t.Fatalf("PostgreSQL is required (GATECHECK_POSTGRES=require): %v", pgErr)
		}
		t.Skipf("no PostgreSQL: %v", pgErr)
	}
	pgMu.Lock()
	pgN++
	name := fmt.Sprintf("cmd%d", pgN)
	pgMu.Unlock()
	u, err := pgSrv.CreateDatabase(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestCopySQLiteToPostgres moves an installation made with the real
// commands and the store (accounts, keys, agents, cases with steps,
// notes, probe runs, views, jobs, webhooks, events, deliveries, mails) from
// a SQLite file to PostgreSQL with gatecheck copy, then finds all of it
// there: through the store and through the subcommands with --db set to
// the URL.
func TestCopySQLiteToPostgres(t *testing.T) {
	ctx := context.Background()
	pgURL := postgresURL(t)
	path := filepath.Join(t.TempDir(), "gatecheck.db")
	const pw = "correct horse battery\n"
	if code, _, errs := runWith(t, pw, "user", "add", "--db", path, "--admin", "ann"); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	_, key, errs := runCmd(t, "apikey", "add", "--db", path, "tickets")
	key = strings.TrimSpace(key)
	if !strings.HasPrefix(key, wizard.APIKeyPrefix) {
		t.Fatalf("apikey add: %q %s", key, errs)
	}
	_, agentToken, _ := runCmd(t, "agent", "add", "--db", path, "office")
	agentToken = strings.TrimSpace(agentToken)

	src, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for i := range 3 {
		c := &wizard.Case{URL: fmt.Sprintf("https://portal%d.example-corp.com/", i), Host: fmt.Sprintf("portal%d.example-corp.com", i),
			Ticket: fmt.Sprintf("INC-%d", i), TreeVersion: "v1", NoScheme: i == 1}
		if err := src.CreateCase(ctx, c, []byte("tree")); err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, c.Token)
		src.AppendSteps(ctx, c.ID, []wizard.StepRecord{{Index: 0, Node: "role-gateway", Choice: "user", At: time.Now()}})
		src.AddNote(ctx, c.ID, "ann", fmt.Sprintf("customer number %d called", i))
		run, _ := src.QueueProbe(ctx, c.ID, "")
		src.FinishProbe(ctx, run.ID, &probes.Report{URL: c.URL, Verdict: probes.Verdict{Code: probes.Gateway502}})
		src.AddVantage(ctx, c.ID, &wizard.Vantage{RunID: run.ID, From: wizard.VantageBrowser, Reachable: new(false)})
		a, _ := src.AgentByToken(ctx, agentToken)
		src.QueueAgentJobs(ctx, c.ID, run.ID, []int64{a.ID}, "ann", true, time.Now().Add(time.Hour))
		if i == 0 {
			src.AddWebhook(ctx, &wizard.Webhook{URL: "https://hooks.example.com/x", CreatedBy: "ann"})
			src.SetStatusMail(ctx, c.ID, wizard.StatusEscalated, "ann", &wizard.Mail{To: "team@example.com", Subject: "s", Body: "b"})
		}
	}
	src.Close()

	code, out, errs := runCmd(t, "copy", "--from", path, "--to", pgURL)
	if code != 0 {
		t.Fatalf("copy: %d %s %s", code, out, errs)
	}
	for _, want := range []string{"(sqlite) to postgres://", "(postgres):", "cases  3", "steps  3", "notes  3", "probe_runs  3",
		"users  1", "api_keys  1", "agents  1", "agent_jobs  3", "vantages  3", "webhooks  1", "mails  1", "status_changes  1"} {
		if !strings.Contains(strings.Join(strings.Fields(out), "  "), strings.Join(strings.Fields(want), "  ")) {
			t.Errorf("copy's report lacks %q:\n%s", want, out)
		}
	}

	dst, err := sqlite.Open(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if dst.Engine() != "postgres" {
		t.Fatalf("engine %s", dst.Engine())
	}
	for i, tok := range tokens {
		c, err := dst.Case(ctx, tok)
		if err != nil || c.Ticket != fmt.Sprintf("INC-%d", i) || c.Verdict != string(probes.Gateway502) || c.NoScheme != (i == 1) {
			t.Fatalf("case %d: %+v %v", i, c, err)
		}
		steps, _ := dst.Steps(ctx, c.ID)
		notes, _ := dst.Notes(ctx, c.ID)
		runs, _ := dst.ProbeRuns(ctx, c.ID)
		views, _ := dst.Vantages(ctx, c.ID)
		jobs, _ := dst.CaseAgentJobs(ctx, c.ID)
		if len(steps) != 1 || len(notes) != 1 || len(runs) != 1 || runs[0].Report == nil || len(views) != 1 || *views[0].Reachable ||
			len(jobs) != 1 || !jobs[0].Internal {
			t.Errorf("case %d's history: %d steps, %d notes, %+v runs, %+v views, %+v jobs", i, len(steps), len(notes), runs, views, jobs)
		}
	}
	// Search finds copied cases by their notes and their host's words.
	if found, n, err := dst.FindCases(ctx, wizard.CaseFilter{Query: "example customer"}); err != nil || n != 3 || len(found) != 3 {
		t.Errorf("search: %d %v", n, err)
	}
	if k, err := dst.APIKeyByToken(ctx, key); err != nil || k.Name != "tickets" {
		t.Errorf("API key: %+v %v", k, err)
	}
	if a, err := dst.AgentByToken(ctx, agentToken); err != nil || a.Name != "office" {
		t.Errorf("agent: %+v %v", a, err)
	}
	if ds, _ := dst.Deliveries(ctx, 10); len(ds) == 0 || ds[0].Webhook.URL != "https://hooks.example.com/x" {
		t.Errorf("deliveries: %+v", ds)
	}
	c0, _ := dst.Case(ctx, tokens[0])
	if ms, _ := dst.CaseMails(ctx, c0.ID); len(ms) != 1 || ms[0].To != "team@example.com" {
		t.Errorf("mails: %+v", ms)
	}
	// New rows get new ids after the copied ones.
	c := &wizard.Case{URL: "https://new.example.com/", Host: "new.example.com", TreeVersion: "v1"}
	if err := dst.CreateCase(ctx, c, nil); err != nil || c.ID != 4 {
		t.Errorf("a new case after the copy: id %d, %v", c.ID, err)
	}

	// The subcommands work on the URL.
	if code, out, errs := runCmd(t, "user", "list", "--db", pgURL); code != 0 || !strings.Contains(out, "ann") || !strings.Contains(out, "admin") {
		t.Errorf("user list on PostgreSQL: %d %q %q", code, out, errs)
	}
	if code, out, errs := runWith(t, pw, "user", "add", "--db", pgURL, "ANN"); code != exitProblem || !strings.Contains(errs, "already a user") {
		t.Errorf("user add ANN on PostgreSQL (names ignore case): %d %q %q", code, out, errs)
	}
	if code, out, _ := runCmd(t, "apikey", "list", "--db", pgURL); code != 0 || !strings.Contains(out, "tickets") {
		t.Errorf("apikey list on PostgreSQL: %d %q", code, out)
	}
	t.Setenv("GATECHECK_DB", pgURL)
	if code, out, _ := runCmd(t, "agent", "list"); code != 0 || !strings.Contains(out, "office") {
		t.Errorf("agent list with GATECHECK_DB set to the URL: %d %q", code, out)
	}
	if code, _, errs := runCmd(t, "backup", filepath.Join(t.TempDir(), "b.db")); code != exitUsage || !strings.Contains(errs, "pg_dump") {
		t.Errorf("backup on PostgreSQL: %d %q", code, errs)
	}
	// A second copy into the same database is refused: it is not empty.
	if code, _, errs := runCmd(t, "copy", "--from", path, "--to", pgURL); code != exitProblem || !strings.Contains(errs, "not empty") {
		t.Errorf("copy into a database in use: %d %q", code, errs)
	}
	// And back: PostgreSQL to a new SQLite file, booleans and all.
	back := filepath.Join(t.TempDir(), "back.db")
	if code, out, errs := runCmd(t, "copy", "--from", pgURL, "--to", back); code != 0 || !strings.Contains(strings.Join(strings.Fields(out), " "), "cases 4 steps 3") {
		t.Fatalf("copy back: %d %s %s", code, out, errs)
	}
	b, err := sqlite.Open(ctx, back)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if c, err := b.Case(ctx, tokens[1]); err != nil || !c.NoScheme {
		t.Errorf("copied back: %+v %v", c, err)
	}
}

// TestSecondServeRefused starts gatecheck serve on a SQLite file, then a
// second one, a separate process, on the same file: it refuses to start,
// saying why, and the first serves on. Once the first has stopped, a new
// one starts.
func TestSecondServeRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatecheck.db")
	first := startServer(t, path)
	// A second server that starts serves until the deadline kills it.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "serve", "--addr", "127.0.0.1:0", "--db", path)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != exitProblem {
		t.Fatalf("the second serve: exit %d, %v\n%s", code, err, out)
	}
	for _, want := range []string{"in use by another gatecheck", fmt.Sprintf("process %d", first.cmd.Process.Pid), "PostgreSQL"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the second serve's message lacks %q:\n%s", want, out)
		}
	}
	if resp, err := http.Get(first.base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the first server: %v", err)
	}
	// So does gatecheck copy, which would miss what the server writes.
	if code, _, errs := runCmd(t, "copy", "--from", path, "--to", filepath.Join(t.TempDir(), "x.db")); code != exitProblem || !strings.Contains(errs, "in use") {
		t.Errorf("copy from a served file: %d %q", code, errs)
	}
	first.cmd.Process.Signal(os.Interrupt)
	first.wait(30 * time.Second)
	startServer(t, path)
}

// TestServeOnPostgres runs the real server on PostgreSQL: a visitor
// reports a site through the web form and answers a step, a member of
// staff signs in and finds the case by searching.
func TestServeOnPostgres(t *testing.T) {
	pgURL := postgresURL(t)
	gw := nginx502(t)
	if code, _, errs := runWith(t, "correct horse battery\n", "user", "add", "--db", pgURL, "ann"); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	srv := startServer(t, pgURL)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var cookie *http.Cookie
	do := func(method, path string, form url.Values) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, srv.base+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", srv.base)
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, _ := do("POST", "/cases", url.Values{"url": {gw.URL}, "ticket": {"INC-2026"}})
	token := strings.TrimPrefix(resp.Header.Get("Location"), "/c/")
	if resp.StatusCode != http.StatusSeeOther || token == "" {
		t.Fatalf("create: %d\n%s", resp.StatusCode, srv.log())
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := do("GET", "/api/cases/"+token, nil)
		if strings.Contains(body, `"state": "done"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("probes did not finish: %s\n%s", body, srv.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, body := do("POST", "/c/"+token+"/answer", url.Values{"node": {"role-gateway"}, "choice": {"user"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("answer: %d %s", resp.StatusCode, body)
	}
	resp, _ = do("POST", "/staff/login", url.Values{"name": {"ANN"}, "password": {"correct horse battery"}})
	for _, c := range resp.Cookies() {
		if c.Name == "gatecheck_session" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("no session cookie: %d", resp.StatusCode)
	}
	host := strings.TrimPrefix(gw.URL, "http://")
	for _, q := range []string{"INC-20", "inc 2026", strings.Split(host, ":")[0]} {
		_, page := do("GET", "/staff?q="+url.QueryEscape(q), nil)
		if !strings.Contains(page, "/staff/c/"+token) {
			t.Errorf("search %q does not find the case", q)
		}
	}
	if _, page := do("GET", "/staff?q=nothing-like-it", nil); strings.Contains(page, "/staff/c/"+token) {
		t.Error("a search for another word finds the case")
	}
	_, page := do("GET", "/staff/c/"+token, nil)
	for _, want := range []string{"Step 1, Who are you in this?: I use the site, or support its users", "Probe evidence", "INC-2026"} {
		if !strings.Contains(page, want) {
			t.Errorf("staff page lacks %q", want)
		}
	}
	srv.cmd.Process.Signal(os.Interrupt)
	if code := srv.wait(30 * time.Second); code != 0 {
		t.Errorf("serve exited %d\n%s", code, srv.log())
	}
}

// TestDBNameHidesPassword: what gatecheck prints of a database URL never
// holds its password.
func TestDBNameHidesPassword(t *testing.T) {
	for in, want := range map[string]string{
		"gatecheck.db": "gatecheck.db",
		"postgres://gc:s3cret@db.internal:5432/gatecheck?sslmode=require": "postgres://gc:xxxxx@db.internal:5432/gatecheck?sslmode=require",
		"postgresql://gc@db/gatecheck":                                    "postgresql://gc@db/gatecheck",
	} {
		if got := dbName(in); got != want || strings.Contains(got, "s3cret") {
			t.Errorf("dbName(%q) = %q, want %q", in, got, want)
		}
	}
}
