package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// Issue 16 (3): "This fixed it" closed a case without looking; on a site
// whose https was still refused, the case said "Solved" under the
// still-red evidence. A fix gatecheck can see is checked before it is
// recorded; one it cannot see is recorded as said, marked as such.

// fixSite is nginx in front of an application that is down until fixed;
// hold makes its requests wait until release.
type fixSite struct {
	*httptest.Server
	fixed    atomic.Bool
	requests atomic.Int64
	requestGate
}

func newFixSite(t *testing.T) *fixSite {
	s := &fixSite{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if !s.wait(r.Context()) {
			return
		}
		if s.fixed.Load() {
			io.WriteString(w, "hello")
			return
		}
		w.Header().Set("Server", "nginx/1.24.0")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx/1.24.0</center></body></html>")
	}))
	t.Cleanup(s.Close)
	t.Cleanup(s.release)
	return s
}

// confirmDoc is what the API says of a case's walk and its confirmation.
type confirmDoc struct {
	Status  wizard.Status
	Current struct {
		Node         string
		Done         bool
		Confirmation *wizard.Confirmation
	}
	Steps []struct{ Node, Answer string }
	Probe struct {
		Report *struct{ Verdict struct{ Code string } }
	}
}

func (a *testApp) confirmDoc(token string) confirmDoc {
	a.t.Helper()
	_, body := a.do("GET", "/api/cases/"+token, nil)
	var doc confirmDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		a.t.Fatalf("case %s: %v: %.300s", token, err, body)
	}
	return doc
}

// postAnswer posts an answer and returns the response and its page.
func (a *testApp) postAnswer(token, node, choice string) (*http.Response, string) {
	a.t.Helper()
	return a.do("POST", "/c/"+token+"/answer", map[string][]string{"node": {node}, "choice": {choice}})
}

// waitChecked follows the case's page while gatecheck checks a fix, and
// returns the page after.
func (a *testApp) waitChecked(token string) string {
	a.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, page := a.do("GET", "/c/"+token, nil); !strings.Contains(page, `data-testid="confirming"`) {
			return page
		}
	}
	a.t.Fatalf("the check of the fix on %s did not finish", token)
	return ""
}

// atFixWait opens a case for site as a visitor of a broken gateway, at
// "Wait a few minutes", a fix gatecheck checks.
func atFixWait(t *testing.T, a *testApp, site string) string {
	token := a.createCase(site, "")
	a.waitProbed(token)
	if page := a.answer(token, "role-gateway", "user"); !strings.Contains(page, "Wait a few minutes") {
		t.Fatalf("not at fix-wait: %s", excerpt(page, "step-title"))
	}
	return token
}

// TestFixCheckedStillFailing: "This fixed it" on a server-side fix while
// the site still fails shows gatecheck checking, then says plainly that it
// still fails, with what was found, and offers the next step; the case is
// not resolved.
func TestFixCheckedStillFailing(t *testing.T) {
	a := newApp(t)
	site := newFixSite(t)
	token := atFixWait(t, a, site.URL+"/")

	site.hold()
	if resp, body := a.postAnswer(token, "fix-wait", wizard.ChoiceFixed); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("this fixed it: %d %.300s", resp.StatusCode, body)
	}
	if _, page := a.do("GET", "/c/"+token, nil); !strings.Contains(page, "Checking whether 127.0.0.1 works now") {
		t.Errorf("no progress page while checking: %s", excerpt(page, "<h1"))
	}
	if doc := a.confirmDoc(token); doc.Status != wizard.StatusOpen {
		t.Errorf("status while checking: %s", doc.Status)
	}
	site.release()
	page := a.waitChecked(token)
	for _, want := range []string{"gatecheck checked again at", "127.0.0.1 still fails: the site&#39;s gateway (nginx) could not get an answer", "Go on to the next step", "It works for me now"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page after the check lacks %q: %s", want, excerpt(page, "step-title"))
		}
	}
	if strings.Contains(page, "Solved") || strings.Contains(page, "no longer apply") {
		t.Errorf("the page after a failing check: %s", excerpt(page, "step-title"))
	}
	doc := a.confirmDoc(token)
	if doc.Status != wizard.StatusOpen || doc.Current.Node != "fix-wait" || doc.Current.Confirmation == nil || doc.Current.Confirmation.Confirmed {
		t.Errorf("after a failing check: %+v", doc)
	}
	if runs := a.runsOf(token); !strings.HasPrefix(runs[len(runs)-1].Actor, "confirm:fix-wait@") {
		t.Errorf("the check's run is by %q", runs[len(runs)-1].Actor)
	}
	// The next step is the fix's "still broken".
	if resp, _ := a.postAnswer(token, "fix-wait", wizard.ChoiceBroken); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("next step: %d", resp.StatusCode)
	}
	if doc := a.confirmDoc(token); doc.Current.Node != "escalate-support" {
		t.Errorf("the next step is %s", doc.Current.Node)
	}
	// Changing the earlier answer to "This fixed it" checks too.
	if resp, _ := a.postAnswer(token, "fix-wait", wizard.ChoiceFixed); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("changing to this fixed it: %d", resp.StatusCode)
	}
	if page := a.waitChecked(token); !strings.Contains(page, "still fails") {
		t.Errorf("after changing to this fixed it: %s", excerpt(page, "step-title"))
	}
	if doc := a.confirmDoc(token); doc.Status != wizard.StatusOpen || doc.Current.Node != "fix-wait" {
		t.Errorf("after changing to this fixed it: %s at %s", doc.Status, doc.Current.Node)
	}
}

// TestFixCheckedAfterRecovery: the same once the site recovered: solved,
// confirmed by the check, with the walk as it was (its report, its
// answers) and no "earlier answers no longer apply".
func TestFixCheckedAfterRecovery(t *testing.T) {
	a := newApp(t)
	site := newFixSite(t)
	token := atFixWait(t, a, site.URL+"/")
	site.fixed.Store(true)
	if resp, body := a.postAnswer(token, "fix-wait", wizard.ChoiceFixed); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("this fixed it: %d %.300s", resp.StatusCode, body)
	}
	page := a.waitChecked(token)
	if !strings.Contains(page, "Solved: gatecheck checked 127.0.0.1 again at") || !strings.Contains(page, "and it answers normally") {
		t.Errorf("the end page does not say the check confirmed it: %s", excerpt(page, "step-title"))
	}
	if strings.Contains(page, "no longer apply") || strings.Contains(page, "not confirmed") {
		t.Errorf("the end page: %s", excerpt(page, "step-title"))
	}
	doc := a.confirmDoc(token)
	if doc.Status != wizard.StatusResolved || !doc.Current.Done || doc.Current.Confirmation == nil || !doc.Current.Confirmation.Confirmed || doc.Current.Confirmation.Checked.IsZero() {
		t.Errorf("after the check: %+v", doc)
	}
	if n := len(doc.Steps); n != 2 || doc.Steps[0].Node != "role-gateway" || doc.Steps[1].Node != "fix-wait" || doc.Steps[1].Answer != wizard.ChoiceFixed {
		t.Errorf("the walk after the check: %+v", doc.Steps)
	}
	if r := doc.Probe.Report; r == nil || r.Verdict.Code != "gateway_502" {
		t.Errorf("the walk's report changed: %+v", r)
	}
	// The helpdesk sees it too.
	hash, _ := HashPassword("correct horse battery")
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAgent); err != nil {
		t.Fatal(err)
	}
	a.signIn("ann", "correct horse battery")
	if _, page := a.do("GET", "/staff/c/"+token, nil); !strings.Contains(page, "Solved: gatecheck checked 127.0.0.1 again") {
		t.Errorf("the staff page does not say the fix was confirmed: %s", excerpt(page, "Where the visitor is"))
	}
}

// TestFixWorksForMeAfterAFailedCheck: after a check found the site still
// failing, the visitor may say it works for them: resolved, on their word.
func TestFixWorksForMeAfterAFailedCheck(t *testing.T) {
	a := newApp(t)
	site := newFixSite(t)
	token := atFixWait(t, a, site.URL+"/")
	a.postAnswer(token, "fix-wait", wizard.ChoiceFixed)
	a.waitChecked(token)
	if resp, _ := a.postAnswer(token, "fix-wait", worksForMe); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("it works for me: %d", resp.StatusCode)
	}
	_, page := a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, "This case is solved.") || !strings.Contains(page, "not confirmed by a check") {
		t.Errorf("end page: %s", excerpt(page, "step-title"))
	}
	if doc := a.confirmDoc(token); doc.Status != wizard.StatusResolved || doc.Current.Confirmation == nil || doc.Current.Confirmation.Confirmed {
		t.Errorf("after it works for me: %+v", doc)
	}
}

// TestUncheckableFixRecordedUnconfirmed: a fix gatecheck cannot see (the
// browser's cache and cookies) is recorded as the visitor says, at once,
// and the end page, the API and the staff page say it is not confirmed.
func TestUncheckableFixRecordedUnconfirmed(t *testing.T) {
	a := newApp(t)
	token := a.createCase(healthySite(t).URL+"/", "")
	a.waitProbed(token)
	a.answer(token, "ask-browser-works", "error-page")
	a.answer(token, "fix-refresh", wizard.ChoiceBroken)
	resp, _ := a.postAnswer(token, "fix-cache", wizard.ChoiceFixed)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("this fixed it: %d", resp.StatusCode)
	}
	_, page := a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, "This case is solved.") || !strings.Contains(page, "Recorded as the visitor said; not confirmed by a check.") {
		t.Errorf("end page: %s", excerpt(page, "step-title"))
	}
	doc := a.confirmDoc(token)
	if doc.Status != wizard.StatusResolved || doc.Current.Confirmation == nil || doc.Current.Confirmation.Confirmed || !doc.Current.Confirmation.Checked.IsZero() {
		t.Errorf("API: %+v", doc)
	}
	if runs := a.runsOf(token); len(runs) != 1 {
		t.Errorf("%d probe runs; a fix gatecheck cannot see is not checked", len(runs))
	}
	hash, _ := HashPassword("correct horse battery")
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAgent); err != nil {
		t.Fatal(err)
	}
	a.signIn("ann", "correct horse battery")
	if _, page := a.do("GET", "/staff/c/"+token, nil); !strings.Contains(page, "not confirmed by a check") {
		t.Errorf("the staff page does not say so: %s", excerpt(page, "Where the visitor is"))
	}
}

// TestFixCheckRefusedByLimit: when the client's limit refuses the check,
// the page says so plainly and the visitor's word is recorded, not
// confirmed; no 5xx, no answer lost.
func TestFixCheckRefusedByLimit(t *testing.T) {
	a := newApp(t, func(c *Config) { c.ProbesPerMinute, c.ProbeBurst = 1, 1 })
	site := newFixSite(t)
	token := atFixWait(t, a, site.URL+"/")
	resp, page := a.postAnswer(token, "fix-wait", wizard.ChoiceFixed)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("this fixed it, over the limit: %d %.300s", resp.StatusCode, page)
	}
	for _, want := range []string{"gatecheck could not check 127.0.0.1 again just now", "too many checks were started from your address", "not confirmed by a check", "This case is solved."} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q: %s", want, excerpt(page, "role=\"alert\""))
		}
	}
	if doc := a.confirmDoc(token); doc.Status != wizard.StatusResolved || doc.Current.Confirmation == nil || doc.Current.Confirmation.Confirmed {
		t.Errorf("API: %+v", doc)
	}
	if runs := a.runsOf(token); len(runs) != 1 {
		t.Errorf("%d probe runs after a refused check", len(runs))
	}
}

// TestFixCheckJoinsAndCountsAgainstHostCap: the check of a fix joins a
// probe of the site under way (it sends the site nothing more), and a
// check that needs a probe of its own counts against the host's cap: over
// it, the check waits and says why.
func TestFixCheckJoinsAndCountsAgainstHostCap(t *testing.T) {
	clock := &testClock{}
	a := outageApp(t, func(c *Config) { c.Now, c.HostProbesPerMinute, c.ReuseWindow = clock.now, 2, -1 })
	site := newFixSite(t)
	token := atFixWait(t, a, site.URL+"/") // the host's first probe

	// Another case of the same site, whose probe hangs: the host's second.
	site.hold()
	other := a.report(site.URL+"/", "198.51.100.9")
	waitFor(t, "the other case's probe reaches the site", func() bool { return a.probe(other).State == wizard.ProbeRunning })
	if resp, _ := a.postAnswer(token, "fix-wait", wizard.ChoiceFixed); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("this fixed it: %d", resp.StatusCode)
	}
	if waiting, running := a.srv.runner.Stats(); waiting != 0 || running != 1 {
		t.Errorf("runner: %d waiting, %d running; want the check joined to the probe under way", waiting, running)
	}
	site.release()
	a.waitChecked(token)
	runs, otherRuns := a.runsOf(token), a.runsOf(other)
	if confirm := runs[len(runs)-1]; !strings.HasPrefix(confirm.Actor, "confirm:fix-wait@") || confirm.SharedFrom != otherRuns[0].ID {
		t.Errorf("the check's run: actor %q, shared from %d; want it to share run %d", confirm.Actor, confirm.SharedFrom, otherRuns[0].ID)
	}

	// Checking again needs a third probe of the host within the minute.
	before := site.requests.Load()
	if resp, _ := a.postAnswer(token, "fix-wait", wizard.ChoiceFixed); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("check again: %d", resp.StatusCode)
	}
	if waiting, _ := a.srv.runner.Stats(); waiting != 1 {
		t.Errorf("%d jobs waiting; want the check waiting for the host's cap", waiting)
	}
	if _, page := a.do("GET", "/c/"+token, nil); !strings.Contains(page, "Checking whether 127.0.0.1 works now") || !strings.Contains(page, "at most 2 times a minute") {
		t.Errorf("the waiting check does not say why: %s", excerpt(page, "data-queue"))
	}
	if n := site.requests.Load() - before; n != 0 {
		t.Errorf("the capped host got %d requests", n)
	}
	clock.advance(61 * time.Second)
	if page := a.waitChecked(token); !strings.Contains(page, "still fails") {
		t.Errorf("after the cap: %s", excerpt(page, "step-title"))
	}
}

// TestOldCheckSaysNothingAfterBack: a check belongs to the visit of the
// fix it was asked at; back at the fix later, it is shown afresh.
func TestOldCheckSaysNothingAfterBack(t *testing.T) {
	a := newApp(t)
	site := newFixSite(t)
	token := atFixWait(t, a, site.URL+"/")
	a.postAnswer(token, "fix-wait", wizard.ChoiceFixed)
	a.waitChecked(token)
	a.answer(token, "fix-wait", wizard.ChoiceBroken)
	if resp, _ := a.do("POST", "/c/"+token+"/back", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("back: %d", resp.StatusCode)
	}
	_, page := a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, "Wait a few minutes") || strings.Contains(page, "still fails") || !strings.Contains(page, "This fixed it") {
		t.Errorf("back at the fix: %s", excerpt(page, "step-title"))
	}
}
