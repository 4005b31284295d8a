package probes

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// AddressResult is the URL fetched from one of the addresses its name
// resolves to: every address is asked, since a browser may be sent to any
// of them and one broken server among several is a classic 502.
type AddressResult struct {
	Address string `json:"address"`
	// Family is ipv4 or ipv6: browsers prefer IPv6 when they have it.
	Family  string `json:"family"`
	Verdict Code   `json:"verdict"`
	// Status is the HTTP status the address answered, 0 when none came.
	Status     int     `json:"status"`
	Gateway    string  `json:"gateway,omitempty"`
	Backend    string  `json:"backend,omitempty"`
	Error      string  `json:"error,omitempty"`
	CutOff     bool    `json:"cut_off,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	hop        *Hop
	// main is set when the entry is the main request's answer (a name
	// with one address), not a request of its own.
	main bool
}

// familyOf names an address's family as the report does.
func familyOf(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// familyLabel is a family as people write it.
func familyLabel(f string) string {
	if f == "ipv6" {
		return "IPv6"
	}
	return "IPv4"
}

// runAddresses fetches the URL once from each address of a name that has
// several, pinning the connection to the address (Host header and SNI
// unchanged), all at once and within the diagnosis deadline. A single
// address is the main request's: it costs no request of its own.
func (p *Prober) runAddresses(ctx context.Context, d *diagnosis) {
	if len(d.addrs) < 2 {
		return
	}
	t := d.target
	if t.Bare && d.twin != nil {
		// Ask the scheme a browser would show, once it is known.
		d.fetched.Wait()
		if fallsBack(d.report.HTTP, d.report.Twin) {
			t = d.twin
		}
	}
	out := make([]AddressResult, len(d.addrs))
	var wg sync.WaitGroup
	for i, a := range d.addrs {
		wg.Go(func() { out[i] = p.fetchFrom(ctx, t, a) })
	}
	wg.Wait()
	d.report.Addresses = out
}

// fetchFrom fetches t's URL with every connection to t's host dialled to
// addr. Redirects to other hosts go where their names lead.
func (p *Prober) fetchFrom(ctx context.Context, t *Target, addr netip.Addr) AddressResult {
	tr := p.newTransport()
	defer tr.CloseIdleConnections()
	tr.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(address)
		if err == nil && strings.EqualFold(host, t.Host) {
			return p.dialer().DialContext(ctx, network, net.JoinHostPort(addr.String(), port))
		}
		return p.dial(ctx, network, address)
	}
	return addressResult(ctx, addr, p.fetch(ctx, tr, t.String()))
}

// addressResult is what one address answered to res.
func addressResult(ctx context.Context, addr netip.Addr, res *HTTPResult) AddressResult {
	ar := AddressResult{Address: addr.String(), Family: familyOf(addr), Status: res.Status, DurationMS: res.DurationMS, hop: res.Final()}
	switch {
	case res.Answered():
		h := res.Final()
		g := fingerprint(res.Status, h.Header, h.Body)
		ar.Verdict, ar.Gateway = responseCode(res.Status, g, h.Body), g.Name
		if b, ok := backendOf(h.Header); ok {
			ar.Backend = b.ID
		}
	case ctx.Err() != nil:
		ar.Status, ar.Error, ar.CutOff = 0, "cut off by the diagnosis deadline", true
	default:
		ar.Status, ar.Error = 0, res.Error
		ar.Verdict = kindCode(res.ErrorKind, res.Phase)
	}
	return ar
}

// addressesDisagree is what the addresses say when some work and some
// fail: the failing verdict as a finding ("1 of 2 addresses answers 502:
// 127.0.0.2"), and the summary of the intermittent verdict it makes.
// ok is false when they do not disagree.
func addressesDisagree(as []AddressResult) (finding Verdict, summary string, ok bool) {
	var good, bad []AddressResult
	for _, a := range as {
		switch a.Verdict {
		case "":
		case Healthy:
			good = append(good, a)
		default:
			bad = append(bad, a)
		}
	}
	if len(good) == 0 || len(bad) == 0 {
		return Verdict{}, "", false
	}
	n := len(good) + len(bad)
	what := func(a AddressResult) string {
		if a.Status != 0 {
			return fmt.Sprintf("answers %d", a.Status)
		}
		return "fails (" + a.Error + ")"
	}
	names := func(list []AddressResult) string {
		s := make([]string, len(list))
		for i, a := range list {
			s[i] = a.Address
		}
		return joinMax(s, 4)
	}
	var text string
	if same := slices.IndexFunc(bad, func(a AddressResult) bool { return what(a) != what(bad[0]) }) < 0; same {
		verb := what(bad[0])
		if len(bad) > 1 {
			verb = strings.Replace(verb, "answers", "answer", 1)
			verb = strings.Replace(verb, "fails", "fail", 1)
		}
		text = fmt.Sprintf("%d of %d addresses %s: %s", len(bad), n, verb, names(bad))
	} else {
		parts := make([]string, len(bad))
		for i, a := range bad {
			parts[i] = a.Address + " " + what(a)
		}
		text = fmt.Sprintf("%d of %d addresses fail: %s", len(bad), n, joinMax(parts, 4))
	}
	if fam := splitFamily(good, bad); fam != "" {
		text += fmt.Sprintf("; every %s address fails and every %s address works, so visitors whose connection uses %s fail",
			familyLabel(fam), familyLabel(otherFamily(fam)), familyLabel(fam))
	}
	c := bad[0].Verdict
	finding = newVerdict(c, LayerOf(c), text)
	others := "the other answers"
	if len(good) > 1 {
		others = "the others answer"
	}
	summary = fmt.Sprintf("the site's addresses disagree: %s; %s %s", text, others, statusLine(good[0].Status))
	return finding, summary, true
}

// splitFamily returns the family of the failing addresses when all of
// them are of one family and all working ones of the other, else "".
func splitFamily(good, bad []AddressResult) string {
	fam := bad[0].Family
	for _, a := range bad {
		if a.Family != fam {
			return ""
		}
	}
	for _, a := range good {
		if a.Family == fam {
			return ""
		}
	}
	return fam
}

func otherFamily(f string) string {
	if f == "ipv6" {
		return "ipv4"
	}
	return "ipv6"
}
