package probes

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// nginx502 answers as nginx does when the server behind it is down.
func nginx502(t testing.TB) http.HandlerFunc {
	page := loadPage(t, "nginx_502")
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range page.header {
			w.Header()[k] = v
		}
		w.WriteHeader(page.status)
		w.Write([]byte(page.body))
	}
}

func okPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html")
	w.Write([]byte("<html><body>shop</body></html>"))
}

// counted counts the requests h serves.
func counted(n *atomic.Int32, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { n.Add(1); h(w, r) }
}

// listenSamePort opens one listener per loopback address, all on one
// port, as one name's servers would be.
func listenSamePort(t testing.TB, hosts ...string) []net.Listener {
	t.Helper()
	for range 20 {
		first, err := net.Listen("tcp", net.JoinHostPort(hosts[0], "0"))
		if err != nil {
			t.Skipf("cannot listen on %s: %v", hosts[0], err)
		}
		lns := []net.Listener{first}
		port := strconv.Itoa(portOf(first))
		for _, h := range hosts[1:] {
			ln, err := net.Listen("tcp", net.JoinHostPort(h, port))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) == len(hosts) {
			for _, ln := range lns {
				t.Cleanup(func() { ln.Close() })
			}
			return lns
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	t.Fatalf("no port free on all of %v", hosts)
	return nil
}

// One name, two addresses, one of them an nginx whose backend is down:
// whichever address comes first, the verdict says the addresses
// disagree and names the failing one, and the failing address costs one
// request when the main request and the samples went to the other.
func TestEveryAddressAsked(t *testing.T) {
	for _, order := range [][]string{{"127.0.0.1", "127.0.0.2"}, {"127.0.0.2", "127.0.0.1"}} {
		t.Run(strings.Join(order, ","), func(t *testing.T) {
			lns := listenSamePort(t, "127.0.0.1", "127.0.0.2")
			var good, bad atomic.Int32
			serveHTTP(t, lns[0], counted(&good, okPage), nil)
			serveHTTP(t, lns[1], counted(&bad, nginx502(t)), nil)
			e := newEnv(t)
			e.name("two.test", order...)
			e.cfg.Ports = Ports{HTTP: portOf(lns[0]), HTTPS: closedPort(t)}
			r := e.diagnose("http://two.test/")

			if r.Verdict.Code != Intermittent {
				t.Errorf("verdict = %s (%s), want intermittent", r.Verdict.Code, r.Verdict.Summary)
			}
			want := map[string]Code{"127.0.0.1": Healthy, "127.0.0.2": Gateway502}
			if len(r.Addresses) != 2 {
				t.Fatalf("addresses = %+v, want 2", r.Addresses)
			}
			for _, a := range r.Addresses {
				if a.Verdict != want[a.Address] || a.Family != "ipv4" {
					t.Errorf("address %s: verdict %s family %s, want %s ipv4", a.Address, a.Verdict, a.Family, want[a.Address])
				}
			}
			if len(r.Findings) == 0 || r.Findings[0].Code != Gateway502 || !strings.Contains(r.Findings[0].Summary, "1 of 2 addresses answers 502: 127.0.0.2") {
				t.Errorf("findings = %+v, want gateway_502 first, naming 127.0.0.2", r.Findings)
			}
			if order[0] == "127.0.0.1" && bad.Load() != 1 {
				t.Errorf("the failing second address got %d requests, want 1 (the address probe's)", bad.Load())
			}
			if n := good.Load() + bad.Load(); n > int32(1+e.cfg.Samples+2) {
				t.Errorf("%d requests for 2 addresses and %d samples", n, e.cfg.Samples)
			}
			var js struct {
				Addresses []map[string]any `json:"addresses"`
			}
			raw, _ := json.Marshal(r)
			if err := json.Unmarshal(raw, &js); err != nil || len(js.Addresses) != 2 || js.Addresses[0]["family"] != "ipv4" || js.Addresses[0]["verdict"] == nil {
				t.Errorf("JSON addresses = %v (%v)", js.Addresses, err)
			}
		})
	}
}

// Both addresses working is healthy, and a single address has its entry
// from the main request, at no cost.
func TestAddressesAgree(t *testing.T) {
	lns := listenSamePort(t, "127.0.0.1", "127.0.0.2")
	var n atomic.Int32
	serveHTTP(t, lns[0], counted(&n, okPage), nil)
	serveHTTP(t, lns[1], counted(&n, okPage), nil)
	e := newEnv(t)
	e.name("two.test", "127.0.0.1", "127.0.0.2")
	e.name("one.test", "127.0.0.1")
	e.cfg.Ports = Ports{HTTP: portOf(lns[0]), HTTPS: closedPort(t)}
	r := e.diagnose("http://two.test/")
	if r.Verdict.Code != Healthy || len(r.Addresses) != 2 {
		t.Errorf("two working addresses: verdict %s, addresses %+v", r.Verdict.Code, r.Addresses)
	}
	n.Store(0)
	r = e.diagnose("http://one.test/")
	if len(r.Addresses) != 1 || r.Addresses[0].Verdict != Healthy || r.Addresses[0].Status != 200 {
		t.Errorf("one address: %+v", r.Addresses)
	}
	if got := n.Load(); got != int32(1+e.cfg.Samples) {
		t.Errorf("one address cost %d requests, want %d (main and samples)", got, 1+e.cfg.Samples)
	}
}

// IPv4 answers, IPv6 answers 502: the finding says the families differ.
func TestFamiliesDisagree(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback (::1) on this machine: %v", err)
	} else {
		ln.Close()
	}
	lns := listenSamePort(t, "127.0.0.1", "::1")
	serveHTTP(t, lns[0], http.HandlerFunc(okPage), nil)
	serveHTTP(t, lns[1], nginx502(t), nil)
	e := newEnv(t)
	e.cfg.AllowNets = append(e.cfg.AllowNets, mustPrefix("::1/128"))
	e.name("dual.test", "127.0.0.1", "::1")
	e.cfg.Ports = Ports{HTTP: portOf(lns[0]), HTTPS: closedPort(t)}
	r := e.diagnose("http://dual.test/")
	if r.Verdict.Code != Intermittent {
		t.Errorf("verdict = %s (%s), want intermittent", r.Verdict.Code, r.Verdict.Summary)
	}
	fam := map[string]string{}
	for _, a := range r.Addresses {
		fam[a.Address] = a.Family + " " + string(a.Verdict)
	}
	if fam["127.0.0.1"] != "ipv4 healthy" || fam["::1"] != "ipv6 gateway_502" {
		t.Errorf("addresses = %v", fam)
	}
	if len(r.Findings) == 0 || !strings.Contains(r.Findings[0].Summary, "every IPv6 address fails and every IPv4 address works") {
		t.Errorf("findings = %+v, want the families told apart", r.Findings)
	}
}

// backendLB is a load balancer on loopback that sends requests to two
// backends in turn and names each the way sig does: the first answers,
// the second fails as nginx does.
func backendLB(t testing.TB, sig backendSignal) http.HandlerFunc {
	var n atomic.Int32
	fail := nginx502(t)
	return func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)-1) % 2
		v := sig.examples[i][0]
		switch {
		case sig.cookie && sig.prefix:
			w.Header().Add("Set-Cookie", sig.name+"~Common~pool_web="+v+"; path=/; Httponly")
		case sig.cookie:
			w.Header().Add("Set-Cookie", sig.name+"="+v+"; Path=/")
		default:
			w.Header().Set(sig.name, v)
		}
		if i == 0 {
			okPage(w, r)
			return
		}
		fail(w, r)
	}
}

// Every backend signal of the table, served by a real balancer: the
// report lists both backends with their counts, the intermittent verdict
// names the failing one, and a cookie's value is never the id unless the
// balancer documents it as the server's name.
func TestBackendSignals(t *testing.T) {
	for _, sig := range backendSignals {
		t.Run(sig.name, func(t *testing.T) {
			ln := listen(t)
			serveHTTP(t, ln, backendLB(t, sig), nil)
			e := newEnv(t)
			e.cfg.Samples = 5
			e.name("lb.test")
			e.cfg.Ports = Ports{HTTP: portOf(ln), HTTPS: closedPort(t)}
			r := e.diagnose("http://lb.test/")
			okID, badID := sig.examples[0][1], sig.examples[1][1]
			got := map[string]Backend{}
			for _, b := range r.Backends {
				got[b.ID] = b
			}
			if b := got[okID]; b.OK != 3 || b.Failed != 0 || !strings.HasPrefix(b.Source, sig.name) {
				t.Errorf("backend %s = %+v, want 3 ok from %s (all: %+v)", okID, b, sig.name, r.Backends)
			}
			if b := got[badID]; b.Failed != 3 || b.OK != 0 {
				t.Errorf("backend %s = %+v, want 3 failed (all: %+v)", badID, b, r.Backends)
			}
			if len(r.Backends) != 2 {
				t.Errorf("backends = %+v, want 2", r.Backends)
			}
			if r.Verdict.Code != Intermittent || !strings.Contains(r.Verdict.Summary, "all 3 failures came from "+badID) {
				t.Errorf("verdict = %s: %s", r.Verdict.Code, r.Verdict.Summary)
			}
			for _, ex := range sig.examples {
				if sig.cookie && ex[0] != ex[1] {
					for _, b := range r.Backends {
						if strings.Contains(b.ID, ex[0]) {
							t.Errorf("backend id %q quotes the cookie value %q", b.ID, ex[0])
						}
					}
				}
			}
		})
	}
}

// alternating answers in turn with ok and with fail.
func alternating(fail http.HandlerFunc) http.HandlerFunc {
	var n atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 1 {
			okPage(w, r)
			return
		}
		fail(w, r)
	}
}

// A gateway that fails at once and one that fails after its (shortened)
// timeout: the failed samples record their time and connection, and the
// verdict says which kind of failure it was.
func TestFailureSpeed(t *testing.T) {
	const nginxTimeout = 300 * time.Millisecond
	slow := nginx502(t)
	cases := []struct {
		name  string
		fail  http.HandlerFunc
		speed string
		says  string
	}{
		{"fast", nginx502(t), SpeedFast, "came fast"},
		{"at timeout", func(w http.ResponseWriter, r *http.Request) { time.Sleep(nginxTimeout); slow(w, r) }, SpeedAtTimeout, "nginx's timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ln := listen(t)
			serveHTTP(t, ln, alternating(c.fail), nil)
			e := newEnv(t)
			e.cfg.Samples = 4
			e.cfg.GatewayTimeouts = map[string]time.Duration{"nginx": nginxTimeout}
			e.name("gw.test")
			e.cfg.Ports = Ports{HTTP: portOf(ln), HTTPS: closedPort(t)}
			r := e.diagnose("http://gw.test/")
			failed := 0
			for _, s := range r.Samples {
				if s.Status == 502 {
					failed++
					if s.Speed != c.speed || s.ErrorMS <= 0 || s.Reused {
						t.Errorf("failed sample: speed %q, error_ms %v, reused %v; want %s on a fresh connection", s.Speed, s.ErrorMS, s.Reused, c.speed)
					}
				} else if s.Speed != "" {
					t.Errorf("a sample that worked has speed %q", s.Speed)
				}
			}
			if failed == 0 || r.Verdict.Code != Intermittent || !strings.Contains(r.Verdict.Summary, c.says) {
				t.Errorf("%d failed samples; verdict %s: %s; want it to say %q", failed, r.Verdict.Code, r.Verdict.Summary, c.says)
			}
		})
	}
}

// The classification, from recorded times, for every product of the
// timeouts table: about its timeout, a few milliseconds, and neither.
func TestFailureSpeedTable(t *testing.T) {
	p := New(Config{})
	for name, d := range gatewayTimeouts {
		for _, c := range []struct {
			elapsed time.Duration
			want    string
		}{
			{d, SpeedAtTimeout},
			{d + d/10, SpeedAtTimeout},
			{5 * time.Millisecond, SpeedFast},
			{d / 2, SpeedSlow},
			{3 * d, SpeedSlow},
		} {
			if got := p.failureSpeed(c.elapsed, name); got != c.want {
				t.Errorf("%s after %v: %s, want %s", name, c.elapsed, got, c.want)
			}
		}
		if got := p.failureSpeed(d, ""); got != SpeedSlow {
			t.Errorf("unknown product after %v: %s, want slow", d, got)
		}
	}
}

// A longer run for staff gives a failure rate: the share of the samples
// the server failed (all it failed, but the main request).
func TestFailureRate(t *testing.T) {
	ln := listen(t)
	var failed atomic.Int32
	fail := nginx502(t)
	serveHTTP(t, ln, alternating(func(w http.ResponseWriter, r *http.Request) { failed.Add(1); fail(w, r) }), nil)
	e := newEnv(t)
	e.cfg.Samples = 10
	e.cfg.SampleSpacing = 10 * time.Millisecond
	e.name("gw.test")
	e.cfg.Ports = Ports{HTTP: portOf(ln), HTTPS: closedPort(t)}
	r := e.diagnose("http://gw.test/")
	samplesFailed := failed.Load()
	if r.HTTP.Status == 502 {
		samplesFailed--
	}
	if want := float64(samplesFailed) / 10; r.Counts.Total != 10 || r.Counts.FailureRate != want || want == 0 {
		t.Errorf("counts = %+v, want 10 samples with a failure rate of %v", r.Counts, want)
	}
}

// A server that fails requests on kept-alive connections: with
// ReuseSamples, every other sample reuses one, and the verdict says the
// failures came on reused connections while fresh ones worked.
func TestReusedConnectionsFail(t *testing.T) {
	ln := listen(t)
	type seen struct{ n atomic.Int32 }
	srv := &http.Server{ErrorLog: discardLogger,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, seen{}, &seen{}) },
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Context().Value(seen{}).(*seen).n.Add(1) > 1 {
				nginx502(t)(w, r)
				return
			}
			okPage(w, r)
		})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	e := newEnv(t)
	e.cfg.Samples = 6
	e.cfg.SampleSpacing = 50 * time.Millisecond
	e.cfg.ReuseSamples = true
	e.name("ka.test")
	e.cfg.Ports = Ports{HTTP: portOf(ln), HTTPS: closedPort(t)}
	r := e.diagnose("http://ka.test/")
	failed := 0
	for i, s := range r.Samples {
		if s.Status == 502 {
			failed++
			if !s.Reused || i%2 == 0 {
				t.Errorf("sample %d failed on a fresh connection: %+v", i, s)
			}
		}
	}
	if failed == 0 || r.Verdict.Code != Intermittent || !strings.Contains(r.Verdict.Summary, "on a reused connection, while fresh connections worked") {
		t.Errorf("%d failed; verdict %s: %s", failed, r.Verdict.Code, r.Verdict.Summary)
	}
}

// What the verdict says of the failed samples, from recorded values.
func TestSpeedNote(t *testing.T) {
	p := New(Config{})
	ok := Sample{Status: 200}
	fast := Sample{Status: 502, Speed: SpeedFast, ErrorMS: 3}
	reusedFast := Sample{Status: 502, Speed: SpeedFast, ErrorMS: 2, Reused: true}
	timedOut := Sample{Status: 504, Speed: SpeedAtTimeout, ErrorMS: 60000}
	slow := Sample{Status: 502, Speed: SpeedSlow, ErrorMS: 12000}
	nginx := Gateway{Name: "nginx"}
	for _, c := range []struct {
		name    string
		samples []Sample
		says    string
	}{
		{"none failed", []Sample{ok, ok}, ""},
		{"one fast", []Sample{ok, fast}, "the failed sample came fast (within 3 ms, on fresh connections)"},
		{"all fast", []Sample{fast, fast, fast}, "all 3 failed samples came fast"},
		{"at nginx's timeout", []Sample{ok, timedOut, timedOut}, "both failed samples came after about 60 s, nginx's timeout"},
		{"slow", []Sample{slow, ok}, "the failed sample took up to 12 s"},
		{"mixed", []Sample{fast, timedOut, slow}, "of 3 failed samples, 1 fast (within 3 ms), 1 at nginx's timeout (60 s), 1 slow (up to 12 s)"},
		{"reused only", []Sample{ok, reusedFast, reusedFast}, "every one on a reused connection, while fresh connections worked"},
		{"some reused", []Sample{fast, reusedFast}, "1 of them on reused connections"},
	} {
		got := p.speedNote(c.samples, nginx)
		if (c.says == "") != (got == "") || !strings.Contains(got, c.says) {
			t.Errorf("%s: %q, want it to say %q", c.name, got, c.says)
		}
	}
}

// https on every address: the handshake is made with each, under the
// name's SNI, and one address with an expired certificate is named.
func TestEveryAddressHandshakes(t *testing.T) {
	e := newEnv(t)
	lns := listenSamePort(t, "127.0.0.1", "127.0.0.2")
	good := e.pki.leaf(t, certSpec{cn: "tls.test", names: []string{"tls.test"}}, true)
	expired := e.pki.leaf(t, certSpec{cn: "tls.test", names: []string{"tls.test"},
		notBefore: time.Now().Add(-60 * 24 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)}, true)
	serveHTTP(t, lns[0], http.HandlerFunc(okPage), &good)
	serveHTTP(t, lns[1], http.HandlerFunc(okPage), &expired)
	e.name("tls.test", "127.0.0.1", "127.0.0.2")
	e.cfg.Ports = Ports{HTTP: closedPort(t), HTTPS: portOf(lns[0])}
	r := e.diagnose("https://tls.test/")
	got := map[string]Code{}
	for _, a := range r.Addresses {
		got[a.Address] = a.Verdict
	}
	if got["127.0.0.1"] != Healthy || got["127.0.0.2"] != TLSExpired {
		t.Errorf("addresses = %+v, want 127.0.0.2's expired certificate named", r.Addresses)
	}
	if r.Verdict.Code != Intermittent || len(r.Findings) == 0 || r.Findings[0].Code != TLSExpired {
		t.Errorf("verdict %s (%s), findings %+v", r.Verdict.Code, r.Verdict.Summary, r.Findings)
	}
}
