package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

// The visitor's browser is a second point of view on the case's URL. The
// case page's script fetches the URL in no-cors mode (no cookies, no
// referrer, redirects not followed): the answer is opaque, so it tells "a
// server answered" from "could not connect" and nothing more, and posts
// that to POST /c/{token}/vantage, once per probe run. The page's policy
// lets the script reach the case's origin only: a redirect elsewhere is
// blocked, and the policy violation it raises tells the script that a
// server answered ("redirected").

// browserTimeout is how long the browser waits for the site; static/app.js
// reads it from the page.
const browserTimeout = 8 * time.Second

// Why a browser did not try the URL, as it posts them.
var skipReasons = map[string]string{
	"mixed-content": "not tried: gatecheck's page is https and the site is http, which browsers block (mixed content)",
	"address":       "not tried: a browser's security policy cannot name this address",
	"unsupported":   "not tried: this browser lacks what the check needs",
	"internal":      "not tried: the site's address is not on the public internet, so gatecheck does not ask browsers to reach it",
}

// cspOriginPattern is what a connect-src source may be: a scheme, a host of
// letters, digits, dots and hyphens, and a port. IPv6 literals and names
// with underscores cannot be written in a policy; such sites are not tried.
var cspOriginPattern = regexp.MustCompile(`^https?://[a-z0-9-]+(\.[a-z0-9-]+)*(:[0-9]{1,5})?$`)

// cspOrigin returns the origin of a case's URL as a Content-Security-Policy
// source, or "" when it cannot be written as one. The URL was normalised
// when the case was made; it is normalised and checked again here, since
// the origin goes into a header: no space, semicolon or quote may pass.
func cspOrigin(rawURL string) string {
	t, err := probes.Normalize(rawURL, probes.DefaultPorts)
	if err != nil {
		return ""
	}
	origin := t.URL.Scheme + "://" + t.URL.Host
	if !cspOriginPattern.MatchString(origin) {
		return ""
	}
	return origin
}

// browserCheck says whether the page of a case should have the visitor's
// browser try its URL, for the case's latest probe run: only when that run
// has no browser view yet. csp is the origin the page's policy must allow
// ("" when the browser is not to try, and posts why instead).
func (s *Server) browserCheck(r *http.Request, st *caseState) (check *templates.BrowserCheck, csp string) {
	if st.latest == nil || st.latestBrowser() != nil || s.browserTooLate(st) || !isReporter(r, st.c) {
		// Only the reporter's browser checks: anyone else who opens
		// the link (staff, a colleague) would record their own network
		// as the visitor's.
		return nil, ""
	}
	// Whether the site is on the public internet is known from the
	// server's own look at it: until then the browser is not asked.
	rep := st.latest.Report
	if rep == nil || st.latest.State != wizard.ProbeDone {
		return nil, ""
	}
	// An address typed without a scheme is tried on the scheme the
	// visitor's browser would have shown, which the report names.
	u := st.c.URL
	if rep.NoScheme && rep.URL != "" {
		u = rep.URL
	}
	check = &templates.BrowserCheck{
		RunID: st.latest.ID, URL: u, Post: "/c/" + st.c.Token + "/vantage", TimeoutMS: int(browserTimeout.Milliseconds()),
	}
	origin := cspOrigin(u)
	switch {
	case s.browserRefused(rep):
		check.Skip = "internal"
	case origin == "":
		check.Skip = "address"
	case s.secure(r) && !s.secureURL(u):
		check.Skip = "mixed-content"
	default:
		csp = origin
	}
	check.SkipText = skipReasons[check.Skip]
	return check, csp
}

// browserRefused reports whether the visitor's browser must not be asked to
// reach the site of report rep: the server's guard refused it, or the site
// is at an address that is not on the public internet (unless the
// operator allowed its range for browsers, --allow-browser-net). Otherwise
// a case link for http://192.168.1.1/… would send whoever opens it,
// helpdesk staff included, into their own intranet, and tell the link's
// maker whether something answered there.
func (s *Server) browserRefused(rep *probes.Report) bool {
	if rep.Verdict.Code == probes.BlockedTarget || rep.Verdict.Code == probes.InvalidURL {
		return true
	}
	var addrs []string
	if t, err := probes.Normalize(rep.URL, probes.DefaultPorts); err != nil {
		return true
	} else if t.Addr.IsValid() {
		addrs = append(addrs, t.Addr.String())
	}
	if rep.DNS != nil {
		if rep.DNS.Withheld > 0 {
			return true
		}
		addrs = append(addrs, rep.DNS.Addresses...)
	}
	if len(addrs) == 0 {
		return true // nothing known to be public
	}
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil || s.browserGuard.Check(ip.Unmap()) != nil {
			return true
		}
	}
	return false
}

// browserTooLate reports whether the person's answers already settle what
// the browser's view would: a view stored now would be refused (see
// handleVantage), so the page does not try.
func (s *Server) browserTooLate(st *caseState) bool {
	for _, reachable := range []bool{true, false} {
		if s.browserMoves(st, wizard.Vantage{RunID: st.latest.ID, From: wizard.VantageBrowser, Reachable: &reachable}) {
			return true
		}
	}
	return false
}

// browserMoves reports whether storing v would change an answer the
// person gave: the answers in force no longer fit the walk.
func (s *Server) browserMoves(st *caseState, v wizard.Vantage) bool {
	facts := st.facts
	facts.Vantages = append(slices.Clip(st.facts.Vantages), v)
	var ae *wizard.AnswerError
	_, err := st.tree.Next(s.cfg.Settings, facts, st.answers)
	return errors.As(err, &ae)
}

// secureURL reports whether a case's URL is https.
func (s *Server) secureURL(u string) bool {
	t, err := probes.Normalize(u, probes.DefaultPorts)
	return err == nil && t.URL.Scheme == "https"
}

// latestBrowser is the browser's view of the case's latest probe run, if
// it is stored.
func (st *caseState) latestBrowser() *wizard.Vantage {
	if st.latest == nil {
		return nil
	}
	for i := range st.views {
		if v := &st.views[i]; v.From == wizard.VantageBrowser && v.RunID == st.latest.ID {
			return v
		}
	}
	return nil
}

// maxVantageBody caps the body of a browser's result: a few short fields.
const maxVantageBody = 1 << 10

// handleVantage answers POST /c/{token}/vantage (run, result, ms, reason):
// what the visitor's browser saw of the case's URL, for probe run "run".
// result is answered, redirected, unreachable, timeout or skipped (with a
// reason). It
// is taken once per run (409 after), for the case's latest run only (409
// for an earlier one), and never against the person: a result that would
// change an answer already given is refused (409). 204 when stored.
func (s *Server) handleVantage(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxVantageBody)
	if err := r.ParseForm(); err != nil {
		s.Error(w, r, formError(err))
		return
	}
	v, err := browserVantage(r.PostForm.Get("run"), r.PostForm.Get("result"), r.PostForm.Get("ms"), r.PostForm.Get("reason"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	st, err := s.loadCase(r.Context(), chi.URLParam(r, "token"), false)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if !isReporter(r, st.c) {
		s.errorStatus(w, r, http.StatusForbidden, "Only the browser that reported this case adds its view of the site.")
		return
	}
	// The person's answers win over a result that comes late: if they
	// answered the question the browser's view answers, or went past it
	// on its account, the view would move the case from under them.
	if v.Reachable != nil {
		if st.latest != nil && st.latest.ID == v.RunID && st.latest.Report != nil && s.browserRefused(st.latest.Report) {
			// Only a skip is taken for a site browsers are not asked
			// to reach: a result would be made up, or came from a
			// request gatecheck should not have caused.
			s.Error(w, r, wizard.Errorf(wizard.ECONFLICT, "gatecheck does not ask browsers to reach this site's address, so it takes no result for it."))
			return
		}
	}
	if s.browserMoves(st, *v) {
		s.Error(w, r, wizard.Errorf(wizard.ECONFLICT, "This case already has your own answer about your browser; it stands."))
		return
	}
	if err := s.cfg.Store.AddVantage(r.Context(), st.c.ID, v); err != nil {
		s.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// browserVantage checks a browser's posted result and turns it into a
// view, with its detail in words.
func browserVantage(run, result, msText, reason string) (*wizard.Vantage, error) {
	runID, err := strconv.ParseInt(run, 10, 64)
	if err != nil || runID <= 0 {
		return nil, wizard.Errorf(wizard.EINVALID, "The result does not say which check of the site it was made for (run).")
	}
	ms := int64(-1)
	if msText != "" {
		if ms, err = strconv.ParseInt(msText, 10, 64); err != nil || ms < 0 || ms > 10*browserTimeout.Milliseconds() {
			return nil, wizard.Errorf(wizard.EINVALID, "The time the browser took (ms) must be a number of milliseconds up to %d.", 10*browserTimeout.Milliseconds())
		}
	}
	took := ""
	if ms >= 0 {
		took = fmt.Sprintf(" (after %d ms)", ms)
	}
	v := &wizard.Vantage{RunID: runID, From: wizard.VantageBrowser}
	switch result {
	case "answered":
		v.Reachable, v.Detail = new(true), "a server answered"+took
	case "redirected":
		v.Reachable, v.Detail = new(true), "a server answered with a redirect to another site"+took
	case "unreachable":
		v.Reachable, v.Detail = new(false), "could not connect"+took
	case "timeout":
		v.Reachable, v.Detail = new(false), fmt.Sprintf("no answer within %d s", int(browserTimeout.Seconds()))
	case "skipped":
		why, ok := skipReasons[reason]
		if !ok {
			return nil, wizard.Errorf(wizard.EINVALID, "A skipped check must say why (reason: mixed-content, address or unsupported).")
		}
		v.Detail = why
	default:
		return nil, wizard.Errorf(wizard.EINVALID, "The result must be answered, redirected, unreachable, timeout or skipped.")
	}
	return v, nil
}
