package probes

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Backend is one server behind a load balancer, as its answers name it,
// and how many of its answers worked and failed.
type Backend struct {
	// ID is the backend's identity as the load balancer gave it: a
	// header's value, or the backend id a sticky cookie carries (never the
	// cookie's value as such; see backendSignals).
	ID string `json:"id"`
	// Source is the header or cookie name the identity came from.
	Source string `json:"source"`
	OK     int    `json:"ok"`
	Failed int    `json:"failed"`
}

// backendSignal is one way an answer names the backend that produced it.
type backendSignal struct {
	// name is the header's canonical name, or the cookie's name (its
	// prefix when prefix is set: BIG-IP names the cookie after the pool).
	name   string
	cookie bool
	prefix bool
	// id turns the header's or the cookie's value into the backend id, or
	// "" when the value names no backend.
	id func(v string) string
	// examples are two values as a load balancer sends them and the ids
	// they stand for: the guard test serves them from a real balancer on
	// loopback, so a signal added here is tested.
	examples [2][2]string
}

// backendSignals is the one table of backend identities, in the order
// they are trusted when an answer carries several. Cookie values are
// never kept whole: only the part a load balancer documents as the
// server's name or address, or a short digest for opaque ones.
var backendSignals = []backendSignal{
	{name: "X-Served-By", id: plainID, examples: [2][2]string{{"10.0.0.5:8080", "10.0.0.5:8080"}, {"cache-ams21", "cache-ams21"}}},
	{name: "X-Backend-Server", id: plainID, examples: [2][2]string{{"app-1", "app-1"}, {"app-2", "app-2"}}},
	{name: "X-Upstream", id: plainID, examples: [2][2]string{{"10.0.0.5:8080", "10.0.0.5:8080"}, {"10.0.0.6:8080", "10.0.0.6:8080"}}},
	{name: "X-Server", id: plainID, examples: [2][2]string{{"web01", "web01"}, {"web02", "web02"}}},
	{name: "Server-Timing", id: serverTimingID, examples: [2][2]string{
		{`cdn-cache;desc=MISS, backend;desc="10.0.0.5:8080";dur=12`, "10.0.0.5:8080"}, {`upstream;desc=app-2`, "app-2"}}},
	// HAProxy's "cookie SERVERID insert|prefix": the server's cookie
	// name, before the "~" of prefix mode.
	{name: "SERVERID", cookie: true, id: beforeAny("~|"), examples: [2][2]string{{"s1", "s1"}, {"s2~a1b2c3", "s2"}}},
	// Apache mod_proxy_balancer's ROUTEID: ".route", the route after the dot.
	{name: "ROUTEID", cookie: true, id: afterLast("."), examples: [2][2]string{{".1", "1"}, {".2", "2"}}},
	// F5 BIG-IP's persistence cookie encodes the pool member's IPv4
	// address and port.
	{name: "BIGipServer", cookie: true, prefix: true, id: bigipMember, examples: [2][2]string{
		{"1677787402.36895.0000", "10.1.1.100:8080"}, {"1694630154.36895.0000", "10.1.2.101:8080"}}},
	// AWS's ALB stickiness cookies are encrypted: only a digest can stand
	// for the target, and only as long as the balancer keeps the value.
	{name: "AWSALB", cookie: true, id: digestID, examples: [2][2]string{{"qTZdZUkBxx7h+xTYA0=", digestID("qTZdZUkBxx7h+xTYA0=")}, {"aB7YzRf9y2=", digestID("aB7YzRf9y2=")}}},
}

func plainID(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	if r := []rune(v); len(r) > 64 {
		v = string(r[:64]) + "…"
	}
	return sanitizeHeader(v)
}

// serverTimingID is the desc of a Server-Timing metric named backend,
// upstream, origin or server.
func serverTimingID(v string) string {
	for _, metric := range strings.Split(v, ",") {
		parts := strings.Split(metric, ";")
		switch strings.ToLower(strings.TrimSpace(parts[0])) {
		case "backend", "upstream", "origin", "server":
		default:
			continue
		}
		for _, p := range parts[1:] {
			if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "desc") {
				return plainID(strings.Trim(val, `"`))
			}
		}
	}
	return ""
}

func beforeAny(seps string) func(string) string {
	return func(v string) string {
		if i := strings.IndexAny(v, seps); i >= 0 {
			v = v[:i]
		}
		return plainID(v)
	}
}

func afterLast(sep string) func(string) string {
	return func(v string) string {
		if i := strings.LastIndex(v, sep); i >= 0 {
			v = v[i+len(sep):]
		}
		return plainID(v)
	}
}

// bigipMember decodes "<ip as little-endian uint32>.<port byte-swapped>.0000"
// into the pool member's address; other encodings get a digest.
func bigipMember(v string) string {
	f := strings.Split(v, ".")
	if len(f) == 3 {
		ip, err1 := strconv.ParseUint(f[0], 10, 32)
		port, err2 := strconv.ParseUint(f[1], 10, 16)
		if err1 == nil && err2 == nil {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], uint32(ip))
			p := uint16(port)>>8 | uint16(port)<<8
			return netip.AddrPortFrom(netip.AddrFrom4(b), p).String()
		}
	}
	return digestID(v)
}

// digestID stands for an opaque value without quoting it.
func digestID(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "#" + hex.EncodeToString(sum[:4])
}

// backendOf finds the backend an answer names, by the first signal of the
// table it carries.
func backendOf(h http.Header) (Backend, bool) {
	if h == nil {
		return Backend{}, false
	}
	for _, s := range backendSignals {
		if !s.cookie {
			if v := h.Get(s.name); v != "" {
				if id := s.id(v); id != "" {
					return Backend{ID: id, Source: s.name}, true
				}
			}
			continue
		}
		for _, sc := range h.Values("Set-Cookie") {
			nv, _, _ := strings.Cut(sc, ";")
			name, val, ok := strings.Cut(strings.TrimSpace(nv), "=")
			if !ok || val == "" {
				continue
			}
			if name == s.name || (s.prefix && strings.HasPrefix(name, s.name)) {
				if id := s.id(strings.Trim(val, `"`)); id != "" {
					return Backend{ID: id, Source: name}, true
				}
			}
		}
	}
	return Backend{}, false
}

// countBackends tallies the backends named by every answer of the
// report: the main request, the samples and the addresses.
func countBackends(r *Report) []Backend {
	var out []Backend
	add := func(h *Hop, status int, code Code) {
		if h == nil || status == 0 {
			return
		}
		b, ok := backendOf(h.Header)
		if !ok {
			return
		}
		i := 0
		for i < len(out) && (out[i].ID != b.ID || out[i].Source != b.Source) {
			i++
		}
		if i == len(out) {
			out = append(out, b)
		}
		if code == Healthy {
			out[i].OK++
		} else {
			out[i].Failed++
		}
	}
	if h := r.HTTP.Final(); h != nil && r.HTTP.Answered() {
		add(h, h.Status, responseCode(h.Status, fingerprint(h.Status, h.Header, h.Body), h.Body))
	}
	for _, s := range r.Samples {
		if s.hop != nil && s.Status != 0 {
			add(s.hop, s.Status, responseCode(s.Status, fingerprint(s.Status, s.hop.Header, s.hop.Body), s.hop.Body))
		}
	}
	for _, a := range r.Addresses {
		if a.Status != 0 && !a.main {
			add(a.hop, a.Status, a.Verdict)
		}
	}
	return out
}

// failingBackends says, when failures came from some backends while
// others only answered normally, which: "all 3 failures came from
// 10.0.0.5:8080 (X-Served-By)". It is "" when the backends do not tell
// failures apart.
func failingBackends(bs []Backend) string {
	var failing []Backend
	failed, clean := 0, 0
	for _, b := range bs {
		switch {
		case b.Failed > 0:
			failing = append(failing, b)
			failed += b.Failed
		case b.OK > 0:
			clean++
		}
	}
	if len(failing) == 0 || clean == 0 {
		return ""
	}
	others := fmt.Sprintf("; %d other %s answered normally", clean, plural(clean, "backend", "backends"))
	if len(failing) == 1 {
		b := failing[0]
		return fmt.Sprintf("%s came from %s (%s)", allOf(failed, "failure", "failures"), b.ID, b.Source) + others
	}
	ids := make([]string, len(failing))
	for i, b := range failing {
		ids[i] = b.ID + " (" + b.Source + ")"
	}
	return fmt.Sprintf("the %d failures came from %d of %d backends: %s", failed, len(failing), len(bs), joinMax(ids, 4)) + others
}

// allOf counts things as people do: "the failure", "both failures",
// "all 3 failures".
func allOf(n int, one, many string) string {
	switch n {
	case 1:
		return "the " + one
	case 2:
		return "both " + many
	}
	return fmt.Sprintf("all %d %s", n, many)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
