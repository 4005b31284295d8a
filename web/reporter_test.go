package web

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/wizard"
)

// TestBrowserViewBelongsToTheReporter is issue 16's item 4: opening a case
// link recorded the opener's browser as the visitor's, so a helpdesk agent
// or a colleague overwrote the evidence of the customer who was blocked.
// Only the browser that reported the case checks the site and adds its
// view; anyone else who opens the link, staff included, sees that view but
// is not asked, and a view they post is refused. A case a ticket system
// opened has no reporter until someone says "this is my browser", once.
func TestBrowserViewBelongsToTheReporter(t *testing.T) {
	a := newApp(t)
	site := healthySite(t)
	token := a.createCase(site.URL, "")
	a.waitProbed(token)

	// Someone else: a browser with no cookie of this case, and staff.
	fresh := func() *testApp {
		return &testApp{t: t, db: a.db, srv: a.srv, ts: a.ts, client: &http.Client{CheckRedirect: a.client.CheckRedirect, Jar: newReporterJar()}}
	}
	other, staff := fresh(), fresh()
	hash, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	staff.signIn("ann", "correct horse battery")

	resp, page := a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, `data-vantage-url="`+site.URL) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), site.URL) {
		t.Fatalf("the reporter's browser is not asked to check:\n%.2000s", page)
	}
	for name, who := range map[string]*testApp{"another browser": other, "staff": staff} {
		resp, page := who.do("GET", "/c/"+token, nil)
		if strings.Contains(page, "data-vantage-url") || strings.Contains(resp.Header.Get("Content-Security-Policy"), site.URL) {
			t.Errorf("%s opening the link is asked to check the site", name)
		}
		if strings.Contains(page, "claim-browser") {
			t.Errorf("%s is offered to claim a case that has a reporter", name)
		}
		if resp, body := who.postView(token, url.Values{"run": {a.latestRun(token)}, "result": {"unreachable"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s posting a view: %d %.200s", name, resp.StatusCode, body)
		}
		if resp, _ := who.do("POST", "/c/"+token+"/reporter", url.Values{}); resp.StatusCode != http.StatusConflict {
			t.Errorf("%s claiming a reported case: %d", name, resp.StatusCode)
		}
	}
	if resp, body := a.postView(token, url.Values{"run": {a.latestRun(token)}, "result": {"answered"}, "ms": {"12"}}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("the reporter's view: %d %.300s", resp.StatusCode, body)
	}
	if _, page := other.do("GET", "/c/"+token, nil); !strings.Contains(page, "A server answered (after 12 ms)") {
		t.Errorf("another browser does not see the reporter's view")
	}

	// A case a ticket system opened: the first browser to say so is the
	// reporter's, once.
	body := `{"url": "` + site.URL + `"}`
	req, _ := http.NewRequest("POST", a.ts.URL+"/api/cases", bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	apiToken := strings.TrimPrefix(r.Header.Get("Location"), "/api/cases/")
	a.waitProbed(apiToken)
	customer := fresh()
	_, page = customer.do("GET", "/c/"+apiToken, nil)
	if strings.Contains(page, "data-vantage-url") || !strings.Contains(page, `data-testid="claim-browser"`) {
		t.Fatalf("an API case: the check runs, or no claim is offered:\n%.3000s", page)
	}
	if resp, _ := customer.do("POST", "/c/"+apiToken+"/reporter", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("claiming: %d", resp.StatusCode)
	}
	if _, page := customer.do("GET", "/c/"+apiToken, nil); !strings.Contains(page, "data-vantage-url") {
		t.Errorf("after claiming, the customer's browser is not asked to check")
	}
	if resp, _ := other.do("POST", "/c/"+apiToken+"/reporter", url.Values{}); resp.StatusCode != http.StatusConflict {
		t.Errorf("a second claim: %d", resp.StatusCode)
	}
	if _, page := other.do("GET", "/c/"+apiToken, nil); strings.Contains(page, "claim-browser") || strings.Contains(page, "data-vantage-url") {
		t.Errorf("after the claim, others are still offered or asked")
	}
}
