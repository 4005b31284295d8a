package web

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/wizard"
)

const staffPassword = "correct horse battery"

// addStaff makes an account with a role.
func (a *testApp) addStaff(name string, role wizard.Role) {
	a.t.Helper()
	hash, _ := HashPassword(staffPassword)
	if _, err := a.db.CreateUser(context.Background(), name, hash, role); err != nil {
		a.t.Fatal(err)
	}
}

// keyDo sends an API request with Authorization set to auth ("" for
// none), as a ticket system would: no cookie, no Origin.
func (a *testApp) keyDo(method, path, auth, body string) (*http.Response, string) {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, a.ts.URL+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var adminLinks = []string{`href="/staff/users"`, `href="/staff/apikeys"`}

// TestAdminPagesAreForAdmins: an agent gets 403 on every admin route and
// sees no admin links; an admin sees them; signed out, the pages ask for a
// sign-in.
func TestAdminPagesAreForAdmins(t *testing.T) {
	a := newApp(t)
	a.addStaff("ann", wizard.RoleAdmin)
	a.addStaff("bob", wizard.RoleAgent)
	for _, path := range []string{"/staff/users", "/staff/apikeys"} {
		resp, _ := a.do("GET", path, nil)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/staff/login") {
			t.Errorf("GET %s signed out: %d %s", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	posts := map[string]url.Values{
		"/staff/users":          {"name": {"eve"}, "password": {staffPassword}, "role": {"admin"}},
		"/staff/users/role":     {"name": {"ann"}, "role": {"agent"}},
		"/staff/users/remove":   {"name": {"ann"}},
		"/staff/apikeys":        {"name": {"sneaky"}},
		"/staff/apikeys/revoke": {"name": {"servicedesk"}},
	}
	a.db.CreateAPIKey(context.Background(), "servicedesk", "ann")
	for path, form := range posts {
		if resp, _ := a.do("POST", path, form); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s signed out: %d", path, resp.StatusCode)
		}
	}

	a.signIn("bob", staffPassword)
	for _, path := range []string{"/staff/users", "/staff/apikeys"} {
		resp, page := a.do("GET", path, nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Only admins manage users, webhooks and API keys") {
			t.Errorf("GET %s as an agent: %d %s", path, resp.StatusCode, excerpt(page, "error"))
		}
		for _, link := range adminLinks {
			if strings.Contains(page, link) {
				t.Errorf("the 403 page shows an agent the admin link %s", link)
			}
		}
	}
	for path, form := range posts {
		if resp, _ := a.do("POST", path, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s as an agent: %d", path, resp.StatusCode)
		}
	}
	_, page := a.do("GET", "/staff", nil)
	for _, link := range adminLinks {
		if strings.Contains(page, link) {
			t.Errorf("the case list shows an agent the admin link %s", link)
		}
	}
	// Nothing the agent sent changed anything.
	if u, _ := a.db.UserByName(context.Background(), "ann"); !u.IsAdmin() {
		t.Error("an agent demoted ann")
	}
	if _, err := a.db.UserByName(context.Background(), "eve"); err == nil {
		t.Error("an agent added eve")
	}
	if keys, _ := a.db.APIKeys(context.Background()); len(keys) != 1 || !keys[0].RevokedAt.IsZero() {
		t.Errorf("an agent changed the keys: %+v", keys)
	}

	a.signIn("ann", staffPassword)
	_, page = a.do("GET", "/staff", nil)
	for _, link := range adminLinks {
		if !strings.Contains(page, link) {
			t.Errorf("the case list does not show an admin the link %s", link)
		}
	}
	for _, path := range []string{"/staff/users", "/staff/apikeys"} {
		if resp, _ := a.do("GET", path, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s as an admin: %d", path, resp.StatusCode)
		}
	}
	// A role changed takes effect at bob's next request: made an admin, he
	// sees the pages without signing in again.
	if err := a.db.SetRole(context.Background(), "bob", wizard.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	a.signIn("bob", staffPassword)
	if resp, _ := a.do("GET", "/staff/users", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("bob made an admin: %d", resp.StatusCode)
	}
}

// TestAdminManagesUsers: adding, changing the role of and removing
// accounts through the forms; bad input keeps the form as typed; the
// admin's own account is not changed here.
func TestAdminManagesUsers(t *testing.T) {
	a := newApp(t)
	a.addStaff("ann", wizard.RoleAdmin)
	a.signIn("ann", staffPassword)

	for _, tt := range []struct {
		form   url.Values
		status int
		says   string
		kept   string
	}{
		{url.Values{"name": {"two words"}, "password": {staffPassword}, "role": {"agent"}}, 422, "without spaces", `value="two words"`},
		{url.Values{"name": {"carl"}, "password": {"short"}, "role": {"admin"}}, 422, "at least 10 characters", `value="carl"`},
		{url.Values{"name": {"carl"}, "password": {staffPassword}, "role": {"root"}}, 422, "Choose a role", `value="carl"`},
		{url.Values{"name": {"ANN"}, "password": {staffPassword}, "role": {"agent"}}, 409, "already a user", `value="ANN"`},
		{url.Values{"name": {"<b>x</b>"}, "password": {"short"}}, 422, "at least 10", `value="&lt;b&gt;x&lt;/b&gt;"`},
	} {
		resp, page := a.do("POST", "/staff/users", tt.form)
		if resp.StatusCode != tt.status || !strings.Contains(page, tt.says) || !strings.Contains(page, tt.kept) {
			t.Errorf("add %v: %d %s; want %d %q with %s", tt.form, resp.StatusCode, excerpt(page, "error"), tt.status, tt.says, tt.kept)
		}
		if strings.Contains(page, staffPassword) {
			t.Errorf("add %v: the page sends the password back", tt.form)
		}
	}
	resp, page := a.do("POST", "/staff/users", url.Values{"name": {"carl"}, "password": {staffPassword}, "role": {"admin"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add carl: %d %s", resp.StatusCode, excerpt(page, "error"))
	}
	_, page = a.do("GET", resp.Header.Get("Location"), nil)
	if !strings.Contains(page, "Added carl.") || !strings.Contains(page, `data-user="carl" data-role="admin"`) {
		t.Errorf("after adding carl: %s", excerpt(page, "carl"))
	}
	a.do("POST", "/staff/users", url.Values{"name": {"dora"}, "password": {staffPassword}})
	if u, err := a.db.UserByName(context.Background(), "dora"); err != nil || u.Role != wizard.RoleAgent {
		t.Errorf("a user added without a role: %+v %v", u, err)
	}
	carl := &testApp{t: t, db: a.db, srv: a.srv, ts: a.ts, client: a.client}
	carl.signIn("carl", staffPassword)

	resp, _ = a.do("POST", "/staff/users/role", url.Values{"name": {"carl"}, "role": {"agent"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("carl made an agent: %d", resp.StatusCode)
	}
	_, page = a.do("GET", resp.Header.Get("Location"), nil)
	if !strings.Contains(page, "carl is now an agent.") || !strings.Contains(page, `data-user="carl" data-role="agent"`) {
		t.Errorf("after the role change: %s", excerpt(page, "carl"))
	}
	if resp, _ := carl.do("GET", "/staff/users", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("carl, an agent now, on the users page: %d", resp.StatusCode)
	}
	for _, tt := range []struct {
		path   string
		form   url.Values
		status int
		says   string
	}{
		{"/staff/users/role", url.Values{"name": {"carl"}, "role": {"root"}}, 422, "no role"},
		{"/staff/users/role", url.Values{"name": {"nobody"}, "role": {"admin"}}, 404, "no user called"},
		{"/staff/users/remove", url.Values{"confirm": {"1"}, "name": {"nobody"}}, 404, "no user called"},
		{"/staff/users/role", url.Values{"name": {"ann"}, "role": {"agent"}}, 409, "your own account"},
		{"/staff/users/remove", url.Values{"confirm": {"1"}, "name": {"ANN"}}, 409, "your own account"},
	} {
		resp, page := a.do("POST", tt.path, tt.form)
		if resp.StatusCode != tt.status || !strings.Contains(page, tt.says) || !strings.Contains(page, `data-testid="users"`) {
			t.Errorf("%s %v: %d %s; want %d %q on the users page", tt.path, tt.form, resp.StatusCode, excerpt(page, "error"), tt.status, tt.says)
		}
	}
	if u, _ := a.db.UserByName(context.Background(), "ann"); !u.IsAdmin() {
		t.Error("ann changed her own role")
	}
	resp, _ = a.do("POST", "/staff/users/remove", url.Values{"confirm": {"1"}, "name": {"carl"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove carl: %d", resp.StatusCode)
	}
	_, page = a.do("GET", resp.Header.Get("Location"), nil)
	if !strings.Contains(page, "Removed carl") || strings.Contains(page, `data-user="carl"`) {
		t.Errorf("after removing carl: %s", excerpt(page, "Removed"))
	}
	if resp, _ := carl.do("GET", "/staff", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("removed carl's session still works: %d", resp.StatusCode)
	}
}

var newKey = regexp.MustCompile(`id="new-key" type="text" readonly value="(gck_[a-z0-9]+)"`)

// TestAPIKeysOnTheAPI: a key made on the admin page is shown once and
// works as a bearer token on the API; revoked, unknown or misplaced keys
// are 401s, never anonymous use; anonymous use is as before.
func TestAPIKeysOnTheAPI(t *testing.T) {
	a := newApp(t)
	a.addStaff("ann", wizard.RoleAdmin)
	a.signIn("ann", staffPassword)
	gw := brokenGateway(t)

	resp, page := a.do("POST", "/staff/apikeys", url.Values{"name": {"servicedesk"}})
	m := newKey.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(page, "not shown again") || !strings.Contains(page, `data-copy="new-key"`) {
		t.Fatalf("add a key: %d %s", resp.StatusCode, excerpt(page, "new-key"))
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the page with the key may be cached: %q", resp.Header.Get("Cache-Control"))
	}
	token := m[1]
	_, page = a.do("GET", "/staff/apikeys", nil)
	if strings.Contains(page, token) || !strings.Contains(page, `data-key="servicedesk"`) || !strings.Contains(page, "never") {
		t.Errorf("the list: %s", excerpt(page, "servicedesk"))
	}
	for _, tt := range []struct {
		name   string
		status int
		says   string
	}{
		{"ServiceDesk", 409, "already an API key"},
		{"no spaces", 422, "letters, digits"},
		{"<i>x</i>", 422, "letters, digits"},
	} {
		resp, page := a.do("POST", "/staff/apikeys", url.Values{"name": {tt.name}})
		if resp.StatusCode != tt.status || !strings.Contains(page, tt.says) || !strings.Contains(page, `value="`+html.EscapeString(tt.name)+`"`) || newKey.MatchString(page) {
			t.Errorf("add %q: %d %s", tt.name, resp.StatusCode, excerpt(page, "error"))
		}
	}

	bearer := "Bearer " + token
	resp, body := a.keyDo("POST", "/api/cases", bearer, `{"url": "`+gw.URL+`", "ticket": "SD-1"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("a case with the key: %d %s", resp.StatusCode, body)
	}
	caseToken := strings.TrimPrefix(resp.Header.Get("Location"), "/api/cases/")
	a.waitProbed(caseToken)
	if resp, body := a.keyDo("GET", "/api/cases/"+caseToken, bearer, ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, "SD-1") {
		t.Errorf("the case with the key: %d", resp.StatusCode)
	}
	for _, path := range []string{"/api/incidents?window=1h", "/api/incidents/127.0.0.1/gateway_502"} {
		resp, body := a.keyDo("GET", path, bearer, "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"since"`) {
			t.Errorf("GET %s with the key: %d %.200s", path, resp.StatusCode, body)
		}
	}
	// Its use is recorded, once a minute at most.
	k, err := a.db.APIKeyByToken(context.Background(), token)
	if err != nil || k.LastUsed.IsZero() {
		t.Fatalf("last used: %+v %v", k, err)
	}
	a.keyDo("GET", "/api/incidents", bearer, "")
	if again, _ := a.db.APIKeyByToken(context.Background(), token); !again.LastUsed.Equal(k.LastUsed) {
		t.Errorf("last used written twice within a minute: %v then %v", k.LastUsed, again.LastUsed)
	}
	if _, page := a.do("GET", "/staff/apikeys", nil); strings.Contains(excerpt(page, `data-key="servicedesk"`), "never") {
		t.Errorf("the list does not show the key used: %s", excerpt(page, `data-key="servicedesk"`))
	}

	// Anonymous use is as before: cases yes, incidents no.
	if resp, body := a.keyDo("POST", "/api/cases", "", `{"url": "`+gw.URL+`"}`); resp.StatusCode != http.StatusCreated {
		t.Errorf("an anonymous case: %d %s", resp.StatusCode, body)
	}
	if resp, _ := a.keyDo("GET", "/api/incidents", "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous incidents: %d", resp.StatusCode)
	}

	_, agentToken, _ := a.db.CreateAgent(context.Background(), "office")
	resp, _ = a.do("POST", "/staff/apikeys/revoke", url.Values{"confirm": {"1"}, "name": {"servicedesk"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	_, page = a.do("GET", resp.Header.Get("Location"), nil)
	if !strings.Contains(page, "Revoked the API key servicedesk") || !strings.Contains(page, `data-key="servicedesk" data-revoked`) {
		t.Errorf("after revoking: %s", excerpt(page, "servicedesk"))
	}
	if resp, page := a.do("POST", "/staff/apikeys/revoke", url.Values{"confirm": {"1"}, "name": {"servicedesk"}}); resp.StatusCode != http.StatusConflict || !strings.Contains(page, "already revoked") {
		t.Errorf("revoke twice: %d", resp.StatusCode)
	}
	for _, tt := range []struct {
		auth, says string
	}{
		{bearer, "revoked"},
		{"Bearer gck_" + strings.Repeat("a", 32), "never issued"},
		{"Bearer " + agentToken, "agent's token"},
		{"Bearer ", "never issued"},
		{"Basic YW5uOnB3", "Authorization: Bearer gck_"},
	} {
		for _, req := range [][3]string{
			{"POST", "/api/cases", `{"url": "` + gw.URL + `"}`},
			{"GET", "/api/cases/" + caseToken, ""},
			{"GET", "/api/incidents", ""},
		} {
			resp, body := a.keyDo(req[0], req[1], tt.auth, req[2])
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(jsonError(body), tt.says) || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %q: %d %s", req[0], req[1], tt.auth, resp.StatusCode, body)
			}
		}
	}
	// A staff session reads the incidents as before.
	if resp, _ := a.do("GET", "/api/incidents", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("incidents with a staff session: %d", resp.StatusCode)
	}
}

// TestAPIKeyLimit: a key's cases are counted per key, apart from and
// above the per-address limit; over it, 429 with Retry-After.
func TestAPIKeyLimit(t *testing.T) {
	if d := New(Config{Store: newApp(t).db, Tree: wizard.Default()}).cfg; d.APIKeyProbesPerMinute <= d.ProbesPerMinute || d.APIKeyProbeBurst <= d.ProbeBurst {
		t.Errorf("default limits: a key %v a minute (burst %d), an address %v (burst %d)", d.APIKeyProbesPerMinute, d.APIKeyProbeBurst, d.ProbesPerMinute, d.ProbeBurst)
	}
	a := newApp(t, func(c *Config) {
		c.ProbesPerMinute, c.ProbeBurst = 1, 2
		c.APIKeyProbesPerMinute, c.APIKeyProbeBurst = 1, 5
	})
	gw := brokenGateway(t)
	_, desk, _ := a.db.CreateAPIKey(context.Background(), "servicedesk", "")
	_, other, _ := a.db.CreateAPIKey(context.Background(), "other", "")
	create := func(auth string) (*http.Response, string) {
		return a.keyDo("POST", "/api/cases", auth, `{"url": "`+gw.URL+`"}`)
	}
	for i := range 2 {
		if resp, body := create(""); resp.StatusCode != http.StatusCreated {
			t.Fatalf("anonymous case %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	if resp, _ := create(""); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("anonymous case 3: %d", resp.StatusCode)
	}
	// The same address, with a key: its own, larger allowance.
	for i := range 5 {
		if resp, body := create("Bearer " + desk); resp.StatusCode != http.StatusCreated {
			t.Fatalf("case %d with the key: %d %s", i+1, resp.StatusCode, body)
		}
	}
	resp, body := create("Bearer " + desk)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(jsonError(body), "with the API key servicedesk") {
		t.Errorf("case 6 with the key: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, body := create("Bearer " + other); resp.StatusCode != http.StatusCreated {
		t.Errorf("another key from the same address: %d %s", resp.StatusCode, body)
	}
}
