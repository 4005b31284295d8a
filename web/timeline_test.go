package web

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

// TestFoldWatch: each series of the watch's checks reads as one line of
// the timeline, with how many, when, and what they found in order;
// anything else between two checks starts a new series.
func TestFoldWatch(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	w := func(m int, code string) templates.TimelineEntry {
		return templates.TimelineEntry{At: at(m), Kind: "watch", Actor: watchActor, Text: code}
	}
	in := []templates.TimelineEntry{
		{At: at(0), Kind: "open", Text: "Case opened"},
		w(2, "gateway_502"), w(7, "gateway_502"), w(20, "gateway_502"),
		{At: at(21), Kind: "note", Text: "Note: on it"},
		w(30, "gateway_502"), w(40, "gateway_502"), w(50, "healthy"),
		{At: at(51), Kind: "note", Text: "Note: back"},
		w(60, "healthy"),
	}
	clock := func(t time.Time) string { return t.Format("15:04") }
	got := foldWatch(in, clock)
	want := []string{
		"Case opened",
		"Checked 3 times by the watch, from 14:02 to 14:20: all gateway_502",
		"Note: on it",
		"Checked 3 times by the watch, from 14:30 to 14:50: gateway_502 ×2, then healthy",
		"Note: back",
		"Checked by the watch: healthy",
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Text != want[i] {
			t.Errorf("line %d: %q, want %q", i, got[i].Text, want[i])
		}
	}
	if !got[1].At.Equal(at(20)) || got[1].Actor != watchActor {
		t.Errorf("a folded series is dated by its last check, by the watch: %+v", got[1])
	}
}

// TestStaffActionsSayWhatTheyDid: after a note, a reply, a status change
// and a re-run, the case page says what was done; the words come from a
// fixed table, so a link's ?done= shows nothing else.
func TestStaffActionsSayWhatTheyDid(t *testing.T) {
	a := newApp(t)
	a.signInAs("ann", wizard.RoleAgent)
	tok := a.createCase(brokenGateway(t).URL+"/", "")
	a.waitProbed(tok)
	for _, c := range []struct {
		path string
		form url.Values
		want string
	}{
		{"/notes", url.Values{"body": {"called them"}}, "Note added."},
		{"/notes", url.Values{"body": {"try now"}, "to": {"visitor"}}, "Reply added: the visitor sees it on their case page."},
		{"/status", url.Values{"status": {"escalated"}}, "Status set to escalated."},
		{"/probe", url.Values{}, "The probes are running again"},
	} {
		resp, _ := a.do("POST", "/staff/c/"+tok+c.path, c.form)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST %s: %d", c.path, resp.StatusCode)
		}
		resp, page := a.do("GET", resp.Header.Get("Location"), nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-testid="done">`+html.EscapeString(c.want)) {
			t.Errorf("POST %s: %d, the page does not say %q: %s", c.path, resp.StatusCode, c.want, excerpt(page, "done"))
		}
		a.waitProbed(tok)
	}
	if _, page := a.do("GET", "/staff/c/"+tok+"?done=%3Cb%3Eowned", nil); strings.Contains(page, `data-testid="done"`) || strings.Contains(page, "owned") {
		t.Errorf("a made-up ?done= is shown: %s", excerpt(page, "done"))
	}
}
