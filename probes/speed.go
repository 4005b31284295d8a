package probes

import (
	"fmt"
	"strings"
	"time"
)

// gatewayTimeouts is the table of how long gateway products wait, by
// default, for the server behind them before answering with an error
// (Cloudflare's 524 after 100 s, an ALB's 504 after its 60 s idle timeout,
// nginx's proxy_read_timeout...). A failure that takes about that long
// is the product giving up; one that takes a few milliseconds is a
// refusal or a reset behind it. Config.GatewayTimeouts overrides it.
var gatewayTimeouts = map[string]time.Duration{
	"cloudflare": 100 * time.Second,
	"aws-elb":    60 * time.Second,
	"nginx":      60 * time.Second,
	"openresty":  60 * time.Second,
	"tengine":    60 * time.Second,
	"apache":     60 * time.Second,
	"varnish":    60 * time.Second,
	"fastly":     60 * time.Second,
	"cloudfront": 30 * time.Second,
	"heroku":     30 * time.Second,
	"envoy":      15 * time.Second,
}

// The speeds of a failure.
const (
	SpeedFast      = "fast"       // refused or reset behind the gateway, a keep-alive race
	SpeedAtTimeout = "at_timeout" // about a gateway product's timeout
	SpeedSlow      = "slow"       // neither
)

// fastFailure is the longest a failure may take and still be fast: a
// refusal behind the gateway takes one round trip or two.
const fastFailure = time.Second

// gatewayTimeout is how long the named product waits by default, or 0.
func (p *Prober) gatewayTimeout(name string) time.Duration {
	if d, ok := p.cfg.GatewayTimeouts[name]; ok {
		return d
	}
	return gatewayTimeouts[name]
}

// failureSpeed classes how long a failure took, given the product that
// answered (or "").
func (p *Prober) failureSpeed(elapsed time.Duration, gateway string) string {
	if t := p.gatewayTimeout(gateway); t > 0 && elapsed >= t*9/10 && elapsed <= t*5/4+2*time.Second {
		return SpeedAtTimeout
	}
	if elapsed < fastFailure {
		return SpeedFast
	}
	return SpeedSlow
}

// timeSample records, for a failed sample, how long the failure took and
// its speed.
func (p *Prober) timeSample(s *Sample) {
	if s.hop != nil {
		s.Reused = s.hop.Reused
	}
	switch {
	case s.CutOff:
		return
	case s.Status != 0 && statusCode(s.Status) == Healthy:
		return
	case s.Status == 0 && s.Error == "":
		return
	}
	s.ErrorMS = s.DurationMS
	gw := ""
	if h := s.hop; h != nil {
		if s.Status != 0 {
			if h.Timing.WaitMS > 0 {
				s.ErrorMS = h.Timing.WaitMS
			}
			gw = fingerprint(s.Status, h.Header, h.Body).Name
		}
	}
	s.Speed = p.failureSpeed(time.Duration(s.ErrorMS*float64(time.Millisecond)), gw)
}

// speedNote says how fast the failed samples failed, and on which
// connections, or "" when none failed.
func (p *Prober) speedNote(ss []Sample, g Gateway) string {
	var fast, atTimeout, slow, reused, n, freshOK int
	var fastMax, slowMax float64
	for _, s := range ss {
		switch s.Speed {
		case "":
			if !s.CutOff && !s.Reused && s.Status != 0 && statusCode(s.Status) == Healthy {
				freshOK++
			}
			continue
		case SpeedFast:
			fast++
			fastMax = max(fastMax, s.ErrorMS)
		case SpeedAtTimeout:
			atTimeout++
		case SpeedSlow:
			slow++
			slowMax = max(slowMax, s.ErrorMS)
		default:
			continue
		}
		n++
		if s.Reused {
			reused++
		}
	}
	if n == 0 {
		return ""
	}
	conns := "on fresh connections"
	switch {
	case reused == n && freshOK > 0:
		conns = "every one on a reused connection, while fresh connections worked: requests on kept-alive connections fail " +
			"(a keep-alive race, or a limit per connection)"
	case reused > 0:
		conns = fmt.Sprintf("%d of them on reused connections", reused)
	}
	all := allOf(n, "failed sample", "failed samples")
	switch {
	case fast == n:
		return fmt.Sprintf("%s came fast (within %.0f ms, %s): the server behind the gateway refused or reset the connection, "+
			"or a kept-alive connection closed under it, rather than answering slowly", all, max(fastMax, 1), conns)
	case atTimeout == n:
		t := p.gatewayTimeout(g.Name)
		return fmt.Sprintf("%s came after about %s, %s's timeout for the server behind it: that server is too slow or stuck",
			all, seconds(t), GatewayLabel(g.Name))
	case slow == n:
		return fmt.Sprintf("%s took up to %s (%s): slow, but not at a known gateway timeout", all, seconds(time.Duration(slowMax*float64(time.Millisecond))), conns)
	}
	var parts []string
	if fast > 0 {
		parts = append(parts, fmt.Sprintf("%d fast (within %.0f ms)", fast, max(fastMax, 1)))
	}
	if atTimeout > 0 {
		parts = append(parts, fmt.Sprintf("%d at %s's timeout (%s)", atTimeout, GatewayLabel(g.Name), seconds(p.gatewayTimeout(g.Name))))
	}
	if slow > 0 {
		parts = append(parts, fmt.Sprintf("%d slow (up to %s)", slow, seconds(time.Duration(slowMax*float64(time.Millisecond)))))
	}
	return fmt.Sprintf("of %d failed samples, %s; %s", n, strings.Join(parts, ", "), conns)
}

func seconds(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.0f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}
