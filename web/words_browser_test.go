package web

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserWords shows the pages issue 17's words changed in a real
// browser at phone and desktop widths: an expired certificate's step, an
// intermittent site's, the "Not right?" page of a gateway's 502 and a
// walk's end. What the browser renders as text (closed evidence and the
// technicians' summary are not rendered) holds no verdict code, error
// string or settings name; every page passes axe and the keyboard check.
func TestBrowserWords(t *testing.T) {
	b := newBrowser(t)
	a := browserApp(t)
	expired := a.createCase(expiredCertSite(t), "")
	gateway := a.createCase(deadUpstreamGateway(t), "")
	flaky := a.createCase(zooSite(t, "intermittent"), "")
	for _, token := range []string{expired, gateway, flaky} {
		a.waitProbed(token)
	}
	done := a.createCase(deadUpstreamGateway(t), "")
	a.waitProbed(done)
	a.answer(done, "role-gateway", "user")
	a.answer(done, "fix-wait", "broken")
	a.answer(done, "escalate-support", "sent")

	tb := b.newTab(t, a.ts.URL)
	pages := []struct{ name, path, wait, shows string }{
		{"expired", "/c/" + expired, "#step-title", "The site's security certificate expired on"},
		{"intermittent", "/c/" + flaky, "#step-title", "The site works only some of the time: 1 of 2 tries failed"},
		{"not-right", "/c/" + gateway + "/at/probe", "#step-title", "found that the site's gateway (nginx) could not get an answer"},
		{"done", "/c/" + done, "#step-title", "The site's gateway (nginx) could not get an answer from the server behind it"},
	}
	dir := t.ArtifactDir()
	for _, size := range []struct {
		name string
		w, h int64
		opts []chromedp.EmulateViewportOption
	}{
		{"phone", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch}},
		{"desktop", 1280, 900, nil},
	} {
		for _, p := range pages {
			tb.do(chromedp.EmulateViewport(size.w, size.h, size.opts...))
			tb.open(p.path)
			tb.do(chromedp.WaitReady(chromedp.CSS(p.wait)))
			text := tb.bodyText()
			if !strings.Contains(text, p.shows) {
				t.Errorf("%s %s does not show %q:\n%s", size.name, p.name, p.shows, text)
			}
			if j := jargonIn(text); len(j) > 0 {
				t.Errorf("%s %s shows %q:\n%s", size.name, p.name, j, text)
			}
			png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot %s: %v", p.name, err)
			}
			if err := os.WriteFile(filepath.Join(dir, size.name+"-words-"+p.name+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
			tb.audit(size.name + " " + p.name)
		}
	}
	t.Logf("screenshots in %s", dir)
}
