package web

// Issue 16's journeys, tried as a person would: in headless Chromium, on a
// phone-sized screen, against loopback sites that fail as the issue found
// them failing. The pages' words are being reworded (issue 17), so the
// journeys find controls by form action and data-testid and judge the
// walk by facts: the node the case is at (from the API), the outcome,
// what the server stored, and the code's own table of phrases that state
// a finding (falseUnless, truth_test.go), held against the verdict.
//
//	GATECHECK_BROWSER=require go test ./web -run TestBrowserJourneys -artifacts -outputdir /tmp/journeys-shots

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/gatecheck/gatecheck/mailer"
	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// journeyApp is browserApp's setup (loopback allowed, Acme's CloudOps with
// an address, a hosted allowlist, ann an admin) with the journey's own
// changes after it.
func journeyApp(t *testing.T, more ...func(*Config)) *testApp {
	t.Helper()
	a := newApp(t, append([]func(*Config){func(c *Config) {
		c.Prober = probes.New(probes.Config{Timeout: 10 * time.Second, Samples: 1, SampleSpacing: time.Millisecond,
			AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		c.Settings = wizard.Settings{Org: "Acme", Team: "CloudOps", TeamContact: "cloudops@acme.example",
			SupportContact: "helpdesk@acme.example", HostedAllowlist: true}
	}}, more...)...)
	hash, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	return a
}

// journeyDoc is what the API says of a case, as far as the journeys judge it.
type journeyDoc struct {
	Status  wizard.Status
	Current struct {
		Node         string
		Done         bool
		Outcome      wizard.Outcome
		Confirmation *wizard.Confirmation
	}
	Steps []struct{ Node, Answer string }
	Probe struct {
		State  string
		Report *probes.Report
	}
	Vantages []apiVantage
}

func (a *testApp) journeyDoc(token string) journeyDoc {
	a.t.Helper()
	_, body := a.do("GET", "/api/cases/"+token, nil)
	var d journeyDoc
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		a.t.Fatalf("case %s: %v: %.300s", token, err, body)
	}
	return d
}

// journey is one person's walk in one tab: each step it meets is checked
// against the evidence, audited and photographed.
type journey struct {
	t     *testing.T
	a     *testApp
	tb    *tab
	name  string
	token string
	nodes []string // the nodes the walk was shown, in order
	shots int
}

var phone = []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch}

func newJourney(t *testing.T, b *browser, a *testApp, name string) *journey {
	tb := b.newTab(t, a.ts.URL)
	tb.do(chromedp.EmulateViewport(390, 844, phone...))
	return &journey{t: t, a: a, tb: tb, name: name}
}

// settledJS is true once the page shows a wizard step that will not move
// on by itself: no browser check under way, and none stored that reloads
// the page into the step it leads to.
const settledJS = `(() => {
	const h = document.querySelector("#step-title");
	if (document.readyState !== "complete" || !h || !h.getClientRects().length) return false;
	const v = document.querySelector("[data-vantage-post]");
	if (!v) return true;
	const stored = v.getAttribute("data-vantage-stored");
	return stored === "false" || (stored === "true" && !v.hasAttribute("data-vantage-reload"));
})()`

// settle waits for the page to show a step and stay on it (a step page
// reloads itself once its browser check is stored): an evaluation a
// reload cuts short is tried again.
func (j *journey) settle() {
	j.t.Helper()
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(j.tb.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](settledJS))
		cancel()
		if err == nil && ok {
			return
		}
	}
	j.t.Fatalf("the page never settles on a step, at %s", j.tb.location())
}

// start types target on the home page (by keys, as a person does) and
// waits for the first step.
func (j *journey) start(target string) string {
	j.t.Helper()
	if st := j.tb.open("/"); st != 200 {
		j.t.Fatalf("home: %d", st)
	}
	j.tb.do(chromedp.SendKeys(chromedp.CSS("#url"), target))
	j.tb.click(`form[action="/cases"] button[type="submit"]`)
	j.settle()
	j.token = j.tb.token()
	return j.step()
}

// answer clicks the choice of the step shown and returns the node it leads to.
func (j *journey) answer(choice string) string {
	j.t.Helper()
	j.tb.click(`form[action$="/answer"] button[name="choice"][value="` + choice + `"]`)
	j.settle()
	return j.step()
}

// facts are the values of the fields a node may assume, for the case as
// stored now.
func (j *journey) facts(d journeyDoc) map[string]string {
	f := map[string]string{"vantage.agent": "none", "vantage.browser": "unknown",
		"setting.hosted_allowlist": map[bool]string{true: "yes", false: "no"}[j.a.srv.cfg.Settings.HostedAllowlist]}
	if d.Probe.Report != nil {
		f["verdict"] = string(d.Probe.Report.Verdict.Code)
	}
	// A browser's view counts for the verdict it was taken under
	// (currentViews).
	found := map[int64]probes.Code{}
	for _, run := range j.a.runsOf(j.token) {
		if run.Report != nil {
			found[run.ID] = run.Report.Verdict.Code
		}
	}
	for _, v := range d.Vantages {
		if code, ok := found[v.Run]; ok && string(code) != f["verdict"] {
			continue
		}
		if v.From == "browser" && v.Reachable != nil {
			f["vantage.browser"] = map[bool]string{true: "reachable", false: "unreachable"}[*v.Reachable]
		}
	}
	return f
}

// visibleText is what the page shows, less what a check of a fix found
// (that is the new report's to say, not the walk's).
const visibleTextJS = `(() => {
	let s = document.body.innerText;
	for (const c of document.querySelectorAll('[data-testid="confirmation"]')) s = s.split(c.innerText).join(" ");
	return s.replace(/\s+/g, " ");
})()`

// step checks the step the page shows: the node the API says the case is
// at assumes nothing the evidence contradicts, the page states no finding
// that does not hold for the verdict (falseUnless), axe finds nothing
// serious and every control takes the keyboard; then it is photographed.
func (j *journey) step() string {
	j.t.Helper()
	d := j.a.journeyDoc(j.token)
	node := d.Current.Node
	facts := j.facts(d)
	n := j.a.srv.cfg.Tree.Node(node)
	if n == nil {
		j.t.Fatalf("the case is at %q, which the tree does not have", node)
	}
	for field, values := range n.Assumes {
		if v, ok := facts[field]; !ok || !slices.Contains(values, v) {
			j.t.Errorf("at %s, which assumes %s is one of %v, but it is %q", node, field, values, v)
		}
	}
	// The page shows the newest finished check (after a confirmed fix, the
	// check that found the site working), so its words are judged by that
	// check's verdict; the node's assumptions by the walk's.
	shown := probes.Code(facts["verdict"])
	var newest time.Time
	for _, r := range j.a.runsOf(j.token) {
		if r.Report != nil && !r.FinishedAt.IsZero() && !r.FinishedAt.Before(newest) {
			newest, shown = r.FinishedAt, r.Report.Verdict.Code
		}
	}
	// "So far" records what the walk found, judged by the walk's verdict.
	text := j.tb.eval(visibleTextJS)
	path := j.tb.eval(`Array.from(document.querySelectorAll("ul.path")).map(e => e.innerText).join(" ").replace(/\s+/g, " ")`)
	if path != "" {
		text = strings.ReplaceAll(text, path, " ")
	}
	for _, part := range []struct {
		text string
		code probes.Code
	}{{text, shown}, {path, probes.Code(facts["verdict"])}} {
		for _, f := range falseUnless {
			if s := f.phrase.FindString(part.text); s != "" && !slices.Contains(f.holds, part.code) {
				j.t.Errorf("at %s the page says %q, which holds only for %v; the verdict it speaks of is %s:\n%s", node, s, f.holds, part.code, part.text)
			}
		}
	}
	if seen := j.tb.now(`[data-testid="server-view"]`); seen != "" {
		code := shown
		if answeredFine.MatchString(seen) != (code == probes.Healthy) || (code == probes.Intermittent && oneAnswer.MatchString(seen)) {
			j.t.Errorf("at %s the server's view reads %q; the verdict is %s", node, seen, code)
		}
	}
	j.nodes = append(j.nodes, node)
	j.tb.audit(j.name + " " + node)
	j.shot(node)
	return node
}

// shot saves the page as it is, full length, into the test's artifacts.
func (j *journey) shot(what string) {
	j.t.Helper()
	png, err := chromedp.Run(j.tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		j.t.Fatalf("screenshot of %s: %v", what, err)
	}
	j.shots++
	name := fmt.Sprintf("%s-%02d-%s.png", strings.ReplaceAll(j.name, " ", "-"), j.shots, what)
	if err := os.WriteFile(filepath.Join(j.t.ArtifactDir(), name), png, 0o644); err != nil {
		j.t.Fatal(err)
	}
}

// desktop photographs the page at 1280×900 too, then goes back to the phone.
func (j *journey) desktop(what string) {
	j.t.Helper()
	j.tb.do(chromedp.EmulateViewport(1280, 900))
	j.shot("desktop-" + what)
	j.tb.do(chromedp.EmulateViewport(390, 844, phone...))
}

// reload opens the case's page again, as a person coming back to it.
func (j *journey) reload() {
	j.t.Helper()
	j.tb.open("/c/" + j.token)
	j.settle()
}

// now reads what the element sel names shows (a form field's value), at
// once: "" when the page has no such element, where tab.text would wait.
func (tb *tab) now(sel string) string {
	tb.t.Helper()
	return tb.eval(`(() => { const e = document.querySelector(` + jsString(sel) + `);
		return e ? (e.tagName === "TEXTAREA" || e.tagName === "INPUT" ? e.value : e.innerText).trim() : ""; })()`)
}

// signedIn is a tab of its own with ann signed in.
func signedIn(t *testing.T, b *browser, a *testApp) *tab {
	t.Helper()
	tb := b.newTab(t, a.ts.URL)
	tb.do(chromedp.EmulateViewport(390, 844, phone...))
	tb.open("/staff/login")
	tb.do(chromedp.SendKeys(chromedp.CSS("#name"), "ann"), chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery"))
	tb.click(`form[action="/staff/login"] button`)
	if loc := tb.location(); !strings.HasSuffix(loc, "/staff") {
		t.Fatalf("after sign-in: %s", loc)
	}
	return tb
}

// portOfURL returns the port of a loopback site's URL.
func portOfURL(t *testing.T, raw string) int {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return portOf(t, u.Host)
}

func TestBrowserJourneys(t *testing.T) {
	b := newBrowser(t)
	began := time.Now()
	defer func() { t.Logf("the journeys took %s", time.Since(began).Round(time.Millisecond)) }()

	// 1. nginx answers 403. With the operator's hosted allowlist the walk
	// asks who is affected and ends at the allowlist's escalation, naming
	// the address the visitor connects from; without it the visitor says
	// they only use the site, and is told the site turns gatecheck away
	// too. Neither walk says the site works from gatecheck's server.
	t.Run("refused by nginx", func(t *testing.T) {
		const visitorIP = "198.51.100.23"
		site := zooSite(t, probes.AccessBlocked)
		for _, hosted := range []bool{true, false} {
			a := journeyApp(t, func(c *Config) {
				c.Settings.HostedAllowlist = hosted
				// The visitor comes through a proxy on loopback that says
				// who they are, so that their address is not the site's.
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			})
			j := newJourney(t, b, a, fmt.Sprintf("refused-allowlist=%v", hosted))
			j.tb.do(chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
				_, err := cdp.Call(ctx, target, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"X-Forwarded-For": visitorIP}})
				return err
			}))
			j.start(site)
			if d := a.journeyDoc(j.token); d.Probe.Report == nil || d.Probe.Report.Verdict.Code != probes.AccessBlocked {
				t.Fatalf("the 403 site is not access_blocked: %+v", d.Probe.Report)
			}
			if !hosted {
				// "No, I am using it": the role question's choice for
				// someone who does not run the site.
				if node := j.nodes[len(j.nodes)-1]; a.srv.cfg.Tree.Node(node).Kind != wizard.KindQuestion {
					t.Fatalf("without an allowlist the first step is %s, not the question who they are", node)
				}
				j.answer("user")
				j.answer(wizard.ChoiceBroken)
				if d := a.journeyDoc(j.token); a.srv.cfg.Tree.Node(d.Current.Node).Kind != wizard.KindEscalate {
					t.Errorf("still refused, the visitor is at %s, not a hand-off", d.Current.Node)
				}
				if summary := j.tb.now("#summary"); !strings.Contains(summary, visitorIP) {
					t.Errorf("the hand-off's summary does not name the visitor's address %s:\n%s", visitorIP, summary)
				}
				j.desktop("end")
				continue
			}
			j.answer("some")
			j.answer(wizard.ChoiceBroken)
			d := a.journeyDoc(j.token)
			if d.Current.Node != "escalate-allowlist" {
				t.Fatalf("the walk ends at %s, want the allowlist's escalation; walked %v", d.Current.Node, j.nodes)
			}
			if summary := j.tb.now("#summary"); !strings.Contains(summary, visitorIP) || !strings.Contains(summary, site) {
				t.Errorf("the allowlist's summary does not name the visitor's address %s and %s:\n%s", visitorIP, site, summary)
			}
			if c, err := a.db.Case(context.Background(), j.token); err != nil || c.RequesterIP != visitorIP {
				t.Errorf("the case stored the visitor as %q (%v)", c.RequesterIP, err)
			}
			j.desktop("escalation")
		}
	})

	// 2. Every other answer is nginx's 502: intermittent, and no step
	// says gatecheck reached the site without trouble.
	t.Run("intermittent", func(t *testing.T) {
		a := journeyApp(t, func(c *Config) {
			c.Prober = probes.New(probes.Config{Timeout: 10 * time.Second, Samples: 6, SampleSpacing: time.Millisecond,
				AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		})
		j := newJourney(t, b, a, "intermittent")
		j.start(zooSite(t, probes.Intermittent))
		if d := a.journeyDoc(j.token); d.Probe.Report == nil || d.Probe.Report.Verdict.Code != probes.Intermittent {
			t.Fatalf("the site failing one answer in two is not intermittent: %+v", d.Probe.Report)
		}
		j.answer("user")
		j.answer(wizard.ChoiceBroken)
		if d := a.journeyDoc(j.token); a.srv.cfg.Tree.Node(d.Current.Node).Kind != wizard.KindEscalate {
			t.Errorf("the visitor still failing is at %s, not a hand-off; walked %v", d.Current.Node, j.nodes)
		}
		j.desktop("end")
	})

	// 3. "127.0.0.1" typed bare: http answers 403, nothing listens for
	// https. The walk is the allowlist's, never the https binding's.
	t.Run("bare name", func(t *testing.T) {
		site := zooSite(t, probes.AccessBlocked)
		httpPort := portOfURL(t, site)
		a := journeyApp(t, withPorts(t, httpPort, 0, nil))
		j := newJourney(t, b, a, "bare")
		j.start("127.0.0.1")
		d := a.journeyDoc(j.token)
		if d.Probe.Report == nil || !d.Probe.Report.NoScheme || d.Probe.Report.Verdict.Code != probes.AccessBlocked {
			t.Fatalf("the bare name's report: %+v", d.Probe.Report)
		}
		j.answer("some")
		j.answer(wizard.ChoiceBroken)
		// The https path: the node the probe's https choice leads to, and
		// every node only it reaches, read from the tree.
		https := httpsPath(a.srv.cfg.Tree)
		if len(https) == 0 {
			t.Fatal("the tree has no https path to stay out of")
		}
		d = a.journeyDoc(j.token)
		walked := append([]string{}, j.nodes...)
		for _, s := range d.Steps {
			walked = append(walked, s.Node)
		}
		for _, n := range walked {
			if https[n] {
				t.Errorf("the walk of a bare name whose http answers 403 went to %s (the https binding's path): %v", n, walked)
			}
		}
		if d.Current.Node != "escalate-allowlist" {
			t.Errorf("the bare name's walk ends at %s", d.Current.Node)
		}
		if summary := j.tb.now("#summary"); !strings.Contains(summary, "http://127.0.0.1:"+strconv.Itoa(httpPort)+"/") {
			t.Errorf("the summary does not name the http address the browser showed:\n%s", summary)
		}
		j.desktop("escalation")
	})

	// 4. "This fixed it" while the site still fails: gatecheck checks,
	// says it still fails and offers the next step; the case stays open.
	// Mended, the second "this fixed it" ends the case solved, confirmed
	// by the check.
	t.Run("fixed, checked", func(t *testing.T) {
		a := journeyApp(t)
		site := newFixSite(t)
		j := newJourney(t, b, a, "fixed")
		j.start(site.URL + "/")
		j.answer("user")
		at := j.nodes[len(j.nodes)-1]
		if n := a.srv.cfg.Tree.Node(at); n.Kind != wizard.KindFix || n.Confirm != "probe" {
			t.Fatalf("the visitor is at %s, not a fix gatecheck checks", at)
		}
		runs := len(a.runsOf(j.token))
		if node := j.answer(wizard.ChoiceFixed); node != at {
			t.Fatalf("after this fixed it on a broken site: at %s, want %s still", node, at)
		}
		d := a.journeyDoc(j.token)
		if d.Status != wizard.StatusOpen || d.Current.Done || d.Current.Confirmation == nil || d.Current.Confirmation.Confirmed {
			t.Errorf("after a failing check: status %s, done %v, confirmation %+v", d.Status, d.Current.Done, d.Current.Confirmation)
		}
		if n := len(a.runsOf(j.token)); n != runs+1 {
			t.Errorf("%d probe runs after the check, want %d", n, runs+1)
		}
		// What the check found is on the page, not marked as confirming
		// the fix, and names what still fails.
		// (in the visitor's words: the finding's headline).
		still := wizard.VisitorWords(d.Probe.Report, time.Now()).Headline
		if got := j.tb.now(`[data-testid="confirmation"]:not([data-confirmed])`); !strings.Contains(strings.ToLower(got), strings.ToLower(still)) {
			t.Errorf("the check's result does not say what still fails (%q): %q", still, got)
		}
		if n := j.tb.eval(`String(document.querySelectorAll('form[action$="/answer"] button[value="broken"]').length)`); n != "1" {
			t.Errorf("the next step is not offered after the failing check (%s buttons)", n)
		}
		j.desktop("still-failing")
		site.fixed.Store(true)
		end := j.answer(wizard.ChoiceFixed)
		d = a.journeyDoc(j.token)
		if n := a.srv.cfg.Tree.Node(end); n.Kind != wizard.KindEnd || d.Status != wizard.StatusResolved || d.Current.Outcome != wizard.Resolved {
			t.Errorf("after the mend: at %s, status %s, outcome %s", end, d.Status, d.Current.Outcome)
		}
		if c := d.Current.Confirmation; c == nil || !c.Confirmed || c.Checked.IsZero() {
			t.Errorf("the solved case is not confirmed by a check: %+v", c)
		}
		if v := j.tb.eval(`String(document.querySelector('[data-testid="confirmation"]')?.hasAttribute("data-confirmed"))`); v != "true" {
			t.Errorf("the page does not show the confirmed check (%s)", v)
		}
		j.desktop("solved")
	})

	// 5. The reporter's browser checks the site and its view is stored.
	// Then the site goes down, staff re-run the probes (a run no browser
	// has looked at yet), and staff (signed in) and another visitor open
	// the case link: neither is asked to check, and the stored views stay
	// the reporter's. The reporter, back on the link, is asked again.
	t.Run("case link opened by others", func(t *testing.T) {
		a := journeyApp(t)
		site := healthySite(t)
		j := newJourney(t, b, a, "reporter")
		j.start(site.URL + "/")
		browserViews := func() []apiVantage {
			var out []apiVantage
			for _, v := range a.journeyDoc(j.token).Vantages {
				if v.From == "browser" {
					out = append(out, v)
				}
			}
			return out
		}
		waitFor(t, "the reporter's browser view", func() bool { return len(browserViews()) == 1 })
		view := browserViews()[0]
		if view.Reachable == nil || !*view.Reachable {
			t.Fatalf("the reporter's browser did not reach the healthy site: %+v", view)
		}
		site.Close() // from now on a browser that checks cannot connect

		staff := signedIn(t, b, a)
		staff.open("/staff/c/" + j.token)
		staff.click(`form[action$="/probe"] button`)
		waitFor(t, "the staff's re-run", func() bool {
			runs := a.runsOf(j.token)
			return len(runs) == 2 && runs[1].State == wizard.ProbeDone
		})
		staff.audit("staff case (re-run)")
		other := newJourney(t, b, a, "other-visitor")
		other.token = j.token
		for name, tb := range map[string]*tab{"staff": staff, "another visitor": other.tb} {
			if st := tb.open("/c/" + j.token); st != 200 {
				t.Fatalf("%s opening the case link: %d", name, st)
			}
			tb.waitStep()
			if n := tb.eval(`String(document.querySelectorAll("[data-vantage-url]").length)`); n != "0" {
				t.Errorf("%s's browser is asked to check the site", name)
			}
			tb.audit(name + " on the case link")
		}
		other.shot("case-link")
		// The reporter's view was of the site up: the walk does not pair
		// it with the site down, and asks (TestBrowserViewOfAnEarlierFinding).
		d := a.journeyDoc(j.token)
		check := browserCheckFor(t, a.srv.cfg.Tree, d.Probe.Report.Verdict.Code)
		if want := check.Choice("unknown").Next; d.Current.Node != want {
			t.Errorf("after the re-run, with only the view of the site as it was, the walk is at %s, want %s", d.Current.Node, want)
		}
		// Time for a browser that was asked to check, to post what it saw.
		time.Sleep(2 * time.Second)
		if views := browserViews(); len(views) != 1 || !views[0].At.Equal(view.At) || views[0].Reachable == nil || !*views[0].Reachable {
			t.Errorf("the stored browser views after others opened the link: %+v; the reporter's was %+v", views, view)
		}
		// The reporter's browser is still the one asked, and sees the site down.
		j.reload()
		rerun := a.runsOf(j.token)[1].ID
		waitFor(t, "the reporter's view of the re-run", func() bool {
			views := browserViews()
			return len(views) > 0 && views[len(views)-1].Run == rerun
		})
		if views := browserViews(); views[len(views)-1].Reachable == nil || *views[len(views)-1].Reachable {
			t.Errorf("the reporter's view of the re-run, with the site down: %+v", views)
		}
		j.settle()
		j.step()
		if want := check.Choice("unreachable").Next; a.journeyDoc(j.token).Current.Node != want {
			t.Errorf("after the reporter's browser could not connect either, the walk is at %s, want %s", a.journeyDoc(j.token).Current.Node, want)
		}
	})

	// 6. "Send to CloudOps" with a real SMTP server on loopback: sent,
	// arrived with the case link and what gatecheck found, on the page
	// and on the staff timeline. Then a server refusing (451), coming
	// back: delivered once.
	t.Run("send by mail", func(t *testing.T) {
		smtpd := newSMTPServer(t, nil)
		m, err := mailer.New(smtpd.url(), "gatecheck <gatecheck@acme.example>")
		if err != nil {
			t.Fatal(err)
		}
		a := journeyApp(t, func(c *Config) {
			c.Mailer, c.MailTick = m, 20*time.Millisecond
			c.MailBackoff = []time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second}
		})
		site := zooSite(t, probes.AccessBlocked)
		ctx := context.Background()
		toSend := func(name string) *journey {
			j := newJourney(t, b, a, name)
			j.start(site)
			j.answer("some")
			if node := j.answer(wizard.ChoiceBroken); a.srv.cfg.Tree.Node(node).Kind != wizard.KindEscalate {
				t.Fatalf("not at an escalation: %s", node)
			}
			return j
		}
		mailsOf := func(token string) []*wizard.Mail {
			ms, err := a.db.CaseMails(ctx, mustCase(t, a.db, token).ID)
			if err != nil {
				t.Fatal(err)
			}
			return ms
		}
		arrivedFor := func(token string) []gotMail {
			var got []gotMail
			for _, g := range smtpd.mails() {
				if strings.Contains(g.body, "/c/"+token) {
					got = append(got, g)
				}
			}
			return got
		}

		j := toSend("send")
		found := a.journeyDoc(j.token).Probe.Report.Verdict.Summary
		j.tb.click(`form[action$="/send"] [data-testid="send-mail"]`)
		j.settle()
		waitFor(t, "the e-mail", func() bool { return len(arrivedFor(j.token)) == 1 })
		got := arrivedFor(j.token)[0]
		for _, want := range []string{"Case: " + a.ts.URL + "/c/" + j.token, "What gatecheck found: " + found, "127.0.0.1"} {
			if !strings.Contains(got.body, want) {
				t.Errorf("the e-mail lacks %q:\n%s", want, got.body)
			}
		}
		if !slices.Equal(got.to, []string{"cloudops@acme.example"}) {
			t.Errorf("the e-mail went to %v", got.to)
		}
		waitFor(t, "the delivery recorded", func() bool { ms := mailsOf(j.token); return len(ms) == 1 && ms[0].State == wizard.DeliveryDelivered })
		j.reload()
		j.step()
		if n := j.tb.eval(`String(document.querySelectorAll('[data-testid="mails"] [data-state="delivered"]').length)`); n != "1" {
			t.Errorf("the case page shows %s delivered e-mails", n)
		}
		if d := a.journeyDoc(j.token); d.Status != wizard.StatusEscalated {
			t.Errorf("after sending, the case is %s", d.Status)
		}
		j.desktop("sent")
		staff := signedIn(t, b, a)
		staff.open("/staff/c/" + j.token)
		staff.expect("the staff timeline", "queued by e-mail to CloudOps", "cloudops@acme.example", "taken by the mail server (attempt 1)")
		staff.audit("staff case (mail sent)")

		// The mail server refuses, then comes back.
		smtpd.set("rcpt", 451)
		r := toSend("send-refused")
		r.tb.click(`form[action$="/send"] [data-testid="send-mail"]`)
		r.settle()
		waitFor(t, "the refused attempt recorded", func() bool { ms := mailsOf(r.token); return len(ms) == 1 && ms[0].Attempts >= 1 })
		r.reload()
		if n := r.tb.eval(`String(document.querySelectorAll('[data-testid="mails"] [data-state="pending"]').length)`); n != "1" {
			t.Errorf("while the server refuses, the case page shows %s waiting e-mails", n)
		}
		r.step()
		smtpd.set("", 0)
		waitFor(t, "the e-mail after the server came back", func() bool { return len(arrivedFor(r.token)) == 1 })
		waitFor(t, "the delivery recorded", func() bool { ms := mailsOf(r.token); return len(ms) == 1 && ms[0].State == wizard.DeliveryDelivered })
		time.Sleep(500 * time.Millisecond)
		if n := len(arrivedFor(r.token)); n != 1 {
			t.Errorf("the summary arrived %d times", n)
		}
		if ms := mailsOf(r.token); ms[0].Attempts < 2 {
			t.Errorf("delivered after %d attempts; the first was refused", ms[0].Attempts)
		}
		r.reload()
		if n := r.tb.eval(`String(document.querySelectorAll('[data-testid="mails"] [data-state="delivered"]').length)`); n != "1" {
			t.Errorf("after the server came back, the case page shows %s delivered e-mails", n)
		}
		r.step()
	})

	// 7. Staff reply in their page and resolve the case; the visitor's
	// page shows the reply from the helpdesk and when they resolved it.
	t.Run("helpdesk reply", func(t *testing.T) {
		a := journeyApp(t)
		j := newJourney(t, b, a, "reply")
		j.start(deadUpstreamGateway(t))
		if n := j.tb.eval(`String(document.querySelectorAll('[data-testid="helpdesk"]').length)`); n != "0" {
			t.Errorf("a word from the helpdesk before it said anything")
		}
		staff := signedIn(t, b, a)
		staff.open("/staff/c/" + j.token)
		const reply = "We restarted the shop's application server. Please try again."
		staff.do(chromedp.SendKeys(chromedp.CSS("#note"), reply))
		staff.click(`form[action$="/notes"] [data-testid="send-reply"]`)
		if got := staff.now(`[data-testid="reply"]`); !strings.Contains(got, reply) {
			t.Errorf("the staff page shows the reply as %q", got)
		}
		staff.audit("staff case (reply)")
		j.reload()
		if got := j.tb.now(`[data-testid="helpdesk"] [data-testid="reply"]`); !strings.Contains(got, reply) {
			t.Errorf("the visitor's page shows the reply as %q", got)
		}
		j.step()
		staff.do(chromedp.SetValue(chromedp.CSS("select#status"), string(wizard.StatusResolved)))
		staff.click(`form[action$="/status"] button`)
		changes, err := a.db.StatusChanges(context.Background(), mustCase(t, a.db, j.token).ID)
		if err != nil || len(changes) == 0 || changes[len(changes)-1].To != wizard.StatusResolved || changes[len(changes)-1].Actor != "ann" {
			t.Fatalf("the status changes stored: %+v %v", changes, err)
		}
		j.reload()
		want := "Resolved by the helpdesk at " + changes[len(changes)-1].At.UTC().Format("15:04")
		if got := j.tb.now(`[data-testid="helpdesk-status"]`); !strings.HasPrefix(got, want) {
			t.Errorf("the visitor's page says %q, want %q", got, want)
		}
		if !regexp.MustCompile(`at \d\d:\d\d`).MatchString(j.tb.now(`[data-testid="helpdesk-status"]`)) {
			t.Errorf("no time of day in the status")
		}
		j.step()
		j.desktop("resolved")
	})
}

// httpsPath is every node the probe's choice for https_unavailable leads
// to that no other choice of the probe reaches: the https binding's path.
func httpsPath(tree *wizard.Tree) map[string]bool {
	start := tree.Node(tree.Start)
	reach := func(from string, into map[string]bool) {
		var walk func(string)
		walk = func(id string) {
			n := tree.Node(id)
			if id == "" || n == nil || into[id] {
				return
			}
			into[id] = true
			for _, c := range n.Choices {
				walk(c.Next)
			}
			walk(n.Fixed)
			walk(n.Broken)
			walk(n.Next)
		}
		walk(from)
	}
	https, others := map[string]bool{}, map[string]bool{}
	for _, c := range start.Choices {
		if slices.Contains(c.When, string(probes.HTTPSUnavailable)) {
			reach(c.Next, https)
		} else {
			reach(c.Next, others)
		}
	}
	for id := range others {
		delete(https, id)
	}
	return https
}
