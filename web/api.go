package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// apiStep is one answer in force, for the API.
type apiStep struct {
	Node   string    `json:"node"`
	Title  string    `json:"title"`
	Answer string    `json:"answer"`
	Label  string    `json:"label"`
	At     time.Time `json:"at"`
}

type apiProbe struct {
	State         wizard.ProbeState `json:"state"`
	QueuePosition int               `json:"queue_position,omitempty"`
	Report        *probes.Report    `json:"report"`
	// CheckedAt is when the report in force was gathered, and SharedFrom
	// the probe run it came from when another report of the same site
	// made it.
	CheckedAt  time.Time `json:"checked_at,omitzero"`
	SharedFrom int64     `json:"shared_from,omitempty"`
}

// apiVantage is one point of view on the case's URL: the server's (its
// report in force) or the visitor's browser's (reachable, detail).
type apiVantage struct {
	From      string         `json:"from"`
	At        time.Time      `json:"at"`
	Run       int64          `json:"run,omitempty"`
	Report    *probes.Report `json:"report,omitempty"`
	Reachable *bool          `json:"reachable,omitempty"`
	Detail    string         `json:"detail,omitempty"`
	// Addr is the address gatecheck saw an agent report from; State,
	// for an agent whose latest job is not done, where it stands:
	// waiting (for an agent online, or at work), offline or expired.
	Addr  string `json:"addr,omitempty"`
	State string `json:"state,omitempty"`
	// EvidenceWithheld is set on an agent's view read without an API key
	// or a staff session: its report keeps the verdict only.
	EvidenceWithheld bool `json:"evidence_withheld,omitempty"`
}

type apiCurrent struct {
	Node    string         `json:"node"`
	Kind    wizard.Kind    `json:"kind"`
	Title   string         `json:"title"`
	Done    bool           `json:"done"`
	Outcome wizard.Outcome `json:"outcome,omitempty"`
	// Confirmation says, on an end a fix led to, whether gatecheck's check
	// confirmed the fix (or, on a fix, that the check found it failing).
	Confirmation *wizard.Confirmation `json:"confirmation,omitempty"`
}

type apiCase struct {
	Token       string        `json:"token"`
	Link        string        `json:"link"`
	URL         string        `json:"url"`
	Ticket      string        `json:"ticket"`
	Status      wizard.Status `json:"status"`
	TreeVersion string        `json:"tree_version"`
	// NoScheme says the address was typed without a scheme (url is its
	// https form): the report is of the scheme a browser would show.
	NoScheme bool `json:"no_scheme,omitempty"`
	// TreeInUse is the tree the case walks now: its own version, unless
	// that can no longer be read.
	TreeInUse string      `json:"tree_in_use"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
	Steps     []apiStep   `json:"steps"`
	Current   *apiCurrent `json:"current,omitempty"`
	Probe     apiProbe    `json:"probe"`
	// Vantages are the points of view in force, one per source: the
	// server's once it has a report, the browser's once it posted.
	Vantages []apiVantage `json:"vantages"`
	// Origin is the address the site's origin was asked at directly,
	// shown to API keys and staff only; its view is the vantage "origin".
	Origin string `json:"origin,omitempty"`
	// Watch is the schedule of checks until the site works again (next is
	// absent when none is due); RecoveredAt is when one found it working.
	Watch       wizard.Watch `json:"watch"`
	RecoveredAt time.Time    `json:"recovered_at,omitzero"`
	// Confirming is set while gatecheck checks a fix the visitor said
	// worked ("This fixed it"): the case is not resolved until it ends.
	Confirming *apiConfirming `json:"confirming,omitempty"`
}

// apiConfirming is a check of a reported fix under way: the probe run
// doing it, the fix it checks, and where it stands.
type apiConfirming struct {
	RunID         int64             `json:"run_id"`
	Node          string            `json:"node"`
	State         wizard.ProbeState `json:"state"`
	QueuePosition int               `json:"queue_position,omitempty"`
	QueuedAt      time.Time         `json:"queued_at"`
	StartedAt     time.Time         `json:"started_at,omitzero"`
}

func (s *Server) caseJSON(ctx context.Context, r *http.Request, st *caseState) (*apiCase, error) {
	inRunner, pos, _, _ := s.runner.Progress(st.c.ID)
	if !inRunner && (st.latest != nil && st.latest.State != wizard.ProbeDone || st.confirming()) {
		// The run ended between reading the case and asking the runner:
		// read the case again rather than report a queued run nobody runs.
		fresh, err := s.loadCase(ctx, st.c.Token, st.evidence)
		if err != nil {
			return nil, err
		}
		st = fresh
	}
	out := &apiCase{
		Token: st.c.Token, Link: s.baseURL(r) + "/c/" + st.c.Token, URL: st.c.URL, Ticket: st.c.Ticket,
		Status: st.c.Status, TreeVersion: st.c.TreeVersion, TreeInUse: st.tree.ID(), CreatedAt: st.c.CreatedAt, UpdatedAt: st.c.UpdatedAt,
		Watch: st.c.Watch, RecoveredAt: st.c.RecoveredAt, NoScheme: st.c.NoScheme,
		Steps: []apiStep{},
	}
	if st.evidence {
		out.Origin = st.c.Origin
	}
	for _, a := range st.answers {
		title, label := st.tree.Describe(s.cfg.Settings, st.facts, a.Node, a.Choice)
		out.Steps = append(out.Steps, apiStep{Node: a.Node, Title: title, Answer: a.Choice, Label: label, At: a.At})
	}
	out.Probe.State = wizard.ProbeQueued
	if st.latest != nil {
		out.Probe.State = st.latest.State
	}
	out.Probe.Report = st.facts.Report
	if st.checked != nil && st.checked.Report != nil {
		out.Probe.CheckedAt, out.Probe.SharedFrom = st.checked.Report.FinishedAt(), st.checked.SharedFrom
	}
	if inRunner && st.latest != nil && st.latest.State != wizard.ProbeDone {
		out.Probe.QueuePosition = pos
		if pos == 0 {
			out.Probe.State = wizard.ProbeRunning
		}
	}
	out.Vantages = []apiVantage{}
	if st.checked != nil && st.checked.Report != nil {
		out.Vantages = append(out.Vantages, apiVantage{From: "server", At: st.checked.Report.FinishedAt(), Run: st.checked.ID, Report: st.checked.Report})
	}
	latest := map[string]wizard.Vantage{}
	var order []string
	for _, v := range st.views {
		if _, seen := latest[v.From]; !seen {
			order = append(order, v.From)
		}
		latest[v.From] = v
	}
	for _, from := range order {
		v := latest[from]
		out.Vantages = append(out.Vantages, apiVantage{From: v.From, At: v.At, Run: v.RunID, Report: v.Report, Reachable: v.Reachable, Detail: v.Detail, Addr: v.Addr,
			EvidenceWithheld: !st.evidence && (strings.HasPrefix(v.From, "agent:") || v.From == wizard.VantageOrigin)})
	}
	// Agents whose latest job is not done: where it stands, on their
	// latest view if they have one.
	rows, _ := s.agentRows(st)
	for _, row := range rows {
		if row.State == "done" {
			continue
		}
		state := row.State
		if state == "working" {
			state = "waiting"
		}
		from := wizard.AgentSource(row.Name)
		i := slices.IndexFunc(out.Vantages, func(v apiVantage) bool { return v.From == from })
		if i < 0 {
			var j *wizard.AgentJob
			for _, jj := range st.jobs {
				if jj.From() == from {
					j = jj
				}
			}
			out.Vantages = append(out.Vantages, apiVantage{From: from, At: j.CreatedAt, Run: j.RunID})
			i = len(out.Vantages) - 1
		}
		out.Vantages[i].State = state
	}
	if st.confirming() {
		node, _, _ := confirmNode(st.confirm)
		c := &apiConfirming{RunID: st.confirm.ID, Node: node, State: st.confirm.State, QueuedAt: st.confirm.QueuedAt, StartedAt: st.confirm.StartedAt}
		if in, pos, _, _ := s.runner.Progress(st.c.ID); in {
			c.QueuePosition = pos
			if pos == 0 {
				c.State = wizard.ProbeRunning
			}
		}
		out.Confirming = c
	}
	if !st.probing() {
		out.Current = &apiCurrent{Node: st.step.Node, Kind: st.step.Kind, Title: st.step.Title, Done: st.step.Done, Outcome: st.step.Outcome, Confirmation: st.step.Confirmation}
	}
	return out, nil
}

// handleAPICreate answers POST /api/cases {"url", "ticket", "agents"}: 201
// with the case's token and link, the probes started, and a job for each
// agent named. Naming agents needs an API key or a staff session (401
// without); a name that is not a live agent's is a 422, the same for any
// such name, and nothing is stored.
func (s *Server) handleAPICreate(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.errorStatus(w, r, http.StatusUnsupportedMediaType, `Send JSON with Content-Type: application/json, such as {"url": "https://shop.example.com/", "ticket": "INC-42"}.`)
		return
	}
	var in struct {
		URL    string   `json:"url"`
		Ticket string   `json:"ticket"`
		Agents []string `json:"agents"`
		// Watch keeps checking the site until it works again.
		Watch bool `json:"watch"`
		// Origin is an address to reach the site's origin at directly,
		// beside the public check (API keys and staff only).
		Origin string `json:"origin"`
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&in); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.Error(w, r, errTooLarge)
			return
		}
		s.errorStatus(w, r, http.StatusBadRequest, `The body is not the JSON expected, {"url": "...", "ticket": "..."}: `+err.Error())
		return
	}
	// Agents are refused before anything is stored: to anonymous callers
	// before any name is looked at.
	if len(in.Agents) > 0 && !s.staffOrKey(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatecheck API"`)
		s.errorStatus(w, r, http.StatusUnauthorized, "Asking agents needs an API key (Authorization: Bearer gck_…) or a signed-in staff session: an agent probes from inside a customer's network.")
		return
	}
	var origin netip.AddrPort
	if in.Origin != "" {
		if !s.staffOrKey(r) {
			s.errorStatus(w, r, http.StatusForbidden, originNeedsKey)
			return
		}
		var err error
		if origin, err = probes.ParseOrigin(in.Origin); err != nil {
			s.Error(w, r, wizard.Errorf(wizard.EINVALID, "%s.", capitalise(err.Error())))
			return
		}
	}
	agents, err := s.agentsNamed(r.Context(), in.Agents)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	c, err := s.createCase(r, in.URL, in.Ticket, "", agents, "")
	var limited *limitedError
	if errors.As(err, &limited) {
		s.tooMany(w, r, limited.wait, limited.what)
		return
	} else if err != nil {
		s.Error(w, r, err)
		return
	}
	if origin.IsValid() {
		if err := s.originOfNewCase(context.WithoutCancel(r.Context()), c, origin); err != nil {
			s.Error(w, r, err)
			return
		}
	}
	if in.Watch {
		if err := s.startWatch(context.WithoutCancel(r.Context()), c.ID); err != nil {
			s.Error(w, r, err)
			return
		}
	}
	link := s.baseURL(r) + "/c/" + c.Token
	w.Header().Set("Location", "/api/cases/"+c.Token)
	writeJSON(w, http.StatusCreated, map[string]string{"token": c.Token, "link": link})
}

// handleAPICase answers GET /api/cases/{token}: agents' evidence to API
// keys and signed-in staff, their verdicts only to anyone else.
func (s *Server) handleAPICase(w http.ResponseWriter, r *http.Request) {
	st, err := s.loadCase(r.Context(), chi.URLParam(r, "token"), s.staffOrKey(r))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	doc, err := s.caseJSON(r.Context(), r, st)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, doc)
}
