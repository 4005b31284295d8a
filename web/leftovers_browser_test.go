package web

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserHelpdeskResolvedThenFixConfirmed walks, in a real browser,
// a visitor at "Wait a few minutes" whose case the helpdesk resolves: the
// page says so first, the question folded away under "Still not working
// for you? Carry on"; opened, the question is there, and "This fixed it"
// on a site that works again ends on gatecheck's check of it (green),
// not the old red report. Screenshots at phone and desktop widths.
func TestBrowserHelpdeskResolvedThenFixConfirmed(t *testing.T) {
	b := newBrowser(t)
	a := browserApp(t)
	site := newFixSite(t)
	tb := b.newTab(t, a.ts.URL)
	tb.start(site.URL+"/", "INC-16")
	tb.answer("user")
	tb.waitTitle("Wait a few minutes, then try again")
	token := tb.token()

	staff := a.browser()
	staff.signIn("ann", "correct horse battery")
	if resp, body := staff.do("POST", "/staff/c/"+token+"/status", url.Values{"status": {"resolved"}}); resp.StatusCode != 303 {
		t.Fatalf("resolve: %d %s", resp.StatusCode, excerpt(body, "error"))
	}

	dir := t.ArtifactDir()
	shoot := func(name string) {
		t.Helper()
		for _, size := range []struct {
			name string
			w, h int64
			opts []chromedp.EmulateViewportOption
		}{
			{"phone", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch}},
			{"desktop", 1280, 900, nil},
		} {
			tb.do(chromedp.EmulateViewport(size.w, size.h, size.opts...))
			png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot %s: %v", name, err)
			}
			if err := os.WriteFile(filepath.Join(dir, size.name+"-"+name+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
			if size.name == "phone" {
				if w := tb.eval(`String(document.documentElement.scrollWidth)`); w != fmt.Sprint(size.w) {
					t.Errorf("%s at %d px scrolls sideways: %s px wide", name, size.w, w)
				}
			}
		}
	}

	tb.open("/c/" + token)
	tb.expect("resolved by the helpdesk", "From the helpdesk", "Resolved by the helpdesk at", "Still not working for you? Carry on")
	if shown := tb.eval(`String(document.querySelector("#step-title").checkVisibility())`); shown != "false" {
		t.Errorf("the question shows before the visitor asks to carry on (visible: %s)", shown)
	}
	shoot("helpdesk-resolved")

	// Opened, the question and its choices are there; the page is
	// audited so (closed, its controls are out of reach by design).
	tb.do(chromedp.Click(chromedp.CSS(`[data-testid="carry-on"] summary`), chromedp.NodeVisible))
	if shown := tb.eval(`String(document.querySelector("#step-title").checkVisibility())`); shown != "true" {
		t.Errorf("carry on does not show the question (visible: %s)", shown)
	}
	tb.waitTitle("Wait a few minutes, then try again")
	tb.audit("helpdesk resolved, carrying on")
	site.fixed.Store(true)
	tb.click(`button[name="choice"][value="fixed"]`)
	tb.waitStep()
	tb.expect("after the check", "Solved: gatecheck checked 127.0.0.1 again at")
	if cls := tb.eval(`document.querySelector(".verdict").className`); !strings.Contains(cls, "healthy") {
		t.Errorf("the report shown after the confirmed fix is not the healthy check: %q", cls)
	}
	if body := tb.bodyText(); strings.Contains(body, "Keep checking until it works again") {
		t.Errorf("after a confirmed fix the page still offers to keep checking:\n%s", body)
	}
	shoot("fix-confirmed")
	tb.audit("fix confirmed")
}
