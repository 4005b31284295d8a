package web

import (
	"context"
	"encoding/json"
	"html"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// browser is another browser on the same gatecheck: no reporter cookie,
// no staff session.
func (a *testApp) browser() *testApp {
	return &testApp{t: a.t, db: a.db, srv: a.srv, ts: a.ts, client: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Jar: newReporterJar()}}
}

// reportWithEmail opens a case from the home form with an e-mail address,
// as the visitor's browser, and waits for its probes.
func (a *testApp) reportWithEmail(target, ticket, email string) string {
	a.t.Helper()
	resp, body := a.do("POST", "/cases", url.Values{"url": {target}, "ticket": {ticket}, "email": {email}})
	if resp.StatusCode != http.StatusSeeOther {
		a.t.Fatalf("POST /cases: %d %s", resp.StatusCode, excerpt(body, "error"))
	}
	token := strings.TrimPrefix(resp.Header.Get("Location"), "/c/")
	a.waitProbed(token)
	return token
}

// TestReplyByMail is issue 16's item 6, its last part: a visitor who left
// an address gets the helpdesk's reply, and the case set resolved, by a
// real e-mail with the text, the case link and the status; an internal
// note sends nothing, nor does setting the same status again; the staff
// timeline shows the mails; nobody but staff and the reporting browser
// sees the address (not another browser, nor the anonymous API).
func TestReplyByMail(t *testing.T) {
	srv := newSMTPServer(t, nil)
	clock := &testClock{}
	a := mailApp(t, clock, srv, newReceiver(t, ""))
	const addr = "visitor@example.net"
	token := a.reportWithEmail(brokenGateway(t).URL, "INC-77", addr)
	caseLink := a.ts.URL + "/c/" + token

	_, mine := a.do("GET", "/c/"+token, nil)
	if !strings.Contains(mine, `data-testid="email-kept"`) || !strings.Contains(mine, addr) {
		t.Errorf("the reporting browser does not see the address it left: %s", excerpt(mine, "email"))
	}
	staff := a.browser()
	staff.signInAs("ann", wizard.RoleAgent)
	_, sp := staff.do("GET", "/staff/c/"+token, nil)
	if !strings.Contains(html.UnescapeString(sp), "Visitor's e-mail: "+addr) || !strings.Contains(sp, "by e-mail at "+addr) {
		t.Errorf("the staff page does not show the address, or that a reply goes by mail: %s", excerpt(sp, "reply-mail"))
	}

	post := func(path string, form url.Values) {
		t.Helper()
		if resp, body := staff.do("POST", "/staff/c/"+token+path, form); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, excerpt(body, "error"))
		}
	}
	post("/notes", url.Values{"body": {"Internal: the customer is on the old allowlist."}, "to": {"staff"}})
	time.Sleep(100 * time.Millisecond)
	if n := len(srv.mails()); n != 0 {
		t.Fatalf("an internal note sent %d e-mails", n)
	}

	const reply = "We restarted the application server; please try again."
	post("/notes", url.Values{"body": {reply}, "to": {"visitor"}})
	waitFor(t, "the reply by e-mail", func() bool { return len(srv.mails()) == 1 })
	got := srv.mails()[0]
	dec := new(mime.WordDecoder)
	if got.from != "gatecheck@example.org" || !slices.Equal(got.to, []string{addr}) || !strings.Contains(got.msg.Header.Get("To"), addr) {
		t.Errorf("envelope %s → %v, To: %s", got.from, got.to, got.msg.Header.Get("To"))
	}
	if s := decoded(dec, got.msg.Header.Get("Subject")); !strings.Contains(s, "127.0.0.1") || !strings.Contains(s, "replied") {
		t.Errorf("subject %q", s)
	}
	for _, want := range []string{reply, "Case: " + caseLink, "Status: open", "Ticket: INC-77"} {
		if !strings.Contains(got.body, want) {
			t.Errorf("the reply mail lacks %q:\n%s", want, got.body)
		}
	}
	if strings.Contains(got.body, "allowlist") {
		t.Error("the reply mail carries an internal note")
	}

	post("/status", url.Values{"status": {"resolved"}})
	waitFor(t, "the resolved mail", func() bool { return len(srv.mails()) == 2 })
	if b := srv.mails()[1].body; !strings.Contains(b, "resolved") || !strings.Contains(b, "Case: "+caseLink) || !strings.Contains(b, "Status: resolved") {
		t.Errorf("the resolved mail:\n%s", b)
	}
	// The same status again changes nothing, and sends nothing.
	post("/status", url.Values{"status": {"resolved"}})
	time.Sleep(100 * time.Millisecond)
	if n := len(srv.mails()); n != 2 {
		t.Errorf("%d e-mails after setting resolved twice; want 2", n)
	}

	_, sp = staff.do("GET", "/staff/c/"+token, nil)
	for _, w := range []string{"Mail to the visitor &lt;" + addr + "&gt; queued", "E-mail to the visitor &lt;" + addr + "&gt; taken by the mail server"} {
		if !strings.Contains(sp, w) {
			t.Errorf("the staff timeline lacks %q: %s", w, excerpt(sp, "Timeline"))
		}
	}

	// Anyone else with the link: the reply, never the address.
	other := a.browser()
	_, theirs := other.do("GET", "/c/"+token, nil)
	if !strings.Contains(theirs, html.EscapeString(reply)) {
		t.Errorf("another browser does not see the reply")
	}
	if strings.Contains(theirs, addr) || strings.Contains(theirs, `data-testid="email-form"`) {
		t.Errorf("another browser sees the visitor's address or its form: %s", excerpt(theirs, addr))
	}
	if _, api := other.do("GET", "/api/cases/"+token, nil); strings.Contains(api, addr) || !strings.Contains(api, token) {
		t.Errorf("the anonymous API shows the address: %.500s", api)
	}
	// The reporting browser's page lists no reply mail as a hand-off.
	if _, mine := a.do("GET", "/c/"+token, nil); strings.Contains(mine, `data-testid="mails"`) {
		t.Errorf("the visitor's page lists the reply mails as escalation mails: %s", excerpt(mine, "mails"))
	}
	// Staff's export has it.
	_, export := staff.do("GET", "/staff/c/"+token+"/export.json", nil)
	var doc struct {
		VisitorEmail string `json:"visitor_email"`
	}
	if err := json.Unmarshal([]byte(export), &doc); err != nil || doc.VisitorEmail != addr {
		t.Errorf("the staff export has the address %q (%v)", doc.VisitorEmail, err)
	}
}

// TestReplyWithoutMail: a reply to a visitor who left no address, or on a
// gatecheck without a mail server, queues nothing, and the staff form
// says why the visitor will not get it by mail.
func TestReplyWithoutMail(t *testing.T) {
	for _, tc := range []struct {
		name, email, word string
		mail              bool
	}{
		{"no address", "", "left no e-mail address", true},
		{"no mail server", "visitor@example.net", "has no mail server set up", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSMTPServer(t, nil)
			var a *testApp
			if tc.mail {
				a = mailApp(t, &testClock{}, srv, newReceiver(t, ""))
			} else {
				a = newApp(t, func(c *Config) { c.MailTick = 10 * time.Millisecond })
			}
			token := a.reportWithEmail(brokenGateway(t).URL, "", tc.email)
			staff := a.browser()
			staff.signInAs("ann", wizard.RoleAgent)
			_, sp := staff.do("GET", "/staff/c/"+token, nil)
			if !strings.Contains(sp, tc.word) {
				t.Errorf("the staff form does not say %q: %s", tc.word, excerpt(sp, "reply-mail"))
			}
			if resp, body := staff.do("POST", "/staff/c/"+token+"/notes", url.Values{"body": {"Try again now."}, "to": {"visitor"}}); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("reply: %d %s", resp.StatusCode, excerpt(body, "error"))
			}
			if resp, _ := staff.do("POST", "/staff/c/"+token+"/status", url.Values{"status": {"resolved"}}); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("status: %d", resp.StatusCode)
			}
			time.Sleep(100 * time.Millisecond)
			ms, err := a.db.CaseMails(context.Background(), mustCase(t, a.db, token).ID)
			if err != nil || len(ms) != 0 || len(srv.mails()) != 0 {
				t.Errorf("mails queued %d (%v), sent %d", len(ms), err, len(srv.mails()))
			}
			if _, page := a.do("GET", "/c/"+token, nil); !strings.Contains(page, "Try again now.") {
				t.Errorf("the reply is not on the visitor's page")
			}
		})
	}
}

// TestVisitorEmailForm: the address is optional, checked (refused with a
// clear message and the form kept as typed), prefilled from /start, and
// can be added, changed or removed later on the case page by the
// reporting browser only; a cross-site post is refused.
func TestVisitorEmailForm(t *testing.T) {
	srv := newSMTPServer(t, nil)
	a := mailApp(t, &testClock{}, srv, newReceiver(t, ""))
	gw := brokenGateway(t)

	if _, home := a.do("GET", "/start?url=https://shop.example/&email=ann@example.com", nil); !strings.Contains(home, `value="ann@example.com"`) ||
		!strings.Contains(html.UnescapeString(home), "Your e-mail, if you want the helpdesk's answer by mail") {
		t.Errorf("/start does not fill in the address: %s", excerpt(home, "email"))
	}
	for _, bad := range []string{"not an address", "ann@", "Ann <ann@example.com>", "ann@example.com\r\nBcc: x@example.com", strings.Repeat("a", 250) + "@example.com", "ann@localhost"} {
		resp, body := a.do("POST", "/cases", url.Values{"url": {gw.URL}, "ticket": {"INC-5"}, "email": {bad}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "e-mail address") {
			t.Errorf("%q: %d %s", bad, resp.StatusCode, excerpt(body, "error"))
			continue
		}
		if !strings.Contains(body, `value="`+html.EscapeString(gw.URL)+`"`) || !strings.Contains(body, `value="INC-5"`) {
			t.Errorf("%q: the form is not kept: %s", bad, excerpt(body, "<form"))
		}
		if kept := clip(bad, 4*maxEmail); !strings.Contains(body, `value="`+html.EscapeString(kept)+`"`) && !strings.Contains(bad, "\r") {
			t.Errorf("%q: the address typed is not kept", bad)
		}
	}

	// No address at first; added later from the case page.
	token := a.reportWithEmail(gw.URL, "", "")
	if c := mustCase(t, a.db, token); c.VisitorEmail != "" {
		t.Fatalf("an address without one typed: %q", c.VisitorEmail)
	}
	_, page := a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, `data-testid="email-form"`) || strings.Contains(page, `data-testid="email-kept"`) {
		t.Fatalf("no form for the address on the reporter's page: %s", excerpt(page, "email"))
	}
	resp, body := a.do("POST", "/c/"+token+"/email", url.Values{"email": {"ann@@example.com"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `value="ann@@example.com"`) || !strings.Contains(body, `id="email-error"`) {
		t.Errorf("an invalid address on the case page: %d %s", resp.StatusCode, excerpt(body, "email-error"))
	}
	if resp, _ := a.do("POST", "/c/"+token+"/email", url.Values{"email": {" ann@example.com "}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("saving the address: %d", resp.StatusCode)
	}
	if c := mustCase(t, a.db, token); c.VisitorEmail != "ann@example.com" {
		t.Errorf("kept %q", c.VisitorEmail)
	}
	if _, page := a.do("GET", "/c/"+token, nil); !strings.Contains(page, `data-testid="email-kept"`) {
		t.Errorf("the page does not say where answers go: %s", excerpt(page, "email"))
	}

	// Another browser with the link can neither see nor change it.
	other := a.browser()
	if resp, _ := other.do("POST", "/c/"+token+"/email", url.Values{"email": {"mallory@example.com"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another browser changed the address: %d", resp.StatusCode)
	}
	// Nor can another site, even in the reporter's browser.
	if resp, _ := a.do("POST", "/c/"+token+"/email", url.Values{"email": {"mallory@example.com"}},
		"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site post: %d", resp.StatusCode)
	}
	if c := mustCase(t, a.db, token); c.VisitorEmail != "ann@example.com" {
		t.Errorf("after refused changes: %q", c.VisitorEmail)
	}

	// Cleared: no more mail.
	if resp, _ := a.do("POST", "/c/"+token+"/email", url.Values{"email": {""}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("clearing the address: %d", resp.StatusCode)
	}
	if c := mustCase(t, a.db, token); c.VisitorEmail != "" {
		t.Errorf("after clearing: %q", c.VisitorEmail)
	}
}

// TestNoEmailFieldWithoutMail: a gatecheck that cannot send mail does not
// ask for an address it would never write to.
func TestNoEmailFieldWithoutMail(t *testing.T) {
	a := newApp(t)
	if _, home := a.do("GET", "/", nil); strings.Contains(home, `name="email"`) {
		t.Error("the home form asks for an address without a mail server")
	}
	token := a.reportWithEmail(brokenGateway(t).URL, "", "")
	if _, page := a.do("GET", "/c/"+token, nil); strings.Contains(page, `data-testid="email-form"`) {
		t.Error("the case page asks for an address without a mail server")
	}
}
