package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

// handleHome answers GET /: the form.
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	m := s.meta(r, "Get past a 502 Bad Gateway")
	m.Description = homeDescription
	s.render(w, r, http.StatusOK, templates.Home(m, templates.HomeView{AskEmail: s.canMailVisitors()}))
}

// homeDescription is what a link to the start page previews.
const homeDescription = "Type the address of the page that shows the error: gatecheck checks the site and walks you to the fix, or to the people who can fix it."

// handleStart answers GET /start?url=...&ticket=...: the form, filled in,
// for links from ticket systems. Starting the probes stays a POST.
func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := templates.HomeView{URL: clip(q.Get("url"), 4096), Ticket: clip(q.Get("ticket"), 4*maxTicket),
		Email: clip(q.Get("email"), 4*maxEmail), AskEmail: s.canMailVisitors()}
	s.render(w, r, http.StatusOK, templates.Home(s.meta(r, "Get past a 502 Bad Gateway"), v))
}

// clip drops the bytes of s that are not UTF-8 and cuts it to at most n
// bytes, never inside a character.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return s
}

// handleCreateCase answers POST /cases: check the input, open the case,
// queue the probes, and go to the case's page.
func (s *Server) handleCreateCase(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.Error(w, r, formError(err))
		return
	}
	rawURL, ticket, email := r.PostForm.Get("url"), r.PostForm.Get("ticket"), r.PostForm.Get("email")
	// This browser reports the case: its view of the site is the
	// visitor's, and nobody else's replaces it.
	secret, hash := newReporter()
	c, err := s.createCase(r, rawURL, ticket, email, nil, hash)
	var limited *limitedError
	switch {
	case errors.As(err, &limited):
		// The form again, as typed, with when another check can start.
		secs := waitSeconds(limited.wait)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		v := templates.HomeView{URL: clip(rawURL, 4096), Ticket: clip(ticket, 4*maxTicket), Email: clip(email, 4*maxEmail),
			AskEmail: s.canMailVisitors() || email != "", Wait: limitWords(limited.what, secs)}
		s.render(w, r, http.StatusTooManyRequests, templates.Home(s.meta(r, "Please wait a moment"), v))
		return
	case wizard.ErrorCode(err) == wizard.EINVALID:
		v := templates.HomeView{URL: clip(rawURL, 4096), Ticket: clip(ticket, 4*maxTicket), Email: clip(email, 4*maxEmail),
			AskEmail: s.canMailVisitors() || email != "", Error: wizard.ErrorMessage(err)}
		s.render(w, r, http.StatusUnprocessableEntity, templates.Home(s.meta(r, "Check the address"), v))
		return
	case err != nil:
		s.Error(w, r, err)
		return
	}
	s.setReporter(w, r, c.Token, secret)
	http.Redirect(w, r, "/c/"+c.Token, http.StatusSeeOther)
}

// limitedError is a refusal for being too fast or too many.
type limitedError struct {
	wait time.Duration
	what string
}

func (e *limitedError) Error() string { return "rate limited: " + e.what }

// createCase validates the input, applies the limits and opens a case with
// its first probe run queued, and a job for that run for each agent.
func (s *Server) createCase(r *http.Request, rawURL, ticket, email string, agents []*wizard.Agent, reporterHash string) (*wizard.Case, error) {
	t, err := probes.Normalize(rawURL, probes.DefaultPorts)
	if err != nil {
		return nil, wizard.Errorf(wizard.EINVALID, "%s", capitalise(err.Error()))
	}
	ticket, err = cleanTicket(ticket)
	if err != nil {
		return nil, err
	}
	if email, err = cleanVisitorEmail(email); err != nil {
		return nil, err
	}
	// A ticket system's key has a limit of its own; anyone else's is per
	// address.
	ip := s.clientIP(r)
	var ok bool
	var wait time.Duration
	if k := apiKeyFrom(r.Context()); k != nil {
		ok, wait = s.keyLimit.take(r.Context(), idKey(k.ID))
	} else {
		ok, wait = s.probeLimit.take(r.Context(), addrKey(ip))
	}
	if !ok {
		return nil, &limitedError{wait, limitChecks}
	}
	c := &wizard.Case{URL: t.String(), Host: t.Host, NoScheme: t.Bare, Ticket: ticket, RequesterIP: addrString(ip), TreeVersion: s.cfg.Tree.ID(), ReporterHash: reporterHash, VisitorEmail: email}
	held, err := s.runner.Reserve(targetOf(c), anyRecent)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Store.CreateCase(r.Context(), c, s.cfg.TreeSource); err != nil {
		s.runner.Release(targetOf(c), held)
		return nil, err
	}
	// The case is stored: queue its probes even if the client hangs up
	// now, or the case would wait for ever (until the next start).
	ctx := context.WithoutCancel(r.Context())
	run, err := s.queueProbe(ctx, c, "", held, anyRecent)
	if err == nil {
		err = s.queueAgentJobs(ctx, c.ID, run.ID, agents, "", false)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// queueProbe stores a probe run and gives it to the runner, in the place
// the caller holds from s.runner.Reserve if held. maxAge bounds the age of
// a recent diagnosis of the same target it may take (fresh: none).
func (s *Server) queueProbe(ctx context.Context, c *wizard.Case, actor string, held bool, maxAge time.Duration) (*wizard.ProbeRun, error) {
	run, err := s.cfg.Store.QueueProbe(ctx, c.ID, actor)
	if err != nil {
		s.runner.Release(targetOf(c), held)
		return nil, err
	}
	if err := s.runner.Enqueue(ctx, targetOf(c), run.ID, c.ID, held, maxAge); err != nil {
		// Shutting down: the run stays queued in the store and is picked
		// up at the next start; the person is told to come back.
		return nil, err
	}
	return run, nil
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// Limits of what people type, in characters; forms given back after an
// error keep up to four bytes a character.
const (
	maxTicket = 100
	maxNote   = 10000
)

func cleanTicket(t string) (string, error) {
	t = strings.TrimSpace(t)
	switch {
	case !utf8.ValidString(t):
		return "", wizard.Errorf(wizard.EINVALID, "The ticket reference contains characters that are not valid text.")
	case utf8.RuneCountInString(t) > maxTicket:
		return "", wizard.Errorf(wizard.EINVALID, "The ticket reference is %d characters long; it can have up to %d.", utf8.RuneCountInString(t), maxTicket)
	case strings.IndexFunc(t, unicode.IsControl) >= 0:
		return "", wizard.Errorf(wizard.EINVALID, "The ticket reference contains control characters.")
	}
	return t, nil
}

func formError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge
	}
	return wizard.Errorf(wizard.EINVALID, "The form could not be read.")
}

// caseState is a case with what the wizard needs to show it.
type caseState struct {
	c       *wizard.Case
	tree    *wizard.Tree
	latest  *wizard.ProbeRun
	checked *wizard.ProbeRun // the latest finished run: its report is in force
	// confirm is the latest check of a reported fix: never the report in
	// force, so that the walk stays on the facts it was based on.
	confirm *wizard.ProbeRun
	// treeLost is set when the tree version the case began on cannot be
	// read any more, so that it walks the current tree.
	treeLost bool
	log      []wizard.StepRecord
	views    []wizard.Vantage   // besides the server's, oldest first
	jobs     []*wizard.AgentJob // agents' jobs, oldest first
	answers  []wizard.Answer    // in force and still fitting the tree
	facts    wizard.Facts
	step     *wizard.Step
	stale    bool           // some answers no longer fit (the probes were re-run)
	mails    []*wizard.Mail // sent by gatecheck, oldest first
	// evidence is set when the reader may see what agents fetched (staff,
	// API keys); otherwise views holds agents' verdicts only.
	evidence bool
}

// loadCase reads a case and where its walk stands, its escalation summary
// with the case link when the server has a BaseURL. evidence says whether
// the reader may see what agents fetched inside customers' networks;
// without it, agents' views keep their verdicts only (withoutEvidence),
// everywhere the case is shown from st: rows, summaries, JSON.
func (s *Server) loadCase(ctx context.Context, token string, evidence bool) (*caseState, error) {
	return s.loadCaseAt(ctx, token, s.cfg.BaseURL, evidence)
}

// loadCaseAt loads a case as seen under base (the request's own address
// without a BaseURL), whose link the escalation summary carries.
func (s *Server) loadCaseAt(ctx context.Context, token, base string, evidence bool) (*caseState, error) {
	c, err := s.cfg.Store.Case(ctx, token)
	if err != nil {
		return nil, err
	}
	st := &caseState{c: c, evidence: evidence}
	var kept bool
	st.tree, kept = s.treeFor(ctx, c)
	st.treeLost = !kept
	runs, err := s.cfg.Store.ProbeRuns(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	var report *probes.Report
	for _, run := range runs {
		if _, _, ok := confirmNode(run); ok {
			st.confirm = run
			continue
		}
		st.latest = run
		if run.State == wizard.ProbeDone {
			st.checked, report = run, run.Report
		}
	}
	if st.log, err = s.cfg.Store.Steps(ctx, c.ID); err != nil {
		return nil, err
	}
	if st.views, err = s.cfg.Store.Vantages(ctx, c.ID); err != nil {
		return nil, err
	}
	if s.agents != nil {
		if st.jobs, err = s.agents.CaseAgentJobs(ctx, c.ID); err != nil {
			return nil, err
		}
	}
	if !evidence {
		st.views = withoutEvidence(st.views, st.jobs)
	}
	if s.mails != nil {
		if st.mails, err = s.mails.CaseMails(ctx, c.ID); err != nil {
			return nil, err
		}
	}
	st.answers = wizard.ReplayAnswers(st.log)
	st.facts = wizard.Facts{Report: report, Vantages: currentViews(st.views, runs, report), RequesterIP: c.RequesterIP, URL: c.URL, Ticket: c.Ticket, Now: s.cfg.Now()}
	if base != "" {
		st.facts.Link = base + "/c/" + c.Token
	}
	st.step, err = st.tree.Next(s.cfg.Settings, st.facts, st.answers)
	var ae *wizard.AnswerError
	if errors.As(err, &ae) {
		// Answers given before a re-run of the probes may no longer fit:
		// keep those that do.
		st.answers, st.stale = st.answers[:ae.Index], true
		st.step, err = st.tree.Next(s.cfg.Settings, st.facts, st.answers)
	}
	if err != nil {
		return st, err
	}
	if settled, err := s.settleConfirm(ctx, st); err != nil {
		return nil, err
	} else if settled {
		return s.loadCaseAt(ctx, token, base, evidence)
	}
	s.describeConfirmation(st)
	return st, nil
}

// shownRun is the check a case's page shows, nil before the first: the
// newest finished one. A check of a reported fix that ran after the
// walk's report says how the site is now (working again, or still
// failing), though the walk keeps the facts it was based on.
func (st *caseState) shownRun() *wizard.ProbeRun {
	if c := st.confirm; c != nil && c.State == wizard.ProbeDone && c.Report != nil && (st.checked == nil || c.ID > st.checked.ID) {
		return c
	}
	if st.checked != nil && st.checked.Report != nil {
		return st.checked
	}
	return nil
}

// probing reports whether the case has no finished probe run yet.
func (st *caseState) probing() bool { return st.facts.Report == nil }

// rechecking reports whether the visitor asked for a fresh check that has
// not finished: the page then follows it, as it did the first.
func (st *caseState) rechecking() bool {
	return st.latest != nil && st.latest.State != wizard.ProbeDone && st.latest.Actor == recheckActor
}

// recheckActor is who asked for a probe run the visitor started.
const recheckActor = "visitor"

// handleCase answers GET /c/{token}: progress while the first probe runs,
// then the current wizard step.
//
// Step pages are kept in s.pages: the page depends on the case and the
// address it is seen under (the case link), nothing else of the request.
func (s *Server) handleCase(w http.ResponseWriter, r *http.Request) {
	token := chi.URLParam(r, "token")
	// The page differs for the reporter's browser (it checks the site),
	// so the key holds the reporter cookie's hash.
	key := token + " " + s.baseURL(r) + " " + reporterKey(r)
	if p, ok := s.pages.get(key); ok {
		// Another instance's write is not heard here: the case's version
		// says whether there was one.
		if !s.cfg.Changes.Shared() {
			writePage(w, p.body, p.csp)
			return
		}
		if v, err := s.cfg.Changes.CaseVersion(r.Context(), p.caseID); err == nil && v == p.version {
			writePage(w, p.body, p.csp)
			return
		}
		s.pages.drop(key, p)
	}
	from := s.pages.begin()
	// The visitor's page is the same for everyone who has the link, staff
	// included: agents' evidence is for the staff pages.
	st, err := s.loadCaseAt(r.Context(), token, s.baseURL(r), false)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if st.probing() || st.rechecking() || st.confirming() {
		s.renderProbing(w, r, st)
		return
	}
	v := s.stepView(r, st)
	switch {
	case st.stale:
		v.Error = "The site was checked again and some earlier answers no longer apply; the wizard continues from here."
	case st.treeLost:
		v.Error = "This case began with an earlier version of gatecheck's troubleshooting steps, which can no longer be read; it goes on with the current steps, so some earlier answers may not apply."
	}
	var csp string
	v.Check, csp = s.browserCheck(r, st)
	if v.Check != nil {
		v.Check.Reload = s.stepAsksBrowser(st)
	} else if st.c.ReporterHash == "" && st.latest != nil && st.latestBrowser() == nil && !s.browserTooLate(st) {
		v.Claim = "/c/" + st.c.Token + "/reporter"
	}
	var buf bytes.Buffer
	if err := templates.Step(s.stepMeta(r, st), v).Render(r.Context(), &buf); err != nil {
		s.Error(w, r, err)
		return
	}
	if csp != "" {
		csp = contentPolicy(csp)
	}
	until := pageUntil(st.facts.Now, v.CheckedAt)
	if _, pending := s.agentRows(st); pending && st.facts.Now.Add(5*time.Second).Before(until) {
		// Whether a waiting agent is online changes with no write.
		until = st.facts.Now.Add(5 * time.Second)
	}
	s.pages.put(key, st.c.ID, st.c.Version, from, until, buf.Bytes(), csp)
	writePage(w, buf.Bytes(), csp)
}

// stepAsksBrowser reports whether the case's walk passed a check of the
// browser's view without an answer of the person's: a view stored now
// would change the step shown.
func (s *Server) stepAsksBrowser(st *caseState) bool {
	for _, p := range st.step.Path {
		if n := st.tree.Node(p.Node); n != nil && n.Kind == wizard.KindCheck && n.Field == "vantage.browser" && p.Auto {
			return true
		}
	}
	return false
}

// pageUntil is how long a step page rendered at now may be kept: to the
// end of the minute (its escalation summary shows the time to the minute),
// and no more than a few seconds while it says how many seconds ago the
// site was checked.
func pageUntil(now, checked time.Time) time.Time {
	until := now.Truncate(time.Minute).Add(time.Minute)
	if soon := now.Add(5 * time.Second); now.Sub(checked) < time.Minute && soon.Before(until) {
		until = soon
	}
	return until
}

// writePage sends a rendered page, with its own Content-Security-Policy
// when csp is set.
func writePage(w http.ResponseWriter, page []byte, csp string) {
	h := w.Header()
	if csp != "" {
		h.Set("Content-Security-Policy", csp)
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(http.StatusOK)
	w.Write(page)
}

func (s *Server) renderProbing(w http.ResponseWriter, r *http.Request, st *caseState) {
	ok, pos, text, checks := s.runner.Progress(st.c.ID)
	v := templates.ProbingView{Token: st.c.Token, URL: st.c.URL, Checks: checks, Queue: text, Notice: s.hostNotice(r.Context(), st.c),
		Progress: templates.ProbingProgress{Started: ok && pos == 0, Secure: s.handshakes(st.c), Usually: s.usually()}}
	if !ok {
		v.Queue = "Waiting for gatecheck to start checking…"
	}
	var csp string
	if v.Check, csp = s.browserCheck(r, st); csp != "" {
		w.Header().Set("Content-Security-Policy", contentPolicy(csp))
	}
	m := s.meta(r, "Checking "+st.c.Host)
	if st.confirming() {
		v.Title = "Checking whether " + st.c.Host + " works now…"
		m = s.meta(r, v.Title)
	}
	m.Refresh = 2
	s.render(w, r, http.StatusOK, templates.Probing(m, v))
}

// usually says how long a check takes: the median of the last ones this
// server made, or, before there are enough, the bound the prober's
// configuration sets.
func (s *Server) usually() string {
	if d, ok := s.runner.Usually(); ok {
		return "A check usually takes about " + secondsWords(d) + "."
	}
	return "A check usually takes a few seconds, and never more than " + secondsWords(s.cfg.Prober.Config().Timeout) + "."
}

// handshakes reports whether the probes of a case shake hands over TLS: its
// URL is https, or an http one on the default port, whose https twin is
// tried too.
func (s *Server) handshakes(c *wizard.Case) bool {
	ports := s.cfg.Prober.Config().Ports
	t, err := probes.Normalize(c.ProbeInput(), ports)
	return err == nil && (t.URL.Scheme == "https" || t.Twin(ports) != nil)
}

func (s *Server) stepView(r *http.Request, st *caseState) templates.StepView {
	v := templates.StepView{
		Case: st.c, Link: s.baseURL(r) + "/c/" + st.c.Token, Step: st.step, Report: st.facts.Report,
		Browser: wizard.Browser(st.facts.Vantages), CanGoBack: len(st.answers) > 0, Now: st.facts.Now, Notice: s.hostNotice(r.Context(), st.c),
	}
	if run := st.shownRun(); run != nil {
		v.Report, v.CheckedAt, v.Shared = run.Report, run.Report.FinishedAt(), run.SharedFrom != 0
	}
	v.Agents, _ = s.agentRows(st)
	if o := wizard.Origin(st.views); o != nil {
		v.OriginLine = o.Detail
		if o.Report != nil {
			v.OriginLine = wizard.OriginPlain(o.Report)
		}
	}
	v.Replies, v.HelpdeskStatus, v.HelpdeskAt = s.helpdeskWord(r.Context(), st.c)
	// The helpdesk resolved or closed the case since the visitor's last
	// answer: that comes first, and the step's question waits folded
	// away for a visitor whose site still does not work.
	if h := st.c.Status; !st.step.Done && !v.HelpdeskAt.IsZero() && (h == wizard.StatusResolved || h == wizard.StatusUnresolved) &&
		(len(st.log) == 0 || !v.HelpdeskAt.Before(st.log[len(st.log)-1].At)) {
		v.HelpdeskDone = true
	}
	v.CanSend, v.Mails = s.canMail(st.step.Escalation), s.mailRows(st)
	v.Email = s.emailForm(r, st.c)
	if v.CanSend {
		v.MailFrom = s.cfg.Mailer.From()
	}
	return v
}

// helpdeskWord returns what the helpdesk told the visitor: its replies,
// and the status a staff member last gave the case, in words, with when
// (the page shows it in the reader's time zone). Errors leave them out: the page shows the
// wizard all the same.
func (s *Server) helpdeskWord(ctx context.Context, c *wizard.Case) (replies []wizard.Note, status string, at time.Time) {
	notes, err := s.cfg.Store.Notes(ctx, c.ID)
	if err != nil {
		s.log.Error("reading replies", "case", c.Token, "err", err)
	}
	for _, n := range notes {
		if n.Public {
			replies = append(replies, n)
		}
	}
	changes, err := s.cfg.Store.StatusChanges(ctx, c.ID)
	if err != nil {
		s.log.Error("reading status changes", "case", c.Token, "err", err)
	}
	if len(changes) == 0 {
		return replies, "", time.Time{}
	}
	last := changes[len(changes)-1]
	if last.Actor == "" || last.Actor == "wizard" || last.To != c.Status {
		return replies, "", time.Time{}
	}
	switch last.To {
	case wizard.StatusResolved:
		status = "Resolved by the helpdesk"
	case wizard.StatusEscalated:
		status = "Passed on by the helpdesk to the people who can fix it"
	case wizard.StatusUnresolved:
		status = "Closed by the helpdesk without a fix"
	case wizard.StatusOpen:
		status = "Reopened by the helpdesk"
	}
	return replies, status, last.At
}

// handleRecheck answers POST /c/{token}/recheck: the visitor asks for a
// fresh check instead of the report in force (which may be another
// report's, a few seconds old). It joins a check of the site already under
// way, and counts against the visitor's limit like a new case.
func (s *Server) handleRecheck(w http.ResponseWriter, r *http.Request) {
	c, err := s.cfg.Store.Case(r.Context(), chi.URLParam(r, "token"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if ok, _, _, _ := s.runner.Progress(c.ID); !ok {
		if _, ok := s.freshCheck(w, r, c, recheckActor); !ok {
			return
		}
	}
	http.Redirect(w, r, "/c/"+c.Token, http.StatusSeeOther)
}

// freshCheck queues a new probe run of a case for actor, counted against
// the client's limit; it joins a probe of the same target under way but
// never reuses a finished one. It answers the request itself and returns
// false when refused.
func (s *Server) freshCheck(w http.ResponseWriter, r *http.Request, c *wizard.Case, actor string) (*wizard.ProbeRun, bool) {
	run, err := s.startFresh(r, c, actor)
	var limited *limitedError
	switch {
	case errors.As(err, &limited):
		s.tooMany(w, r, limited.wait, limited.what)
		return nil, false
	case err != nil:
		s.Error(w, r, err)
		return nil, false
	}
	return run, true
}

// startFresh queues a new probe run of a case for actor as freshCheck
// does, and returns a *limitedError when the client's limit refuses it.
func (s *Server) startFresh(r *http.Request, c *wizard.Case, actor string) (*wizard.ProbeRun, error) {
	if ok, wait := s.probeLimit.take(r.Context(), addrKey(s.clientIP(r))); !ok {
		return nil, &limitedError{wait, limitChecks}
	}
	held, err := s.runner.Reserve(targetOf(c), fresh)
	if err != nil {
		return nil, err
	}
	// Queued even if the client hangs up now, as a new case is.
	return s.queueProbe(context.WithoutCancel(r.Context()), c, actor, held, fresh)
}

// postedStep reads a form posted to a visitor's step and the case its
// address names, as its step page showed it; it answers the request itself
// (an error, or back to the page while the probes run) when ok is false.
func (s *Server) postedStep(w http.ResponseWriter, r *http.Request) (st *caseState, ok bool) {
	if err := r.ParseForm(); err != nil {
		s.Error(w, r, formError(err))
		return nil, false
	}
	st, err := s.loadCaseAt(r.Context(), chi.URLParam(r, "token"), s.baseURL(r), false)
	if err != nil {
		s.Error(w, r, err)
		return nil, false
	}
	if st.probing() {
		http.Redirect(w, r, "/c/"+st.c.Token, http.StatusSeeOther)
		return nil, false
	}
	return st, true
}

// handleAnswer answers POST /c/{token}/answer: record the choice at the
// current step, or, for an earlier step, change that answer.
func (s *Server) handleAnswer(w http.ResponseWriter, r *http.Request) {
	st, ok := s.postedStep(w, r)
	if !ok {
		return
	}
	var err error
	node, choice := r.PostForm.Get("node"), r.PostForm.Get("choice")
	now := s.cfg.Now()
	var next []wizard.Answer
	refusal := "That answer no longer fits this case (it may have moved on in another window). This is where it is now."
	if n := st.tree.Node(node); n != nil && n.Kind == wizard.KindFix && n.Confirm == wizard.ConfirmProbe {
		switch choice {
		case wizard.ChoiceFixed:
			// Gatecheck checks first, also when the answer changes an
			// earlier one: the walk goes back to the fix.
			if node != st.step.Node || st.step.Done {
				if st, err = s.rewindTo(r.Context(), r, st, node); err != nil {
					s.answerRefused(w, r, st, refusal)
					return
				}
			}
			s.confirmFix(w, r, st)
			return
		case worksForMe:
			// After a check found it still failing: the visitor's word.
			choice = wizard.ChoiceFixed
		}
	}
	if node == st.step.Node && !st.step.Done {
		next = append(st.answers[:len(st.answers):len(st.answers)], wizard.Answer{Node: node, Choice: choice, At: now})
		refusal = "That is not one of this step's choices."
	} else if next, err = st.tree.Revise(s.cfg.Settings, st.facts, st.answers, node, choice, now); err != nil {
		s.answerRefused(w, r, st, refusal)
		return
	}
	step, err := st.tree.Next(s.cfg.Settings, st.facts, next)
	if err != nil {
		s.answerRefused(w, r, st, refusal)
		return
	}
	if err := s.saveAnswers(r.Context(), st, next, step, ""); err != nil {
		s.Error(w, r, err)
		return
	}
	http.Redirect(w, r, "/c/"+st.c.Token, http.StatusSeeOther)
}

// answerRefused shows the current step again with a message.
func (s *Server) answerRefused(w http.ResponseWriter, r *http.Request, st *caseState, msg string) {
	v := s.stepView(r, st)
	v.Error = msg
	s.render(w, r, http.StatusConflict, templates.Step(s.stepMeta(r, st), v))
}

// saveAnswers appends the records that turn the case's answers into next
// (whose step is step), and sets the status the walk's end gives.
func (s *Server) saveAnswers(ctx context.Context, st *caseState, next []wizard.Answer, step *wizard.Step, actor string) error {
	// Records are relative to the answers as stored, which may include
	// answers dropped as stale.
	stored := wizard.ReplayAnswers(st.log)
	recs := wizard.RecordsFor(stored, next, actor, s.cfg.Now())
	if len(recs) == 0 {
		return nil
	}
	if err := s.cfg.Store.AppendSteps(ctx, st.c.ID, recs); err != nil {
		return err
	}
	if step.Done {
		to := wizard.StatusOf(step.Outcome)
		if err := s.cfg.Store.SetStatus(ctx, st.c.ID, to, "wizard"); err != nil {
			return err
		}
		return s.watchUnresolved(ctx, to, st.c.ID)
	}
	return nil
}

// handleBack answers POST /c/{token}/back: take back the last answer.
func (s *Server) handleBack(w http.ResponseWriter, r *http.Request) {
	st, err := s.loadCase(r.Context(), chi.URLParam(r, "token"), false)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if len(st.answers) > 0 {
		back := wizard.Back(st.answers)
		step, err := st.tree.Next(s.cfg.Settings, st.facts, back)
		if err == nil {
			err = s.saveAnswers(r.Context(), st, back, step, "")
		}
		if err != nil {
			s.Error(w, r, err)
			return
		}
	}
	http.Redirect(w, r, "/c/"+st.c.Token, http.StatusSeeOther)
}

// handleRevisit answers GET /c/{token}/at/{node}: an earlier step shown
// again, to change its answer (or disagree with an automatic one).
func (s *Server) handleRevisit(w http.ResponseWriter, r *http.Request) {
	st, err := s.loadCaseAt(r.Context(), chi.URLParam(r, "token"), s.baseURL(r), false)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	node := chi.URLParam(r, "node")
	if _, err := st.tree.Rewind(s.cfg.Settings, st.facts, st.answers, node); err != nil {
		s.Error(w, r, wizard.Errorf(wizard.ENOTFOUND, "That step is not on this case's path."))
		return
	}
	// An automatic check offers the answers that make sense beside what
	// was found, in the person's words, rather than all of them.
	step, err := st.tree.NotRight(s.cfg.Settings, st.facts, node)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	v := s.stepView(r, st)
	v.Step, v.Revisit = step, true
	s.render(w, r, http.StatusOK, templates.Step(s.meta(r, "Change: "+step.Title), v))
}

// streamRefusals say why a progress stream was refused, by the bound met.
var streamRefusals = map[string]string{
	"client": "Too many live pages are open from your address. This page reloads by itself instead.",
	"case":   "Too many people are following this case live. This page reloads by itself instead.",
	"server": "gatecheck is following too many checks live right now. This page reloads by itself instead.",
}

// handleEvents answers GET /c/{token}/events: the probe's progress as
// server-sent events (check, queue, done), within the bounds of the
// stream gate (429 past them).
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	c, err := s.cfg.Store.Case(r.Context(), chi.URLParam(r, "token"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	release, refused := s.streams.enter(bucketOf(s.clientIP(r)), c.ID)
	if refused != "" {
		// The page reloads itself instead, every few seconds.
		s.log.Debug("progress stream refused", "bound", refused, "case", c.Token)
		w.Header().Set("Retry-After", "5")
		s.errorStatus(w, r, http.StatusTooManyRequests, streamRefusals[refused])
		return
	}
	defer release()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{})
	events, cancel, ok := s.runner.Subscribe(c.ID)
	defer cancel()
	if !ok {
		fmt.Fprint(w, "event: done\ndata: finished\n\n")
		rc.Flush()
		return
	}
	// Say at once that the stream is open, so that neither the browser
	// nor a proxy waits for the first check.
	fmt.Fprint(w, ": following\n\n")
	if err := rc.Flush(); err != nil {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case e, open := <-events:
			if !open {
				fmt.Fprint(w, "event: done\ndata: finished\n\n")
				rc.Flush()
				return
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.name, e.data)
			if err := rc.Flush(); err != nil {
				return
			}
		case <-tick.C:
			fmt.Fprint(w, ": still checking\n\n")
			if err := rc.Flush(); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.draining:
			// Shutting down: end without "done", so that the page
			// reconnects rather than reloads.
			return
		}
	}
}

// currentViews are the views the walk may pair with report: a browser's
// view tells how the site was when the browser looked, so once a later run
// of the probes found something else (the site went down, or came back),
// a view taken under the earlier finding is left out, and the reporter's
// browser is asked again. Without that, a site that went down after the
// browser reached it was said to answer the visitor but not gatecheck.
// The origin's view is paired the same way: it compares the origin with
// the public view of its own run. The views stay stored, and shown to
// staff and in the API.
func currentViews(views []wizard.Vantage, runs []*wizard.ProbeRun, report *probes.Report) []wizard.Vantage {
	if report == nil {
		return views
	}
	found := make(map[int64]probes.Code, len(runs))
	for _, run := range runs {
		if run.Report != nil {
			found[run.ID] = run.Report.Verdict.Code
		}
	}
	out := make([]wizard.Vantage, 0, len(views))
	for _, v := range views {
		if code, ok := found[v.RunID]; (v.From == wizard.VantageBrowser || v.From == wizard.VantageOrigin) && ok && code != report.Verdict.Code {
			continue
		}
		out = append(out, v)
	}
	return out
}
