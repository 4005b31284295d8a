package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ParseOrigin reads the address of a site's origin server as people give
// it (curl's --resolve, testssl's --ip): an IP address, IPv6 with or
// without brackets, with an optional port ("203.0.113.7",
// "203.0.113.7:8443", "2001:db8::1", "[2001:db8::1]:8443"). The port is
// zero when none was given. A name is refused: it would be looked up,
// and the point is to bypass what the name leads to.
func ParseOrigin(s string) (netip.AddrPort, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.AddrPort{}, errors.New("the origin is empty: give its IP address, like 203.0.113.7 or [2001:db8::1]:8443")
	}
	if len(s) > 100 {
		return netip.AddrPort{}, errors.New("the origin is too long to be an IP address")
	}
	bare := s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		bare = s[1 : len(s)-1]
	}
	if a, err := netip.ParseAddr(bare); err == nil {
		return checkOrigin(netip.AddrPortFrom(a, 0), s)
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("the origin %q has port 0: leave the port out or give a real one", s)
		}
		return checkOrigin(ap, s)
	}
	host := s
	if h, _, err := net.SplitHostPort(s); err == nil {
		host = h
	}
	if hasLetter(host) && !strings.Contains(host, ":") {
		return netip.AddrPort{}, fmt.Errorf("the origin must be an IP address, not a name (%q): gatecheck does not look it up, since the point is to bypass what the name leads to", clean(s))
	}
	return netip.AddrPort{}, fmt.Errorf("the origin %q is not an IP address (like 203.0.113.7, 203.0.113.7:8443 or [2001:db8::1]:8443)", clean(s))
}

func hasLetter(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' })
}

func checkOrigin(ap netip.AddrPort, s string) (netip.AddrPort, error) {
	if ap.Addr().Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("the origin %q names an interface zone: give a plain IP address", clean(s))
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// FormatOrigin writes an origin as ParseOrigin reads it.
func FormatOrigin(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return ""
	}
	if ap.Port() == 0 {
		return ap.Addr().String()
	}
	return ap.String()
}

// originPin sends every connection to one host to an origin address
// instead of where the host's name leads: what curl's --connect-to does.
type originPin struct {
	host string
	port int // the URL's port, which the origin's own port (if any) replaces
	to   netip.AddrPort
}

// address is where a dial to host:port goes under the pin, and whether
// the pin applies (it does to the URL's host only, on every port: a
// redirect to another host goes where its name leads).
func (o *originPin) address(host, port string) (string, bool) {
	if o == nil || !strings.EqualFold(strings.TrimSuffix(host, "."), strings.TrimSuffix(o.host, ".")) {
		return "", false
	}
	if o.to.Port() != 0 && port == strconv.Itoa(o.port) {
		port = strconv.Itoa(int(o.to.Port()))
	}
	return net.JoinHostPort(o.to.Addr().String(), port), true
}

// portFor is the port a connection to the URL's port reaches.
func (p *Prober) portFor(port int) int {
	if p.pin != nil && p.pin.to.Port() != 0 && port == p.pin.port {
		return int(p.pin.to.Port())
	}
	return port
}

// pinned is a copy of p whose connections to t's host all go to origin.
func (p *Prober) pinned(t *Target, origin netip.AddrPort) *Prober {
	q := *p
	q.pin = &originPin{host: t.Host, port: t.Port, to: origin}
	return &q
}

// RunOrigin is Run with the origin reached directly: every connection to
// the URL's host, on every scheme and port, is dialled to origin (its
// port, when it has one, replaces the URL's), with the Host header and
// the TLS server name unchanged, and the name is not looked up. The
// address guard applies to origin as to any address. A redirect to
// another host is followed where its name leads. The report's Origin
// says the origin was asked.
func (p *Prober) RunOrigin(ctx context.Context, rawURL string, origin netip.AddrPort, onCheck func(Check)) *Report {
	return p.run(ctx, rawURL, origin, onCheck)
}
