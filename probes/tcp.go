package probes

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// probeTCP connects to one address on the target's port and hangs up.
func (p *Prober) probeTCP(ctx context.Context, addr netip.Addr, port int) TCPResult {
	ap := net.JoinHostPort(addr.String(), strconv.Itoa(port))
	res := TCPResult{Address: ap}
	if err := p.guard.Check(addr); err != nil {
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

// dialer is the only way probes reach the network: the guard sits in its
// Control hook and no proxy is ever consulted.
func (p *Prober) dialer() *net.Dialer {
	return &net.Dialer{
		Resolver: p.resolver(),
		Control: func(network, address string, c syscall.RawConn) error {
			if err := p.guard.Control(network, address, c); err != nil {
				return err
			}
			if p.afterGuard != nil {
				return p.afterGuard(network, address)
			}
			return nil
		},
		Timeout:   p.cfg.ConnectTimeout,
		KeepAlive: -1,
	}
}
