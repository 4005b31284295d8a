package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DNS as an expert reads it: beside the operating system's answer, the
// recursive resolver is asked directly (DNSSEC records requested, so that
// it says whether it validated, and Extended DNS Errors read), and the
// name's own servers are asked without recursion and compared with it.
//
// Bounds: one resolver question per record type (A, AAAA, and A again
// with checking disabled after a SERVFAIL); for the authoritative check at
// most maxZoneSteps NS questions to find the zone, maxNS servers, each
// asked A and AAAA, and at most maxReferrals delegations followed, all
// within one DNSTimeout.
//
// Trust: the resolver is the operator's (--resolver, or the system's
// /etc/resolv.conf), so the guard does not apply to it; the name's servers
// are whatever the name's owner says, so they go through the guard like
// any address: a non-public one is not asked unless --allow-net covers it,
// and is withheld from the report.

const (
	maxZoneSteps = 6
	maxNS        = 4
	maxReferrals = 3
)

// queryTimeout is how long one DNS question may take.
func (p *Prober) queryTimeout() time.Duration { return min(p.cfg.DNSTimeout, 1500*time.Millisecond) }

// dnsServers are the resolvers asked directly: the operator's, or the
// system's.
func (p *Prober) dnsServers() []string {
	if len(p.cfg.DNSServers) > 0 {
		return p.cfg.DNSServers
	}
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out
}

// exchange sends m to server over UDP (TCP when the answer is truncated).
// guarded servers (the name's own) go through the guard first: a refused
// one is sent nothing.
func (p *Prober) exchange(ctx context.Context, server string, m *dns.Msg, guarded bool) (*dns.Msg, error) {
	ap, err := netip.ParseAddrPort(server)
	if err != nil {
		return nil, fmt.Errorf("%q is not an address and port", server)
	}
	if guarded {
		if err := p.guard.CheckAddrPort(ap); err != nil {
			return nil, err
		}
	}
	if p.afterGuard != nil {
		if err := p.afterGuard("udp", server); err != nil {
			return nil, err
		}
	}
	c := &dns.Client{Timeout: p.queryTimeout()}
	in, _, err := c.ExchangeContext(ctx, m, server)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, m, server)
	}
	return in, err
}

// question builds a query with EDNS0 (so that servers can send Extended
// DNS Errors); do asks for DNSSEC records, cd disables checking.
func question(name string, qtype uint16, rd, do, cd bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired, m.CheckingDisabled = rd, cd
	m.SetEdns0(1232, do)
	return m
}

// resolverView is the resolver's direct answers for a name.
type resolverView struct {
	server string
	view   ResolverView
	cnames []string
	last   string // the name the chain ends at
	dnssec string
	ede    []ExtendedError
}

func (v *resolverView) answered() bool {
	for _, a := range v.view.Answers {
		if a.Rcode != "" {
			return true
		}
	}
	return false
}

// final is the name the authoritative check asks: the end of the CNAME
// chain when there is one.
func (v *resolverView) final(host string) string {
	if v != nil && v.last != "" {
		return v.last
	}
	return host
}

// askResolver asks the resolvers in turn for host's A records, and the one
// that answers for its AAAA records too; after a SERVFAIL, the A records
// again with checking disabled (CD): an answer then means the resolver
// fails only because DNSSEC validation fails.
func (p *Prober) askResolver(ctx context.Context, host string) *resolverView {
	source := "system"
	if p.cfg.ResolverAddr != "" {
		source = "flag"
	}
	for _, s := range p.dnsServers() {
		v := &resolverView{server: s, view: ResolverView{Source: source}}
		if ap, err := netip.ParseAddrPort(s); err == nil && p.guard.Check(ap.Addr().Unmap()) == nil {
			v.view.Address = s
		}
		var answers [2]DNSAnswer
		var msgs [2]*dns.Msg
		var wg sync.WaitGroup
		for i, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			wg.Go(func() { answers[i], msgs[i] = p.askOne(ctx, s, host, qt, false) })
		}
		wg.Wait()
		if answers[0].Rcode == "" && answers[1].Rcode == "" {
			continue // this one did not answer: the next
		}
		v.view.Answers = answers[:]
		servfail := false
		for i, m := range msgs {
			if m == nil {
				continue
			}
			v.ede = append(v.ede, edeOf(m, "resolver")...)
			if m.Rcode == dns.RcodeServerFailure {
				servfail = true
			}
			if i == 0 {
				v.cnames, v.last = chainOf(m, host)
			}
			switch {
			case m.Rcode != dns.RcodeSuccess:
			case m.AuthenticatedData:
				v.dnssec = "secure"
			case v.dnssec == "":
				v.dnssec = "unvalidated"
			}
		}
		if servfail {
			a, m := p.askOne(ctx, s, host, dns.TypeA, true)
			v.view.Answers = append(v.view.Answers, a)
			if m != nil {
				v.ede = append(v.ede, edeOf(m, "resolver")...)
				if m.Rcode == dns.RcodeSuccess && len(addressesOf(m)) > 0 {
					v.dnssec = "bogus"
				}
			}
		}
		v.ede = dedupEDE(v.ede)
		return v
	}
	return nil
}

// askOne asks the resolver s one question, recursion desired, DNSSEC
// records requested.
func (p *Prober) askOne(ctx context.Context, s, host string, qtype uint16, cd bool) (DNSAnswer, *dns.Msg) {
	start := time.Now()
	a := DNSAnswer{Type: dns.TypeToString[qtype], CheckingDisabled: cd}
	m, err := p.exchange(ctx, s, question(host, qtype, true, true, cd), false)
	a.DurationMS = ms(time.Since(start))
	if err != nil {
		a.Error = plainError(err)
		return a, nil
	}
	a.Rcode = dns.RcodeToString[m.Rcode]
	a.Authenticated = m.AuthenticatedData
	a.Addresses, a.Withheld = p.shown(addressesOf(m))
	return a, m
}

// shown splits addresses into those a report may show and a count of the
// non-public ones, withheld as the target's are.
func (p *Prober) shown(addrs []netip.Addr) ([]string, int) {
	var out []string
	withheld := 0
	for _, a := range addrs {
		if p.guard.Check(a) != nil {
			withheld++
			continue
		}
		out = append(out, a.String())
	}
	return out, withheld
}

// addressesOf returns the A and AAAA records of an answer.
func addressesOf(m *dns.Msg) []netip.Addr {
	var out []netip.Addr
	for _, rr := range m.Answer {
		var ip net.IP
		switch r := rr.(type) {
		case *dns.A:
			ip = r.A
		case *dns.AAAA:
			ip = r.AAAA
		default:
			continue
		}
		if a, ok := netip.AddrFromSlice(ip); ok && !slices.Contains(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// chainOf returns the CNAME records of an answer in order, and the name
// the chain ends at ("" without a chain).
func chainOf(m *dns.Msg, host string) (chain []string, last string) {
	cur := dns.Fqdn(host)
	for range 10 {
		next := ""
		for _, rr := range m.Answer {
			if cn, ok := rr.(*dns.CNAME); ok && strings.EqualFold(cn.Hdr.Name, cur) {
				next = cn.Target
			}
		}
		if next == "" {
			break
		}
		chain = append(chain, clean(strings.TrimSuffix(cur, ".")+" → "+strings.TrimSuffix(next, ".")))
		cur, last = next, strings.TrimSuffix(next, ".")
	}
	return chain, last
}

// edeOf returns the Extended DNS Errors of a message, from its sender.
func edeOf(m *dns.Msg, from string) []ExtendedError {
	opt := m.IsEdns0()
	if opt == nil {
		return nil
	}
	var out []ExtendedError
	for _, o := range opt.Option {
		e, ok := o.(*dns.EDNS0_EDE)
		if !ok {
			continue
		}
		name, known := dns.ExtendedErrorCodeToString[e.InfoCode]
		if !known {
			name = "code " + strconv.Itoa(int(e.InfoCode))
		}
		out = append(out, ExtendedError{Code: e.InfoCode, Name: name, Text: sanitizeHeader(e.ExtraText), From: clean(from)})
		if len(out) == 4 {
			break
		}
	}
	return out
}

func dedupEDE(es []ExtendedError) []ExtendedError {
	var out []ExtendedError
	for _, e := range es {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// nsTarget is one of a zone's servers: its name and the address asked.
type nsTarget struct {
	name string
	addr netip.Addr
}

// authoritative asks name of its own servers, without recursion, through
// the resolver server for the zone's servers, and compares their answers
// with resolved (the addresses the lookup gave, nil when it failed).
//
// A name the resolver says does not exist (notFound) whose zone is a
// top-level domain is not asked about: a mistyped domain would otherwise
// cost the registry's servers questions for nothing.
func (p *Prober) authoritative(ctx context.Context, server, name string, resolved []netip.Addr, notFound bool) *Authoritative {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DNSTimeout)
	defer cancel()
	a := &Authoritative{Name: name, Servers: []AuthServer{}}
	zone, ns, glue := p.findZone(ctx, server, name)
	switch {
	case zone == "":
		a.Note = "the name's servers could not be found"
		return a
	case notFound && dns.CountLabel(zone) <= 1:
		a.Zone, a.Note = strings.TrimSuffix(zone, "."), "the name's domain is not registered under "+strings.TrimSuffix(zone, ".")+": its servers were not asked"
		return a
	}
	var answers []authAnswer
	for range maxReferrals + 1 {
		a.Zone = strings.TrimSuffix(zone, ".")
		targets := p.nsTargets(ctx, server, ns, glue)
		answers = p.askServers(ctx, targets, zone, name, dns.TypeA)
		// A referral: the zone is delegated further down; ask there.
		var ref *authAnswer
		for i := range answers {
			if answers[i].referral != "" {
				ref = &answers[i]
				break
			}
		}
		if ref == nil {
			break
		}
		zone, ns, glue = ref.referral, ref.ns, ref.glue
		answers = nil
	}
	if answers == nil {
		a.Note = "the name is delegated too many times over"
		return a
	}
	// The servers that answered A are asked AAAA too.
	var again []nsTarget
	var firstA []netip.Addr // the first such server's A records
	for _, an := range answers {
		if an.server.Outcome == "answered" && an.server.Alias == "" {
			if again == nil {
				firstA = an.addrs
			}
			again = append(again, an.target)
		}
	}
	for _, an6 := range p.askServers(ctx, again, zone, name, dns.TypeAAAA) {
		for i := range answers {
			if answers[i].target == an6.target && an6.server.Outcome == "answered" {
				answers[i].addrs = append(answers[i].addrs, an6.addrs...)
				answers[i].server.Addresses, _ = p.shown(answers[i].addrs)
				answers[i].ede = append(answers[i].ede, an6.ede...)
			}
		}
	}
	p.compare(a, answers, resolved)
	if len(a.stale) > 0 && len(again) > 0 {
		// Servers that hand out a different address each time (a
		// rotation over a pool, as large sites' do) differ from any
		// resolver without anything being wrong: ask one again.
		if re := p.askServers(ctx, again[:1], zone, name, dns.TypeA); re[0].server.Outcome == "answered" && !sameAddrs(re[0].addrs, firstA) {
			a.Disagree, a.Stale, a.Missing, a.Withheld, a.stale, a.missing = false, nil, nil, 0, nil, nil
			a.Note = "the name's servers give a different answer each time (a rotation): nothing compared"
		}
	}
	return a
}

// sameAddrs reports whether a and b hold the same addresses.
func sameAddrs(a, b []netip.Addr) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(x netip.Addr) bool { return !slices.Contains(b, x) })
}

// authAnswer is one server's answer, with what the comparison needs.
type authAnswer struct {
	target nsTarget
	server AuthServer
	addrs  []netip.Addr
	ede    []ExtendedError
	// referral is the zone a non-authoritative answer delegates to, with
	// its servers and their addresses.
	referral string
	ns       []string
	glue     map[string][]netip.Addr
}

// findZone asks the resolver for the NS records of name, then of its
// parents, until one has them: the zone name belongs to (or the nearest
// one whose servers the resolver can name, when name's own fail). A
// negative answer's SOA names the zone at once.
func (p *Prober) findZone(ctx context.Context, server, name string) (zone string, ns []string, glue map[string][]netip.Addr) {
	cur := dns.Fqdn(name)
	for range maxZoneSteps {
		if cur == "." || ctx.Err() != nil {
			return "", nil, nil
		}
		m, err := p.exchange(ctx, server, question(cur, dns.TypeNS, true, false, true), false)
		if err == nil {
			for _, rr := range m.Answer {
				if r, ok := rr.(*dns.NS); ok && strings.EqualFold(r.Hdr.Name, cur) {
					ns = append(ns, r.Ns)
				}
			}
			if len(ns) > 0 && m.Rcode == dns.RcodeSuccess {
				return cur, ns, glueOf(m)
			}
			if soa := soaOf(m); soa != "" && !strings.EqualFold(soa, cur) && dns.IsSubDomain(soa, cur) {
				cur = soa
				continue
			}
		}
		off, end := dns.NextLabel(cur, 0)
		if end {
			return "", nil, nil
		}
		cur = cur[off:]
	}
	return "", nil, nil
}

func soaOf(m *dns.Msg) string {
	for _, rr := range m.Ns {
		if r, ok := rr.(*dns.SOA); ok {
			return r.Hdr.Name
		}
	}
	return ""
}

// glueOf returns the addresses an answer's additional section gives.
func glueOf(m *dns.Msg) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, rr := range m.Extra {
		name := strings.ToLower(rr.Header().Name)
		switch r := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(r.A); ok {
				out[name] = append(out[name], a.Unmap())
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(r.AAAA); ok {
				out[name] = append(out[name], a.Unmap())
			}
		}
	}
	return out
}

// nsTargets gives each of the first maxNS servers (by name) one address:
// from the glue, else asked of the resolver (A, then AAAA). A server whose
// name has no address has an invalid one.
func (p *Prober) nsTargets(ctx context.Context, server string, ns []string, glue map[string][]netip.Addr) []nsTarget {
	ns = slices.Clone(ns)
	for i := range ns {
		ns[i] = strings.ToLower(dns.Fqdn(ns[i]))
	}
	slices.Sort(ns)
	ns = slices.Compact(ns)
	if len(ns) > maxNS {
		ns = ns[:maxNS]
	}
	out := make([]nsTarget, len(ns))
	var wg sync.WaitGroup
	for i, n := range ns {
		out[i].name = strings.TrimSuffix(n, ".")
		if g := glue[n]; len(g) > 0 {
			out[i].addr = g[0]
			continue
		}
		wg.Go(func() {
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
				m, err := p.exchange(ctx, server, question(n, qt, true, false, true), false)
				if err != nil {
					return
				}
				if as := addressesOf(m); len(as) > 0 {
					out[i].addr = as[0]
					return
				}
			}
		})
	}
	wg.Wait()
	return out
}

// askServers asks each target, a server of zone, for name's records of
// type qtype, at once.
func (p *Prober) askServers(ctx context.Context, targets []nsTarget, zone, name string, qtype uint16) []authAnswer {
	out := make([]authAnswer, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		out[i] = authAnswer{target: t, server: AuthServer{Name: clean(t.name)}}
		if !t.addr.IsValid() {
			out[i].server.Outcome = "unresolved"
			continue
		}
		addr := netip.AddrPortFrom(t.addr, uint16(p.cfg.DNSPort))
		if err := p.guard.CheckAddrPort(addr); err != nil {
			out[i].server.Outcome = "withheld"
			continue
		}
		out[i].server.Address = addr.String()
		wg.Go(func() { p.askServer(ctx, &out[i], zone, name, qtype) })
	}
	wg.Wait()
	return out
}

// askServer asks one of zone's servers for name, without recursion, and
// classes its answer. Only a referral down from zone is one: a referral
// up (to the root, say) is the mark of a server not set up for the zone.
func (p *Prober) askServer(ctx context.Context, an *authAnswer, zone, name string, qtype uint16) {
	start := time.Now()
	s := &an.server
	m, err := p.exchange(ctx, s.Address, question(name, qtype, false, false, false), true)
	s.DurationMS = ms(time.Since(start))
	if err != nil {
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
			s.Outcome = "timeout"
		case isBlocked(err):
			s.Outcome, s.Address = "withheld", ""
			return
		default:
			s.Outcome = "unreachable"
		}
		s.Error = plainError(err)
		return
	}
	an.ede = edeOf(m, s.Name)
	switch m.Rcode {
	case dns.RcodeRefused:
		s.Outcome = "refused"
		return
	case dns.RcodeServerFailure:
		s.Outcome = "servfail"
		return
	case dns.RcodeNameError:
		if m.Authoritative {
			s.Outcome = "nxdomain"
			return
		}
	case dns.RcodeSuccess:
		if m.Authoritative {
			s.Outcome = "answered"
			an.addrs = addressesOf(m)
			s.Addresses, _ = p.shown(an.addrs)
			if _, last := chainOf(m, name); last != "" && len(an.addrs) == 0 {
				s.Alias = clean(last)
			}
			return
		}
		// A referral to a zone below the one asked, above or at name.
		var ns []string
		child := ""
		for _, rr := range m.Ns {
			if r, ok := rr.(*dns.NS); ok && dns.IsSubDomain(r.Hdr.Name, dns.Fqdn(name)) &&
				dns.IsSubDomain(zone, r.Hdr.Name) && !strings.EqualFold(r.Hdr.Name, zone) {
				child = strings.ToLower(r.Hdr.Name)
				ns = append(ns, r.Ns)
			}
		}
		if len(ns) > 0 {
			s.Outcome = "referral"
			an.referral, an.ns, an.glue = child, ns, glueOf(m)
			return
		}
	}
	s.Outcome = "not_authoritative"
}

// compare fills a from the servers' answers: each server's, the addresses
// the resolver gives that none of them does (stale) and the reverse
// (missing), and whether the delegation is lame.
func (p *Prober) compare(a *Authoritative, answers []authAnswer, resolved []netip.Addr) {
	var auth []netip.Addr
	answered, failed, timedOut, alias := 0, 0, 0, false
	for _, an := range answers {
		a.Servers = append(a.Servers, an.server)
		a.ede = append(a.ede, an.ede...)
		switch an.server.Outcome {
		case "answered", "nxdomain":
			answered++
			alias = alias || an.server.Alias != ""
			for _, x := range an.addrs {
				if !slices.Contains(auth, x) {
					auth = append(auth, x)
				}
			}
		case "withheld":
		case "timeout":
			timedOut++
		default:
			failed++
		}
	}
	a.ede = dedupEDE(a.ede)
	switch {
	case answered == 0 && failed == 0 && timedOut == 0:
		a.Note = "the name's servers are not on public addresses: not asked"
		return
	case answered == 0 && failed == 0:
		// Every server silent while the resolver answers may be this
		// network not letting gatecheck ask them: not called lame unless
		// the lookup failed too.
		a.Lame = resolved == nil
		if !a.Lame {
			a.Note = "none of the name's servers answered in time: nothing compared"
		}
		return
	case answered == 0:
		a.Lame = true
		return
	case alias:
		a.Note = "the name's servers answer with an alias: nothing compared"
		return
	}
	for _, x := range resolved {
		if !slices.Contains(auth, x) {
			a.stale = append(a.stale, x)
		}
	}
	for _, x := range auth {
		if !slices.Contains(resolved, x) {
			a.missing = append(a.missing, x)
		}
	}
	a.Disagree = len(a.stale) > 0 || len(a.missing) > 0
	var w1, w2 int
	a.Stale, w1 = p.shown(a.stale)
	a.Missing, w2 = p.shown(a.missing)
	a.Withheld = w1 + w2
}

// runAuthoritative asks the name's own servers, beside the other probes,
// once the lookup has given addresses.
func (p *Prober) runAuthoritative(ctx context.Context, d *diagnosis) {
	r := d.report
	if r.DNS == nil || r.DNS.server == "" {
		return
	}
	start := time.Now()
	a := p.authoritative(ctx, r.DNS.server, r.DNS.final, d.resolved, false)
	// Do the addresses only the name's servers give take connections?
	// Connecting is enough to tell a stale record from servers that
	// answer differently by location or rotation, where both fail alike.
	for _, x := range a.missing[:min(len(a.missing), 2)] {
		if p.probeTCP(ctx, x, d.target.Port).Outcome == "connected" {
			a.reachable = append(a.reachable, x)
		}
	}
	a.Reachable, _ = p.shown(a.reachable)
	r.DNS.Authoritative = a
	r.DNS.EDE = dedupEDE(append(r.DNS.EDE, a.ede...))
	c := authCheck(a)
	c.DurationMS = ms(time.Since(start))
	d.rec.addNth(c, 1)
}

// authCheck is the authoritative comparison as a check.
func authCheck(a *Authoritative) Check {
	c := Check{Kind: ProbeDNS, Name: "dns (authoritative)", Status: StatusOK}
	switch {
	case a.Note != "":
		c.Status, c.Detail = StatusSkip, a.Note
	case a.Lame:
		c.Status, c.Detail = StatusFail, "none of the name's servers answers for it: "+serversSaid(a)
	case a.Disagree:
		c.Status, c.Detail = StatusWarn, disagreement(a)
	default:
		c.Detail = "the name's servers (" + a.Zone + ") agree with the resolver: " + serversSaid(a)
		if bad := failingServers(a); bad != "" {
			c.Status, c.Detail = StatusWarn, c.Detail+"; "+bad
		}
	}
	return c
}

// serversSaid lists each server and its answer.
func serversSaid(a *Authoritative) string {
	var parts []string
	for _, s := range a.Servers {
		what := s.Outcome
		if s.Outcome == "answered" {
			what = or(strings.Join(s.Addresses, ", "), "no address")
		}
		parts = append(parts, s.Name+" ("+what+")")
	}
	return joinMax(parts, maxNS)
}

// failingServers names the servers that do not answer for the name, when
// others do.
func failingServers(a *Authoritative) string {
	var bad []string
	for _, s := range a.Servers {
		switch s.Outcome {
		case "answered", "nxdomain", "withheld":
		default:
			bad = append(bad, s.Name+" ("+strings.ReplaceAll(s.Outcome, "_", " ")+")")
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d of the name's servers do not answer for it: %s", len(bad), len(a.Servers), strings.Join(bad, ", "))
}

// disagreement says how the resolver and the name's servers differ.
func disagreement(a *Authoritative) string {
	s := "the resolver and the name's own servers (" + a.Zone + ") disagree"
	if len(a.Stale) > 0 {
		s += "; only the resolver gives " + strings.Join(a.Stale, ", ")
	}
	if len(a.Missing) > 0 {
		s += "; only the name's servers give " + strings.Join(a.Missing, ", ")
	}
	if a.Withheld > 0 {
		s += fmt.Sprintf(" (and %d non-public addresses, withheld)", a.Withheld)
	}
	return s + ": " + serversSaid(a)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// edeSaid is the Extended DNS Errors for a summary.
func edeSaid(es []ExtendedError) string {
	var parts []string
	for _, e := range es {
		s := e.From + " says " + e.Name
		if e.Text != "" {
			s += " (" + e.Text + ")"
		}
		parts = append(parts, s)
	}
	return joinMax(parts, 3)
}

// dnsVerdict is the verdict on a name that gave no address.
func dnsVerdict(d *DNSResult) Verdict {
	v := dnsNoAddress(d)
	if len(d.EDE) > 0 {
		v.Summary = clean(v.Summary + "; " + edeSaid(d.EDE))
	}
	return v
}

func dnsNoAddress(d *DNSResult) Verdict {
	a := d.Authoritative
	switch {
	case d.DNSSEC == "bogus":
		return newVerdict(DNSSECFailure, LayerDNS, fmt.Sprintf("the resolver fails to look up %s (SERVFAIL) but answers with DNSSEC checking disabled: "+
			"the name's DNSSEC signatures do not validate", d.Name))
	case a != nil && a.Disagree && d.NotFound:
		return newVerdict(DNSMismatch, LayerDNS, fmt.Sprintf("the resolver says %s does not exist, but %s: a new or changed record not yet seen everywhere (the resolver keeps its answer until it expires)",
			d.Name, disagreement(a)))
	case a != nil && a.Lame:
		return newVerdict(DNSLameDelegation, LayerDNS, fmt.Sprintf("%s cannot be looked up: none of the servers %s is delegated to answers for it: %s",
			d.Name, or(a.Zone, "the name"), serversSaid(a)))
	case d.NotFound:
		return newVerdict(DNSNXDomain, LayerDNS, d.Error)
	}
	s := d.Error
	if a != nil && !a.Lame && a.Note == "" && len(a.Servers) > 0 {
		s += "; the name's own servers answer: " + serversSaid(a)
	}
	return newVerdict(DNSFailure, LayerDNS, s)
}

// decideDNS refines a verdict reached at the name's addresses with what
// the name's own servers say. A site failing to connect or to secure its
// connection at addresses its own servers no longer give, while an address
// they do give takes connections, is failing because the resolver's
// record is stale: dns_mismatch is the verdict, the failure a finding. Otherwise a disagreement is a finding only, as
// is a delegation some or all of whose servers do not answer.
func decideDNS(r *Report, v Verdict, findings []Verdict) (Verdict, []Verdict) {
	if r.DNS == nil || r.DNS.Authoritative == nil {
		return v, findings
	}
	a := r.DNS.Authoritative
	switch {
	case a.Lame:
		findings = append(findings, newVerdict(DNSLameDelegation, LayerDNS, fmt.Sprintf(
			"none of the servers %s is delegated to answers for it (%s): the resolver answered from its cache, which will expire", a.Zone, serversSaid(a))))
	case a.Disagree && len(a.stale) > 0 && len(a.reachable) > 0 && (v.Layer == LayerTCP || v.Layer == LayerTLS) && v.Code != BlockedTarget:
		m := newVerdict(DNSMismatch, LayerDNS, disagreement(a)+"; "+strings.Join(a.Reachable, ", ")+" accepts connections, the resolver's addresses fail: "+v.Summary)
		findings = append([]Verdict{v}, findings...)
		v = m
	case a.Disagree:
		findings = append(findings, newVerdict(DNSMismatch, LayerDNS, disagreement(a)+": a change not yet seen everywhere, or a stale record"))
	}
	if bad := failingServers(a); bad != "" && !a.Lame && a.Note == "" {
		findings = append(findings, newVerdict(DNSLameDelegation, LayerDNS, bad))
	}
	return v, findings
}
