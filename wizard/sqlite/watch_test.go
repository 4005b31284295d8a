package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
)

// TestWatch: a watched case is due at its next check and not before; a
// check moves it on, and past the watch's end nothing more is due; a
// healthy report recovers a watched case (and only a watched one) and ends
// its watch; a problem does not.
func TestWatch(t *testing.T) { onEngines(t, testWatch) }

func testWatch(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	now := time.Now()
	watched, other := newCase(t, db, "https://shop.example/", ""), newCase(t, db, "https://shop.example/cart", "")
	if err := db.Watch(ctx, watched.ID, now.Add(time.Minute), now.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := db.Watch(ctx, 9999, now, now); err == nil {
		t.Error("watching no case")
	}
	due := func(at time.Time) int {
		cs, err := db.DueWatches(ctx, at, 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	if n := due(now.Add(59 * time.Second)); n != 0 {
		t.Errorf("%d due before the first check", n)
	}
	cs, _ := db.DueWatches(ctx, now.Add(time.Minute), 10)
	if len(cs) != 1 || cs[0].ID != watched.ID || !cs[0].Watch.Watching() || cs[0].Watch.Checks != 0 {
		t.Fatalf("due at the first check: %+v", cs)
	}
	if err := db.WatchChecked(ctx, watched.ID, now.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	c, _ := db.CaseByID(ctx, watched.ID)
	if c.Watch.Checks != 1 || !c.Watch.Next.Equal(now.Add(3*time.Minute).UTC().Truncate(time.Nanosecond)) {
		t.Errorf("after a check: %+v", c.Watch)
	}
	if err := db.WatchChecked(ctx, watched.ID, now.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if c, _ := db.CaseByID(ctx, watched.ID); c.Watch.Watching() || c.Watch.Checks != 2 || c.Watch.Until.IsZero() {
		t.Errorf("past the watch's end: %+v", c.Watch)
	}

	// Watched again; a problem keeps it watched, a healthy report
	// recovers it.
	db.Watch(ctx, watched.ID, now.Add(time.Minute), now.Add(time.Hour))
	finish := func(id int64, code probes.Code) {
		t.Helper()
		run, err := db.QueueProbe(ctx, id, "watch")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.FinishProbe(ctx, run.ID, &probes.Report{Verdict: probes.Verdict{Code: code}}); err != nil {
			t.Fatal(err)
		}
	}
	finish(watched.ID, probes.Gateway502)
	if c, _ := db.CaseByID(ctx, watched.ID); !c.Watch.Watching() || !c.RecoveredAt.IsZero() {
		t.Errorf("a 502 recovered the case: %+v %v", c.Watch, c.RecoveredAt)
	}
	finish(watched.ID, probes.Healthy)
	c, _ = db.CaseByID(ctx, watched.ID)
	if c.Watch.Watching() || c.RecoveredAt.IsZero() {
		t.Errorf("a healthy report did not recover the watched case: %+v %v", c.Watch, c.RecoveredAt)
	}
	finish(other.ID, probes.Healthy)
	if c, _ := db.CaseByID(ctx, other.ID); !c.RecoveredAt.IsZero() {
		t.Errorf("a case nobody watched recovered: %v", c.RecoveredAt)
	}
	if err := db.Unwatch(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
}
