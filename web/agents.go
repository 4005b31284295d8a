package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

// Agents are gatecheck run inside customers' networks (gatecheck agent
// run). They dial out to the server, never the other way round, and speak
// JSON under /agent/v1/ with their token as a bearer token:
//
//	POST /agent/v1/poll                waits up to AgentPoll for the agent's next job:
//	                                   200 {"id", "url", "deadline", "internal"} or 204 (none);
//	                                   429 with Retry-After past maxAgentPolls at once
//	POST /agent/v1/jobs/{id}/report    the job's probes.Report: 204
//
// A job taken is leased to the agent until its deadline; a lease that
// passes gives the job back, so a restarted agent takes it again, and a
// job not done by its time expires: nobody waits for an agent for ever.
//
// An agent sits inside a customer's network, so it must not become a way
// in: only API keys and signed-in staff may ask agents; a job goes to its
// agent only once gatecheck's own probe run found the address public
// (else it is refused, never sent), unless staff asked for an internal
// check ("internal": true, the one kind of job for which the agent uses
// its --allow-net ranges); and what an agent fetched is shown to staff
// and API keys only, a case link showing its verdict.

// maxAgentReport caps the body of an agent's report: a report with its
// evidence is bigger than a form, but bounded.
const maxAgentReport = 1 << 20

// maxAgentsPerCase caps the agents one case may ask.
const maxAgentsPerCase = 10

// maxAgentPolls caps one agent's long-polls at once: a real agent holds
// one, a few replicas sharing a token a few; more is a token being abused,
// each holding a connection and a goroutine.
const maxAgentPolls = 4

// agentJSON is a job as an agent receives it. Internal tells the agent it
// may use the non-public ranges its operator allowed; agents older than
// the field ignore it, and the server sends them no job its own guard
// refused either way.
type agentJSON struct {
	ID       int64     `json:"id"`
	URL      string    `json:"url"`
	Deadline time.Time `json:"deadline"`
	Internal bool      `json:"internal"`
}

// agentFrom returns the agent whose bearer token the request carries, or
// answers 401 itself.
func (s *Server) agentFrom(w http.ResponseWriter, r *http.Request) (*wizard.Agent, bool) {
	if s.agents == nil {
		s.errorStatus(w, r, http.StatusNotFound, "This gatecheck takes no agents.")
		return nil, false
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	var a *wizard.Agent
	var err error = wizard.Errorf(wizard.EUNAUTHORIZED, "This request carries no agent token (Authorization: Bearer gca_…).")
	if ok && strings.HasPrefix(token, "gca_") {
		a, err = s.agents.AgentByToken(r.Context(), token)
	} else if ok {
		err = wizard.Errorf(wizard.EUNAUTHORIZED, "This agent token is not valid: it was never issued, or it was revoked.")
	}
	if err != nil {
		if wizard.ErrorCode(err) == wizard.EUNAUTHORIZED {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatecheck agents"`)
		}
		s.Error(w, r, err)
		return nil, false
	}
	return a, true
}

// agentVersion is what an agent says it runs: User-Agent
// gatecheck-agent/VERSION, cut short.
func agentVersion(ua string) string {
	v, ok := strings.CutPrefix(ua, "gatecheck-agent/")
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, " ")
	return clip(strings.Map(func(r rune) rune {
		if r < 0x21 || r == 0x7f {
			return -1
		}
		return r
	}, v), 40)
}

// seen records that agent a asked, from the address the request came from
// (as --trusted-proxy lets the server tell it): at once when the address
// or the version changed, else at most every seenEvery, since an agent
// asks again and again and "last seen" need not be exact to the second.
func (s *Server) seen(r *http.Request, a *wizard.Agent) error {
	addr, version := addrString(s.clientIP(r)), agentVersion(r.UserAgent())
	now := s.cfg.Now()
	s.agentMu.Lock()
	last, ok := s.seenAt[a.ID]
	if !ok || a.LastSeen.After(last.at) {
		last = seenRecord{at: a.LastSeen, addr: a.LastAddr, version: a.Version}
	}
	due := addr != last.addr || version != last.version || now.Sub(last.at) >= s.seenEvery()
	if due {
		s.seenAt[a.ID] = seenRecord{at: now, addr: addr, version: version}
	}
	s.agentMu.Unlock()
	if !due {
		return nil
	}
	return s.agents.AgentSeen(r.Context(), a.ID, addr, version)
}

// seenRecord is an agent's asking as last recorded.
type seenRecord struct {
	at            time.Time
	addr, version string
}

// seenEvery is how often an agent's asking is recorded at most: well
// within the time after which it counts as offline.
func (s *Server) seenEvery() time.Duration { return min(5*time.Second, s.cfg.AgentPoll/2) }

// handleAgentPoll answers POST /agent/v1/poll: the agent's next job, as
// soon as there is one within the long-poll, else 204; 429 when the agent
// holds maxAgentPolls already, answered before anything is written.
func (s *Server) handleAgentPoll(w http.ResponseWriter, r *http.Request) {
	a, ok := s.agentFrom(w, r)
	if !ok {
		return
	}
	if !s.startPoll(a.ID) {
		w.Header().Set("Retry-After", "5")
		s.errorStatus(w, r, http.StatusTooManyRequests, fmt.Sprintf("This agent is waiting for work %d times at once already, the most it may. Run one agent per token, or wait for one of its requests to end.", maxAgentPolls))
		return
	}
	defer s.polling(a.ID, -1)
	if err := s.seen(r, a); err != nil {
		s.Error(w, r, err)
		return
	}
	end := time.NewTimer(s.cfg.AgentPoll)
	defer end.Stop()
	for {
		// Take the wake-up channel before looking, so that a job queued
		// between the look and the wait is not missed.
		wake := s.agentWake(a.ID)
		job, err := s.agents.TakeAgentJob(r.Context(), a.ID, s.cfg.AgentLease)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		if job != nil {
			s.log.Info("agent took a job", "agent", a.Name, "job", job.ID, "case", job.CaseID)
			writeJSON(w, http.StatusOK, agentJSON{ID: job.ID, URL: job.URL, Deadline: job.LeaseUntil, Internal: job.Internal})
			return
		}
		// Look again now and then: a job given back by the sweep wakes
		// nobody. (A look costs a read, not a write.)
		again := time.NewTimer(min(s.cfg.AgentLookAgain, s.cfg.AgentPoll))
		select {
		case <-wake:
		case <-again.C:
		case <-end.C:
			again.Stop()
			w.WriteHeader(http.StatusNoContent)
			return
		case <-s.draining:
			// Shutting down: the agent asks again, later.
			again.Stop()
			w.WriteHeader(http.StatusNoContent)
			return
		case <-r.Context().Done():
			again.Stop()
			return
		}
		again.Stop()
	}
}

// handleAgentReport answers POST /agent/v1/jobs/{id}/report: the agent's
// probes.Report for a job it holds. 204 once stored; 404 for a job that is
// not the agent's; 409 for one not leased to it any more (done, expired,
// or given back); 400 for a body that is not a report.
func (s *Server) handleAgentReport(w http.ResponseWriter, r *http.Request) {
	a, ok := s.agentFrom(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		s.Error(w, r, wizard.Errorf(wizard.ENOTFOUND, "There is no such job."))
		return
	}
	var rep probes.Report
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.Error(w, r, errTooLarge)
			return
		}
		s.errorStatus(w, r, http.StatusBadRequest, "The body is not a gatecheck probe report: "+err.Error())
		return
	}
	if !slices.Contains(probes.Codes, rep.Verdict.Code) {
		s.errorStatus(w, r, http.StatusBadRequest, fmt.Sprintf("The report's verdict %q is not one gatecheck knows.", clip(string(rep.Verdict.Code), 40)))
		return
	}
	if err := s.seen(r, a); err != nil {
		s.Error(w, r, err)
		return
	}
	v := &wizard.Vantage{Report: &rep, Reachable: new(answered(&rep)), Detail: string(rep.Verdict.Code) + ": " + clip(rep.Verdict.Summary, 500),
		Addr: addrString(s.clientIP(r))}
	job, err := s.agents.FinishAgentJob(r.Context(), a.ID, id, v)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.log.Info("agent reported", "agent", a.Name, "job", job.ID, "case", job.CaseID, "verdict", rep.Verdict.Code)
	w.WriteHeader(http.StatusNoContent)
}

// answered reports whether an HTTP answer came back at all, whatever its
// status.
func answered(rep *probes.Report) bool {
	h := rep.HTTP.Final()
	return h != nil && h.Status > 0
}

// agentWake returns a channel closed when a job is queued for the agent.
func (s *Server) agentWake(id int64) <-chan struct{} {
	s.agentMu.Lock()
	defer s.agentMu.Unlock()
	ch := s.wakes[id]
	if ch == nil {
		ch = make(chan struct{})
		s.wakes[id] = ch
	}
	return ch
}

// agentWakeTopic is the signal that wakes an agent's long-polls on every
// instance; its payload is the agent's ID.
const agentWakeTopic = "agent.wake"

// wakeAgent wakes the agent's long-polls, on this instance at once and on
// the others sharing the store by a signal.
func (s *Server) wakeAgent(id int64) {
	s.wakeAgentHere(id)
	if s.cfg.Signals != nil {
		if err := s.cfg.Signals.Notify(context.Background(), agentWakeTopic, strconv.FormatInt(id, 10)); err != nil {
			s.log.Warn("waking an agent on the other instances", "agent", id, "err", err)
		}
	}
}

// hearAgentWakes wakes this instance's long-polls of the agents that other
// instances signal, until Close; after a lost connection ("" as the
// payload) every waiting poll looks again.
func (s *Server) hearAgentWakes() {
	heard, stop := s.cfg.Signals.Listen(agentWakeTopic)
	s.loops.Go(func() {
		defer stop()
		for {
			select {
			case <-s.stop:
				return
			case p, ok := <-heard:
				if !ok {
					return
				}
				if id, err := strconv.ParseInt(p, 10, 64); err == nil {
					s.wakeAgentHere(id)
					continue
				}
				s.agentMu.Lock()
				ids := make([]int64, 0, len(s.wakes))
				for id := range s.wakes {
					ids = append(ids, id)
				}
				s.agentMu.Unlock()
				for _, id := range ids {
					s.wakeAgentHere(id)
				}
			}
		}
	})
}

// wakeAgentHere wakes the agent's long-polls on this instance.
func (s *Server) wakeAgentHere(id int64) {
	s.agentMu.Lock()
	defer s.agentMu.Unlock()
	if ch := s.wakes[id]; ch != nil {
		close(ch)
		delete(s.wakes, id)
	}
}

// startPoll counts a new long-poll of the agent, unless it holds
// maxAgentPolls already.
func (s *Server) startPoll(id int64) bool {
	s.agentMu.Lock()
	defer s.agentMu.Unlock()
	if s.polls[id] >= maxAgentPolls {
		return false
	}
	s.polls[id]++
	return true
}

// polling counts the agent's open long-polls: an agent waiting for work
// is online.
func (s *Server) polling(id int64, d int) {
	s.agentMu.Lock()
	defer s.agentMu.Unlock()
	s.polls[id] += d
	if s.polls[id] <= 0 {
		delete(s.polls, id)
	}
}

// online reports whether an agent is waiting for work or asked recently.
func (s *Server) online(a *wizard.Agent) bool {
	if !a.RevokedAt.IsZero() {
		return false
	}
	s.agentMu.Lock()
	n := s.polls[a.ID]
	s.agentMu.Unlock()
	return n > 0 || !a.LastSeen.IsZero() && s.cfg.Now().Sub(a.LastSeen) < s.offlineAfter()
}

// offlineAfter is how long an agent may go without asking before it
// counts as offline: two long-polls and a margin.
func (s *Server) offlineAfter() time.Duration {
	return 2*s.cfg.AgentPoll + min(s.cfg.AgentPoll, 10*time.Second)
}

// sweepAgentJobs gives back passed leases and expires late jobs.
func (s *Server) sweepAgentJobs(ctx context.Context) ([]int64, error) {
	return s.agents.SweepAgentJobs(ctx, s.cfg.AgentAttempts)
}

// sweepAgentsNow sweeps the agents' jobs from the background loop, so that
// a job given back reaches a waiting agent and a late one expires even when
// no agent asks.
func (s *Server) sweepAgentsNow(ctx context.Context) {
	if _, err := s.sweepAgentJobs(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("sweeping agent jobs", "err", err)
	}
	// Forget the runs whose jobs cannot be waiting any more.
	old := s.cfg.Now().Add(-s.cfg.AgentJobTTL)
	s.agentMu.Lock()
	for run, w := range s.runWaiters {
		if w.since.Before(old) {
			delete(s.runWaiters, run)
		}
	}
	s.agentMu.Unlock()
}

// errNoSuchAgent refuses a name the caller may not ask: one never issued
// and one revoked get the same answer, word for word, so that the answer
// does not tell which names exist.
var errNoSuchAgent = wizard.Errorf(wizard.EINVALID, "One of the agents named cannot be asked: there is no live agent of that name (gatecheck agent list, on the server, shows them).")

// agentsNamed returns the live agents of the names given, in order, each
// once; an unknown or revoked name is errNoSuchAgent, whichever it is.
// Callers check first that the request may ask agents at all
// (staffOrKey).
func (s *Server) agentsNamed(ctx context.Context, names []string) ([]*wizard.Agent, error) {
	if len(names) == 0 {
		return nil, nil
	}
	if s.agents == nil {
		return nil, wizard.Errorf(wizard.EINVALID, "This gatecheck has no agents.")
	}
	if len(names) > maxAgentsPerCase {
		return nil, wizard.Errorf(wizard.EINVALID, "A case can ask up to %d agents; this asks %d.", maxAgentsPerCase, len(names))
	}
	all, err := s.agents.Agents(ctx)
	if err != nil {
		return nil, err
	}
	var out []*wizard.Agent
	for _, name := range names {
		i := slices.IndexFunc(all, func(a *wizard.Agent) bool { return a.RevokedAt.IsZero() && strings.EqualFold(a.Name, name) })
		switch {
		case i < 0:
			return nil, errNoSuchAgent
		case !slices.Contains(out, all[i]):
			out = append(out, all[i])
		}
	}
	return out, nil
}

// runWaiter is the agents whose jobs wait for a probe run's verdict.
type runWaiter struct {
	agents []int64
	since  time.Time
}

// queueAgentJobs asks the agents to probe the case's URL for run runID,
// and wakes them. A job that is not internal waits for the run's verdict
// (the store sends it only then): runsDone wakes its agents again.
func (s *Server) queueAgentJobs(ctx context.Context, caseID, runID int64, agents []*wizard.Agent, actor string, internal bool) error {
	if len(agents) == 0 {
		return nil
	}
	ids := make([]int64, len(agents))
	for i, a := range agents {
		ids[i] = a.ID
	}
	if !internal {
		s.agentMu.Lock()
		w := s.runWaiters[runID]
		s.runWaiters[runID] = runWaiter{agents: append(w.agents, ids...), since: s.cfg.Now()}
		s.agentMu.Unlock()
	}
	if _, err := s.agents.QueueAgentJobs(ctx, caseID, runID, ids, actor, internal, s.cfg.Now().Add(s.cfg.AgentJobTTL)); err != nil {
		return err
	}
	for _, id := range ids {
		s.wakeAgent(id)
	}
	if ok, _, _, _ := s.runner.Progress(caseID); !internal && !ok {
		// The run finished (or reused a report) before the jobs were
		// queued: runsDone was told before anyone waited.
		s.runsDone(ctx, []int64{runID})
	}
	return nil
}

// runsDone is told of probe runs that finished: the agents whose jobs
// waited for their verdict look again, and the jobs the verdict refused
// are marked so now rather than at the next sweep.
func (s *Server) runsDone(ctx context.Context, runIDs []int64) {
	var wake []int64
	s.agentMu.Lock()
	for _, id := range runIDs {
		if w, ok := s.runWaiters[id]; ok {
			wake = append(wake, w.agents...)
			delete(s.runWaiters, id)
		}
	}
	s.agentMu.Unlock()
	if len(wake) == 0 {
		return
	}
	if _, err := s.sweepAgentJobs(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("sweeping agent jobs", "err", err)
	}
	for _, id := range wake {
		s.wakeAgent(id)
	}
}

// agentRows says, per agent asked about the case, what it saw or where its
// latest job stands. pending is true while some job waits.
func (s *Server) agentRows(st *caseState) (rows []templates.AgentRow, pending bool) {
	latest := map[string]*wizard.AgentJob{}
	var order []string
	for _, j := range st.jobs {
		if latest[j.Agent.Name] == nil {
			order = append(order, j.Agent.Name)
		}
		latest[j.Agent.Name] = j
	}
	loc := s.cfg.Settings.Location
	if loc == nil {
		loc = time.UTC
	}
	for _, name := range order {
		j := latest[name]
		row := templates.AgentRow{Name: name, State: s.jobState(j)}
		switch row.State {
		case "done":
			row.Text = "Its view was not stored"
			if v := viewOf(st.views, j.From(), j.RunID); v != nil {
				row.Text = templates.ServerSeen(v.Report)
				row.Report = v.Report
				if v.Addr != "" {
					row.Text += " (from " + v.Addr + ")"
				}
			}
			if j.Internal {
				row.Text += " — an internal check"
			}
		case "refused":
			row.Text = "Not sent: gatecheck's server refused this address (it is not on the public internet), so agent " + name +
				" was not asked to fetch it. Staff can ask for an internal check from an agent allowed that range."
		case "working":
			row.Text = "Agent " + name + " is checking now"
		case "waiting":
			row.Text = "Waiting for agent " + name + " (online)"
		case "offline":
			row.Text = "Agent " + name + " is offline — its view will be added if it comes back before " + j.ExpiresAt.In(loc).Format("15:04 MST")
		case "expired":
			row.Text = "Agent " + name + " did not answer (expired)"
		}
		pending = pending || j.State == wizard.JobQueued || j.State == wizard.JobTaken
		rows = append(rows, row)
	}
	return rows, pending
}

// jobState is where an agent's job stands, for people: done, working,
// waiting (its agent is online), offline, expired or refused (never sent).
func (s *Server) jobState(j *wizard.AgentJob) string {
	switch {
	case j.State == wizard.JobDone:
		return "done"
	case j.State == wizard.JobExpired:
		return "expired"
	case j.State == wizard.JobRefused:
		return "refused"
	case j.State == wizard.JobTaken && s.cfg.Now().Before(j.LeaseUntil):
		return "working"
	case s.online(j.Agent):
		return "waiting"
	}
	return "offline"
}

// viewOf returns the view from source made for run, or nil.
func viewOf(views []wizard.Vantage, from string, run int64) *wizard.Vantage {
	for i := range views {
		if views[i].From == from && views[i].RunID == run {
			return &views[i]
		}
	}
	return nil
}

// handleStaffAgents answers GET /staff/agents: the agents, online or not.
func (s *Server) handleStaffAgents(w http.ResponseWriter, r *http.Request) {
	var v templates.AgentsView
	if s.agents != nil {
		agents, err := s.agents.Agents(r.Context())
		if err != nil {
			s.Error(w, r, err)
			return
		}
		for _, a := range agents {
			line := templates.AgentLine{Name: a.Name, State: "offline", LastSeen: "never", From: a.LastAddr, Version: a.Version}
			switch {
			case !a.RevokedAt.IsZero():
				line.State = "revoked"
			case s.online(a):
				line.State = "online"
			}
			if !a.LastSeen.IsZero() {
				line.LastSeen = a.LastSeen.UTC().Format("2006-01-02 15:04:05 UTC")
			}
			v.Agents = append(v.Agents, line)
		}
	}
	m := s.meta(r, "Agents")
	m.Wide = true
	s.render(w, r, http.StatusOK, templates.StaffAgents(m, v))
}

// handleRerunAgent answers POST /staff/c/{token}/agent (agent, internal):
// probe the URL again from gatecheck's server and from that agent, side by
// side. internal=1 asks for an internal check: the agent may probe the
// non-public ranges its operator allowed, though gatecheck's server
// refuses the address.
func (s *Server) handleRerunAgent(w http.ResponseWriter, r *http.Request) {
	c, ok := s.postedCase(w, r)
	if !ok {
		return
	}
	agents, err := s.agentsNamed(r.Context(), []string{r.PostForm.Get("agent")})
	if err == nil && len(agents) == 0 {
		err = wizard.Errorf(wizard.EINVALID, "Choose an agent.")
	}
	if wizard.ErrorCode(err) == wizard.EINVALID {
		s.renderStaffCase(w, r, http.StatusUnprocessableEntity, wizard.ErrorMessage(err), "")
		return
	} else if err != nil {
		s.Error(w, r, err)
		return
	}
	if ok, _, _, _ := s.runner.Progress(c.ID); ok {
		s.renderStaffCase(w, r, http.StatusConflict, "The probes are already running for this case.", "")
		return
	}
	actor := staffFrom(r.Context()).Name
	run, ok := s.freshCheck(w, r, c, actor)
	if !ok {
		return
	}
	internal := r.PostForm.Get("internal") == "1"
	if internal {
		s.log.Info("staff asked for an internal check", "case", c.Token, "agent", agents[0].Name, "actor", actor)
	}
	if err := s.queueAgentJobs(context.WithoutCancel(r.Context()), c.ID, run.ID, agents, actor, internal); err != nil {
		s.Error(w, r, err)
		return
	}
	http.Redirect(w, r, "/staff/c/"+c.Token, http.StatusSeeOther)
}

// internalSummary stands for the summary of an internal check's verdict
// where the evidence is withheld: it may name internal addresses.
const internalSummary = "an internal check from inside the network; the details are for gatecheck's staff"

// staffOrKey reports whether the request comes with an API key or from
// signed-in staff: those may ask agents, and see what agents fetched. An
// agent probes from inside a customer's network; a stranger must be able
// neither to point it anywhere nor to read what it found there.
func (s *Server) staffOrKey(r *http.Request) bool {
	return apiKeyFrom(r.Context()) != nil || staffFrom(r.Context()) != nil || s.sessionUser(r) != nil
}

// withoutEvidence returns views as the holder of a case's link may see
// them: an agent's view keeps its verdict (code, layer, summary and
// explanation), whether the site answered and the address gatecheck saw
// the agent at, but none of what the agent fetched from inside the
// customer's network: no bodies, headers, certificates, timings or the
// addresses it resolved. An internal check's summary goes too. views is
// not changed.
func withoutEvidence(views []wizard.Vantage, jobs []*wizard.AgentJob) []wizard.Vantage {
	out := slices.Clone(views)
	for i := range out {
		v := &out[i]
		if v.From == wizard.VantageOrigin {
			// The origin's address is often what an edge exists to hide:
			// only its verdict, in plain words, without the address.
			if r := v.Report; r != nil {
				plain := wizard.OriginPlain(r)
				v.Report = &probes.Report{URL: r.URL, Host: r.Host, Port: r.Port, StartedAt: r.StartedAt, DurationMS: r.DurationMS,
					Verdict: probes.Verdict{Code: r.Verdict.Code, Layer: r.Verdict.Layer, Summary: plain}, Findings: []probes.Verdict{},
					Gateway: probes.Gateway{Others: []string{}}, Checks: []probes.Check{}, Samples: []probes.Sample{}, Timings: []probes.HopTiming{}}
				v.Detail = plain
			}
			continue
		}
		if !strings.HasPrefix(v.From, "agent:") {
			continue
		}
		internal := slices.ContainsFunc(jobs, func(j *wizard.AgentJob) bool { return j.Internal && j.RunID == v.RunID && j.From() == v.From })
		if v.Report == nil {
			if internal {
				v.Detail = internalSummary
			}
			continue
		}
		verdict := v.Report.Verdict
		if internal {
			verdict.Summary = internalSummary
		}
		v.Report = &probes.Report{URL: v.Report.URL, Host: v.Report.Host, Port: v.Report.Port, StartedAt: v.Report.StartedAt, DurationMS: v.Report.DurationMS,
			Verdict: verdict, Findings: []probes.Verdict{}, Gateway: probes.Gateway{Others: []string{}}, Checks: []probes.Check{},
			Samples: []probes.Sample{}, Timings: []probes.HopTiming{}}
		v.Detail = string(verdict.Code) + ": " + clip(verdict.Summary, 500)
	}
	return out
}
