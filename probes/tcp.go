package probes

import (
	"context"
	"net"
	"net/http/httptrace"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// probeTCP connects to one address on the target's port and hangs up.
func (p *Prober) probeTCP(ctx context.Context, addr netip.Addr, port int) TCPResult {
	ap := net.JoinHostPort(addr.String(), strconv.Itoa(port))
	res := TCPResult{Address: ap}
	if err := p.guard.CheckAddrPort(netip.AddrPortFrom(addr, uint16(port))); err != nil {
		res.Outcome, res.Error = "blocked", err.Error()
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	start := time.Now()
	conn, err := p.dialer().DialContext(ctx, "tcp", ap)
	res.DurationMS = ms(time.Since(start))
	if err != nil {
		res.Outcome, res.Error = tcpOutcome(classify(err)), plainError(err)
		return res
	}
	conn.Close()
	res.Outcome = "connected"
	return res
}

func tcpOutcome(k Kind) string {
	switch k {
	case KindRefused:
		return "refused"
	case KindTimeout:
		return "timeout"
	case KindUnreachable:
		return "unreachable"
	case KindReset:
		return "reset"
	case KindBlocked:
		return "blocked"
	}
	return "error"
}

// lookupUntraced resolves host for a request. The lookup must not run under
// the request's httptrace: the resolver's own connections to the name
// server would be reported as the request's connect. It keeps the
// deadline and cancellation, and reports the lookup as DNS start and done.
func (p *Prober) lookupUntraced(ctx context.Context, host string) ([]netip.Addr, error) {
	lctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		var cancelDL context.CancelFunc
		lctx, cancelDL = context.WithDeadline(lctx, dl)
		defer cancelDL()
	}
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	trace := httptrace.ContextClientTrace(ctx)
	if trace != nil && trace.DNSStart != nil {
		trace.DNSStart(httptrace.DNSStartInfo{Host: host})
	}
	addrs, err := p.resolver().LookupNetIP(lctx, "ip", host)
	if trace != nil && trace.DNSDone != nil {
		trace.DNSDone(httptrace.DNSDoneInfo{Err: err})
	}
	return addrs, err
}

// dialer is the only way probes reach the network: the guard sits in its
// Control hook and no proxy is ever consulted.
func (p *Prober) dialer() *net.Dialer {
	return &net.Dialer{
		Resolver: p.resolver(),
		Timeout:  p.cfg.ConnectTimeout,
		Control: func(network, address string, c syscall.RawConn) error {
			if err := p.guard.Control(network, address, c); err != nil {
				return err
			}
			if p.afterGuard != nil {
				return p.afterGuard(network, address)
			}
			return nil
		},
		KeepAlive: -1,
	}
}

// dial resolves a name itself and dials only the addresses the guard
// allows, in order, so that a name with both refused and allowed addresses
// fails (or succeeds) on the allowed ones and its error says why. Each dial
// still passes the guard in Control: the check is made on what is dialled.
func (p *Prober) dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	d := p.dialer()
	if to, ok := p.pin.address(host, port); ok {
		return d.DialContext(ctx, network, to)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return d.DialContext(ctx, network, address)
	}
	addrs, err := p.lookupUntraced(ctx, host)
	if err != nil {
		return nil, err
	}
	portNum, _ := strconv.ParseUint(port, 10, 16)
	var allowed []netip.Addr
	var refusal error
	for _, a := range addrs {
		a = a.Unmap()
		if err := p.guard.CheckAddrPort(netip.AddrPortFrom(a, uint16(portNum))); err != nil {
			if refusal == nil {
				refusal = err
			}
			continue
		}
		allowed = append(allowed, a)
	}
	if len(allowed) == 0 {
		if refusal == nil {
			refusal = &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
		return nil, &net.OpError{Op: "dial", Net: network, Err: refusal}
	}
	var last error
	for _, a := range allowed {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, last
}
