package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gatecheck/gatecheck/wizard"
)

// FuzzIncidentNote posts one note to every case of an incident, with the
// window and the "until" bound the incident's page carries. The note lands
// exactly on the incident's cases opened in the window up to the bound (a
// 303 saying how many), trimmed as a note is; anything unreadable (the
// form, the window, the bound, an empty or overlong note) is a 4xx with a
// message, and no case gets a note.
func FuzzIncidentNote(f *testing.F) {
	f.Add("We know; the hosting team is on it.", "1h", "", "")
	f.Add("  trimmed\r\n", "10m", "", "")
	f.Add("none yet", "24h", "2000-01-01T00:00:00Z", "")
	f.Add("the first two", "6h", "@1", "")
	f.Add("", "1h", "", "")
	f.Add(strings.Repeat("n", 10001), "1h", "", "")
	f.Add("bad window", "2h", "", "")
	f.Add("bad bound", "1h", "yesterday", "")
	f.Add("x", "1h", "", "body=second&until=%zz")
	f.Add("\xff note \xfe", "30m", "", "")
	for _, s := range nastyStrings {
		f.Add(s, s, s, "")
	}
	a := newFuzzApp(f)
	ctx := context.Background()
	var site atomic.Int64
	f.Fuzz(func(t *testing.T, body, window, until, extra string) {
		// Three reports of a site of their own with gateway_502: notes
		// pile up on no case from one input to the next.
		host := fmt.Sprintf("shop-%d.example", site.Add(1))
		var cases []*wizard.Case
		for range 3 {
			c := &wizard.Case{URL: "http://" + host + "/", Host: host, RequesterIP: "192.0.2.1", TreeVersion: a.cfg.Tree.ID()}
			if err := a.db.CreateCase(ctx, c, a.cfg.TreeSource); err != nil {
				t.Fatal(err)
			}
			run, err := a.db.QueueProbe(ctx, c.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := a.db.FinishProbe(ctx, run.ID, a.reports[0]); err != nil {
				t.Fatal(err)
			}
			if c, err = a.db.CaseByID(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
			cases = append(cases, c)
		}
		path := incidentPath(host, string(a.reports[0].Verdict.Code))
		// "" is the latest report, "@N" the Nth: the bounds a page shows.
		if until == "" {
			until = cases[2].CreatedAt.Format(time.RFC3339Nano)
		} else if n, err := strconv.Atoi(strings.TrimPrefix(until, "@")); err == nil && strings.HasPrefix(until, "@") {
			until = cases[min(max(n, 0), 2)].CreatedAt.Format(time.RFC3339Nano)
		}
		before := make([]int, len(cases))
		for i, c := range cases {
			notes, _ := a.db.Notes(ctx, c.ID)
			before[i] = len(notes)
		}
		form := formBody(extra, "body", body, "window", window, "until", until)
		rec := a.serve("POST", &url.URL{Path: path + "/notes"}, form, true)
		page := checkResponse(t, "POST incident note", rec)
		added := make([]int, len(cases))
		var last []wizard.Note
		for i, c := range cases {
			notes, _ := a.db.Notes(ctx, c.ID)
			added[i], last = len(notes)-before[i], notes
		}
		none := func() {
			t.Helper()
			for i, n := range added {
				if n != 0 {
					t.Fatalf("a refused note was added to case %d: %d", i, n)
				}
			}
		}
		values, ok := a.readForm(t, form, rec)
		if !ok {
			none()
			return
		}
		win, werr := parseWindow(values.Get("window"))
		bound, terr := time.Parse(time.RFC3339Nano, values.Get("until"))
		text := strings.TrimSpace(strings.ToValidUTF8(values.Get("body"), "\uFFFD"))
		var want []bool
		now := time.Now()
		for _, c := range cases {
			want = append(want, terr == nil && !c.CreatedAt.After(bound) && !c.CreatedAt.Before(now.Add(-win.span)))
		}
		switch {
		case werr != nil, terr != nil, text == "", utf8.RuneCountInString(text) > maxNote, !slices.Contains(want, true):
			if rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("window %q until %q body %q: %d, want 422: %.500s", values.Get("window"), values.Get("until"), clipAt(text, 50), rec.Code, page)
			}
			none()
			return
		}
		n := 0
		for i, w := range want {
			if w {
				n++
			}
			if got := added[i]; got != map[bool]int{true: 1, false: 0}[w] {
				t.Fatalf("until %s: case %d (opened %s) got %d notes", bound, i, cases[i].CreatedAt, got)
			}
		}
		q := url.Values{"done": {"note"}, "n": {strconv.Itoa(n)}, "window": {values.Get("window")}}
		if values.Get("window") == "" {
			q.Del("window")
		}
		wantRedirect(t, "incident note", rec, path+"?"+q.Encode())
		if added[2] == 1 {
			if got := last[len(last)-1]; got.Body != text || got.Author != fuzzStaff {
				t.Fatalf("stored %q by %s, want %q by %s", got.Body, got.Author, text, fuzzStaff)
			}
		}
	})
}
