package sqlite

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// TestProbeJobs: instances on one database share a target's probe job:
// the first run's instance owns it, other instances' runs join it and
// finish with its report, a finished job's report is reused within the
// window and not after, a job whose lease ran out is taken over with the
// runs waiting for it, and one handed back is taken at once.
func TestProbeJobs(t *testing.T) { onEngines(t, testProbeJobs) }

func testProbeJobs(t *testing.T) {
	ctx := context.Background()
	dbs := MustOpenShared(t, 2)
	a, b := dbs[0], dbs[1]
	now := time.Now().UTC()
	const lease, reuse = 10 * time.Second, time.Minute
	const target, host = "https://shop.example/", "shop.example"
	run := func(db *DB) wizard.JobRun {
		t.Helper()
		c := newCase(t, db, target, "")
		r, err := db.QueueProbe(ctx, c.ID, "visitor")
		if err != nil {
			t.Fatal(err)
		}
		return wizard.JobRun{RunID: r.ID, CaseID: c.ID}
	}
	claim := func(db *DB, r wizard.JobRun, owner string, at time.Time) *wizard.ProbeJobClaim {
		t.Helper()
		c, err := db.ClaimProbeJob(ctx, target, host, r.RunID, r.CaseID, owner, at, lease, reuse)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	first := run(a)
	if c := claim(a, first, "A", now); c.Kind != wizard.JobOwn || c.Leader != first.RunID || !slices.Equal(c.Runs, []wizard.JobRun{first}) {
		t.Fatalf("the first run: %+v", c)
	}
	second := run(b)
	if c := claim(b, second, "B", now); c.Kind != wizard.JobJoin || c.Leader != first.RunID || c.Owner != "A" {
		t.Fatalf("a run on another instance while the job is under way: %+v", c)
	}
	// The leader's own run, claimed again (an instance starting picks up
	// unfinished runs), joins without waiting for itself.
	if c := claim(b, first, "B", now); c.Kind != wizard.JobJoin || c.Owner != "A" {
		t.Errorf("the leader run claimed again: %+v", c)
	}

	// A dies: after its lease, B takes the job over with both runs.
	later := now.Add(lease + time.Second)
	if err := a.RenewProbeJobs(ctx, "A", now.Add(-time.Hour), lease); err != nil { // a renewal long ago: the lease ran out
		t.Fatal(err)
	}
	if taken, err := b.TakeOverProbeJobs(ctx, "B", now.Add(-time.Hour), lease); err != nil || len(taken) != 0 {
		t.Errorf("taken over within the lease: %+v %v", taken, err)
	}
	taken, err := b.TakeOverProbeJobs(ctx, "B", later, lease)
	if err != nil || len(taken) != 1 || taken[0].Leader != first.RunID || !slices.Equal(taken[0].Runs, []wizard.JobRun{first, second}) {
		t.Fatalf("taken over after the lease: %+v %v", taken, err)
	}
	// Taken once.
	if again, err := a.TakeOverProbeJobs(ctx, "A2", later, lease); err != nil || len(again) != 0 {
		t.Errorf("taken over twice: %+v %v", again, err)
	}

	// B finishes the leader: the joined run shares its report.
	rep := &probes.Report{URL: target, Verdict: probes.Verdict{Code: probes.Gateway502}}
	if err := b.FinishProbe(ctx, first.RunID, rep); err != nil {
		t.Fatal(err)
	}
	for _, r := range []wizard.JobRun{first, second} {
		if done, err := a.ProbeRunDone(ctx, r.RunID); err != nil || !done {
			t.Errorf("run %d done: %v %v", r.RunID, done, err)
		}
	}
	runs, _ := a.ProbeRuns(ctx, second.CaseID)
	if len(runs) != 1 || runs[0].SharedFrom != first.RunID || runs[0].Report == nil || runs[0].Report.Verdict.Code != probes.Gateway502 {
		t.Errorf("the joined run: %+v", runs[0])
	}

	// Within the window a new run reuses the report (it finished at
	// about now, on the store's clock); after it, leads anew.
	third := run(a)
	if c := claim(a, third, "A", now.Add(reuse-time.Second)); c.Kind != wizard.JobReuse || c.Leader != first.RunID {
		t.Errorf("within the reuse window: %+v", c)
	}
	fourth := run(a)
	if c := claim(a, fourth, "A", now.Add(reuse+2*time.Second)); c.Kind != wizard.JobOwn || c.Leader != fourth.RunID {
		t.Errorf("after the reuse window: %+v", c)
	}

	// Handed back: taken at once, lease or not.
	if err := a.HandBackProbeJobs(ctx, "A"); err != nil {
		t.Fatal(err)
	}
	taken, err = b.TakeOverProbeJobs(ctx, "B", later.Add(reuse+3*time.Second), lease)
	if err != nil || len(taken) != 1 || taken[0].Leader != fourth.RunID {
		t.Errorf("handed back: %+v %v", taken, err)
	}
}

// TestTakeHostStart: a host gets its cap of probe starts a minute, counted
// across the instances on one database; the next waits until the oldest
// of them is a minute old.
func TestTakeHostStart(t *testing.T) { onEngines(t, testTakeHostStart) }

func testTakeHostStart(t *testing.T) {
	ctx := context.Background()
	dbs := MustOpenShared(t, 2)
	now := time.Now().UTC()
	take := func(db *DB, host string, at time.Time) time.Duration {
		t.Helper()
		w, err := db.TakeHostStart(ctx, host, 2, at)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	if w := take(dbs[0], "shop.example", now); w != 0 {
		t.Errorf("the first start waits %v", w)
	}
	if w := take(dbs[1], "shop.example", now.Add(10*time.Second)); w != 0 {
		t.Errorf("the second start, on another instance, waits %v", w)
	}
	if w := take(dbs[0], "shop.example", now.Add(20*time.Second)); w != 40*time.Second {
		t.Errorf("the third start within the minute waits %v, want 40s", w)
	}
	if w := take(dbs[1], "other.example", now.Add(20*time.Second)); w != 0 {
		t.Errorf("another host waits %v", w)
	}
	if w := take(dbs[1], "shop.example", now.Add(60*time.Second)); w != 0 {
		t.Errorf("a minute after the first start, the next waits %v", w)
	}
	if w := take(dbs[0], "shop.example", now.Add(61*time.Second)); w != 9*time.Second {
		t.Errorf("then the cap is full again until the second's minute: %v, want 9s", w)
	}
}
