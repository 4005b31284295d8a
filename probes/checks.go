package probes

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The functions below turn each probe's result into a one-line Check.

func dnsCheck(d *DNSResult) Check {
	c := Check{Kind: ProbeDNS, Name: "dns", DurationMS: d.DurationMS}
	if d.Error != "" {
		c.Status, c.Detail = StatusFail, d.Error
		if d.DNSSEC == "bogus" {
			c.Detail += "; with DNSSEC checking disabled the resolver answers: the signatures do not validate"
		}
		if len(d.EDE) > 0 {
			c.Detail += "; " + edeSaid(d.EDE)
		}
		return c
	}
	c.Status = StatusOK
	c.Detail = d.Name + " → " + joinMax(d.Addresses, 6)
	if d.Withheld > 0 {
		c.Detail += fmt.Sprintf(" (and %d non-public addresses, withheld)", d.Withheld)
	}
	if len(d.CNAMEs) > 0 {
		c.Detail += " (via " + strings.Join(d.CNAMEs, ", ") + ")"
	}
	if d.DNSSEC == "secure" {
		c.Detail += " (DNSSEC validated)"
	}
	if len(d.EDE) > 0 {
		c.Status = StatusWarn
		c.Detail += "; " + edeSaid(d.EDE)
	}
	return c
}

func tcpCheck(t TCPResult) Check {
	c := Check{Kind: ProbeTCP, Name: "tcp " + t.Address, DurationMS: t.DurationMS, Status: StatusFail, Detail: t.Error}
	if t.Outcome == "connected" {
		c.Status, c.Detail = StatusOK, "connected"
	}
	return c
}

func tlsCheck(t *TLSResult, primary bool) Check {
	c := Check{Kind: ProbeTLS, Name: "tls", DurationMS: t.DurationMS, Status: StatusOK}
	if !primary {
		c.Name = "tls (https twin)"
	}
	switch {
	case t.Error != "":
		c.Status, c.Detail = StatusFail, t.Error
	case t.Problem != "":
		c.Status, c.Detail = StatusFail, strings.Join(t.Issues, "; ")
	default:
		leaf := t.Chain[0]
		left := time.Until(leaf.NotAfter)
		c.Detail = fmt.Sprintf("%s, %s; certificate for %s from %s, valid until %s",
			t.Version, t.CipherSuite, joinMax(slices.Concat(leaf.DNSNames, leaf.IPAddresses), 4), cnOf(leaf.Issuer),
			leaf.NotAfter.Format("2006-01-02"))
		if left < 14*24*time.Hour {
			c.Status = StatusWarn
			c.Detail += fmt.Sprintf(" (expires in %s)", roundAge(left))
		}
	}
	if !primary && c.Status == StatusFail {
		c.Status = StatusWarn
	}
	return c
}

func cnOf(dn string) string {
	for _, part := range strings.Split(dn, ",") {
		if v, ok := strings.CutPrefix(part, "CN="); ok {
			return v
		}
	}
	return dn
}

func httpCheck(scheme string, h *HTTPResult) Check {
	c := Check{Kind: ProbeHTTP, Name: scheme, DurationMS: h.DurationMS}
	redirects := ""
	if n := len(h.Hops) - 1; n > 0 {
		redirects = fmt.Sprintf(" after %d redirect(s)", n)
	}
	switch {
	case h.Error != "":
		c.Status, c.Detail = StatusFail, h.Error+redirects
	default:
		c.Detail = statusLine(h.Status) + " from " + h.FinalURL + redirects
		switch statusCode(h.Status) {
		case Healthy:
			c.Status = StatusOK
			if h.Status >= 400 {
				c.Status = StatusWarn
			}
		default:
			c.Status = StatusFail
		}
	}
	return c
}

func twinCheck(scheme string, h *HTTPResult) Check {
	c := httpCheck(scheme, h)
	c.Kind, c.Name = ProbeTwin, scheme+" (other scheme)"
	if c.Status == StatusFail {
		c.Status = StatusWarn
	}
	return c
}

func countSamples(ss []Sample) SampleCounts {
	var n SampleCounts
	for _, s := range ss {
		if s.CutOff {
			continue
		}
		n.Total++
		switch c := statusCode(s.Status); {
		case s.Status == 0:
			n.Errors++
		case c == Healthy:
			n.OK++
		case c == Gateway502 || c == GatewayTimeout || s.Status == 503:
			n.Gateway++
		default:
			n.Other++
		}
	}
	if n.Total > 0 {
		n.FailureRate = float64(n.Total-n.OK) / float64(n.Total)
	}
	return n
}

func samplesCheck(n SampleCounts, ss []Sample) Check {
	c := Check{Kind: ProbeSamples, Name: "samples"}
	for _, s := range ss {
		c.DurationMS = max(c.DurationMS, s.DurationMS)
	}
	parts := []string{fmt.Sprintf("%d ok", n.OK)}
	if n.Gateway > 0 {
		parts = append(parts, fmt.Sprintf("%d gateway errors", n.Gateway))
	}
	if n.Other > 0 {
		parts = append(parts, fmt.Sprintf("%d other errors", n.Other))
	}
	if n.Errors > 0 {
		parts = append(parts, fmt.Sprintf("%d without an answer", n.Errors))
	}
	c.Detail = fmt.Sprintf("%d requests: %s", n.Total, strings.Join(parts, ", "))
	switch {
	case n.Total == 0:
		c.Status, c.Detail = StatusSkip, "no sample finished in time"
	case n.OK == n.Total:
		c.Status = StatusOK
	case n.OK > 0:
		c.Status = StatusWarn
	default:
		c.Status = StatusFail
	}
	return c
}

func gatewayCheck(g Gateway) Check {
	d := fmt.Sprintf("%s (%s confidence: %s)", GatewayLabel(g.Name), g.Certainty, strings.Join(g.Signals, "; "))
	if len(g.Others) > 0 {
		labels := make([]string, len(g.Others))
		for i, o := range g.Others {
			labels[i] = GatewayLabel(o)
		}
		d += "; also seen: " + strings.Join(labels, ", ")
	}
	return Check{Kind: ProbeGateway, Name: "gateway", Status: StatusOK, Detail: d}
}

func joinMax(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}
