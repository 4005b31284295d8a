package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// Runner runs probe jobs with bounded concurrency. Jobs beyond the workers
// wait in a queue whose positions people see; beyond the queue's length,
// Reserve refuses with errQueueFull.
type Runner struct {
	prober   *probes.Prober
	store    wizard.CaseStore
	log      *slog.Logger
	workers  int
	maxQueue int

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*job
	reserved int // places promised by Reserve and not yet taken by Enqueue
	byCase   map[int64]*job
	closed   bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type job struct {
	runID, caseID int64
	url           string
	running       bool
	checks        []probes.Check
	subs          map[chan event]struct{}
}

// event is one server-sent event for a case's progress page.
type event struct{ name, data string }

// errQueueFull is returned when no more probe jobs may wait.
var errQueueFull = wizard.Errorf(codeQueueFull, "gatecheck is busy checking other sites. Please try again in a minute.")

// errShuttingDown is returned when the runner takes no more jobs.
var errShuttingDown = wizard.Errorf(codeQueueFull, "gatecheck is shutting down. Please try again in a minute.")

// codeQueueFull is the error code of a refused probe job (429).
const codeQueueFull = "queue_full"

// NewRunner returns a runner; Start starts its workers.
func NewRunner(p *probes.Prober, store wizard.CaseStore, log *slog.Logger, workers, maxQueue int) *Runner {
	r := &Runner{prober: p, store: store, log: log, workers: max(workers, 1), maxQueue: max(maxQueue, 0), byCase: map[int64]*job{}}
	r.cond = sync.NewCond(&r.mu)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Start starts the workers.
func (r *Runner) Start() {
	for i := 0; i < r.workers; i++ {
		r.wg.Add(1)
		go r.work()
	}
}

// Close stops taking jobs, cancels the probes under way (their runs stay
// unfinished in the store, to be run again at the next start) and waits
// for the workers, or for ctx.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.cond.Broadcast()
	r.mu.Unlock()
	r.cancel()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reserve holds a place in the queue for a job about to be stored, so that
// a request the queue cannot take is refused before it writes anything: a
// refused case would be left behind, its probe run waiting for the next
// start. Enqueue takes the place; Release gives it back.
func (r *Runner) Reserve() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errShuttingDown
	}
	if len(r.queue)+r.reserved >= r.maxQueue {
		return errQueueFull
	}
	r.reserved++
	return nil
}

// Release gives back a place Reserve held, when the job will not come.
func (r *Runner) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reserved = max(r.reserved-1, 0)
}

// Enqueue adds a job. reserved says it takes the place the caller holds
// from Reserve; runs recovered at start come without one and are not
// counted against the queue's length.
func (r *Runner) Enqueue(runID, caseID int64, url string, reserved bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reserved {
		r.reserved = max(r.reserved-1, 0)
	}
	if r.closed {
		return errShuttingDown
	}
	j := &job{runID: runID, caseID: caseID, url: url, subs: map[chan event]struct{}{}}
	r.queue = append(r.queue, j)
	r.byCase[caseID] = j
	r.cond.Signal()
	r.announceQueueLocked()
	return nil
}

// Stats returns the number of jobs waiting and running.
func (r *Runner) Stats() (waiting, running int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue), len(r.byCase) - len(r.queue)
}

func (r *Runner) work() {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		for len(r.queue) == 0 && !r.closed {
			r.cond.Wait()
		}
		if r.closed {
			r.mu.Unlock()
			return
		}
		j := r.queue[0]
		r.queue = r.queue[1:]
		j.running = true
		r.announceQueueLocked()
		r.mu.Unlock()
		r.run(j)
	}
}

func (r *Runner) run(j *job) {
	ctx := r.ctx
	if err := r.store.StartProbe(ctx, j.runID); err != nil {
		if ctx.Err() != nil {
			// Shutting down: the run stays queued and runs at start.
			return
		}
		r.log.Error("starting probe run", "run", j.runID, "err", err)
	}
	rep := r.prober.Run(ctx, j.url, func(c probes.Check) {
		data, _ := json.Marshal(c)
		r.mu.Lock()
		j.checks = append(j.checks, c)
		r.sendLocked(j, event{"check", string(data)})
		r.mu.Unlock()
	})
	if ctx.Err() != nil {
		// Shutting down: the run stays unfinished and runs again at start.
		return
	}
	if err := r.store.FinishProbe(context.Background(), j.runID, rep); err != nil {
		r.log.Error("storing probe report", "run", j.runID, "err", err)
	}
	r.mu.Lock()
	r.sendLocked(j, event{"done", string(rep.Verdict.Code)})
	for ch := range j.subs {
		close(ch)
	}
	j.subs = nil
	if r.byCase[j.caseID] == j {
		delete(r.byCase, j.caseID)
	}
	r.mu.Unlock()
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

// announceQueueLocked tells waiting jobs' subscribers their position.
func (r *Runner) announceQueueLocked() {
	for i, j := range r.queue {
		r.sendLocked(j, event{"queue", queueText(i + 1)})
	}
}

func queueText(pos int) string {
	switch pos {
	case 0:
		return "Checking now…"
	case 1:
		return "Waiting for a free slot: you are next."
	}
	return fmt.Sprintf("Waiting for a free slot: %d checks ahead of yours.", pos-1)
}

// Progress returns what is known of a case's run in this process: whether
// there is one, its queue position (0 when running) and the checks so far.
func (r *Runner) Progress(caseID int64) (ok bool, position int, checks []probes.Check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.byCase[caseID]
	if j == nil {
		return false, 0, nil
	}
	if !j.running {
		for i, q := range r.queue {
			if q == j {
				position = i + 1
			}
		}
	}
	return true, position, append([]probes.Check(nil), j.checks...)
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
	pos := 0
	if !j.running {
		for i, q := range r.queue {
			if q == j {
				pos = i + 1
			}
		}
	}
	c <- event{"queue", queueText(pos)}
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
