package web

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
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

// TestIncidentResolvedMailsEachVisitorOnce: staff setting an incident's
// cases resolved in one go tells each visitor who left an address, once,
// by a real e-mail through the outbox: one mail for the visitor of two of
// the cases naming both, one for another visitor, none for the case
// without an address; setting them resolved again, or another status,
// sends nothing more.
func TestIncidentResolvedMailsEachVisitorOnce(t *testing.T) {
	srv := newSMTPServer(t, nil)
	a := mailApp(t, &testClock{}, srv, newReceiver(t, ""))
	gw := brokenGateway(t)
	const pat, sam = "pat@example.net", "sam@example.net"
	pat1 := a.reportWithEmail(gw.URL+"/", "INC-1", pat)
	pat2 := a.reportWithEmail(gw.URL+"/shop", "INC-2", pat)
	sam1 := a.reportWithEmail(gw.URL+"/", "INC-3", sam)
	none := a.reportWithEmail(gw.URL+"/", "INC-4", "")

	staff := a.browser()
	staff.signInAs("ann", wizard.RoleAgent)
	_, page := staff.do("GET", incident+"?window=10m", nil)
	m := untilField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no until bound on the incident page: %s", excerpt(page, "<h1"))
	}
	setAll := func(status string) {
		t.Helper()
		if resp, body := staff.do("POST", incident+"/status", url.Values{"confirm": {"1"}, "status": {status}, "window": {"10m"}, "until": {m[1]}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST %s/status %s: %d %s", incident, status, resp.StatusCode, excerpt(body, "error"))
		}
	}
	setAll("resolved")
	waitFor(t, "two e-mails", func() bool { return len(srv.mails()) >= 2 })
	time.Sleep(150 * time.Millisecond)
	got := srv.mails()
	if len(got) != 2 {
		t.Fatalf("%d e-mails; want one for each visitor with an address, 2", len(got))
	}
	link := func(token string) string { return "Case: " + a.ts.URL + "/c/" + token }
	byTo := map[string]gotMail{}
	for _, g := range got {
		if len(g.to) != 1 {
			t.Fatalf("a mail to %v", g.to)
		}
		byTo[g.to[0]] = g
	}
	for _, want := range []struct {
		to       string
		has, not []string
	}{
		{pat, []string{link(pat1), link(pat2), "INC-1", "INC-2", "Status: resolved"}, []string{link(sam1), link(none)}},
		{sam, []string{link(sam1), "INC-3", "Status: resolved"}, []string{link(pat1), link(pat2), link(none)}},
	} {
		g, ok := byTo[want.to]
		if !ok {
			t.Errorf("no mail to %s (mails to %v)", want.to, slices.Collect(maps.Keys(byTo)))
			continue
		}
		for _, h := range want.has {
			if !strings.Contains(g.body, h) {
				t.Errorf("the mail to %s lacks %q:\n%s", want.to, h, g.body)
			}
		}
		for _, n := range want.not {
			if strings.Contains(g.body, n) {
				t.Errorf("the mail to %s has %q:\n%s", want.to, n, g.body)
			}
		}
	}
	// The mails are the outbox's: each on a case of its visitor, sent.
	var outbox int
	for _, token := range []string{pat1, pat2, sam1, none} {
		ms, err := a.db.CaseMails(context.Background(), mustCase(t, a.db, token).ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, mm := range ms {
			if mm.Kind == wizard.MailReply {
				outbox++
				if mm.State != wizard.DeliveryDelivered {
					t.Errorf("mail %d on %s: %s", mm.ID, token, mm.State)
				}
			}
		}
	}
	if outbox != 2 {
		t.Errorf("%d reply mails in the outbox; want 2", outbox)
	}
	for _, token := range []string{pat1, pat2, sam1, none} {
		if st := mustCase(t, a.db, token).Status; st != wizard.StatusResolved {
			t.Errorf("case %s is %s", token, st)
		}
	}

	// Resolved cases leave the incident: posting again changes nothing
	// and sends nothing.
	if resp, _ := staff.do("POST", incident+"/status", url.Values{"confirm": {"1"}, "status": {"resolved"}, "window": {"10m"}, "until": {m[1]}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("resolving the resolved incident again: %d", resp.StatusCode)
	}
	time.Sleep(150 * time.Millisecond)
	if n := len(srv.mails()); n != 2 {
		t.Errorf("%d e-mails after posting resolved again; want still 2", n)
	}
}

// TestConfirmedFixShowsTheHealthyCheck: once gatecheck's check confirmed
// "This fixed it", the visitor's page shows that check (the site working,
// in the words the report itself gives), not the old failing report's
// red box, nor "Keep checking until it works again" above "Solved".
func TestConfirmedFixShowsTheHealthyCheck(t *testing.T) {
	a := newApp(t)
	site := newFixSite(t)
	token := atFixWait(t, a, site.URL+"/")
	runs := a.runsOf(token)
	old := runs[len(runs)-1].Report
	if old == nil || !old.Problem() {
		t.Fatalf("the walk's report is not a failure: %+v", old)
	}
	_, before := a.do("GET", "/c/"+token, nil)
	oldWords := html.EscapeString(wizard.VisitorWords(old, time.Now()).Headline)
	if !strings.Contains(before, oldWords) || !strings.Contains(before, "Keep checking until it works again") {
		t.Fatalf("before the fix the page lacks the failing report: %s", excerpt(before, "headline"))
	}

	site.fixed.Store(true)
	if resp, body := a.postAnswer(token, "fix-wait", wizard.ChoiceFixed); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("this fixed it: %d %.300s", resp.StatusCode, body)
	}
	page := a.waitChecked(token)
	runs = a.runsOf(token)
	check := runs[len(runs)-1]
	if !strings.HasPrefix(check.Actor, "confirm:") || check.Report == nil || check.Report.Problem() {
		t.Fatalf("the newest run is not a passing check of the fix: %s %+v", check.Actor, check.Report)
	}
	// A site that works again says so, not "works from gatecheck's
	// server", which reads as if the trouble were the visitor's own.
	newWords := `data-testid="headline">The site works again<`
	if !strings.Contains(page, `data-testid="confirmation" data-confirmed`) {
		t.Fatalf("the fix was not confirmed: %s", excerpt(page, "step-title"))
	}
	if !strings.Contains(page, `class="card verdict healthy"`) || !strings.Contains(page, newWords) {
		t.Errorf("the page does not show the check that found the site working (%q): %s", newWords, excerpt(page, "headline"))
	}
	// Nor does it blame the visitor's side for an error gatecheck saw too.
	if !strings.Contains(page, "answers normally now.") {
		t.Errorf("the page does not say the site works again: %s", excerpt(page, "explain"))
	}
	for _, stale := range []string{oldWords, "Keep checking until it works again", "between you and the site"} {
		if strings.Contains(page, stale) {
			t.Errorf("after a confirmed fix the page still shows %q: %s", stale, excerpt(page, stale))
		}
	}
}

// TestHelpdeskClosedComesFirst: when staff resolve or close a case whose
// walk still asks a question, the visitor's page says so first and offers
// the question folded away ("still not working? carry on"); other
// statuses leave the question as it is. Once the visitor carries on (an
// answer after the helpdesk's word), the walk is theirs again, unfolded.
func TestHelpdeskClosedComesFirst(t *testing.T) {
	a := newApp(t)
	token := a.createCase(brokenGateway(t).URL, "")
	a.waitProbed(token)
	staff := a.browser()
	staff.signInAs("ann", wizard.RoleAgent)
	folds := map[wizard.Status]bool{wizard.StatusResolved: true, wizard.StatusUnresolved: true}

	// Each status in turn, the case's own (open) last, so each is a change.
	order := append(slices.Clone(wizard.Statuses[1:]), wizard.Statuses[0])
	if wizard.Statuses[0] != wizard.StatusOpen {
		t.Fatalf("the statuses begin with %s", wizard.Statuses[0])
	}
	for _, to := range order {
		if resp, body := staff.do("POST", "/staff/c/"+token+"/status", url.Values{"status": {string(to)}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("set %s: %d %s", to, resp.StatusCode, excerpt(body, "error"))
		}
		_, page := a.do("GET", "/c/"+token, nil)
		status, fold, title := strings.Index(page, `data-testid="helpdesk-status"`), strings.Index(page, `data-testid="carry-on"`), strings.Index(page, `id="step-title"`)
		if status < 0 || title < 0 {
			t.Fatalf("%s: no helpdesk status (%d) or no step (%d): %s", to, status, title, excerpt(page, "helpdesk"))
		}
		if got := fold >= 0; got != folds[to] {
			t.Errorf("%s: question folded away %v, want %v: %s", to, got, folds[to], excerpt(page, "step-title"))
		}
		if folds[to] && !(status < fold && fold < title && strings.Contains(page[fold:title], "Still not working for you? Carry on")) {
			t.Errorf("%s: the helpdesk's word does not come first, then the question offered as carry on (status %d, fold %d, question %d)", to, status, fold, title)
		}
		if !strings.Contains(page, `value="user"`) {
			t.Errorf("%s: the question's choices are gone", to)
		}
	}

	if resp, body := staff.do("POST", "/staff/c/"+token+"/status", url.Values{"status": {"resolved"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set resolved: %d %s", resp.StatusCode, excerpt(body, "error"))
	}
	if _, page := a.do("GET", "/c/"+token, nil); !strings.Contains(page, `data-testid="carry-on"`) {
		t.Fatalf("resolved again: not folded")
	}
	page := a.answer(token, "role-gateway", "user")
	if strings.Contains(page, `data-testid="carry-on"`) || !strings.Contains(page, `id="step-title"`) {
		t.Errorf("after the visitor carried on, the question is still folded: %s", excerpt(page, "step-title"))
	}
}

// TestBareNameWithPortTriesBothSchemes: a name typed with a port and no
// scheme ("127.0.0.1:8443") is probed as other bare names are, both
// schemes, on that port: the scheme that answers there is the report's
// subject, the other a finding, and a plain http port behind an allowlist
// is the allowlist, never the https binding nor a handshake failure.
func TestBareNameWithPortTriesBothSchemes(t *testing.T) {
	tlsSite := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<h1>shop</h1>") }))
	t.Cleanup(tlsSite.Close)
	roots := x509.NewCertPool()
	roots.AddCert(tlsSite.Certificate())
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<h1>shop over http</h1>") }))
	t.Cleanup(plain.Close)
	a := newApp(t, withPorts(t, 0, 0, roots))

	for _, tc := range []struct {
		name   string
		port   int
		scheme string // the report's
		code   string
	}{
		{"http behind an allowlist", portOf(t, iisAllowlist(t).Listener.Addr().String()), "http", "access_blocked"},
		{"https that works", portOf(t, tlsSite.Listener.Addr().String()), "https", "healthy"},
		{"http that works", portOf(t, plain.Listener.Addr().String()), "http", "healthy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hostPort := "127.0.0.1:" + strconv.Itoa(tc.port)
			token := a.createCase(hostPort, "")
			a.waitProbed(token)
			d := a.bareDoc(token)
			rep := d.Probe.Report
			want := tc.scheme + "://" + hostPort + "/"
			if !d.NoScheme || !rep.NoScheme || rep.URL != want || rep.Verdict.Code != tc.code {
				t.Fatalf("case %s (no_scheme %v): report of %s (no_scheme %v) %s; want %s on %s", d.URL, d.NoScheme, rep.URL, rep.NoScheme, rep.Verdict.Code, tc.code, want)
			}
			t.Logf("%s: findings %+v", want, rep.Findings)
			if tc.scheme == "http" && len(rep.Findings) == 0 {
				t.Errorf("https on port %d, which does not speak it, is not a finding", tc.port)
			}
			for _, f := range rep.Findings {
				if f.Code == "https_unavailable" {
					t.Errorf("a finding leads to the https binding: %+v", f)
				}
			}
		})
	}
}
