package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// TestAgentJobs walks jobs through queue, take, lease, give back, expiry
// and finish, with two agents that each see only their own jobs.
func TestAgentJobs(t *testing.T) { onEngines(t, testAgentJobs) }

func testAgentJobs(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	now := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	office, _, _ := db.CreateAgent(ctx, "office")
	lab, _, _ := db.CreateAgent(ctx, "lab")
	c := newCase(t, db, "https://shop.example.com/", "INC-1")
	run, err := db.QueueProbe(ctx, c.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := db.QueueAgentJobs(ctx, c.ID, run.ID, []int64{office.ID, lab.ID}, "", false, now.Add(10*time.Minute))
	if err != nil || len(jobs) != 2 || jobs[0].Agent.Name != "office" || jobs[0].State != wizard.JobQueued || jobs[0].URL != c.URL {
		t.Fatalf("queued: %+v %v", jobs, err)
	}
	if _, err := db.QueueAgentJobs(ctx, c.ID, run.ID+99, []int64{office.ID}, "", false, now); wizard.ErrorCode(err) != wizard.ENOTFOUND {
		t.Errorf("a job for no run: %v", err)
	}
	// Not before gatecheck's own probe run has a verdict.
	if j, err := db.TakeAgentJob(ctx, office.ID, time.Minute); j != nil || err != nil {
		t.Fatalf("a job taken before its run was done: %+v %v", j, err)
	}
	if err := db.FinishProbe(ctx, run.ID, &probes.Report{URL: c.URL, Verdict: probes.Verdict{Code: probes.Gateway502}}); err != nil {
		t.Fatal(err)
	}

	// Each agent takes its own job, once.
	got, err := db.TakeAgentJob(ctx, office.ID, time.Minute)
	if err != nil || got == nil || got.ID != jobs[0].ID || got.State != wizard.JobTaken || !got.LeaseUntil.Equal(now.Add(time.Minute)) {
		t.Fatalf("office takes: %+v %v", got, err)
	}
	if again, err := db.TakeAgentJob(ctx, office.ID, time.Minute); again != nil || err != nil {
		t.Errorf("office takes a second job: %+v %v", again, err)
	}
	rep := &probes.Report{URL: c.URL, Verdict: probes.Verdict{Code: probes.AccessBlocked, Summary: "refused"}}
	view := func() *wizard.Vantage {
		return &wizard.Vantage{Reachable: new(true), Detail: "refused", Report: rep, Addr: "203.0.113.7"}
	}
	// Only the job's own agent can finish it; a queued job cannot be.
	if _, err := db.FinishAgentJob(ctx, lab.ID, jobs[0].ID, view()); wizard.ErrorCode(err) != wizard.ENOTFOUND {
		t.Errorf("lab finishes office's job: %v", err)
	}
	if _, err := db.FinishAgentJob(ctx, lab.ID, jobs[1].ID, view()); wizard.ErrorCode(err) != wizard.ECONFLICT {
		t.Errorf("lab finishes its job before taking it: %v", err)
	}

	// The lease passes: the job is given back, attempts + 1, and the late
	// report is refused; taken again, it can be finished.
	now = now.Add(2 * time.Minute)
	cases, err := db.SweepAgentJobs(ctx, 3)
	if err != nil || len(cases) != 1 || cases[0] != c.ID {
		t.Fatalf("sweep: %v %v", cases, err)
	}
	if _, err := db.FinishAgentJob(ctx, office.ID, jobs[0].ID, view()); wizard.ErrorCode(err) != wizard.ECONFLICT {
		t.Errorf("a report after the lease passed: %v", err)
	}
	got, _ = db.TakeAgentJob(ctx, office.ID, time.Minute)
	if got == nil || got.Attempts != 1 {
		t.Fatalf("taken again: %+v", got)
	}
	v := view()
	done, err := db.FinishAgentJob(ctx, office.ID, got.ID, v)
	if err != nil || done.State != wizard.JobDone || v.From != "agent:office" || v.RunID != run.ID {
		t.Fatalf("finish: %+v %+v %v", done, v, err)
	}
	if _, err := db.FinishAgentJob(ctx, office.ID, got.ID, view()); wizard.ErrorCode(err) != wizard.ECONFLICT {
		t.Errorf("a second report: %v", err)
	}
	views, _ := db.Vantages(ctx, c.ID)
	if len(views) != 1 || views[0].From != "agent:office" || views[0].Addr != "203.0.113.7" || views[0].Report == nil || views[0].Report.Verdict.Code != probes.AccessBlocked {
		t.Errorf("views: %+v", views)
	}

	// lab's job: leases pass until its attempts run out, then it expires.
	for i := range 3 {
		if j, _ := db.TakeAgentJob(ctx, lab.ID, time.Minute); j == nil {
			t.Fatalf("attempt %d: no job", i+1)
		}
		now = now.Add(2 * time.Minute)
		if _, err := db.SweepAgentJobs(ctx, 3); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := db.CaseAgentJobs(ctx, c.ID)
	if len(all) != 2 || all[0].State != wizard.JobDone || all[1].State != wizard.JobExpired || all[1].Attempts != 3 {
		t.Errorf("after three passed leases: %+v %+v", all[0], all[1])
	}

	// A job not taken by its time expires too.
	more, _ := db.QueueAgentJobs(ctx, c.ID, run.ID, []int64{lab.ID}, "staff", false, now.Add(time.Minute))
	now = now.Add(time.Minute)
	if j, _ := db.TakeAgentJob(ctx, lab.ID, time.Minute); j != nil {
		t.Errorf("a job past its time was taken: %+v", j)
	}
	db.SweepAgentJobs(ctx, 3)
	all, _ = db.CaseAgentJobs(ctx, c.ID)
	if last := all[len(all)-1]; last.ID != more[0].ID || last.State != wizard.JobExpired || last.Actor != "staff" {
		t.Errorf("a job past its time: %+v", last)
	}
}

// TestAgentJobsServerGuard: a job goes to its agent only once gatecheck's
// own probe run for it let the address through (its own report or one it
// shared); one whose address the server refused (blocked_target, or
// non-public addresses withheld) is never sent and the sweep marks it
// refused; an internal job goes at once, whatever the server found.
func TestAgentJobsServerGuard(t *testing.T) { onEngines(t, testAgentJobsServerGuard) }

func testAgentJobsServerGuard(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	office, _, _ := db.CreateAgent(ctx, "office")
	expires := time.Now().Add(time.Hour)
	blocked := &probes.Report{Verdict: probes.Verdict{Code: probes.BlockedTarget}}
	withheld := &probes.Report{Verdict: probes.Verdict{Code: probes.Healthy}, DNS: &probes.DNSResult{Addresses: []string{"192.0.2.1"}, Withheld: 1}}
	public := &probes.Report{Verdict: probes.Verdict{Code: probes.Healthy}, DNS: &probes.DNSResult{Addresses: []string{"192.0.2.1"}}}

	for _, tc := range []struct {
		name     string
		rep      *probes.Report
		shared   bool // the run shares another's report
		internal bool
		sent     bool
	}{
		{"blocked_target", blocked, false, false, false},
		{"blocked_target, shared", blocked, true, false, false},
		{"non-public addresses withheld", withheld, false, false, false},
		{"public", public, false, false, true},
		{"public, shared", public, true, false, true},
		{"internal, blocked_target", blocked, false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCase(t, db, "http://intranet.example/", "")
			run, _ := db.QueueProbe(ctx, c.ID, "")
			jobs, err := db.QueueAgentJobs(ctx, c.ID, run.ID, []int64{office.ID}, "", tc.internal, expires)
			if err != nil || jobs[0].Internal != tc.internal {
				t.Fatalf("queue: %+v %v", jobs, err)
			}
			if tc.shared {
				other := newCase(t, db, "http://intranet.example/", "")
				src, _ := db.QueueProbe(ctx, other.ID, "")
				db.FinishProbe(ctx, src.ID, tc.rep)
				err = db.ShareProbe(ctx, src.ID, run.ID)
			} else {
				err = db.FinishProbe(ctx, run.ID, tc.rep)
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.SweepAgentJobs(ctx, 3); err != nil {
				t.Fatal(err)
			}
			got, err := db.TakeAgentJob(ctx, office.ID, time.Minute)
			if err != nil || (got != nil) != tc.sent || got != nil && (got.ID != jobs[0].ID || got.Internal != tc.internal) {
				t.Fatalf("taken: %+v %v, want sent %v", got, err, tc.sent)
			}
			all, _ := db.CaseAgentJobs(ctx, c.ID)
			want := wizard.JobTaken
			if !tc.sent {
				want = wizard.JobRefused
			}
			if all[0].State != want || !tc.sent && all[0].FinishedAt.IsZero() {
				t.Errorf("state %s, want %s: %+v", all[0].State, want, all[0])
			}
			if got != nil {
				db.FinishAgentJob(ctx, office.ID, got.ID, &wizard.Vantage{Detail: "done"})
			}
		})
	}
}

// TestBareCaseKeepsItsBareness: a case typed without a scheme says so when
// read back (in every list), and its agents probe it as typed, trying
// both schemes as the server's probes do.
func TestBareCaseKeepsItsBareness(t *testing.T) { onEngines(t, testBareCaseKeepsItsBareness) }

func testBareCaseKeepsItsBareness(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	agent, _, _ := db.CreateAgent(ctx, "office")
	bare := &wizard.Case{URL: "https://blocked.example/", Host: "blocked.example", NoScheme: true, RequesterIP: "203.0.113.9", TreeVersion: "v1+abc"}
	if err := db.CreateCase(ctx, bare, []byte("tree source")); err != nil {
		t.Fatal(err)
	}
	typed := newCase(t, db, "https://blocked.example/", "")
	got, err := db.Case(ctx, bare.Token)
	if err != nil || !got.NoScheme || got.ProbeInput() != "blocked.example/" {
		t.Fatalf("read back: %+v %v", got, err)
	}
	if got, _ := db.Case(ctx, typed.Token); got.NoScheme || got.ProbeInput() != "https://blocked.example/" {
		t.Errorf("a typed case reads as bare: %+v", got)
	}
	list, _, err := db.FindCases(ctx, wizard.CaseFilter{Limit: 10})
	if err != nil || len(list) != 2 || list[0].NoScheme == list[1].NoScheme {
		t.Errorf("listed: %+v %v", list, err)
	}
	for _, c := range []*wizard.Case{bare, typed} {
		run, err := db.QueueProbe(ctx, c.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := db.QueueAgentJobs(ctx, c.ID, run.ID, []int64{agent.ID}, "", false, time.Now().Add(time.Hour))
		if err != nil || len(jobs) != 1 || jobs[0].URL != c.ProbeInput() {
			t.Errorf("the agent's job for %s (bare %v): %+v %v, want %s", c.URL, c.NoScheme, jobs, err, c.ProbeInput())
		}
	}
}
