package web

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/wizard"
)

// TestVisitorHearsBack is issue 16's item 6: staff set a case resolved or
// wrote to it, and the visitor's page still said "Outcome: escalated".
// Staff can write a reply meant for the visitor, kept apart from internal
// notes; the visitor's page shows the replies and where the helpdesk put
// the case, and never the internal notes.
func TestVisitorHearsBack(t *testing.T) {
	a := newApp(t)
	hash, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAgent); err != nil {
		t.Fatal(err)
	}
	staff := &testApp{t: t, db: a.db, srv: a.srv, ts: a.ts, client: a.client}
	staff.signIn("ann", "correct horse battery")

	token := a.createCase(brokenGateway(t).URL, "INC-9")
	a.waitProbed(token)
	_, before := a.do("GET", "/c/"+token, nil)
	if strings.Contains(before, `data-testid="helpdesk"`) {
		t.Fatalf("a helpdesk section before the helpdesk said anything")
	}
	post := func(path string, form url.Values) {
		t.Helper()
		if resp, body := staff.do("POST", "/staff/c/"+token+path, form); resp.StatusCode != 303 {
			t.Fatalf("POST %s: %d %.300s", path, resp.StatusCode, body)
		}
	}
	post("/notes", url.Values{"body": {"Internal: the customer's IP is on the old allowlist."}, "to": {"staff"}})
	post("/notes", url.Values{"body": {"We restarted the application server; please try again."}, "to": {"visitor"}})
	post("/status", url.Values{"status": {"resolved"}})

	_, page := a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, "We restarted the application server; please try again.") {
		t.Errorf("the visitor does not see the reply")
	}
	if strings.Contains(page, "old allowlist") {
		t.Errorf("the visitor sees an internal note")
	}
	if !strings.Contains(page, "Resolved by the helpdesk at ") {
		t.Errorf("the visitor's page does not say the helpdesk resolved it:\n%.4000s", page)
	}
	_, staffPage := staff.do("GET", "/staff/c/"+token, nil)
	if !strings.Contains(staffPage, `data-testid="reply"`) || !strings.Contains(staffPage, `data-testid="note"`) || !strings.Contains(staffPage, "reply to the visitor") {
		t.Errorf("the staff page does not tell replies from notes")
	}
	// Reopened: the page says so, and the wizard's own end no longer reads
	// as the last word.
	post("/status", url.Values{"status": {"open"}})
	if _, page := a.do("GET", "/c/"+token, nil); !strings.Contains(page, "Reopened by the helpdesk at ") {
		t.Errorf("after reopening: no word of it")
	}
}
