package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

// Checking a reported fix. On a fix marked "confirm: probe", "This fixed
// it" is not recorded at once: it starts a fresh probe run whose actor is
// confirmRunPrefix, the fix's node, "@" and the sequence number of the
// case's last step record ("confirm:fix-cert@12"). That run is the confirmation's own
// record: it is never the report the walk reads (loadCaseAt leaves it out),
// so a site that recovered does not re-route the walk that led to the fix.
// When the run has found the site answering normally, the answer is
// recorded by confirmActor, and the case ends as the fix leads; when it
// still fails, the fix is shown again with what was found and the next
// step, and the person may still say it works for them (worksForMe), which
// is recorded on their word.
const (
	confirmRunPrefix = "confirm:"
	confirmActor     = "gatecheck check"
	worksForMe       = "works-for-me"
)

// confirmRunActor returns the actor of a probe run that checks the fix
// at node, asked for after the step record numbered seq (0: none).
func confirmRunActor(node string, seq int64) string {
	return confirmRunPrefix + node + "@" + strconv.FormatInt(seq, 10)
}

// confirmNode returns the fix node a probe run checks and the step record
// it was asked for after, if it is a confirmation.
func confirmNode(run *wizard.ProbeRun) (node string, seq int64, ok bool) {
	rest, ok := strings.CutPrefix(run.Actor, confirmRunPrefix)
	if !ok {
		return "", 0, false
	}
	node, n, _ := strings.Cut(rest, "@")
	seq, _ = strconv.ParseInt(n, 10, 64)
	return node, seq, true
}

// lastSeq is the sequence number of the case's last step record, 0 when
// it has none.
func (st *caseState) lastSeq() int64 {
	if len(st.log) == 0 {
		return 0
	}
	return st.log[len(st.log)-1].Seq
}

// confirmApplies reports whether the case's latest confirmation is of the
// step shown now and was asked for after the last step record: otherwise
// it belongs to an earlier visit of the step and says nothing now.
func (st *caseState) confirmApplies() bool {
	if st.confirm == nil || st.step == nil || st.step.Done {
		return false
	}
	node, seq, _ := confirmNode(st.confirm)
	return node == st.step.Node && seq == st.lastSeq()
}

// confirming reports whether a check of the fix shown is under way: the
// page then follows it, as it does the first check.
func (st *caseState) confirming() bool {
	return st.confirmApplies() && st.confirm.State != wizard.ProbeDone
}

// confirmedWorks reports whether a finished confirmation found the site
// answering normally.
func confirmedWorks(run *wizard.ProbeRun) bool {
	return run.State == wizard.ProbeDone && run.Report != nil && !run.Report.Problem()
}

// settleConfirm records "this fixed it" when the check of the fix shown
// found the site answering normally, and reports whether it wrote. It runs
// wherever the case is read (the visitor's page, staff pages, the API),
// so the case is resolved even if the visitor closed the page while
// gatecheck checked; a second reader recording the same answer again
// changes nothing.
func (s *Server) settleConfirm(ctx context.Context, st *caseState) (bool, error) {
	if !st.confirmApplies() || !confirmedWorks(st.confirm) {
		return false, nil
	}
	next := append(st.answers[:len(st.answers):len(st.answers)], wizard.Answer{Node: st.step.Node, Choice: wizard.ChoiceFixed, At: s.cfg.Now()})
	step, err := st.tree.Next(s.cfg.Settings, st.facts, next)
	if err != nil {
		return false, err
	}
	return true, s.saveAnswers(ctx, st, next, step, confirmActor)
}

// describeConfirmation sets the step's Confirmation: on an end a fix led
// to, whether gatecheck's check confirmed it; on a fix whose check found
// the site still failing, what it found, with the choices that lead on.
func (s *Server) describeConfirmation(st *caseState) {
	step := st.step
	switch {
	case step.Done && step.Outcome == wizard.Resolved && len(st.answers) > 0 && len(st.log) > 0:
		last := st.answers[len(st.answers)-1]
		if n := st.tree.Node(last.Node); n == nil || n.Kind != wizard.KindFix || last.Choice != wizard.ChoiceFixed {
			return
		}
		if rec := st.log[len(st.log)-1]; rec.Actor == confirmActor && st.confirm != nil && confirmedWorks(st.confirm) {
			at := st.confirm.Report.FinishedAt()
			step.Confirmation = &wizard.Confirmation{Confirmed: true, Checked: at,
				Text: fmt.Sprintf("Solved: gatecheck checked %s again at %s and it answers normally.", st.c.Host, s.clock(at))}
			return
		}
		step.Confirmation = &wizard.Confirmation{Text: "Recorded as the visitor said; not confirmed by a check."}
	case step.Kind == wizard.KindFix && step.Confirm && st.confirmApplies() && st.confirm.State == wizard.ProbeDone:
		c := &wizard.Confirmation{}
		if rep := st.confirm.Report; rep != nil {
			c.Checked = rep.FinishedAt()
			c.Text = fmt.Sprintf("gatecheck checked again at %s: %s still fails: %s", s.clock(c.Checked), st.c.Host, finding(rep, s.cfg.Now()))
		} else {
			c.Text = fmt.Sprintf("gatecheck could not finish checking %s again.", st.c.Host)
		}
		step.Confirmation = c
		step.Choices = []wizard.StepChoice{
			{ID: wizard.ChoiceBroken, Label: "Go on to the next step", Suggested: true},
			{ID: wizard.ChoiceFixed, Label: "Check again"},
			{ID: worksForMe, Label: "It works for me now"},
		}
	}
}

// finding is a report's verdict in the visitor's words, ending with a
// full stop.
func finding(rep *probes.Report, now time.Time) string {
	h := strings.TrimSuffix(wizard.VisitorWords(rep, now).Headline, ".")
	return strings.ToLower(h[:1]) + h[1:] + "."
}

// clock is a time of day in the operator's zone, with the date when it is
// not today.
func (s *Server) clock(t time.Time) string {
	loc := s.cfg.Settings.Location
	if loc == nil {
		loc = time.UTC
	}
	at := t.In(loc)
	if now := s.cfg.Now().In(loc); at.YearDay() != now.YearDay() || at.Year() != now.Year() {
		return at.Format("2 January 2006, 15:04 MST")
	}
	return at.Format("15:04 MST")
}

// confirmFix answers "This fixed it" on a fix gatecheck can check: a
// fresh check of the site (joining one under way, counted against the
// client's limit and, through the runner, the host's cap), then the
// case's page, which follows it. When the check is refused, the answer is
// recorded on the visitor's word, marked as not confirmed, and the page
// says why. It reports whether it answered the request.
func (s *Server) confirmFix(w http.ResponseWriter, r *http.Request, st *caseState) bool {
	if st.confirming() {
		http.Redirect(w, r, "/c/"+st.c.Token, http.StatusSeeOther)
		return true
	}
	_, err := s.startFresh(r, st.c, confirmRunActor(st.step.Node, st.lastSeq()))
	if err == nil {
		http.Redirect(w, r, "/c/"+st.c.Token, http.StatusSeeOther)
		return true
	}
	var limited *limitedError
	var why string
	switch {
	case errors.As(err, &limited):
		why = fmt.Sprintf("too many checks were started from your address; the next can start in %d seconds", int(limited.wait.Seconds()+0.999))
	case wizard.ErrorCode(err) == codeQueueFull:
		why = "it is busy checking many other sites"
	default:
		s.Error(w, r, err)
		return true
	}
	s.log.Info("fix recorded unconfirmed: the check was refused", "case", st.c.Token, "node", st.step.Node, "err", err)
	next := append(st.answers[:len(st.answers):len(st.answers)], wizard.Answer{Node: st.step.Node, Choice: wizard.ChoiceFixed, At: s.cfg.Now()})
	step, err := st.tree.Next(s.cfg.Settings, st.facts, next)
	if err == nil {
		err = s.saveAnswers(r.Context(), st, next, step, "")
	}
	if err == nil {
		st, err = s.loadCaseAt(r.Context(), st.c.Token, s.baseURL(r), false)
	}
	if err != nil {
		s.Error(w, r, err)
		return true
	}
	v := s.stepView(r, st)
	v.Error = fmt.Sprintf("gatecheck could not check %s again just now (%s), so your word is recorded as it is: not confirmed by a check.", st.c.Host, why)
	s.render(w, r, http.StatusOK, templates.Step(s.stepMeta(r, st), v))
	return true
}

// rewindTo takes the case's walk back to node, an earlier step on its
// path, and returns the case as it then stands. On an error st is
// unchanged, to show the step it is at.
func (s *Server) rewindTo(ctx context.Context, r *http.Request, st *caseState, node string) (*caseState, error) {
	kept, err := st.tree.Rewind(s.cfg.Settings, st.facts, st.answers, node)
	if err != nil {
		return st, err
	}
	step, err := st.tree.Next(s.cfg.Settings, st.facts, kept)
	if err != nil {
		return st, err
	}
	if step.Node != node || step.Done {
		return st, wizard.Errorf(wizard.EINVALID, "The walk does not lead back to that step.")
	}
	if err := s.saveAnswers(ctx, st, kept, step, ""); err != nil {
		return st, err
	}
	next, err := s.loadCaseAt(ctx, st.c.Token, s.baseURL(r), false)
	if err != nil {
		return st, err
	}
	return next, nil
}
