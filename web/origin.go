package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

// handleStaffOrigin answers POST /staff/c/{token}/origin (origin=ADDR):
// check the site again as the public reaches it, and reach its origin
// directly at ADDR beside it (every connection to the host dialled there,
// Host and SNI unchanged): the standard next move when an edge or CDN
// answers 502. It counts against the client's limit as a re-run does.
func (s *Server) handleStaffOrigin(w http.ResponseWriter, r *http.Request) {
	c, err := s.cfg.Store.Case(r.Context(), chi.URLParam(r, "token"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if err := r.ParseForm(); err != nil {
		s.Error(w, r, formError(err))
		return
	}
	origin, err := probes.ParseOrigin(r.PostForm.Get("origin"))
	if err != nil {
		s.renderStaffCase(w, r, http.StatusUnprocessableEntity, capitalise(err.Error())+".", "")
		return
	}
	if ok, _, _, _ := s.runner.Progress(c.ID); ok {
		s.renderStaffCase(w, r, http.StatusConflict, "The probes are already running for this case.", "")
		return
	}
	run, ok := s.freshCheck(w, r, c, staffFrom(r.Context()).Name)
	if !ok {
		return
	}
	if err := s.askOrigin(context.WithoutCancel(r.Context()), c, run.ID, origin); err != nil {
		s.Error(w, r, err)
		return
	}
	http.Redirect(w, r, "/staff/c/"+c.Token, http.StatusSeeOther)
}

// askOrigin keeps origin on the case and has the runner reach it for
// the case's probe run runID; the view is stored when it is done.
func (s *Server) askOrigin(ctx context.Context, c *wizard.Case, runID int64, origin netip.AddrPort) error {
	c.Origin = probes.FormatOrigin(origin)
	if err := s.cfg.Store.SetCaseOrigin(ctx, c.ID, c.Origin); err != nil {
		return err
	}
	s.log.Info("origin asked", "case", c.Token, "origin", c.Origin)
	return s.runner.Origin(c, runID, origin)
}

// Origin diagnoses a case's URL with every connection to its host pinned
// to origin, in the background, and stores the report as the view from
// wizard.VantageOrigin of the case's run runID. It waits for the host's
// cap as a probe job does: reaching the origin is one more diagnosis of
// the host. It refuses with errShuttingDown once the runner is closed.
func (r *Runner) Origin(c *wizard.Case, runID int64, origin netip.AddrPort) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errShuttingDown
	}
	caseID, input, host := c.ID, c.ProbeInput(), c.Host
	r.wg.Go(func() {
		if !r.hostSlot(host) {
			return
		}
		rep := r.prober.RunOrigin(r.ctx, input, origin, nil)
		if r.ctx.Err() != nil {
			return
		}
		v := &wizard.Vantage{RunID: runID, From: wizard.VantageOrigin, Reachable: new(answered(rep)), Report: rep,
			Detail: string(rep.Verdict.Code) + ": " + clip(rep.Verdict.Summary, 500)}
		if err := r.store.AddVantage(context.Background(), caseID, v); err != nil {
			r.log.Warn("storing the origin's view", "case", caseID, "run", runID, "err", err)
		}
	})
	return nil
}

// hostSlot waits until host may be probed under the host's cap and
// counts the start; false when the runner closes first.
func (r *Runner) hostSlot(host string) bool {
	for {
		r.mu.Lock()
		now := r.now()
		wait := r.hostWaitLocked(host, now)
		if wait <= 0 {
			if r.hostCap > 0 {
				r.hostStarts[host] = append(r.hostStarts[host], now)
			}
			r.mu.Unlock()
			return true
		}
		r.mu.Unlock()
		select {
		case <-r.ctx.Done():
			return false
		case <-time.After(min(wait, time.Second)):
		}
	}
}

// originOfNewCase asks origin for a case just created, for its first
// probe run.
func (s *Server) originOfNewCase(ctx context.Context, c *wizard.Case, origin netip.AddrPort) error {
	runs, err := s.cfg.Store.ProbeRuns(ctx, c.ID)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		return wizard.Errorf(wizard.EINTERNAL, "the case has no probe run")
	}
	return s.askOrigin(ctx, c, runs[len(runs)-1].ID, origin)
}

// originView is the latest view of the origin among views, with the
// pair sentence against the public check of the same run once that is
// done; nil when the origin was never reached.
func originView(views []wizard.Vantage, runs []*wizard.ProbeRun) *templates.OriginView {
	o := wizard.Origin(views)
	if o == nil || o.Report == nil {
		return nil
	}
	v := &templates.OriginView{Address: o.Report.Origin, At: o.At, Report: o.Report}
	for _, run := range runs {
		if run.ID == o.RunID && run.State == wizard.ProbeDone {
			v.Pair = wizard.OriginPair(run.Report, o.Report)
		}
	}
	return v
}

// diffOrigin says how the origin's view changed between two probe runs,
// for the staff's comparison: asked for the later run only, or a verdict
// that changed.
func diffOrigin(views []wizard.Vantage, before, after int64) []string {
	var a, b *probes.Report
	for _, v := range views {
		if v.From != wizard.VantageOrigin || v.Report == nil {
			continue
		}
		switch v.RunID {
		case before:
			a = v.Report
		case after:
			b = v.Report
		}
	}
	switch {
	case b == nil:
		return nil
	case a == nil:
		return []string{fmt.Sprintf("Origin reached directly at %s: %s", b.Origin, b.Verdict.Code)}
	case a.Verdict.Code != b.Verdict.Code || a.Origin != b.Origin:
		return []string{fmt.Sprintf("Origin: %s at %s → %s at %s", a.Verdict.Code, a.Origin, b.Verdict.Code, b.Origin)}
	}
	return nil
}

// handleAPIOrigin answers POST /api/cases/{token}/origin {"origin":
// "ADDR"}: what the staff page's form does, for a ticket system with an
// API key (or a staff session; anyone else: 403): a fresh public check
// and the origin reached directly beside it. 202 with the probe run;
// the origin's view appears in the case's vantages when done.
func (s *Server) handleAPIOrigin(w http.ResponseWriter, r *http.Request) {
	if !s.staffOrKey(r) {
		s.errorStatus(w, r, http.StatusForbidden, originNeedsKey)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.errorStatus(w, r, http.StatusUnsupportedMediaType, `Send JSON with Content-Type: application/json, such as {"origin": "203.0.113.7"}.`)
		return
	}
	var in struct {
		Origin string `json:"origin"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.Error(w, r, errTooLarge)
			return
		}
		s.errorStatus(w, r, http.StatusBadRequest, `The body is not the JSON expected, {"origin": "203.0.113.7"}: `+err.Error())
		return
	}
	origin, err := probes.ParseOrigin(in.Origin)
	if err != nil {
		s.Error(w, r, wizard.Errorf(wizard.EINVALID, "%s.", capitalise(err.Error())))
		return
	}
	c, err := s.cfg.Store.Case(r.Context(), chi.URLParam(r, "token"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if ok, _, _, _ := s.runner.Progress(c.ID); ok {
		s.errorStatus(w, r, http.StatusConflict, "The probes are already running for this case: ask again once they are done.")
		return
	}
	actor := "api"
	if k := apiKeyFrom(r.Context()); k != nil {
		actor = "api:" + k.Name
	} else if u := s.sessionUser(r); u != nil {
		actor = u.Name
	}
	run, ok := s.freshCheck(w, r, c, actor)
	if !ok {
		return
	}
	if err := s.askOrigin(context.WithoutCancel(r.Context()), c, run.ID, origin); err != nil {
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/cases/"+c.Token)
	writeJSON(w, http.StatusAccepted, map[string]any{"token": c.Token, "run": run.ID, "origin": c.Origin})
}

// originNeedsKey is the refusal of an anonymous request for the origin.
const originNeedsKey = "Reaching the origin directly needs an API key (Authorization: Bearer gck_…) or a signed-in staff session: the address of a site's own server is not for anyone to point gatecheck at."
