package probes

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsServer is a name server on loopback whose answers the test sets.
type dnsServer struct {
	addr string
	mu   sync.Mutex
	// records maps a name (no trailing dot) to its records: "A 127.0.0.1",
	// "AAAA ::1", "CNAME other.test", "SERVFAIL", "SILENT".
	records map[string][]string
	// answer, when set, decides the A records per query (DNS rebinding).
	answer  func(name string, n int) []string
	queries map[string]int
}

func newDNSServer(t testing.TB) *dnsServer {
	t.Helper()
	s := &dnsServer{records: map[string][]string{}, queries: map[string]int{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return s
}

func (s *dnsServer) set(name string, recs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[name] = append(s.records[name], recs...)
}

// setAnswer installs a function deciding A records per query.
func (s *dnsServer) setAnswer(f func(name string, n int) []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = f
}

func (s *dnsServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	name := strings.TrimSuffix(strings.ToLower(q.Name), ".")
	s.mu.Lock()
	recs, known := s.records[name]
	if s.answer != nil && q.Qtype == dns.TypeA {
		s.queries[name]++
		if a := s.answer(name, s.queries[name]); a != nil {
			recs, known = a, true
		}
	}
	s.mu.Unlock()
	if !known {
		m.Rcode = dns.RcodeNameError
		w.WriteMsg(m)
		return
	}
	for _, r := range recs {
		switch {
		case r == "SILENT":
			return
		case r == "SERVFAIL":
			m.Rcode = dns.RcodeServerFailure
			w.WriteMsg(m)
			return
		}
	}
	// Follow CNAMEs as a recursive resolver would, putting the chain first.
	cur := name
	for i := 0; i < 8; i++ {
		next := ""
		for _, r := range s.records[cur] {
			if target, ok := strings.CutPrefix(r, "CNAME "); ok {
				m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: dns.Fqdn(cur), Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: dns.Fqdn(target)})
				next = target
			}
		}
		if next == "" {
			break
		}
		cur = next
	}
	if cur != name {
		recs = s.records[cur]
	}
	for _, r := range recs {
		typ, val, _ := strings.Cut(r, " ")
		hdr := dns.RR_Header{Name: dns.Fqdn(cur), Class: dns.ClassINET, Ttl: 0}
		switch {
		case typ == "A" && q.Qtype == dns.TypeA:
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.ParseIP(val).To4()})
		case typ == "AAAA" && q.Qtype == dns.TypeAAAA:
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: net.ParseIP(val)})
		}
	}
	w.WriteMsg(m)
}

// resolver returns a Go resolver that only ever talks to this server.
func (s *dnsServer) resolver(t testing.TB) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.addr)
	}}
}

// testPKI is a private certificate authority for the tests.
type testPKI struct {
	root, inter       *x509.Certificate
	rootKey, interKey *ecdsa.PrivateKey
	pool              *x509.CertPool
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{}
	p.root, p.rootKey = makeCert(t, certSpec{cn: "gatecheck test root", ca: true})
	p.inter, p.interKey = makeCert(t, certSpec{cn: "gatecheck test intermediate", ca: true, parent: p.root, parentKey: p.rootKey})
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.root)
	return p
}

type certSpec struct {
	cn                  string
	names               []string
	notBefore, notAfter time.Time
	ca                  bool
	parent              *x509.Certificate
	parentKey           *ecdsa.PrivateKey
}

var serial atomic.Int64

func makeCert(t testing.TB, s certSpec) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if s.notBefore.IsZero() {
		s.notBefore = time.Now().Add(-24 * time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = time.Now().Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: s.cn, Organization: []string{"gatecheck tests"}},
		NotBefore:             s.notBefore,
		NotAfter:              s.notAfter,
		BasicConstraintsValid: true,
		IsCA:                  s.ca,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if s.ca {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	for _, n := range s.names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	parent, parentKey := tmpl, key
	if s.parent != nil {
		parent, parentKey = s.parent, s.parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// leaf issues a server certificate through the intermediate. With chain
// false the intermediate is not sent (an incomplete chain).
func (p *testPKI) leaf(t testing.TB, s certSpec, chain bool) tls.Certificate {
	s.parent, s.parentKey = p.inter, p.interKey
	c, key := makeCert(t, s)
	tc := tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
	if chain {
		tc.Certificate = append(tc.Certificate, p.inter.Raw)
	}
	return tc
}

// selfSigned returns a certificate that signs itself.
func selfSigned(t testing.TB, names ...string) tls.Certificate {
	c, key := makeCert(t, certSpec{cn: names[0], names: names})
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

// listen opens a TCP listener on loopback and closes it with the test.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func portOf(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// serveHTTP serves h on ln (with TLS when cert is given) until the test ends.
func serveHTTP(t testing.TB, ln net.Listener, h http.Handler, cert *tls.Certificate) {
	srv := &http.Server{Handler: h, ErrorLog: discardLogger, ReadHeaderTimeout: 5 * time.Second}
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// closedPort returns a loopback port nothing listens on (connections are refused).
func closedPort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := portOf(ln)
	ln.Close()
	return p
}

// blackholePort returns a loopback port whose accept queue is full, so new
// connections hang until they time out: a real connect timeout on loopback.
func blackholePort(t testing.TB) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	port := sa.(*syscall.SockaddrInet4).Port
	t.Cleanup(func() { syscall.Close(fd) })
	// Fill the queue: with a backlog of 0 the kernel queues one connection.
	for i := 0; i < 2; i++ {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 300*time.Millisecond)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return port
}

// rawServer accepts connections on ln and hands each to fn.
func rawServer(t testing.TB, ln net.Listener, fn func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); fn(c) }()
		}
	}()
}

// env is one test's world: a DNS server, a PKI, and a prober wired to them
// that may only ever reach loopback.
type env struct {
	t     testing.TB
	dns   *dnsServer
	pki   *testPKI
	cfg   Config
	leaks atomic.Int32
}

var sharedPKI struct {
	once sync.Once
	pki  *testPKI
}

func newEnv(t testing.TB) *env {
	sharedPKI.once.Do(func() { sharedPKI.pki = newPKI(t) })
	e := &env{t: t, dns: newDNSServer(t), pki: sharedPKI.pki}
	e.cfg = Config{
		Timeout:        3 * time.Second,
		DNSTimeout:     time.Second,
		ConnectTimeout: time.Second,
		TLSTimeout:     2 * time.Second,
		Samples:        3,
		SampleSpacing:  5 * time.Millisecond,
		AllowNets:      []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Resolver:       e.dns.resolver(t),
		DNSServers:     []string{e.dns.addr},
		RootCAs:        e.pki.pool,
	}
	return e
}

// prober builds the prober; every dial the guard lets through must be on
// loopback, or the test fails (and the dial is stopped).
func (e *env) prober() *Prober {
	p := New(e.cfg)
	p.afterGuard = func(network, address string) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			e.leaks.Add(1)
			e.t.Errorf("the guard let a dial to %s through", address)
			return fmt.Errorf("test: not loopback")
		}
		return nil
	}
	return p
}

func (e *env) diagnose(url string) *Report {
	e.t.Helper()
	r := e.prober().Diagnose(context.Background(), url)
	if e.t.Failed() {
		e.t.Logf("report: %+v", r.Checks)
	}
	return r
}

var discardLogger = log.New(io.Discard, "", 0)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
