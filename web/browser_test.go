package web

// Browser tests: the real server on a loopback listener, driven by headless
// Chromium through the DevTools protocol (chromedp). Every page a journey
// visits is audited with axe-core (serious and critical violations fail)
// and tabbed through to prove each control is reachable by keyboard.
//
// Without Chromium the tests are skipped with the reason; with
// GATECHECK_BROWSER=require (as .ci/run sets) they fail instead.
// Screenshots go to t.ArtifactDir(): keep them with
//
//	go test ./web -run TestBrowser -artifacts -outputdir /tmp/gatecheck-shots

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// axeSource is axe-core, vendored from the npm registry (see
// testdata/axe/README.md).
//
//go:embed testdata/axe/axe.min.js
var axeSource string

// browserEnv set to "require" turns a missing Chromium into a failure.
const browserEnv = "GATECHECK_BROWSER"

// chromiumPath finds the browser: GATECHECK_CHROMIUM, else the usual names.
func chromiumPath() (string, error) {
	if p := os.Getenv("GATECHECK_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("GATECHECK_CHROMIUM: %w", err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium on PATH (looked for chromium, chromium-browser, google-chrome)")
}

// browser is one headless Chromium with a fresh profile.
type browser struct {
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := chromiumPath()
	if err != nil {
		if os.Getenv(browserEnv) == "require" {
			t.Fatalf("browser tests are required (%s=require) but: %v", browserEnv, err)
		}
		t.Skipf("SKIPPED: browser tests need Chromium: %v. Install it (Debian: apt-get install chromium) or set GATECHECK_CHROMIUM; .ci/run installs it.", err)
	}
	profile, err := os.MkdirTemp("", "gatecheck-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		// Chromium's helpers may still write to the profile for a moment.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return &browser{ctx: ctx}
}

// tab is a page in a browser context of its own: no cookies shared with
// any other tab, like a different person's browser.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func (b *browser) newTab(t *testing.T, base string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	// A bound on a tab's whole life, so that a hung page fails the test
	// instead of the run; generous, since the screenshot tour (a dozen
	// pages at two widths, each audited and tabbed through) takes two
	// minutes on a busy 2-core machine.
	ctx, cancelTimeout := context.WithTimeout(ctx, 6*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	tb := &tab{t: t, ctx: ctx, base: base}
	tb.do(chromedp.EmulateViewport(1280, 900))
	return tb
}

func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v (at %s)", err, tb.location())
	}
}

func (tb *tab) location() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// open navigates and returns the HTTP status of the page.
func (tb *tab) open(path string) int64 {
	tb.t.Helper()
	resp, err := chromedp.Run(tb.ctx, chromedp.NavigateResponse(tb.base+path))
	if err != nil {
		tb.t.Fatalf("open %s: %v", path, err)
	}
	return resp.Status
}

// click clicks what sel names and waits for the page it leads to.
func (tb *tab) click(sel string) int64 {
	tb.t.Helper()
	resp, err := chromedp.RunResponse(tb.ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		tb.t.Fatalf("click %s: %v (at %s)", sel, err, tb.location())
	}
	return resp.Status
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		tb.t.Fatalf("text of %s: %v (at %s)", sel, err, tb.location())
	}
	return strings.TrimSpace(s)
}

func (tb *tab) value(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("value of %s: %v", sel, err)
	}
	return s
}

func (tb *tab) eval(js string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

// bodyText is the page's visible text.
func (tb *tab) bodyText() string { return tb.text("body") }

// stepTitleJS reads the title of the wizard step a page shows: "" while
// it shows none (the checking page) or hides it.
const stepTitleJS = `(() => { const h = document.querySelector("#step-title"); return h && h.getClientRects().length ? h.textContent.trim() : ""; })()`

// pollTitle reads the step's title until ok takes it or d passes. The
// title is found and read in one evaluation, so that a page that reloads
// (its browser check stored, or the checking page moving on) cannot fail
// the read between the two; an evaluation a navigation cuts short (its
// execution context destroyed, the node gone) is tried again.
func (tb *tab) pollTitle(d time.Duration, ok func(string) bool) (string, bool) {
	var got string
	for deadline := time.Now().Add(d); time.Now().Before(deadline) && tb.ctx.Err() == nil; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](stepTitleJS))
		cancel()
		if err != nil {
			continue
		}
		if got = s; ok(s) {
			return s, true
		}
	}
	return got, false
}

// waitStep waits for a wizard step (the probing page moves on by itself)
// and returns its title.
func (tb *tab) waitStep() string {
	tb.t.Helper()
	title, ok := tb.pollTitle(90*time.Second, func(s string) bool { return s != "" })
	if !ok {
		tb.t.Fatalf("the page never shows a wizard step, at %s", tb.location())
	}
	return title
}

// waitTitle waits for the wizard step titled want: a page may move on by
// itself (its browser check stored, it reloads), so the title is polled
// across reloads rather than read once.
func (tb *tab) waitTitle(want string) {
	tb.t.Helper()
	if got, ok := tb.pollTitle(30*time.Second, func(s string) bool { return s == want }); !ok {
		tb.t.Fatalf("the page never shows the step %q; it shows %q at %s", want, got, tb.location())
	}
}

// answer clicks a choice of the current step.
func (tb *tab) answer(choice string) string {
	tb.t.Helper()
	tb.click(`button[name="choice"][value="` + choice + `"]`)
	return tb.waitStep()
}

// expect fails unless the page shows every string.
func (tb *tab) expect(what string, wants ...string) {
	tb.t.Helper()
	body := tb.bodyText()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			tb.t.Errorf("%s: the page does not show %q; it shows:\n%s", what, w, body)
		}
	}
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// audit runs axe-core on the page and fails on serious or critical
// violations, then checks that every control is reachable with Tab.
func (tb *tab) audit(page string) {
	tb.t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[chromedp.Void](axeSource)); err != nil {
		tb.t.Fatalf("%s: loading axe-core: %v", page, err)
	}
	const run = `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({
		id: v.id, impact: v.impact || "", help: v.help,
		nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary)})))`
	vs, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]axeViolation](run, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("%s: axe: %v", page, err)
	}
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			tb.t.Errorf("%s: axe %s violation %s (%s):\n  %s", page, v.Impact, v.ID, v.Help, strings.Join(v.Nodes, "\n  "))
		} else {
			tb.t.Logf("%s: axe %s: %s (%s)", page, v.Impact, v.ID, v.Help)
		}
	}
	tb.keyboardReach(page)
}

// keyboardReach tabs through the page and fails if a visible control is
// never focused.
func (tb *tab) keyboardReach(page string) {
	tb.t.Helper()
	const mark = `(() => {
		const sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"])';
		const els = Array.from(document.querySelectorAll(sel)).filter(e =>
			!e.disabled && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden" &&
			(!e.checkVisibility || e.checkVisibility()));
		if (document.activeElement) document.activeElement.blur();
		window.scrollTo(0, 0);
		return els.map((e, i) => {
			e.setAttribute("data-kbd", String(i));
			return e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " " + JSON.stringify((e.textContent || e.name || "").trim().slice(0, 40));
		});
	})()`
	controls, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]string](mark))
	if err != nil {
		tb.t.Fatalf("%s: listing controls: %v", page, err)
	}
	if len(controls) == 0 {
		tb.t.Errorf("%s: no controls at all", page)
		return
	}
	seen := make(map[string]bool)
	for i := 0; i < 2*len(controls)+5 && len(seen) < len(controls); i++ {
		tb.do(chromedp.KeyEvent(kb.Tab))
		// The focused control's id, and whether it shows that it has focus.
		got := tb.eval(`(() => {
			const e = document.activeElement;
			if (!e || !e.hasAttribute("data-kbd")) return "";
			const s = getComputedStyle(e);
			return e.getAttribute("data-kbd") + (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0 ? "" : " unmarked");
		})()`)
		id, unmarked := strings.CutSuffix(got, " unmarked")
		if id == "" {
			continue
		}
		if unmarked && !seen[id] {
			n, _ := strconv.Atoi(id)
			tb.t.Errorf("%s: %s has the keyboard focus but shows no focus outline", page, controls[n])
		}
		seen[id] = true
	}
	for i, c := range controls {
		if !seen[fmt.Sprint(i)] {
			tb.t.Errorf("%s: %s cannot be reached with the keyboard", page, c)
		}
	}
}

// pressUntil tabs until the focused element matches sel, then presses
// Enter and waits for the page it leads to: a keyboard user's click.
func (tb *tab) pressUntil(sel string) {
	tb.t.Helper()
	tb.pressUntilFocused(sel)
	if _, err := chromedp.RunResponse(tb.ctx, chromedp.KeyEvent(kb.Enter)); err != nil {
		tb.t.Fatalf("Enter on %s: %v", sel, err)
	}
}

// pressUntilFocused tabs until the element sel names has the focus.
func (tb *tab) pressUntilFocused(sel string) {
	tb.t.Helper()
	for range 60 {
		tb.do(chromedp.KeyEvent(kb.Tab))
		if tb.eval(`String(!!(document.activeElement && document.activeElement.matches(`+jsString(sel)+`)))`) == "true" {
			return
		}
	}
	tb.t.Fatalf("Tab never reaches %s on %s", sel, tb.location())
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// --- the faults the journeys meet, all on loopback ---------------------------

const nginx502Page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n"

// deadUpstreamGateway is a real reverse proxy, dressed as nginx, in front of
// a port nothing listens on.
func deadUpstreamGateway(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: dead})
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, nginx502Page)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx/1.24.0")
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/shop/"
}

// expiredCertSite serves https on 127.0.0.1 with a certificate that
// expired a month ago.
func expiredCertSite(t *testing.T) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "127.0.0.1", Organization: []string{"Expired Ltd"}},
		NotBefore:    time.Now().AddDate(-1, 0, 0),
		NotAfter:     time.Now().AddDate(0, -1, 0),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the prober's handshakes end abruptly
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// redirectTo sends every request to another origin.
func redirectTo(t *testing.T, to string) string {
	srv := httptest.NewServer(http.RedirectHandler(to, http.StatusFound))
	t.Cleanup(srv.Close)
	return srv.URL + "/old"
}

// blockedSite turns every visitor away, as IIS does for an address that is
// not on its allowlist.
func blockedSite(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "Microsoft-IIS/10.0")
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `<html><body><h1>403 - Forbidden: Access is denied.</h1><p>You do not have permission to view this directory or page using the credentials that you supplied.</p></body></html>`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/app"
}

// slowSite holds every request until released, to keep a case probing.
func slowSite(t *testing.T) (string, func()) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	var once bool
	free := func() {
		if !once {
			once = true
			close(release)
		}
	}
	t.Cleanup(func() { free(); srv.Close() })
	return srv.URL + "/slow", free
}

// browserApp is the app the browser tests use: loopback allowed, a hosted
// allowlist (so "IP blocked" leads to the allowlist escalation), and a
// staff member.
func browserApp(t *testing.T) *testApp {
	a := newApp(t, func(c *Config) {
		c.Prober = probes.New(probes.Config{Timeout: 20 * time.Second, Samples: 1, SampleSpacing: time.Millisecond,
			AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		c.Settings = wizard.Settings{Org: "Acme", Team: "CloudOps", TeamContact: "cloudops@acme.example",
			SupportContact: "helpdesk@acme.example", HostedAllowlist: true}
		loopbackHooks(c) // the webhook receiver is on loopback
	})
	hash, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	return a
}

// start types the address on the home page and submits it, then waits for
// the first step.
func (tb *tab) start(target, ticket string) string {
	tb.t.Helper()
	if st := tb.open("/"); st != 200 {
		tb.t.Fatalf("home: %d", st)
	}
	tb.audit("home")
	tb.do(chromedp.SendKeys(chromedp.CSS("#url"), target))
	if ticket != "" {
		tb.do(chromedp.SendKeys(chromedp.CSS("#ticket"), ticket))
	}
	tb.click(`form[action="/cases"] button[type="submit"]`)
	return tb.waitStep()
}

func (tb *tab) token() string {
	tb.t.Helper()
	link := tb.value("#case-link")
	i := strings.LastIndex(link, "/c/")
	if i < 0 {
		tb.t.Fatalf("case link %q", link)
	}
	return link[i+3:]
}

func TestBrowser(t *testing.T) {
	b := newBrowser(t)
	a := browserApp(t)
	gateway, expired, blocked := deadUpstreamGateway(t), expiredCertSite(t), blockedSite(t)
	reachable, nothing := healthySite(t).URL+"/", closedPort(t)
	redirecting := redirectTo(t, reachable)
	var gatewayLink, gatewayStep string

	t.Run("dead upstream behind nginx", func(t *testing.T) {
		tb := b.newTab(t, a.ts.URL)
		if title := tb.start(gateway, ""); title != "Who are you in this?" {
			t.Fatalf("first step = %q", title)
		}
		tb.expect("first step", "nginx", "The server behind the site's gateway fails")
		tb.audit("question (gateway)")
		// The evidence is there for those who open it.
		tb.do(chromedp.Click(chromedp.CSS(`details > summary`), chromedp.NodeVisible))
		tb.expect("evidence", "502")
		gatewayLink, gatewayStep = tb.value("#case-link"), "Back up before changing anything"
		if title := tb.answer("owner"); title != gatewayStep {
			t.Fatalf("after owner: %q", title)
		}
		// Keep this case here: the fresh browser below resumes it.
		gatewayLink = tb.value("#case-link")
	})

	t.Run("case link in a fresh browser", func(t *testing.T) {
		if gatewayLink == "" {
			t.Skip("needs the dead-upstream journey")
		}
		tb := b.newTab(t, a.ts.URL)
		if _, err := chromedp.Run(tb.ctx, chromedp.NavigateResponse(gatewayLink)); err != nil {
			t.Fatal(err)
		}
		if title := tb.waitStep(); title != gatewayStep {
			t.Fatalf("the case link opens %q, want %q", title, gatewayStep)
		}
		tb.expect("resumed case", "Who are you in this?", "I run or administer the site")
		tb.audit("resumed case")
		if title := tb.answer("done"); title != "Read the gateway's and the application's logs" {
			t.Fatalf("after backup: %q", title)
		}
		tb.expect("fix", "error.log")
		tb.audit("fix (logs)")
		// gatecheck checks the fix; the upstream is still dead.
		if title := tb.answer("fixed"); title != "Read the gateway's and the application's logs" {
			t.Fatalf("after fixed: %q", title)
		}
		tb.expect("fix checked", "still fails", "Go on to the next step", "It works for me now")
		tb.audit("fix (checked, still failing)")
		if title := tb.answer("works-for-me"); !strings.HasPrefix(title, "Solved") {
			t.Fatalf("after it works for me: %q", title)
		}
		tb.expect("end", "This case is solved.", "not confirmed by a check")
		tb.audit("end (resolved)")
		// Back on the first browser's link the case shows the same end.
		doc := a.waitProbed(tb.token())
		if cur, _ := doc["current"].(map[string]any); cur == nil || cur["done"] != true {
			t.Errorf("the API does not see the case ended: %v", doc["current"])
		}
	})

	t.Run("expired certificate", func(t *testing.T) {
		tb := b.newTab(t, a.ts.URL)
		if title := tb.start(expired, ""); title != "Who can fix the certificate?" {
			t.Fatalf("first step = %q", title)
		}
		tb.expect("certificate step", "expired")
		tb.audit("question (certificate)")
		if title := tb.answer("owner"); title != "Renew or replace the certificate" {
			t.Fatalf("after owner: %q", title)
		}
		tb.audit("fix (certificate)")
		// Change an earlier answer: the case follows the new path.
		tb.click(`.path a[href*="/at/role-cert"]`)
		tb.audit("revisit")
		if title := tb.answer("user"); !strings.HasPrefix(title, "Ask CloudOps") {
			t.Fatalf("after changing to user: %q", title)
		}
		tb.expect("escalation", "CloudOps", "cloudops@acme.example", "certificate")
		summary := tb.value("#summary")
		for _, want := range []string{expired, "127.0.0.1", "expired"} {
			if !strings.Contains(summary, want) {
				t.Errorf("escalation summary lacks %q:\n%s", want, summary)
			}
		}
		if hidden := tb.eval(`String(document.querySelector('[data-copy="summary"]').hidden)`); hidden != "false" {
			t.Errorf("with JavaScript the copy button should show (hidden=%s)", hidden)
		}
		tb.do(chromedp.Click(chromedp.CSS(`[data-copy="summary"]`), chromedp.NodeVisible))
		if _, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](`document.querySelector('[data-copy="summary"]').textContent === "Copied"`,
			chromedp.WithPollingTimeout(5*time.Second))); err != nil {
			t.Errorf("the copy button does not say it copied: %v", err)
		}
		tb.audit("escalation (certificate)")
	})

	t.Run("IP blocked, by keyboard only", func(t *testing.T) {
		tb := b.newTab(t, a.ts.URL)
		tb.open("/")
		tb.pressUntilFocused("#url")
		tb.do(chromedp.KeyEvent(blocked))
		tb.pressUntil(`form[action="/cases"] button[type="submit"]`)
		if title := tb.waitStep(); title != "Your IP address and the allowlist" {
			t.Fatalf("first step = %q", title)
		}
		tb.expect("allowlist step", "127.0.0.1", "CloudOps")
		tb.audit("question (allowlist)")
		tb.pressUntil(`button[value="all"]`)
		if title := tb.waitStep(); title != "Check your network, and confirm which addresses need adding" {
			t.Fatalf("after all: %q", title)
		}
		tb.audit("fix (allowlist)")
		tb.pressUntil(`button[value="broken"]`)
		if title := tb.waitStep(); title != "Ask CloudOps to update the allowlist" {
			t.Fatalf("after broken: %q", title)
		}
		summary := tb.value("#summary")
		for _, want := range []string{"127.0.0.1", blocked, "allowlist"} {
			if !strings.Contains(summary, want) {
				t.Errorf("allowlist summary lacks %q:\n%s", want, summary)
			}
		}
		tb.audit("escalation (allowlist)")
		// Back, by keyboard too.
		tb.pressUntil(`form[action$="/back"] button`)
		if title := tb.waitStep(); title != "Check your network, and confirm which addresses need adding" {
			t.Errorf("after Back: %q", title)
		}
	})

	t.Run("no JavaScript", func(t *testing.T) {
		tb := b.newTab(t, a.ts.URL)
		tb.do(chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
			_, err := cdp.Call(ctx, target, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}))
		tb.open("/")
		tb.do(chromedp.SendKeys(chromedp.CSS("#url"), gateway))
		tb.click(`form[action="/cases"] button[type="submit"]`)
		// The probing page refreshes itself (<noscript> meta refresh).
		if title := tb.waitStep(); title != "Who are you in this?" {
			t.Fatalf("first step without JavaScript = %q", title)
		}
		html, err := chromedp.Run(tb.ctx, chromedp.OuterHTML(chromedp.CSS(`[data-copy="case-link"]`)))
		if err != nil || !strings.Contains(html, "hidden") {
			t.Errorf("without JavaScript the copy button must stay hidden: %s %v", html, err)
		}
		if title := tb.answer("user"); title != "Wait a few minutes, then try again" {
			t.Fatalf("after user: %q", title)
		}
		tb.click(`form[action$="/back"] button`)
		if title := tb.waitStep(); title != "Who are you in this?" {
			t.Fatalf("after Back: %q", title)
		}
		if title := tb.answer("owner"); title != "Back up before changing anything" {
			t.Fatalf("after owner: %q", title)
		}
		tb.click(`.path a[href*="/at/role-gateway"]`)
		if title := tb.answer("user"); title != "Wait a few minutes, then try again" {
			t.Fatalf("after changing to user: %q", title)
		}
		// The check of the fix: the page refreshes itself until it is done.
		if title := tb.answer("fixed"); title != "Wait a few minutes, then try again" {
			t.Fatalf("after fixed: %q", title)
		}
		tb.expect("fix checked", "still fails")
		if title := tb.answer("works-for-me"); !strings.HasPrefix(title, "Solved") {
			t.Fatalf("after it works for me: %q", title)
		}
		// Without JavaScript the browser cannot check: the wizard asks.
		tb.open("/")
		tb.do(chromedp.SendKeys(chromedp.CSS("#url"), reachable))
		tb.click(`form[action="/cases"] button[type="submit"]`)
		if title := tb.waitStep(); title != "Does the page load in your browser now?" {
			t.Fatalf("a site that works from gatecheck, without JavaScript: %q", title)
		}
		if got := tb.text(`[data-testid="browser-view"]`); got != "Not checked: the check needs JavaScript" {
			t.Errorf("the browser's view reads %q", got)
		}
		if views := a.apiVantages(tb.token()); len(views) != 1 {
			t.Errorf("a view was stored without JavaScript: %+v", views)
		}
		if title := tb.answer("loads"); title != "Solved" {
			t.Errorf("after it loads: %q", title)
		}
	})

	// The browser's own check: it tries the site while the server probes,
	// posts what it saw, and the first step follows from both views.
	t.Run("browser check, answered", func(t *testing.T) {
		tb := b.newTab(t, a.ts.URL)
		tb.start(reachable, "")
		tb.waitTitle("Reload the page, then wait a minute")
		views := a.apiVantages(tb.token())
		if len(views) != 2 || views[1].From != "browser" || views[1].Reachable == nil || !*views[1].Reachable ||
			!strings.HasPrefix(views[1].Detail, "a server answered (after ") {
			t.Errorf("stored views: %+v", views)
		}
		if got := tb.text(`[data-testid="server-view"]`); got != "Answered 200 OK" {
			t.Errorf("the server's view reads %q", got)
		}
		if got := tb.text(`[data-testid="browser-view"]`); !strings.HasPrefix(got, "A server answered (after ") {
			t.Errorf("the browser's view reads %q", got)
		}
		tb.expect("answered", "Does your browser reach the site? Your browser gets an answer from the site too", "not what it answered")
		tb.audit("fix (browser answered)")
	})

	// A site that sends the browser to another origin: the page's policy
	// blocks the redirect, and the check still knows a server answered.
	t.Run("browser check, redirected elsewhere", func(t *testing.T) {
		tb := b.newTab(t, a.ts.URL)
		tb.start(redirecting, "")
		tb.waitTitle("Reload the page, then wait a minute")
		if got := tb.text(`[data-testid="browser-view"]`); !strings.HasPrefix(got, "A server answered with a redirect to another site") {
			t.Errorf("the browser's view reads %q", got)
		}
	})

	t.Run("browser check, could not connect", func(t *testing.T) {
		tb := b.newTab(t, a.ts.URL)
		tb.start(nothing, "")
		tb.waitTitle("Do you run the server?")
		views := a.apiVantages(tb.token())
		if len(views) != 2 || views[1].Reachable == nil || *views[1].Reachable || !strings.HasPrefix(views[1].Detail, "could not connect") {
			t.Errorf("stored views: %+v", views)
		}
		if got := tb.text(`[data-testid="browser-view"]`); !strings.HasPrefix(got, "Could not connect") {
			t.Errorf("the browser's view reads %q", got)
		}
		tb.expect("could not connect", "Your browser cannot connect either", "certificate warning looks the same as no connection")
		tb.audit("question (browser could not connect)")
	})

	var ticketCase string
	t.Run("prefilled ticket link", func(t *testing.T) {
		tb := b.newTab(t, a.ts.URL)
		tb.open("/start?url=" + url.QueryEscape(expired) + "&ticket=INC-4242")
		if got := tb.value("#url"); got != expired {
			t.Errorf("url field = %q, want %q", got, expired)
		}
		if got := tb.value("#ticket"); got != "INC-4242" {
			t.Errorf("ticket field = %q", got)
		}
		tb.audit("prefilled home")
		tb.click(`form[action="/cases"] button[type="submit"]`)
		if title := tb.waitStep(); title != "Who can fix the certificate?" {
			t.Fatalf("first step = %q", title)
		}
		tb.expect("case page", "ticket INC-4242")
		ticketCase = tb.token()
	})

	t.Run("staff", func(t *testing.T) {
		if ticketCase == "" {
			t.Skip("needs the ticket journey")
		}
		tb := b.newTab(t, a.ts.URL)
		tb.open("/staff")
		if loc := tb.location(); !strings.Contains(loc, "/staff/login") {
			t.Fatalf("signed-out /staff went to %s", loc)
		}
		tb.audit("sign-in")
		tb.do(chromedp.SendKeys(chromedp.CSS("#name"), "ann"), chromedp.SendKeys(chromedp.CSS("#password"), "wrong password"))
		tb.click(`form[action="/staff/login"] button`)
		tb.expect("bad sign-in", "do not match an account")
		tb.audit("sign-in error")
		tb.do(chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery"))
		tb.click(`form[action="/staff/login"] button`)
		if loc := tb.location(); !strings.HasSuffix(loc, "/staff") {
			t.Fatalf("after sign-in: %s", loc)
		}
		tb.expect("case list", "INC-4242", gateway, blocked, "Sign out ann")
		tb.audit("case list")
		tb.do(chromedp.SendKeys(chromedp.CSS("#q"), "INC-4242"))
		tb.click(`form[role="search"] button`)
		if n := tb.eval(`String(document.querySelectorAll("tbody tr").length)`); n != "1" {
			t.Errorf("search INC-4242 lists %s rows", n)
		}
		tb.audit("case list (search)")
		tb.click(`a[href="/staff/c/` + ticketCase + `"]`)
		tb.expect("staff case", expired, "Ticket INC-4242", "tls_expired", "Certificate chain")
		tb.audit("staff case")
		tb.do(chromedp.SendKeys(chromedp.CSS("#note"), "Called the customer <b>back</b>; CloudOps renewing."))
		tb.click(`form[action$="/notes"] button`)
		tb.expect("note added", "Called the customer <b>back</b>; CloudOps renewing.")
		tb.do(chromedp.SetValue(chromedp.CSS("select#status"), "escalated"))
		tb.click(`form[action$="/status"] button`)
		if got := tb.text("h1 + p .badge"); got != "escalated" {
			t.Errorf("status after setting = %q", got)
		}
		tb.audit("staff case (escalated)")
		tb.open("/staff?status=escalated")
		tb.expect("escalated list", "INC-4242")
		// An outage: three reports of one site behind a dead upstream make
		// an incident. (Every site here is on 127.0.0.1, so the notice
		// reaches every case page until it is cleared below.)
		var outage []string
		for i := range 3 {
			outage = append(outage, a.createCase(gateway, fmt.Sprintf("INC-50%d", i)))
		}
		for _, token := range outage {
			a.waitProbed(token)
		}
		tb.click(`nav a[href="/staff/incidents"]`)
		tb.expect("incidents", "Incidents", "127.0.0.1: the site's gateway (nginx) could not get an answer", "reports a minute", "reports in 1 hour: gateway_502 from nginx")
		tb.audit("incidents")
		tb.click(`a[href^="/staff/incidents/127.0.0.1/gateway_502"]`)
		tb.expect("incident", "127.0.0.1: the site's gateway (nginx) could not get an answer", "INC-500", "INC-502", "Every case at once")
		tb.audit("incident")
		tb.do(chromedp.SendKeys(chromedp.CSS("#notice"), "We know; the hosting team is on it, next update 15:00."))
		tb.click(`form[action$="/notice"] button`)
		tb.expect("notice published", "Notice published", "We know; the hosting team is on it, next update 15:00.")
		tb.audit("incident (notice)")
		tb.do(chromedp.SendKeys(chromedp.CSS("#bulk-note"), "Outage: the hosting team is restarting the pool."))
		tb.click(`form[action$="/notes"] button`)
		tb.expect("bulk note", "Note added to ")
		tb.audit("incident (bulk note)")
		visitor := b.newTab(t, a.ts.URL)
		visitor.open("/c/" + outage[0])
		visitor.waitStep()
		visitor.expect("case page with a notice", "The helpdesk knows about 127.0.0.1", "We know; the hosting team is on it", "other people reported 127.0.0.1 in the last hour")
		visitor.audit("case page with a notice")
		tb.click(`a[href="/staff/c/` + outage[1] + `"]`)
		tb.expect("case after the bulk note", "Note: Outage: the hosting team is restarting the pool.")
		tb.open("/staff/incidents/127.0.0.1/gateway_502")
		tb.click(`form[action$="/notice/clear"] button`)
		tb.expect("notice cleared", "Notice cleared.")
		// Webhooks: a destination (a receiver on loopback) added through
		// the form.
		hooks := newReceiver(t, "")
		tb.open("/staff/webhooks")
		tb.expect("webhooks", "Destinations", "Latest deliveries")
		tb.do(chromedp.SendKeys(chromedp.CSS("#webhook-url"), hooks.URL+"/gatecheck"))
		tb.click(`form[action="/staff/webhooks"] button`)
		tb.expect("webhook added", hooks.URL+"/gatecheck", "standard JSON")
		tb.audit("webhooks")
		// The admin pages: ann is an admin. A user added (the bad name
		// first: refused, the form kept), made an admin, removed.
		tb.click(`nav a[href="/staff/users"]`)
		tb.expect("users", "Users", "ann", "Add a user", "another admin can change your account")
		tb.audit("users")
		tb.do(chromedp.SendKeys(chromedp.CSS("#user-name"), "bo b"), chromedp.SendKeys(chromedp.CSS("#user-password"), "correct horse battery"))
		tb.click(`form[action="/staff/users"] button[type="submit"]`)
		tb.expect("users (bad name)", "A name is 1 to 64 characters without spaces.")
		if got := tb.value("#user-name"); got != "bo b" {
			t.Errorf("the refused name was not kept: %q", got)
		}
		tb.audit("users (bad name)")
		tb.do(chromedp.SetValue(chromedp.CSS("#user-name"), "bob"), chromedp.SendKeys(chromedp.CSS("#user-password"), "correct horse battery"))
		tb.click(`form[action="/staff/users"] button[type="submit"]`)
		tb.expect("user added", "Added bob.")
		tb.do(chromedp.SetValue(chromedp.CSS(`tr[data-user="bob"] select`), "admin"))
		tb.click(`tr[data-user="bob"] form[action="/staff/users/role"] button`)
		tb.expect("role changed", "bob is now an admin.")
		tb.audit("users (role changed)")
		tb.click(`tr[data-user="bob"] form[action="/staff/users/remove"] button`)
		// Removing asks first, on a page of its own.
		tb.expect("remove asked", "Remove the account bob?", "Cancel")
		tb.audit("remove confirmation")
		tb.click(`[data-testid="confirm-button"]`)
		tb.expect("user removed", "Removed bob")
		// An API key: shown once, working as a bearer token, revoked.
		tb.click(`nav a[href="/staff/apikeys"]`)
		tb.expect("API keys", "No API keys yet.", "Add an API key")
		tb.audit("API keys")
		tb.do(chromedp.SendKeys(chromedp.CSS("#key-name"), "servicedesk"))
		tb.click(`form[action="/staff/apikeys"] button`)
		tb.expect("key added", "The key for servicedesk", "it is not shown again")
		key := tb.value("#new-key")
		if !strings.HasPrefix(key, "gck_") {
			t.Errorf("the new key reads %q", key)
		}
		tb.audit("API keys (new key)")
		if resp, body := a.keyDo("GET", "/api/incidents", "Bearer "+key, ""); resp.StatusCode != 200 {
			t.Errorf("the key shown on the page: %d %.200s", resp.StatusCode, body)
		}
		tb.click(`tr[data-key="servicedesk"] form button`)
		tb.expect("revoke asked", "Revoke the API key servicedesk?")
		tb.click(`[data-testid="confirm-button"]`)
		tb.expect("key revoked", "Revoked the API key servicedesk")
		tb.audit("API keys (revoked)")
		// An agent's account sees no admin links and is refused the pages.
		hash, _ := HashPassword("correct horse battery")
		if _, err := a.db.CreateUser(context.Background(), "dan", hash, wizard.RoleAgent); err != nil {
			t.Fatal(err)
		}
		agent := b.newTab(t, a.ts.URL)
		agent.open("/staff/login")
		agent.do(chromedp.SendKeys(chromedp.CSS("#name"), "dan"), chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery"))
		agent.click(`form[action="/staff/login"] button`)
		agent.expect("case list (agent)", "Sign out dan")
		if got := agent.eval(`String(document.querySelectorAll('nav a[href="/staff/users"], nav a[href="/staff/apikeys"]').length)`); got != "0" {
			t.Errorf("an agent sees %s admin links", got)
		}
		if st := agent.open("/staff/users"); st != 403 {
			t.Errorf("an agent on /staff/users: %d", st)
		}
		agent.expect("users (agent)", "Only admins manage users, webhooks and API keys")
		agent.audit("users refused (agent)")
		tb.click(`form[action="/staff/logout"] button`)
		tb.open("/staff")
		if loc := tb.location(); !strings.Contains(loc, "/staff/login") {
			t.Errorf("after sign-out /staff went to %s", loc)
		}
	})

	t.Run("screenshots", func(t *testing.T) {
		slow, release := slowSite(t)
		question := a.createCase(gateway, "INC-2")
		a.waitProbed(question)
		escalation := a.createCase(blocked, "INC-3")
		a.waitProbed(escalation)
		a.answer(escalation, "allowlist-who", "some")
		a.answer(escalation, "allowlist-verify", "broken")
		// A case the helpdesk answered and resolved, and one a ticket
		// system opened (its page offers "I saw the error in this
		// browser").
		replied := a.createCase(gateway, "INC-4")
		a.waitProbed(replied)
		ctx := context.Background()
		if c, err := a.db.Case(ctx, replied); err != nil {
			t.Fatal(err)
		} else if _, err := a.db.AddReply(ctx, c.ID, "ann", "We restarted the shop's application server at 14:05. Please try again, and reply to INC-4 if it still fails."); err != nil {
			t.Fatal(err)
		} else if err := a.db.SetStatus(ctx, c.ID, wizard.StatusResolved, "ann"); err != nil {
			t.Fatal(err)
		}
		fromAPI := a.apiCreate("", fmt.Sprintf(`{"url": %q, "ticket": "INC-5"}`, gateway))
		a.waitProbed(fromAPI)
		staff := b.newTab(t, a.ts.URL)
		staff.open("/staff/login")
		staff.do(chromedp.SendKeys(chromedp.CSS("#name"), "ann"), chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery"))
		staff.click(`form[action="/staff/login"] button`)
		visitor := b.newTab(t, a.ts.URL)
		pages := []struct {
			name string
			tab  *tab
			path string
			wait string
		}{
			{"home", visitor, "/", "#url"},
			{"probing", visitor, "", "[data-events]"}, // a case made at each width
			{"question", visitor, "/c/" + question, "#step-title"},
			{"escalation", visitor, "/c/" + escalation, "#summary"},
			{"helpdesk-reply", visitor, "/c/" + replied, `[data-testid="helpdesk"]`},
			{"api-case", visitor, "/c/" + fromAPI, `[data-testid="claim-browser"]`},
			{"not-found", visitor, "/c/no-such-case", "h1"},
			{"staff-login", visitor, "/staff/login", "#password"},
			{"help", visitor, "/help", `[data-testid="support-contact"]`},
			{"staff-list", staff, "/staff", "table"},
			{"staff-case", staff, "/staff/c/" + escalation, "#note"},
			{"staff-incidents", staff, "/staff/incidents", "h1"},
			{"staff-incident", staff, "/staff/incidents/127.0.0.1/gateway_502", "#notice"},
			{"staff-users", staff, "/staff/users", "#user-name"},
			{"staff-apikeys", staff, "/staff/apikeys", "#key-name"},
		}
		dir := t.ArtifactDir()
		tour := time.Now()
		for _, size := range []struct {
			name string
			w, h int64
			opts []chromedp.EmulateViewportOption
		}{
			{"phone", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch}},
			{"desktop", 1280, 900, nil},
		} {
			for _, p := range pages {
				t.Logf("%s %s (%s into the tour)", size.name, p.name, time.Since(tour).Round(time.Millisecond))
				path := p.path
				if p.name == "probing" {
					// A case of its own for each width: a probe held by the
					// slow site ends at the prober's timeout, which a slow
					// (race-built) tour can pass before the second width.
					path = "/c/" + a.createCase(slow+"?width="+size.name, "INC-1")
					a.waitStarted(strings.TrimPrefix(path, "/c/"))
				}
				p.tab.do(chromedp.EmulateViewport(size.w, size.h, size.opts...))
				p.tab.open(path)
				p.tab.do(chromedp.WaitReady(chromedp.CSS(p.wait)))
				png, err := chromedp.Run(p.tab.ctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatalf("screenshot %s: %v", p.name, err)
				}
				if err := os.WriteFile(filepath.Join(dir, size.name+"-"+p.name+".png"), png, 0o644); err != nil {
					t.Fatal(err)
				}
				if p.name == "probing" {
					_, html := a.do("GET", path, nil)
					p.tab.liveProgressOnce(strings.Count(html, "<li>"))
				}
				if size.name == "phone" {
					// Nothing wider than the phone's screen.
					if w := p.tab.eval(`String(document.documentElement.scrollWidth)`); w != fmt.Sprint(size.w) {
						t.Errorf("%s at %d px scrolls sideways: %s px wide", p.name, size.w, w)
					}
				}
				p.tab.audit(size.name + " " + p.name)
			}
		}
		release()
		t.Logf("screenshots of %d pages at phone and desktop widths in %s", len(pages), dir)
	})
}

// liveProgressOnce waits for the probing page's event stream to replay the
// checks the server rendered and fails if any check shows twice.
func (tb *tab) liveProgressOnce(rendered int) {
	tb.t.Helper()
	if rendered == 0 {
		tb.t.Fatal("the probing page shows no checks yet")
	}
	n := fmt.Sprint(rendered)
	if _, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](`Number(document.querySelector("[data-events]").getAttribute("data-received") || 0) >= `+n,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		tb.t.Fatalf("the probing page's event stream did not replay %s checks: %v", n, err)
	}
	// The run is held at its HTTP check, so no new check can arrive.
	items := tb.eval(`Array.from(document.querySelectorAll("[data-checks] li")).map(li => li.textContent.replace(/\s+/g, " ").trim()).join("\n")`)
	if got := strings.Count(items, "\n") + 1; got != rendered {
		tb.t.Errorf("the probing page lists %d checks after the event stream replayed them, want %d:\n%s", got, rendered, items)
	}
}

// waitStarted waits until the case's probe is under way and its page lists
// the checks made so far (the slow site holds it at its HTTP check).
func (a *testApp) waitStarted(token string) {
	a.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, html := a.do("GET", "/c/"+token, nil); strings.Contains(html, "data-events") && strings.Count(html, "<li>") >= 3 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.t.Fatalf("the probe of case %s did not start", token)
}

// TestBrowserWaitStepSurvivesReloads: the helpers that wait for a step read
// its title while the page reloads under them, as a step page does once
// its browser check is stored, and never fail for it.
func TestBrowserWaitStepSurvivesReloads(t *testing.T) {
	b := newBrowser(t)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><title>reloading</title><h1 id="step-title"> Who are you in this? </h1>`+
			`<script>setTimeout(() => location.reload(), Math.random() * 20)</script>`)
	}))
	defer site.Close()
	tb := b.newTab(t, site.URL)
	tb.open("/")
	for range 25 {
		if title := tb.waitStep(); title != "Who are you in this?" {
			t.Fatalf("waitStep read %q", title)
		}
		tb.waitTitle("Who are you in this?")
	}
}
