package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

type testApp struct {
	t      *testing.T
	db     *sqlite.DB
	srv    *Server
	ts     *httptest.Server
	client *http.Client
	cookie *http.Cookie
}

func newApp(t *testing.T, tweak ...func(*Config)) *testApp {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "gatecheck.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return newAppOn(t, db, tweak...)
}

// newAppOn starts a gatecheck server on db, with the tests' settings
// (loopback allowed, no per-host cap, generous rate limits) as tweak
// leaves them.
func newAppOn(t *testing.T, db *sqlite.DB, tweak ...func(*Config)) *testApp {
	t.Helper()
	pc := probes.Config{Timeout: 3 * time.Second, Samples: 1, SampleSpacing: time.Millisecond,
		AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	cfg := Config{
		Store: db, Changes: db, Webhooks: db, Prober: probes.New(pc), Tree: wizard.Default(), TreeSource: wizard.DefaultSource(),
		Settings: wizard.Settings{Org: "Acme", Team: "CloudOps"}, ProbesPerMinute: 600, ProbeBurst: 100,
		// The test sites are on loopback, which a visitor's browser is
		// not asked to reach unless allowed (TestBrowserCheckSkipsInternal).
		BrowserAllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		// Every test site is on 127.0.0.1: the per-host cap has tests of
		// its own, and would hold the others up.
		HostProbesPerMinute: -1,
		Logger:              discardLog(),
	}
	if db.Engine() == "postgres" {
		cfg.Tokens = db // as gatecheck serve wires it
	}
	for _, f := range tweak {
		f(&cfg)
	}
	a := &testApp{t: t, db: db}
	a.srv = New(cfg)
	if err := a.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.ts = httptest.NewServer(a.srv)
	t.Cleanup(func() {
		a.ts.Close()
		a.srv.Close(context.Background())
	})
	a.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Jar: newReporterJar()}
	return a
}

// reporterJar keeps only the reporter cookies a browser would (the case
// it opened is its own); the staff session is handled by hand.
type reporterJar struct{ jar http.CookieJar }

func newReporterJar() reporterJar {
	jar, _ := cookiejar.New(nil)
	return reporterJar{jar}
}

func (j reporterJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	var keep []*http.Cookie
	for _, c := range cookies {
		if c.Name == reporterCookie {
			keep = append(keep, c)
		}
	}
	j.jar.SetCookies(u, keep)
}

func (j reporterJar) Cookies(u *url.URL) []*http.Cookie { return j.jar.Cookies(u) }

// do sends a request as a browser on our own pages would.
func (a *testApp) do(method, path string, form url.Values, hdr ...string) (*http.Response, string) {
	a.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, a.ts.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method == http.MethodPost {
		req.Header.Set("Origin", a.ts.URL)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if a.cookie != nil {
		req.AddCookie(a.cookie)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// waitProbed polls the API until the case's first probe run is done.
func (a *testApp) waitProbed(token string) map[string]any {
	a.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, body := a.do("GET", "/api/cases/"+token, nil)
		var doc map[string]any
		json.Unmarshal([]byte(body), &doc)
		if p, _ := doc["probe"].(map[string]any); p != nil && p["state"] == "done" {
			return doc
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.t.Fatalf("the probes of %s did not finish", token)
	return nil
}

func (a *testApp) createCase(target, ticket string) string {
	a.t.Helper()
	resp, body := a.do("POST", "/cases", url.Values{"url": {target}, "ticket": {ticket}})
	if resp.StatusCode != http.StatusSeeOther {
		a.t.Fatalf("POST /cases: %d %s", resp.StatusCode, body)
	}
	return strings.TrimPrefix(resp.Header.Get("Location"), "/c/")
}

func (a *testApp) answer(token, node, choice string) string {
	a.t.Helper()
	resp, body := a.do("POST", "/c/"+token+"/answer", url.Values{"node": {node}, "choice": {choice}})
	if resp.StatusCode != http.StatusSeeOther {
		a.t.Fatalf("answer %s=%s: %d %s", node, choice, resp.StatusCode, body)
	}
	_, page := a.do("GET", "/c/"+token, nil)
	return page
}

// brokenGateway is nginx in front of an application that is down; its
// error page carries markup that must be shown as text.
func brokenGateway(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx/1.24.0")
		w.Header().Set("X-Evil", "<script>alert(1)</script>")
		w.WriteHeader(502)
		io.WriteString(w, "<html><body><center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center><script>alert('x')</script></body></html>")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestWizardJourney(t *testing.T) {
	a := newApp(t)
	gw := brokenGateway(t)
	token := a.createCase(gw.URL, "INC-7")
	if len(token) < 26 {
		t.Fatalf("token %q is too short to be unguessable", token)
	}
	doc := a.waitProbed(token)
	if doc["ticket"] != "INC-7" || doc["tree_version"] != wizard.Default().ID() {
		t.Errorf("case = %v", doc)
	}
	_, page := a.do("GET", "/c/"+token, nil)
	for _, want := range []string{"Who are you in this?", "What gatecheck found", "The site&#39;s gateway (nginx) could not get an answer", "Not right?", "/c/" + token} {
		if !strings.Contains(page, want) {
			t.Errorf("step page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert") {
		t.Error("the remote page's script reached our page unescaped")
	}
	page = a.answer(token, "role-gateway", "owner")
	if !strings.Contains(page, "Back up before changing anything") {
		t.Fatalf("after owner: %s", page)
	}
	// Back, then disagree with the automatic check.
	if resp, _ := a.do("POST", "/c/"+token+"/back", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("back: %d", resp.StatusCode)
	}
	_, page = a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, "Who are you in this?") {
		t.Fatal("back did not return to the question")
	}
	_, page = a.do("GET", "/c/"+token+"/at/probe", nil)
	if !strings.Contains(page, "The site is very slow, or says it is busy") || !strings.Contains(page, "Keep my answers") {
		t.Fatalf("revisit page: %s", page)
	}
	page = a.answer(token, "probe", "overload")
	if !strings.Contains(page, "you disagreed") {
		t.Errorf("the disagreement is not shown")
	}
	page = a.answer(token, "role-overload", "user")
	// gatecheck checks a fix it can see: the gateway still fails.
	a.answer(token, "fix-wait", "fixed")
	if page = a.waitChecked(token); !strings.Contains(page, "still fails") {
		t.Fatalf("after this fixed it: %s", page)
	}
	page = a.answer(token, "fix-wait", worksForMe)
	if !strings.Contains(page, "This case is solved.") || !strings.Contains(page, "not confirmed by a check") {
		t.Fatalf("end page: %s", page)
	}
	_, body := a.do("GET", "/api/cases/"+token, nil)
	var got struct {
		Status string
		Steps  []struct{ Node, Answer string }
	}
	json.Unmarshal([]byte(body), &got)
	if got.Status != "resolved" || len(got.Steps) != 3 || got.Steps[0].Node != "probe" || got.Steps[0].Answer != "overload" {
		t.Errorf("API after the walk: %s", body)
	}
	// A stale answer (for a node no longer current) is refused politely.
	resp, page := a.do("POST", "/c/"+token+"/answer", url.Values{"node": {"role-gateway"}, "choice": {"owner"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(page, "no longer fits") {
		t.Errorf("stale answer: %d", resp.StatusCode)
	}
}

func TestBadInputKeepsWhatWasTyped(t *testing.T) {
	a := newApp(t)
	resp, page := a.do("POST", "/cases", url.Values{"url": {"ftp://files.example/x"}, "ticket": {"INC-9"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "only checks http:// and https://") ||
		!strings.Contains(page, `value="ftp://files.example/x"`) || !strings.Contains(page, `value="INC-9"`) {
		t.Errorf("%d %s", resp.StatusCode, page)
	}
	resp, page = a.do("POST", "/cases", url.Values{"url": {"http://127.0.0.1/"}, "ticket": {strings.Repeat("x", 101)}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "up to 100") {
		t.Errorf("long ticket: %d", resp.StatusCode)
	}
}

func TestStartLinkPrefills(t *testing.T) {
	a := newApp(t)
	_, page := a.do("GET", "/start?url="+url.QueryEscape("https://shop.example.com/cart")+"&ticket=INC-5", nil)
	if !strings.Contains(page, `value="https://shop.example.com/cart"`) || !strings.Contains(page, `value="INC-5"`) {
		t.Errorf("start page: %s", page)
	}
	if _, n, _ := a.db.FindCases(context.Background(), wizard.CaseFilter{}); n != 0 {
		t.Error("a GET created a case")
	}
}

func TestSecurityHeadersAndCSRF(t *testing.T) {
	a := newApp(t)
	resp, _ := a.do("GET", "/", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP = %q", csp)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers = %v", resp.Header)
	}
	resp, _ = a.do("POST", "/cases", url.Values{"url": {"http://127.0.0.1/"}}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d", resp.StatusCode)
	}
}

func TestLimits(t *testing.T) {
	a := newApp(t, func(c *Config) { c.ProbesPerMinute, c.ProbeBurst = 1, 2 })
	gw := brokenGateway(t)
	a.createCase(gw.URL, "")
	a.createCase(gw.URL, "")
	resp, page := a.do("POST", "/cases", url.Values{"url": {gw.URL}})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(page, "Please wait") {
		t.Errorf("third start: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	big := url.Values{"url": {strings.Repeat("a", 70<<10)}}
	if resp, _ := a.do("POST", "/cases", big); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", resp.StatusCode)
	}
}

func TestQueueIsBounded(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	a := newApp(t, func(c *Config) { c.ProbeWorkers, c.ProbeQueue = 1, 1 })
	first := a.createCase(slow.URL+"/first", "")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, running := a.srv.runner.Stats(); running == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	second := a.createCase(slow.URL+"/second", "")
	_, page := a.do("GET", "/c/"+second, nil)
	if !strings.Contains(page, "you are next") {
		t.Errorf("queued case page does not show its position: %s", page)
	}
	_, page = a.do("GET", "/c/"+first, nil)
	if !strings.Contains(page, "Checking") {
		t.Errorf("running case page: %s", page)
	}
	resp, _ := a.do("POST", "/cases", url.Values{"url": {slow.URL + "/third"}})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third with a full queue: %d", resp.StatusCode)
	}
	// The queue holds distinct targets: more reports of a site already
	// running or waiting join its check instead of being turned away.
	for _, again := range []string{slow.URL + "/first", slow.URL + "/second"} {
		token := a.createCase(again, "")
		_, page := a.do("GET", "/c/"+token, nil)
		if !strings.Contains(page, "Checking") {
			t.Errorf("another report of %s does not follow its check: %s", again, excerpt(page, "data-queue"))
		}
	}
	if waiting, running := a.srv.runner.Stats(); waiting != 1 || running != 1 {
		t.Errorf("after joining: %d waiting, %d running; want 1 and 1", waiting, running)
	}
}

func TestAPI(t *testing.T) {
	a := newApp(t)
	gw := brokenGateway(t)
	post := func(body, ct string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest("POST", a.ts.URL+"/api/cases", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		json.NewDecoder(resp.Body).Decode(&doc)
		return resp, doc
	}
	resp, doc := post(fmt.Sprintf(`{"url": %q, "ticket": "INC-11"}`, gw.URL), "application/json")
	token, _ := doc["token"].(string)
	if resp.StatusCode != http.StatusCreated || token == "" || doc["link"] != a.ts.URL+"/c/"+token || resp.Header.Get("Location") != "/api/cases/"+token {
		t.Fatalf("create: %d %v", resp.StatusCode, doc)
	}
	got := a.waitProbed(token)
	probe := got["probe"].(map[string]any)
	report := probe["report"].(map[string]any)
	if report["verdict"].(map[string]any)["code"] != "gateway_502" || got["status"] != "open" || got["url"] != gw.URL+"/" {
		t.Errorf("case: %v", got)
	}
	for _, tt := range []struct {
		body, ct string
		status   int
	}{
		{`{"url": "ftp://x"}`, "application/json", 422},
		{`{"url": `, "application/json", 400},
		{`url=x`, "application/x-www-form-urlencoded", 415},
	} {
		resp, doc := post(tt.body, tt.ct)
		if resp.StatusCode != tt.status || doc["error"] == "" || doc["error"] == nil {
			t.Errorf("%s: %d %v", tt.body, resp.StatusCode, doc)
		}
	}
	resp, body := a.do("GET", "/api/cases/nonexistenttoken", nil)
	if resp.StatusCode != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("unknown token: %d %s", resp.StatusCode, body)
	}
}

func TestStaff(t *testing.T) {
	a := newApp(t)
	hash, _ := HashPassword("correct horse battery")
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAgent); err != nil {
		t.Fatal(err)
	}
	gw := brokenGateway(t)
	token := a.createCase(gw.URL, "INC-21")
	a.waitProbed(token)
	a.answer(token, "role-gateway", "user")

	resp, _ := a.do("GET", "/staff", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/staff/login") {
		t.Fatalf("unauthenticated: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := a.do("POST", "/staff/login", url.Values{"name": {"ann"}, "password": {"wrong password"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "do not match") {
		t.Errorf("wrong password: %d", resp.StatusCode)
	}
	resp, _ = a.do("POST", "/staff/login", url.Values{"name": {"ann"}, "password": {"correct horse battery"}, "next": {"/staff?status=open"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/staff?status=open" {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			a.cookie = c
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || !c.Secure {
				t.Errorf("cookie = %+v", c)
			}
		}
	}
	_, page = a.do("GET", "/staff?status=open&q=INC-21", nil)
	if !strings.Contains(page, gw.URL) || !strings.Contains(page, "1 cases") {
		t.Errorf("list: %s", page)
	}
	_, page = a.do("GET", "/staff?status=resolved", nil)
	if strings.Contains(page, gw.URL) {
		t.Error("the status filter let an open case through")
	}
	_, page = a.do("GET", "/staff?verdict=bogus&from=yesterday", nil)
	if !strings.Contains(page, "Some filters were ignored") {
		t.Error("bad filters were not explained")
	}
	_, page = a.do("GET", "/staff/c/"+token, nil)
	for _, want := range []string{"Timeline", "Case opened", "Who are you in this?", "Probe evidence", "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;", "nginx", gw.URL} {
		if !strings.Contains(page, want) {
			t.Errorf("staff case page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert") {
		t.Error("the captured error page is not escaped")
	}
	if resp, _ := a.do("POST", "/staff/c/"+token+"/notes", url.Values{"body": {"Rang the customer <b>back</b>"}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("note: %d", resp.StatusCode)
	}
	if resp, _ := a.do("POST", "/staff/c/"+token+"/status", url.Values{"status": {"escalated"}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("status: %d", resp.StatusCode)
	}
	if resp, _ := a.do("POST", "/staff/c/"+token+"/status", url.Values{"status": {"bogus"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("bad status: %d", resp.StatusCode)
	}
	if resp, _ := a.do("POST", "/staff/c/"+token+"/probe", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("re-run: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, page = a.do("GET", "/staff/c/"+token, nil)
		if strings.Contains(page, "Changed since the previous probe run") || time.Now().After(deadline) {
			break
		}
		time.Sleep(30 * time.Millisecond)
	}
	for _, want := range []string{"Changed since the previous probe run", "Rang the customer &lt;b&gt;back&lt;/b&gt;", "Status open → escalated", "ann"} {
		if !strings.Contains(page, want) {
			t.Errorf("after staff actions, page lacks %q", want)
		}
	}
	_, page = a.do("GET", "/staff?q=customer", nil)
	if !strings.Contains(page, gw.URL) {
		t.Error("full-text search does not find the note")
	}
	resp, body := a.do("GET", "/staff/c/"+token+"/export.json", nil)
	var exp map[string]any
	if err := json.Unmarshal([]byte(body), &exp); err != nil || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("export: %v %s", err, body)
	}
	if runs := exp["probe_runs"].([]any); len(runs) != 2 || len(exp["notes"].([]any)) != 1 || len(exp["step_log"].([]any)) != 1 {
		t.Errorf("export = %s", body)
	}
	a.do("POST", "/staff/logout", nil)
	if resp, _ := a.do("GET", "/staff", nil); resp.StatusCode != http.StatusSeeOther {
		t.Error("the session survived sign-out")
	}
}

func TestOldTreeVersionStaysReadable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "g.db")
	open := func(tree *wizard.Tree, src []byte) (*Server, *httptest.Server, *sqlite.DB) {
		db, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		s := New(Config{Store: db, Prober: probes.New(probes.Config{Timeout: 2 * time.Second, AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}),
			Tree: tree, TreeSource: src, Logger: discardLog(), ProbesPerMinute: 600})
		s.Start(context.Background())
		return s, httptest.NewServer(s), db
	}
	s1, ts1, db1 := open(wizard.Default(), wizard.DefaultSource())
	a := &testApp{t: t, srv: s1, ts: ts1, db: db1, client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	token := a.createCase(brokenGateway(t).URL, "")
	a.waitProbed(token)
	a.answer(token, "role-gateway", "owner")
	ts1.Close()
	s1.Close(context.Background())
	db1.Close()

	// A new tree with different wording; the old case keeps its own.
	src := []byte(strings.Replace(string(wizard.DefaultSource()), "title: Back up before changing anything", "title: Make a backup first", 1))
	newTree, err := wizard.Parse("new.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	s2, ts2, db2 := open(newTree, src)
	defer func() { ts2.Close(); s2.Close(context.Background()); db2.Close() }()
	a.ts, a.srv, a.db = ts2, s2, db2
	_, page := a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, "Back up before changing anything") {
		t.Errorf("the old case does not show its own tree: %s", page)
	}
	newCase := a.createCase(brokenGateway(t).URL, "")
	a.waitProbed(newCase)
	page = a.answer(newCase, "role-gateway", "owner")
	if !strings.Contains(page, "Make a backup first") {
		t.Error("a new case does not walk the new tree")
	}
}

func TestInterruptedProbesResume(t *testing.T) {
	a := newApp(t)
	gw := brokenGateway(t)
	ctx := context.Background()
	c := &wizard.Case{URL: gw.URL + "/", Host: "127.0.0.1", TreeVersion: wizard.Default().ID()}
	a.db.CreateCase(ctx, c, nil)
	a.db.QueueProbe(ctx, c.ID, "") // left queued by a process that stopped
	if err := a.srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	a.waitProbed(c.Token)
}

func TestEventsStream(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(502)
	}))
	defer slow.Close()
	a := newApp(t)
	token := a.createCase(slow.URL, "")
	resp, err := http.Get(a.ts.URL + "/c/" + token + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	var seen atomic.Int32
	done := make(chan string)
	go func() {
		b := make([]byte, 0, 1<<16)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b = append(b, buf[:n]...)
			if strings.Contains(string(b), "event: check") {
				seen.Store(1)
			}
			if err != nil || strings.Contains(string(b), "event: done") {
				done <- string(b)
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	close(release)
	select {
	case body := <-done:
		if !strings.Contains(body, "event: check") || !strings.Contains(body, `"name":"http"`) || !strings.Contains(body, "event: done") {
			t.Errorf("stream = %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end")
	}
}

func TestClientIPBehindTrustedProxy(t *testing.T) {
	s := &Server{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	for _, tt := range []struct{ remote, xff, want string }{
		{"203.0.113.5:1234", "198.51.100.1", "203.0.113.5"},                  // untrusted peer: header ignored
		{"10.1.1.1:1234", "198.51.100.1", "198.51.100.1"},                    // trusted peer
		{"10.1.1.1:1234", "6.6.6.6, 198.51.100.1, 10.2.2.2", "198.51.100.1"}, // right-most untrusted
		// A hop that is not an address: an unknown client, never the
		// proxy itself (issue 15, finding 9).
		{"10.1.1.1:1234", "garbage", "invalid IP"},
		{"10.1.1.1:1234", "unknown", "invalid IP"},
		{"10.1.1.1:1234", "198.51.100.1, unknown", "invalid IP"},
		// Some proxies write a port; the address is still the client's.
		{"10.1.1.1:1234", "203.0.113.9:4444", "203.0.113.9"},
		{"10.1.1.1:1234", "[2001:db8::7]:4444", "2001:db8::7"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		r.Header.Set("X-Forwarded-For", tt.xff)
		if got := s.clientIP(r).String(); got != tt.want {
			t.Errorf("%s via %q = %s, want %s", tt.remote, tt.xff, got, tt.want)
		}
	}
}

func TestHealthzAndErrors(t *testing.T) {
	a := newApp(t)
	if resp, body := a.do("GET", "/healthz", nil); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	if resp, page := a.do("GET", "/no/such/page", nil); resp.StatusCode != 404 || !strings.Contains(page, "nothing at this address") {
		t.Errorf("404: %d", resp.StatusCode)
	}
	if resp, _ := a.do("DELETE", "/cases", nil); resp.StatusCode != 405 {
		t.Errorf("405: %d", resp.StatusCode)
	}
	if resp, page := a.do("GET", "/c/bogus", nil); resp.StatusCode != 404 || strings.Contains(page, "goroutine") {
		t.Errorf("bogus token: %d", resp.StatusCode)
	}
	resp, _ := a.do("GET", "/static/app.css", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("static: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestPanicsBecomePlainErrorPages(t *testing.T) {
	a := newApp(t)
	h := a.srv.recoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom at line 42") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/c/x", nil))
	body := rec.Body.String()
	if rec.Code != 500 || strings.Contains(body, "boom") || strings.Contains(body, "goroutine") || !strings.Contains(body, "Something went wrong") {
		t.Errorf("%d %s", rec.Code, body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/cases/x", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Errorf("API panic: %d %s", rec.Code, rec.Body.String())
	}
}

// A job refused by a full (or closing) queue after the early check is a
// 429 with Retry-After, not a failure.
func TestQueueRefusalIsA429(t *testing.T) {
	a := newApp(t)
	for _, path := range []string{"/cases", "/api/cases"} {
		rec := httptest.NewRecorder()
		a.srv.Error(rec, httptest.NewRequest("POST", path, nil), errQueueFull)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: %d %v", path, rec.Code, rec.Header())
		}
	}
	rec := httptest.NewRecorder()
	a.srv.Error(rec, httptest.NewRequest("GET", "/", nil), wizard.Errorf("some_new_code", "x"))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("unknown code: %d", rec.Code)
	}
}

// TestLimitsCountCharacters: limits are in characters, as the forms'
// maxlength are, and a refused note comes back to edit.
func TestLimitsCountCharacters(t *testing.T) {
	a := newApp(t)
	hash, _ := HashPassword("correct horse battery")
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAgent); err != nil {
		t.Fatal(err)
	}
	gw := brokenGateway(t)
	ticket := strings.Repeat("é", 100) // 200 bytes
	token := a.createCase(gw.URL, ticket)
	if _, page := a.do("GET", "/api/cases/"+token, nil); !strings.Contains(page, ticket) {
		t.Errorf("a 100-character ticket was not kept whole")
	}
	resp, page := a.do("POST", "/cases", url.Values{"url": {gw.URL}, "ticket": {ticket + "é"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "is 101 characters long") || !strings.Contains(page, ticket+"é") {
		t.Errorf("a 101-character ticket: %d, message or typed text missing", resp.StatusCode)
	}
	a.signIn("ann", "correct horse battery")
	long := strings.Repeat("ü", 10001)
	resp, page = a.do("POST", "/staff/c/"+token+"/notes", url.Values{"body": {long}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "10001 characters long") || !strings.Contains(page, ">"+long+"</textarea>") {
		t.Errorf("a refused note: %d, message or draft missing", resp.StatusCode)
	}
	if resp, _ := a.do("POST", "/staff/c/"+token+"/notes", url.Values{"body": {long[2:]}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a 10000-character note: %d", resp.StatusCode)
	}
}

// signIn signs a member of staff in and keeps the session cookie.
func (a *testApp) signIn(name, password string) {
	a.t.Helper()
	resp, body := a.do("POST", "/staff/login", url.Values{"name": {name}, "password": {password}})
	for _, c := range resp.Cookies() {
		if c.Name == "gatecheck_session" {
			a.cookie = c
			return
		}
	}
	a.t.Fatalf("sign-in as %s: %d %.300s", name, resp.StatusCode, body)
}

// TestCaseListCountsUpToAThousand: a common search word combined with a
// filter is counted only up to countUpTo; the list says "more than" and
// pages on while pages are full.
func TestCaseListCountsUpToAThousand(t *testing.T) {
	a := newApp(t)
	hash, _ := HashPassword("correct horse battery")
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAgent); err != nil {
		t.Fatal(err)
	}
	for i := range countUpTo + 60 {
		c := &wizard.Case{URL: fmt.Sprintf("https://portal.example/p%d", i), Host: "portal.example", RequesterIP: "203.0.113.9", TreeVersion: a.srv.cfg.Tree.ID()}
		if err := a.db.CreateCase(context.Background(), c, a.srv.cfg.TreeSource); err != nil {
			t.Fatal(err)
		}
	}
	a.signIn("ann", "correct horse battery")
	_, page := a.do("GET", "/staff?q=portal&status=open", nil)
	if !strings.Contains(page, "More than 1000 cases") || !strings.Contains(page, `rel="next"`) || strings.Contains(page, " of ") {
		t.Errorf("capped list: %s", excerpt(page, "cases</p>"))
	}
	_, page = a.do("GET", "/staff?q=portal", nil)
	if !strings.Contains(page, "1060 cases") || !strings.Contains(page, "Page 1 of 22") {
		t.Errorf("search alone should count exactly: %s", excerpt(page, "cases</p>"))
	}
}

// excerpt is the part of page around what, for a failure message.
func excerpt(page, what string) string {
	i := strings.Index(page, what)
	if i < 0 {
		return fmt.Sprintf("(no %q in %d bytes)", what, len(page))
	}
	return page[max(0, i-200):min(len(page), i+1500)]
}
