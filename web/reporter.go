package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatecheck/gatecheck/wizard"
)

// The browser that reported a case holds a secret in a cookie scoped to
// the case's link; the case keeps its hash. Only that browser records the
// "from your browser" view: a helpdesk agent or a colleague who opens the
// link later sees that view but never replaces it. A case made through the
// API has no reporter until the person who saw the error says, on its
// page, that this is their browser.

// reporterCookie is the cookie's name; its path is the case's link.
const reporterCookie = "gatecheck_reporter"

// reporterTTL is how long a reporter's browser keeps its cookie.
const reporterTTL = 90 * 24 * time.Hour

// newReporter returns a fresh secret and its hash.
func newReporter() (secret, hash string) {
	secret = rand.Text()
	return secret, hashReporter(secret)
}

func hashReporter(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// setReporter hands the browser its secret for case token.
func (s *Server) setReporter(w http.ResponseWriter, r *http.Request, token, secret string) {
	http.SetCookie(w, &http.Cookie{
		Name: reporterCookie, Value: secret, Path: "/c/" + token, HttpOnly: true, Secure: s.secureCookie(r),
		SameSite: http.SameSiteLaxMode, MaxAge: int(reporterTTL.Seconds()),
	})
}

// reporterKey is what the request's reporter cookie hashes to, or "".
func reporterKey(r *http.Request) string {
	ck, err := r.Cookie(reporterCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 128 {
		return ""
	}
	return hashReporter(ck.Value)
}

// isReporter reports whether the request comes from the browser that
// reported case c.
func isReporter(r *http.Request, c *wizard.Case) bool {
	key := reporterKey(r)
	return key != "" && c.ReporterHash != "" && subtle.ConstantTimeCompare([]byte(key), []byte(c.ReporterHash)) == 1
}

// handleClaimReporter answers POST /c/{token}/reporter: "this is my
// browser", for a case no browser reported (one made through the API, or
// before browsers were told apart). The browser gets the secret and checks
// the site from the case's page; a case that has a reporter already keeps
// it (409).
func (s *Server) handleClaimReporter(w http.ResponseWriter, r *http.Request) {
	c, err := s.cfg.Store.Case(r.Context(), chi.URLParam(r, "token"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if isReporter(r, c) {
		http.Redirect(w, r, "/c/"+c.Token, http.StatusSeeOther)
		return
	}
	secret, hash := newReporter()
	claimed, err := s.cfg.Store.ClaimReporter(r.Context(), c.ID, hash)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if !claimed {
		s.Error(w, r, wizard.Errorf(wizard.ECONFLICT, "Another browser already reported this case: its view of the site is the one kept."))
		return
	}
	s.setReporter(w, r, c.Token, secret)
	http.Redirect(w, r, "/c/"+c.Token, http.StatusSeeOther)
}
