package probes

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// probeDNS resolves the target's name as the operating system would
// (/etc/hosts first), or at the operator's resolver, and asks the resolver
// directly on the side (see askResolver): the CNAME chain, DNSSEC and
// Extended DNS Errors are evidence, and the resolver's failure is not the
// verdict unless the lookup fails too. A failed lookup is looked into
// further: a SERVFAIL that an answer with checking disabled contradicts is
// a DNSSEC failure, and the name's own servers are asked (see
// authoritative).
func (p *Prober) probeDNS(ctx context.Context, host string) (*DNSResult, []netip.Addr) {
	start := time.Now()
	res := &DNSResult{Name: host}
	lookupCtx, cancel := context.WithTimeout(ctx, p.cfg.DNSTimeout)
	defer cancel()

	// The resolver asked directly is evidence only: it gets a short budget
	// of its own and is not waited for past it.
	viewCtx, viewCancel := context.WithTimeout(lookupCtx, p.queryTimeout())
	defer viewCancel()
	views := make(chan *resolverView, 1)
	go func() { views <- p.askResolver(viewCtx, host) }()

	ips, err := p.resolver().LookupNetIP(lookupCtx, "ip", host)
	res.DurationMS = ms(time.Since(start))
	var v *resolverView
	select {
	case v = <-views:
	case <-viewCtx.Done():
	}
	if v != nil {
		res.Resolver, res.CNAMEs, res.DNSSEC, res.EDE = &v.view, v.cnames, v.dnssec, v.ede
	}
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) {
			res.NotFound = de.IsNotFound
			res.TimedOut = de.IsTimeout
		}
		if errors.Is(err, context.DeadlineExceeded) {
			res.TimedOut = true
		}
		res.Error = plainError(err)
		res.CNAMEs = nil
		if v != nil && v.answered() && res.DNSSEC != "bogus" {
			// The name's own servers say whether the name exists, and
			// whether its delegation leads anywhere: a budget of their
			// own, as a resolver facing a lame zone is slow to give up.
			res.Authoritative = p.authoritative(ctx, v.server, v.final(host), nil, res.NotFound)
			res.EDE = dedupEDE(append(res.EDE, res.Authoritative.ede...))
		}
		res.DurationMS = ms(time.Since(start))
		return res, nil
	}
	addrs := make([]netip.Addr, 0, len(ips))
	seen := map[netip.Addr]bool{}
	for _, a := range ips {
		a = a.Unmap()
		if !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
			res.Addresses = append(res.Addresses, a.String())
		}
	}
	if v != nil {
		res.server, res.final = v.server, v.final(host)
	}
	return res, addrs
}

func (p *Prober) resolver() *net.Resolver {
	if p.cfg.Resolver != nil {
		return p.cfg.Resolver
	}
	return net.DefaultResolver
}

// resolverAt returns a resolver that asks only addr (the operator's
// --resolver), over UDP or TCP as Go's resolver chooses.
func resolverAt(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}
