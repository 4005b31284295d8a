package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/wizard"
)

// TestMalformedRequestsNeverFail sends every route hostile input: oversized
// bodies, bad UTF-8, wrong methods, missing CSRF, bogus tokens, SQL and HTML
// injection in every field. Each must get a 4xx (or a normal answer), never
// a 5xx.
func TestMalformedRequestsNeverFail(t *testing.T) {
	a := newApp(t)
	hash, _ := HashPassword("correct horse battery")
	a.db.CreateUser(context.Background(), "ann", hash, wizard.RoleAdmin)
	gw := brokenGateway(t)
	token := a.createCase(gw.URL, "")
	a.waitProbed(token)

	nasty := []string{
		"", "\xff\xfe\xfd", "'; DROP TABLE cases; --", `" OR 1=1 --`, "<script>alert(1)</script>",
		strings.Repeat("A", 5000), "%00", "\x00\x01\x02", "../../etc/passwd", "NEAR(a b)", `"`, "*", "-- ",
		"𝕦𝕟𝕚𝕔𝕠𝕕𝕖", "{{.}}", "{team}",
	}
	fields := map[string][]string{
		"/cases":                        {"url", "ticket"},
		"/c/" + token + "/answer":       {"node", "choice"},
		"/c/" + token + "/back":         {"x"},
		"/c/" + token + "/recheck":      {"x"},
		"/c/" + token + "/watch":        {"stop"},
		"/staff/c/" + token + "/watch":  {"stop"},
		"/staff/webhooks":               {"url", "secret", "template"},
		"/staff/webhooks/1/disable":     {"x"},
		"/c/" + token + "/vantage":      {"run", "result", "ms", "reason"},
		"/staff/login":                  {"name", "password", "next"},
		"/staff/c/" + token + "/notes":  {"body"},
		"/staff/c/" + token + "/status": {"status"},
		// The incident of the case above (127.0.0.1, gateway_502).
		"/staff/incidents/127.0.0.1/gateway_502/notes":        {"body", "window", "until"},
		"/staff/incidents/127.0.0.1/gateway_502/status":       {"status", "window", "until"},
		"/staff/incidents/127.0.0.1/gateway_502/notice":       {"body", "window"},
		"/staff/incidents/127.0.0.1/gateway_502/notice/clear": {"window"},
		"/staff/incidents/127.0.0.1/bogus/notes":              {"body", "window", "until"},
		// The admin pages (ann is an admin).
		"/staff/users":          {"name", "password", "role"},
		"/staff/users/role":     {"name", "role"},
		"/staff/users/remove":   {"name"},
		"/staff/apikeys":        {"name"},
		"/staff/apikeys/revoke": {"name"},
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
	// Sign in once so the staff routes are exercised past the login.
	resp, _ := a.do("POST", "/staff/login", url.Values{"name": {"ann"}, "password": {"correct horse battery"}})
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			a.cookie = c
		}
	}
	for path, names := range fields {
		for _, v := range nasty {
			form := url.Values{}
			for _, n := range names {
				form.Set(n, v)
			}
			resp, body := a.do("POST", path, form)
			check("POST", path, resp, body)
		}
		// Missing CSRF: a cross-site post is refused.
		resp, body := a.do("POST", path, url.Values{"x": {"1"}}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site POST %s: %d", path, resp.StatusCode)
		}
		check("POST", path, resp, body)
		// Oversized body.
		resp, body = a.do("POST", path, url.Values{names[0]: {strings.Repeat("x", 100<<10)}})
		if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode >= 500 {
			t.Errorf("oversized POST %s: %d", path, resp.StatusCode)
		}
		check("POST", path, resp, body)
		// Wrong methods.
		for _, m := range []string{"PUT", "DELETE", "PATCH"} {
			resp, body := a.do(m, path, nil)
			check(m, path, resp, body)
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
		req, _ := http.NewRequest("POST", a.ts.URL+"/api/cases", strings.NewReader(`{"url": "`+strings.ReplaceAll(v, `"`, `\"`)+`", "ticket": "`+strings.ReplaceAll(v, `"`, `\"`)+`"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("POST /api/cases with %q: %d", v, resp.StatusCode)
		}
	}
	// Bogus API keys: a 401, never a 5xx, never anonymous use.
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
