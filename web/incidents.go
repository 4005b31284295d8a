package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

// incidentWindow is a window staff can look back over for incidents.
type incidentWindow struct {
	templates.IncidentWindow
	span time.Duration
}

var incidentWindows = []incidentWindow{
	{templates.IncidentWindow{Param: "10m", Label: "10 min"}, 10 * time.Minute},
	{templates.IncidentWindow{Param: "30m", Label: "30 min"}, 30 * time.Minute},
	{templates.IncidentWindow{Param: "1h", Label: "1 hour"}, time.Hour},
	{templates.IncidentWindow{Param: "6h", Label: "6 hours"}, 6 * time.Hour},
	{templates.IncidentWindow{Param: "24h", Label: "24 hours"}, 24 * time.Hour},
}

// defaultWindow is the window shown first, and the one a visitor's "others
// reported it" counts over.
var defaultWindow = incidentWindows[2]

// incidentCasesShown is how many cases an incident's page lists; the bulk
// actions apply to all of them.
const incidentCasesShown = 200

func windowChoices() []templates.IncidentWindow {
	out := make([]templates.IncidentWindow, len(incidentWindows))
	for i, w := range incidentWindows {
		out[i] = w.IncidentWindow
	}
	return out
}

// parseWindow reads a window parameter; empty is the default.
func parseWindow(raw string) (incidentWindow, error) {
	if raw == "" {
		return defaultWindow, nil
	}
	for _, w := range incidentWindows {
		if w.Param == raw {
			return w, nil
		}
	}
	return incidentWindow{}, wizard.Errorf(wizard.EINVALID, "There is no window %s: choose 10m, 30m, 1h, 6h or 24h.", strconv.Quote(clip(raw, 30)))
}

// incidentKey reads the host and verdict an incident's address names.
func incidentKey(r *http.Request) (host, verdict string, err error) {
	host, verdict = chi.URLParam(r, "host"), chi.URLParam(r, "verdict")
	if r.URL.RawPath != "" {
		// chi matched the path as sent, escapes and all.
		if h, err := url.PathUnescape(host); err == nil {
			host = h
		}
		if v, err := url.PathUnescape(verdict); err == nil {
			verdict = v
		}
	}
	host = strings.ToLower(host)
	if !validHost(host) {
		return "", "", wizard.Errorf(wizard.ENOTFOUND, "There is no incident for %s: that is not a host name.", strconv.Quote(clip(host, 100)))
	}
	if !slices.Contains(probes.Codes, probes.Code(verdict)) {
		return "", "", wizard.Errorf(wizard.ENOTFOUND, "There is no verdict %s.", strconv.Quote(clip(verdict, 30)))
	}
	return host, verdict, nil
}

// validHost: a host as cases store it (probes.Normalize): a name or an IP
// address, lower case, no port.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' || r == ':') {
			return false
		}
	}
	return true
}

func incidentPath(host, verdict string) string {
	return "/staff/incidents/" + url.PathEscape(host) + "/" + url.PathEscape(verdict)
}

// summary dresses an incident for the pages.
func summary(inc *wizard.Incident, w incidentWindow, since time.Time, notice *wizard.Notice) templates.IncidentSummary {
	return templates.IncidentSummary{Incident: inc, Window: w.IncidentWindow, Since: since, Notice: notice,
		Link: incidentPath(inc.Host, inc.Verdict) + "?window=" + w.Param}
}

// activeNotices returns the active notices by host.
func (s *Server) activeNotices(ctx context.Context) (map[string]*wizard.Notice, []*wizard.Notice, error) {
	all, err := s.cfg.Store.ActiveNotices(ctx)
	if err != nil {
		return nil, nil, err
	}
	byHost := make(map[string]*wizard.Notice, len(all))
	for _, n := range all {
		byHost[n.Host] = n
	}
	return byHost, all, nil
}

// incidentList is what the incident list shows, on the page and in the API.
type incidentList struct {
	win       incidentWindow
	filter    wizard.IncidentFilter
	incidents []*wizard.Incident
	unchecked int // cases of the window still being checked
	notices   map[string]*wizard.Notice
	all       []*wizard.Notice // every active notice
}

// loadIncidents reads the incidents of the window a request asks for.
func (s *Server) loadIncidents(r *http.Request) (*incidentList, error) {
	win, err := parseWindow(r.URL.Query().Get("window"))
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	l := &incidentList{win: win, filter: wizard.IncidentFilter{Since: now.Add(-win.span), Until: now, MinReports: s.cfg.IncidentMinReports}}
	if l.incidents, l.unchecked, err = s.cfg.Store.Incidents(r.Context(), l.filter); err != nil {
		return nil, err
	}
	l.notices, l.all, err = s.activeNotices(r.Context())
	return l, err
}

// handleIncidents answers GET /staff/incidents?window=1h: the incidents,
// most reports first.
func (s *Server) handleIncidents(w http.ResponseWriter, r *http.Request) {
	l, err := s.loadIncidents(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	v := templates.IncidentListView{Windows: windowChoices(), Window: l.win.IncidentWindow, MinReports: s.cfg.IncidentMinReports, Unchecked: l.unchecked}
	for _, inc := range l.incidents {
		v.Incidents = append(v.Incidents, summary(inc, l.win, l.filter.Since, l.notices[inc.Host]))
	}
	for _, n := range l.all {
		link := "/staff/incidents"
		if slices.Contains(probes.Codes, probes.Code(n.Verdict)) {
			link = incidentPath(n.Host, n.Verdict) + "?window=" + l.win.Param
		}
		v.Notices = append(v.Notices, templates.NoticeLink{Notice: n, Link: link})
	}
	m := s.meta(r, "Incidents")
	m.Wide = true
	s.render(w, r, http.StatusOK, templates.Incidents(m, v))
}

// handleIncident answers GET /staff/incidents/{host}/{verdict}?window=1h:
// one incident, its cases, the bulk actions and the notice.
func (s *Server) handleIncident(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := templates.IncidentView{}
	switch q.Get("done") {
	case "note":
		v.Done = "Note added to " + plural(atoi(q.Get("n")), "case") + "."
	case "status":
		if to := wizard.Status(q.Get("to")); to.Valid() {
			v.Done = "Status set to " + string(to) + " on " + plural(atoi(q.Get("n")), "case") + "."
			if same := atoi(q.Get("of")) - atoi(q.Get("n")); same > 0 {
				v.Done += fmt.Sprintf(" (%d already had it.)", same)
			}
		}
	case "notice":
		v.Done = "Notice published: visitors whose case is for this host see it on their case page."
	case "cleared":
		v.Done = "Notice cleared."
	}
	s.renderIncident(w, r, http.StatusOK, q.Get("window"), v)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return max(n, 0)
}

func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

// renderIncident shows an incident in the window named by rawWindow; v
// carries a confirmation, or a refusal with the drafts to give back.
func (s *Server) renderIncident(w http.ResponseWriter, r *http.Request, status int, rawWindow string, v templates.IncidentView) {
	ctx := r.Context()
	host, verdict, err := incidentKey(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	win, err := parseWindow(rawWindow)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	now := s.cfg.Now()
	f := wizard.IncidentFilter{Since: now.Add(-win.span), Until: now}
	inc, cases, err := s.cfg.Store.Incident(ctx, host, verdict, f)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	notice, err := s.cfg.Store.ActiveNotice(ctx, host)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	v.IncidentSummary = summary(inc, win, f.Since, notice)
	v.Windows, v.Statuses = windowChoices(), wizard.Statuses
	v.Explanation = probes.Explanation(probes.Code(verdict))
	v.Action = incidentPath(host, verdict)
	v.Until = inc.LatestAt.UTC().Format(time.RFC3339Nano)
	v.Cases = cases[:min(len(cases), incidentCasesShown)]
	v.More = len(cases) - len(v.Cases)
	m := s.meta(r, host+": "+verdict)
	m.Wide = true
	s.render(w, r, status, templates.IncidentPage(m, v))
}

// incidentCases returns the IDs of the incident's cases that the page the
// form was on showed: opened in the window, up to its until bound.
func (s *Server) incidentCases(r *http.Request) ([]int64, error) {
	host, verdict, err := incidentKey(r)
	if err != nil {
		return nil, err
	}
	win, err := parseWindow(r.PostForm.Get("window"))
	if err != nil {
		return nil, err
	}
	until, err := time.Parse(time.RFC3339Nano, r.PostForm.Get("until"))
	if err != nil {
		return nil, wizard.Errorf(wizard.EINVALID, "The form does not say which cases it showed (the time of the latest report is missing). Nothing was changed; look at the incident again and retry.")
	}
	now := s.cfg.Now()
	f := wizard.IncidentFilter{Since: now.Add(-win.span), Until: until}
	if f.Until.After(now) {
		f.Until = now
	}
	if f.Until.Before(f.Since) {
		return nil, nil // every case the page showed has left the window
	}
	_, cases, err := s.cfg.Store.Incident(r.Context(), host, verdict, f)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(cases))
	for i, c := range cases {
		ids[i] = c.ID
	}
	return ids, nil
}

// changeIncident applies a change staff posted to an incident. It
// returns where to go with the change done (the query of the incident's
// page); a refused change (EINVALID) shows the incident again with the
// reason and the drafts in v.
func (s *Server) changeIncident(w http.ResponseWriter, r *http.Request, change func() (query url.Values, v templates.IncidentView, err error)) {
	if err := r.ParseForm(); err != nil {
		s.Error(w, r, formError(err))
		return
	}
	host, verdict, err := incidentKey(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	rawWindow := r.PostForm.Get("window")
	if _, err := parseWindow(rawWindow); err != nil {
		s.Error(w, r, err)
		return
	}
	query, v, err := change()
	if errors.Is(err, errAnswered) {
		return
	}
	if err != nil {
		if wizard.ErrorCode(err) == wizard.EINVALID {
			v.Error = wizard.ErrorMessage(err)
			s.renderIncident(w, r, http.StatusUnprocessableEntity, rawWindow, v)
			return
		}
		s.Error(w, r, err)
		return
	}
	if rawWindow != "" {
		query.Set("window", rawWindow)
	}
	http.Redirect(w, r, incidentPath(host, verdict)+"?"+query.Encode(), http.StatusSeeOther)
}

// handleIncidentNote answers POST /staff/incidents/{host}/{verdict}/notes:
// one note on every case the page showed.
func (s *Server) handleIncidentNote(w http.ResponseWriter, r *http.Request) {
	s.changeIncident(w, r, func() (url.Values, templates.IncidentView, error) {
		body := strings.ToValidUTF8(r.PostForm.Get("body"), "\uFFFD")
		v := templates.IncidentView{NoteDraft: clip(body, 4*maxNote)}
		ids, err := s.incidentCases(r)
		if err != nil {
			return nil, v, err
		}
		if len(ids) == 0 {
			return nil, v, wizard.Errorf(wizard.EINVALID, "None of the cases the page showed is in the window any more: nothing was changed.")
		}
		n, err := s.cfg.Store.AddNotes(r.Context(), ids, staffFrom(r.Context()).Name, body)
		return url.Values{"done": {"note"}, "n": {strconv.Itoa(n)}}, v, err
	})
}

// handleIncidentStatus answers POST
// /staff/incidents/{host}/{verdict}/status: one status for every case the
// page showed.
func (s *Server) handleIncidentStatus(w http.ResponseWriter, r *http.Request) {
	s.changeIncident(w, r, func() (url.Values, templates.IncidentView, error) {
		to := wizard.Status(r.PostForm.Get("status"))
		if !to.Valid() {
			return nil, templates.IncidentView{}, wizard.Errorf(wizard.EINVALID, "%s is not a case status.", strconv.Quote(clip(string(to), 30)))
		}
		ids, err := s.incidentCases(r)
		if err != nil {
			return nil, templates.IncidentView{}, err
		}
		if len(ids) == 0 {
			return nil, templates.IncidentView{}, wizard.Errorf(wizard.EINVALID, "None of the cases the page showed is in the window any more: nothing was changed.")
		}
		cases := plural(len(ids), "case")
		if !s.confirmed(w, r, func() templates.ConfirmView {
			told := ""
			if s.cfg.Mailer != nil {
				told = ", and those who left an address are told by mail"
			}
			return templates.ConfirmView{Title: "Set the status of " + cases + " to " + string(to) + "?",
				Consequence: "Each case's visitor sees the new status on their page" + told + ". A status can be set again, one case at a time.",
				Button:      "Set " + cases + " to " + string(to), Cancel: strings.TrimSuffix(r.URL.Path, "/status") + "?window=" + url.QueryEscape(r.PostForm.Get("window"))}
		}) {
			return nil, templates.IncidentView{}, errAnswered
		}
		n, err := s.setStatuses(r, ids, to, staffFrom(r.Context()).Name)
		if err == nil {
			err = s.watchUnresolved(r.Context(), to, ids...)
		}
		return url.Values{"done": {"status"}, "to": {string(to)}, "n": {strconv.Itoa(n)}, "of": {strconv.Itoa(len(ids))}}, templates.IncidentView{}, err
	})
}

// handlePublishNotice answers POST
// /staff/incidents/{host}/{verdict}/notice: the notice visitors of the
// host see, replacing any.
func (s *Server) handlePublishNotice(w http.ResponseWriter, r *http.Request) {
	s.changeIncident(w, r, func() (url.Values, templates.IncidentView, error) {
		host, verdict, _ := incidentKey(r) // checked by changeIncident
		body := strings.ToValidUTF8(r.PostForm.Get("body"), "\uFFFD")
		n := &wizard.Notice{Host: host, Verdict: verdict, Body: body, Author: staffFrom(r.Context()).Name}
		err := s.cfg.Store.PublishNotice(r.Context(), n)
		return url.Values{"done": {"notice"}}, templates.IncidentView{NoticeDraft: clip(body, 4*wizard.MaxNotice)}, err
	})
}

// handleClearNotice answers POST
// /staff/incidents/{host}/{verdict}/notice/clear.
func (s *Server) handleClearNotice(w http.ResponseWriter, r *http.Request) {
	s.changeIncident(w, r, func() (url.Values, templates.IncidentView, error) {
		host, _, _ := incidentKey(r)
		err := s.cfg.Store.ClearNotice(r.Context(), host, staffFrom(r.Context()).Name)
		return url.Values{"done": {"cleared"}}, templates.IncidentView{}, err
	})
}

// hostNotice is the notice staff published for the case's host, with how
// many others reported the host in the last hour; nil when there is none.
// A notice that cannot be read is left out: the wizard goes on without it.
func (s *Server) hostNotice(ctx context.Context, c *wizard.Case) *templates.HostNotice {
	n, err := s.cfg.Store.ActiveNotice(ctx, c.Host)
	if err != nil || n == nil {
		if err != nil && ctx.Err() == nil {
			s.log.Error("reading the host's notice", "host", c.Host, "err", err)
		}
		return nil
	}
	others, err := s.cfg.Store.CountReports(ctx, c.Host, s.cfg.Now().Add(-defaultWindow.span), c.ID)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("counting the host's reports", "host", c.Host, "err", err)
		}
		return nil
	}
	return &templates.HostNotice{Host: c.Host, Body: n.Body, Author: n.Author, At: n.CreatedAt, Others: others}
}

// apiIncident is an incident for ticket systems.
type apiIncident struct {
	Host    string `json:"host"`
	Verdict string `json:"verdict"`
	Gateway string `json:"gateway"`
	Reports int    `json:"reports"`
	// PerMinute[i] counts the reports opened from since + i minutes on.
	PerMinute []int             `json:"per_minute"`
	FirstAt   time.Time         `json:"first_at,omitzero"`
	LatestAt  time.Time         `json:"latest_at,omitzero"`
	Link      string            `json:"link"` // the staff page
	Notice    *wizard.Notice    `json:"notice"`
	Cases     []apiIncidentCase `json:"cases,omitzero"`
}

type apiIncidentCase struct {
	Token     string        `json:"token"`
	Link      string        `json:"link"`
	URL       string        `json:"url"`
	Ticket    string        `json:"ticket"`
	Status    wizard.Status `json:"status"`
	CreatedAt time.Time     `json:"created_at"`
}

type apiWindow struct {
	Window string    `json:"window"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
}

func (s *Server) incidentJSON(r *http.Request, inc *wizard.Incident, win incidentWindow, notice *wizard.Notice) apiIncident {
	return apiIncident{Host: inc.Host, Verdict: inc.Verdict, Gateway: inc.Gateway, Reports: inc.Reports, PerMinute: inc.PerMinute,
		FirstAt: inc.FirstAt, LatestAt: inc.LatestAt, Notice: notice,
		Link: s.baseURL(r) + incidentPath(inc.Host, inc.Verdict) + "?window=" + win.Param}
}

// handleAPIIncidents answers GET /api/incidents?window=1h (staff only).
func (s *Server) handleAPIIncidents(w http.ResponseWriter, r *http.Request) {
	l, err := s.loadIncidents(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := struct {
		apiWindow
		MinReports int           `json:"min_reports"`
		Unchecked  int           `json:"unchecked"`
		Incidents  []apiIncident `json:"incidents"`
	}{apiWindow: apiWindow{l.win.Param, l.filter.Since.UTC(), l.filter.Until.UTC()}, MinReports: s.cfg.IncidentMinReports, Unchecked: l.unchecked, Incidents: []apiIncident{}}
	for _, inc := range l.incidents {
		out.Incidents = append(out.Incidents, s.incidentJSON(r, inc, l.win, l.notices[inc.Host]))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAPIIncident answers GET /api/incidents/{host}/{verdict}?window=1h
// (staff only): one incident with its cases.
func (s *Server) handleAPIIncident(w http.ResponseWriter, r *http.Request) {
	host, verdict, err := incidentKey(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	win, err := parseWindow(r.URL.Query().Get("window"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	now := s.cfg.Now()
	f := wizard.IncidentFilter{Since: now.Add(-win.span), Until: now}
	inc, cases, err := s.cfg.Store.Incident(r.Context(), host, verdict, f)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	notice, err := s.cfg.Store.ActiveNotice(r.Context(), host)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	doc := s.incidentJSON(r, inc, win, notice)
	doc.Cases = make([]apiIncidentCase, len(cases))
	for i, c := range cases {
		doc.Cases[i] = apiIncidentCase{Token: c.Token, Link: s.baseURL(r) + "/c/" + c.Token, URL: c.URL, Ticket: c.Ticket, Status: c.Status, CreatedAt: c.CreatedAt}
	}
	writeJSON(w, http.StatusOK, struct {
		apiWindow
		Incident apiIncident `json:"incident"`
	}{apiWindow{win.Param, f.Since.UTC(), f.Until.UTC()}, doc})
}
