package web

// Issue 17's "Done when", in a real browser: for every verdict the zoo
// produces, a visitor on a 390×844 phone sees each step's question and its
// first answer on the first screen, and reads no verdict code or raw error
// string anywhere on the page.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// phone is the screen the visitor pages are made for first.
var phone = struct {
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
	const b = document.querySelector('section.question form.choices button[name="choice"]');
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
	const b = document.querySelector('section.question button.suggested[name="choice"]') ||
		document.querySelector('section.question button[name="choice"]');
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
			tb.do(chromedp.EmulateViewport(phone.w, phone.h, phone.opts...))
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
				tb.do(chromedp.EmulateViewport(phone.w, phone.h, phone.opts...))
				choice := tb.eval(nextChoiceJS)
				if choice == "" {
					t.Logf("%s: walked %s", code, strings.Join(path, " → "))
					return
				}
				tb.click(`section.question button[name="choice"][value="` + choice + `"]`)
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
