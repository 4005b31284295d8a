package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// Runner runs probe jobs with bounded concurrency, one job per distinct
// target. During an outage hundreds of people report the same site within
// minutes; their probe runs share one diagnosis instead of each sending
// the failing site another round of requests:
//
//   - a run of a target that is being probed (or waits to be) joins that
//     job, and finishes with its report;
//   - a run of a target whose probe finished within the reuse window takes
//     that report at once, unless a fresh check was asked for;
//   - the queue holds jobs, so a thousand reports of one site take one
//     place, and 429s come only when distinct targets exceed it;
//   - no host is probed more than hostCap times a minute, server-wide: a
//     job over the cap waits (its visitors see why) while other hosts' jobs
//     go ahead.
//
// Jobs beyond the workers wait in a queue whose positions people see;
// beyond the queue's length, Reserve refuses with errQueueFull.
type Runner struct {
	prober   *probes.Prober
	store    wizard.CaseStore
	log      *slog.Logger
	now      func() time.Time
	workers  int
	maxQueue int
	reuse    time.Duration // how long a finished report is reused; 0: never
	hostCap  int           // probe jobs a host gets a minute; 0: no cap
	metrics  *metrics      // nil: not counted

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*job
	reserved int // places promised by Reserve and not yet taken by Enqueue
	// reservedFor counts the places held per target when jobs are shared:
	// reports of a target arriving together need one place between them
	// (they join one job), not one each while the store decides.
	reservedFor map[string]int
	running     int
	byTarget    map[string]*job // jobs queued or running, by target key
	byCase      map[int64]*job
	recent      map[string]finished // the last finished probe of each target
	hostStarts  map[string][]time.Time
	wake        *time.Timer     // wakes the workers when a capped host frees up
	took        []time.Duration // how long the last probes took, newest last
	closed      bool
	shared      *sharing // nil: this process probes alone (sharedjobs.go)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// RunnerConfig tunes a Runner; see Config for the meaning of each field.
type RunnerConfig struct {
	Workers, Queue int
	Reuse          time.Duration
	HostCap        int
	Now            func() time.Time
}

// probeTarget is what a probe job diagnoses. Runs of equal targets share one
// job: the prober's settings are the same for every run of this server,
// so the normalised URL is the whole key.
type probeTarget struct{ url, host string }

// targetOf is what a case's probe runs diagnose. A case whose address was
// typed without a scheme is probed as typed (both schemes, as a browser
// would), so its runs share only with cases typed the same way.
func targetOf(c *wizard.Case) probeTarget { return probeTarget{url: c.ProbeInput(), host: c.Host} }

func (t probeTarget) key() string { return t.url }

type job struct {
	probeTarget
	runs    []jobRun // runs[0] holds the report; the others share it
	running bool
	checks  []probes.Check
	subs    map[chan event]struct{}
	// Shared jobs (sharedjobs.go): leader is the run that holds the
	// report, which names the job between instances; remote says another
	// instance runs it, text what it last said of where it stands, told
	// what this instance last said of it.
	leader int64
	remote bool
	text   string
	told   string
	// notBefore is when the host's cap across the instances lets the job
	// start (shared jobs only).
	notBefore time.Time
}

type jobRun struct{ runID, caseID int64 }

// finished is a target's last finished probe, for reuse.
type finished struct {
	runID int64
	at    time.Time // when it finished, on the runner's clock
}

// event is one server-sent event for a case's progress page.
type event struct{ name, data string }

// How old a finished report a probe run may take instead of probing, in
// Reserve and Enqueue, besides being within the reuse window: anyRecent
// takes any within the window; fresh never takes one (a probe under way
// is still joined). A watch passes its interval: a check takes no report
// from before the watch's previous check.
const (
	anyRecent time.Duration = math.MaxInt64
	fresh     time.Duration = 0
)

// errQueueFull is returned when no more probe jobs may wait.
var errQueueFull = wizard.Errorf(codeQueueFull, "gatecheck is busy checking many other sites. Please try again in half a minute.")

// errShuttingDown is returned when the runner takes no more jobs.
var errShuttingDown = wizard.Errorf(codeQueueFull, "gatecheck is shutting down. Please try again in half a minute.")

// codeQueueFull is the error code of a refused probe job (429).
const codeQueueFull = "queue_full"

// NewRunner returns a runner; Start starts its workers.
func NewRunner(p *probes.Prober, store wizard.CaseStore, log *slog.Logger, cfg RunnerConfig) *Runner {
	r := &Runner{prober: p, store: store, log: log, now: cfg.Now,
		workers: max(cfg.Workers, 1), maxQueue: max(cfg.Queue, 0), reuse: max(cfg.Reuse, 0), hostCap: max(cfg.HostCap, 0),
		byTarget: map[string]*job{}, byCase: map[int64]*job{}, reservedFor: map[string]int{}, recent: map[string]finished{}, hostStarts: map[string][]time.Time{}}
	if r.now == nil {
		r.now = time.Now
	}
	r.cond = sync.NewCond(&r.mu)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Start starts the workers.
func (r *Runner) Start() {
	for range r.workers {
		r.wg.Go(r.work)
	}
	if r.shared != nil {
		r.startSharing()
	}
}

// Close stops taking jobs, cancels the probes under way (their runs stay
// unfinished in the store, to be run again at the next start) and waits
// for the workers, or for ctx.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	if r.wake != nil {
		r.wake.Stop()
	}
	r.cond.Broadcast()
	r.mu.Unlock()
	r.cancel()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	// The jobs this instance owns go to the others (when it shares them),
	// once its probes stopped.
	defer r.handBack()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reserve holds a place in the queue for a run of t about to be stored, so
// that a request the queue cannot take is refused before it writes
// anything: a refused case would be left behind, its probe run waiting for
// the next start. A run that will join a job of the same target, or reuse
// a recent report younger than maxAge, needs no place: held is false.
// Enqueue takes the place; Release gives it back.
func (r *Runner) Reserve(t probeTarget, maxAge time.Duration) (held bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false, errShuttingDown
	}
	if r.byTarget[t.key()] != nil {
		return false, nil
	}
	if r.shared != nil {
		for _, j := range r.shared.remote {
			if j.key() == t.key() {
				return false, nil
			}
		}
	}
	if _, ok := r.reusableLocked(t, maxAge); ok {
		return false, nil
	}
	if r.shared != nil && r.reservedFor[t.key()] > 0 {
		return false, nil
	}
	if len(r.queue)+r.reserved >= r.maxQueue {
		return false, errQueueFull
	}
	r.reserved++
	if r.shared != nil {
		r.reservedFor[t.key()]++
	}
	return true, nil
}

// Release gives back a place Reserve held for a run of t, when the run
// will not come.
func (r *Runner) Release(t probeTarget, held bool) {
	if !held {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unreserveLocked(t)
}

// unreserveLocked gives back a place held for a run of t.
func (r *Runner) unreserveLocked(t probeTarget) {
	r.reserved = max(r.reserved-1, 0)
	if n := r.reservedFor[t.key()]; n > 1 {
		r.reservedFor[t.key()] = n - 1
	} else {
		delete(r.reservedFor, t.key())
	}
}

// Enqueue gives a stored run of case caseID its diagnosis of t: it joins
// the job of t under way, takes a recent report of t younger than maxAge
// (the run is then finished before Enqueue returns), or starts a job. held says
// it takes a place the caller holds from Reserve; runs recovered at start
// come without one and are not counted against the queue's length.
func (r *Runner) Enqueue(ctx context.Context, t probeTarget, runID, caseID int64, held bool, maxAge time.Duration) error {
	if r.shared != nil {
		return r.enqueueShared(ctx, t, runID, caseID, held, maxAge)
	}
	r.mu.Lock()
	if held {
		r.reserved = max(r.reserved-1, 0)
	}
	// A probe under way is fresher than any finished one: join it rather
	// than reuse.
	if f, ok := r.reusableLocked(t, maxAge); ok && r.byTarget[t.key()] == nil && !r.closed {
		r.mu.Unlock()
		err := r.store.ShareProbe(ctx, f.runID, runID)
		if err == nil {
			r.metrics.sharedRuns("reused", 1)
			return nil
		}
		r.log.Error("reusing a recent probe report; probing again", "run", runID, "from", f.runID, "err", err)
		r.mu.Lock()
	}
	defer r.mu.Unlock()
	if r.closed {
		return errShuttingDown
	}
	if r.joinLocked(t, runID, caseID) {
		return nil
	}
	j := &job{probeTarget: t, runs: []jobRun{{runID, caseID}}, subs: map[chan event]struct{}{}, leader: runID}
	r.queue = append(r.queue, j)
	r.byTarget[t.key()] = j
	r.byCase[caseID] = j
	r.cond.Signal()
	r.announceQueueLocked()
	return nil
}

// joinLocked adds a run to the job of t under way, if there is one.
func (r *Runner) joinLocked(t probeTarget, runID, caseID int64) bool {
	j := r.byTarget[t.key()]
	if j == nil {
		return false
	}
	j.runs = append(j.runs, jobRun{runID, caseID})
	r.byCase[caseID] = j
	r.metrics.sharedRuns("joined", 1)
	return true
}

// reusableLocked returns t's last probe if a run may take its report: it
// is younger than the reuse window and than maxAge.
func (r *Runner) reusableLocked(t probeTarget, maxAge time.Duration) (finished, bool) {
	f, ok := r.recent[t.key()]
	// Within the window and maxAge, their edge included: a report exactly
	// the window after the probe finished still takes it; fresh (0)
	// never does.
	if !ok || r.reuse <= 0 || maxAge <= 0 || r.now().Sub(f.at) > min(r.reuse, maxAge) {
		return finished{}, false
	}
	return f, true
}

// Stats returns the number of jobs waiting and running.
func (r *Runner) Stats() (waiting, running int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue), r.running
}

func (r *Runner) work() {
	for {
		r.mu.Lock()
		var j *job
		for !r.closed {
			var wait time.Duration
			if j, wait = r.nextLocked(); j != nil {
				break
			}
			if wait > 0 {
				r.wakeInLocked(wait)
			}
			r.cond.Wait()
		}
		if r.closed {
			r.mu.Unlock()
			return
		}
		if r.shared != nil && r.hostCap > 0 && !r.hostStartTaken(j) {
			r.mu.Unlock()
			continue
		}
		j.running = true
		r.running++
		r.announceQueueLocked()
		r.tellQueueLocked(j, 0)
		r.mu.Unlock()
		r.run(j)
	}
}

// nextLocked takes the first queued job whose host may be probed now and
// counts its start against the host's cap. With none, wait is how long
// until the first capped host frees up (0 when the queue is empty).
func (r *Runner) nextLocked() (j *job, wait time.Duration) {
	now := r.now()
	for i, q := range r.queue {
		w := max(r.hostWaitLocked(q.host, now), q.notBefore.Sub(now))
		if w > 0 {
			if wait == 0 || w < wait {
				wait = w
			}
			continue
		}
		r.queue = append(r.queue[:i], r.queue[i+1:]...)
		if r.hostCap > 0 && r.shared == nil {
			r.hostStarts[q.host] = append(r.hostStarts[q.host], now)
		}
		return q, 0
	}
	return nil, wait
}

// hostWaitLocked is how long until host may be probed again: 0 while it
// has had fewer than hostCap probes in the last minute.
func (r *Runner) hostWaitLocked(host string, now time.Time) time.Duration {
	if r.hostCap <= 0 || r.shared != nil {
		// Shared jobs count their hosts' starts in the store
		// (hostStartTaken), and wait until notBefore.
		return 0
	}
	starts := r.hostStarts[host]
	for len(starts) > 0 && now.Sub(starts[0]) >= time.Minute {
		starts = starts[1:]
	}
	if len(starts) == 0 {
		delete(r.hostStarts, host)
		return 0
	}
	r.hostStarts[host] = starts
	if len(starts) < r.hostCap {
		return 0
	}
	return starts[len(starts)-r.hostCap].Add(time.Minute).Sub(now)
}

// wakeInLocked makes sure the workers look at the queue again after d,
// or in a second at most: the waiting jobs' visitors see the time count
// down, and a clock that jumps is noticed.
func (r *Runner) wakeInLocked(d time.Duration) {
	if r.wake != nil {
		r.wake.Stop()
	}
	r.wake = time.AfterFunc(min(d, time.Second), func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.announceQueueLocked()
		r.cond.Broadcast()
	})
}

func (r *Runner) run(j *job) {
	ctx := r.ctx
	r.mu.Lock()
	ids := make([]int64, len(j.runs))
	for i, jr := range j.runs {
		ids[i] = jr.runID
	}
	r.mu.Unlock()
	if err := r.store.StartProbe(ctx, ids...); err != nil && ctx.Err() == nil {
		r.log.Error("starting probe run", "runs", ids, "err", err)
	}
	rep := r.prober.Run(ctx, j.url, func(c probes.Check) {
		data, _ := json.Marshal(c)
		r.mu.Lock()
		j.checks = append(j.checks, c)
		r.sendLocked(j, event{"check", string(data)})
		r.tell(j, "check", string(data))
		r.mu.Unlock()
	})
	if ctx.Err() != nil {
		// Shutting down: the runs stay unfinished and run again at start.
		r.mu.Lock()
		r.running--
		r.mu.Unlock()
		return
	}

	took := time.Duration(rep.DurationMS * float64(time.Millisecond))
	r.metrics.probed(string(rep.Verdict.Code), took)
	r.mu.Lock()
	r.took = append(r.took, took)
	if len(r.took) > tookKept {
		r.took = r.took[len(r.took)-tookKept:]
	}
	r.mu.Unlock()

	// Store the report for the runs known so far, in one transaction...
	r.mu.Lock()
	runs := j.runs
	r.mu.Unlock()
	leader := runs[0].runID
	// The report exists only here until it is stored: a store busy with
	// a flood (conflicts past its own retries) is asked again, a few times.
	err := storeAgain(func() error { return r.store.FinishProbe(context.Background(), leader, rep, runIDs(runs[1:])...) })
	if err != nil {
		r.log.Error("storing probe report", "run", leader, "err", err)
	}

	// ...then stop taking joiners: from here on, runs of the target reuse
	// the stored report (or start a job of their own). Runs that joined
	// while the report was being stored share it now.
	r.mu.Lock()
	late := j.runs[len(runs):]
	delete(r.byTarget, j.key())
	if err == nil {
		// The report ends now, on the runner's clock: reuse is judged on
		// it, like the watch's schedule.
		r.recent[j.key()] = finished{runID: leader, at: r.now()}
		r.pruneRecentLocked()
	}
	r.mu.Unlock()
	if len(late) > 0 {
		if err == nil {
			err = r.store.ShareProbe(context.Background(), leader, runIDs(late)...)
		}
		if err != nil {
			r.log.Error("sharing probe report", "run", leader, "err", err)
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.running--
	r.sendLocked(j, event{"done", string(rep.Verdict.Code)})
	for ch := range j.subs {
		close(ch)
	}
	j.subs = nil
	for _, jr := range j.runs {
		if r.byCase[jr.caseID] == j {
			delete(r.byCase, jr.caseID)
		}
	}
}

// storeAgain runs a store write, again after 0.1, 0.2, 0.4, 0.8 and 1.6 s
// while it fails.
func storeAgain(write func() error) error {
	err := write()
	for pause := 100 * time.Millisecond; err != nil && pause <= 1600*time.Millisecond; pause *= 2 {
		time.Sleep(pause)
		err = write()
	}
	return err
}

func runIDs(runs []jobRun) []int64 {
	ids := make([]int64, len(runs))
	for i, jr := range runs {
		ids[i] = jr.runID
	}
	return ids
}

// pruneRecentLocked forgets reports too old to reuse.
func (r *Runner) pruneRecentLocked() {
	now := r.now()
	for k, f := range r.recent {
		if r.reuse <= 0 || now.Sub(f.at) > r.reuse {
			delete(r.recent, k)
		}
	}
}

// sendLocked sends an event to a job's subscribers; a subscriber too slow
// to keep up misses events rather than stalling the probe.
func (r *Runner) sendLocked(j *job, e event) {
	for ch := range j.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

// announceQueueLocked tells waiting jobs' subscribers where they stand.
func (r *Runner) announceQueueLocked() {
	now := r.now()
	for i, j := range r.queue {
		r.sendLocked(j, event{"queue", r.queueTextLocked(j, i+1, now)})
		r.tellQueueLocked(j, i+1)
	}
}

// queueTextLocked says where a job stands: pos is its place in the queue,
// 0 when it runs.
func (r *Runner) queueTextLocked(j *job, pos int, now time.Time) string {
	if j.remote {
		return j.text
	}
	if pos > 0 {
		if wait := max(r.hostWaitLocked(j.host, now), j.notBefore.Sub(now)); wait > 0 {
			times := fmt.Sprintf("%d times", r.hostCap)
			if r.hostCap == 1 {
				times = "once"
			}
			return fmt.Sprintf("Waiting: gatecheck checks one site at most %s a minute, so as not to add to the load of a site in trouble; yours (%s) starts in %s.",
				times, j.host, secondsWords(wait))
		}
	}
	if n := len(j.runs); pos == 0 && n > 1 {
		return fmt.Sprintf("Checking now… Many people are reporting %s: gatecheck checks it once for all %d reports, so as not to add to its load.", j.host, n)
	}
	return queueText(pos)
}

// tellQueueLocked tells the other instances where a shared job stands,
// when that changed.
func (r *Runner) tellQueueLocked(j *job, pos int) {
	if r.shared == nil || j.remote {
		return
	}
	if text := r.queueTextLocked(j, pos, r.now()); text != j.told {
		j.told = text
		r.tell(j, "queue", text)
	}
}

func queueText(pos int) string {
	switch pos {
	case 0:
		return "Checking now…"
	case 1:
		return "Waiting for a free slot: you are next."
	}
	if pos == 2 {
		return "Waiting for a free slot: 1 check is ahead of yours."
	}
	return fmt.Sprintf("Waiting for a free slot: %d checks are ahead of yours.", pos-1)
}

// secondsWords says a wait for people: "20 seconds", "1 minute 5 seconds".
func secondsWords(d time.Duration) string {
	s := int(math.Ceil(d.Seconds()))
	plural := func(n int, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case s < 60:
		return plural(max(s, 1), "second")
	case s%60 == 0:
		return plural(s/60, "minute")
	}
	return plural(s/60, "minute") + " " + plural(s%60, "second")
}

// tookKept is how many recent probe durations the runner keeps to say how
// long a check usually takes.
const tookKept = 20

// Usually is how long a check usually takes here: the median of the last
// probes, once there are three; ok is false before.
func (r *Runner) Usually() (d time.Duration, ok bool) {
	r.mu.Lock()
	took := slices.Clone(r.took)
	r.mu.Unlock()
	if len(took) < 3 {
		return 0, false
	}
	slices.Sort(took)
	return took[len(took)/2], true
}

// positionLocked is a job's place in the queue, 0 when it runs.
func (r *Runner) positionLocked(j *job) int {
	if !j.running {
		for i, q := range r.queue {
			if q == j {
				return i + 1
			}
		}
	}
	return 0
}

// Progress returns what is known of a case's run in this process: whether
// there is one, its queue position (0 when running), what to tell the
// person about it, and the checks so far.
func (r *Runner) Progress(caseID int64) (ok bool, position int, text string, checks []probes.Check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.byCase[caseID]
	if j == nil {
		return false, 0, "", nil
	}
	position = r.positionLocked(j)
	return true, position, r.queueTextLocked(j, position, r.now()), append([]probes.Check(nil), j.checks...)
}

// Subscribe returns a channel of a case's progress events, closed when the
// run ends, with what happened before subscribing replayed first. ok is
// false when no run is under way.
func (r *Runner) Subscribe(caseID int64) (ch <-chan event, cancel func(), ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.byCase[caseID]
	if j == nil {
		return nil, func() {}, false
	}
	c := make(chan event, 64+len(j.checks))
	pos := r.positionLocked(j)
	c <- event{"queue", r.queueTextLocked(j, pos, r.now())}
	for _, chk := range j.checks {
		data, _ := json.Marshal(chk)
		c <- event{"check", string(data)}
	}
	j.subs[c] = struct{}{}
	return c, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if j.subs != nil {
			if _, live := j.subs[c]; live {
				delete(j.subs, c)
				close(c)
			}
		}
	}, true
}

// heartbeat is how often an idle event stream sends a comment, so that
// proxies do not close it.
const heartbeat = 15 * time.Second
