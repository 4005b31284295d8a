package probes

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"

	"code.dny.dev/ssrf"
)

// Guard refuses connections to addresses that are not on the public internet
// (loopback, private, link-local and metadata, multicast, reserved,
// documentation, and the IPv6 forms that embed them) unless an operator
// allowed their range explicitly. It decides at dial time, on the address
// actually dialled, which covers redirects and DNS rebinding.
type Guard struct {
	ssrf  *ssrf.Guardian
	allow []netip.Prefix
	// self are gatecheck's own listening addresses, refused whatever allow
	// says (a server allowed to probe loopback must not read its own
	// /metrics for a stranger); local are this machine's addresses, which
	// reach a listener on an unspecified address.
	self  []netip.AddrPort
	local []netip.Addr
}

// BlockedError reports that the guard refused an address.
type BlockedError struct {
	Addr   netip.Addr
	Reason string // the kind of range, in plain words
	// Self is set when the address is gatecheck's own listening address.
	Self bool
}

// Error names the kind of address but not the address itself: a stranger
// must not learn what an internal name resolves to.
func (e *BlockedError) Error() string {
	if e.Self {
		return "refused to connect: the address and port are gatecheck's own"
	}
	return fmt.Sprintf("refused to connect: the address is %s, not a public internet address", e.Reason)
}

// NewGuard returns a guard that refuses every non-public address except
// those inside allow.
func NewGuard(allow []netip.Prefix) *Guard {
	var v4, v6 []netip.Prefix
	for _, p := range allow {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	return &Guard{
		ssrf:  ssrf.New(ssrf.WithAnyPort(), ssrf.WithAllowedV4Prefixes(v4...), ssrf.WithAllowedV6Prefixes(v6...)),
		allow: allow,
	}
}

// RefuseSelf returns a copy of the guard that also refuses gatecheck's own
// listening addresses, whatever the allowed ranges say. An unspecified
// address (0.0.0.0 or ::) stands for every address of this machine on that
// port: loopback, and the interfaces' addresses as they are now.
func (g *Guard) RefuseSelf(listen ...netip.AddrPort) *Guard {
	c := *g
	c.self = nil
	for _, ap := range append(slices.Clip(g.self), listen...) {
		c.self = append(c.self, netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()))
	}
	if c.local == nil {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					c.local = append(c.local, p.Addr().Unmap().WithZone(""))
				}
			}
		}
	}
	return &c
}

// isSelf reports whether ap reaches one of gatecheck's own listeners.
func (g *Guard) isSelf(ap netip.AddrPort) bool {
	a := ap.Addr().Unmap().WithZone("")
	for _, s := range g.self {
		if s.Port() != ap.Port() {
			continue
		}
		switch {
		case a == s.Addr(), a.IsUnspecified(): // dialling 0.0.0.0 reaches this machine
			return true
		case s.Addr().IsUnspecified() && (a.IsLoopback() || slices.Contains(g.local, a)):
			return true
		}
	}
	return false
}

// CheckAddrPort is Check for a connection to a port: it also refuses
// gatecheck's own listening addresses.
func (g *Guard) CheckAddrPort(ap netip.AddrPort) error {
	if g.isSelf(ap) {
		return &BlockedError{Addr: ap.Addr(), Reason: "gatecheck's own address", Self: true}
	}
	return g.Check(ap.Addr())
}

// Allowed returns the ranges the operator opened.
func (g *Guard) Allowed() []netip.Prefix { return g.allow }

// Check returns a *BlockedError when addr may not be dialled.
func (g *Guard) Check(addr netip.Addr) error {
	if err := g.ssrf.SafeAddr(addr.WithZone("")); err != nil {
		return &BlockedError{Addr: addr, Reason: describeRange(addr)}
	}
	return nil
}

// Control is a net.Dialer Control function: it sees the address after DNS
// resolution, just before the connect system call.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("refused to dial over %s: only TCP is allowed", network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused to dial %q: %w", address, err)
	}
	return g.CheckAddrPort(ap)
}

// ParseNets parses operator-allowed ranges: CIDR prefixes or single
// addresses, each item possibly a comma-separated list (the form the
// GATECHECK_ALLOW_NETS variable takes).
func ParseNets(items ...string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range items {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if p, err := netip.ParsePrefix(s); err == nil {
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is neither a CIDR range nor an IP address", s)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}

// describeRange names the special-purpose range addr falls in, for messages.
// The decision itself is the ssrf package's; this only explains it.
func describeRange(a netip.Addr) string {
	for _, r := range namedRanges {
		if r.prefix.Contains(a) {
			return r.name
		}
	}
	if a.Is4In6() {
		return "an IPv4-mapped IPv6 address"
	}
	if a.Is6() && !a.IsGlobalUnicast() {
		return "a special-purpose IPv6 address"
	}
	return "a reserved address"
}

var namedRanges = func() []struct {
	prefix netip.Prefix
	name   string
} {
	list := []struct{ cidr, name string }{
		{"0.0.0.0/8", `a "this network" address`},
		{"10.0.0.0/8", "a private (RFC 1918) address"},
		{"100.64.0.0/10", "a carrier-grade NAT (shared) address"},
		{"127.0.0.0/8", "a loopback address"},
		{"169.254.169.254/32", "the cloud metadata service address"},
		{"169.254.0.0/16", "a link-local address"},
		{"172.16.0.0/12", "a private (RFC 1918) address"},
		{"192.0.0.0/24", "an IETF protocol address"},
		{"192.0.2.0/24", "a documentation address"},
		{"192.31.196.0/24", "an AS112 (DNS sink) address"},
		{"192.52.193.0/24", "an AMT (multicast tunnelling) address"},
		{"192.88.99.0/24", "a 6to4 relay address"},
		{"192.175.48.0/24", "an AS112 (DNS sink) address"},
		{"192.168.0.0/16", "a private (RFC 1918) address"},
		{"198.18.0.0/15", "a benchmarking address"},
		{"198.51.100.0/24", "a documentation address"},
		{"203.0.113.0/24", "a documentation address"},
		{"224.0.0.0/4", "a multicast address"},
		{"255.255.255.255/32", "the broadcast address"},
		{"240.0.0.0/4", "a reserved address"},
		{"::/128", "the unspecified IPv6 address"},
		{"::1/128", "the IPv6 loopback address"},
		{"::ffff:0:0/96", "an IPv4-mapped IPv6 address"},
		{"::/96", "an IPv4-compatible IPv6 address"},
		{"64:ff9b::/96", "a NAT64 address"},
		{"64:ff9b:1::/48", "a NAT64 address"},
		{"2001::/32", "a Teredo address"},
		{"2001:db8::/32", "a documentation address"},
		{"2001::/23", "an IETF protocol address"},
		{"2002::/16", "a 6to4 address"},
		{"2620:4f:8000::/48", "an AS112 (DNS sink) address"},
		{"3fff::/20", "a documentation address"},
		{"fc00::/7", "a unique local (private) IPv6 address"},
		{"fe80::/10", "a link-local IPv6 address"},
		{"ff00::/8", "a multicast address"},
	}
	out := make([]struct {
		prefix netip.Prefix
		name   string
	}, len(list))
	for i, r := range list {
		out[i].prefix = netip.MustParsePrefix(r.cidr)
		out[i].name = r.name
	}
	return out
}()

// isBlocked reports whether err (anywhere in its chain) is a guard refusal.
func isBlocked(err error) bool {
	var be *BlockedError
	return errors.As(err, &be) || errors.Is(err, ssrf.ErrProhibitedIP)
}
