package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// Issue 16's leftovers, each through the real handlers against loopback
// sites.

// apiConfirmingDoc is what the API says of a check of a fix under way.
type apiConfirmingDoc struct {
	Status     wizard.Status
	Confirming *struct {
		RunID     int64  `json:"run_id"`
		Node      string `json:"node"`
		State     wizard.ProbeState
		QueuedAt  time.Time `json:"queued_at"`
		StartedAt time.Time `json:"started_at"`
	}
	Current *struct{ Node string }
}

func (a *testApp) apiConfirming(token string) (apiConfirmingDoc, string) {
	a.t.Helper()
	_, body := a.do("GET", "/api/cases/"+token, nil)
	var doc apiConfirmingDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		a.t.Fatalf("case %s: %v: %.300s", token, err, body)
	}
	return doc, body
}

// TestAPIShowsTheFixBeingChecked: while gatecheck checks a fix the
// visitor said worked, held mid-probe by a slow loopback site, the API
// names the check (its run, the fix, running) and the case stays open;
// once the site answered, the check is gone and the case is resolved.
func TestAPIShowsTheFixBeingChecked(t *testing.T) {
	a := newApp(t)
	site := newFixSite(t)
	token := atFixWait(t, a, site.URL+"/")
	if doc, body := a.apiConfirming(token); doc.Confirming != nil || strings.Contains(body, `"confirming"`) {
		t.Fatalf("a check before any was asked for: %.400s", body)
	}

	site.hold()
	site.fixed.Store(true)
	if resp, body := a.postAnswer(token, "fix-wait", wizard.ChoiceFixed); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("this fixed it: %d %.300s", resp.StatusCode, body)
	}
	before := site.requests.Load()
	waitFor(t, "the check to reach the site", func() bool { return site.requests.Load() > before })
	doc, body := a.apiConfirming(token)
	runs := a.runsOf(token)
	run := runs[len(runs)-1]
	if doc.Confirming == nil {
		t.Fatalf("no confirming while the check is held mid-probe: %.600s", body)
	}
	if c := doc.Confirming; c.RunID != run.ID || c.Node != "fix-wait" || c.State != wizard.ProbeRunning || c.QueuedAt.IsZero() {
		t.Errorf("confirming %+v; want run %d (%s) at fix-wait, running", *c, run.ID, run.Actor)
	}
	if doc.Status != wizard.StatusOpen {
		t.Errorf("status while checking: %s", doc.Status)
	}

	site.release()
	a.waitChecked(token)
	doc, body = a.apiConfirming(token)
	if doc.Confirming != nil || doc.Status != wizard.StatusResolved {
		t.Errorf("after the check: status %s, confirming %+v: %.400s", doc.Status, doc.Confirming, body)
	}
}
