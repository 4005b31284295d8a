package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// Watching a case: gatecheck probes its site again on WatchIntervals (the
// last one repeating) for WatchFor, each check coalesced with any other
// probe of the same target, until a check finds it working again. The
// store then records when it recovered and ends the watch. Cases are
// watched when asked (the API's "watch", a button for the visitor and for
// staff) and, once, when they end escalated or unresolved.

// DefaultWatchIntervals are the waits between a watched case's checks
// unless the operator says otherwise: the last one repeats.
var DefaultWatchIntervals = []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour}

// watchActor is who asks for a watch's probe runs.
const watchActor = "watch"

// startWatch schedules a case's checks from now.
func (s *Server) startWatch(ctx context.Context, caseID int64) error {
	now := s.cfg.Now()
	return s.cfg.Store.Watch(ctx, caseID, now.Add(s.cfg.WatchIntervals[0]), now.Add(s.cfg.WatchFor))
}

// watchUnresolved starts watching the cases given, once each: those now
// escalated or unresolved that were never watched.
func (s *Server) watchUnresolved(ctx context.Context, to wizard.Status, caseIDs ...int64) error {
	if to != wizard.StatusEscalated && to != wizard.StatusUnresolved {
		return nil
	}
	for _, id := range caseIDs {
		c, err := s.cfg.Store.CaseByID(ctx, id)
		if err != nil {
			return err
		}
		if c.Watch.Until.IsZero() && c.RecoveredAt.IsZero() {
			if err := s.startWatch(ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// nextWatch is when a watch's next check is due after the check number
// checks (counting from 0) made at now.
func (s *Server) nextWatch(now time.Time, checks int) time.Time {
	iv := s.cfg.WatchIntervals
	return now.Add(iv[min(checks+1, len(iv)-1)])
}

// watchInterval is the wait before a watch's check number checks
// (counting from 0).
func (s *Server) watchInterval(checks int) time.Duration {
	iv := s.cfg.WatchIntervals
	return iv[min(checks, len(iv)-1)]
}

// watchLease is how long a claimed watch check stays this instance's:
// queueing it takes moments, so a claim still held after a minute is one
// whose instance died, and another takes the check.
const watchLease = time.Minute

// checkWatches queues a probe run for each watched case due now. A check
// the queue cannot take now is left due, for the next tick. A check joins
// a probe of the site under way, or takes a report made since the watch's
// previous check (younger than the interval), but never an older one: a
// site that recovered within the reuse window is noticed at once.
func (s *Server) checkWatches(ctx context.Context) {
	now := s.cfg.Now()
	// Claimed, so that of several instances on one database one checks
	// each case; one that cannot queue a check gives the rest back.
	due, err := s.cfg.Store.ClaimWatches(ctx, now, watchLease, 100)
	if err != nil {
		s.log.Error("reading watched cases", "err", err)
		return
	}
	giveBack := func(rest []*wizard.Case) {
		for _, c := range rest {
			if err := s.cfg.Store.ReleaseWatch(context.WithoutCancel(ctx), c.ID, now.Add(watchLease), now); err != nil {
				s.log.Error("giving back a watched case's check", "case", c.Token, "err", err)
			}
		}
	}
	for i, c := range due {
		// A run of the case still under way is this check too.
		if busy, _, _, _ := s.runner.Progress(c.ID); !busy {
			maxAge := s.watchInterval(c.Watch.Checks)
			held, err := s.runner.Reserve(targetOf(c), maxAge)
			if err != nil {
				s.log.Debug("a watched case's check waits for room in the queue", "case", c.Token, "err", err)
				giveBack(due[i:])
				return
			}
			if _, err := s.queueProbe(ctx, c, watchActor, held, maxAge); err != nil {
				s.log.Error("queueing a watched case's check", "case", c.Token, "err", err)
				giveBack(due[i:])
				return
			}
		}
		if err := s.cfg.Store.WatchChecked(ctx, c.ID, s.nextWatch(now, c.Watch.Checks)); err != nil {
			s.log.Error("scheduling a watched case's next check", "case", c.Token, "err", err)
		}
	}
}

// handleWatch answers POST /c/{token}/watch (the visitor) and POST
// /staff/c/{token}/watch (staff): keep checking the site until it works.
// stop=1 stops the checks.
func (s *Server) handleWatch(w http.ResponseWriter, r *http.Request) {
	c, ok := s.postedCase(w, r)
	if !ok {
		return
	}
	var err error
	if r.PostForm.Get("stop") != "" {
		err = s.cfg.Store.Unwatch(r.Context(), c.ID)
	} else {
		err = s.startWatch(r.Context(), c.ID)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	back := "/c/" + c.Token
	if strings.HasPrefix(r.URL.Path, "/staff/") {
		back = "/staff/c/" + c.Token
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}
