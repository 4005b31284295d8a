package web

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/gatecheck/gatecheck/templates"
)

// hstsMaxAge is how long browsers keep to https once told: two years, the
// value hstspreload.org asks for. includeSubDomains is left out: the
// operator's other names are not gatecheck's to decide.
const hstsMaxAge = "max-age=63072000"

// securityHeaders sets what every answer carries: a Content-Security-Policy
// that allows no inline script or style, no framing, no sniffing, and no
// Referer (case links carry their token); and, when gatecheck is served
// over https (directly, behind a trusted proxy that says so, or with an
// https --base-url), Strict-Transport-Security.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if s.secure(r) {
			h.Set("Strict-Transport-Security", hstsMaxAge)
		}
		h.Set("Content-Security-Policy", contentPolicy(""))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// contentPolicy is the Content-Security-Policy of a page; connect, when
// set, is the one other origin the page's script may fetch (a case page
// whose script tries the case's site from the browser). It must be a
// checked origin (see cspOrigin).
func contentPolicy(connect string) string {
	if connect != "" {
		connect = " " + connect
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'" + connect + "; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
}

// limitBody caps request bodies at what limit says for each.
func limitBody(limit func(*http.Request) int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil {
				r.Body = http.MaxBytesReader(w, r.Body, limit(r))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// recoverer turns a panic into a plain 500 page and a log line with the
// stack; people never see a stack trace. (chi's middleware.Recoverer
// answers an empty 500 and prints the stack to standard error, outside the
// structured log.)
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic", "path", r.URL.Path, "value", fmt.Sprint(v), "stack", string(debug.Stack()))
				s.errorStatus(w, r, http.StatusInternalServerError, "Something went wrong on our side. Please try again.")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// logRequests logs and counts each request.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		took, status := time.Since(start), ww.Status()
		if status == 0 {
			status = http.StatusOK // nothing written: net/http answers 200
		}
		s.metrics.request(r, status, took)
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", status, "ms", took.Milliseconds())
	})
}

// clientIP is the requester's address: the peer, or, when the peer is a
// trusted proxy, the right-most X-Forwarded-For entry that is not one. It
// is the zero Addr, an unknown client, when that entry is not an address
// ("unknown", a name): such clients share one rate-limit bucket and are
// never taken for loopback or a trusted range.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := parseHop(hops[i])
		if err != nil {
			// A hop that is not an address was not written by a proxy
			// we trust: whoever sent it is an unknown client, never the
			// proxy itself (which may read /metrics and has a rate
			// limit of its own).
			return netip.Addr{}
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a
		}
	}
	return peer
}

// parseHop reads one X-Forwarded-For entry: an address, or an address
// with a port as some proxies write it ("203.0.113.9:4444", "[2001:db8::1]:80").
func parseHop(hop string) (netip.Addr, error) {
	hop = strings.TrimSpace(hop)
	if a, err := netip.ParseAddr(hop); err == nil {
		return a, nil
	}
	ap, err := netip.ParseAddrPort(hop)
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr(), nil
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// bucketOf is the rate-limit key of a client address: the address itself
// for IPv4, its /64 for IPv6, since one subscriber commonly holds a whole
// /64 and could otherwise take a fresh address for every request.
func bucketOf(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.Addr()
	}
	return a
}

// tooMany answers 429 with Retry-After: JSON to the API, and to people a
// page that says in plain words how long to wait.
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, what string) {
	secs := waitSeconds(wait)
	w.Header().Set("Retry-After", fmt.Sprint(secs))
	if k := apiKeyFrom(r.Context()); k != nil || isAPI(r) {
		from := "from your address"
		if k != nil {
			from = "with the API key " + k.Name
		}
		s.errorStatus(w, r, http.StatusTooManyRequests, fmt.Sprintf("Too many %s %s. Please wait %d seconds and try again.", what, from, secs))
		return
	}
	v := templates.ErrorView{Status: http.StatusTooManyRequests, Message: limitWords(what, secs)}
	if token := chi.URLParam(r, "token"); token != "" {
		v.Back, v.BackText = "/c/"+token, "Back to your case"
	}
	s.render(w, r, http.StatusTooManyRequests, templates.ErrorPage(s.meta(r, "Please wait a moment"), v))
}

// waitSeconds rounds a wait up to whole seconds, as Retry-After has it.
func waitSeconds(wait time.Duration) int {
	return max(1, int(wait.Seconds()+0.999))
}

// limitWords says to a person what the limit refused and when they can
// try again: "You started several checks in a minute; you can start
// another in 40 seconds."
func limitWords(what string, secs int) string {
	in := inWords(secs)
	switch what {
	case limitChecks:
		return "You started several checks in a minute; you can start another " + in + "."
	case limitSignIns:
		return "There were several sign-in attempts from your address in a minute; you can try again " + in + "."
	}
	return "There were several requests from your address in a minute; you can try again " + in + "."
}

// inWords is a wait as people say it: "in 40 seconds", "in 2 minutes".
func inWords(secs int) string {
	switch {
	case secs <= 1:
		return "in a second"
	case secs < 120:
		return fmt.Sprintf("in %d seconds", secs)
	}
	return fmt.Sprintf("in %d minutes", (secs+59)/60)
}

// The limits' names, as limitedError and tooMany take them.
const (
	limitChecks  = "checks started"
	limitSignIns = "sign-in attempts"
)
