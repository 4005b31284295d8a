package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatecheck/gatecheck/wizard"
)

// The route tables below say, for every route the router has, what guards
// it. The sweeps read the routes from the router itself (chi.Walk), so a
// route added later is tried too: one that is neither guarded nor listed
// as an exception fails them, and an exception that names no route fails
// them as well, so that the tables stay true.

// publicRoutes may be used without signing in, each for its reason. Under
// /staff only the sign-in and sign-out are.
var publicRoutes = map[string]string{
	"GET /healthz":             "the load balancer's health check",
	"GET /metrics":             "its own guard: loopback, trusted proxies or the metrics token (metrics_test.go)",
	"GET /static/{name}":       "CSS, JS and icons",
	"GET /":                    "the visitor's form",
	"GET /start":               "the form, filled in from a ticket system's link",
	"GET /help":                "the support contact, for visitors",
	"POST /cases":              "a visitor opens a case",
	"GET /c/{token}":           "the case link is the visitor's key (160 random bits)",
	"GET /c/{token}/events":    "the case's progress, by its link",
	"POST /c/{token}/answer":   "the visitor walks the wizard, by the case link",
	"POST /c/{token}/back":     "the visitor walks the wizard, by the case link",
	"GET /c/{token}/at/{node}": "the visitor revisits a step, by the case link",
	"POST /c/{token}/recheck":  "the visitor asks for a fresh check, by the case link",
	"POST /c/{token}/watch":    "the visitor asks to be kept checking, by the case link",
	"POST /c/{token}/vantage":  "the visitor's browser posts what it saw, by the case link",
	"POST /c/{token}/reporter": "a visitor says the case's browser is theirs, by the case link",
	"POST /c/{token}/send":     "the visitor has gatecheck mail the escalation summary, by the case link",
	"POST /c/{token}/email":    "the reporting browser leaves its address (its reporter cookie; others get 403)",
	"GET /staff/login":         "the sign-in form",
	"POST /staff/login":        "signing in",
	"POST /staff/logout":       "signing out ends the session the request carries, if any",
	"POST /api/cases":          "the anonymous API (an API key, when sent, must be live)",
	"GET /api/cases/{token}":   "a case by its token, as the case link",
}

// adminOnly reports whether a staff route is for admins alone: users, API
// keys, and changes to webhooks (agents may look at those).
func adminOnly(method, route string) bool {
	switch {
	case strings.HasPrefix(route, "/staff/users"), strings.HasPrefix(route, "/staff/apikeys"):
		return true
	case strings.HasPrefix(route, "/staff/webhooks"):
		return method != http.MethodGet
	}
	return false
}

// crossSiteExempt are the state-changing routes a cross-site browser
// request may reach, each for its reason. None: the cross-origin check
// wraps the whole router, and the clients that are not browsers (agents,
// ticket systems) send neither Origin nor Sec-Fetch-Site, which
// http.CrossOriginProtection lets through (TestUnsafeRoutesRefuseCrossSite
// checks that too).
var crossSiteExempt = map[string]string{}

// ignoresBody are the state-changing routes that never read their body,
// so that an oversized one is not theirs to refuse; every other one must
// answer exactly 413.
var ignoresBody = map[string]string{
	"POST /c/{token}/back":              "the step to go back from is the case's",
	"POST /c/{token}/recheck":           "a fresh check of the case's URL",
	"POST /c/{token}/reporter":          "the browser claiming the case is the request's",
	"POST /staff/c/{token}/probe":       "a re-run of the case's URL",
	"POST /staff/webhooks/{id}/disable": "the webhook is the path's",
	"POST /staff/logout":                "the session is the cookie's",
	"POST /agent/v1/poll":               "the agent is its token",
}

// route is one method and pattern of the router.
type route struct{ method, pattern string }

func (r route) String() string { return r.method + " " + r.pattern }

// safe reports whether the method changes nothing, as
// http.CrossOriginProtection counts them.
func (r route) safe() bool {
	return r.method == http.MethodGet || r.method == http.MethodHead || r.method == http.MethodOptions
}

// routesOf walks the server's router.
func routesOf(t *testing.T, s *Server) []route {
	t.Helper()
	var out []route
	err := chi.Walk(s.mux, func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out = append(out, route{method, pattern})
		return nil
	})
	if err != nil || len(out) < 30 {
		t.Fatalf("walking the router: %d routes, %v", len(out), err)
	}
	slices.SortFunc(out, func(a, b route) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// checkTable fails for a table entry that names no route.
func checkTable(t *testing.T, name string, table map[string]string, routes []route) {
	t.Helper()
	for k := range table {
		if !slices.ContainsFunc(routes, func(r route) bool { return r.String() == k }) {
			t.Errorf("%s lists %q, which the router does not have: take it out", name, k)
		}
	}
}

var routeParam = regexp.MustCompile(`\{([a-z]+)\}`)

// sweep is a server with something behind every route: an admin (ann), an
// agent-role member of staff (bob), a probed case of a broken gateway (an
// incident of 127.0.0.1 and gateway_502), a webhook and an agent.
type sweep struct {
	*testApp
	token, agentToken string
	hookID            int64
	admin, agent      *http.Cookie
}

func newSweep(t *testing.T) *sweep {
	a := newApp(t, func(c *Config) {
		c.LoginsPerMinute = 6000 // the sweeps sign in again and again
		c.AgentPoll = 50 * time.Millisecond
	})
	ctx := context.Background()
	a.addStaff("ann", wizard.RoleAdmin)
	a.addStaff("bob", wizard.RoleAgent)
	sw := &sweep{testApp: a}
	gw := brokenGateway(t)
	sw.token = a.createCase(gw.URL, "")
	a.waitProbed(sw.token)
	hook := &wizard.Webhook{URL: "http://127.0.0.1:1/hook", Secret: "s3cret", CreatedBy: "ann"}
	if err := a.db.AddWebhook(ctx, hook); err != nil {
		t.Fatal(err)
	}
	sw.hookID = hook.ID
	var err error
	if _, sw.agentToken, err = a.db.CreateAgent(ctx, "office"); err != nil {
		t.Fatal(err)
	}
	sw.admin = sw.session("ann")
	sw.agent = sw.session("bob")
	return sw
}

// session signs name in and returns the session cookie; the sweep fails
// when it cannot, rather than go on signed out.
func (sw *sweep) session(name string) *http.Cookie {
	sw.t.Helper()
	saved := sw.cookie
	sw.cookie = nil
	sw.signIn(name, staffPassword)
	c := sw.cookie
	sw.cookie = saved
	if resp, _ := sw.send("GET", "/staff", nil, c); resp.StatusCode != http.StatusOK {
		sw.t.Fatalf("signed in as %s, /staff answers %d", name, resp.StatusCode)
	}
	return c
}

// path fills a route's parameters with the sweep's case, incident, webhook
// and so on.
func (sw *sweep) path(r route) string {
	sw.t.Helper()
	vals := map[string]string{
		"token": sw.token, "host": "127.0.0.1", "verdict": "gateway_502", "id": strconv.FormatInt(sw.hookID, 10),
		"node": "probe", "name": "app.css",
	}
	return routeParam.ReplaceAllStringFunc(r.pattern, func(p string) string {
		v, ok := vals[p[1:len(p)-1]]
		if !ok {
			sw.t.Fatalf("%s: the sweep has no value for %s: add one to sweep.path", r, p)
		}
		return v
	})
}

// send makes one request: the headers as name, value pairs, the cookie
// when not nil; a body is sent as a form unless a Content-Type is given.
func (sw *sweep) send(method, path string, body io.Reader, cookie *http.Cookie, hdr ...string) (*http.Response, string) {
	sw.t.Helper()
	req, err := http.NewRequest(method, sw.ts.URL+path, body)
	if err != nil {
		sw.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := sw.client.Do(req)
	if err != nil {
		sw.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// sameOrigin are the headers a browser sends with a form of our own pages.
func (a *testApp) sameOrigin() []string {
	return []string{"Origin", a.ts.URL, "Sec-Fetch-Site", "same-origin"}
}

// TestRoutesNeedSignIn: signed out, every route but the public ones is
// refused: a staff page sends the browser to the sign-in, anything else
// is a 401 (or a 403). Never an answer with the content.
func TestRoutesNeedSignIn(t *testing.T) {
	sw := newSweep(t)
	routes := routesOf(t, sw.srv)
	checkTable(t, "publicRoutes", publicRoutes, routes)
	for k := range publicRoutes {
		if strings.HasPrefix(k, "GET /staff") || strings.HasPrefix(k, "POST /staff") {
			if k != "GET /staff/login" && k != "POST /staff/login" && k != "POST /staff/logout" {
				t.Errorf("publicRoutes lists the staff route %q: only signing in and out are public under /staff", k)
			}
		}
	}
	for _, r := range routes {
		if _, ok := publicRoutes[r.String()]; ok {
			continue
		}
		var body io.Reader
		hdr := sw.sameOrigin()
		if r.safe() {
			hdr = nil
		} else {
			body = strings.NewReader("body=signed+out&status=resolved&name=mallory&role=admin&url=http%3A%2F%2F127.0.0.1%3A1%2F")
		}
		p := sw.path(r)
		resp, page := sw.send(r.method, p, body, nil, hdr...)
		loc := resp.Header.Get("Location")
		switch {
		case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
		case resp.StatusCode == http.StatusSeeOther && r.method == http.MethodGet && strings.HasPrefix(loc, "/staff/login?next="):
		default:
			t.Errorf("%s signed out (%s): %d %s %.200s; want the sign-in page, 401 or 403 (or list it in publicRoutes, with the reason)", r, p, resp.StatusCode, loc, page)
		}
	}
}

// TestAdminRoutesRefuseAgents: signed in with an agent's role, every admin
// route is a 403, and every other staff route is open.
func TestAdminRoutesRefuseAgents(t *testing.T) {
	sw := newSweep(t)
	admins := 0
	for _, r := range routesOf(t, sw.srv) {
		if !strings.HasPrefix(r.pattern, "/staff") || r.pattern == "/staff/login" || r.pattern == "/staff/logout" {
			continue
		}
		var body io.Reader
		hdr := sw.sameOrigin()
		if r.safe() {
			hdr = nil
		} else {
			// Enough to do harm, were it let through.
			body = strings.NewReader("name=bob&role=admin&password=correct+horse+battery&url=http%3A%2F%2F127.0.0.1%3A1%2Fx")
		}
		p := sw.path(r)
		resp, page := sw.send(r.method, p, body, sw.agent, hdr...)
		if adminOnly(r.method, r.pattern) {
			admins++
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Only admins") {
				t.Errorf("%s as an agent (%s): %d %.200s; want 403 for admins only", r, p, resp.StatusCode, page)
			}
			continue
		}
		if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized || strings.HasPrefix(resp.Header.Get("Location"), "/staff/login") {
			t.Errorf("%s as an agent (%s): %d; agents work cases, incidents and notices", r, p, resp.StatusCode)
		}
	}
	if admins < 8 {
		t.Errorf("only %d admin routes found: the sweep does not see the admin pages", admins)
	}
	if u, err := sw.db.UserByName(context.Background(), "bob"); err != nil || u.Role != wizard.RoleAgent {
		t.Errorf("bob after the sweep: %+v %v", u, err)
	}
}

// TestUnsafeRoutesRefuseCrossSite: every state-changing route refuses a
// browser's cross-site request (what a form on another site sends), even
// with an admin's session; clients that are not browsers get through.
func TestUnsafeRoutesRefuseCrossSite(t *testing.T) {
	sw := newSweep(t)
	routes := routesOf(t, sw.srv)
	checkTable(t, "crossSiteExempt", crossSiteExempt, routes)
	const denied = "sent from another site"
	unsafe := 0
	for _, r := range routes {
		if r.safe() {
			continue
		}
		if _, ok := crossSiteExempt[r.String()]; ok {
			continue
		}
		unsafe++
		p := sw.path(r)
		for _, hdr := range [][]string{
			{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"},
			{"Origin", "https://evil.example", "Sec-Fetch-Site", "same-site"},
			{"Origin", "https://evil.example"}, // a browser without Fetch metadata
		} {
			auth := []string{"Authorization", "Bearer " + sw.agentToken}
			resp, page := sw.send(r.method, p, strings.NewReader("body=csrf&status=resolved&name=ann&role=agent"), sw.admin, append(hdr, auth...)...)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, denied) {
				t.Errorf("%s (%s) with %v: %d %.200s; want the cross-origin refusal", r, p, hdr, resp.StatusCode, page)
			}
		}
		// Not a browser: no Origin, no Sec-Fetch-Site, no cookie. Whatever
		// the route answers, it is not the cross-origin refusal.
		if r.pattern == "/agent/v1/poll" {
			continue // a long-poll; TestAgentProtocol polls without Origin
		}
		resp, page := sw.send(r.method, p, strings.NewReader("x=1"), nil)
		if strings.Contains(page, denied) {
			t.Errorf("%s (%s) without Origin or Sec-Fetch-Site: %d, refused as cross-site", r, p, resp.StatusCode)
		}
	}
	if unsafe < 20 {
		t.Errorf("only %d state-changing routes found", unsafe)
	}
	// Nothing changed: ann is still an admin, the case still open.
	if u, err := sw.db.UserByName(context.Background(), "ann"); err != nil || u.Role != wizard.RoleAdmin {
		t.Errorf("ann after the sweep: %+v %v", u, err)
	}
	if c, err := sw.db.Case(context.Background(), sw.token); err != nil || c.Status != wizard.StatusOpen {
		t.Errorf("the case after the sweep: %+v %v", c, err)
	}
}

// formFields are the fields of each state-changing route that reads a
// form: the sweep sends hostile values in each. Routes that read JSON are
// swept below; the rest read no body (ignoresBody).
var formFields = map[string][]string{
	"POST /cases":                  {"url", "ticket"},
	"POST /c/{token}/answer":       {"node", "choice"},
	"POST /c/{token}/watch":        {"stop"},
	"POST /c/{token}/vantage":      {"run", "result", "ms", "reason"},
	"POST /c/{token}/send":         {"node"},
	"POST /c/{token}/email":        {"email"},
	"POST /staff/login":            {"name", "password", "next"},
	"POST /staff/c/{token}/notes":  {"body", "to"},
	"POST /staff/c/{token}/status": {"status"},
	"POST /staff/c/{token}/watch":  {"stop"},
	"POST /staff/c/{token}/agent":  {"agent"},
	"POST /staff/c/{token}/origin": {"origin"},
	"POST /staff/webhooks/":        {"url", "secret", "template"},
	// The incident of the sweep's case (127.0.0.1, gateway_502).
	"POST /staff/incidents/{host}/{verdict}/notes":        {"body", "window", "until"},
	"POST /staff/incidents/{host}/{verdict}/status":       {"status", "window", "until"},
	"POST /staff/incidents/{host}/{verdict}/notice":       {"body", "window"},
	"POST /staff/incidents/{host}/{verdict}/notice/clear": {"window"},
	// The admin pages (the sweep is ann, an admin).
	"POST /staff/users":          {"name", "password", "role"},
	"POST /staff/users/role":     {"name", "role"},
	"POST /staff/users/remove":   {"name"},
	"POST /staff/apikeys":        {"name"},
	"POST /staff/apikeys/revoke": {"name"},
}

// jsonBodies are the state-changing routes that read JSON, with the
// credentials they need to get as far as reading it.
var jsonBodies = map[string]string{
	"POST /api/cases":                 "",
	"POST /api/cases/{token}/origin":  "",
	"POST /agent/v1/jobs/{id}/report": "agent",
}

// TestMalformedRequestsNeverFail sends every route hostile input: oversized
// bodies, bad UTF-8, wrong methods, bogus tokens, SQL and HTML injection in
// every field. Each must get a 4xx (or a normal answer), never a 5xx; an
// oversized body is exactly a 413 wherever a body is read.
func TestMalformedRequestsNeverFail(t *testing.T) {
	sw := newSweep(t)
	a := sw.testApp
	a.cookie = sw.admin
	token := sw.token
	routes := routesOf(t, sw.srv)
	checkTable(t, "ignoresBody", ignoresBody, routes)
	for _, r := range routes {
		_, form := formFields[r.String()]
		_, js := jsonBodies[r.String()]
		_, none := ignoresBody[r.String()]
		if !r.safe() && !form && !js && !none {
			t.Errorf("%s: not in formFields, jsonBodies or ignoresBody: say what its body holds, so that the sweep sends it hostile values", r)
		}
	}

	nasty := []string{
		"", "\xff\xfe\xfd", "'; DROP TABLE cases; --", `" OR 1=1 --`, "<script>alert(1)</script>",
		strings.Repeat("A", 5000), "%00", "\x00\x01\x02", "../../etc/passwd", "NEAR(a b)", `"`, "*", "-- ",
		"𝕦𝕟𝕚𝕔𝕠𝕕𝕖", "{{.}}", "{team}",
	}
	check := func(method, path string, resp *http.Response, body string) {
		t.Helper()
		if resp.StatusCode >= 500 {
			t.Errorf("%s %q: %d %.200s", method, path, resp.StatusCode, body)
		}
		if strings.Contains(body, "goroutine ") {
			t.Errorf("%s %q shows a stack trace", method, path)
		}
	}
	posts := map[string][]string{
		// An incident that cannot be: its verdict is no verdict.
		"/staff/incidents/127.0.0.1/bogus/notes": {"body", "window", "until"},
	}
	for k, names := range formFields {
		method, pattern, _ := strings.Cut(k, " ")
		posts[sw.path(route{method, pattern})] = names
	}
	for k := range ignoresBody {
		if method, pattern, _ := strings.Cut(k, " "); pattern != "/staff/logout" {
			posts[sw.path(route{method, pattern})] = []string{"x"}
		}
	}
	for path, names := range posts {
		for _, v := range nasty {
			form := url.Values{}
			for _, n := range names {
				form.Set(n, v)
			}
			resp, body := a.do("POST", path, form)
			check("POST", path, resp, body)
		}
		// Wrong methods.
		for _, m := range []string{"PUT", "DELETE", "PATCH"} {
			resp, body := a.do(m, path, nil)
			check(m, path, resp, body)
		}
	}
	if resp, _ := sw.send("GET", "/staff", nil, sw.admin); resp.StatusCode != http.StatusOK {
		t.Fatalf("the admin's session did not survive the hostile forms: %d", resp.StatusCode)
	}

	// Oversized bodies: a byte over the route's limit.
	for _, r := range routes {
		if r.safe() {
			continue
		}
		p := sw.path(r)
		limit := sw.srv.bodyLimit(httptest.NewRequest(r.method, p, nil))
		var hdr []string
		var body string
		if who, ok := jsonBodies[r.String()]; ok {
			hdr = []string{"Content-Type", "application/json"}
			if who == "agent" {
				hdr = append(hdr, "Authorization", "Bearer "+sw.agentToken)
			}
			body = `{"url": "` + strings.Repeat("x", int(limit)) + `"}`
		} else {
			hdr = a.sameOrigin()
			body = "body=" + strings.Repeat("x", int(limit))
		}
		resp, page := sw.send(r.method, p, strings.NewReader(body), sw.admin, hdr...)
		check(r.method, p+" (oversized)", resp, page)
		_, ignored := ignoresBody[r.String()]
		switch {
		case !ignored && resp.StatusCode != http.StatusRequestEntityTooLarge:
			t.Errorf("%s (%s) with %d bytes: %d %.200s; want 413", r, p, len(body), resp.StatusCode, page)
		case ignored && resp.StatusCode == http.StatusRequestEntityTooLarge:
			t.Errorf("%s answers 413 to an oversized body, yet ignoresBody says it reads none: take it out", r)
		}
		if r.pattern == "/staff/logout" {
			sw.admin = sw.session("ann")
			a.cookie = sw.admin
		}
	}

	for _, v := range nasty {
		q := url.QueryEscape(v)
		for _, path := range []string{
			"/c/" + q, "/c/" + q + "/events", "/c/" + token + "/at/" + q, "/api/cases/" + q,
			"/start?url=" + q + "&ticket=" + q, "/staff?q=" + q + "&status=" + q + "&verdict=" + q + "&from=" + q + "&to=" + q + "&page=" + q + "&host=" + q + "&ticket=" + q,
			"/staff/c/" + q, "/staff/c/" + q + "/export.json", "/static/" + q, "/staff/login?next=" + q,
			"/staff/incidents?window=" + q, "/staff/incidents/" + q + "/" + q + "?window=" + q,
			"/staff/incidents/127.0.0.1/gateway_502?window=" + q + "&done=status&to=" + q + "&n=" + q + "&of=" + q,
			"/api/incidents?window=" + q, "/api/incidents/" + q + "/gateway_502", "/api/incidents/127.0.0.1/" + q,
			"/staff/users?done=" + q + "&name=" + q + "&role=" + q, "/staff/users?done=role&name=" + q + "&role=admin",
			"/staff/apikeys?done=" + q + "&name=" + q, "/staff/apikeys?done=revoked&name=" + q,
		} {
			resp, body := a.do("GET", path, nil)
			check("GET", path, resp, body)
		}
		// Every GET route with the value in each of its parameters.
		for _, r := range routes {
			if r.method != http.MethodGet || !strings.Contains(r.pattern, "{") {
				continue
			}
			path := routeParam.ReplaceAllString(r.pattern, url.PathEscape(v))
			resp, body := a.do("GET", path, nil)
			check("GET", path, resp, body)
		}
		resp, body := a.keyDo("POST", "/api/cases", "", `{"url": "`+strings.ReplaceAll(v, `"`, `\"`)+`", "ticket": "`+strings.ReplaceAll(v, `"`, `\"`)+`"}`)
		check("POST", "/api/cases", resp, body)
		resp, body = sw.send("POST", "/api/cases/"+token+"/origin", strings.NewReader(fmt.Sprintf(`{"origin": %q}`, v)), sw.admin, "Content-Type", "application/json")
		check("POST", "/api/cases/{token}/origin", resp, body)
		report := fmt.Sprintf(`{"url": %q, "verdict": {"code": %q, "summary": %q}}`, v, v, v)
		resp, body = sw.send("POST", "/agent/v1/jobs/1/report", strings.NewReader(report), nil, "Content-Type", "application/json", "Authorization", "Bearer "+sw.agentToken)
		check("POST", "/agent/v1/jobs/1/report", resp, body)
	}
	// Bogus API keys: a 401, never a 5xx, never anonymous use.
	gw := brokenGateway(t)
	for _, v := range nasty {
		for _, auth := range []string{"Bearer " + v, "Bearer gck_" + v, v, "Basic " + v} {
			for _, path := range []string{"/api/cases", "/api/incidents", "/api/cases/" + token} {
				method := "GET"
				if path == "/api/cases" {
					method = "POST"
				}
				req, _ := http.NewRequest(method, a.ts.URL+path, strings.NewReader(`{"url": "`+gw.URL+`"}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", auth)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					continue // a header value the client will not send
				}
				resp.Body.Close()
				if strings.TrimSpace(auth) != "" && resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s %s with Authorization %q: %d", method, path, auth, resp.StatusCode)
				}
			}
		}
	}
	// The database survived all of it.
	if _, n, err := a.db.FindCases(context.Background(), wizard.CaseFilter{}); err != nil || n == 0 {
		t.Errorf("cases after the sweep: %d %v", n, err)
	}
}
