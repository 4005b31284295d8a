package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

func TestVantages(t *testing.T) { onEngines(t, testVantages) }

func testVantages(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	at := time.Date(2026, 11, 21, 14, 30, 0, 0, time.UTC)
	db.Now = func() time.Time { return at }
	c := newCase(t, db, "https://shop.example.com/", "")
	other := newCase(t, db, "https://shop.example.com/", "")
	first, err := db.QueueProbe(ctx, c.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	otherRun, _ := db.QueueProbe(ctx, other.ID, "")

	// A view is taken while the run is still queued (the browser checks
	// while the server's probes run), once per run and source.
	v := &wizard.Vantage{RunID: first.ID, From: wizard.VantageBrowser, Reachable: new(true), Detail: "a server answered in 40 ms"}
	if err := db.AddVantage(ctx, c.ID, v); err != nil {
		t.Fatal(err)
	}
	if v.ID == 0 || !v.At.Equal(at) {
		t.Errorf("stored view = %+v", v)
	}
	again := &wizard.Vantage{RunID: first.ID, From: wizard.VantageBrowser, Reachable: new(false), Detail: "could not connect"}
	if err := db.AddVantage(ctx, c.ID, again); wizard.ErrorCode(err) != wizard.ECONFLICT {
		t.Errorf("a second browser view of the same run: %v, want a conflict", err)
	}
	// Another source's view of the same run is its own.
	rep := &probes.Report{URL: c.URL, Verdict: probes.Verdict{Code: probes.Healthy}}
	agent := &wizard.Vantage{RunID: first.ID, From: "agent:paris", Reachable: new(true), Detail: "healthy", Report: rep}
	if err := db.AddVantage(ctx, c.ID, agent); err != nil {
		t.Errorf("an agent's view beside the browser's: %v", err)
	}
	for _, tt := range []struct {
		name   string
		caseID int64
		v      wizard.Vantage
		code   string
	}{
		{"a run of another case", c.ID, wizard.Vantage{RunID: otherRun.ID, From: wizard.VantageBrowser}, wizard.ENOTFOUND},
		{"no such run", c.ID, wizard.Vantage{RunID: 9999, From: wizard.VantageBrowser}, wizard.ENOTFOUND},
		{"an unknown source", c.ID, wizard.Vantage{RunID: first.ID, From: "satellite"}, wizard.EINVALID},
		{"an agent without a name", c.ID, wizard.Vantage{RunID: first.ID, From: "agent:"}, wizard.EINVALID},
	} {
		if err := db.AddVantage(ctx, tt.caseID, &tt.v); wizard.ErrorCode(err) != tt.code {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.code)
		}
	}

	// Once the case is checked again, the earlier run takes no more views.
	second, _ := db.QueueProbe(ctx, c.ID, "visitor")
	late := &wizard.Vantage{RunID: first.ID, From: "agent:tokyo", Reachable: new(false)}
	if err := db.AddVantage(ctx, c.ID, late); wizard.ErrorCode(err) != wizard.ECONFLICT {
		t.Errorf("a view of a superseded run: %v, want a conflict", err)
	}
	db.Now = func() time.Time { return at.Add(time.Minute) }
	skipped := &wizard.Vantage{RunID: second.ID, From: wizard.VantageBrowser, Detail: "not tried: mixed content"}
	if err := db.AddVantage(ctx, c.ID, skipped); err != nil {
		t.Fatal(err)
	}

	views, err := db.Vantages(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(views) != 3 {
		t.Fatalf("views = %+v, want 3", views)
	}
	if b := views[0]; b.RunID != first.ID || b.From != "browser" || b.Reachable == nil || !*b.Reachable || b.Detail != "a server answered in 40 ms" || !b.At.Equal(at) || b.Report != nil {
		t.Errorf("browser view read back as %+v", b)
	}
	if a := views[1]; a.From != "agent:paris" || a.Report == nil || a.Report.Verdict.Code != probes.Healthy {
		t.Errorf("agent view read back as %+v", a)
	}
	if s := views[2]; s.RunID != second.ID || s.Reachable != nil {
		t.Errorf("skipped view read back as %+v", s)
	}
	if b := wizard.Browser(views); b == nil || b.RunID != second.ID {
		t.Errorf("the latest browser view is %+v", b)
	}
	if views, _ := db.Vantages(ctx, other.ID); len(views) != 0 {
		t.Errorf("the other case has views %+v", views)
	}
	if got, _ := db.Case(ctx, c.Token); !got.UpdatedAt.Equal(at.Add(time.Minute)) {
		t.Errorf("a view does not touch the case: updated %v", got.UpdatedAt)
	}
}
