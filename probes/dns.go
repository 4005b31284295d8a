package probes

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// probeDNS resolves the target's name as the operating system would
// (/etc/hosts first), and asks the configured name servers for the CNAME
// chain on the side, which is evidence only: its failure is not the verdict.
func (p *Prober) probeDNS(ctx context.Context, host string) (*DNSResult, []netip.Addr) {
	start := time.Now()
	res := &DNSResult{Name: host}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DNSTimeout)
	defer cancel()

	// The chain is evidence only: it gets a short budget of its own and
	// is not waited for past it.
	chainCtx, chainCancel := context.WithTimeout(ctx, min(p.cfg.DNSTimeout, 1500*time.Millisecond))
	defer chainCancel()
	chain := make(chan []string, 1)
	go func() { chain <- p.cnameChain(chainCtx, host) }()

	ips, err := p.resolver().LookupNetIP(ctx, "ip", host)
	res.DurationMS = ms(time.Since(start))
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
	select {
	case res.CNAMEs = <-chain:
	case <-chainCtx.Done():
	}
	return res, addrs
}

func (p *Prober) resolver() *net.Resolver {
	if p.cfg.Resolver != nil {
		return p.cfg.Resolver
	}
	return net.DefaultResolver
}

// cnameChain asks for the A record of host and returns the CNAME records of
// the answer in order (a recursive resolver returns the whole chain).
func (p *Prober) cnameChain(ctx context.Context, host string) []string {
	servers := p.cfg.DNSServers
	if len(servers) == 0 {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil {
			return nil
		}
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(host), dns.TypeA)
	c := &dns.Client{Timeout: min(p.cfg.DNSTimeout, 1500*time.Millisecond)}
	for _, s := range servers {
		in, _, err := c.ExchangeContext(ctx, m, s)
		if err != nil || in == nil {
			continue
		}
		var out []string
		for _, rr := range in.Answer {
			if cn, ok := rr.(*dns.CNAME); ok {
				out = append(out, strings.TrimSuffix(cn.Hdr.Name, ".")+" → "+strings.TrimSuffix(cn.Target, "."))
			}
		}
		return out
	}
	return nil
}
