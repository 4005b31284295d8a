package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// browserCheckFor is the tree's check of the browser's view under verdict
// code.
func browserCheckFor(t *testing.T, tree *wizard.Tree, code probes.Code) *wizard.Node {
	for _, n := range tree.Nodes {
		if n.Field == "vantage.browser" && slices.Contains(n.Assumes["verdict"], string(code)) {
			return n
		}
	}
	t.Fatalf("the tree has no check of the browser's view under %s", code)
	return nil
}

// TestBrowserViewOfAnEarlierFinding: the reporter's browser reached the
// site; then it went down, and someone checked it again. The walk paired
// the new verdict with the old view, and told everyone opening the link
// (the browser journeys' staff and colleague) that the site answers them
// but not gatecheck. A browser's view taken under another finding is left
// out of the walk, kept in the store and the API, and the reporter's
// browser is asked again.
func TestBrowserViewOfAnEarlierFinding(t *testing.T) {
	a := newApp(t)
	site := healthySite(t)
	token := a.createCase(site.URL, "")
	a.waitProbed(token)
	first := a.latestRun(token)
	if resp, body := a.postView(token, url.Values{"run": {first}, "result": {"answered"}, "ms": {"12"}}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("the reporter's view: %d %.300s", resp.StatusCode, body)
	}
	site.Close()
	other := &testApp{t: t, db: a.db, srv: a.srv, ts: a.ts, client: &http.Client{CheckRedirect: a.client.CheckRedirect, Jar: newReporterJar()}}
	if resp, _ := other.do("POST", "/c/"+token+"/recheck", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("recheck: %d", resp.StatusCode)
	}
	waitFor(t, "the second run", func() bool {
		runs := a.runsOf(token)
		return len(runs) == 2 && runs[1].State == wizard.ProbeDone
	})
	tree := a.srv.cfg.Tree
	doc := a.apiCase(token)
	if doc.Probe.Report == nil || doc.Probe.Report.Verdict.Code != probes.TCPRefused {
		t.Fatalf("the site closed: %+v", doc.Probe.Report)
	}
	check := browserCheckFor(t, tree, probes.TCPRefused)
	if want := check.Choice("unknown").Next; doc.Current.Node != want {
		t.Errorf("with only a view of the site as it was, the walk is at %s, want %s (the person asked)", doc.Current.Node, want)
	}
	if _, page := other.do("GET", "/c/"+token, nil); strings.Contains(page, "after 12 ms") {
		t.Errorf("someone opening the link is shown the earlier view as the browser's: %s", excerpt(page, `data-testid="browser-view"`))
	}
	views, err := a.db.Vantages(context.Background(), mustCase(t, a.db, token).ID)
	if err != nil || len(views) != 1 || views[0].From != wizard.VantageBrowser || views[0].Reachable == nil || !*views[0].Reachable {
		t.Errorf("the stored views: %+v %v", views, err)
	}
	// The reporter's browser is asked about the site as it is now.
	if _, page := a.do("GET", "/c/"+token, nil); !strings.Contains(page, "data-vantage-url") {
		t.Fatalf("the reporter's browser is not asked again")
	}
	if resp, body := a.postView(token, url.Values{"run": {a.latestRun(token)}, "result": {"unreachable"}}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("the reporter's view of the new run: %d %.300s", resp.StatusCode, body)
	}
	if want := check.Choice("unreachable").Next; a.apiCase(token).Current.Node != want {
		t.Errorf("after the reporter's browser could not connect either: at %s, want %s", a.apiCase(token).Current.Node, want)
	}
}
