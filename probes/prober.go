package probes

import (
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config tunes a Prober. Zero fields take the defaults of DefaultConfig,
// except Samples, where zero means no samples.
type Config struct {
	Timeout        time.Duration // the whole diagnosis
	DNSTimeout     time.Duration // name resolution
	ConnectTimeout time.Duration // each TCP connection of the TCP probe
	TLSTimeout     time.Duration // each TLS handshake
	Samples        int           // repeated requests on fresh connections
	SampleSpacing  time.Duration // between the starts of two samples
	// ReuseSamples sends every other sample on a kept-alive connection
	// (one kept for the run) instead of a fresh one: failures that only
	// reused connections meet (a keep-alive race, a per-connection limit)
	// show then. The longer staff run sets it.
	ReuseSamples   bool
	MaxBody        int64 // bytes of body kept as evidence, after decompression
	MaxHeaderBytes int64 // response header bytes accepted
	MaxRedirects   int
	MaxAddresses   int // addresses the TCP probe connects to

	// AllowNets opens non-public ranges to the probes (an operator's choice).
	AllowNets []netip.Prefix
	// Self are gatecheck's own listening addresses: refused whatever
	// AllowNets says (see Guard.RefuseSelf).
	Self []netip.AddrPort
	// Ports are the default ports of http and https (80 and 443).
	Ports Ports
	// Resolver resolves names; nil means the operating system's way.
	Resolver *net.Resolver
	// DNSServers ("host:port") are asked directly for the CNAME chain,
	// DNSSEC, Extended DNS Errors and the name's servers; empty means the
	// servers of /etc/resolv.conf.
	DNSServers []string
	// ResolverAddr ("ip:port"), when set, is the recursive resolver used
	// for everything: names resolve there instead of the operating
	// system's way (Resolver and DNSServers are set from it). It is the
	// operator's choice, so the guard does not apply to it.
	ResolverAddr string
	// DNSPort is the port the name's authoritative servers are asked on:
	// 53, unless a test runs them elsewhere.
	DNSPort int
	// RootCAs are the trusted roots; nil means the system's.
	RootCAs   *x509.CertPool
	UserAgent string
	// Now is the clock certificates are checked against.
	Now func() time.Time
	// GatewayTimeouts are how long gateway products wait for the server
	// behind them, by product name, where they differ from the defaults
	// of gatewayTimeouts (a failure at that time is the product giving up).
	GatewayTimeouts map[string]time.Duration
}

// DefaultConfig returns the settings gatecheck uses unless told otherwise.
func DefaultConfig() Config {
	return Config{
		Timeout:        15 * time.Second,
		DNSTimeout:     4 * time.Second,
		ConnectTimeout: 4 * time.Second,
		TLSTimeout:     6 * time.Second,
		Samples:        5,
		SampleSpacing:  200 * time.Millisecond,
		MaxBody:        64 << 10,
		MaxHeaderBytes: 256 << 10,
		MaxRedirects:   10,
		MaxAddresses:   8,
		Ports:          DefaultPorts,
		UserAgent:      "gatecheck/1 (+502 diagnosis)",
		Now:            time.Now,
	}
}

// Prober runs diagnoses. It is safe for concurrent use.
type Prober struct {
	cfg   Config
	guard *Guard
	// afterGuard, when set, is consulted after the guard lets a dial
	// through; tests use it to prove no packet leaves loopback.
	afterGuard func(network, address string) error
	// pin, when set, sends the URL's host to its origin (RunOrigin).
	pin *originPin
}

// New returns a Prober with cfg, zero fields filled from DefaultConfig.
func New(cfg Config) *Prober {
	def := DefaultConfig()
	fill := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	fill(&cfg.Timeout, def.Timeout)
	fill(&cfg.DNSTimeout, def.DNSTimeout)
	fill(&cfg.ConnectTimeout, def.ConnectTimeout)
	fill(&cfg.TLSTimeout, def.TLSTimeout)
	fill(&cfg.SampleSpacing, def.SampleSpacing)
	if cfg.Samples < 0 {
		cfg.Samples = 0
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = def.MaxBody
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = def.MaxHeaderBytes
	}
	if cfg.MaxRedirects <= 0 {
		cfg.MaxRedirects = def.MaxRedirects
	}
	if cfg.MaxAddresses <= 0 {
		cfg.MaxAddresses = def.MaxAddresses
	}
	if cfg.Ports.HTTP == 0 {
		cfg.Ports.HTTP = def.Ports.HTTP
	}
	if cfg.Ports.HTTPS == 0 {
		cfg.Ports.HTTPS = def.Ports.HTTPS
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = def.UserAgent
	}
	if cfg.Now == nil {
		cfg.Now = def.Now
	}
	if cfg.DNSPort <= 0 {
		cfg.DNSPort = 53
	}
	if cfg.ResolverAddr != "" {
		cfg.DNSServers = []string{cfg.ResolverAddr}
		if cfg.Resolver == nil {
			cfg.Resolver = resolverAt(cfg.ResolverAddr)
		}
	}
	guard := NewGuard(cfg.AllowNets)
	if len(cfg.Self) > 0 {
		guard = guard.RefuseSelf(cfg.Self...)
	}
	return &Prober{cfg: cfg, guard: guard}
}

// Config returns the settings in force.
func (p *Prober) Config() Config { return p.cfg }

func (p *Prober) now() time.Time { return p.cfg.Now() }

// Diagnose probes rawURL and returns the report. It never returns nil: an
// invalid or refused URL is a verdict like any other.
func (p *Prober) Diagnose(ctx context.Context, rawURL string) *Report {
	return p.Run(ctx, rawURL, nil)
}

// Run is Diagnose with progress: onCheck, when not nil, is called with each
// check as soon as it completes (from one goroutine at a time).
func (p *Prober) Run(ctx context.Context, rawURL string, onCheck func(Check)) *Report {
	return p.run(ctx, rawURL, netip.AddrPort{}, onCheck)
}

// run is Run, with every connection to the URL's host pinned to origin
// when it is valid.
func (p *Prober) run(ctx context.Context, rawURL string, origin netip.AddrPort, onCheck func(Check)) *Report {
	start := time.Now()
	r := &Report{StartedAt: start.UTC(), Findings: []Verdict{}, Samples: []Sample{}, Timings: []HopTiming{},
		Gateway: Gateway{Others: []string{}}}
	rec := &recorder{onCheck: onCheck}
	defer func() {
		r.DurationMS = ms(time.Since(start))
		r.Checks = rec.ordered()
	}()

	t, err := Normalize(rawURL, p.cfg.Ports)
	if err != nil {
		r.URL = redactInput(rawURL)
		r.Verdict = newVerdict(InvalidURL, LayerInput, err.Error())
		rec.add(Check{Kind: ProbeURL, Name: "url", Status: StatusFail, Detail: err.Error()})
		return r
	}
	r.URL, r.Host, r.Port = t.String(), t.Host, t.Port
	urlCheck := Check{Kind: ProbeURL, Name: "url", Status: StatusOK, Detail: t.String()}
	if t.Bare {
		urlCheck.Detail += " (typed without a scheme: a browser tries https first, then http)"
	}
	rec.add(urlCheck)

	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()

	var addrs []netip.Addr
	if origin.IsValid() {
		p = p.pinned(t, origin)
		r.Origin = FormatOrigin(origin)
		addrs = []netip.Addr{origin.Addr()}
		rec.add(Check{Kind: ProbeDNS, Name: "dns", Status: StatusSkip, Detail: "every connection to " + t.Host + " goes to the origin " + r.Origin + "; the name is not looked up"})
	} else if t.Addr.IsValid() {
		addrs = []netip.Addr{t.Addr}
		rec.add(Check{Kind: ProbeDNS, Name: "dns", Status: StatusSkip, Detail: "the address is an IP address; no lookup needed"})
	} else {
		r.DNS, addrs = p.probeDNS(ctx, t.Host)
		if len(addrs) == 0 {
			rec.add(dnsCheck(r.DNS))
			if r.DNS.Authoritative != nil {
				rec.addNth(authCheck(r.DNS.Authoritative), 1)
			}
			r.Verdict = dnsVerdict(r.DNS)
			return r
		}
	}

	resolved := slices.Clone(addrs) // all of them, for the authoritative check
	// Refuse up front when every address is off limits: nothing to dial.
	// Refused addresses are withheld from the report: what an internal
	// name resolves to is not for strangers to learn.
	var refusals []string
	allowed := addrs[:0:0]
	for _, a := range addrs {
		if err := p.guard.CheckAddrPort(netip.AddrPortFrom(a, uint16(p.portFor(t.Port)))); err != nil {
			refusals = append(refusals, err.Error())
			if r.DNS != nil {
				r.DNS.Addresses = slices.DeleteFunc(r.DNS.Addresses, func(s string) bool { return s == a.String() })
				r.DNS.Withheld++
			}
			continue
		}
		allowed = append(allowed, a)
	}
	if r.DNS != nil {
		if len(allowed) == 0 {
			r.DNS.CNAMEs = nil
		}
		rec.add(dnsCheck(r.DNS))
	}
	if len(allowed) == 0 {
		r.Verdict = newVerdict(BlockedTarget, LayerTCP, refusals[0])
		rec.add(Check{Kind: ProbeGuard, Name: "guard", Status: StatusFail, Detail: joinMax(slices.Compact(refusals), 4)})
		return r
	}
	if len(refusals) > 0 {
		rec.add(Check{Kind: ProbeGuard, Name: "guard", Status: StatusWarn, Detail: fmt.Sprintf("%d of the name's addresses are not public and were not probed", len(refusals))})
	}
	addrs = allowed

	if len(addrs) > p.cfg.MaxAddresses {
		addrs = addrs[:p.cfg.MaxAddresses]
	}
	d := &diagnosis{target: t, twin: t.Twin(p.cfg.Ports), addrs: addrs, resolved: resolved, tr: p.newTransport(), report: r, rec: rec}
	defer d.tr.CloseIdleConnections()
	d.fetched.Add(2)
	var wg sync.WaitGroup
	for _, pr := range probesByKind {
		wg.Go(func() { pr.run(p, ctx, d) })
	}
	wg.Wait()
	if t.Bare && d.twin != nil {
		r.NoScheme = true
		if fallsBack(r.HTTP, r.Twin) {
			t = d.seenScheme(r)
		}
	}

	for _, h := range r.HTTP.Hops {
		r.Timings = append(r.Timings, h.Timing)
	}
	if g := fingerprintReport(r); g.Name != "" {
		r.Gateway = g
	}
	if r.Gateway.Name != "" {
		rec.add(gatewayCheck(r.Gateway))
	}
	if len(addrs) == 1 && r.HTTP != nil {
		// One address: the main request was its answer.
		a := addressResult(ctx, addrs[0], r.HTTP)
		a.main = true
		r.Addresses = []AddressResult{a}
	}
	r.Backends = countBackends(r)
	r.Verdict, r.Findings = decide(r, t)
	r.Verdict, r.Findings = p.decideDepth(r, r.Verdict, r.Findings)
	r.Verdict, r.Findings = decideDNS(r, r.Verdict, r.Findings)
	return r
}

// diagnosis is one run of the probes over a target: what the probes need,
// and where they record what they find.
type diagnosis struct {
	target, twin *Target
	addrs        []netip.Addr
	// resolved are all the addresses the lookup gave, those the guard
	// refuses included: what the name's own servers are compared with.
	resolved []netip.Addr
	tr       *http.Transport
	report   *Report
	rec      *recorder
	// fetched is done when the main request and the twin's are: for a
	// bare name, the samples wait for it to know which scheme a browser
	// would have shown.
	fetched sync.WaitGroup
}

// fallsBack reports whether a browser given a name without a scheme ends
// up showing http: it tries https first and falls back to http when https
// does not connect (nothing listens, no binding, a failed handshake or a
// certificate it does not accept), as long as http answers. An https that
// connects shows its own answer, whatever it is.
func fallsBack(https, http *HTTPResult) bool {
	if https == nil || len(https.Hops) == 0 || !http.Answered() {
		return false
	}
	if https.Hops[0].Status != 0 {
		return false
	}
	switch https.Phase {
	case "dns", "connect", "tls":
		return true
	}
	return false
}

// seenScheme makes the http twin of a bare name the report's subject, once
// fallsBack has said a browser would show it: the main request and the
// twin's trade places, and the checks say so. It returns the http target.
func (d *diagnosis) seenScheme(r *Report) *Target {
	t := d.twin
	r.HTTP, r.Twin = r.Twin, r.HTTP
	r.URL, r.Port = t.String(), t.Port
	d.rec.replace(Check{Kind: ProbeURL, Name: "url", Status: StatusOK, Detail: fmt.Sprintf(
		"%s (typed without a scheme: a browser tries %s first, gets no answer, and falls back to http)", t.String(), d.target.String())})
	d.rec.replace(httpCheck(t.URL.Scheme, r.HTTP))
	d.rec.replace(twinCheck(d.target.URL.Scheme, r.Twin))
	if r.TLS != nil {
		d.rec.replace(tlsCheck(r.TLS, false))
	}
	return t
}

// A probe makes one kind of check of a diagnosis's target, concurrently
// with the other probes: it fills its own fields of the report (and no
// other's) and records its checks.
type probe func(p *Prober, ctx context.Context, d *diagnosis)

// probesByKind are the probes run once the target's addresses are known
// and allowed, by the kind of check each makes. (The URL, DNS and guard
// checks come first, in Run: the others depend on them.)
var probesByKind = []struct {
	kind ProbeKind
	run  probe
}{
	{ProbeTCP, (*Prober).runTCP},
	{ProbeTLS, (*Prober).runTLS},
	{ProbeHTTP, (*Prober).runHTTP},
	{ProbeTwin, (*Prober).runTwin},
	{ProbeSamples, (*Prober).runSamples},
	{ProbeHTTP, (*Prober).runAddresses},
	{ProbeDNS, (*Prober).runAuthoritative},
}

// runTCP connects to every address at once.
func (p *Prober) runTCP(ctx context.Context, d *diagnosis) {
	d.report.TCP = make([]TCPResult, len(d.addrs))
	var wg sync.WaitGroup
	for i, a := range d.addrs {
		wg.Go(func() {
			d.report.TCP[i] = p.probeTCP(ctx, a, p.portFor(d.target.Port))
			d.rec.addNth(tcpCheck(d.report.TCP[i]), i)
		})
	}
	wg.Wait()
}

// runTLS shakes hands with the https URL, or with the https twin of an
// http one.
func (p *Prober) runTLS(ctx context.Context, d *diagnosis) {
	t := d.target
	if tlsPort := tlsPortOf(t, d.twin); tlsPort != 0 {
		d.report.TLS = p.probeTLS(ctx, t.Host, net.JoinHostPort(t.Host, strconv.Itoa(tlsPort)))
		d.rec.add(tlsCheck(d.report.TLS, t.URL.Scheme == "https"))
	}
}

// runHTTP requests the URL, following redirects.
func (p *Prober) runHTTP(ctx context.Context, d *diagnosis) {
	defer d.fetched.Done()
	d.report.HTTP = p.fetch(ctx, d.tr, d.target.String())
	d.rec.add(httpCheck(d.target.URL.Scheme, d.report.HTTP))
}

// runTwin requests the URL on the other scheme, when it has a default
// port.
func (p *Prober) runTwin(ctx context.Context, d *diagnosis) {
	defer d.fetched.Done()
	if d.twin != nil {
		d.report.Twin = p.fetch(ctx, d.tr, d.twin.String())
		d.rec.add(twinCheck(d.twin.URL.Scheme, d.report.Twin))
	}
}

// runSamples requests the URL again on fresh connections, spaced out, to
// tell a steady failure from an intermittent one.
func (p *Prober) runSamples(ctx context.Context, d *diagnosis) {
	if p.cfg.Samples <= 0 {
		return
	}
	r := d.report
	target := d.target.String()
	if d.target.Bare && d.twin != nil {
		// Sample the scheme a browser would show, once it is known.
		d.fetched.Wait()
		if fallsBack(r.HTTP, r.Twin) {
			target = d.twin.String()
		}
	}
	r.Samples = make([]Sample, p.cfg.Samples)
	kept := d.tr
	if p.cfg.ReuseSamples {
		kept = p.newTransport()
		kept.DisableKeepAlives = false
		defer kept.CloseIdleConnections()
	}
	var wg sync.WaitGroup
	for i := range r.Samples {
		wg.Go(func() {
			select {
			case <-time.After(time.Duration(i) * p.cfg.SampleSpacing):
			case <-ctx.Done():
				r.Samples[i] = Sample{Error: "not run: out of time", CutOff: true}
				return
			}
			tr := d.tr
			if i%2 == 1 {
				tr = kept
			}
			r.Samples[i] = p.sample(ctx, tr, target)
			p.timeSample(&r.Samples[i])
		})
	}
	wg.Wait()
	r.Counts = countSamples(r.Samples)
	d.rec.add(samplesCheck(r.Counts, r.Samples))
}

func tlsPortOf(t, twin *Target) int {
	if t.URL.Scheme == "https" {
		return t.Port
	}
	if twin != nil {
		return twin.Port
	}
	return 0
}

func (p *Prober) sample(ctx context.Context, tr *http.Transport, target string) Sample {
	res := p.fetch(ctx, tr, target)
	s := Sample{Status: res.Status, DurationMS: res.DurationMS, kind: res.ErrorKind, phase: res.Phase}
	if res.Error != "" {
		s.Status, s.Error = 0, res.Error
		if ctx.Err() != nil {
			// Stopped by the diagnosis deadline, not by the site.
			s.Error, s.CutOff = "cut off by the diagnosis deadline", true
		}
	}
	s.hop = res.Final()
	if s.hop != nil && s.Status != 0 {
		if b, ok := backendOf(s.hop.Header); ok {
			s.Backend = b.ID
		}
	}
	return s
}

// decideDepth refines the verdict with what the addresses, the backends
// and the failures' timing say: addresses that disagree make the site
// intermittent (never healthy while one of them fails), and an
// intermittent verdict says which backend failed and how fast.
func (p *Prober) decideDepth(r *Report, v Verdict, findings []Verdict) (Verdict, []Verdict) {
	if f, summary, ok := addressesDisagree(r.Addresses); ok {
		rest := findings
		findings = []Verdict{f}
		if v.Code != Healthy && v.Code != Intermittent && v.Code != f.Code {
			findings = append(findings, v)
		}
		findings = append(findings, rest...)
		if v.Code == Intermittent {
			v.Summary += "; " + summary
		} else {
			v = newVerdict(Intermittent, LayerHTTP, summary)
		}
	}
	if v.Code == Intermittent {
		if note := failingBackends(r.Backends); note != "" {
			v.Summary += "; " + note
		}
		if note := p.speedNote(r.Samples, r.Gateway); note != "" {
			v.Summary += "; " + note
		}
		v.Summary = clean(v.Summary)
	}
	return v, findings
}

// redactInput keeps an unusable input for the record without credentials
// and without unbounded length. It works on the text, since the input may
// not parse as a URL at all.
func redactInput(raw string) string {
	raw = strings.TrimSpace(raw)
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + 3
	} else if strings.HasPrefix(raw, "//") {
		start = 2
	}
	end := len(raw)
	if i := strings.IndexAny(raw[start:], "/?#"); i >= 0 {
		end = start + i
	}
	if at := strings.LastIndex(raw[start:end], "@"); at >= 0 {
		raw = raw[:start] + raw[start+at+1:]
	}
	if r := []rune(raw); len(r) > 300 {
		raw = string(r[:300]) + "…"
	}
	return clean(raw)
}

// recorder collects checks from concurrent probes, reports each as it
// completes, and returns them in a stable order at the end: by kind (in
// the order of ProbeKinds), then by their place among checks of one kind (the
// TCP probe's addresses).
type recorder struct {
	mu      sync.Mutex
	onCheck func(Check)
	checks  []placedCheck
}

type placedCheck struct {
	c Check
	n int
}

func (rc *recorder) add(c Check) { rc.addNth(c, 0) }

// addNth adds the check number n of its kind.
func (rc *recorder) addNth(c Check, n int) {
	c.Detail = clean(c.Detail)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.checks = append(rc.checks, placedCheck{c, n})
	if rc.onCheck != nil {
		rc.onCheck(c)
	}
}

// replace puts c in place of the first check of its kind, once the
// diagnosis knows better than when that check was made.
func (rc *recorder) replace(c Check) {
	c.Detail = clean(c.Detail)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i := range rc.checks {
		if rc.checks[i].c.Kind == c.Kind {
			c.DurationMS = cmp.Or(c.DurationMS, rc.checks[i].c.DurationMS)
			rc.checks[i].c = c
			return
		}
	}
}

func (rc *recorder) ordered() []Check {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	sorted := slices.Clone(rc.checks)
	slices.SortStableFunc(sorted, func(a, b placedCheck) int {
		return cmp.Or(cmp.Compare(slices.Index(ProbeKinds, a.c.Kind), slices.Index(ProbeKinds, b.c.Kind)), cmp.Compare(a.n, b.n))
	})
	out := make([]Check, len(sorted))
	for i, s := range sorted {
		out[i] = s.c
	}
	return out
}
