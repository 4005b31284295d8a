package web

// Issue 17's "Done when", in a real browser: for every verdict the zoo
// produces, a visitor on a 390×844 phone sees each step's question and its
// first answer on the first screen, and reads no verdict code or raw error
// string anywhere on the page.

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// phoneScreen is the screen the visitor pages are made for first.
var phoneScreen = struct {
	w, h int64
	opts []chromedp.EmulateViewportOption
}{390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch}}

// rawErrors are what program errors look like: Go's net, tls and x509
// messages, and machine time stamps. None belongs in a visitor's view.
var rawErrors = []*regexp.Regexp{
	regexp.MustCompile(`x509:`),
	regexp.MustCompile(`tls:`),
	regexp.MustCompile(`dial tcp`),
	regexp.MustCompile(`i/o timeout`),
	regexp.MustCompile(`context deadline`),
	regexp.MustCompile(`remote error`),
	regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`), // RFC 3339
}

// codePatterns match each verdict code of the table as a visitor would
// see one leak: as a word. A code that is also an ordinary word
// ("healthy", "intermittent") is matched where it names a verdict.
func codePatterns() map[probes.Code]*regexp.Regexp {
	out := map[probes.Code]*regexp.Regexp{}
	for _, c := range probes.Codes {
		q := regexp.QuoteMeta(string(c))
		if strings.Contains(string(c), "_") {
			out[c] = regexp.MustCompile(`\b` + q + `\b`)
		} else {
			out[c] = regexp.MustCompile(`(?i)verdict\W+(is\W+)?` + q + `\b|\b` + q + `\)|\(` + q + `\b`)
		}
	}
	return out
}

// unplainWords lists the verdict codes and raw error strings in text, with
// a little context each.
func unplainWords(text string) []string {
	var found []string
	quote := func(loc []int) string {
		from, to := max(0, loc[0]-40), min(len(text), loc[1]+40)
		return fmt.Sprintf("%q", strings.ReplaceAll(text[from:to], "\n", " "))
	}
	for c, re := range codePatterns() {
		if loc := re.FindStringIndex(text); loc != nil {
			found = append(found, "verdict code "+string(c)+" in "+quote(loc))
		}
	}
	for _, re := range rawErrors {
		if loc := re.FindStringIndex(text); loc != nil {
			found = append(found, "raw error "+re.String()+" in "+quote(loc))
		}
	}
	return found
}

// firstScreenJS measures what a visitor sees on arriving, before any
// scrolling: where the question and its first answer end, and the screen's
// height.
const firstScreenJS = `(() => {
	const h = document.querySelector("#step-title");
	const b = document.querySelector('section[aria-labelledby="step-title"] form.choices button[name="choice"]');
	const box = e => e ? Math.round(e.getBoundingClientRect().bottom + window.scrollY) : -1;
	return {title: box(h), answer: box(b), answerText: b ? b.textContent.trim() : "", screen: window.innerHeight, scrolled: window.scrollY};
})()`

type firstScreen struct {
	Title      int    `json:"title"`
	Answer     int    `json:"answer"`
	AnswerText string `json:"answerText"`
	Screen     int    `json:"screen"`
	Scrolled   int    `json:"scrolled"`
}

// maxPhoneSteps bounds a walk: the longest, through every fix a tree
// offers a site owner, is about twenty steps.
const maxPhoneSteps = 30

// nextChoiceJS picks the answer a visitor most likely gives: the one
// gatecheck's finding suggests, else the first.
const nextChoiceJS = `(() => {
	const b = document.querySelector('section[aria-labelledby="step-title"] button.suggested[name="choice"]') ||
		document.querySelector('section[aria-labelledby="step-title"] button[name="choice"]');
	return b ? b.value : "";
})()`

func TestBrowserPhoneQuestionFirst(t *testing.T) {
	b := newBrowser(t)
	a := truthApp(t, func(c *Config) {
		c.Settings = wizard.Settings{Org: "Acme", Team: "CloudOps", TeamContact: "cloudops@acme.example",
			SupportContact: "helpdesk@acme.example"}
	})
	dir := t.ArtifactDir()
	walked := 0
	for _, code := range probes.Codes {
		site := zooSite(t, code)
		if site == "" {
			t.Logf("%s: no cheap loopback site in the zoo; not walked", code)
			continue
		}
		walked++
		t.Run(string(code), func(t *testing.T) {
			tb := b.newTab(t, a.ts.URL)
			tb.do(chromedp.EmulateViewport(phoneScreen.w, phoneScreen.h, phoneScreen.opts...))
			if st := tb.open("/"); st != 200 {
				t.Fatalf("home: %d", st)
			}
			tb.do(chromedp.SendKeys(chromedp.CSS("#url"), site))
			tb.click(`form[action="/cases"] button[type="submit"]`)
			tb.waitStep()
			// The page may be reloading (its browser check stored): the
			// case is read from the address, not the page.
			token := tb.location()[strings.LastIndex(tb.location(), "/c/")+3:]
			if got := a.apiCase(token).Probe.Report; got == nil || got.Verdict.Code != code {
				t.Fatalf("the zoo site for %s gave %+v", code, got)
			}
			var path []string
			for n := 1; n <= maxPhoneSteps; n++ {
				tb.waitStep()
				tb.settle()
				title := tb.waitStep()
				where := fmt.Sprintf("%s step %d %q", code, n, title)
				path = append(path, title)
				fs, err := chromedp.Run(tb.ctx, chromedp.Evaluate[firstScreen](firstScreenJS))
				if err != nil {
					t.Fatalf("%s: measuring: %v", where, err)
				}
				t.Logf("%s: question ends at %d px, first answer at %d px, of %d", where, fs.Title, fs.Answer, fs.Screen)
				if fs.Scrolled != 0 {
					t.Errorf("%s: the page opens scrolled by %d px", where, fs.Scrolled)
				}
				if fs.Title < 0 || fs.Title > fs.Screen {
					t.Errorf("%s: the question ends at %d px, below the first screen (%d px)", where, fs.Title, fs.Screen)
				}
				if fs.Answer > fs.Screen || fs.Answer < 0 && tb.eval(nextChoiceJS) != "" {
					t.Errorf("%s: the first answer %q ends at %d px, below the first screen (%d px)", where, fs.AnswerText, fs.Answer, fs.Screen)
				}
				for _, p := range unplainWords(tb.eval(`document.body.innerText`)) {
					t.Errorf("%s, at 390×844: %s", where, p)
				}
				shot := func(size string) {
					ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
					png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
					cancel()
					if err != nil {
						t.Fatalf("%s: screenshot at %s: %v", where, size, err)
					}
					name := fmt.Sprintf("phone-walk-%s-%02d-%s.png", code, n, size)
					if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				shot("390x844")
				if n == 1 {
					tb.audit(where + " at 390×844")
				}
				// The same page on a desktop: evidence beside the question.
				tb.do(chromedp.EmulateViewport(1280, 900))
				tb.eval(`(() => { if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0); return ""; })()`)
				for _, p := range unplainWords(tb.eval(`document.body.innerText`)) {
					t.Errorf("%s, at 1280×900: %s", where, p)
				}
				shot("1280x900")
				tb.do(chromedp.EmulateViewport(phoneScreen.w, phoneScreen.h, phoneScreen.opts...))
				choice := tb.eval(nextChoiceJS)
				if choice == "" {
					t.Logf("%s: walked %s", code, strings.Join(path, " → "))
					return
				}
				tb.click(`section[aria-labelledby="step-title"] button[name="choice"][value="` + choice + `"]`)
			}
			t.Errorf("%s: no end after %d steps: %s", code, maxPhoneSteps, strings.Join(path, " → "))
		})
	}
	if walked == 0 {
		t.Fatal("the zoo gave no site to walk")
	}
	t.Logf("walked %d of %d verdicts; screenshots in %s", walked, len(probes.Codes), dir)
}

// settle waits until the page has stopped moving on by itself: a step
// whose walk depends on the browser's view reloads once its check is
// stored, and shows the step that view leads to.
func (tb *tab) settle() {
	tb.t.Helper()
	const moving = `String(!!document.querySelector("[data-vantage-reload]:not([data-vantage-stored]), [data-vantage-reload][data-vantage-stored=true]"))`
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](moving))
		cancel()
		if err == nil && s == "false" {
			return
		}
	}
	tb.t.Fatalf("the page at %s never settles", tb.location())
}

// emulate sets the tab's media (print or screen, "" for the default) and
// colour scheme, as cdp's Emulation.setEmulatedMedia does.
func (tb *tab) emulate(media, scheme string) {
	tb.t.Helper()
	p := emulation.SetEmulatedMediaParams{Media: media}
	if scheme != "" {
		p.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
	}
	tb.do(chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		_, err := cdp.Call(ctx, target, emulation.SetEmulatedMedia, p)
		return err
	}))
}

// snapshot saves what the tab shows (the whole page) as name.png.
func (tb *tab) snapshot(dir, name string) {
	tb.t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// TestBrowserPhonePages: the visitor's pages around the walk, at phone and
// desktop sizes: the limit page keeps what was typed, "Help" reaches the
// support contact, staff sign in from the footer, a case prints with its
// evidence and its link, and times read in the visitor's time zone.
func TestBrowserPhonePages(t *testing.T) {
	b := newBrowser(t)
	const contact = "the IT helpdesk, extension 4711"
	a := newApp(t, func(c *Config) {
		c.Prober = probes.New(probes.Config{Timeout: 10 * time.Second, Samples: 1, SampleSpacing: time.Millisecond,
			AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		c.Settings = wizard.Settings{Org: "Acme", Team: "CloudOps", SupportContact: contact}
		c.ProbesPerMinute, c.ProbeBurst = 1, 1
	})
	dir := t.ArtifactDir()
	gateway := deadUpstreamGateway(t)
	tb := b.newTab(t, a.ts.URL)
	tb.do(chromedp.EmulateViewport(phoneScreen.w, phoneScreen.h, phoneScreen.opts...))
	tb.start(gateway, "INC-9")
	token := tb.location()[strings.LastIndex(tb.location(), "/c/")+3:]

	// A second check within the minute: the limit page, the form as typed.
	tb.open("/")
	typed := map[string]string{"#url": gateway + "?again=1", "#ticket": "INC-10"}
	for sel, v := range typed {
		tb.do(chromedp.SendKeys(chromedp.CSS(sel), v))
	}
	if st := tb.click(`form[action="/cases"] button[type="submit"]`); st != http.StatusTooManyRequests {
		t.Fatalf("a second check within the minute: %d, want 429", st)
	}
	tb.expect("limit page", "You started several checks in a minute; you can start another in ")
	for sel, v := range typed {
		if got := tb.value(sel); got != v {
			t.Errorf("the limit page's %s = %q, want %q as typed", sel, got, v)
		}
	}
	for _, size := range []struct {
		name string
		set  func()
	}{
		{"390x844", func() { tb.do(chromedp.EmulateViewport(phoneScreen.w, phoneScreen.h, phoneScreen.opts...)) }},
		{"1280x900", func() { tb.do(chromedp.EmulateViewport(1280, 900)) }},
	} {
		size.set()
		tb.snapshot(dir, "pages-rate-limit-"+size.name)
		tb.audit("rate limit " + size.name)
	}
	tb.do(chromedp.EmulateViewport(phoneScreen.w, phoneScreen.h, phoneScreen.opts...))

	// Help: the header's link shows the contact; staff sign in from the
	// footer, and the sign-in page tells visitors nothing to run.
	tb.click(`[data-testid="help"]`)
	tb.expect("help page", contact)
	tb.snapshot(dir, "pages-help-390x844")
	tb.audit("help")
	tb.click(`[data-testid="staff-sign-in"]`)
	if loc := tb.location(); !strings.HasSuffix(loc, "/staff/login") {
		t.Errorf("the footer's staff sign-in goes to %s", loc)
	}
	if body := tb.bodyText(); strings.Contains(body, "user add") {
		t.Errorf("the sign-in page tells visitors to run a command:\n%s", body)
	}
	tb.snapshot(dir, "pages-sign-in-390x844")

	// Times in the visitor's time zone: a reply from the helpdesk, read in
	// Tokyo.
	ctx := context.Background()
	c, err := a.db.Case(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	n, err := a.db.AddReply(ctx, c.ID, "ann", "We restarted the application server. Please try again.")
	if err != nil {
		t.Fatal(err)
	}
	tb.do(chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		_, err := cdp.Call(ctx, target, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"})
		return err
	}))
	tb.open("/c/" + token)
	tb.settle()
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	local := tb.text(`[data-testid="reply"] time[data-local]`)
	at := n.At.In(tokyo)
	if strings.Contains(local, "UTC") || !strings.Contains(local, at.Format("15:04")) {
		t.Errorf("the reply's time in Tokyo reads %q, want %s", local, at.Format("15:04 MST"))
	}
	tb.snapshot(dir, "pages-case-reply-390x844")

	// Dark mode: the same page, audited for contrast.
	tb.emulate("", "dark")
	tb.snapshot(dir, "pages-case-dark-390x844")
	tb.audit("case page, dark")

	// Printed: the evidence open without a click, no buttons or forms, the
	// case's link in full.
	tb.emulate("print", "")
	printed := tb.eval(`(() => {
		const shown = e => !!e && e.getClientRects().length > 0 && e.checkVisibility();
		const checks = document.querySelector("#evidence details ul.checks");
		const buttons = Array.from(document.querySelectorAll("button")).filter(shown).map(b => b.textContent.trim());
		const link = document.querySelector('[data-testid="case-link-print"]');
		return JSON.stringify({checks: shown(checks), buttons: buttons, link: shown(link) ? link.textContent : ""});
	})()`)
	link := a.ts.URL + "/c/" + token
	if !strings.Contains(printed, `"checks":true`) || !strings.Contains(printed, `"buttons":[]`) || !strings.Contains(printed, link) {
		t.Errorf("printed, the case page shows %s; want the checks shown, no buttons, and the link %s", printed, link)
	}
	tb.snapshot(dir, "pages-case-print")
	tb.emulate("", "")
	// app.js opens the closed details for the print, and closes them after.
	if got := tb.eval(`(() => {
		window.dispatchEvent(new Event("beforeprint"));
		const during = document.querySelectorAll("details:not([open])").length;
		window.dispatchEvent(new Event("afterprint"));
		return during + " " + document.querySelectorAll("details[open]").length;
	})()`); got != "0 0" {
		t.Errorf("details closed during the print, and open after it: %s, want 0 0", got)
	}
}
