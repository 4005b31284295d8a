package web

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/wizard"
)

// confirmForm reads a confirmation page's form: where it posts and the
// fields it posts again.
func confirmForm(t *testing.T, page string) (string, url.Values) {
	t.Helper()
	m := regexp.MustCompile(`data-testid="confirm".*?<form method="post" action="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no confirmation form: %s", excerpt(page, "<main"))
	}
	form := url.Values{}
	for _, f := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		form.Add(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	return html.UnescapeString(m[1]), form
}

// TestDestructiveActionsAskFirst: removing an account, revoking an API key
// and setting the status of an incident's cases first show a page that
// says what will happen and changes nothing; its button posts the same
// form again, confirmed, and that does it. No JavaScript is needed.
func TestDestructiveActionsAskFirst(t *testing.T) {
	a, _, tokens := incidentApp(t, 3)
	ctx := context.Background()
	a.signInAs("zoe", wizard.RoleAdmin)
	hash, _ := HashPassword("correct horse battery")
	if _, err := a.db.CreateUser(ctx, "carl", hash, wizard.RoleAgent); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.db.CreateAPIKey(ctx, "servicedesk", "zoe"); err != nil {
		t.Fatal(err)
	}
	_, page := a.do("GET", "/staff/incidents/127.0.0.1/gateway_502?window=10m", nil)
	m := regexp.MustCompile(`name="until" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the incident page has no bound: %s", excerpt(page, "until"))
	}

	for _, c := range []struct {
		path string
		form url.Values
		asks string
		kept func() bool // the change is not made yet
	}{
		{"/staff/users/remove", url.Values{"name": {"carl"}}, "Remove the account carl?", func() bool {
			_, err := a.db.UserByName(ctx, "carl")
			return err == nil
		}},
		{"/staff/apikeys/revoke", url.Values{"name": {"servicedesk"}}, "Revoke the API key servicedesk?", func() bool {
			keys, _ := a.db.APIKeys(ctx)
			return len(keys) == 1 && keys[0].RevokedAt.IsZero()
		}},
		{"/staff/incidents/127.0.0.1/gateway_502/status", url.Values{"status": {"resolved"}, "window": {"10m"}, "until": {m[1]}}, "Set the status of 3 cases to resolved?", func() bool {
			c, _ := a.db.Case(ctx, tokens[0])
			return c.Status != wizard.StatusResolved
		}},
	} {
		resp, page := a.do("POST", c.path, c.form)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, html.EscapeString(c.asks)) || !c.kept() {
			t.Fatalf("POST %s unconfirmed: %d, changed: %v: %s", c.path, resp.StatusCode, !c.kept(), excerpt(page, "<h1"))
		}
		action, form := confirmForm(t, page)
		if action != c.path || form.Get("confirm") != "1" {
			t.Errorf("the confirmation posts %s %v", action, form)
		}
		for k := range c.form {
			if form.Get(k) != c.form.Get(k) {
				t.Errorf("the confirmation lost %s: %v", k, form)
			}
		}
		if resp, _ := a.do("POST", action, form); resp.StatusCode != http.StatusSeeOther || c.kept() {
			t.Errorf("POST %s confirmed: %d, done: %v", c.path, resp.StatusCode, !c.kept())
		}
	}
}
