package probes

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestGuardRefusesBypasses tries the usual ways of reaching an internal
// address through a URL checker. Only 127.0.0.2 is allowed, so that the
// redirecting server can run; everything else must be refused, and no dial
// may ever get past the guard to anything but 127.0.0.2.
func TestGuardRefusesBypasses(t *testing.T) {
	// A "secret" server on 127.0.0.1 that no attempt may reach.
	var secretHits atomic.Int32
	secretLn := listen(t)
	serveHTTP(t, secretLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secretHits.Add(1)
		w.Write([]byte("internal secret"))
	}), nil)
	sp := strconv.Itoa(portOf(secretLn))

	// The allowed server on 127.0.0.2 redirects wherever ?to= says.
	relayLn, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2 here: %v", err)
	}
	t.Cleanup(func() { relayLn.Close() })
	serveHTTP(t, relayLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	}), nil)
	relay := "http://127.0.0.2:" + strconv.Itoa(portOf(relayLn)) + "/?to="

	// DNS rebinding: the first lookups say 127.0.0.2 (allowed), later ones
	// say 127.0.0.1, the secret server's address, on the same port.
	rebindLn, err := net.Listen("tcp", "127.0.0.2:"+sp)
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2:%s: %v", sp, err)
	}
	t.Cleanup(func() { rebindLn.Close() })
	serveHTTP(t, rebindLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("public")) }), nil)

	attempts := []string{
		"http://127.0.0.1:" + sp + "/",
		"http://localhost:" + sp + "/",
		"http://LOCALHOST.:" + sp + "/",
		"http://127.1:" + sp + "/",
		"http://2130706433:" + sp + "/",
		"http://0x7f000001:" + sp + "/",
		"http://017700000001:" + sp + "/",
		"http://0x7f.0.0.1:" + sp + "/",
		"http://0177.0.0.1:" + sp + "/",
		"http://127.000.000.001:" + sp + "/",
		"http://１２７.０.０.１:" + sp + "/", // full-width digits, which IDNA maps to ASCII
		"http://[::1]:" + sp + "/",
		"http://[0:0:0:0:0:0:0:1]:" + sp + "/",
		"http://[::ffff:127.0.0.1]:" + sp + "/",
		"http://[::ffff:7f00:1]:" + sp + "/",
		"http://[::127.0.0.1]:" + sp + "/",
		"http://user:pass@127.0.0.1:" + sp + "/",
		"http://evil.test@127.0.0.1:" + sp + "/",
		"http://0.0.0.0:" + sp + "/",
		"http://0:" + sp + "/",
		"http://[::]:" + sp + "/",
		"http://10.0.0.1/",
		"http://172.16.0.1/",
		"http://192.168.1.1/",
		"http://100.64.0.1/",
		"http://169.254.169.254/latest/meta-data/",
		"http://0xa9fea9fe/latest/meta-data/",
		"http://[::ffff:a9fe:a9fe]/",
		"http://[64:ff9b::a9fe:a9fe]/",
		"http://[2002:7f00:1::1]/",
		"http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
		"http://[fe80::1]/",
		"http://[fe80::1%25lo]/",
		"http://[fc00::1]/",
		"http://[fd12:3456::1]/",
		"http://[ff02::1]/",
		"http://224.0.0.1/",
		"http://255.255.255.255/",
		"http://240.0.0.1/",
		"http://192.0.2.1/",
		"http://198.18.0.1/",
		"http://[2001:db8::1]/",
		"https://internal.test/",
		"https://meta.test/",
		"https://six.test:" + sp + "/",
		"https://mapped.test:" + sp + "/",
		"https://alias.test/",
		"https://both-private.test/",
		relay + "http://127.0.0.1:" + sp + "/",
		relay + "http://localhost:" + sp + "/",
		relay + "http://0x7f.1:" + sp + "/",
		relay + "http://[::1]:" + sp + "/",
		relay + "http://169.254.169.254/latest/meta-data/",
		relay + "http://internal.test/",
		relay + "//127.0.0.1:" + sp + "/",
		"http://rebind.test:" + sp + "/",
	}
	if len(attempts) < 30 {
		t.Fatalf("only %d attempts", len(attempts))
	}
	for _, u := range attempts {
		t.Run(u, func(t *testing.T) {
			e := newEnv(t)
			e.cfg.AllowNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
			e.cfg.Samples = 2
			e.dns.set("localhost", "A 127.0.0.1")
			e.dns.set("internal.test", "A 10.0.0.1")
			e.dns.set("meta.test", "A 169.254.169.254")
			e.dns.set("six.test", "AAAA ::1")
			e.dns.set("mapped.test", "AAAA ::ffff:127.0.0.1")
			e.dns.set("alias.test", "CNAME internal.test")
			e.dns.set("both-private.test", "A 10.1.2.3", "A 192.168.0.7", "AAAA fd00::7")
			e.dns.setAnswer(func(name string, n int) []string {
				if name != "rebind.test" {
					return nil
				}
				if n <= 2 { // the DNS probe's lookup and its CNAME query
					return []string{"A 127.0.0.2"}
				}
				return []string{"A 127.0.0.1"}
			})
			before := secretHits.Load()
			r := e.diagnose(u)
			t.Logf("%s", r.Verdict.Summary)
			if r.Verdict.Code != BlockedTarget {
				t.Errorf("verdict = %s (%s), want blocked_target", r.Verdict.Code, r.Verdict.Summary)
			}
			if secretHits.Load() != before {
				t.Errorf("the internal server was reached")
			}
			if e.leaks.Load() != 0 {
				t.Errorf("%d dials got past the guard", e.leaks.Load())
			}
		})
	}
}

func TestGuardCheck(t *testing.T) {
	g := NewGuard([]netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd00:1::/32")})
	for _, tt := range []struct {
		addr  string
		allow bool
	}{
		{"93.184.216.34", true},
		{"2606:2800:220:1:248:1893:25c8:1946", true},
		{"10.20.1.1", true}, // allowed by the operator
		{"fd00:1::5", true},
		{"10.21.0.1", false}, // next door is not
		{"127.0.0.1", false},
		{"::ffff:10.20.1.1", false}, // the mapped form does not inherit the allowance
		{"169.254.169.254", false},
		{"64:ff9b::808:808", false},
		{"2001:db8::1", false},
	} {
		err := g.Check(netip.MustParseAddr(tt.addr))
		if (err == nil) != tt.allow {
			t.Errorf("Check(%s) = %v, want allowed=%v", tt.addr, err, tt.allow)
		}
	}
	if err := g.Control("udp4", "93.184.216.34:53", nil); err == nil {
		t.Error("Control allowed UDP")
	}
}

func TestGuardExplainsRefusals(t *testing.T) {
	g := NewGuard(nil)
	for addr, want := range map[string]string{
		"169.254.169.254": "cloud metadata",
		"10.1.1.1":        "private",
		"::1":             "loopback",
		"64:ff9b::1":      "NAT64",
		"2002::1":         "6to4",
		"2001::1":         "Teredo",
		"fd00::1":         "unique local",
		"::ffff:1.2.3.4":  "IPv4-mapped",
	} {
		err := g.Check(netip.MustParseAddr(addr))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%s) = %v, want it to say %q", addr, err, want)
		}
	}
}

func TestParseNets(t *testing.T) {
	got, err := ParseNets("10.0.0.0/8, 192.168.1.7", "", "fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.168.1.7/32", "fd00::/8"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("got[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	if _, err := ParseNets("10.0.0.0/33"); err == nil {
		t.Error("accepted a /33")
	}
	if _, err := ParseNets("intranet"); err == nil {
		t.Error("accepted a name")
	}
}

// TestGuardRefusesSelf checks gatecheck's own listening addresses are
// refused whatever the allowed ranges say: exactly the address listened
// on, every local address for a listener on all interfaces, and the
// unspecified address (dialling 0.0.0.0 reaches this machine); other ports
// and other addresses stay as the allowed ranges say.
func TestGuardRefusesSelf(t *testing.T) {
	allowAll := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	one := NewGuard(allowAll).RefuseSelf(netip.MustParseAddrPort("127.0.0.1:8080"))
	any := NewGuard(allowAll).RefuseSelf(netip.MustParseAddrPort("[::]:9090"))
	for _, tc := range []struct {
		g       *Guard
		ap      string
		refused bool
	}{
		{one, "127.0.0.1:8080", true},
		{one, "[::ffff:127.0.0.1]:8080", true},
		{one, "0.0.0.0:8080", true},
		{one, "127.0.0.1:8081", false},
		{one, "127.0.0.2:8080", false}, // does not reach a listener bound to 127.0.0.1
		{any, "127.0.0.1:9090", true},
		{any, "127.3.4.5:9090", true},
		{any, "[::1]:9090", true},
		{any, "[::]:9090", true},
		{any, "127.0.0.1:9091", false},
		{any, "192.0.2.7:9090", false}, // not this machine's
	} {
		err := tc.g.CheckAddrPort(netip.MustParseAddrPort(tc.ap))
		var be *BlockedError
		if got := errors.As(err, &be) && be.Self; got != tc.refused {
			t.Errorf("%s: refused as self = %v (%v), want %v", tc.ap, got, err, tc.refused)
		}
		if tc.refused && (tc.g.Control("tcp4", tc.ap, nil) == nil && tc.g.Control("tcp6", tc.ap, nil) == nil) {
			t.Errorf("%s: Control let it through", tc.ap)
		}
	}
}
