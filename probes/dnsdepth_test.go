package probes

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// zoneServer is a real DNS server on a loopback address whose records are
// given in zone-file form. As a recursive resolver (auth false) it answers
// every name from its records, with RA set; as an authoritative server it
// answers for its zone with AA set, and refers names under a delegated
// child zone (an NS record below the apex) to that zone's servers.
type zoneServer struct {
	addr string
	auth bool
	apex string // the zone an authoritative server serves
	rrs  []dns.RR

	mu sync.Mutex
	// refuse answers REFUSED to everything (a server not set up for the
	// zone); servfail answers SERVFAIL for these names; bogus answers
	// SERVFAIL to A and AAAA questions without the CD bit (a validating
	// resolver facing a zone whose signatures fail).
	refuse bool
	upward bool // refers every question to the root, as old servers not set up for a zone do
	// rotate answers an A question with one of the name's A records,
	// the next each time, as servers rotating over a pool do.
	rotate bool
	turn   int
	// truncate answers over UDP with the TC bit and no records, so that
	// clients ask again over TCP (a large answer).
	truncate bool
	servfail map[string]bool
	bogus    bool
	// ede is added to every answer.
	ede *dns.EDNS0_EDE

	queries atomic.Int32
	byType  sync.Map // question type → *atomic.Int32
}

// asked counts the questions of one type the server got.
func (z *zoneServer) asked(qtype uint16) int32 {
	n, _ := z.byType.LoadOrStore(qtype, new(atomic.Int32))
	return n.(*atomic.Int32).Load()
}

// zonePC listens for DNS on ip at port (0: any).
func zonePC(ip string, port int) (net.PacketConn, error) {
	return net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
}

// sharedPort opens one UDP socket on each of ips, all on one port: the
// name's servers of a test (the probes ask them on Config.DNSPort).
func sharedPort(t testing.TB, ips ...string) (int, []net.PacketConn) {
	t.Helper()
	for range 20 {
		first, err := zonePC(ips[0], 0)
		if err != nil {
			t.Fatal(err)
		}
		port := first.LocalAddr().(*net.UDPAddr).Port
		pcs := []net.PacketConn{first}
		for _, ip := range ips[1:] {
			pc, err := zonePC(ip, port)
			if err != nil {
				break
			}
			pcs = append(pcs, pc)
		}
		if len(pcs) == len(ips) {
			return port, pcs
		}
		for _, pc := range pcs {
			pc.Close()
		}
	}
	t.Fatalf("no port free on all of %v", ips)
	return 0, nil
}

// serveZone serves records on pc: authoritative for apex when apex is
// set, else as a recursive resolver.
func serveZone(t testing.TB, pc net.PacketConn, apex string, records ...string) *zoneServer {
	t.Helper()
	z := &zoneServer{addr: pc.LocalAddr().String(), auth: apex != "", apex: dns.Fqdn(apex), servfail: map[string]bool{}}
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("record %q: %v", r, err)
		}
		z.rrs = append(z.rrs, rr)
	}
	srv := &dns.Server{PacketConn: pc, Handler: z}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return z
}

// recursive starts a recursive resolver on 127.0.0.1.
func recursive(t testing.TB, records ...string) *zoneServer {
	pc, err := zonePC("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	return serveZone(t, pc, "", records...)
}

// with changes the server's behaviour while it serves.
func (z *zoneServer) with(f func()) {
	z.mu.Lock()
	defer z.mu.Unlock()
	f()
}

// overTCP serves z over TCP too, on the same address.
func (z *zoneServer) overTCP(t testing.TB) {
	ln, err := net.Listen("tcp", z.addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: z}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
}

func (z *zoneServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	z.queries.Add(1)
	n, _ := z.byType.LoadOrStore(req.Question[0].Qtype, new(atomic.Int32))
	n.(*atomic.Int32).Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative, m.RecursionAvailable = z.auth, !z.auth
	z.mu.Lock()
	refuse, upward, bogus, ede, rotate, truncate := z.refuse, z.upward, z.bogus, z.ede, z.rotate, z.truncate
	turn := z.turn
	if rotate && req.Question[0].Qtype == dns.TypeA {
		z.turn++
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	servfail := z.servfail[strings.TrimSuffix(name, ".")]
	z.mu.Unlock()
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(1232, opt.Do())
		if ede != nil {
			m.IsEdns0().Option = append(m.IsEdns0().Option, ede)
		}
	}
	switch {
	case truncate && w.LocalAddr().Network() == "udp":
		m.Truncated = true
	case refuse:
		m.Rcode, m.Authoritative = dns.RcodeRefused, false
	case upward:
		rr, _ := dns.NewRR(". 60 IN NS a.root.test.")
		glue, _ := dns.NewRR("a.root.test. 60 IN A 127.0.0.9")
		m.Authoritative, m.Ns, m.Extra = false, []dns.RR{rr}, []dns.RR{glue}
	case servfail, bogus && !req.CheckingDisabled && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA):
		m.Rcode, m.Authoritative = dns.RcodeServerFailure, false
	default:
		z.answer(m, name, q.Qtype)
		if rotate && len(m.Answer) > 1 {
			m.Answer = []dns.RR{m.Answer[turn%len(m.Answer)]}
		}
	}
	w.WriteMsg(m)
}

func (z *zoneServer) answer(m *dns.Msg, name string, qtype uint16) {
	if z.auth {
		// A delegation below the apex: refer, with glue.
		for _, rr := range z.rrs {
			if ns, ok := rr.(*dns.NS); ok && ns.Hdr.Name != z.apex && dns.IsSubDomain(ns.Hdr.Name, name) {
				m.Authoritative = false
				m.Ns = append(m.Ns, ns)
				for _, g := range z.rrs {
					if g.Header().Name == ns.Ns && (g.Header().Rrtype == dns.TypeA || g.Header().Rrtype == dns.TypeAAAA) {
						m.Extra = append(m.Extra, g)
					}
				}
			}
		}
		if len(m.Ns) > 0 {
			return
		}
	}
	cur := name
	for range 8 {
		next := ""
		for _, rr := range z.rrs {
			h := rr.Header()
			switch {
			case h.Name != cur:
			case h.Rrtype == qtype:
				m.Answer = append(m.Answer, rr)
			case h.Rrtype == dns.TypeCNAME:
				m.Answer = append(m.Answer, rr)
				next = rr.(*dns.CNAME).Target
			}
		}
		if next == "" {
			break
		}
		cur = next
	}
	if len(m.Answer) > 0 {
		if qtype == dns.TypeNS {
			for _, rr := range m.Answer {
				for _, g := range z.rrs {
					if g.Header().Name == rr.(*dns.NS).Ns && g.Header().Rrtype == dns.TypeA {
						m.Extra = append(m.Extra, g)
					}
				}
			}
		}
		return
	}
	exists := false
	var soa dns.RR
	for _, rr := range z.rrs {
		if dns.IsSubDomain(name, rr.Header().Name) {
			exists = true
		}
		if s, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(s.Hdr.Name, name) {
			soa = s
		}
	}
	if soa != nil {
		m.Ns = append(m.Ns, soa)
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
}

// atResolver points the test's prober at rec, as --resolver does, with
// the name's servers asked on port.
func (e *env) atResolver(rec *zoneServer, port int) {
	e.cfg.ResolverAddr, e.cfg.Resolver, e.cfg.DNSServers, e.cfg.DNSPort = rec.addr, nil, nil, port
}

func hasFinding(r *Report, c Code) *Verdict {
	for i := range r.Findings {
		if r.Findings[i].Code == c {
			return &r.Findings[i]
		}
	}
	return nil
}

func checkNamed(r *Report, name string) *Check {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

// TestResolverAddr: with a resolver set, names resolve there (not through
// the test's usual one) and the report says it was asked directly.
func TestResolverAddr(t *testing.T) {
	e := newEnv(t)
	rec := recursive(t, "shop.test. 60 IN A 127.0.0.1")
	e.atResolver(rec, 1)
	e.httpSite(ok("hi"))
	e.cfg.Ports.HTTPS = closedPort(t)
	r := e.diagnose("http://shop.test/")
	if r.Verdict.Code != Healthy {
		t.Fatalf("verdict %s: %s", r.Verdict.Code, r.Verdict.Summary)
	}
	if r.DNS.Resolver == nil || r.DNS.Resolver.Source != "flag" || len(r.DNS.Resolver.Answers) != 2 {
		t.Fatalf("resolver = %+v", r.DNS.Resolver)
	}
	if a := r.DNS.Resolver.Answers[0]; a.Type != "A" || a.Rcode != "NOERROR" || !slices.Equal(a.Addresses, []string{"127.0.0.1"}) {
		t.Errorf("A answer = %+v", a)
	}
	if r.DNS.DNSSEC != "unvalidated" {
		t.Errorf("dnssec = %q, want unvalidated", r.DNS.DNSSEC)
	}
}

// TestTruncatedAnswers: a resolver whose answers do not fit in UDP is
// asked again over TCP, by the lookup and by the questions asked directly.
func TestTruncatedAnswers(t *testing.T) {
	e := newEnv(t)
	rec := recursive(t, "shop.test. 60 IN A 127.0.0.1")
	rec.overTCP(t)
	rec.with(func() { rec.truncate = true })
	e.atResolver(rec, 1)
	e.httpSite(ok("hi"))
	e.cfg.Ports.HTTPS = closedPort(t)
	r := e.diagnose("http://shop.test/")
	if r.Verdict.Code != Healthy {
		t.Fatalf("verdict %s: %s", r.Verdict.Code, r.Verdict.Summary)
	}
	if a := r.DNS.Resolver.Answers[0]; !slices.Equal(a.Addresses, []string{"127.0.0.1"}) {
		t.Errorf("A answer = %+v", a)
	}
}

// TestDNSSECFailure: a validating resolver answers SERVFAIL, and with the
// CD bit the address: the signatures are the cause, not the servers.
func TestDNSSECFailure(t *testing.T) {
	e := newEnv(t)
	rec := recursive(t, "shop.test. 60 IN A 127.0.0.1")
	rec.with(func() { rec.bogus = true })
	e.atResolver(rec, 1)
	var hits atomic.Int32
	e.httpSite(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	r := e.diagnose("http://shop.test/")
	if r.Verdict.Code != DNSSECFailure || r.Verdict.Layer != LayerDNS {
		t.Fatalf("verdict %s/%s: %s", r.Verdict.Code, r.Verdict.Layer, r.Verdict.Summary)
	}
	if r.DNS.DNSSEC != "bogus" || !strings.Contains(r.Verdict.Summary, "checking disabled") {
		t.Errorf("dnssec %q, summary %q", r.DNS.DNSSEC, r.Verdict.Summary)
	}
	var cd *DNSAnswer
	for i, a := range r.DNS.Resolver.Answers {
		if a.CheckingDisabled {
			cd = &r.DNS.Resolver.Answers[i]
		}
	}
	if cd == nil || cd.Rcode != "NOERROR" || !slices.Equal(cd.Addresses, []string{"127.0.0.1"}) {
		t.Errorf("the answer with checking disabled: %+v", cd)
	}
	if hits.Load() != 0 {
		t.Errorf("the site was asked %d times: an address only checking-disabled gave is not a browser's", hits.Load())
	}

	// The same SERVFAIL with checking disabled is a plain failure.
	e2 := newEnv(t)
	rec2 := recursive(t, "shop.test. 60 IN A 127.0.0.1")
	rec2.with(func() { rec2.servfail["shop.test"] = true })
	e2.atResolver(rec2, 1)
	if r := e2.diagnose("http://shop.test/"); r.Verdict.Code != DNSFailure || r.DNS.DNSSEC == "bogus" {
		t.Errorf("a resolver failing with and without CD: %s, dnssec %q", r.Verdict.Code, r.DNS.DNSSEC)
	}
}

// TestEDEShown: the Extended DNS Errors a resolver sends are in the
// report, the DNS check and the verdict's summary, cleaned.
func TestEDEShown(t *testing.T) {
	for _, tt := range []struct {
		name  string
		code  uint16
		text  string
		bogus bool
		want  Code
	}{
		{"prohibited", dns.ExtendedErrorCodeProhibited, "<b>not</b> for\x1b[31m you", false, DNSFailure},
		{"dnskey missing", dns.ExtendedErrorCodeDNSKEYMissing, "no DNSKEY matches DS for shop.test", true, DNSSECFailure},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			rec := recursive(t, "shop.test. 60 IN A 127.0.0.1")
			rec.with(func() { rec.ede = &dns.EDNS0_EDE{InfoCode: tt.code, ExtraText: tt.text} })
			if tt.bogus {
				rec.with(func() { rec.bogus = true })
			} else {
				rec.with(func() { rec.servfail["shop.test"] = true })
			}
			e.atResolver(rec, 1)
			r := e.diagnose("http://shop.test/")
			if r.Verdict.Code != tt.want {
				t.Fatalf("verdict %s: %s", r.Verdict.Code, r.Verdict.Summary)
			}
			if len(r.DNS.EDE) != 1 {
				t.Fatalf("ede = %+v", r.DNS.EDE)
			}
			got := r.DNS.EDE[0]
			name := dns.ExtendedErrorCodeToString[tt.code]
			if got.Code != tt.code || got.Name != name || got.From != "resolver" || strings.ContainsRune(got.Text, 0x1b) {
				t.Errorf("ede = %+v", got)
			}
			if !strings.Contains(r.Verdict.Summary, name) {
				t.Errorf("summary %q lacks %q", r.Verdict.Summary, name)
			}
			if c := checkNamed(r, "dns"); c == nil || !strings.Contains(c.Detail, name) {
				t.Errorf("dns check = %+v", c)
			}
		})
	}
}

// authWorld is a name served by two authoritative servers on loopback,
// found through the test's recursive resolver.
type authWorld struct {
	e        *env
	rec      *zoneServer
	ns1, ns2 *zoneServer
}

// newAuthWorld starts the resolver with recRecords plus the zone's
// delegation to ns1 (127.0.0.2) and ns2 (127.0.0.3), each serving zone
// shop.test with authRecords.
func newAuthWorld(t *testing.T, recRecords, authRecords []string) *authWorld {
	return authWorldIn(newEnv(t), recRecords, authRecords)
}

// authWorldIn is newAuthWorld in an existing env.
func authWorldIn(e *env, recRecords, authRecords []string) *authWorld {
	t := e.t
	port, pcs := sharedPort(t, "127.0.0.2", "127.0.0.3")
	auth := append([]string{"shop.test. 60 IN SOA ns1.shop.test. admin.shop.test. 1 60 60 60 60",
		"shop.test. 60 IN NS ns1.shop.test.", "shop.test. 60 IN NS ns2.shop.test."}, authRecords...)
	w := &authWorld{e: e}
	w.ns1 = serveZone(t, pcs[0], "shop.test", auth...)
	w.ns2 = serveZone(t, pcs[1], "shop.test", auth...)
	w.rec = recursive(t, append([]string{"shop.test. 60 IN SOA ns1.shop.test. admin.shop.test. 1 60 60 60 60",
		"shop.test. 60 IN NS ns1.shop.test.", "shop.test. 60 IN NS ns2.shop.test.",
		"ns1.shop.test. 60 IN A 127.0.0.2", "ns2.shop.test. 60 IN A 127.0.0.3"}, recRecords...)...)
	e.atResolver(w.rec, port)
	return w
}

// TestAuthoritativeDisagrees: the resolver says one address, the name's
// own servers another. On a site that works there it is a finding; where
// the resolver's address does not connect it is the cause; a name the
// resolver says does not exist while its servers give it is one too.
func TestAuthoritativeDisagrees(t *testing.T) {
	t.Run("agree", func(t *testing.T) {
		w := newAuthWorld(t, []string{"www.shop.test. 60 IN A 127.0.0.1"}, []string{"www.shop.test. 60 IN A 127.0.0.1"})
		w.e.httpSite(ok("hi"))
		w.e.cfg.Ports.HTTPS = closedPort(t)
		r := w.e.diagnose("http://www.shop.test/")
		if r.Verdict.Code != Healthy || hasFinding(r, DNSMismatch) != nil || hasFinding(r, DNSLameDelegation) != nil {
			t.Fatalf("verdict %s, findings %+v", r.Verdict.Code, r.Findings)
		}
		a := r.DNS.Authoritative
		if a == nil || a.Zone != "shop.test" || a.Disagree || len(a.Servers) != 2 || a.Servers[0].Outcome != "answered" || a.Servers[1].Outcome != "answered" {
			t.Fatalf("authoritative = %+v", a)
		}
		if c := checkNamed(r, "dns (authoritative)"); c == nil || c.Status != StatusOK {
			t.Errorf("check = %+v", c)
		}
	})
	t.Run("healthy site, stale record", func(t *testing.T) {
		w := newAuthWorld(t, []string{"www.shop.test. 60 IN A 127.0.0.1"}, []string{"www.shop.test. 60 IN A 127.0.0.5"})
		w.e.httpSite(ok("hi"))
		w.e.cfg.Ports.HTTPS = closedPort(t)
		r := w.e.diagnose("http://www.shop.test/")
		if r.Verdict.Code != Healthy {
			t.Fatalf("verdict %s: %s", r.Verdict.Code, r.Verdict.Summary)
		}
		f := hasFinding(r, DNSMismatch)
		if f == nil || !strings.Contains(f.Summary, "127.0.0.5") {
			t.Fatalf("findings = %+v", r.Findings)
		}
		a := r.DNS.Authoritative
		if !a.Disagree || !slices.Equal(a.Stale, []string{"127.0.0.1"}) || !slices.Equal(a.Missing, []string{"127.0.0.5"}) {
			t.Errorf("authoritative = %+v", a)
		}
	})
	t.Run("servers rotating over a pool", func(t *testing.T) {
		w := newAuthWorld(t, []string{"www.shop.test. 60 IN A 127.0.0.1"},
			[]string{"www.shop.test. 60 IN A 127.0.0.5", "www.shop.test. 60 IN A 127.0.0.6"})
		w.ns1.with(func() { w.ns1.rotate = true })
		w.ns2.with(func() { w.ns2.rotate = true })
		w.e.httpSite(ok("hi"))
		w.e.cfg.Ports.HTTPS = closedPort(t)
		r := w.e.diagnose("http://www.shop.test/")
		if a := r.DNS.Authoritative; r.Verdict.Code != Healthy || hasFinding(r, DNSMismatch) != nil || a.Disagree || !strings.Contains(a.Note, "rotation") {
			t.Fatalf("verdict %s, findings %+v, authoritative %+v", r.Verdict.Code, r.Findings, a)
		}
	})
	t.Run("both families", func(t *testing.T) {
		w := newAuthWorld(t, []string{"www.shop.test. 60 IN A 127.0.0.1"},
			[]string{"www.shop.test. 60 IN A 127.0.0.1", "www.shop.test. 60 IN AAAA ::1"})
		w.e.cfg.AllowNets = append(w.e.cfg.AllowNets, mustPrefix("::1/128"))
		w.e.httpSite(ok("hi"))
		w.e.cfg.Ports.HTTPS = closedPort(t)
		r := w.e.diagnose("http://www.shop.test/")
		a := r.DNS.Authoritative
		if !slices.Equal(a.Missing, []string{"::1"}) || !slices.Equal(a.Servers[0].Addresses, []string{"127.0.0.1", "::1"}) {
			t.Fatalf("authoritative = %+v", a)
		}
	})
	t.Run("failing at the stale address, the new one listening", func(t *testing.T) {
		w := newAuthWorld(t, []string{"www.shop.test. 60 IN A 127.0.0.1"}, []string{"www.shop.test. 60 IN A 127.0.0.5"})
		w.e.cfg.Ports = Ports{HTTP: newServerOnly(t, "127.0.0.5"), HTTPS: closedPort(t)}
		r := w.e.diagnose("http://www.shop.test/")
		if r.Verdict.Code != DNSMismatch || r.Verdict.Layer != LayerDNS {
			t.Fatalf("verdict %s: %s", r.Verdict.Code, r.Verdict.Summary)
		}
		if hasFinding(r, TCPRefused) == nil {
			t.Errorf("findings = %+v, want the refusal at the stale address", r.Findings)
		}
		if a := r.DNS.Authoritative; !slices.Equal(a.Reachable, []string{"127.0.0.5"}) {
			t.Errorf("reachable = %v", a.Reachable)
		}
	})
	t.Run("failing at both addresses", func(t *testing.T) {
		// Servers that answer by location fail alike: not the record.
		w := newAuthWorld(t, []string{"www.shop.test. 60 IN A 127.0.0.1"}, []string{"www.shop.test. 60 IN A 127.0.0.5"})
		w.e.cfg.Ports = Ports{HTTP: closedPort(t), HTTPS: closedPort(t)}
		r := w.e.diagnose("http://www.shop.test/")
		if r.Verdict.Code != TCPRefused || hasFinding(r, DNSMismatch) == nil {
			t.Fatalf("verdict %s, findings %+v", r.Verdict.Code, r.Findings)
		}
	})
	t.Run("not found at the resolver, found at the servers", func(t *testing.T) {
		w := newAuthWorld(t, nil, []string{"new.shop.test. 60 IN A 127.0.0.1"})
		r := w.e.diagnose("http://new.shop.test/")
		if r.Verdict.Code != DNSMismatch || !strings.Contains(r.Verdict.Summary, "does not exist") {
			t.Fatalf("verdict %s: %s", r.Verdict.Code, r.Verdict.Summary)
		}
	})
	t.Run("a domain not registered", func(t *testing.T) {
		// The top-level domain's servers are not asked about a typo.
		e := newEnv(t)
		port, pcs := sharedPort(t, "127.0.0.4")
		tld := serveZone(t, pcs[0], "test", "test. 60 IN SOA a. b. 1 60 60 60 60")
		rec := recursive(t, "test. 60 IN SOA a. b. 1 60 60 60 60", "test. 60 IN NS tld.test.", "tld.test. 60 IN A 127.0.0.4")
		e.atResolver(rec, port)
		r := e.diagnose("http://shpo.test/")
		if r.Verdict.Code != DNSNXDomain || tld.queries.Load() != 0 {
			t.Fatalf("verdict %s, the top-level domain's server asked %d questions", r.Verdict.Code, tld.queries.Load())
		}
	})
	t.Run("an alias at the resolver", func(t *testing.T) {
		// The servers are asked for the end of the chain.
		w := newAuthWorld(t, []string{"www.other.test. 60 IN CNAME www.shop.test.", "www.shop.test. 60 IN A 127.0.0.1"},
			[]string{"www.shop.test. 60 IN A 127.0.0.5"})
		w.e.httpSite(ok("hi"))
		w.e.cfg.Ports.HTTPS = closedPort(t)
		r := w.e.diagnose("http://www.other.test/")
		if a := r.DNS.Authoritative; a == nil || a.Name != "www.shop.test" || !a.Disagree {
			t.Fatalf("authoritative = %+v", a)
		}
	})
}

// newServerOnly listens on ip only, at a port 127.0.0.1 does not listen
// on, and returns the port: the new server of a name whose old address
// refuses.
func newServerOnly(t testing.TB, ip string) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := portOf(ln)
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			ln.Close()
			continue
		}
		t.Cleanup(func() { ln.Close() })
		serveHTTP(t, ln, ok("new"), nil)
		return port
	}
	t.Fatal("no port free on 127.0.0.1 beside one on " + ip)
	return 0
}

// TestLameDelegation: a zone whose servers refuse or do not exist cannot
// be looked up; the report names each server and what it did. The zone is
// found from the resolver, or, when the resolver fails for it too, from
// the parent zone's referral.
func TestLameDelegation(t *testing.T) {
	t.Run("servers the resolver names", func(t *testing.T) {
		e := newEnv(t)
		port, pcs := sharedPort(t, "127.0.0.2")
		ns1 := serveZone(t, pcs[0], "other.test", "other.test. 60 IN SOA a. b. 1 60 60 60 60")
		ns1.with(func() { ns1.refuse = true })
		rec := recursive(t, "shop.test. 60 IN NS ns1.shop.test.", "shop.test. 60 IN NS ns2.shop.test.", "shop.test. 60 IN NS ns3.gone.test.",
			"ns1.shop.test. 60 IN A 127.0.0.2", "ns2.shop.test. 60 IN A 127.0.0.3")
		rec.with(func() { rec.servfail["www.shop.test"] = true })
		e.atResolver(rec, port)
		r := e.diagnose("http://www.shop.test/")
		if r.Verdict.Code != DNSLameDelegation || r.Verdict.Layer != LayerDNS {
			t.Fatalf("verdict %s: %s", r.Verdict.Code, r.Verdict.Summary)
		}
		a := r.DNS.Authoritative
		outcomes := map[string]string{}
		for _, s := range a.Servers {
			outcomes[s.Name] = s.Outcome
		}
		if !a.Lame || outcomes["ns1.shop.test"] != "refused" || outcomes["ns2.shop.test"] != "unreachable" || outcomes["ns3.gone.test"] != "unresolved" {
			t.Errorf("authoritative = %+v", a)
		}
		if !strings.Contains(r.Verdict.Summary, "ns1.shop.test (refused)") {
			t.Errorf("summary %q", r.Verdict.Summary)
		}
	})
	t.Run("a server that refers up", func(t *testing.T) {
		e := newEnv(t)
		port, pcs := sharedPort(t, "127.0.0.2", "127.0.0.9")
		z := serveZone(t, pcs[0], "other.test", "other.test. 60 IN SOA a. b. 1 60 60 60 60")
		z.with(func() { z.upward = true })
		root := serveZone(t, pcs[1], ".", ". 60 IN SOA a. b. 1 60 60 60 60")
		rec := recursive(t, "shop.test. 60 IN NS ns1.shop.test.", "ns1.shop.test. 60 IN A 127.0.0.2")
		rec.with(func() { rec.servfail["www.shop.test"] = true })
		e.atResolver(rec, port)
		r := e.diagnose("http://www.shop.test/")
		if a := r.DNS.Authoritative; r.Verdict.Code != DNSLameDelegation || a.Servers[0].Outcome != "not_authoritative" {
			t.Fatalf("verdict %s, authoritative %+v", r.Verdict.Code, a)
		}
		if n := root.queries.Load(); n != 0 {
			t.Errorf("the referral up was followed: the root was asked %d questions", n)
		}
	})
	t.Run("servers the parent refers to", func(t *testing.T) {
		e := newEnv(t)
		port, pcs := sharedPort(t, "127.0.0.4")
		serveZone(t, pcs[0], "test", "test. 60 IN SOA a. b. 1 60 60 60 60",
			"shop.test. 60 IN NS ns1.shop.test.", "ns1.shop.test. 60 IN A 127.0.0.3")
		rec := recursive(t, "test. 60 IN NS tld.test.", "tld.test. 60 IN A 127.0.0.4")
		rec.with(func() { rec.servfail["www.shop.test"], rec.servfail["shop.test"] = true, true })
		e.atResolver(rec, port)
		r := e.diagnose("http://www.shop.test/")
		if r.Verdict.Code != DNSLameDelegation {
			t.Fatalf("verdict %s: %s", r.Verdict.Code, r.Verdict.Summary)
		}
		if a := r.DNS.Authoritative; a.Zone != "shop.test" || len(a.Servers) != 1 || a.Servers[0].Name != "ns1.shop.test" {
			t.Errorf("authoritative = %+v", a)
		}
	})
	t.Run("one of two servers refuses", func(t *testing.T) {
		w := newAuthWorld(t, []string{"www.shop.test. 60 IN A 127.0.0.1"}, []string{"www.shop.test. 60 IN A 127.0.0.1"})
		w.ns2.with(func() { w.ns2.refuse = true })
		w.e.httpSite(ok("hi"))
		w.e.cfg.Ports.HTTPS = closedPort(t)
		r := w.e.diagnose("http://www.shop.test/")
		f := hasFinding(r, DNSLameDelegation)
		if r.Verdict.Code != Healthy || f == nil || !strings.Contains(f.Summary, "1 of 2") || !strings.Contains(f.Summary, "ns2.shop.test (refused)") {
			t.Fatalf("verdict %s, findings %+v", r.Verdict.Code, r.Findings)
		}
	})
}

// TestDNSWithheld: the name's servers are whatever the name's owner says:
// one on a non-public address is not asked, and neither its address nor
// the resolver's non-public answers reach the report.
func TestDNSWithheld(t *testing.T) {
	e := newEnv(t)
	rec := recursive(t, "shop.test. 60 IN NS ns1.shop.test.", "ns1.shop.test. 60 IN A 10.255.0.53",
		"www.shop.test. 60 IN A 127.0.0.1", "www.shop.test. 60 IN A 10.1.2.3")
	e.atResolver(rec, 53)
	e.httpSite(ok("hi"))
	e.cfg.Ports.HTTPS = closedPort(t)
	r := e.diagnose("http://www.shop.test/") // the env fails the test on any dial off loopback
	a := r.DNS.Authoritative
	if a == nil || len(a.Servers) != 1 || a.Servers[0].Outcome != "withheld" || a.Servers[0].Address != "" || a.Note == "" {
		t.Fatalf("authoritative = %+v", a)
	}
	out, _ := json.Marshal(r)
	for _, secret := range []string{"10.255.0.53", "10.1.2.3"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("the report holds %s", secret)
		}
	}
	if ans := r.DNS.Resolver.Answers[0]; ans.Withheld != 1 {
		t.Errorf("A answer = %+v, want one withheld", ans)
	}
	if e.leaks.Load() != 0 {
		t.Errorf("%d dials left loopback", e.leaks.Load())
	}
}

// TestDNSQuestionsBounded: the expert's questions for a name with two
// servers stay few: the resolver is asked for NS twice (the name, whose
// negative answer's SOA names the zone, then the zone; the servers' glue
// comes with that answer), and each server A and AAAA once.
func TestDNSQuestionsBounded(t *testing.T) {
	w := newAuthWorld(t, []string{"a.b.www.shop.test. 60 IN A 127.0.0.1"}, []string{"a.b.www.shop.test. 60 IN A 127.0.0.1"})
	w.e.httpSite(ok("hi"))
	w.e.cfg.Ports.HTTPS = closedPort(t)
	w.e.cfg.Samples = 0
	if r := w.e.diagnose("http://a.b.www.shop.test/"); r.DNS.Authoritative == nil || r.DNS.Authoritative.Disagree {
		t.Fatalf("authoritative = %+v", r.DNS.Authoritative)
	}
	if n := w.rec.asked(dns.TypeNS); n != 2 {
		t.Errorf("the resolver was asked for NS %d times, want 2", n)
	}
	for _, ns := range []*zoneServer{w.ns1, w.ns2} {
		if n := ns.queries.Load(); n != 2 {
			t.Errorf("%s was asked %d questions, want 2 (A and AAAA)", ns.addr, n)
		}
	}
}

// BenchmarkAuthoritative measures the authoritative check alone against
// loopback servers: time and DNS questions per check.
//
//	go test ./probes -run XXX -bench Authoritative
func BenchmarkAuthoritative(b *testing.B) {
	e := newEnv(b)
	w := authWorldIn(e, []string{"www.shop.test. 60 IN A 127.0.0.1"}, []string{"www.shop.test. 60 IN A 127.0.0.1"})
	p := e.prober()
	resolved := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	b.ResetTimer()
	for b.Loop() {
		if a := p.authoritative(context.Background(), w.rec.addr, "www.shop.test", resolved, false); a.Disagree || a.Note != "" {
			b.Fatalf("authoritative = %+v", a)
		}
	}
	q := w.rec.queries.Load() + w.ns1.queries.Load() + w.ns2.queries.Load()
	b.ReportMetric(float64(q)/float64(b.N), "questions/op")
}

// BenchmarkDiagnoseByName measures a whole diagnosis of a name resolved
// at a resolver on loopback, whose zone has two servers, with the DNS
// questions each kind of server got per diagnosis (the resolver's include
// the lookups every connection makes).
//
//	go test ./probes -run XXX -bench DiagnoseByName -benchtime 20x
func BenchmarkDiagnoseByName(b *testing.B) {
	e := newEnv(b)
	w := authWorldIn(e, []string{"www.shop.test. 60 IN A 127.0.0.1"}, []string{"www.shop.test. 60 IN A 127.0.0.1"})
	e.httpSite(ok("hi"))
	e.cfg.Ports.HTTPS = closedPort(b)
	e.cfg.Samples, e.cfg.SampleSpacing = 5, time.Millisecond
	p := e.prober()
	b.ResetTimer()
	for b.Loop() {
		if r := p.Diagnose(context.Background(), "http://www.shop.test/"); r.Verdict.Code != Healthy || r.DNS.Authoritative == nil {
			b.Fatalf("verdict %s", r.Verdict.Code)
		}
	}
	b.ReportMetric(float64(w.rec.queries.Load())/float64(b.N), "resolver-questions/op")
	b.ReportMetric(float64(w.rec.asked(dns.TypeNS))/float64(b.N), "resolver-NS/op")
	b.ReportMetric(float64(w.ns1.queries.Load()+w.ns2.queries.Load())/float64(b.N), "authoritative-questions/op")
}
