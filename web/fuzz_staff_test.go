package web

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// validHeaderValue: only what an HTTP server lets through reaches a
// handler.
func validHeaderValue(v string) bool { return httpguts.ValidHeaderFieldValue(v) }

// leavesSite reports whether a redirect to ref, read as a browser reads
// it, goes to another host.
func leavesSite(ref string) bool {
	ref = strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, strings.Trim(ref, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f "))
	u, err := url.Parse(ref)
	if err != nil {
		return false
	}
	base, _ := url.Parse("https://gatecheck.example/staff/login")
	to := base.ResolveReference(u)
	return to.Scheme != base.Scheme || to.Host != base.Host
}

// FuzzLogin posts name, password and next to /staff/login. Only the right
// password for the account (the name trimmed, ASCII case aside) signs in: a session cookie,
// HttpOnly and SameSite=Lax, and a 303 to safeNext(next), which stays on
// the site. Anything else is a 401 whose form keeps the name and next,
// and sets no cookie.
func FuzzLogin(f *testing.F) {
	f.Add(fuzzStaff, fuzzPassword, "/staff?status=open", "")
	f.Add(" ann\t", fuzzPassword, "", "")
	f.Add(fuzzStaff, "wrong password", "/staff/c/x", "")
	f.Add("Ann", fuzzPassword, "//evil.example", "")
	f.Add(fuzzStaff, fuzzPassword, "https://evil.example/", "")
	f.Add(fuzzStaff, fuzzPassword, "/staff\\..\\evil", "")
	f.Add(fuzzStaff, fuzzPassword, "/staff/../..//evil.example", "")
	f.Add(fuzzStaff, fuzzPassword, "/staff\r\nSet-Cookie: x=1", "")
	f.Add(fuzzStaff, fuzzPassword+strings.Repeat("x", 80), "", "")
	f.Add(fuzzStaff, "", "", "password=correct+horse+battery")
	f.Add(fuzzStaff, fuzzPassword, "", "next=%zz")
	for _, s := range nastyStrings {
		f.Add(s, s, s, "")
	}
	a := newFuzzApp(f)
	f.Fuzz(func(t *testing.T, name, password, next, extra string) {
		body := formBody(extra, "name", name, "password", password, "next", next)
		rec := a.serve("POST", &url.URL{Path: "/staff/login"}, body, false)
		page := checkResponse(t, "POST /staff/login", rec)
		form, ok := a.readForm(t, body, rec)
		if !ok {
			return
		}
		n, pw, nx := strings.TrimSpace(form.Get("name")), form.Get("password"), form.Get("next")
		var session *http.Cookie
		for _, c := range rec.Result().Cookies() {
			if c.Name == sessionCookie {
				session = c
			}
		}
		if !noCaseEqual(n, fuzzStaff) || pw != fuzzPassword {
			if rec.Code != http.StatusUnauthorized || session != nil || !strings.Contains(page, "do not match") ||
				!strings.Contains(page, attr("value", clip(n, 100))) || !strings.Contains(page, attr("value", safeNext(nx))) {
				t.Fatalf("name %q password %q next %q: %d: %.1000s", n, pw, nx, rec.Code, page)
			}
			return
		}
		loc := rec.Header().Get("Location")
		want := httptest.NewRecorder()
		http.Redirect(want, httptest.NewRequest("POST", "/staff/login", nil), safeNext(nx), http.StatusSeeOther)
		if rec.Code != http.StatusSeeOther || loc != want.Header().Get("Location") || leavesSite(loc) {
			t.Fatalf("sign-in with next %q: %d to %q", nx, rec.Code, loc)
		}
		if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode {
			t.Fatalf("session cookie %+v", session)
		}
		if u, err := a.db.SessionUser(context.Background(), session.Value); err != nil || u.Name != fuzzStaff {
			t.Fatalf("the session is not %s's: %v %v", fuzzStaff, u, err)
		}
	})
}

// noCaseEqual is SQLite's COLLATE NOCASE, which account names have: ASCII
// letters fold, nothing else does.
func noCaseEqual(a, b string) bool {
	lower := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'A' && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, s)
	}
	return utf8Valid(a) && lower(a) == lower(b)
}

// FuzzAddNote posts a note. Its text is stored as sent, invalid UTF-8
// replaced and trimmed, by the signed-in author, when that leaves 1 to
// 10000 characters; otherwise the case page says why with a 422 and nothing is
// stored.
func FuzzAddNote(f *testing.F) {
	f.Add("Rang the customer <b>back</b>", "")
	f.Add("  spaced\r\n", "")
	f.Add(strings.Repeat("n", 10000), "")
	f.Add(strings.Repeat("n", 10001), "")
	f.Add(strings.Repeat("é", 5001), "")
	f.Add(" \xff ", "")
	f.Add("first", "body=second")
	f.Add("x", "body=%zz")
	f.Add("x", "a;b")
	for _, s := range nastyStrings {
		f.Add(s, "")
	}
	a := newFuzzApp(f)
	f.Fuzz(func(t *testing.T, text, extra string) {
		ctx := context.Background()
		st := a.newCase(t, uint8(len(a.reports)), nil)
		body := formBody(extra, "body", text)
		rec := a.serve("POST", &url.URL{Path: "/staff/c/" + st.c.Token + "/notes"}, body, true)
		page := checkResponse(t, "POST notes", rec)
		notes, err := a.db.Notes(ctx, st.c.ID)
		if err != nil {
			t.Fatal(err)
		}
		form, ok := a.readForm(t, body, rec)
		if !ok {
			if len(notes) != 0 {
				t.Fatalf("an unread form stored %d notes", len(notes))
			}
			return
		}
		want := strings.TrimSpace(strings.ToValidUTF8(form.Get("body"), "\uFFFD"))
		if want == "" || utf8.RuneCountInString(want) > maxNote {
			msg := "The note is empty."
			if want != "" {
				msg = fmt.Sprintf("The note is %d characters long; notes take up to 10000.", utf8.RuneCountInString(want))
			}
			// The refused note is given back to edit.
			if rec.Code != http.StatusUnprocessableEntity || len(notes) != 0 || !strings.Contains(page, html.EscapeString(msg)) ||
				!strings.Contains(page, html.EscapeString(clip(strings.ToValidUTF8(form.Get("body"), "\uFFFD"), 4*maxNote))+"</textarea>") {
				t.Fatalf("note of %d bytes: %d, %d notes: %.500s", len(want), rec.Code, len(notes), page)
			}
			return
		}
		wantRedirect(t, "note", rec, "/staff/c/"+st.c.Token+"?done=note")
		if len(notes) != 1 || notes[0].Body != want || notes[0].Author != fuzzStaff {
			t.Fatalf("note %q stored as %+v", want, notes)
		}
		// Shown as text.
		if page := a.serve("GET", &url.URL{Path: "/staff/c/" + st.c.Token}, "", true).Body.String(); !strings.Contains(page, html.EscapeString(want)) {
			t.Fatalf("the case page does not show the note %q", want)
		}
	})
}

// FuzzSetStatus posts a status. One of wizard.Statuses is stored and its
// change recorded (none when it does not change); anything else is a 422
// that names it, and nothing changes.
func FuzzSetStatus(f *testing.F) {
	for i, s := range wizard.Statuses {
		f.Add(uint8(i), string(s), "")
	}
	f.Add(uint8(0), "Open", "")
	f.Add(uint8(1), "open ", "")
	f.Add(uint8(0), "resolved", "status=open")
	f.Add(uint8(0), "", "status=%zz")
	for _, s := range nastyStrings {
		f.Add(uint8(2), s, "")
	}
	a := newFuzzApp(f)
	f.Fuzz(func(t *testing.T, from uint8, status, extra string) {
		ctx := context.Background()
		st := a.newCase(t, uint8(len(a.reports)), nil)
		start := wizard.Statuses[int(from)%len(wizard.Statuses)]
		if err := a.db.SetStatus(ctx, st.c.ID, start, "setup"); err != nil {
			t.Fatal(err)
		}
		before, _ := a.db.StatusChanges(ctx, st.c.ID)
		body := formBody(extra, "status", status)
		rec := a.serve("POST", &url.URL{Path: "/staff/c/" + st.c.Token + "/status"}, body, true)
		page := checkResponse(t, "POST status", rec)
		c, _ := a.db.Case(ctx, st.c.Token)
		changes, _ := a.db.StatusChanges(ctx, st.c.ID)
		unchanged := func() {
			t.Helper()
			if c.Status != start || len(changes) != len(before) {
				t.Fatalf("a refused status changed the case: %s, %v", c.Status, changes)
			}
		}
		form, ok := a.readForm(t, body, rec)
		if !ok {
			unchanged()
			return
		}
		to := wizard.Status(form.Get("status"))
		if !to.Valid() {
			if msg := fmt.Sprintf("%q is not a case status", to); rec.Code != http.StatusUnprocessableEntity || !strings.Contains(page, html.EscapeString(msg)) {
				t.Fatalf("status %q: %d: %.500s", to, rec.Code, page)
			}
			unchanged()
			return
		}
		wantRedirect(t, "status "+string(to), rec, "/staff/c/"+st.c.Token+"?done=status")
		if c.Status != to {
			t.Fatalf("status %s stored as %s", to, c.Status)
		}
		if to == start && len(changes) != len(before) {
			t.Fatalf("setting the same status recorded a change: %v", changes)
		}
		if to != start {
			if len(changes) != len(before)+1 {
				t.Fatalf("change %s -> %s recorded as %+v", start, to, changes)
			}
			if last := changes[len(changes)-1]; last.From != start || last.To != to || last.Actor != fuzzStaff {
				t.Fatalf("change %s -> %s recorded as %+v", start, to, last)
			}
		}
	})
}

// FuzzRerun posts to /staff/c/{token}/probe with a session cookie: only
// the real session may queue a run (a 401 otherwise, and nothing queued);
// a second request while the run waits is a 409.
func FuzzRerun(f *testing.F) {
	f.Add("", false)
	f.Add("", true)
	f.Add("bogus", false)
	f.Add("\"quoted\"", false)
	f.Add("a; gatecheck_session=b", false)
	f.Add("%00", false)
	for _, s := range nastyStrings {
		f.Add(s, false)
	}
	a := newFuzzApp(f)
	f.Fuzz(func(t *testing.T, session string, twice bool) {
		ctx := context.Background()
		if session == "" {
			session = a.session
		}
		cookie := sessionCookie + "=" + session
		if !validHeaderValue(cookie) {
			return
		}
		st := a.newCase(t, 0, nil)
		path := &url.URL{Path: "/staff/c/" + st.c.Token + "/probe"}
		rec := a.serve("POST", path, "", false, "Cookie", cookie)
		checkResponse(t, "POST probe", rec)
		runs, _ := a.db.ProbeRuns(ctx, st.c.ID)
		if u, err := a.db.SessionUser(ctx, readCookie(cookie)); err != nil || u.Name != fuzzStaff {
			if rec.Code != http.StatusUnauthorized || len(runs) != 1 {
				t.Fatalf("cookie %q: %d, %d runs", cookie, rec.Code, len(runs))
			}
			return
		}
		wantRedirect(t, "re-run", rec, "/staff/c/"+st.c.Token+"?done=probe")
		if len(runs) != 2 || runs[1].State != wizard.ProbeQueued || runs[1].Actor != fuzzStaff {
			t.Fatalf("runs after a re-run: %+v", runs)
		}
		if twice {
			rec := a.serve("POST", path, "", false, "Cookie", cookie)
			page := checkResponse(t, "POST probe again", rec)
			if runs, _ := a.db.ProbeRuns(ctx, st.c.ID); rec.Code != http.StatusConflict || !strings.Contains(page, "already running") || len(runs) != 2 {
				t.Fatalf("a second re-run: %d, %d runs", rec.Code, len(runs))
			}
		}
	})
}

// readCookie is the session a Cookie header carries, as net/http reads it.
func readCookie(header string) string {
	r := http.Request{Header: http.Header{"Cookie": {header}}}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// listCase is a case of the list's fixture, as the filters see it.
type listCase struct {
	status       wizard.Status
	verdict      probes.Code
	host, ticket string
	created      time.Time
	note         string
}

var (
	listCount = regexp.MustCompile(`<p class="muted">(\d+) cases</p>`)
	listLink  = regexp.MustCompile(`<a href="([^"]*)" rel="(prev|next)">`)
)

// FuzzCaseList gets /staff with every filter. The filter handed to the
// store is what the query says (unknown status or verdict, and dates not
// written 2026-11-21, dropped and explained; text clipped and trimmed; a
// page from 2 to 99999, or 1), the search never fails whatever its FTS
// syntax, the count is right for the fixture's cases, and the previous
// and next links carry the same filters.
func FuzzCaseList(f *testing.F) {
	f.Add("open", "gateway_502", "shop.example.com", "INC-1", "2026-01-01", "2026-01-31", "", "1")
	f.Add("", "", "SHOP.EXAMPLE.COM ", " INC-1", "", "", "", "2")
	f.Add("bogus", "bogus", "", "", "yesterday", "2026-02-30", "", "0")
	f.Add("", "", "", "", "1000-01-01", "", "", "")
	f.Add("", "", "", "", "", "9999-12-31", "", "")
	f.Add("", "", "", "", "2262-04-12", "1677-09-21", "", "")
	f.Add("", "", "", "", "", "", "customer", "99999")
	f.Add("", "", "", "", "", "", "INC-1", "-1")
	f.Add("", "", "", "", "", "", `"unterminated`, "+3")
	f.Add("", "", "", "", "", "", `NEAR(a b) OR c* AND NOT -d`, "1e3")
	f.Add("", "", "", "", "", "", `(a OR b) ticket:INC "x" ^y`, "")
	f.Add("", "", "", "", "", "", `— « » ‒`, "")
	for _, s := range nastyStrings {
		f.Add(s, s, s, s, s, s, s, s)
	}
	a := newFuzzApp(f)
	fixture := listFixture(f, a)
	f.Fuzz(func(t *testing.T, status, verdict, host, ticket, from, to, q, page string) {
		query := url.Values{}
		for k, v := range map[string]string{"status": status, "verdict": verdict, "host": host, "ticket": ticket, "from": from, "to": to, "q": q, "page": page} {
			query.Set(k, v)
		}
		u, _ := target("/staff", query.Encode())
		rec := a.serve("GET", u, "", true)
		body := checkResponse(t, "GET /staff", rec)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", u, rec.Code)
		}
		got := a.store.lastFilter()

		// The filter, as the query says.
		want := wizard.CaseFilter{Host: strings.TrimSpace(clip(host, 300)), Ticket: strings.TrimSpace(clip(ticket, 100)), Query: clip(q, 300), Limit: pageSize, CountUpTo: countUpTo}
		problems := false
		if wizard.Status(status).Valid() {
			want.Status = wizard.Status(status)
		} else if status != "" {
			problems = true
		}
		if slices.Contains(probes.Codes, probes.Code(verdict)) {
			want.Verdict = verdict
		} else if verdict != "" {
			problems = true
		}
		if d, err := time.Parse("2006-01-02", from); err == nil {
			want.From = d
		} else if from != "" {
			problems = true
		}
		if d, err := time.Parse("2006-01-02", to); err == nil {
			want.To = d.Add(24 * time.Hour)
		} else if to != "" {
			problems = true
		}
		if p, err := strconv.Atoi(page); err == nil && p > 1 && p < 100000 {
			want.Offset = (p - 1) * pageSize
		}
		if got != want {
			t.Fatalf("GET %s: filter %+v, want %+v", u, got, want)
		}
		if problems != strings.Contains(body, "Some filters were ignored") {
			t.Fatalf("GET %s: problems %v, page says otherwise", u, problems)
		}
		for _, s := range []string{got.Host, got.Ticket, got.Query} {
			if !utf8Valid(s) {
				t.Fatalf("GET %s: a filter is not UTF-8: %q", u, s)
			}
		}
		if got.Host != strings.TrimSpace(got.Host) || got.Ticket != strings.TrimSpace(got.Ticket) {
			t.Fatalf("GET %s: host %q or ticket %q is not trimmed", u, got.Host, got.Ticket)
		}

		// The count, for the fixture.
		m := listCount.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("GET %s: no count", u)
		}
		total, _ := strconv.Atoi(m[1])
		n := 0
		for _, c := range fixture {
			if (want.Status == "" || c.status == want.Status) && (want.Verdict == "" || string(c.verdict) == want.Verdict) &&
				(want.Host == "" || strings.ToLower(want.Host) == c.host) && (want.Ticket == "" || c.ticket == want.Ticket) &&
				(want.From.IsZero() || !c.created.Before(want.From)) && (want.To.IsZero() || c.created.Before(want.To)) {
				n++
			}
		}
		if strings.Trim(want.Query, " ") == "" && total != n || total > n {
			t.Fatalf("GET %s: %d cases, want %d of the fixture (filter %+v)", u, total, n, got)
		}

		// Following a page link keeps the filters.
		for _, l := range listLink.FindAllStringSubmatch(body, -1) {
			lu, ok := target(html.UnescapeString(l[1]), "")
			if !ok || lu.Path != "/staff" {
				t.Fatalf("the %s link %q is not a request target", l[2], l[1])
			}
			rec := a.serve("GET", lu, "", true)
			if rec.Code != http.StatusOK {
				t.Fatalf("the %s link %s: %d", l[2], lu, rec.Code)
			}
			next := a.store.lastFilter()
			step := pageSize
			if l[2] == "prev" {
				step = -pageSize
			}
			if next.Offset != got.Offset+step {
				t.Fatalf("the %s link %s goes to offset %d from %d", l[2], lu, next.Offset, got.Offset)
			}
			next.Offset = got.Offset
			if next != got {
				t.Fatalf("the %s link %s changes the filter: %+v, was %+v", l[2], lu, next, got)
			}
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }

// listFixture stores the cases FuzzCaseList counts, on fixed dates.
func listFixture(f *testing.F, a *fuzzApp) []listCase {
	ctx := context.Background()
	day := func(d int) time.Time { return time.Date(2026, 1, d, 12, 0, 0, 0, time.UTC) }
	cases := []listCase{
		{status: wizard.StatusOpen, verdict: probes.Code("gateway_502"), host: "shop.example.com", ticket: "INC-1", created: day(1), note: "Rang the customer back"},
		{status: wizard.StatusResolved, verdict: probes.Healthy, host: "shop.example.com", ticket: "INC-2", created: day(2)},
		{status: wizard.StatusEscalated, verdict: probes.Code("gateway_502"), host: "xn--bcher-kva.example", ticket: "ÄÖÜ-9", created: day(15)},
		{status: wizard.StatusUnresolved, host: "127.0.0.1", ticket: "", created: day(31), note: "NEAR(a b) \"quoted\" *"},
		{status: wizard.StatusOpen, host: "api.example.org", ticket: "Ticket with spaces", created: day(31).Add(11*time.Hour + 59*time.Minute)},
	}
	defer func(now func() time.Time) { a.db.Now = now }(a.db.Now)
	for i := range cases {
		c := &cases[i]
		a.db.Now = func() time.Time { return c.created }
		wc := &wizard.Case{URL: "https://" + c.host + "/", Host: c.host, Ticket: c.ticket, TreeVersion: a.cfg.Tree.ID()}
		if err := a.db.CreateCase(ctx, wc, a.cfg.TreeSource); err != nil {
			f.Fatal(err)
		}
		if c.verdict != "" {
			run, err := a.db.QueueProbe(ctx, wc.ID, "")
			if err != nil {
				f.Fatal(err)
			}
			if err := a.db.FinishProbe(ctx, run.ID, &probes.Report{URL: wc.URL, Verdict: probes.Verdict{Code: c.verdict}}); err != nil {
				f.Fatal(err)
			}
		}
		if err := a.db.SetStatus(ctx, wc.ID, c.status, "setup"); err != nil {
			f.Fatal(err)
		}
		if c.note != "" {
			if _, err := a.db.AddNote(ctx, wc.ID, fuzzStaff, c.note); err != nil {
				f.Fatal(err)
			}
		}
	}
	return cases
}
