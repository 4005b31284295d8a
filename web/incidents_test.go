package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/wizard"
)

// incidentApp is an app with a signed-in member of staff and cases
// reported against brokenGateway (host 127.0.0.1, gateway_502 from nginx).
func incidentApp(t *testing.T, reports int) (a *testApp, gw *httptest.Server, tokens []string) {
	t.Helper()
	a = newApp(t)
	hash, _ := HashPassword("correct horse battery")
	if _, err := a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAgent); err != nil {
		t.Fatal(err)
	}
	gw = brokenGateway(t)
	for i := range reports {
		tokens = append(tokens, a.createCase(gw.URL+"/cart", "INC-"+string(rune('1'+i))))
	}
	for _, token := range tokens {
		a.waitProbed(token)
	}
	return a, gw, tokens
}

// refusedCase reports a site on another host (127.0.0.2, where nothing
// listens): tcp_refused.
func refusedCase(a *testApp) string {
	token := a.createCase("http://127.0.0.2:9/", "")
	a.waitProbed(token)
	return token
}

const incident = "/staff/incidents/127.0.0.1/gateway_502"

var untilField = regexp.MustCompile(`name="until" value="([^"]+)"`)

func TestIncidentsNeedStaff(t *testing.T) {
	a := newApp(t)
	for _, path := range []string{"/staff/incidents", incident + "?window=10m"} {
		resp, _ := a.do("GET", path, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/staff/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s signed out: %d %s", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, path := range []string{"/api/incidents", "/api/incidents/127.0.0.1/gateway_502"} {
		resp, body := a.do("GET", path, nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(jsonError(body), "needs an API key") || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s signed out: %d %s", path, resp.StatusCode, body)
		}
	}
	for _, action := range []string{"/notes", "/status", "/notice", "/notice/clear"} {
		resp, _ := a.do("POST", incident+action, url.Values{"body": {"x"}, "status": {"resolved"}, "until": {"2030-01-01T00:00:00Z"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s signed out: %d", action, resp.StatusCode)
		}
	}
}

func TestIncidentPagesAndBulkActions(t *testing.T) {
	a, gw, tokens := incidentApp(t, 3)
	refusedCase(a) // one report of another host: no incident
	a.signIn("ann", "correct horse battery")

	_, page := a.do("GET", "/staff/incidents", nil)
	for _, want := range []string{"127.0.0.1</a>: the site&#39;s gateway (nginx) could not get an answer from the server behind it</h2>",
		"3 reports in 1 hour: gateway_502 from nginx", `<svg viewBox="0 0 600 60"`, "<rect ", "3 reports</title>",
		`data-testid="chart-peak">3 reports a minute<`, " UTC</span>",
		`href="` + incident + `?window=1h"`, `<a href="/staff/incidents">Incidents</a>`} {
		if !strings.Contains(page, want) {
			t.Errorf("incident list lacks %q", want)
		}
	}
	if n := strings.Count(page, `data-testid="incident"`); n != 1 || strings.Contains(page, "tcp_refused") {
		t.Errorf("the list shows %d incidents (the single refused report is not one): %s", n, excerpt(page, "<h1>"))
	}
	if resp, page := a.do("GET", "/staff/incidents?window=2h", nil); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "There is no window &#34;2h&#34;") {
		t.Errorf("bad window: %d %s", resp.StatusCode, excerpt(page, "error"))
	}

	_, page = a.do("GET", incident+"?window=10m", nil)
	for _, token := range tokens {
		if !strings.Contains(page, `href="/staff/c/`+token+`"`) {
			t.Errorf("the incident page does not link case %s", token)
		}
	}
	if !strings.Contains(page, "A gateway (a proxy, load balancer or CDN") || !strings.Contains(page, `<option value="10m" selected>`) {
		t.Errorf("incident page: %s", excerpt(page, "<h1>"))
	}
	m := untilField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no until bound in the bulk forms: %s", excerpt(page, "bulk"))
	}
	until := m[1]
	// Reported after the page was shown: the bulk actions leave it alone.
	late := a.createCase(gw.URL+"/cart", "INC-late")
	a.waitProbed(late)

	// Refusals come back with the reason and the draft; nothing changes.
	for _, tt := range []struct {
		action string
		form   url.Values
		want   string
	}{
		{"/notes", url.Values{"body": {"  "}, "window": {"10m"}, "until": {until}}, "The note is empty."},
		{"/notes", url.Values{"body": {strings.Repeat("ü", 10001)}, "window": {"10m"}, "until": {until}}, "10001 characters long"},
		{"/notes", url.Values{"body": {"kept draft"}, "window": {"10m"}}, "does not say which cases it showed"},
		{"/status", url.Values{"status": {"sideways"}, "window": {"10m"}, "until": {until}}, "&#34;sideways&#34; is not a case status."},
		{"/status", url.Values{"status": {"resolved"}, "window": {"10m"}, "until": {"yesterday"}}, "does not say which cases it showed"},
	} {
		resp, page := a.do("POST", incident+tt.action, tt.form)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, tt.want) || !strings.Contains(page, `role="alert"`) {
			t.Errorf("%s %v: %d, want %q: %s", tt.action, tt.form, resp.StatusCode, tt.want, excerpt(page, `role="alert"`))
		}
		if body := tt.form.Get("body"); body != "" && strings.TrimSpace(body) != "" && !strings.Contains(page, ">"+body+"</textarea>") {
			t.Errorf("%s: the refused note is not given back", tt.action)
		}
	}
	if resp, _ := a.do("POST", incident+"/notes", url.Values{"body": {"x"}, "window": {"5m"}, "until": {until}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("bad window: %d", resp.StatusCode)
	}

	resp, _ := a.do("POST", incident+"/notes", url.Values{"body": {"Hosting team restarting the pool <b>now</b>"}, "window": {"10m"}, "until": {until}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != incident+"?done=note&n=3&window=10m" {
		t.Fatalf("bulk note: %d %s", resp.StatusCode, loc)
	}
	_, page = a.do("GET", resp.Header.Get("Location"), nil)
	if !strings.Contains(page, "Note added to 3 cases.") {
		t.Errorf("no confirmation: %s", excerpt(page, "<h1>"))
	}
	resp, _ = a.do("POST", incident+"/status", url.Values{"confirm": {"1"}, "status": {"escalated"}, "window": {"10m"}, "until": {until}})
	_, page = a.do("GET", resp.Header.Get("Location"), nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(page, "Status set to escalated on 3 cases.") {
		t.Errorf("bulk status: %d %s", resp.StatusCode, excerpt(page, `role="status"`))
	}
	for _, token := range tokens {
		_, page := a.do("GET", "/staff/c/"+token, nil)
		if !strings.Contains(page, "Note: Hosting team restarting the pool &lt;b&gt;now&lt;/b&gt;") || !strings.Contains(page, "Status open → escalated") {
			t.Errorf("case %s timeline lacks the bulk note or status: %s", token, excerpt(page, "Timeline"))
		}
	}
	_, page = a.do("GET", "/staff/c/"+late, nil)
	if strings.Contains(page, "Hosting team restarting") || strings.Contains(page, "Status open → escalated") {
		t.Error("a case reported after the page was shown got the bulk note or status")
	}
	if _, page = a.do("GET", "/staff?q=restarting", nil); !strings.Contains(page, "3 cases") {
		t.Errorf("search does not find the bulk note on every case: %s", excerpt(page, "cases</p>"))
	}
	// Setting one again counts only the cases that change.
	resp, _ = a.do("POST", incident+"/status", url.Values{"confirm": {"1"}, "status": {"escalated"}, "window": {"10m"}, "until": {until}})
	if _, page = a.do("GET", resp.Header.Get("Location"), nil); !strings.Contains(page, "Status set to escalated on 0 cases. (3 already had it.)") {
		t.Errorf("again: %s", excerpt(page, `role="status"`))
	}

	// The API, for ticket systems.
	_, body := a.do("GET", "/api/incidents?window=30m", nil)
	var list struct {
		Window     string
		MinReports int `json:"min_reports"`
		Incidents  []struct {
			Host, Verdict, Gateway, Link string
			Reports                      int
			PerMinute                    []int  `json:"per_minute"`
			FirstAt                      string `json:"first_at"`
			LatestAt                     string `json:"latest_at"`
		}
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || list.Window != "30m" || list.MinReports != 3 || len(list.Incidents) != 1 {
		t.Fatalf("GET /api/incidents: %v %s", err, body)
	}
	got, sum := list.Incidents[0], 0
	for _, n := range got.PerMinute {
		sum += n
	}
	if got.Host != "127.0.0.1" || got.Verdict != "gateway_502" || got.Gateway != "nginx" || got.Reports != 4 || sum != 4 || len(got.PerMinute) != 30 ||
		got.FirstAt == "" || got.LatestAt == "" || got.Link != a.ts.URL+incident+"?window=30m" {
		t.Errorf("incident = %+v", got)
	}
	_, body = a.do("GET", "/api/incidents/127.0.0.1/gateway_502", nil)
	var one struct {
		Incident struct {
			Reports int
			Cases   []struct {
				Token, Link, URL, Ticket, Status string
				CreatedAt                        string `json:"created_at"`
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &one); err != nil || one.Incident.Reports != 4 || len(one.Incident.Cases) != 4 {
		t.Fatalf("GET one incident: %v %s", err, body)
	}
	if c := one.Incident.Cases[0]; c.Token != late || c.Link != a.ts.URL+"/c/"+late || c.Ticket != "INC-late" || c.Status != "open" || c.URL != gw.URL+"/cart" || c.CreatedAt == "" {
		t.Errorf("newest case = %+v", c)
	}
	for _, tt := range []struct {
		path   string
		status int
	}{
		{"/api/incidents?window=forever", 422}, {"/api/incidents/127.0.0.1/no_such_verdict", 404},
		{"/api/incidents/shop%20example/gateway_502", 404}, {"/api/incidents/127.0.0.1/gateway_502?window=1", 422},
		{"/staff/incidents/127.0.0.1/bogus", 404}, {"/staff/incidents/%3Cb%3E/gateway_502", 404},
	} {
		if resp, body := a.do("GET", tt.path, nil); resp.StatusCode != tt.status {
			t.Errorf("GET %s: %d %.200s", tt.path, resp.StatusCode, body)
		}
	}

	// Resolved, the cases leave the incident.
	_, page = a.do("GET", incident, nil)
	until = untilField.FindStringSubmatch(page)[1]
	resp, _ = a.do("POST", incident+"/status", url.Values{"confirm": {"1"}, "status": {"resolved"}, "window": {"1h"}, "until": {until}})
	if _, page = a.do("GET", resp.Header.Get("Location"), nil); !strings.Contains(page, "Status set to resolved on 4 cases.") || !strings.Contains(page, "No case of 127.0.0.1 with this verdict") {
		t.Errorf("after resolving: %s", excerpt(page, `role="status"`))
	}
	if _, page = a.do("GET", "/staff/incidents", nil); !strings.Contains(page, "No incidents in the last 1 hour.") {
		t.Errorf("resolved cases still make an incident: %s", excerpt(page, "<h1>"))
	}
}

func TestNoticeShownToCasesOfItsHostOnly(t *testing.T) {
	a, _, tokens := incidentApp(t, 3)
	other := refusedCase(a)
	slow, release := slowSite(t) // also on 127.0.0.1: its case stays on the checking page
	defer release()
	checking := a.createCase(slow, "")
	a.signIn("ann", "correct horse battery")
	staff := a.cookie

	visit := func(token string) string {
		a.cookie = nil
		defer func() { a.cookie = staff }()
		_, page := a.do("GET", "/c/"+token, nil)
		return page
	}
	if page := visit(tokens[0]); strings.Contains(page, "host-notice") {
		t.Fatal("a notice before any was published")
	}
	for _, tt := range []struct{ body, want string }{
		{" \n ", "The notice is empty."},
		{strings.Repeat("ü", wizard.MaxNotice+1), "The notice is 2001 characters long; notices take up to 2000."},
	} {
		resp, page := a.do("POST", incident+"/notice", url.Values{"body": {tt.body}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, tt.want) {
			t.Errorf("notice %.20q: %d %s", tt.body, resp.StatusCode, excerpt(page, `role="alert"`))
		}
	}
	body := "We know; the hosting team is on it, next update 15:00 <script>alert(1)</script>"
	resp, _ := a.do("POST", incident+"/notice", url.Values{"body": {body}, "window": {"30m"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != incident+"?done=notice&window=30m" {
		t.Fatalf("publish: %d %s", resp.StatusCode, loc)
	}
	escaped := "We know; the hosting team is on it, next update 15:00 &lt;script&gt;alert(1)&lt;/script&gt;"
	if _, page := a.do("GET", incident, nil); !strings.Contains(page, escaped) || !strings.Contains(page, "Published by ann") {
		t.Errorf("the incident page does not show its notice: %s", excerpt(page, "notice-title"))
	}
	// The step page was kept rendered before the notice: it shows it now.
	page := visit(tokens[0])
	if !strings.Contains(page, escaped) || !strings.Contains(page, "ann, ") || !strings.Contains(page, "3 other people reported 127.0.0.1 in the last hour.") {
		t.Errorf("case page of the host: %s", excerpt(page, "host-notice"))
	}
	if strings.Contains(page, "<script>alert(1)") {
		t.Error("the notice is not escaped")
	}
	if page := visit(checking); !strings.Contains(page, "Checking") || !strings.Contains(page, escaped) {
		t.Errorf("the checking page of the host: %s", excerpt(page, "<h1>"))
	}
	if page := visit(other); strings.Contains(page, "host-notice") || strings.Contains(page, "hosting team") {
		t.Errorf("a case of another host shows the notice: %s", excerpt(page, "host-notice"))
	}
	if _, page := a.do("GET", "/staff/incidents", nil); !strings.Contains(page, "notice published") || !strings.Contains(page, "Notices visitors see") {
		t.Errorf("the list does not show the notice: %s", excerpt(page, "<h1>"))
	}

	// A new notice replaces it.
	a.do("POST", incident+"/notice", url.Values{"body": {"Fixed at 15:10; try again."}})
	if page := visit(tokens[1]); !strings.Contains(page, "Fixed at 15:10; try again.") || strings.Contains(page, "hosting team") {
		t.Errorf("after replacing: %s", excerpt(page, "host-notice"))
	}
	resp, _ = a.do("POST", incident+"/notice/clear", url.Values{})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("clear: %d", resp.StatusCode)
	}
	for _, token := range []string{tokens[0], tokens[1], checking} {
		if page := visit(token); strings.Contains(page, "host-notice") {
			t.Errorf("case %s shows a cleared notice", token)
		}
	}
}
