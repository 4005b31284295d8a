package web

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// nastyStrings are seeds for every text field: bad UTF-8, NUL and control
// characters, CRLF, very long text, SQL, HTML and template injection, FTS
// query syntax and percent-encoding.
var nastyStrings = []string{
	"", " ", "\xff\xfe\xfd", "a\xc3", "\x00", "a\x00b", "\r\nSet-Cookie: x=1", "\t", "\u2028\u0085", "𝕦𝕟𝕚𝕔𝕠𝕕𝕖",
	"'; DROP TABLE cases; --", `" OR 1=1 --`, "<script>alert(1)</script>", `"><img src=x onerror=alert(1)>`, "{{.}}", "{team}",
	`NEAR(a b)`, `"unterminated`, "a*", "-a", "(a OR b)", "a AND NOT b", "^a", "ticket:INC", "*", "%00", "%zz", "%2F%2e%2e",
	"../../etc/passwd", strings.Repeat("A", 5000), strings.Repeat("é", 51),
}

// FuzzCreateCase sends the start form, GET /start?url=&ticket= and POST
// /cases. GET /start fills the form in and queues nothing. POST /cases
// takes a URL probes.Normalize accepts and a ticket cleanTicket accepts,
// stores both as normalised and cleaned, and queues the probes; anything
// else is a 422 whose form keeps what was typed.
func FuzzCreateCase(f *testing.F) {
	f.Add("https://shop.example.com/cart", "INC-42", "")
	f.Add("shop.example.com", "  INC-42 ", "")
	f.Add("ftp://files.example/x", "INC-9", "")
	f.Add("http://127.0.0.1:8080/", strings.Repeat("x", 101), "")
	f.Add("http://[::1]/", "", "url=http://evil.example/")
	f.Add("http://a:b@c/", "", "ticket=%zz")
	f.Add("http://%zz/", "", "a=1;b=2")
	f.Add("HTTP://EXAMPLE.COM:443/", "", "")
	f.Add("https://bücher.example/", "ÄÖÜ-9", "")
	for _, s := range nastyStrings {
		f.Add(s, s, "")
	}
	a := newFuzzApp(f)
	f.Fuzz(func(t *testing.T, rawURL, ticket, extra string) {
		// GET /start.
		u, ok := target("/start", formBody(extra, "url", rawURL, "ticket", ticket))
		if !ok {
			u, _ = target("/start", formBody("", "url", rawURL, "ticket", ticket))
		}
		a.begin()
		waiting, _ := a.srv.runner.Stats()
		rec := a.serve("GET", u, "", false)
		page := checkResponse(t, "GET /start", rec)
		q := u.Query()
		if rec.Code != http.StatusOK || !strings.Contains(page, attr("value", clip(q.Get("url"), 4096))) || !strings.Contains(page, attr("value", clip(q.Get("ticket"), 4*maxTicket))) {
			t.Fatalf("GET %s: %d, the form is not filled in: %.500s", u, rec.Code, page)
		}
		if now, _ := a.srv.runner.Stats(); now != waiting {
			t.Fatalf("GET %s queued a probe", u)
		}

		// POST /cases.
		body := formBody(extra, "url", rawURL, "ticket", ticket)
		rec = a.serve("POST", &url.URL{Path: "/cases"}, body, false)
		page = checkResponse(t, "POST /cases", rec)
		form, ok := a.readForm(t, body, rec)
		if !ok {
			return
		}
		typedURL, typedTicket := form.Get("url"), form.Get("ticket")
		tg, urlErr := probes.Normalize(typedURL, probes.DefaultPorts)
		clean, ticketErr := cleanTicket(typedTicket)
		if urlErr != nil || ticketErr != nil {
			msg := wizard.ErrorMessage(ticketErr)
			if urlErr != nil {
				msg = capitalise(urlErr.Error())
			}
			if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(page, html.EscapeString(msg)) ||
				!strings.Contains(page, attr("value", clip(typedURL, 4096))) || !strings.Contains(page, attr("value", clip(typedTicket, 4*maxTicket))) {
				t.Fatalf("url %q ticket %q: %d, want 422 with %q and the form as typed: %.1000s", typedURL, typedTicket, rec.Code, msg, page)
			}
			return
		}
		loc := rec.Header().Get("Location")
		if rec.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/c/") {
			t.Fatalf("url %q ticket %q: %d %q: %.500s", typedURL, typedTicket, rec.Code, loc, page)
		}
		checkNewCase(t, a, strings.TrimPrefix(loc, "/c/"), tg, clean)
	})
}

// checkNewCase: the case holds the normalised URL and the cleaned ticket,
// and its first probe run is queued.
func checkNewCase(t *testing.T, a *fuzzApp, token string, tg *probes.Target, ticket string) {
	t.Helper()
	ctx := context.Background()
	c, err := a.db.Case(ctx, token)
	if err != nil {
		t.Fatalf("the new case %s: %v", token, err)
	}
	if c.URL != tg.String() || c.Host != tg.Host || c.Ticket != ticket || c.Status != wizard.StatusOpen || c.TreeVersion != a.cfg.Tree.ID() {
		t.Fatalf("stored %+v, want URL %q host %q ticket %q", c, tg, tg.Host, ticket)
	}
	runs, err := a.db.ProbeRuns(ctx, c.ID)
	if err != nil || len(runs) != 1 || runs[0].State != wizard.ProbeQueued {
		t.Fatalf("probe runs of the new case: %v %v", runs, err)
	}
	if ok, _, _, _ := a.srv.runner.Progress(c.ID); !ok {
		t.Fatal("the new case's probes are not queued")
	}
}

// FuzzAPICreate posts JSON to /api/cases: Content-Type application/json
// or a 415; a body that does not decode is a 400; then the rules of the
// form, 201 with the token and link or 422. Every answer is JSON, errors
// {"error": "..."}.
func FuzzAPICreate(f *testing.F) {
	f.Add("https://shop.example.com/", "INC-11", "", uint8(0), "")
	f.Add("ftp://x", "", "", uint8(0), "application/json; charset=utf-8")
	f.Add("", "", `{"url": `, uint8(1), "")
	f.Add("", "", `{"url": "http://127.0.0.1/", "ticket": 42}`, uint8(1), "")
	f.Add("", "", `{"url": "http://127.0.0.1/", "url": "ftp://x"}`, uint8(1), "")
	f.Add("", "", `{"url": "http://127.0.0.1/\ud800", "ticket": "\u0000"}`, uint8(1), "")
	f.Add("", "", `[1, 2]`, uint8(1), "")
	f.Add("http://127.0.0.1/", "", ` trailing garbage`, uint8(2), "")
	f.Add("http://127.0.0.1/", "", "", uint8(0), "application/x-www-form-urlencoded")
	f.Add("http://127.0.0.1/", "", "", uint8(0), "text/plain")
	for _, s := range nastyStrings {
		f.Add(s, s, s, uint8(2), "")
	}
	a := newFuzzApp(f)
	f.Fuzz(func(t *testing.T, rawURL, ticket, raw string, mode uint8, contentType string) {
		doc, _ := json.Marshal(map[string]string{"url": rawURL, "ticket": ticket})
		body := string(doc)
		switch mode % 3 {
		case 1:
			body = raw
		case 2:
			body += raw
		}
		if contentType == "" {
			contentType = "application/json"
		}
		if !validHeaderValue(contentType) {
			return
		}
		a.begin()
		rec := a.serve("POST", &url.URL{Path: "/api/cases"}, body, false, "Content-Type", contentType)
		checkResponse(t, "POST /api/cases", rec)
		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("the API answered %q: %.300s", ct, rec.Body.String())
		}
		if !strings.HasPrefix(contentType, "application/json") {
			if rec.Code != http.StatusUnsupportedMediaType {
				t.Fatalf("Content-Type %q: %d", contentType, rec.Code)
			}
			return
		}
		if len(body) > int(a.srv.cfg.MaxBodyBytes) {
			return // 413, or whatever the JSON read before the limit makes it
		}
		var in struct {
			URL    string `json:"url"`
			Ticket string `json:"ticket"`
		}
		if err := json.NewDecoder(strings.NewReader(body)).Decode(&in); err != nil {
			if rec.Code != http.StatusBadRequest || !strings.HasPrefix(jsonError(rec.Body.String()), "The body is not the JSON expected") {
				t.Fatalf("body %q (%v): %d %s", body, err, rec.Code, rec.Body.String())
			}
			return
		}
		tg, urlErr := probes.Normalize(in.URL, probes.DefaultPorts)
		clean, ticketErr := cleanTicket(in.Ticket)
		if urlErr != nil || ticketErr != nil {
			msg := wizard.ErrorMessage(ticketErr)
			if urlErr != nil {
				msg = capitalise(urlErr.Error())
			}
			if rec.Code != http.StatusUnprocessableEntity || jsonError(rec.Body.String()) != msg {
				t.Fatalf("url %q ticket %q: %d %s, want 422 %q", in.URL, in.Ticket, rec.Code, rec.Body.String(), msg)
			}
			return
		}
		var out struct{ Token, Link string }
		json.Unmarshal(rec.Body.Bytes(), &out)
		if rec.Code != http.StatusCreated || out.Token == "" || out.Link != "http://example.com/c/"+out.Token ||
			rec.Header().Get("Location") != "/api/cases/"+out.Token {
			t.Fatalf("url %q ticket %q: %d %s", in.URL, in.Ticket, rec.Code, rec.Body.String())
		}
		checkNewCase(t, a, out.Token, tg, clean)
	})
}

// sameAnswers compares answers by node and choice.
func sameAnswers(a, b []wizard.Answer) bool {
	return slices.EqualFunc(a, b, func(x, y wizard.Answer) bool { return x.Node == y.Node && x.Choice == y.Choice })
}

func choiceIDs(st *wizard.Step) []string {
	var ids []string
	for _, c := range st.Choices {
		ids = append(ids, c.ID)
	}
	return ids
}

// onPath reports whether node is the current step or one passed on the
// way: the steps whose answer can be given or changed.
func onPath(st *caseState, node string) bool {
	return node == st.step.Node || slices.ContainsFunc(st.step.Path, func(p wizard.PathEntry) bool { return p.Node == node })
}

// FuzzAnswer posts node and choice to /c/{token}/answer on a case walked
// some way (by the fuzzer's own choices). The answer is taken exactly when
// the node is the current step or one on the way there and the choice is
// one of that node's; then the answers in force end with it and keep what
// came before. Otherwise it is a 409 with the current step shown again and
// the log untouched.
func FuzzAnswer(f *testing.F) {
	f.Add(uint8(0), []byte{}, "role-gateway", "owner", "")
	f.Add(uint8(0), []byte{0}, "role-gateway", "user", "")
	f.Add(uint8(0), []byte{0, 1, 0}, "probe", "overload", "")
	f.Add(uint8(0), []byte{1, 1, 1, 1}, "role-gateway", "bogus", "")
	f.Add(uint8(1), []byte{}, "probe", "", "")
	f.Add(uint8(2), []byte{2, 2}, "", "", "node=probe")
	f.Add(uint8(3), []byte{}, "role-gateway", "owner", "")
	f.Add(uint8(0), []byte{}, "role-gateway", "owner", "choice=%zz")
	f.Add(uint8(0), []byte{}, "role-gateway", "owner", "a=1;b=2")
	for _, s := range nastyStrings {
		f.Add(uint8(0), []byte{0, 0}, s, s, "")
	}
	a := newFuzzApp(f)
	f.Fuzz(func(t *testing.T, which uint8, walk []byte, node, choice, extra string) {
		st := a.newCase(t, which, walk)
		tok := st.c.Token
		body := formBody(extra, "node", node, "choice", choice)
		rec := a.serve("POST", &url.URL{Path: "/c/" + tok + "/answer"}, body, false)
		page := checkResponse(t, "POST answer", rec)
		after := a.load(t, tok)
		unchanged := func() {
			t.Helper()
			if len(after.log) != len(st.log) {
				t.Fatalf("a refused answer changed the log: %v -> %v", st.log, after.log)
			}
		}
		form, ok := a.readForm(t, body, rec)
		switch {
		case !ok:
			unchanged()
			return
		case st.probing():
			wantRedirect(t, "an answer while probing", rec, "/c/"+tok)
			unchanged()
			return
		}
		n, c := form.Get("node"), form.Get("choice")
		fits := false
		if onPath(st, n) {
			if at, err := st.tree.StepAt(a.cfg.Settings, st.facts, n); err == nil {
				fits = slices.Contains(choiceIDs(at), c)
			}
		}
		if !fits {
			if rec.Code != http.StatusConflict || !(strings.Contains(page, "no longer fits") || strings.Contains(page, "not one of this step")) {
				t.Fatalf("node %q choice %q at %s: %d, want 409: %.500s", n, c, st.step.Node, rec.Code, page)
			}
			if !st.step.Done && !strings.Contains(page, attr("value", st.step.Node)) {
				t.Fatalf("the refusal does not show the current step %s", st.step.Node)
			}
			unchanged()
			return
		}
		wantRedirect(t, "answer "+n+"="+c, rec, "/c/"+tok)
		got := after.answers
		if len(got) == 0 || got[len(got)-1].Node != n || got[len(got)-1].Choice != c {
			t.Fatalf("answers after %s=%s: %v", n, c, got)
		}
		if kept := got[:len(got)-1]; len(kept) > len(st.answers) || !sameAnswers(kept, st.answers[:len(kept)]) {
			t.Fatalf("answers %v -> %v: earlier answers changed", st.answers, got)
		}
		if n == st.step.Node && len(got) != len(st.answers)+1 {
			t.Fatalf("an answer at the current step did not add one: %v -> %v", st.answers, got)
		}
		if !slices.ContainsFunc(after.step.Path, func(p wizard.PathEntry) bool { return p.Node == n && p.Choice == c && p.Answer == len(got)-1 }) {
			t.Fatalf("the walk does not pass %s=%s: %+v", n, c, after.step.Path)
		}
		if after.step.Done && after.c.Status != wizard.StatusOf(after.step.Outcome) {
			t.Fatalf("the walk ended %s but the case is %s", after.step.Outcome, after.c.Status)
		}
	})
}

// FuzzBack posts to /c/{token}/back, which reads no field: it takes back
// exactly the last answer, and on a case without answers changes nothing.
func FuzzBack(f *testing.F) {
	f.Add(uint8(0), []byte{}, "")
	f.Add(uint8(0), []byte{0, 1, 0}, "x=1")
	f.Add(uint8(1), []byte{1, 1, 1, 1, 1, 1}, "%zz;")
	f.Add(uint8(3), []byte{}, "")
	f.Add(uint8(2), []byte{0}, strings.Repeat("x", 70<<10))
	a := newFuzzApp(f)
	f.Fuzz(func(t *testing.T, which uint8, walk []byte, body string) {
		st := a.newCase(t, which, walk)
		tok := st.c.Token
		rec := a.serve("POST", &url.URL{Path: "/c/" + tok + "/back"}, body, false)
		checkResponse(t, "POST back", rec)
		wantRedirect(t, "back", rec, "/c/"+tok)
		after := a.load(t, tok)
		if !sameAnswers(after.answers, wizard.Back(st.answers)) {
			t.Fatalf("back: %v -> %v", st.answers, after.answers)
		}
		if len(st.answers) == 0 && len(after.log) != len(st.log) {
			t.Fatalf("back with no answers wrote to the log: %v", after.log)
		}
	})
}

var changeLink = regexp.MustCompile(`href="/c/[^/"]+/at/([^"]+)"`)

// FuzzRevisit gets /c/{token}/at/{node}: 200 exactly for the current step
// and those on the way there, 404 otherwise (and for any other token).
// Every choice the page offers is accepted by /answer, and every "Change"
// link on the case's page opens.
func FuzzRevisit(f *testing.F) {
	f.Add(uint8(0), []byte{}, "probe", "", uint8(0))
	f.Add(uint8(0), []byte{0, 1}, "role-gateway", "", uint8(1))
	f.Add(uint8(1), []byte{0, 0, 0}, "probe", "", uint8(2))
	f.Add(uint8(3), []byte{}, "probe", "", uint8(0))
	f.Add(uint8(0), []byte{}, "no-such-node", "", uint8(0))
	f.Add(uint8(0), []byte{}, "probe", "bogus-token", uint8(0))
	f.Add(uint8(0), []byte{}, "../../staff", "", uint8(0))
	f.Add(uint8(0), []byte{}, "probe/../probe", "a/b", uint8(0))
	for _, s := range nastyStrings {
		f.Add(uint8(0), []byte{0}, s, s, uint8(0))
	}
	a := newFuzzApp(f)
	f.Fuzz(func(t *testing.T, which uint8, walk []byte, node, token string, pick uint8) {
		st := a.newCase(t, which, walk)
		tok := st.c.Token
		if token != "" {
			tok = token
		}
		u, ok := target("/c/"+url.PathEscape(tok)+"/at/"+url.PathEscape(node), "")
		if !ok {
			t.Fatalf("cannot build a target for %q %q", tok, node)
		}
		rec := a.serve("GET", u, "", false)
		page := checkResponse(t, "GET revisit", rec)
		if tok != st.c.Token || !onPath(st, node) {
			if rec.Code != http.StatusNotFound {
				t.Fatalf("GET %s at step %s: %d, want 404", u, st.step.Node, rec.Code)
			}
			return
		}
		if rec.Code != http.StatusOK || !strings.Contains(page, "Keep my answers as they were") {
			t.Fatalf("GET %s: %d: %.500s", u, rec.Code, page)
		}
		// The page offers what the handler offers: an automatic check only
		// the answers that make sense beside its finding (NotRight), a
		// person's step all of its answers.
		at, err := st.tree.NotRight(a.cfg.Settings, st.facts, node)
		if err != nil {
			t.Fatal(err)
		}
		if !at.Done && !strings.Contains(page, attr("value", node)) {
			t.Fatalf("the page for %s has no form for it", node)
		}
		for _, id := range choiceIDs(at) {
			if !strings.Contains(page, attr("value", id)) {
				t.Fatalf("the page for %s lacks the choice %s", node, id)
			}
		}
		// A "Change" link on the case's page opens.
		if links := changeLink.FindAllStringSubmatch(a.serve("GET", &url.URL{Path: "/c/" + tok}, "", false).Body.String(), -1); len(links) > 0 {
			l := html.UnescapeString(links[int(pick)%len(links)][1])
			lu, _ := target("/c/"+tok+"/at/"+l, "")
			if rec := a.serve("GET", lu, "", false); rec.Code != http.StatusOK {
				t.Fatalf("the case page links to %s, which answers %d", lu, rec.Code)
			}
		}
		// And a choice it offers is taken.
		if ids := choiceIDs(at); len(ids) > 0 && !st.probing() {
			c := ids[int(pick)%len(ids)]
			rec := a.serve("POST", &url.URL{Path: "/c/" + tok + "/answer"}, formBody("", "node", node, "choice", c), false)
			wantRedirect(t, "the revisited choice "+node+"="+c, rec, "/c/"+tok)
		}
	})
}

// FuzzVantage posts a browser's result to /c/{token}/vantage. It is stored
// (204, one view more) exactly when the form reads, names the case's latest
// run (own picks the real one, else run is taken as sent), carries a known
// result with its reason and time, no browser view of the run is stored,
// and it moves none of the person's answers; anything else is a 4xx that
// stores nothing.
func FuzzVantage(f *testing.F) {
	f.Add(uint8(0), []byte{}, true, "", "answered", "42", "", "")
	f.Add(uint8(2), []byte{}, true, "", "unreachable", "", "", "")
	f.Add(uint8(2), []byte{0, 0}, true, "", "answered", "7", "", "")
	f.Add(uint8(1), []byte{}, true, "", "timeout", "8000", "", "")
	f.Add(uint8(1), []byte{}, true, "", "redirected", "80001", "", "")
	f.Add(uint8(0), []byte{}, true, "", "skipped", "", "mixed-content", "")
	f.Add(uint8(0), []byte{}, true, "", "skipped", "", "bored", "")
	f.Add(uint8(3), []byte{}, true, "", "answered", "", "", "")
	f.Add(uint8(0), []byte{}, false, "1", "answered", "", "", "")
	f.Add(uint8(0), []byte{}, false, "-1", "answered", "1e3", "", "")
	f.Add(uint8(0), []byte{}, true, "", "answered", "", "", "run=1")
	f.Add(uint8(0x40), []byte{}, true, "", "answered", "42", "", "") // another browser
	f.Add(uint8(0), []byte{}, true, "", "answered", "", "", strings.Repeat("x", 2<<10))
	for _, s := range nastyStrings {
		f.Add(uint8(0), []byte{}, false, s, s, s, s, "")
	}
	a := newFuzzApp(f)
	f.Fuzz(func(t *testing.T, which uint8, walk []byte, own bool, run, result, ms, reason, extra string) {
		st := a.newCase(t, which, walk)
		tok := st.c.Token
		if own && st.latest != nil {
			run = strconv.FormatInt(st.latest.ID, 10)
		}
		body := formBody(extra, "run", run, "result", result, "ms", ms, "reason", reason)
		// Only the reporter's browser adds its view; which's bit 6 makes
		// the post come from another browser.
		reporter := which&0x40 == 0
		var hdr []string
		if reporter {
			hdr = []string{"Cookie", reporterCookie + "=" + fuzzReporter}
		}
		rec := a.serve("POST", &url.URL{Path: "/c/" + tok + "/vantage"}, body, false, hdr...)
		page := checkResponse(t, "POST vantage", rec)
		after := a.load(t, tok)
		stored := len(after.views) == len(st.views)+1
		if !stored && len(after.views) != len(st.views) {
			t.Fatalf("views %d -> %d", len(st.views), len(after.views))
		}
		if (rec.Code == http.StatusNoContent) != stored {
			t.Fatalf("%d, but a view stored: %v: %.300s", rec.Code, stored, page)
		}
		if !stored && (rec.Code < 400 || rec.Code >= 500) {
			t.Fatalf("a refused view: %d, want a 4xx: %.300s", rec.Code, page)
		}
		form, err := url.ParseQuery(body)
		want := err == nil && len(body) <= maxVantageBody && st.latest != nil && st.latestBrowser() == nil && reporter
		var v *wizard.Vantage
		if want {
			v, err = browserVantage(form.Get("run"), form.Get("result"), form.Get("ms"), form.Get("reason"))
			want = err == nil && v.RunID == st.latest.ID && !a.srv.browserMoves(st, *v)
		}
		if stored != want {
			t.Fatalf("form %q on case at %v: stored %v, want %v (%d %.300s)", body, st.step, stored, want, rec.Code, page)
		}
		if stored {
			got := after.views[len(after.views)-1]
			if got.RunID != v.RunID || got.Detail != v.Detail || (got.Reachable == nil) != (v.Reachable == nil) ||
				(got.Reachable != nil && *got.Reachable != *v.Reachable) {
				t.Fatalf("stored %+v, posted %+v", got, v)
			}
			if !sameAnswers(after.answers, st.answers) {
				t.Fatalf("a view changed the answers: %v -> %v", st.answers, after.answers)
			}
		}
	})
}
