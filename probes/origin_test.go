package probes

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// seen records the Host header and TLS server name each request arrived
// with.
type seen struct {
	mu    sync.Mutex
	hosts []string
	snis  []string
}

func (s *seen) handler(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		// The name without the port: the URLs of these tests carry one.
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		s.hosts = append(s.hosts, host)
		if r.TLS != nil {
			s.snis = append(s.snis, r.TLS.ServerName)
		}
		s.mu.Unlock()
		h(w, r)
	}
}

func (e *env) diagnoseOrigin(url string, origin netip.AddrPort) *Report {
	e.t.Helper()
	r := e.prober().RunOrigin(context.Background(), url, origin, nil)
	if e.t.Failed() {
		e.t.Logf("report: %+v", r.Checks)
	}
	return r
}

// A name that resolves elsewhere (to a 502) or nowhere, pinned to the
// origin: every connection goes there, with the name's Host and SNI.
func TestOriginPinned(t *testing.T) {
	e := newEnv(t)
	cert := e.pki.leaf(t, certSpec{cn: "shop.test", names: []string{"shop.test"}}, true)
	originLn := listen(t)
	var got seen
	serveHTTP(t, originLn, got.handler(okPage), &cert)
	edgeLn := listen(t)
	serveHTTP(t, edgeLn, nginx502(t), &cert)
	e.name("shop.test", "127.0.0.1") // the edge: on another port
	e.cfg.Ports = Ports{HTTP: closedPort(t), HTTPS: portOf(edgeLn)}

	public := e.diagnose("https://shop.test/")
	if public.Verdict.Code != Gateway502 || public.Origin != "" {
		t.Fatalf("public verdict = %s origin %q, want gateway_502 and no origin", public.Verdict.Code, public.Origin)
	}
	origin := netip.MustParseAddrPort("127.0.0.1:" + strconv.Itoa(portOf(originLn)))
	for _, url := range []string{"https://shop.test/", "https://nowhere.invalid/"} {
		t.Run(url, func(t *testing.T) {
			got.mu.Lock()
			got.hosts, got.snis = nil, nil
			got.mu.Unlock()
			host := strings.TrimSuffix(strings.TrimPrefix(url, "https://"), "/")
			if host == "nowhere.invalid" {
				cert2 := e.pki.leaf(t, certSpec{cn: host, names: []string{host}}, true)
				ln := listen(t)
				serveHTTP(t, ln, got.handler(okPage), &cert2)
				origin = netip.MustParseAddrPort("127.0.0.1:" + strconv.Itoa(portOf(ln)))
			}
			r := e.diagnoseOrigin(url, origin)
			if r.Verdict.Code != Healthy {
				t.Errorf("origin verdict = %s (%s), want healthy", r.Verdict.Code, r.Verdict.Summary)
			}
			if r.Origin != origin.String() || r.DNS != nil {
				t.Errorf("origin = %q, dns = %+v: want %s and no lookup", r.Origin, r.DNS, origin)
			}
			if r.TLS == nil || r.TLS.Problem != "" {
				t.Errorf("TLS = %+v, want a verified handshake with the origin", r.TLS)
			}
			got.mu.Lock()
			defer got.mu.Unlock()
			if len(got.hosts) == 0 {
				t.Fatal("the origin saw no request")
			}
			for i, h := range got.hosts {
				if h != host || i >= len(got.snis) || got.snis[i] != host {
					t.Errorf("request %d: Host %q SNI %v, want %s for both", i, h, got.snis, host)
				}
			}
			raw, _ := json.Marshal(r)
			if !strings.Contains(string(raw), `"origin":"`+origin.String()+`"`) {
				t.Errorf("JSON lacks the origin: %s", raw)
			}
		})
	}
}

// A redirect to another host is followed where that host's name leads,
// not to the origin.
func TestOriginRedirectNotPinned(t *testing.T) {
	e := newEnv(t)
	lns := listenSamePort(t, "127.0.0.1", "127.0.0.2")
	var other seen
	serveHTTP(t, lns[0], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, "shop.test:") {
			http.Redirect(w, r, "http://www.test/", http.StatusFound)
			return
		}
		t.Errorf("the origin got a request for %s: the redirect was pinned", r.Host)
		okPage(w, r)
	}), nil)
	serveHTTP(t, lns[1], other.handler(okPage), nil)
	e.name("www.test", "127.0.0.2")
	e.cfg.Ports = Ports{HTTP: portOf(lns[0]), HTTPS: closedPort(t)}
	e.cfg.Samples = 0
	r := e.diagnoseOrigin("http://shop.test/", netip.MustParseAddrPort("127.0.0.1:0"))
	if r.Verdict.Code != Healthy || r.HTTP == nil || len(r.HTTP.Hops) != 2 {
		t.Fatalf("verdict %s, hops %+v", r.Verdict.Code, r.HTTP)
	}
	other.mu.Lock()
	defer other.mu.Unlock()
	if len(other.hosts) != 1 || other.hosts[0] != "www.test" {
		t.Errorf("www.test's own server saw %v, want one request", other.hosts)
	}
}

// The guard applies to the origin: a loopback origin is refused unless
// the operator opened loopback, and then it is reached.
func TestOriginGuarded(t *testing.T) {
	e := newEnv(t)
	ln := listen(t)
	var got seen
	serveHTTP(t, ln, got.handler(okPage), nil)
	e.name("shop.test", "127.0.0.1")
	e.cfg.Ports = Ports{HTTP: portOf(ln), HTTPS: closedPort(t)}
	e.cfg.AllowNets = nil
	r := e.diagnoseOrigin("http://shop.test/", netip.MustParseAddrPort("127.0.0.1:0"))
	if r.Verdict.Code != BlockedTarget {
		t.Errorf("loopback origin without --allow-net: verdict %s, want blocked_target", r.Verdict.Code)
	}
	// An allowed public-looking name pinned to a refused origin is
	// refused all the same: the pin never skips the guard.
	p := New(e.cfg)
	if _, err := p.pinned(&Target{Host: "shop.test", Port: 80}, netip.MustParseAddrPort("127.0.0.1:0")).dial(context.Background(), "tcp", "shop.test:"+strconv.Itoa(portOf(ln))); !isBlocked(err) {
		t.Errorf("pinned dial to loopback: %v, want the guard's refusal", err)
	}
	got.mu.Lock()
	n := len(got.hosts)
	got.mu.Unlock()
	if n != 0 {
		t.Errorf("the refused origin got %d requests", n)
	}
}

// An IPv6 origin (::1), with and without a port.
func TestOriginIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback (::1) on this machine: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	e := newEnv(t)
	var got seen
	serveHTTP(t, ln, got.handler(okPage), nil)
	e.cfg.AllowNets = append(e.cfg.AllowNets, mustPrefix("::1/128"))
	e.cfg.Ports = Ports{HTTP: closedPort(t), HTTPS: closedPort(t)}
	port := portOf(ln)
	for _, c := range []struct{ url, origin string }{
		{"http://v6.test:" + strconv.Itoa(port) + "/", "::1"},
		{"http://v6.test/", "[::1]:" + strconv.Itoa(port)},
	} {
		o, err := ParseOrigin(c.origin)
		if err != nil {
			t.Fatal(err)
		}
		r := e.diagnoseOrigin(c.url, o)
		if r.Verdict.Code != Healthy || len(r.Addresses) != 1 || r.Addresses[0].Family != "ipv6" {
			t.Errorf("%s via %s: verdict %s (%s), addresses %+v", c.url, c.origin, r.Verdict.Code, r.Verdict.Summary, r.Addresses)
		}
		if len(r.TCP) != 1 || r.TCP[0].Address != "[::1]:"+strconv.Itoa(port) {
			t.Errorf("TCP = %+v, want the origin's address and port", r.TCP)
		}
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	for _, h := range got.hosts {
		if h != "v6.test" {
			t.Errorf("Host %q, want the name's", h)
		}
	}
}

func TestParseOrigin(t *testing.T) {
	for _, c := range []struct {
		in, want string // want "" means refused
		says     string // a word the refusal says
	}{
		{"203.0.113.7", "203.0.113.7", ""},
		{" 203.0.113.7:8443 ", "203.0.113.7:8443", ""},
		{"2001:db8::1", "2001:db8::1", ""},
		{"[2001:db8::1]", "2001:db8::1", ""},
		{"[2001:db8::1]:8443", "[2001:db8::1]:8443", ""},
		{"::ffff:203.0.113.7", "203.0.113.7", ""},
		{"::1", "::1", ""},
		{"", "", "empty"},
		{"origin.example.com", "", "not a name"},
		{"origin.example.com:8443", "", "not a name"},
		{"localhost", "", "not a name"},
		{"203.0.113.7:0", "", "port 0"},
		{"203.0.113.7:99999", "", "not an IP address"},
		{"1.2.3", "", "not an IP address"},
		{"fe80::1%eth0", "", "zone"},
		{"http://203.0.113.7/", "", ""},
	} {
		got, err := ParseOrigin(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("ParseOrigin(%q) = %s, want refused", c.in, got)
			} else if c.says != "" && !strings.Contains(err.Error(), c.says) {
				t.Errorf("ParseOrigin(%q): %v, want it to say %q", c.in, err, c.says)
			}
			continue
		}
		if err != nil || FormatOrigin(got) != c.want {
			t.Errorf("ParseOrigin(%q) = %s, %v; want %s", c.in, FormatOrigin(got), err, c.want)
		}
	}
}
