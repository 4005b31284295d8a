package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// TestResolverFlag: diagnose --resolver resolves names at the resolver
// given, a real DNS server on loopback, and nowhere else.
func TestResolverFlag(t *testing.T) {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hi")) }))
	defer site.Close()
	_, port, _ := net.SplitHostPort(site.Listener.Addr().String())

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		if q.Name == "shop.gatecheck-test." {
			asked.Add(1)
			if q.Qtype == dns.TypeA {
				rr, _ := dns.NewRR("shop.gatecheck-test. 60 IN A 127.0.0.1")
				m.Answer = append(m.Answer, rr)
			}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	defer srv.Shutdown()

	url := "http://shop.gatecheck-test:" + port + "/"
	code, out, errs := runCmd(t, "diagnose", "--json", "--samples", "0", "--allow-net", "127.0.0.0/8", "--resolver", pc.LocalAddr().String(), url)
	if code != 0 {
		t.Fatalf("exit = %d: %s%s", code, out, errs)
	}
	var got struct {
		Verdict struct{ Code string }
		DNS     struct {
			Addresses []string
			Resolver  struct {
				Address string
				Source  string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Verdict.Code != "healthy" || strings.Join(got.DNS.Addresses, ",") != "127.0.0.1" || got.DNS.Resolver.Source != "flag" {
		t.Errorf("verdict %s, dns %+v", got.Verdict.Code, got.DNS)
	}
	if asked.Load() == 0 {
		t.Error("the resolver given was never asked")
	}

	for _, bad := range []string{"resolver.example:53", "127.0.0.1:0", "0.0.0.0:53", "127.0.0.1:99999"} {
		code, _, errs := runCmd(t, "diagnose", "--resolver", bad, url)
		if code != exitUsage || !strings.Contains(errs, "--resolver") {
			t.Errorf("--resolver %s: exit %d, %q", bad, code, errs)
		}
	}
	if got, err := resolverAddr("9.9.9.9"); got != "9.9.9.9:53" || err != nil {
		t.Errorf("a bare address: %q, %v", got, err)
	}
}
