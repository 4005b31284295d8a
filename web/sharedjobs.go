package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// Shared probe jobs: several instances on one database probe a target
// once between them. The store says who owns a target's job
// (wizard.ProbeJobStore); the owner probes it as a local job and tells the
// others its progress by signals ("probe": "<leader run> check|queue|done
// <data>"), which they relay to the people following their cases' runs;
// an owner renews its jobs' leases, and a job whose lease ran out (its
// instance died) is taken over by whichever instance sweeps first. The
// table is the truth: signals only make it quick, and each sweep also
// looks whether the jobs followed from afar are done.

// remoteText is what people following a job another instance runs are
// told until it says where it stands.
const remoteText = "Checking now…"

// sharing is a runner's part in shared probe jobs; nil when it works
// alone.
type sharing struct {
	jobs    wizard.ProbeJobStore
	signals wizard.Signals // nil: progress of others' jobs is seen when done
	owner   string         // this instance, in the jobs it owns
	lease   time.Duration
	// remote are the jobs other instances run that this one's runs
	// joined, by leader run.
	remote map[int64]*job
	// onRemoteDone is told of this instance's runs that another
	// instance's job finished (their pages and waiting agents).
	onRemoteDone func(caseIDs, runIDs []int64)
	publish      chan string // signals to send, sent in order by one goroutine
	sweepNow     chan struct{}
	handBack     bool // on Close; false when dying, in tests
}

// newOwner names this instance in the jobs it owns.
func newOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	rand.Read(b)
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(b)
}

// Share makes the runner share probe jobs with the other instances on
// jobs' store, under leases of lease, hearing their progress through
// signals (nil: only the sweep notices other instances' jobs ending).
// onDone is told of this instance's runs finished by another instance.
// Call it before Start.
func (r *Runner) Share(jobs wizard.ProbeJobStore, signals wizard.Signals, lease time.Duration, onDone func(caseIDs, runIDs []int64)) {
	r.shared = &sharing{jobs: jobs, signals: signals, owner: newOwner(), lease: lease, remote: map[int64]*job{},
		onRemoteDone: onDone, publish: make(chan string, 256), sweepNow: make(chan struct{}, 1), handBack: true}
}

// startSharing starts the loops of shared jobs: the sender of signals,
// the listener, and the sweep that renews leases, takes over jobs whose
// owner died and notices others' jobs done.
func (r *Runner) startSharing() {
	sh := r.shared
	r.wg.Go(func() {
		for {
			select {
			case <-r.ctx.Done():
				return
			case p := <-sh.publish:
				if err := sh.signals.Notify(r.ctx, wizard.ProbeJobTopic, p); err != nil && r.ctx.Err() == nil {
					r.log.Warn("telling the other instances of a probe's progress", "err", err)
				}
			}
		}
	})
	if sh.signals != nil {
		heard, stop := sh.signals.Listen(wizard.ProbeJobTopic)
		r.wg.Go(func() {
			defer stop()
			for {
				select {
				case <-r.ctx.Done():
					return
				case p, ok := <-heard:
					if !ok {
						return
					}
					r.heard(p)
				}
			}
		})
	}
	r.wg.Go(func() {
		t := time.NewTicker(max(sh.lease/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-r.ctx.Done():
				return
			case <-t.C:
			case <-sh.sweepNow:
			}
			r.sweepShared(r.ctx)
		}
	})
}

// tell sends a signal of a job's progress, unless too many wait to be
// sent: the others then see the job's end only.
func (r *Runner) tell(j *job, kind, data string) {
	if r.shared == nil || r.shared.signals == nil || j.remote {
		return
	}
	select {
	case r.shared.publish <- strconv.FormatInt(j.leader, 10) + " " + kind + " " + data:
	default:
	}
}

// heard relays a signal of another instance's job to the people following
// this instance's runs that joined it.
func (r *Runner) heard(p string) {
	if p == "" {
		// Signals may have been missed: look at the table.
		r.kickSweep()
		return
	}
	lead, rest, _ := strings.Cut(p, " ")
	kind, data, _ := strings.Cut(rest, " ")
	leader, err := strconv.ParseInt(lead, 10, 64)
	if err != nil {
		return
	}
	switch kind {
	case "handback":
		r.kickSweep()
	case "done":
		r.finishRemote(leader)
	case "check", "queue":
		r.mu.Lock()
		defer r.mu.Unlock()
		j := r.shared.remote[leader]
		if j == nil {
			return
		}
		if kind == "check" {
			var c probes.Check
			if json.Unmarshal([]byte(data), &c) != nil {
				return
			}
			j.checks = append(j.checks, c)
		} else {
			j.text = data
		}
		r.sendLocked(j, event{kind, data})
	}
}

func (r *Runner) kickSweep() {
	select {
	case r.shared.sweepNow <- struct{}{}:
	default:
	}
}

// enqueueShared is Enqueue for a runner that shares jobs: the store
// decides whether the run reuses a report, joins a job (this instance's or
// another's) or owns one.
func (r *Runner) enqueueShared(ctx context.Context, t probeTarget, runID, caseID int64, held bool, maxAge time.Duration) error {
	r.mu.Lock()
	if held {
		r.unreserveLocked(t)
	}
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return errShuttingDown
	}
	var reuse time.Duration
	if r.reuse > 0 && maxAge > 0 {
		reuse = min(r.reuse, maxAge)
	}
	c, err := r.shared.jobs.ClaimProbeJob(ctx, t.key(), t.host, runID, caseID, r.shared.owner, r.now(), r.shared.lease, reuse)
	if err != nil {
		return err
	}
	if c.Kind == wizard.JobReuse {
		if err := r.store.ShareProbe(ctx, c.Leader, runID); err != nil {
			return err
		}
		r.metrics.sharedRuns("reused", 1)
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errShuttingDown
	}
	if c.Kind == wizard.JobOwn {
		r.ownLocked(t, c)
		return nil
	}
	j := r.byTarget[t.key()]
	if c.Owner != r.shared.owner || j == nil || j.leader != c.Leader {
		// Another instance's job: follow it from here.
		if j = r.shared.remote[c.Leader]; j == nil {
			j = &job{probeTarget: t, leader: c.Leader, remote: true, text: remoteText, subs: map[chan event]struct{}{}}
			r.shared.remote[c.Leader] = j
		}
	}
	if !j.holds(runID) {
		j.runs = append(j.runs, jobRun{runID, caseID})
	}
	r.byCase[caseID] = j
	r.metrics.sharedRuns("joined", 1)
	if j.remote && len(j.runs) == 1 {
		// The job may have finished between the claim and now, its
		// signal heard before this instance followed it: look once.
		go func() {
			if done, err := r.shared.jobs.ProbeRunDone(context.WithoutCancel(ctx), c.Leader); err == nil && done {
				r.finishRemote(c.Leader)
			}
		}()
	}
	return nil
}

func (j *job) holds(runID int64) bool {
	for _, jr := range j.runs {
		if jr.runID == runID {
			return true
		}
	}
	return false
}

// ownLocked queues a job this instance now owns: a new one, or one taken
// over (which this instance may have followed from afar until now).
func (r *Runner) ownLocked(t probeTarget, c *wizard.ProbeJobClaim) {
	j := r.shared.remote[c.Leader]
	delete(r.shared.remote, c.Leader)
	if j == nil {
		j = &job{probeTarget: t, subs: map[chan event]struct{}{}}
	}
	if old := r.byTarget[t.key()]; old != nil {
		// A job of the target is here already (taken over twice?): the
		// runs join it.
		j = old
	} else {
		j.remote, j.leader, j.runs, j.checks, j.text = false, c.Leader, nil, nil, ""
		r.queue = append(r.queue, j)
		r.byTarget[t.key()] = j
	}
	for _, jr := range c.Runs {
		if !j.holds(jr.RunID) {
			j.runs = append(j.runs, jobRun{jr.RunID, jr.CaseID})
		}
		r.byCase[jr.CaseID] = j
	}
	r.cond.Signal()
	r.announceQueueLocked()
}

// finishRemote ends another instance's job as this instance follows it:
// its runs are done (the owner stored them).
func (r *Runner) finishRemote(leader int64) {
	r.mu.Lock()
	j := r.shared.remote[leader]
	if j == nil {
		r.mu.Unlock()
		return
	}
	delete(r.shared.remote, leader)
	r.sendLocked(j, event{"done", "finished"})
	for ch := range j.subs {
		close(ch)
	}
	j.subs = nil
	var caseIDs, runIDs []int64
	for _, jr := range j.runs {
		if r.byCase[jr.caseID] == j {
			delete(r.byCase, jr.caseID)
		}
		caseIDs, runIDs = append(caseIDs, jr.caseID), append(runIDs, jr.runID)
	}
	r.mu.Unlock()
	// A run that joined as the owner was storing the report may have been
	// left out of it: it shares the report now.
	ctx := context.Background()
	var left []int64
	for _, id := range runIDs {
		if done, err := r.shared.jobs.ProbeRunDone(ctx, id); err == nil && !done {
			left = append(left, id)
		}
	}
	if len(left) > 0 {
		if err := r.store.ShareProbe(ctx, leader, left...); err != nil {
			r.log.Error("sharing a probe report of another instance", "run", leader, "err", err)
		}
	}
	if r.shared.onRemoteDone != nil {
		r.shared.onRemoteDone(caseIDs, runIDs)
	}
}

// sweepShared renews this instance's leases, takes over the jobs whose
// owner died, and ends the jobs followed from afar that are done.
func (r *Runner) sweepShared(ctx context.Context) {
	sh := r.shared
	now := r.now()
	if err := sh.jobs.RenewProbeJobs(ctx, sh.owner, now, sh.lease); err != nil && ctx.Err() == nil {
		r.log.Error("renewing the leases of probe jobs", "err", err)
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if !closed {
		taken, err := sh.jobs.TakeOverProbeJobs(ctx, sh.owner, now, sh.lease)
		if err != nil && ctx.Err() == nil {
			r.log.Error("taking over probe jobs", "err", err)
		}
		for _, c := range taken {
			if len(c.Runs) == 0 {
				continue
			}
			r.log.Info("took over a probe job whose instance stopped", "target", c.Target, "runs", len(c.Runs))
			r.mu.Lock()
			r.ownLocked(probeTarget{url: c.Target, host: c.Host}, c)
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	leaders := make([]int64, 0, len(sh.remote))
	for l := range sh.remote {
		leaders = append(leaders, l)
	}
	r.mu.Unlock()
	for _, l := range leaders {
		if done, err := sh.jobs.ProbeRunDone(ctx, l); err == nil && done {
			r.finishRemote(l)
		}
	}
}

// handBack gives this instance's unfinished jobs to the others, when it
// stops.
func (r *Runner) handBack() {
	if r.shared == nil || !r.shared.handBack {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.shared.jobs.HandBackProbeJobs(ctx, r.shared.owner); err != nil {
		r.log.Error("handing probe jobs back", "err", err)
	}
}

// hostStartTaken counts the start of job j, just taken from the queue,
// against its host's cap across the instances. When the host has had its
// probes this minute, the job goes back to the queue's head until the cap
// lets it start, and the answer is false. Called with r.mu held; it is
// released while the store answers. A store that cannot answer lets the
// probe start: the cap is politeness, not safety.
func (r *Runner) hostStartTaken(j *job) bool {
	r.mu.Unlock()
	now := r.now()
	wait, err := r.shared.jobs.TakeHostStart(r.ctx, j.host, r.hostCap, now)
	r.mu.Lock()
	if err != nil {
		if r.ctx.Err() == nil {
			r.log.Warn("counting a probe against its host's cap; probing anyway", "host", j.host, "err", err)
		}
		return true
	}
	if wait <= 0 || r.closed {
		return wait <= 0
	}
	j.notBefore = now.Add(wait)
	r.queue = append([]*job{j}, r.queue...)
	r.wakeInLocked(wait)
	r.announceQueueLocked()
	return false
}
