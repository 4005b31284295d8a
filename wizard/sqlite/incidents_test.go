package sqlite

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// reported stores a case of host opened at at, with the verdict and
// gateway its probes would have found and a status.
func reported(t *testing.T, db *DB, host, verdict, gateway string, status wizard.Status, at time.Time) *wizard.Case {
	t.Helper()
	db.Now = func() time.Time { return at }
	c := &wizard.Case{URL: "https://" + host + "/", Host: host, RequesterIP: "203.0.113.9", TreeVersion: "v1+abc", Status: status}
	if err := db.CreateCase(context.Background(), c, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.Exec(`UPDATE cases SET verdict = ?, gateway = ? WHERE id = ?`, verdict, gateway, c.ID); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIncidentsAtWindowEdges(t *testing.T) { onEngines(t, testIncidentsAtWindowEdges) }

func testIncidentsAtWindowEdges(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	now := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
	since := now.Add(-10 * time.Minute)
	const shop, other = "shop.example.com", "other.example"
	open := wizard.StatusOpen
	edge := reported(t, db, shop, "gateway_502", "nginx", open, since) // exactly at the lower edge: counts
	reported(t, db, shop, "gateway_502", "nginx", wizard.StatusEscalated, since.Add(30*time.Second))
	reported(t, db, shop, "gateway_502", "haproxy", wizard.StatusUnresolved, since.Add(time.Minute))
	latest := reported(t, db, shop, "gateway_502", "nginx", open, now)                          // at the upper edge: counts, in the last minute
	reported(t, db, shop, "gateway_502", "nginx", open, since.Add(-time.Nanosecond))            // a nanosecond early
	reported(t, db, shop, "gateway_502", "nginx", open, now.Add(time.Nanosecond))               // after until
	reported(t, db, shop, "gateway_502", "nginx", wizard.StatusResolved, now.Add(-time.Minute)) // resolved
	reported(t, db, shop, "", "", open, now.Add(-time.Minute))                                  // still being checked
	reported(t, db, shop, "gateway_timeout", "nginx", open, now.Add(-2*time.Minute))            // another verdict: its own group
	for i := range 3 {
		reported(t, db, other, "tcp_refused", "", open, since.Add(time.Duration(i)*3*time.Minute))
	}

	f := wizard.IncidentFilter{Since: since, Until: now, MinReports: 3}
	incs, unchecked, err := db.Incidents(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if unchecked != 1 {
		t.Errorf("unchecked = %d, want 1", unchecked)
	}
	if len(incs) != 2 || incs[0].Host != shop || incs[1].Host != other {
		t.Fatalf("incidents = %s", describe(incs))
	}
	shopInc := incs[0]
	if shopInc.Verdict != "gateway_502" || shopInc.Reports != 4 || shopInc.Gateway != "nginx" ||
		!shopInc.FirstAt.Equal(edge.CreatedAt) || !shopInc.LatestAt.Equal(latest.CreatedAt) {
		t.Errorf("shop incident = %+v", shopInc)
	}
	wantMinutes := make([]int, 10)
	wantMinutes[0], wantMinutes[1], wantMinutes[9] = 2, 1, 1
	if !slices.Equal(shopInc.PerMinute, wantMinutes) {
		t.Errorf("per minute = %v, want %v", shopInc.PerMinute, wantMinutes)
	}
	if otherInc := incs[1]; otherInc.Gateway != "" || !slices.Equal(otherInc.PerMinute, []int{1, 0, 0, 1, 0, 0, 1, 0, 0, 0}) {
		t.Errorf("other incident = %+v", otherInc)
	}

	// The threshold: a group of one is not an incident at 2, is at 1.
	for _, tt := range []struct{ min, want int }{{5, 0}, {4, 1}, {2, 2}, {1, 3}, {0, 3}} {
		f.MinReports = tt.min
		if incs, _, _ := db.Incidents(ctx, f); len(incs) != tt.want {
			t.Errorf("at least %d reports: %s", tt.min, describe(incs))
		}
	}
	// A window starting a nanosecond later leaves the edge case out.
	later := wizard.IncidentFilter{Since: since.Add(time.Nanosecond), Until: now}
	if inc, cases, err := db.Incident(ctx, shop, "gateway_502", later); err != nil || inc.Reports != 3 || len(cases) != 3 {
		t.Errorf("a nanosecond later: %+v, %d cases, %v", inc, len(cases), err)
	}

	// One incident: its cases newest first; until bounds them.
	inc, cases, err := db.Incident(ctx, "SHOP.example.com", "gateway_502", wizard.IncidentFilter{Since: since, Until: now})
	if err != nil || inc.Reports != 4 || len(cases) != 4 || cases[0].ID != latest.ID || cases[3].ID != edge.ID {
		t.Fatalf("incident = %+v, %d cases, %v", inc, len(cases), err)
	}
	_, cases, _ = db.Incident(ctx, shop, "gateway_502", wizard.IncidentFilter{Since: since, Until: now.Add(-time.Nanosecond)})
	if len(cases) != 3 || slices.ContainsFunc(cases, func(c *wizard.Case) bool { return c.ID == latest.ID }) {
		t.Errorf("until now-1ns: %d cases", len(cases))
	}
	inc, cases, err = db.Incident(ctx, "quiet.example", "gateway_502", wizard.IncidentFilter{Since: since, Until: now})
	if err != nil || inc.Reports != 0 || len(cases) != 0 || len(inc.PerMinute) != 10 {
		t.Errorf("no such incident: %+v, %d cases, %v", inc, len(cases), err)
	}
	for _, bad := range []wizard.IncidentFilter{{Since: now, Until: since}, {Since: now.Add(-30 * 24 * time.Hour), Until: now}, {}} {
		if _, _, err := db.Incidents(ctx, bad); wizard.ErrorCode(err) != wizard.EINVALID {
			t.Errorf("window %v: %v", bad, err)
		}
	}
}

func describe(incs []*wizard.Incident) string {
	var b strings.Builder
	for _, i := range incs {
		fmt.Fprintf(&b, "[%s %s %d] ", i.Host, i.Verdict, i.Reports)
	}
	return fmt.Sprintf("%d incidents: %s", len(incs), b.String())
}

// TestIncidentQueryUsesIndexes: the bench has 100,000 cases; grouping a
// window must read that window through an index, never the whole table.
func TestIncidentQueryUsesIndexes(t *testing.T) {
	db := MustOpenDB(t)
	for _, oneHost := range []bool{false, true} {
		args := []any{0, 1, 0, 1}
		if oneHost {
			args = append(args, "shop.example.com", "gateway_502")
		}
		rows, err := db.read.Query(`EXPLAIN QUERY PLAN `+incidentQuery(oneHost), args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			rows.Scan(&id, &parent, &unused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		if !strings.Contains(joined, "SEARCH cases USING INDEX") || strings.Contains(joined, "SCAN cases") {
			t.Errorf("one host %v: plan %q reads the whole table", oneHost, joined)
		}
		if oneHost && !strings.Contains(joined, "cases_by_host") {
			t.Errorf("one host: plan %q does not use cases_by_host", joined)
		}
	}
}

func TestBulkNotesAndStatuses(t *testing.T) { onEngines(t, testBulkNotesAndStatuses) }

func testBulkNotesAndStatuses(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	at := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	var ids []int64
	for i := range 3 {
		status := wizard.StatusOpen
		if i == 2 {
			status = wizard.StatusEscalated
		}
		ids = append(ids, reported(t, db, "shop.example.com", "gateway_502", "nginx", status, at.Add(time.Duration(i)*time.Second)).ID)
	}
	bystander := reported(t, db, "shop.example.com", "gateway_502", "nginx", wizard.StatusOpen, at)
	db.Now = func() time.Time { return at.Add(time.Hour) }

	if _, err := db.AddNotes(ctx, ids, "ann", " \n "); wizard.ErrorCode(err) != wizard.EINVALID {
		t.Errorf("empty bulk note: %v", err)
	}
	if _, err := db.AddNotes(ctx, ids, "ann", strings.Repeat("é", 10001)); wizard.ErrorCode(err) != wizard.EINVALID {
		t.Errorf("long bulk note: %v", err)
	}
	n, err := db.AddNotes(ctx, ids, "ann", "  Hosting team restarting the upstream pool  ")
	if err != nil || n != 3 {
		t.Fatalf("AddNotes = %d, %v", n, err)
	}
	for _, id := range ids {
		notes, _ := db.Notes(ctx, id)
		if len(notes) != 1 || notes[0].Body != "Hosting team restarting the upstream pool" || notes[0].Author != "ann" || !notes[0].At.Equal(at.Add(time.Hour)) {
			t.Errorf("case %d notes = %+v", id, notes)
		}
		if c, _ := db.CaseByID(ctx, id); !c.UpdatedAt.Equal(at.Add(time.Hour)) {
			t.Errorf("case %d not touched: %v", id, c.UpdatedAt)
		}
	}
	if notes, _ := db.Notes(ctx, bystander.ID); len(notes) != 0 {
		t.Errorf("a case not asked for got a note: %+v", notes)
	}
	found, total, err := db.FindCases(ctx, wizard.CaseFilter{Query: "upstream pool"})
	if err != nil || total != 3 || len(found) != 3 {
		t.Errorf("search for the bulk note: %d, %v", total, err)
	}
	// A case that does not exist undoes the whole batch.
	if _, err := db.AddNotes(ctx, append([]int64{ids[0]}, 999999), "ann", "lost"); err == nil {
		t.Error("a note for a missing case was accepted")
	}
	if notes, _ := db.Notes(ctx, ids[0]); len(notes) != 1 {
		t.Errorf("a failed batch left %d notes", len(notes))
	}

	if _, err := db.SetStatuses(ctx, ids, "sideways", "ann"); wizard.ErrorCode(err) != wizard.EINVALID {
		t.Errorf("bad status: %v", err)
	}
	n, err = db.SetStatuses(ctx, ids, wizard.StatusEscalated, "ann")
	if err != nil || n != 2 {
		t.Fatalf("SetStatuses = %d, %v", n, err)
	}
	for i, id := range ids {
		changes, _ := db.StatusChanges(ctx, id)
		c, _ := db.CaseByID(ctx, id)
		if c.Status != wizard.StatusEscalated {
			t.Errorf("case %d status %s", id, c.Status)
		}
		if i == 2 { // already escalated: nothing recorded
			if len(changes) != 0 {
				t.Errorf("an unchanged case recorded %+v", changes)
			}
			continue
		}
		if len(changes) != 1 || changes[0].From != wizard.StatusOpen || changes[0].To != wizard.StatusEscalated || changes[0].Actor != "ann" {
			t.Errorf("case %d changes = %+v", id, changes)
		}
	}
	if _, err := db.SetStatuses(ctx, []int64{ids[0], 999999}, wizard.StatusResolved, "ann"); wizard.ErrorCode(err) != wizard.ENOTFOUND {
		t.Errorf("missing case: %v", err)
	}
	if c, _ := db.CaseByID(ctx, ids[0]); c.Status != wizard.StatusEscalated {
		t.Errorf("a failed batch changed a status to %s", c.Status)
	}
}

func TestNotices(t *testing.T) { onEngines(t, testNotices) }

func testNotices(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	at := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return at }
	if n, err := db.ActiveNotice(ctx, "shop.example.com"); n != nil || err != nil {
		t.Errorf("no notice yet: %+v, %v", n, err)
	}
	for _, bad := range []*wizard.Notice{
		{Host: "shop.example.com", Body: "  ", Author: "ann"},
		{Host: "shop.example.com", Body: strings.Repeat("ü", wizard.MaxNotice+1), Author: "ann"},
		{Body: "x", Author: "ann"},
	} {
		if err := db.PublishNotice(ctx, bad); wizard.ErrorCode(err) != wizard.EINVALID {
			t.Errorf("notice %.20q for %q: %v", bad.Body, bad.Host, err)
		}
	}
	first := &wizard.Notice{Host: "Shop.example.com", Verdict: "gateway_502", Body: " We know; next update 15:00 ", Author: "ann"}
	if err := db.PublishNotice(ctx, first); err != nil {
		t.Fatal(err)
	}
	got, err := db.ActiveNotice(ctx, "shop.example.com")
	if err != nil || got == nil || got.Body != "We know; next update 15:00" || got.Author != "ann" || got.Verdict != "gateway_502" || !got.CreatedAt.Equal(at) {
		t.Fatalf("active = %+v, %v", got, err)
	}
	// A new notice replaces it; the old one is kept, cleared.
	db.Now = func() time.Time { return at.Add(time.Hour) }
	if err := db.PublishNotice(ctx, &wizard.Notice{Host: "shop.example.com", Body: strings.Repeat("ü", wizard.MaxNotice), Author: "bob"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.ActiveNotice(ctx, "shop.example.com"); got.Author != "bob" || got.ID == first.ID {
		t.Errorf("after replacing: %+v", got)
	}
	var clearedAt int64
	var clearedBy string
	db.read.QueryRow(`SELECT cleared_at, cleared_by FROM notices WHERE id = ?`, first.ID).Scan(&clearedAt, &clearedBy)
	if clearedAt != at.Add(time.Hour).UnixNano() || clearedBy != "bob" {
		t.Errorf("the replaced notice: cleared %d by %q", clearedAt, clearedBy)
	}
	db.PublishNotice(ctx, &wizard.Notice{Host: "other.example", Body: "Also down", Author: "ann"})
	if all, _ := db.ActiveNotices(ctx); len(all) != 2 || all[0].Host != "other.example" && all[1].Host != "other.example" {
		t.Errorf("active notices = %+v", all)
	}
	if err := db.ClearNotice(ctx, "shop.example.com", "ann"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.ActiveNotice(ctx, "shop.example.com"); got != nil {
		t.Errorf("after clearing: %+v", got)
	}
	if err := db.ClearNotice(ctx, "shop.example.com", "ann"); err != nil {
		t.Errorf("clearing twice: %v", err)
	}
	if got, _ := db.ActiveNotice(ctx, "other.example"); got == nil {
		t.Error("clearing one host's notice cleared another's")
	}
}

func TestCountReports(t *testing.T) { onEngines(t, testCountReports) }

func testCountReports(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	now := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
	since := now.Add(-time.Hour)
	me := reported(t, db, "shop.example.com", "gateway_502", "nginx", wizard.StatusOpen, now)
	reported(t, db, "shop.example.com", "gateway_502", "nginx", wizard.StatusOpen, since)
	reported(t, db, "shop.example.com", "gateway_timeout", "", wizard.StatusResolved, now)
	reported(t, db, "shop.example.com", "gateway_502", "nginx", wizard.StatusOpen, since.Add(-time.Nanosecond))
	reported(t, db, "other.example", "gateway_502", "nginx", wizard.StatusOpen, now)
	if n, err := db.CountReports(ctx, "shop.example.com", since, me.ID); err != nil || n != 2 {
		t.Errorf("others = %d, %v; want 2", n, err)
	}
}
