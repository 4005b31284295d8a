package probes

import (
	"net/netip"
	"slices"
	"testing"

	"code.dny.dev/ssrf"
)

// TestGuardRangeLabels holds the guard's words to the ssrf package's list:
// every range it denies is named in refusals (so nobody is told "a
// reserved address" for a range with a better name), and every range
// named is one the guard refuses.
func TestGuardRangeLabels(t *testing.T) {
	denied := slices.Concat(ssrf.IPv4DeniedPrefixes, ssrf.IPv6DeniedPrefixes, []netip.Prefix{ssrf.IPv6NAT64Prefix})
	for _, p := range denied {
		if !slices.ContainsFunc(namedRanges, func(r struct {
			prefix netip.Prefix
			name   string
		}) bool {
			return r.prefix.Bits() <= p.Bits() && r.prefix.Contains(p.Addr())
		}) {
			t.Errorf("the ssrf package denies %s, which the guard's refusals do not name", p)
		}
	}
	g := NewGuard(nil)
	for _, r := range namedRanges {
		if err := g.Check(r.prefix.Addr()); err == nil {
			t.Errorf("the guard names %s (%s) but lets it through", r.prefix, r.name)
		}
	}
}
