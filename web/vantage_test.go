package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/wizard"
)

// healthySite answers every request normally.
func healthySite(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(srv.Close)
	return srv
}

// closedPort is an address on loopback where nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/"
}

// apiVantages returns a case's points of view as the API gives them.
func (a *testApp) apiVantages(token string) []apiVantage {
	a.t.Helper()
	_, body := a.do("GET", "/api/cases/"+token, nil)
	var doc struct{ Vantages []apiVantage }
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		a.t.Fatalf("case %s: %v: %s", token, err, body)
	}
	return doc.Vantages
}

// latestRun is the ID of a case's latest probe run.
func (a *testApp) latestRun(token string) string {
	a.t.Helper()
	runs := a.runsOf(token)
	return fmt.Sprint(runs[len(runs)-1].ID)
}

// postView posts a browser's result as app.js does.
func (a *testApp) postView(token string, form url.Values, hdr ...string) (*http.Response, string) {
	a.t.Helper()
	return a.do("POST", "/c/"+token+"/vantage", form, hdr...)
}

var (
	stepTitle   = regexp.MustCompile(`<h1 id="step-title">([^<]*)</h1>`)
	browserCell = regexp.MustCompile(`data-testid="browser-view"[^>]*>(?:<span data-vantage-result>)?([^<]*)<`)
)

// stepOf returns the title of the step a case page shows and what it says
// the browser saw.
func stepOf(t *testing.T, page string) (title, browser string) {
	t.Helper()
	m := stepTitle.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("not a step page: %.2000s", page)
	}
	b := browserCell.FindStringSubmatch(page)
	if b == nil {
		t.Fatalf("the step page shows no browser view: %.3000s", page)
	}
	return unescape(m[1]), unescape(b[1])
}

func unescape(s string) string {
	return strings.NewReplacer("&#39;", "'", "&amp;", "&", "&quot;", `"`, "&lt;", "<", "&gt;", ">").Replace(s)
}

// connectSrc returns the connect-src directive of a response's policy.
func connectSrc(resp *http.Response) string {
	for d := range strings.SplitSeq(resp.Header.Get("Content-Security-Policy"), ";") {
		if d = strings.TrimSpace(d); strings.HasPrefix(d, "connect-src") {
			return d
		}
	}
	return ""
}

func TestVantageFromTheBrowser(t *testing.T) {
	a := newApp(t)
	site := healthySite(t)
	token := a.createCase(site.URL, "INC-9")
	a.waitProbed(token)
	run := a.latestRun(token)
	origin := site.URL // http://127.0.0.1:PORT

	// Before the browser's result: the page has its browser try the site,
	// its policy lets it reach that origin, and the wizard asks.
	resp, page := a.do("GET", "/c/"+token, nil)
	if got, want := connectSrc(resp), "connect-src 'self' "+origin; got != want {
		t.Errorf("case page policy: %q, want %q", got, want)
	}
	for _, want := range []string{`data-vantage-run="` + run + `"`, `data-vantage-url="` + site.URL + `/"`, `data-vantage-post="/c/` + token + `/vantage"`, "data-vantage-reload", templatesNote} {
		if !strings.Contains(page, want) {
			t.Errorf("case page lacks %s", want)
		}
	}
	if title, browser := stepOf(t, page); title != "Does the page load in your browser now?" || browser != "Not checked: the check needs JavaScript" {
		t.Errorf("before the browser's result: %q, browser %q", title, browser)
	}
	// The kept copy of the page carries the same policy.
	if resp, _ := a.do("GET", "/c/"+token, nil); connectSrc(resp) != "connect-src 'self' "+origin {
		t.Errorf("kept case page policy: %q", connectSrc(resp))
	}
	// Every other page keeps to its own origin.
	for _, path := range []string{"/", "/staff/login", "/c/" + token + "/at/probe", "/c/no-such-case"} {
		if resp, _ := a.do("GET", path, nil); connectSrc(resp) != "connect-src 'self'" {
			t.Errorf("%s policy: %q", path, connectSrc(resp))
		}
	}

	// Refused: bad values, runs of other cases, other sites.
	other := a.createCase(site.URL, "")
	a.waitProbed(other)
	for _, tt := range []struct {
		name   string
		form   url.Values
		status int
		says   string
	}{
		{"an unknown result", url.Values{"run": {run}, "result": {"maybe"}}, 422, "must be answered, redirected, unreachable, timeout or skipped"},
		{"no run", url.Values{"result": {"answered"}}, 422, "which check of the site"},
		{"a run that is not a number", url.Values{"run": {"1 OR 1=1"}, "result": {"answered"}}, 422, "which check of the site"},
		{"a negative time", url.Values{"run": {run}, "result": {"answered"}, "ms": {"-5"}}, 422, "milliseconds"},
		{"a skip without its reason", url.Values{"run": {run}, "result": {"skipped"}, "reason": {"bored"}}, 422, "must say why"},
		{"another case's run", url.Values{"run": {a.latestRun(other)}, "result": {"answered"}}, 404, "no check number"},
		{"a body too large", url.Values{"run": {run}, "result": {"answered"}, "pad": {strings.Repeat("x", 2<<10)}}, 413, "too large"},
	} {
		resp, body := a.postView(token, tt.form)
		if resp.StatusCode != tt.status || !strings.Contains(unescape(body), tt.says) {
			t.Errorf("%s: %d, want %d saying %q: %.300s", tt.name, resp.StatusCode, tt.status, tt.says, body)
		}
	}
	resp, _ = a.postView(token, url.Values{"run": {run}, "result": {"answered"}}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site post: %d, want 403", resp.StatusCode)
	}
	if views := a.apiVantages(token); len(views) != 1 {
		t.Fatalf("refused posts stored a view: %+v", views)
	}

	// The browser's result: stored, once.
	if resp, body := a.postView(token, url.Values{"run": {run}, "result": {"answered"}, "ms": {"42"}}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("posting answered: %d %s", resp.StatusCode, body)
	}
	resp, body := a.postView(token, url.Values{"run": {run}, "result": {"unreachable"}, "ms": {"3"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "stored already") {
		t.Errorf("a second post for the run: %d %.300s", resp.StatusCode, body)
	}

	// The wizard takes the browser's branch; the page shows both views
	// and no longer reaches out.
	resp, page = a.do("GET", "/c/"+token, nil)
	if title, browser := stepOf(t, page); title != "Reload the page, then wait a minute" || browser != "A server answered (after 42 ms)" {
		t.Errorf("after the browser's result: %q, browser %q", title, browser)
	}
	if !strings.Contains(page, "Answered 200 OK") || !strings.Contains(page, "your browser reached the site") || strings.Contains(page, "data-vantage-post") {
		t.Errorf("the step page does not show the two views as it should:\n%s", page)
	}
	if got := connectSrc(resp); got != "connect-src 'self'" {
		t.Errorf("policy once the browser's view is stored: %q", got)
	}

	// The API lists both points of view.
	views := a.apiVantages(token)
	if len(views) != 2 || views[0].From != "server" || views[0].Report == nil || views[0].Report.Verdict.Code != "healthy" ||
		views[1].From != "browser" || views[1].Reachable == nil || !*views[1].Reachable || views[1].Detail != "a server answered (after 42 ms)" ||
		fmt.Sprint(views[1].Run) != run || views[1].At.IsZero() {
		t.Errorf("API vantages = %+v", views)
	}

	// The escalation summary and the staff case page carry the browser's view.
	a.answer(token, "fix-refresh", "broken")
	a.answer(token, "fix-cache", "broken")
	a.answer(token, "scope", "everyone")
	page = a.answer(token, "fix-visitor-network", "broken")
	if !strings.Contains(page, "Seen from the requester&#39;s browser (") || !strings.Contains(page, "a server answered (after 42 ms)") {
		t.Errorf("the escalation summary lacks the browser's view:\n%s", page)
	}
	hash, _ := HashPassword("correct horse battery")
	a.db.CreateUser(t.Context(), "ann", hash, wizard.RoleAgent)
	a.signIn("ann", "correct horse battery")
	_, page = a.do("GET", "/staff/c/"+token, nil)
	for _, want := range []string{"Points of view", "From the visitor&#39;s browser", "A server answered (after 42 ms)", "Seen from the visitor&#39;s browser (for probe run " + run + ")"} {
		if !strings.Contains(page, want) {
			t.Errorf("staff case page lacks %q", want)
		}
	}
}

// templatesNote is the start of the plain statement of what the browser's
// check can tell.
const templatesNote = "Your browser&#39;s check can tell only whether the site answered"

func TestVantageBranches(t *testing.T) {
	a := newApp(t)
	site, down := healthySite(t), closedPort(t)
	for _, tt := range []struct {
		name, target, result string
		step, browser        string
	}{
		{"works from here, not from your browser", site.URL, "unreachable", "Do other websites work?", "Could not connect (after 7 ms)"},
		{"works from here, your browser timed out", site.URL, "timeout", "Do other websites work?", "No answer within 8 s"},
		{"works from here, your browser was sent elsewhere", site.URL, "redirected", "Reload the page, then wait a minute", "A server answered with a redirect to another site (after 7 ms)"},
		{"refused from here, your browser gets an answer", down, "answered", "The site answers you but not gatecheck", "A server answered (after 7 ms)"},
		{"refused from here and from your browser", down, "unreachable", "Do you run the server?", "Could not connect (after 7 ms)"},
		{"refused from here, no view", down, "", "Does the page load in your browser now?", "Not checked: the check needs JavaScript"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			token := a.createCase(tt.target, "")
			a.waitProbed(token)
			if tt.result != "" {
				if resp, body := a.postView(token, url.Values{"run": {a.latestRun(token)}, "result": {tt.result}, "ms": {"7"}}); resp.StatusCode != http.StatusNoContent {
					t.Fatalf("posting %s: %d %s", tt.result, resp.StatusCode, body)
				}
			}
			_, page := a.do("GET", "/c/"+token, nil)
			if step, browser := stepOf(t, page); step != tt.step || browser != tt.browser {
				t.Errorf("at %q (browser %q), want %q (%q)", step, browser, tt.step, tt.browser)
			}
		})
	}
}

func TestVantageRefusedLateOrAgainstAnAnswer(t *testing.T) {
	a := newApp(t)
	site := healthySite(t)

	// Without JavaScript the person answers the question; a result that
	// comes later would move the case from under them, and is refused.
	token := a.createCase(site.URL, "")
	a.waitProbed(token)
	run := a.latestRun(token)
	a.answer(token, "ask-browser-works", "cannot-connect")
	resp, body := a.postView(token, url.Values{"run": {run}, "result": {"answered"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "already has your own answer") {
		t.Errorf("a result against the person's answer: %d %.300s", resp.StatusCode, body)
	}
	// Even one that agrees with it: the answer took the question's way.
	if resp, _ := a.postView(token, url.Values{"run": {run}, "result": {"unreachable"}}); resp.StatusCode != http.StatusConflict {
		t.Errorf("a result after the person answered: %d", resp.StatusCode)
	}
	// So the pages that follow do not have the browser try.
	if resp, page := a.do("GET", "/c/"+token, nil); strings.Contains(page, "data-vantage-post") || connectSrc(resp) != "connect-src 'self'" {
		t.Errorf("the page after the person answered still has the browser try the site")
	}

	// A result for a run the case has moved past is refused.
	token = a.createCase(site.URL, "")
	a.waitProbed(token)
	old := a.latestRun(token)
	if resp, _ := a.do("POST", "/c/"+token+"/recheck", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("recheck: %d", resp.StatusCode)
	}
	resp, body = a.postView(token, url.Values{"run": {old}, "result": {"answered"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "earlier check") {
		t.Errorf("a result for an earlier run: %d %.300s", resp.StatusCode, body)
	}
	if resp, body := a.postView(token, url.Values{"run": {a.latestRun(token)}, "result": {"answered"}}); resp.StatusCode != http.StatusNoContent {
		t.Errorf("a result for the new run: %d %.300s", resp.StatusCode, body)
	}
}

func TestVantageMixedContentIsNotTried(t *testing.T) {
	// gatecheck served over https; the site is http.
	a := newApp(t, func(c *Config) { c.BaseURL = "https://gatecheck.example" })
	site := healthySite(t)
	token := a.createCase(site.URL, "")
	a.waitProbed(token)
	resp, page := a.do("GET", "/c/"+token, nil)
	if got := connectSrc(resp); got != "connect-src 'self'" {
		t.Errorf("policy when the browser is not to try: %q", got)
	}
	if !strings.Contains(page, `data-vantage-skip="mixed-content"`) {
		t.Errorf("the page does not tell the script to skip the check")
	}
	if _, browser := stepOf(t, page); !strings.Contains(browser, "mixed content") {
		t.Errorf("browser view before posting: %q", browser)
	}
	if resp, body := a.postView(token, url.Values{"run": {a.latestRun(token)}, "result": {"skipped"}, "reason": {"mixed-content"}},
		"Origin", "https://gatecheck.example"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("posting skipped: %d %s", resp.StatusCode, body)
	}
	_, page = a.do("GET", "/c/"+token, nil)
	if step, browser := stepOf(t, page); step != "Does the page load in your browser now?" || !strings.HasPrefix(browser, "Not tried: gatecheck's page is https") {
		t.Errorf("after skipped: %q, browser %q", step, browser)
	}
	views := a.apiVantages(token)
	if len(views) != 2 || views[1].Reachable != nil || !strings.Contains(views[1].Detail, "mixed content") {
		t.Errorf("API vantages after skipped: %+v", views)
	}
}

// TestVantageWaitsForTheServersLook checks the browser is not asked to try
// the site while the server's probes run: whether the site is on the
// public internet is only known from them. The step page asks once the
// verdict is in.
func TestVantageWaitsForTheServersLook(t *testing.T) {
	a := newApp(t)
	slow, release := slowSite(t)
	token := a.createCase(slow, "")
	resp, page := a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, "data-events") {
		t.Fatalf("not the probing page:\n%s", page)
	}
	if strings.Contains(page, "data-vantage-url") || connectSrc(resp) != "connect-src 'self'" {
		t.Errorf("the probing page has the browser try the site before the server's verdict: %q\n%s", connectSrc(resp), page)
	}
	release()
	a.waitProbed(token)
	resp, page = a.do("GET", "/c/"+token, nil)
	origin := strings.TrimSuffix(slow, "/slow")
	if !strings.Contains(page, `data-vantage-url="`+slow+`"`) || connectSrc(resp) != "connect-src 'self' "+origin {
		t.Errorf("the step page does not have the browser try the site: %q", connectSrc(resp))
	}
}

// TestBrowserCheckSkipsInternal is the attack of issue 15's finding 2: a
// case for http://192.168.1.1/cgi-bin/reboot?now=1 made a page whose
// policy allowed that origin and whose script sent a GET there, so that
// whoever opened the link (helpdesk staff included) sent a request into
// their own intranet, and the link's maker learnt whether it answered. A
// site at an address that is not public, or one the server's guard
// refused, is not tried: the policy names no other origin, the script is
// told to skip, and a result posted all the same is refused. With the
// operator's --allow-browser-net (here loopback), it is tried.
func TestBrowserCheckSkipsInternal(t *testing.T) {
	site := healthySite(t)
	for _, tc := range []struct {
		name   string
		tweak  func(*Config)
		target string
		tried  bool
	}{
		// The server's guard refuses it: private, and not allowed.
		{"private address refused by the server", func(c *Config) { c.BrowserAllowNets = nil }, "http://192.168.1.1/cgi-bin/reboot?now=1", false},
		// The server may probe loopback (--allow-net), browsers may not.
		{"loopback the server may reach", func(c *Config) { c.BrowserAllowNets = nil }, site.URL + "/cgi-bin/reboot?now=1", false},
		{"a name that resolves to loopback", func(c *Config) { c.BrowserAllowNets = nil }, strings.Replace(site.URL, "127.0.0.1", "localhost", 1), false},
		{"loopback allowed for browsers", nil, site.URL + "/", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tweaks []func(*Config)
			if tc.tweak != nil {
				tweaks = append(tweaks, tc.tweak)
			}
			a := newApp(t, tweaks...)
			token := a.createCase(tc.target, "")
			a.waitProbed(token)
			resp, page := a.do("GET", "/c/"+token, nil)
			csp := connectSrc(resp)
			if !tc.tried {
				if csp != "connect-src 'self'" || strings.Contains(resp.Header.Get("Content-Security-Policy"), "192.168") {
					t.Errorf("policy lets the page reach the site: %q", csp)
				}
				if !strings.Contains(page, `data-vantage-skip="internal"`) {
					t.Errorf("the page does not tell the script to skip the check:\n%.3000s", page)
				}
				resp, body := a.postView(token, url.Values{"run": {a.latestRun(token)}, "result": {"answered"}, "ms": {"3"}})
				if resp.StatusCode != http.StatusConflict {
					t.Errorf("a made-up result for an internal site: %d %.200s", resp.StatusCode, body)
				}
				if resp, body := a.postView(token, url.Values{"run": {a.latestRun(token)}, "result": {"skipped"}, "reason": {"internal"}}); resp.StatusCode != http.StatusNoContent {
					t.Errorf("posting skipped: %d %.200s", resp.StatusCode, body)
				}
				return
			}
			if !strings.HasPrefix(csp, "connect-src 'self' http://127.0.0.1:") || strings.Contains(page, `data-vantage-skip=`) {
				t.Errorf("an allowed site is not tried: %q", csp)
			}
		})
	}
}

func TestCSPOrigin(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"http://127.0.0.1:8080/shop/?q=1", "http://127.0.0.1:8080"},
		{"https://Shop.Example.com/cart", "https://shop.example.com"},
		{"https://shop.example.com:443/", "https://shop.example.com"},
		{"http://shop.example.com:8443/", "http://shop.example.com:8443"},
		{"https://bücher.example/", "https://xn--bcher-kva.example"},
		{"http://[::1]:8080/", ""},           // a policy cannot name an IPv6 literal
		{"https://under_score.example/", ""}, // nor a name with an underscore
		{"https://a.example/;script-src", "https://a.example"},
		{"https://a.example/;script-src *", ""},
		{"https://a.example'; script-src */", ""},
		{"not a url", ""},
	} {
		got := cspOrigin(tt.url)
		if got != tt.want {
			t.Errorf("cspOrigin(%q) = %q, want %q", tt.url, got, tt.want)
		}
		if strings.ContainsAny(got, " ;'\",\r\n") {
			t.Errorf("cspOrigin(%q) = %q lets a separator into the header", tt.url, got)
		}
	}
}
