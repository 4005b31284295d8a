package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// Issue 16: a step must never state something the evidence contradicts. A
// site that refuses gatecheck was told "the site works from gatecheck's
// server"; an intermittent one "gatecheck reached the site without
// trouble". TestNoStepContradictsTheVerdict walks every verdict code, as
// each persona, through the real handlers, and checks every step it meets.

// persona is someone who comes to gatecheck with a 502, and the answer
// they give where the tree asks who they are.
type persona struct {
	name   string
	ticket string
	// role answers a role question (a question offering "owner") from
	// the choices it offers.
	role func(choices []string) string
}

var personas = []persona{
	{name: "visitor", role: func([]string) string { return "user" }},
	{name: "site owner", role: func([]string) string { return "owner" }},
	// Someone alerted by an uptime monitor answers as such where the tree
	// asks, and otherwise as the one who runs the site.
	{name: "monitoring alert", role: func(cs []string) string {
		if slices.Contains(cs, "monitor") {
			return "monitor"
		}
		return "owner"
	}},
	// The tree has no helpdesk role: its user choice is "I use the site, or
	// support its users". A helpdesk opens the case with the customer's
	// ticket and answers on their behalf.
	{name: "helpdesk", ticket: "HD-4711", role: func([]string) string { return "user" }},
}

// falseUnless lists phrases that state a fact about what gatecheck found,
// each with the verdicts under which the fact holds: a step showing one
// under any other verdict contradicts the evidence.
var falseUnless = []struct {
	phrase *regexp.Regexp
	holds  []probes.Code
}{
	{regexp.MustCompile(`(?i)works from gatecheck's server|without trouble|reach(es|ed) \S+ normally|answers (gatecheck )?normally`), []probes.Code{probes.Healthy}},
	{regexp.MustCompile(`(?i)gatecheck's server could not connect|does not accept connections|refused or go unanswered|not taking connections`), []probes.Code{probes.TCPRefused, probes.TCPTimeout}},
	{regexp.MustCompile(`(?i)site refused|refuses the connection|refused gatecheck|refuses access|turns gatecheck away`), []probes.Code{probes.AccessBlocked}},
	{regexp.MustCompile(`(?i)fails some of the time|some of gatecheck's (requests|tries)|works only some of the time|\d+ of \d+ tries failed`), []probes.Code{probes.Intermittent}},
	{regexp.MustCompile(`(?i)overloaded or too slow|gave up waiting|cannot serve anyone|did not answer in time`), []probes.Code{probes.GatewayTimeout, probes.ServiceUnavailable}},
	{regexp.MustCompile(`(?i)could not be resolved|name does not exist|name cannot be found`), []probes.Code{probes.DNSNXDomain, probes.DNSFailure, probes.DNSSECFailure, probes.DNSLameDelegation}},
	{regexp.MustCompile(`(?i)signatures do not validate|fails its DNS security check`), []probes.Code{probes.DNSSECFailure}},
	{regexp.MustCompile(`(?i)name servers that do not answer|do not answer for it`), []probes.Code{probes.DNSLameDelegation}},
	{regexp.MustCompile(`(?i)give different (answers|addresses)|address has changed`), []probes.Code{probes.DNSMismatch}},
	{regexp.MustCompile(`(?i)presents is not acceptable|security certificate (has expired|expired on|is for another name|is not trusted|is only valid from|is not valid)`),
		[]probes.Code{probes.TLSExpired, probes.TLSHostnameMismatch, probes.TLSUntrusted}},
	{regexp.MustCompile(`(?i)does not work over https|secure address \(https\) does not work|secure connection fails|secure \(https\) connection does not work`),
		[]probes.Code{probes.HTTPSUnavailable, probes.TLSHandshakeFailed}},
	{regexp.MustCompile(`(?i)could not get an answer from the server behind`), []probes.Code{probes.Gateway502}},
	{regexp.MustCompile(`(?i)server behind the site's gateway fails|application failed|garbled answer`), []probes.Code{probes.Gateway502, probes.ProtocolError, probes.ServerError}},
	{regexp.MustCompile(`(?i)round in circles|every hop of the loop`), []probes.Code{probes.RedirectLoop}},
	{regexp.MustCompile(`(?i)not on the public internet|on an internal network`), []probes.Code{probes.BlockedTarget}},
	{regexp.MustCompile(`(?i)answers over http|http works but|answers at its plain http`), []probes.Code{probes.HTTPSUnavailable}},
	// The hand-off's request speaks for the person: it may not claim a
	// 502 the probes did not see.
	{regexp.MustCompile(`(?i)I get .{0,6}502 Bad Gateway`), []probes.Code{probes.Gateway502}},
	{regexp.MustCompile(`(?i)fails from gatecheck's server`), []probes.Code{probes.TCPRefused, probes.TCPTimeout, probes.Gateway502,
		probes.GatewayTimeout, probes.ServiceUnavailable, probes.ServerError, probes.ProtocolError}},
}

// zooSite starts a loopback site whose probes give code, and returns its
// URL; "" for a verdict loopback cannot give cheaply, which the matrix
// gives a case with a report built from the verdict table instead.
func zooSite(t *testing.T, code probes.Code) string {
	serve := func(h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL + "/"
	}
	plain := func(status int, hdr ...string) string {
		return serve(func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(hdr); i += 2 {
				w.Header().Set(hdr[i], hdr[i+1])
			}
			w.WriteHeader(status)
			fmt.Fprintf(w, "<h1>%d %s</h1>", status, http.StatusText(status))
		})
	}
	switch code {
	case probes.Healthy:
		return healthySite(t).URL + "/"
	case probes.AccessBlocked:
		return plain(403, "Server", "nginx/1.24.0")
	case probes.Intermittent:
		// Every other answer is nginx's 502.
		var n atomic.Int64
		return serve(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1)%2 == 0 {
				w.Header().Set("Server", "nginx/1.24.0")
				w.WriteHeader(502)
				io.WriteString(w, "<html><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx/1.24.0</center></body></html>")
				return
			}
			io.WriteString(w, "fine")
		})
	case probes.Gateway502:
		return brokenGateway(t).URL + "/"
	case probes.TCPRefused:
		return closedPort(t)
	case probes.ServiceUnavailable:
		return plain(503, "Retry-After", "120")
	case probes.GatewayTimeout:
		return plain(504)
	case probes.ServerError:
		return plain(500)
	case probes.RedirectLoop:
		return serve(func(w http.ResponseWriter, r *http.Request) {
			next := "/a"
			if r.URL.Path == "/a" {
				next = "/b"
			}
			http.Redirect(w, r, next, http.StatusFound)
		})
	case probes.ProtocolError:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(time.Second))
					c.Read(make([]byte, 4096))
					io.WriteString(c, "\x00\x01garbage from a confused upstream\r\n\r\n")
				}()
			}
		}()
		return "http://" + ln.Addr().String() + "/"
	case probes.TLSExpired:
		return expiredCertSite(t)
	case probes.TLSUntrusted:
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the probes' refusals of its certificate
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL + "/"
	case probes.BlockedTarget:
		// Outside the test's allowed loopback range.
		return "http://10.255.255.1/"
	}
	return ""
}

// truthWalk is one verdict walked as one persona: every answer at every
// question but the role question, depth first through the real handlers.
type truthWalk struct {
	a       *testApp
	tree    *wizard.Tree
	code    probes.Code
	persona persona
	token   string
	facts   map[string]string // the values of the fields nodes may assume

	problems []string
	walks    int // walks that reached an end
	steps    int // step pages checked
	outcomes map[wizard.Outcome]int
	// explored are the steps whose answers were taken: reached again by
	// another path, a step is checked (its path is new) but its answers
	// lead where they led before. passed are all the nodes walked through,
	// automatic checks included.
	explored, passed map[string]bool
}

const maxTruthDepth = 30

var (
	stepSection = regexp.MustCompile(`(?s)<section class="card" aria-labelledby="step-title">(.*?)</section>`)
	pathSection = regexp.MustCompile(`(?s)<section class="card" aria-labelledby="path-title">(.*?)</section>`)
	stepNode    = regexp.MustCompile(`name="node" value="([^"]+)"`)
	stepChoice  = regexp.MustCompile(`name="choice" value="([^"]+)"`)
	tags        = regexp.MustCompile(`<[^>]*>`)
	pathNode    = regexp.MustCompile(`/at/([a-z0-9_-]+)"`)
	// confirmationPara is what gatecheck's check of a fix found.
	confirmationPara = regexp.MustCompile(`(?s)<p[^>]*data-testid="confirmation"[^>]*>.*?</p>`)
)

func (w *truthWalk) fail(path []string, format string, a ...any) {
	after := "before any answer"
	if len(path) > 0 {
		after = "after " + strings.Join(path, " → ")
	}
	w.problems = append(w.problems, fmt.Sprintf("%s as %s, %s: %s", w.code, w.persona.name, after, fmt.Sprintf(format, a...)))
}

// explore checks the step the case is at, then takes each answer in turn:
// the first as the next answer, the others as changes to the answer given
// here, as a person going back to this step would.
func (w *truthWalk) explore(path []string) {
	if len(w.problems) > 20 {
		return
	}
	resp, page := w.a.do("GET", "/c/"+w.token, nil)
	// "This fixed it" on a fix gatecheck checks: wait for the check.
	for deadline := time.Now().Add(10 * time.Second); strings.Contains(page, `data-testid="confirming"`) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		resp, page = w.a.do("GET", "/c/"+w.token, nil)
	}
	if resp.StatusCode != http.StatusOK || strings.Contains(page, `role="alert"`) {
		w.fail(path, "an error page (%d): %.300s", resp.StatusCode, page)
		return
	}
	m := stepSection.FindStringSubmatch(page)
	if m == nil {
		w.fail(path, "not a step page: %.300s", page)
		return
	}
	section := m[1]
	// What a check of a fix found is the new report's, not the walk's: it
	// is not held to the walk's verdict.
	checked := strings.Contains(section, `data-testid="confirmation"`)
	section = confirmationPara.ReplaceAllString(section, "")
	// The step, and the path so far: the automatic answers' labels state
	// what was found too.
	shown := section
	if p := pathSection.FindStringSubmatch(page); p != nil {
		shown += p[1]
		for _, n := range pathNode.FindAllStringSubmatch(p[1], -1) {
			w.passed[n[1]] = true
		}
	}
	text := strings.Join(strings.Fields(html.UnescapeString(tags.ReplaceAllString(shown, " "))), " ")
	w.steps++
	var node string
	done := !strings.Contains(section, `name="choice"`)
	if done {
		// An end offers no choice; the API names it.
		doc := w.a.apiCase(w.token)
		node = doc.Current.Node
		if !doc.Current.Done {
			w.fail(path, "a dead end at %s: %s", node, text)
			return
		}
		w.walks++
		w.outcomes[doc.Current.Outcome]++
		if w.persona.ticket != "" && doc.Ticket != w.persona.ticket {
			w.fail(path, "the case lost its ticket: %q", doc.Ticket)
		}
	} else if m := stepNode.FindStringSubmatch(section); m != nil {
		node = m[1]
	}
	if n := w.tree.Node(node); n == nil {
		w.fail(path, "at %q, which the tree does not have", node)
		return
	} else {
		for field, values := range n.Assumes {
			if v, ok := w.facts[field]; !ok || !slices.Contains(values, v) {
				w.fail(path, "at %s, which assumes %s is %v, but it is %q", node, field, values, v)
			}
		}
	}
	for _, f := range falseUnless {
		if s := f.phrase.FindString(text); s != "" && !slices.Contains(f.holds, w.code) {
			w.fail(path, "at %s, the step says %q, which holds only for %v: %s", node, s, f.holds, text)
		}
	}
	w.passed[node] = true
	key := node
	if checked && !done {
		// The fix again, after its check found the site still failing.
		key += " after a check"
	}
	if done || w.explored[key] {
		return
	}
	w.explored[key] = true
	var choices []string
	for _, c := range stepChoice.FindAllStringSubmatch(section, -1) {
		if checked && c[1] == wizard.ChoiceFixed {
			continue // checking again finds the same
		}
		choices = append(choices, c[1])
	}
	if len(choices) == 0 {
		w.fail(path, "a dead end at %s: %s", node, text)
		return
	}
	if len(path) >= maxTruthDepth {
		w.fail(path, "no end after %d answers", len(path))
		return
	}
	if n := w.tree.Node(node); n.Kind == wizard.KindQuestion && slices.Contains(choices, "owner") {
		role := w.persona.role(choices)
		if !slices.Contains(choices, role) {
			w.fail(path, "the role question %s offers %s no answer (%v)", node, w.persona.name, choices)
			return
		}
		choices = []string{role}
	}
	if n := w.tree.Node(node); n.Kind == wizard.KindEscalate && w.persona.ticket != "" {
		if !strings.Contains(text, "Ticket: "+w.persona.ticket) {
			w.fail(path, "the summary at %s lacks the ticket: %s", node, text)
		}
	}
	for _, c := range choices {
		resp, body := w.a.do("POST", "/c/"+w.token+"/answer", map[string][]string{"node": {node}, "choice": {c}})
		if resp.StatusCode != http.StatusSeeOther {
			w.fail(path, "answering %s=%s: %d %.300s", node, c, resp.StatusCode, body)
			continue
		}
		w.explore(append(path[:len(path):len(path)], node+"="+c))
	}
}

type truthCase struct {
	Ticket  string
	Current struct {
		Node    string
		Done    bool
		Outcome wizard.Outcome
	}
	Probe struct{ Report *probes.Report }
}

func (a *testApp) apiCase(token string) truthCase {
	a.t.Helper()
	var doc truthCase
	_, body := a.do("GET", "/api/cases/"+token, nil)
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		a.t.Fatalf("case %s: %v: %.300s", token, err, body)
	}
	return doc
}

// truthApp is the app the matrix walks: several samples per check, so that
// a site failing one request in two is intermittent, as in issue 16.
func truthApp(t *testing.T, tweak ...func(*Config)) *testApp {
	return newApp(t, append([]func(*Config){func(c *Config) {
		// The checks of fixes on cases with a stored report (shop.example)
		// fail at once, without asking a DNS server.
		offline := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("no DNS in this test")
		}}
		c.Prober = probes.New(probes.Config{Timeout: 3 * time.Second, Samples: 5, SampleSpacing: time.Millisecond,
			AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Resolver: offline, DNSServers: []string{"127.0.0.1:1"}})
		// Every check of a fix counts against the client's limit.
		c.ProbesPerMinute, c.ProbeBurst = 100000, 100000
		// No watch checks during the walk: they would change the report.
		c.WatchIntervals = []time.Duration{time.Hour}
	}}, tweak...)...)
}

// truthCaseFor opens a case for code as p: from the zoo site when there is
// one (failing when the site does not give the verdict), else from a
// report built from the verdict table, stored as a probe run would.
func truthCaseFor(t *testing.T, a *testApp, code probes.Code, p persona, site string) string {
	if site != "" {
		token := a.createCase(site, p.ticket)
		a.waitProbed(token)
		if got := a.apiCase(token).Probe.Report; got == nil || got.Verdict.Code != code {
			t.Fatalf("the zoo site for %s gives %+v", code, got)
		}
		return token
	}
	ctx := context.Background()
	c := &wizard.Case{URL: "https://shop.example/", Host: "shop.example", RequesterIP: "203.0.113.7", Ticket: p.ticket, TreeVersion: a.srv.cfg.Tree.ID()}
	if err := a.db.CreateCase(ctx, c, a.srv.cfg.TreeSource); err != nil {
		t.Fatal(err)
	}
	run, err := a.db.QueueProbe(ctx, c.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	rep := &probes.Report{URL: c.URL, Host: c.Host, StartedAt: time.Now(),
		Verdict: probes.Verdict{Code: code, Layer: probes.LayerOf(code), Summary: probes.Explanation(code), Explanation: probes.Explanation(code)}}
	if err := a.db.FinishProbe(ctx, run.ID, rep); err != nil {
		t.Fatal(err)
	}
	return c.Token
}

// walkTruth walks code as p on a fresh case and returns the walk. browser
// is the result the visitor's browser posts ("answered", "unreachable"),
// or "" for none: the walk then asks the person instead. No agent looks.
func walkTruth(t *testing.T, a *testApp, code probes.Code, p persona, site, browser string) *truthWalk {
	w := &truthWalk{a: a, tree: a.srv.cfg.Tree, code: code, persona: p, outcomes: map[wizard.Outcome]int{},
		explored: map[string]bool{}, passed: map[string]bool{},
		token: truthCaseFor(t, a, code, p, site),
		facts: map[string]string{"verdict": string(code), "vantage.agent": "none",
			"vantage.browser":          map[string]string{"": "unknown", "answered": "reachable", "unreachable": "unreachable"}[browser],
			"setting.hosted_allowlist": map[bool]string{true: "yes", false: "no"}[a.srv.cfg.Settings.HostedAllowlist]}}
	if browser != "" {
		form := map[string][]string{"run": {a.latestRun(w.token)}, "result": {browser}, "ms": {"7"}}
		if resp, body := a.postView(w.token, form); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("posting the browser's %s: %d %s", browser, resp.StatusCode, body)
		}
	}
	w.explore(nil)
	return w
}

// TestNoStepContradictsTheVerdict walks every verdict as every persona
// without a browser's view, asking the person; then again with each view
// the browser can post, for the verdicts whose walks read it, and with the
// operator's allowlist setting, for those whose walks read that.
func TestNoStepContradictsTheVerdict(t *testing.T) {
	sites := map[probes.Code]string{}
	reads := map[string]map[probes.Code]bool{"vantage.browser": {}, "setting.hosted_allowlist": {}}
	var walks, steps, runs int
	var browsed []probes.Code
	matrix := func(a *testApp, code probes.Code, browser string) {
		for _, p := range personas {
			t.Run(fmt.Sprintf("allowlist=%v/browser=%s/%s/%s", a.srv.cfg.Settings.HostedAllowlist, cmp.Or(browser, "none"), code, p.name), func(t *testing.T) {
				w := walkTruth(t, a, code, p, sites[code], browser)
				for _, problem := range w.problems {
					t.Error(problem)
				}
				if w.walks == 0 {
					t.Errorf("no walk of %s as %s ended", code, p.name)
				}
				runs, walks, steps = runs+1, walks+w.walks, steps+w.steps
				for n := range w.passed {
					if node := a.srv.cfg.Tree.Node(n); node != nil && reads[node.Field] != nil {
						reads[node.Field][code] = true
					}
				}
			})
		}
	}
	a := truthApp(t)
	for _, code := range probes.Codes {
		sites[code] = zooSite(t, code)
		matrix(a, code, "")
	}
	// A browser is asked to reach loopback sites only: a case with a
	// stored report (shop.example) takes no view.
	for _, code := range probes.Codes {
		if reads["vantage.browser"][code] && sites[code] != "" {
			browsed = append(browsed, code)
			matrix(a, code, "answered")
			matrix(a, code, "unreachable")
		}
	}
	allow := truthApp(t, func(c *Config) { c.Settings.HostedAllowlist = true })
	for _, code := range probes.Codes {
		if reads["setting.hosted_allowlist"][code] {
			matrix(allow, code, "")
		}
	}
	zoo := 0
	for _, site := range sites {
		if site != "" {
			zoo++
		}
	}
	t.Logf("%d verdicts (%d from loopback sites) × %d personas, with the browser's two views for %v, with the allowlist for %v: %d walks, %d reaching an end, %d steps checked",
		len(probes.Codes), zoo, len(personas), browsed, slices.Sorted(maps.Keys(reads["setting.hosted_allowlist"])), runs, walks, steps)
	for field, codes := range reads {
		if len(codes) == 0 {
			t.Errorf("no walk passed a check of %s", field)
		}
	}
}

// TestTruthMatrixCatchesAContradiction: the matrix fails on a tree that
// sends an intermittent site's visitor, and a refused one, on to the steps
// issue 16 found them at, read as a stored tree (the strict check refuses
// it).
func TestTruthMatrixCatchesAContradiction(t *testing.T) {
	src := string(wizard.DefaultSource())
	for _, node := range []string{"fix-retry-intermittent", "fix-visitor-blocked"} {
		at := strings.Index(src, "  - id: "+node+"\n")
		i := at + strings.Index(src[at:], "    broken: escalate-support\n")
		if at < 0 || i < at {
			t.Fatalf("no %s in the built-in tree", node)
		}
		next := map[string]string{"fix-retry-intermittent": "scope", "fix-visitor-blocked": "fix-visitor-network"}[node]
		src = src[:i] + "    broken: " + next + "\n" + src[i+len("    broken: escalate-support\n"):]
	}
	if _, err := wizard.Parse("broken.yaml", []byte(src)); err == nil {
		t.Fatal("the strict check takes the broken tree")
	}
	broken, err := wizard.ParseStored("broken.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	a := truthApp(t, func(c *Config) { c.Tree, c.TreeSource = broken, []byte(src) })
	for _, tt := range []struct {
		code probes.Code
		says string
	}{
		{probes.Intermittent, "normally"},
		{probes.AccessBlocked, "works from gatecheck's server"},
	} {
		w := walkTruth(t, a, tt.code, personas[0], zooSite(t, tt.code), "")
		if !slices.ContainsFunc(w.problems, func(p string) bool { return strings.Contains(p, tt.says) }) {
			t.Errorf("%s as a visitor on the broken tree: problems %q, want one saying %q", tt.code, w.problems, tt.says)
		}
	}
}
