package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

const sessionCookie = "gatecheck_session"

type staffKey struct{}

func staffFrom(ctx context.Context) *wizard.User {
	u, _ := ctx.Value(staffKey{}).(*wizard.User)
	return u
}

// HashPassword returns the bcrypt hash of a password, for new accounts.
func HashPassword(pw string) (string, error) {
	if len(pw) < 10 {
		return "", wizard.Errorf(wizard.EINVALID, "A password needs at least 10 characters.")
	}
	if len(pw) > 72 {
		return "", wizard.Errorf(wizard.EINVALID, "A password can have at most 72 bytes.")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	return string(h), err
}

func mustHash(pw string) []byte {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		panic(err)
	}
	return h
}

// sessionUser returns the signed-in member of staff, or nil.
func (s *Server) sessionUser(r *http.Request) *wizard.User {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if u, err := s.cfg.Store.SessionUser(r.Context(), ck.Value); err == nil {
			return u
		}
	}
	return nil
}

// requireStaff lets signed-in staff through and sends others to sign in.
func (s *Server) requireStaff(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := s.sessionUser(r); u != nil {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), staffKey{}, u)))
			return
		}
		if r.Method == http.MethodGet && !isAPI(r) {
			http.Redirect(w, r, "/staff/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		s.errorStatus(w, r, http.StatusUnauthorized, "Please sign in first.")
	})
}

// requireAdmin, after requireStaff, lets admins through and refuses
// agents: managing users, webhooks and API keys is for admins.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !staffFrom(r.Context()).IsAdmin() {
			s.errorStatus(w, r, http.StatusForbidden, "Only admins manage users, webhooks and API keys, and your account is an agent's. Ask an admin if something needs changing.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// safeNext is where sign-in leads: next when it is a path under /staff as
// a request URI is written (so text, without control characters), else
// /staff.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/staff") && !strings.HasPrefix(next, "//") && !strings.Contains(next, "\\") &&
		utf8.ValidString(next) && strings.IndexFunc(next, unicode.IsControl) < 0 {
		return next
	}
	return "/staff"
}

// handleLoginForm answers GET /staff/login.
func (s *Server) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, templates.Login(s.meta(r, "Sign in"), templates.LoginView{Next: safeNext(r.URL.Query().Get("next"))}))
}

// handleLogin answers POST /staff/login.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.Error(w, r, formError(err))
		return
	}
	name, pw, next := strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("password"), safeNext(r.PostForm.Get("next"))
	if ok, wait := s.loginLimit.take(r.Context(), addrKey(s.clientIP(r))); !ok {
		// The form again, the name kept, with when to try again.
		secs := waitSeconds(wait)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		v := templates.LoginView{Name: clip(name, 100), Next: next, Error: limitWords(limitSignIns, secs)}
		s.render(w, r, http.StatusTooManyRequests, templates.Login(s.meta(r, "Sign in"), v))
		return
	}
	// Each account, existing or not (so that a refusal tells nothing),
	// has its own budget of failed attempts, however many addresses the
	// guesses come from; a sign-in that succeeds gives its token back.
	account := accountKey(clip(name, 100))
	ok, wait := s.accountLimit.take(r.Context(), account)
	if !ok {
		secs := int(wait.Seconds() + 0.999)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		v := templates.LoginView{Name: clip(name, 100), Next: next,
			Error: fmt.Sprintf("Too many failed sign-in attempts for this account. Please wait %d seconds and try again.", secs)}
		s.render(w, r, http.StatusTooManyRequests, templates.Login(s.meta(r, "Sign in"), v))
		return
	}
	u, err := s.cfg.Store.UserByName(r.Context(), name)
	hash := s.dummyHash // compare anyway, so timing does not tell which names exist
	if err == nil {
		hash = []byte(u.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pw)) != nil || err != nil {
		v := templates.LoginView{Name: clip(name, 100), Next: next, Error: "That name and password do not match an account."}
		s.render(w, r, http.StatusUnauthorized, templates.Login(s.meta(r, "Sign in"), v))
		return
	}
	s.accountLimit.refund(r.Context(), account)
	token, err := s.cfg.Store.CreateSession(r.Context(), u.ID, s.cfg.SessionTTL)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: s.secureCookie(r),
		SameSite: http.SameSiteLaxMode, MaxAge: int(s.cfg.SessionTTL.Seconds()),
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// secureCookie: Secure on https, and on loopback, where browsers accept it.
func (s *Server) secureCookie(r *http.Request) bool {
	if s.secure(r) {
		return true
	}
	host := r.Host
	if h, _, err := splitHost(host); err == nil {
		host = h
	}
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "[::1]" || host == "::1"
}

func splitHost(hostport string) (string, string, error) {
	u, err := url.Parse("//" + hostport)
	if err != nil {
		return "", "", err
	}
	return u.Hostname(), u.Port(), nil
}

// handleLogout answers POST /staff/logout.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		s.cfg.Store.DeleteSession(r.Context(), ck.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secureCookie(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

const pageSize = 50

// countUpTo is where the case list may stop counting a search that is
// combined with other filters ("more than 1000 cases").
const countUpTo = 1000

// handleCaseList answers GET /staff: the cases, newest first, filtered.
func (s *Server) handleCaseList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := templates.CaseListView{
		Status: q.Get("status"), Verdict: q.Get("verdict"), Host: strings.TrimSpace(clip(q.Get("host"), 300)),
		Ticket: strings.TrimSpace(clip(q.Get("ticket"), 100)), From: q.Get("from"), To: q.Get("to"),
		Query: clip(q.Get("q"), 300), Page: 1,
	}
	f := wizard.CaseFilter{Host: v.Host, Ticket: v.Ticket, Query: v.Query, Limit: pageSize}
	var problems []string
	if v.Status != "" {
		if st := wizard.Status(v.Status); st.Valid() {
			f.Status = st
		} else {
			problems, v.Status = append(problems, "unknown status "+strconv.Quote(clip(v.Status, 30))), ""
		}
	}
	if v.Verdict != "" {
		if slices.Contains(probes.Codes, probes.Code(v.Verdict)) {
			f.Verdict = v.Verdict
		} else {
			problems, v.Verdict = append(problems, "unknown verdict "+strconv.Quote(clip(v.Verdict, 30))), ""
		}
	}
	for _, d := range []struct {
		raw *string
		to  *time.Time
		add time.Duration
	}{{&v.From, &f.From, 0}, {&v.To, &f.To, 24 * time.Hour}} {
		if *d.raw == "" {
			continue
		}
		t, err := time.Parse("2006-01-02", *d.raw)
		if err != nil {
			problems, *d.raw = append(problems, "dates are written 2026-11-21"), ""
			continue
		}
		*d.to = t.Add(d.add)
	}
	if p, err := strconv.Atoi(q.Get("page")); err == nil && p > 1 && p < 100000 {
		v.Page = p
	}
	f.Offset = (v.Page - 1) * pageSize
	f.CountUpTo = countUpTo
	cases, total, err := s.cfg.Store.FindCases(r.Context(), f)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	v.Cases, v.Total = cases, total
	v.Pages = max(1, (total+pageSize-1)/pageSize)
	if total == countUpTo+1 {
		// Counted only up to countUpTo (or exactly one more, which "more
		// than" describes as well): pages go on while they are full.
		v.More = true
		v.Pages = v.Page
		if len(cases) == pageSize {
			v.Pages++
		}
	}
	page := func(n int) string {
		qq := url.Values{}
		for k, val := range map[string]string{"status": v.Status, "verdict": v.Verdict, "host": v.Host, "ticket": v.Ticket, "from": v.From, "to": v.To, "q": v.Query} {
			if val != "" {
				qq.Set(k, val)
			}
		}
		qq.Set("page", strconv.Itoa(n))
		return "/staff?" + qq.Encode()
	}
	if v.Page > 1 {
		v.PrevURL = page(v.Page - 1)
	}
	if v.Page < v.Pages {
		v.NextURL = page(v.Page + 1)
	}
	if len(problems) > 0 {
		v.Error = "Some filters were ignored: " + strings.Join(problems, "; ") + "."
	}
	m := s.meta(r, "Cases")
	m.Wide = true
	s.render(w, r, http.StatusOK, templates.CaseList(m, v))
}

// handleStaffCase answers GET /staff/c/{token}: the whole case.
func (s *Server) handleStaffCase(w http.ResponseWriter, r *http.Request) {
	s.renderStaffCase(w, r, http.StatusOK, "", "")
}

// staffDone are the words a staff case page says after an action
// (?done=KEY on the page it redirects to): a fixed table, so that nothing
// a link carries is shown.
var staffDone = map[string]string{
	"note":   "Note added.",
	"reply":  "Reply added: the visitor sees it on their case page.",
	"probe":  "The probes are running again; the evidence below shows their result when they finish.",
	"origin": "Checking the origin, reached directly, beside a new probe of the site.",
	"agent":  "The agent is asked to check the site; its view appears below when it answers.",
}

// doneURL is the staff case page that says an action was done.
func doneURL(token, done string) string { return "/staff/c/" + token + "?done=" + done }

// renderStaffCase shows a case to staff; msg explains a refused change and
// draft is the note to put back in the form.
func (s *Server) renderStaffCase(w http.ResponseWriter, r *http.Request, status int, msg, draft string) {
	ctx := r.Context()
	st, err := s.loadCase(ctx, chi.URLParam(r, "token"), true)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	runs, notes, changes, err := s.records(ctx, st.c.ID)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	v := templates.StaffCaseView{
		Case: st.c, Link: s.baseURL(r) + "/c/" + st.c.Token, Notes: notes, Error: msg, Draft: draft, Done: staffDone[r.URL.Query().Get("done")],
		Statuses: wizard.Statuses, Timeline: s.timeline(st, runs, notes, changes), Browser: wizard.Browser(st.views),
		ReplyMail: s.replyMailWord(st.c),
	}
	if r.URL.Query().Get("done") == "status" {
		v.Done = "Status set to " + string(st.c.Status) + "."
	}
	if !st.probing() {
		v.Step = st.step
	}
	v.Agents, _ = s.agentRows(st)
	if s.agents != nil {
		agents, err := s.agents.Agents(ctx)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		for _, a := range agents {
			if a.RevokedAt.IsZero() {
				v.AgentNames = append(v.AgentNames, a.Name)
			}
		}
	}
	var done []*wizard.ProbeRun
	for _, run := range runs {
		v.Latest = run
		if run.State == wizard.ProbeDone {
			done = append(done, run)
		}
	}
	if n := len(done); n > 0 && v.Latest.State != wizard.ProbeDone {
		v.Latest = done[n-1]
	}
	v.Origin = originView(st.views, runs)
	if n := len(done); n >= 2 {
		v.Changes = append(diffReports(done[n-2].Report, done[n-1].Report), diffOrigin(st.views, done[n-2].ID, done[n-1].ID)...)
		if len(v.Changes) == 0 {
			v.Changes = []string{"Nothing: the last two probe runs found the same."}
		}
	}
	switch {
	case st.treeLost:
		v.TreeNote = "(an earlier version that can no longer be read: the case goes on with the current tree, " + s.cfg.Tree.ID() + ")"
	case st.c.TreeVersion != s.cfg.Tree.ID():
		v.TreeNote = "(an earlier version of the tree; the current one is " + s.cfg.Tree.ID() + ")"
	}
	m := s.meta(r, st.c.Host)
	m.Wide = true
	s.render(w, r, status, templates.StaffCase(m, v))
}

// records loads what staff see of a case besides its steps.
func (s *Server) records(ctx context.Context, caseID int64) ([]*wizard.ProbeRun, []wizard.Note, []wizard.StatusChange, error) {
	runs, err := s.cfg.Store.ProbeRuns(ctx, caseID)
	if err != nil {
		return nil, nil, nil, err
	}
	notes, err := s.cfg.Store.Notes(ctx, caseID)
	if err != nil {
		return nil, nil, nil, err
	}
	changes, err := s.cfg.Store.StatusChanges(ctx, caseID)
	return runs, notes, changes, err
}

// timeline merges a case's events in time order.
func (s *Server) timeline(st *caseState, runs []*wizard.ProbeRun, notes []wizard.Note, changes []wizard.StatusChange) []templates.TimelineEntry {
	out := []templates.TimelineEntry{{At: st.c.CreatedAt, Kind: "open", Actor: st.c.RequesterIP, Text: "Case opened for " + st.c.URL}}
	for _, rec := range st.log {
		who := rec.Actor
		if who == "" {
			who = "visitor"
		}
		if rec.Back() {
			out = append(out, templates.TimelineEntry{At: rec.At, Kind: "back", Actor: who, Text: fmt.Sprintf("Went back to step %d", rec.Index+1)})
			continue
		}
		title, label := st.tree.Describe(s.cfg.Settings, st.facts, rec.Node, rec.Choice)
		out = append(out, templates.TimelineEntry{At: rec.At, Kind: "step", Actor: who, Text: fmt.Sprintf("Step %d, %s: %s", rec.Index+1, title, label)})
	}
	for _, run := range runs {
		actor := run.Actor
		if actor == "" {
			actor = "gatecheck"
		}
		if actor == watchActor {
			// The watch's checks are folded together below.
			at := run.QueuedAt
			if run.State == wizard.ProbeDone {
				at = run.FinishedAt
			}
			out = append(out, templates.TimelineEntry{At: at, Kind: "watch", Actor: actor, Text: watchRunCode(run)})
			continue
		}
		out = append(out, templates.TimelineEntry{At: run.QueuedAt, Kind: "probe", Actor: actor, Text: "Probes queued"})
		if run.State == wizard.ProbeDone && run.Report != nil {
			out = append(out, templates.TimelineEntry{At: run.FinishedAt, Kind: "probe", Actor: "gatecheck",
				Text: sharedText(run) + "Probes finished: " + string(run.Report.Verdict.Code) + ": " + run.Report.Verdict.Summary})
		}
	}
	for _, v := range st.views {
		out = append(out, templates.TimelineEntry{At: v.At, Kind: "vantage", Actor: v.From,
			Text: fmt.Sprintf("Seen from %s (for probe run %d): %s", vantageName(v.From), v.RunID, v.Detail)})
	}
	for _, n := range notes {
		out = append(out, templates.TimelineEntry{At: n.At, Kind: "note", Actor: n.Author, Text: "Note: " + n.Body})
	}
	for _, c := range changes {
		out = append(out, templates.TimelineEntry{At: c.At, Kind: "status", Actor: c.Actor, Text: fmt.Sprintf("Status %s → %s", c.From, c.To)})
	}
	out = append(out, mailTimeline(st.mails)...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return foldWatch(out, s.clock)
}

// watchRunCode is what a watch's check found, as its verdict code, or
// "still running".
func watchRunCode(run *wizard.ProbeRun) string {
	if run.State != wizard.ProbeDone || run.Report == nil {
		return "still running"
	}
	return string(run.Report.Verdict.Code)
}

// foldWatch folds each series of the watch's checks, not interrupted by
// anything else, into one line: "Checked 6 times by the watch, from 14:02
// to 14:20: gateway_502 ×5, then healthy". Entries of kind "watch" carry
// one check's finding as their text.
func foldWatch(in []templates.TimelineEntry, clock func(time.Time) string) []templates.TimelineEntry {
	var out []templates.TimelineEntry
	for i := 0; i < len(in); {
		if in[i].Kind != "watch" {
			out = append(out, in[i])
			i++
			continue
		}
		j := i
		type streak struct {
			code string
			n    int
		}
		var found []streak
		for ; j < len(in) && in[j].Kind == "watch"; j++ {
			if k := len(found) - 1; k >= 0 && found[k].code == in[j].Text {
				found[k].n++
			} else {
				found = append(found, streak{in[j].Text, 1})
			}
		}
		parts := make([]string, len(found))
		for k, f := range found {
			parts[k] = f.code
			if f.n > 1 {
				parts[k] += fmt.Sprintf(" ×%d", f.n)
			}
		}
		text := "Checked by the watch: " + parts[0]
		if n := j - i; n > 1 {
			summary := strings.Join(parts, ", then ")
			if len(found) == 1 {
				summary = "all " + found[0].code
			}
			text = fmt.Sprintf("Checked %d times by the watch, from %s to %s: %s", n, clock(in[i].At), clock(in[j-1].At), summary)
		}
		out = append(out, templates.TimelineEntry{At: in[j-1].At, Kind: "watch", Actor: in[i].Actor, Text: text})
		i = j
	}
	return out
}

// vantageName names a point of view for staff.
func vantageName(from string) string {
	switch from {
	case wizard.VantageBrowser:
		return "the visitor's browser"
	case wizard.VantageOrigin:
		return "the origin, reached directly"
	}
	return from
}

// sharedText says where a run's report came from when another run made
// it, and how old it was when this run asked.
func sharedText(run *wizard.ProbeRun) string {
	if run.SharedFrom == 0 {
		return ""
	}
	age := run.QueuedAt.Sub(run.Report.FinishedAt())
	if age <= 0 {
		return fmt.Sprintf("Joined probe run %d of the same site, under way. ", run.SharedFrom)
	}
	return fmt.Sprintf("Reused the report of probe run %d of the same site, %s old. ", run.SharedFrom, age.Round(time.Second))
}

// diffReports says, in words, what changed between two probe reports.
func diffReports(a, b *probes.Report) []string {
	if a == nil || b == nil {
		return nil
	}
	var out []string
	if a.Verdict.Code != b.Verdict.Code {
		out = append(out, fmt.Sprintf("Verdict: %s → %s", a.Verdict.Code, b.Verdict.Code))
	}
	if a.Gateway.Name != b.Gateway.Name {
		out = append(out, fmt.Sprintf("Gateway: %s → %s", templates.GatewayLabel(a.Gateway.Name), templates.GatewayLabel(b.Gateway.Name)))
	}
	before := map[string]probes.Status{}
	for _, c := range a.Checks {
		before[c.Name] = c.Status
	}
	for _, c := range b.Checks {
		if old, ok := before[c.Name]; !ok {
			out = append(out, fmt.Sprintf("New check %s: %s", c.Name, c.Status))
		} else if old != c.Status {
			out = append(out, fmt.Sprintf("Check %s: %s → %s", c.Name, old, c.Status))
		}
		delete(before, c.Name)
	}
	for name := range before {
		out = append(out, "Check "+name+" no longer made")
	}
	if a.Counts != b.Counts {
		out = append(out, fmt.Sprintf("Samples: %d/%d ok → %d/%d ok", a.Counts.OK, a.Counts.Total, b.Counts.OK, b.Counts.Total))
	}
	return out
}

// handleAddNote answers POST /staff/c/{token}/notes.
func (s *Server) handleAddNote(w http.ResponseWriter, r *http.Request) {
	s.changeCase(w, r, "note", func(c *wizard.Case) (string, error) {
		body := strings.ToValidUTF8(r.PostForm.Get("body"), "�")
		author := staffFrom(r.Context()).Name
		if r.PostForm.Get("to") == "visitor" {
			// A reply: the visitor sees it on the case's page, and gets
			// it by mail when they left an address.
			return clip(body, 4*maxNote), s.addReply(r, c, author, body)
		}
		_, err := s.cfg.Store.AddNote(r.Context(), c.ID, author, body)
		return clip(body, 4*maxNote), err
	})
}

// handleSetStatus answers POST /staff/c/{token}/status.
func (s *Server) handleSetStatus(w http.ResponseWriter, r *http.Request) {
	s.changeCase(w, r, "status", func(c *wizard.Case) (string, error) {
		to := wizard.Status(r.PostForm.Get("status"))
		if err := s.setStatus(r, c, to, staffFrom(r.Context()).Name); err != nil {
			return "", err
		}
		return "", s.watchUnresolved(r.Context(), to, c.ID)
	})
}

// postedCase reads a posted form and the case its address names; it
// answers the request itself when either cannot be read.
func (s *Server) postedCase(w http.ResponseWriter, r *http.Request) (*wizard.Case, bool) {
	if err := r.ParseForm(); err != nil {
		s.Error(w, r, formError(err))
		return nil, false
	}
	c, err := s.cfg.Store.Case(r.Context(), chi.URLParam(r, "token"))
	if err != nil {
		s.Error(w, r, err)
		return nil, false
	}
	return c, true
}

// changeCase applies a change staff posted to a case. A refused change
// (EINVALID) shows the case again with the reason and, in the note form,
// the draft change returned; a done one goes back to the case.
func (s *Server) changeCase(w http.ResponseWriter, r *http.Request, done string, change func(c *wizard.Case) (draft string, err error)) {
	c, ok := s.postedCase(w, r)
	if !ok {
		return
	}
	if draft, err := change(c); err != nil {
		if wizard.ErrorCode(err) == wizard.EINVALID {
			s.renderStaffCase(w, r, http.StatusUnprocessableEntity, wizard.ErrorMessage(err), draft)
			return
		}
		s.Error(w, r, err)
		return
	}
	if done == "note" && r.PostForm.Get("to") == "visitor" {
		done = "reply"
	}
	http.Redirect(w, r, doneURL(c.Token, done), http.StatusSeeOther)
}

// handleRerun answers POST /staff/c/{token}/probe: probe the URL again.
func (s *Server) handleRerun(w http.ResponseWriter, r *http.Request) {
	c, err := s.cfg.Store.Case(r.Context(), chi.URLParam(r, "token"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if ok, _, _, _ := s.runner.Progress(c.ID); ok {
		s.renderStaffCase(w, r, http.StatusConflict, "The probes are already running for this case.", "")
		return
	}
	if _, ok := s.freshCheck(w, r, c, staffFrom(r.Context()).Name); !ok {
		return
	}
	http.Redirect(w, r, doneURL(c.Token, "probe"), http.StatusSeeOther)
}

// handleExport answers GET /staff/c/{token}/export.json: the whole case.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, err := s.loadCase(ctx, chi.URLParam(r, "token"), true)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	doc, err := s.caseJSON(ctx, r, st)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	runs, notes, changes, err := s.records(ctx, st.c.ID)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="gatecheck-case-`+st.c.Token[:8]+`.json"`)
	writeJSON(w, http.StatusOK, map[string]any{
		"case": doc, "step_log": st.log, "notes": notes, "status_changes": changes, "probe_runs": runs,
		"requester_ip": st.c.RequesterIP, "visitor_email": st.c.VisitorEmail, "host": st.c.Host, "verdict": st.c.Verdict, "gateway": st.c.Gateway,
	})
}
