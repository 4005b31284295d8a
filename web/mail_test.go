package web

import (
	"context"
	"errors"
	"html"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/gatecheck/gatecheck/mailer"
	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

// smtpServer is a real SMTP server on loopback (emersion/go-smtp) that
// keeps what it is sent, asks for PLAIN authentication, and refuses at
// RCPT or DATA while told to.
type smtpServer struct {
	t    *testing.T
	addr string
	srv  *smtp.Server
	mu   sync.Mutex
	got  []gotMail
	// refuse, while set, is the stage ("rcpt" or "data") at which the
	// server answers an error, and code that error's code.
	refuse string
	code   int
	tries  int
}

type gotMail struct {
	from string
	to   []string
	msg  *netmail.Message
	body string
}

const smtpUser, smtpPass = "gatecheck", "s3cret pass"

func newSMTPServer(t *testing.T, ln net.Listener) *smtpServer {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	s := &smtpServer{t: t, addr: ln.Addr().String()}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{s: s}, nil }))
	s.srv.Domain, s.srv.AllowInsecureAuth = "mail.test", true
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// url is the --smtp-url of the server (no TLS on loopback).
func (s *smtpServer) url() string {
	return "smtp://" + url.UserPassword(smtpUser, smtpPass).String() + "@" + s.addr + "?starttls=none&auth=plain-noenc"
}

func (s *smtpServer) set(stage string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse, s.code = stage, code
}

func (s *smtpServer) mails() []gotMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func (s *smtpServer) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tries
}

type smtpSession struct {
	s      *smtpServer
	authed bool
	from   string
	to     []string
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != smtpUser || pass != smtpPass {
			return errors.New("invalid credentials")
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *smtpSession) refused(stage string) error {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.refuse != stage {
		return nil
	}
	return &smtp.SMTPError{Code: ss.s.code, EnhancedCode: smtp.EnhancedCode{ss.s.code / 100, 0, 0}, Message: "not now (test)"}
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.s.mu.Lock()
	ss.s.tries++
	ss.s.mu.Unlock()
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.refused("rcpt"); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.refused("data"); err != nil {
		return err
	}
	msg, err := netmail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(msg.Body)
	ss.s.mu.Lock()
	ss.s.got = append(ss.s.got, gotMail{from: ss.from, to: ss.to, msg: msg, body: decodeQP(string(body), msg.Header.Get("Content-Transfer-Encoding"))})
	ss.s.mu.Unlock()
	return nil
}

func (ss *smtpSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *smtpSession) Logout() error { return nil }

// decodeQP undoes the transfer encoding of a plain-text body.
func decodeQP(s, enc string) string {
	if !strings.EqualFold(enc, "quoted-printable") {
		return s
	}
	b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(s)))
	if err != nil {
		return s
	}
	return string(b)
}

// walkToSupport takes a case of a broken gateway to the "Tell the site's
// support" escalation, as a visitor who uses the site, and returns its
// page.
func (a *testApp) walkToSupport(token string) string {
	a.t.Helper()
	a.waitProbed(token)
	a.answer(token, "role-gateway", "user")
	page := a.answer(token, "fix-wait", wizard.ChoiceBroken)
	if !strings.Contains(page, "Tell the site&#39;s support") {
		a.t.Fatalf("not at the escalation: %s", excerpt(page, "<h1"))
	}
	return page
}

// verdictSummary is what the API says the probes found.
func verdictSummary(doc map[string]any) string {
	p, _ := doc["probe"].(map[string]any)
	rep, _ := p["report"].(map[string]any)
	v, _ := rep["verdict"].(map[string]any)
	s, _ := v["summary"].(string)
	return s
}

// mailto returns the page's mailto: link, "" without one.
func mailto(page string) string {
	m := regexp.MustCompile(`<a href="(mailto:[^"]*)" data-testid="mailto"`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// TestEscalationMailto: an escalation to an e-mail address offers a
// mailto: link whose subject and body carry what gatecheck found and the
// case's link (the request's address without a BaseURL); a contact that
// is a phone number or a web page gets none, and is named as set.
func TestEscalationMailto(t *testing.T) {
	for _, tc := range []struct {
		contact, email string
	}{
		{"help@example.com", "help@example.com"},
		{"Shop support <support@shop.example>", "support@shop.example"},
		{"+44 20 7946 0000", ""},
		{"https://shop.example/support", ""},
	} {
		t.Run(tc.contact, func(t *testing.T) {
			a := newApp(t, func(c *Config) { c.Settings.SupportContact = tc.contact })
			gw := brokenGateway(t)
			token := a.createCase(gw.URL, "")
			page := a.walkToSupport(token)
			if !strings.Contains(page, "Contact: "+html.EscapeString(tc.contact)) {
				t.Errorf("the contact is not named as set: %s", excerpt(page, "Send this to"))
			}
			if strings.Contains(page, `data-testid="send-mail"`) {
				t.Error("a Send button without a mail server")
			}
			if !strings.Contains(page, ">I have sent it myself<") {
				t.Errorf("the choice does not say who sent it: %s", excerpt(page, "choices"))
			}
			link := mailto(page)
			if tc.email == "" {
				if link != "" || strings.Contains(page, "mailto:") {
					t.Errorf("a mailto: link for %q: %s", tc.contact, link)
				}
				return
			}
			u, err := url.Parse(link)
			if err != nil || u.Scheme != "mailto" || u.Opaque != tc.email {
				t.Fatalf("mailto link %q (%v)", link, err)
			}
			q := u.Query()
			subject, body := q.Get("subject"), q.Get("body")
			found := verdictSummary(a.waitProbed(token))
			if found == "" {
				t.Fatal("no verdict summary in the case")
			}
			if !strings.HasPrefix(subject, "127.0.0.1: ") || !strings.Contains(subject, strings.TrimSuffix(found, ".")) {
				t.Errorf("subject %q lacks what was found (%q)", subject, found)
			}
			caseLink := a.ts.URL + "/c/" + token
			for _, want := range []string{"Case: " + caseLink + "\r\n", "What gatecheck found: " + found, "Requester's IP address", "What was tried:", "Wait a few minutes"} {
				if !strings.Contains(body, want) {
					t.Errorf("the mailto body lacks %q:\n%s", want, body)
				}
			}
			if strings.Contains(body, "\n") && !strings.Contains(body, "\r\n") {
				t.Error("the body's line breaks are not CRLF")
			}
		})
	}
}

// TestEscalationWithoutContact: with no contact set the step says so,
// names nobody, and leaves the summary and the case link to copy.
func TestEscalationWithoutContact(t *testing.T) {
	a := newApp(t)
	gw := brokenGateway(t)
	token := a.createCase(gw.URL, "")
	page := a.walkToSupport(token)
	if !strings.Contains(page, `data-testid="no-contact"`) || !strings.Contains(page, "has no contact set") {
		t.Errorf("the step does not say there is no contact: %s", excerpt(page, "Send this to"))
	}
	for _, bad := range []string{"To: your helpdesk", "(your helpdesk)", "Contact: your helpdesk", "mailto:", `data-testid="send-mail"`} {
		if strings.Contains(page, bad) {
			t.Errorf("the page says %q", bad)
		}
	}
	if !strings.Contains(page, `id="summary"`) || !strings.Contains(page, `id="case-link"`) || !strings.Contains(page, "Case: "+a.ts.URL+"/c/"+token) {
		t.Error("the summary (with the case link) or the link itself is missing")
	}
}

// mailApp is an application with a support address and a mail server,
// posting events to rc, on a clock the test moves.
func mailApp(t *testing.T, clock *testClock, srv *smtpServer, rc *receiver, more ...func(*Config)) *testApp {
	m, err := mailer.New(srv.url(), "gatecheck <gatecheck@example.org>")
	if err != nil {
		t.Fatal(err)
	}
	return newApp(t, func(c *Config) {
		c.Settings.SupportContact = "help@example.com"
		c.Mailer, c.MailTick, c.Now = m, 10*time.Millisecond, clock.now
		c.WebhookURLs, c.WebhookTick = []string{rc.URL}, 10*time.Millisecond
		for _, f := range more {
			f(c)
		}
	})
}

// TestEscalationSendByMail: "Send to …" sends one real e-mail with the
// summary through the SMTP server (authenticated), the case ends
// escalated, the timeline shows the mail, case.escalated goes out, and a
// second press sends nothing more.
func TestEscalationSendByMail(t *testing.T) {
	srv := newSMTPServer(t, nil)
	rc := newReceiver(t, "")
	clock := &testClock{}
	a := mailApp(t, clock, srv, rc)
	gw := brokenGateway(t)
	token := a.createCase(gw.URL, "INC-9")
	page := a.walkToSupport(token)
	if !strings.Contains(page, `data-testid="send-mail"`) || !strings.Contains(page, "Send to help@example.com") {
		t.Fatalf("no Send button: %s", excerpt(page, "Send this to"))
	}
	want := mailto(page)
	resp, body := a.do("POST", "/c/"+token+"/send", url.Values{"node": {"escalate-support"}})
	if resp.StatusCode != 303 {
		t.Fatalf("send: %d %s", resp.StatusCode, excerpt(body, "error"))
	}
	waitFor(t, "the e-mail", func() bool { return len(srv.mails()) == 1 })
	got := srv.mails()[0]
	u, _ := url.Parse(want)
	subject, text := u.Query().Get("subject"), u.Query().Get("body")
	h := got.msg.Header
	dec := new(mime.WordDecoder)
	if got.from != "gatecheck@example.org" || !slices.Equal(got.to, []string{"help@example.com"}) ||
		!strings.Contains(h.Get("To"), "<help@example.com>") || !strings.Contains(h.Get("From"), "<gatecheck@example.org>") ||
		decoded(dec, h.Get("Subject")) != subject || !strings.Contains(h.Get("Message-Id"), "@example.org>") {
		t.Errorf("envelope %s → %v, headers %v", got.from, got.to, h)
	}
	norm := func(s string) string { return strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n")) }
	if norm(got.body) != norm(text) || !strings.Contains(got.body, "Case: "+a.ts.URL+"/c/"+token) || !strings.Contains(got.body, "Ticket: INC-9") {
		t.Errorf("body:\n%s\nwant:\n%s", got.body, text)
	}

	_, page = a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, "The hand-off") || !strings.Contains(page, `data-state="delivered"`) {
		t.Errorf("after sending: %s", excerpt(page, "<h1"))
	}
	if doc := a.waitProbed(token); doc["status"] != "escalated" {
		t.Errorf("status %v", doc["status"])
	}
	waitFor(t, "case.escalated", func() bool { return slices.Contains(rc.events(), wizard.EventCaseEscalated) })

	a.signInAs("ann", wizard.RoleAgent)
	_, staff := a.do("GET", "/staff/c/"+token, nil)
	for _, w := range []string{"Escalation summary queued by e-mail to help@example.com &lt;help@example.com&gt;", "taken by the mail server (attempt 1)", "gatecheck mail", "Status open → escalated"} {
		if !strings.Contains(staff, w) {
			t.Errorf("the staff timeline lacks %q: %s", w, excerpt(staff, "Timeline"))
		}
	}
	// The case moved on: another press is refused and sends nothing.
	if resp, _ := a.do("POST", "/c/"+token+"/send", url.Values{"node": {"escalate-support"}}); resp.StatusCode != 409 {
		t.Errorf("a second send: %d", resp.StatusCode)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(srv.mails()); n != 1 {
		t.Errorf("%d e-mails", n)
	}
}

// TestEscalationMailRetriedAcrossRestart: a mail server that refuses
// (451 at RCPT, then 554 at DATA) gets the mail again after the backoff;
// gatecheck restarts in between on the same database; once the server
// takes mail again the summary is delivered, exactly once.
func TestEscalationMailRetriedAcrossRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatecheck.db")
	srv := newSMTPServer(t, nil)
	srv.set("rcpt", 451)
	m, err := mailer.New(srv.url(), "gatecheck@example.org")
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{}
	start := func() *testApp {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		a := &testApp{t: t, db: db, client: &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Jar: newReporterJar()}}
		a.srv = New(Config{Store: db, Webhooks: db, Tree: wizard.Default(), TreeSource: wizard.DefaultSource(), Logger: discardLog(),
			Prober: probes.New(probes.Config{Timeout: 3 * time.Second, Samples: 1, SampleSpacing: time.Millisecond,
				AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}),
			Settings: wizard.Settings{SupportContact: "help@example.com"}, ProbesPerMinute: 600, ProbeBurst: 100, HostProbesPerMinute: -1,
			Mailer: m, MailTick: 10 * time.Millisecond, Now: clock.now, BaseURL: "https://gatecheck.example"})
		if err := a.srv.Start(ctx); err != nil {
			t.Fatal(err)
		}
		a.ts = httptest.NewServer(a.srv)
		return a
	}
	stop := func(a *testApp) {
		a.ts.Close()
		a.srv.Close(ctx)
		a.db.Close()
	}
	var token string
	mailsOf := func(a *testApp) []*wizard.Mail {
		ms, err := a.db.CaseMails(ctx, mustCase(t, a.db, token).ID)
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	a := start()
	gw := brokenGateway(t)
	token = a.createCase(gw.URL, "")
	a.walkToSupport(token)
	if resp, body := a.do("POST", "/c/"+token+"/send", url.Values{"node": {"escalate-support"}}); resp.StatusCode != 303 {
		t.Fatalf("send: %d %s", resp.StatusCode, excerpt(body, "error"))
	}
	waitFor(t, "the refused attempt", func() bool { ms := mailsOf(a); return len(ms) == 1 && ms[0].Attempts == 1 })
	if ms := mailsOf(a); !strings.Contains(ms[0].LastError, "451") || ms[0].State != wizard.DeliveryPending {
		t.Errorf("after a 451: %+v", ms[0])
	}
	_, page := a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, `data-state="pending"`) || !strings.Contains(page, "has not taken it yet (1 attempts)") {
		t.Errorf("the page does not say the mail waits: %s", excerpt(page, "mails"))
	}
	// Not before the backoff.
	time.Sleep(100 * time.Millisecond)
	if n := srv.attempts(); n != 1 {
		t.Fatalf("%d attempts before the backoff passed", n)
	}
	srv.set("data", 554)
	clock.advance(mailBackoff[0] + time.Second)
	waitFor(t, "the second refused attempt", func() bool { ms := mailsOf(a); return len(ms) == 1 && ms[0].Attempts == 2 })
	if ms := mailsOf(a); !strings.Contains(ms[0].LastError, "554") {
		t.Errorf("after a 554: %+v", ms[0])
	}
	stop(a)

	// The server takes mail again; a new gatecheck on the same file sends
	// the mail once its backoff has passed.
	srv.set("", 0)
	clock.advance(mailBackoff[1] + time.Second)
	a = start()
	defer stop(a)
	waitFor(t, "the e-mail after the restart", func() bool { return len(srv.mails()) == 1 })
	time.Sleep(100 * time.Millisecond)
	if n := len(srv.mails()); n != 1 {
		t.Errorf("%d e-mails delivered", n)
	}
	ms, err := a.db.CaseMails(ctx, mustCase(t, a.db, token).ID)
	if err != nil || len(ms) != 1 || ms[0].State != wizard.DeliveryDelivered || ms[0].Attempts != 3 {
		t.Errorf("the outbox: %+v %v", ms, err)
	}
	if got := srv.mails()[0]; !strings.Contains(got.body, "Case: https://gatecheck.example/c/"+token) {
		t.Errorf("body: %s", got.body)
	}
	m2 := a.scrape()
	if d, r := value(m2, "gatecheck_mail_attempts_total", "result", "delivered"), value(m2, "gatecheck_mail_attempts_total", "result", "retry"); d != 1 || r != 0 {
		t.Errorf("mail attempts in the metrics of the restarted server: %v delivered, %v retried; want 1 and 0", d, r)
	}
}

func decoded(dec *mime.WordDecoder, s string) string {
	d, err := dec.DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

func mustCase(t *testing.T, db *sqlite.DB, token string) *wizard.Case {
	t.Helper()
	c, err := db.Case(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHandedOverSaysWhereTheMailIs (issue 16, item 5): the end of a
// hand-off claims nothing the mail's state contradicts. While gatecheck's
// mail waits, and after it gave up, the page says so and never that the
// case is with the people who can fix it.
func TestHandedOverSaysWhereTheMailIs(t *testing.T) {
	srv := newSMTPServer(t, nil)
	srv.set("rcpt", 451)
	clock := &testClock{}
	a := mailApp(t, clock, srv, newReceiver(t, ""), func(c *Config) { c.MailBackoff = []time.Duration{time.Minute} })
	token := a.createCase(brokenGateway(t).URL, "")
	a.walkToSupport(token)
	if resp, body := a.do("POST", "/c/"+token+"/send", url.Values{"node": {"escalate-support"}}); resp.StatusCode != 303 {
		t.Fatalf("send: %d %s", resp.StatusCode, excerpt(body, "error"))
	}
	check := func(state, says string) {
		t.Helper()
		_, page := a.do("GET", "/c/"+token, nil)
		page = html.UnescapeString(page)
		if !strings.Contains(page, "You chose to hand this case over") || !strings.Contains(page, `data-state="`+state+`"`) || !strings.Contains(page, says) {
			t.Errorf("with the mail %s, the end says: %s", state, excerpt(page, "<h1"))
		}
		for _, lie := range []string{"is with the people who can fix it", "gatecheck sent the summary"} {
			if strings.Contains(page, lie) {
				t.Errorf("with the mail %s, the end says %q", state, lie)
			}
		}
	}
	waitFor(t, "the refused attempt", func() bool { return srv.attempts() == 1 })
	waitFor(t, "the attempt recorded", func() bool {
		ms, _ := a.db.CaseMails(context.Background(), mustCase(t, a.db, token).ID)
		return len(ms) == 1 && ms[0].Attempts == 1
	})
	check("pending", "has not taken it yet")
	clock.advance(2 * time.Minute)
	waitFor(t, "gatecheck giving up", func() bool {
		ms, _ := a.db.CaseMails(context.Background(), mustCase(t, a.db, token).ID)
		return len(ms) == 1 && ms[0].State == wizard.DeliveryFailed
	})
	check("failed", "gatecheck has given up")
}
