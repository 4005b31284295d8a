package sqlite

import (
	"context"
	"testing"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

func TestCaseOrigin(t *testing.T) { onEngines(t, testCaseOrigin) }

// The origin staff asked is kept on the case, and its view is stored as
// its own source beside the browser's and agents', once per run.
func testCaseOrigin(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	c := newCase(t, db, "https://shop.example.com/", "")
	if c.Origin != "" {
		t.Fatalf("a new case has origin %q", c.Origin)
	}
	if err := db.SetCaseOrigin(ctx, c.ID, "[2001:db8::1]:8443"); err != nil {
		t.Fatal(err)
	}
	got, err := db.Case(ctx, c.Token)
	if err != nil || got.Origin != "[2001:db8::1]:8443" {
		t.Fatalf("origin = %q (%v), want [2001:db8::1]:8443", got.Origin, err)
	}
	if err := db.SetCaseOrigin(ctx, c.ID+100, "203.0.113.7"); wizard.ErrorCode(err) != wizard.ENOTFOUND {
		t.Errorf("origin of no case: %v, want not found", err)
	}

	run, err := db.QueueProbe(ctx, c.ID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	rep := &probes.Report{URL: c.URL, Origin: "[2001:db8::1]:8443", Verdict: probes.Verdict{Code: probes.Healthy}}
	browser := &wizard.Vantage{RunID: run.ID, From: wizard.VantageBrowser, Reachable: new(false)}
	origin := &wizard.Vantage{RunID: run.ID, From: wizard.VantageOrigin, Reachable: new(true), Detail: "healthy", Report: rep}
	for _, v := range []*wizard.Vantage{browser, origin} {
		if err := db.AddVantage(ctx, c.ID, v); err != nil {
			t.Fatalf("%s: %v", v.From, err)
		}
	}
	again := &wizard.Vantage{RunID: run.ID, From: wizard.VantageOrigin, Reachable: new(false)}
	if err := db.AddVantage(ctx, c.ID, again); wizard.ErrorCode(err) != wizard.ECONFLICT {
		t.Errorf("a second origin view of one run: %v, want a conflict", err)
	}
	views, err := db.Vantages(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	o := wizard.Origin(views)
	if o == nil || o.Report == nil || o.Report.Origin != "[2001:db8::1]:8443" || o.Reachable == nil || !*o.Reachable {
		t.Errorf("origin view = %+v, want the stored one with its report", o)
	}
}
