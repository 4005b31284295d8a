package probes

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestDNSRecordsCNAMEChain(t *testing.T) {
	e := newEnv(t)
	e.dns.set("www.shop.test", "CNAME shop.edge.test")
	e.dns.set("shop.edge.test", "CNAME lb.edge.test")
	e.name("lb.edge.test")
	e.httpSite(ok("hi"))
	e.cfg.Ports.HTTPS = closedPort(t)
	r := e.diagnose("http://www.shop.test/")
	if r.Verdict.Code != Healthy {
		t.Fatalf("verdict %s: %s", r.Verdict.Code, r.Verdict.Summary)
	}
	want := []string{"www.shop.test → shop.edge.test", "shop.edge.test → lb.edge.test"}
	if strings.Join(r.DNS.CNAMEs, "|") != strings.Join(want, "|") {
		t.Errorf("chain = %q, want %q", r.DNS.CNAMEs, want)
	}
	if len(r.DNS.Addresses) != 1 || r.DNS.Addresses[0] != "127.0.0.1" {
		t.Errorf("addresses = %v", r.DNS.Addresses)
	}
}

func TestDNSResolverTimesOut(t *testing.T) {
	e := newEnv(t)
	e.dns.set("slow.test", "SILENT")
	e.cfg.DNSTimeout = 300e6
	r := e.diagnose("https://slow.test/")
	if r.Verdict.Code != DNSFailure || !r.DNS.TimedOut {
		t.Errorf("verdict %s, dns %+v; want dns_failure, timed out", r.Verdict.Code, r.DNS)
	}
}

// A name with two addresses where only one accepts: the report must say
// which, since browsers that pick the other one fail.
func TestSomeAddressesFail(t *testing.T) {
	ln6, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	port := portOf(ln6)
	ln6.Close() // ::1 on this port now refuses
	ln4, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Skipf("port %d taken on 127.0.0.1: %v", port, err)
	}
	t.Cleanup(func() { ln4.Close() })
	serveHTTP(t, ln4, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)

	e := newEnv(t)
	e.cfg.AllowNets = append(e.cfg.AllowNets, mustPrefix("::1/128"))
	e.name("dual.test", "127.0.0.1", "::1")
	e.cfg.Ports = Ports{HTTP: port, HTTPS: closedPort(t)}
	r := e.diagnose("http://dual.test/")
	if len(r.TCP) != 2 {
		t.Fatalf("tcp = %+v, want both addresses tried", r.TCP)
	}
	var found bool
	for _, f := range r.Findings {
		if f.Code == TCPRefused && strings.Contains(f.Summary, "1 of 2") && strings.Contains(f.Summary, "[::1]") {
			found = true
		}
	}
	if !found {
		t.Errorf("findings = %+v, want tcp_refused naming [::1]", r.Findings)
	}
}
