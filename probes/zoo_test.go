package probes

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// site helpers: each sets the default http or https port of the test's
// world to a loopback listener that behaves as the case needs.

func (e *env) name(host string, addrs ...string) {
	if len(addrs) == 0 {
		addrs = []string{"127.0.0.1"}
	}
	for _, a := range addrs {
		if strings.Contains(a, ":") {
			e.dns.set(host, "AAAA "+a)
		} else {
			e.dns.set(host, "A "+a)
		}
	}
}

func (e *env) httpSite(h http.Handler) {
	ln := listen(e.t)
	serveHTTP(e.t, ln, h, nil)
	e.cfg.Ports.HTTP = portOf(ln)
}

func (e *env) httpsSite(h http.Handler, cert tls.Certificate) {
	ln := listen(e.t)
	serveHTTP(e.t, ln, h, &cert)
	e.cfg.Ports.HTTPS = portOf(ln)
}

func (e *env) rawSite(https bool, fn func(net.Conn)) {
	ln := listen(e.t)
	rawServer(e.t, ln, fn)
	if https {
		e.cfg.Ports.HTTPS = portOf(ln)
	} else {
		e.cfg.Ports.HTTP = portOf(ln)
	}
}

func (e *env) cert(names ...string) tls.Certificate {
	return e.pki.leaf(e.t, certSpec{cn: names[0], names: names}, true)
}

func ok(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, body)
	})
}

func status(code int, hdr ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "<h1>%d %s</h1>", code, http.StatusText(code))
	})
}

func toHTTPS(e *env) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://"+hostPort(strings.Split(r.Host, ":")[0], e.cfg.Ports.HTTPS, false)+r.URL.Path, http.StatusMovedPermanently)
	})
}

// gateway is a real reverse proxy in front of upstream that answers with a
// product's captured error page when the upstream fails, as the product does.
func gateway(t testing.TB, page string, upstream string, timeout time.Duration) http.Handler {
	p := loadPage(t, page)
	target, _ := url.Parse(upstream)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: &http.Transport{ResponseHeaderTimeout: timeout, DisableKeepAlives: true},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.serve(w)
		},
		ErrorLog: nil,
	}
	rp.ErrorLog = discardLogger
	return rp
}

// page serves a captured gateway page directly.
func page(t testing.TB, name string) http.Handler {
	p := loadPage(t, name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w) })
}

// slowUpstream accepts requests and answers after d.
func slowUpstream(t testing.TB, d time.Duration) string {
	ln := listen(t)
	serveHTTP(t, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
	}), nil)
	return "http://" + ln.Addr().String()
}

func deadUpstream(t testing.TB) string {
	return "http://127.0.0.1:" + strconv.Itoa(closedPort(t))
}

type zooCase struct {
	name    string
	setup   func(e *env) string // returns the URL to diagnose
	code    Code
	layer   Layer
	gateway string
	check   func(t *testing.T, r *Report)
}

func zoo() []zooCase {
	return []zooCase{
		{name: "healthy https with http redirecting to it", code: Healthy, layer: LayerHTTP,
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpsSite(ok("<h1>shop</h1>"), e.cert("shop.test"))
				e.httpSite(toHTTPS(e))
				return "https://shop.test/"
			},
			check: func(t *testing.T, r *Report) {
				if r.TLS == nil || r.TLS.Problem != "" || len(r.TLS.Chain) != 2 {
					t.Errorf("tls = %+v, want a clean chain of 2", r.TLS)
				}
				if r.Counts.OK != 3 {
					t.Errorf("samples = %+v, want 3 ok", r.Counts)
				}
				if len(r.Findings) != 0 {
					t.Errorf("findings = %+v, want none", r.Findings)
				}
			}},
		{name: "name does not exist", code: DNSNXDomain, layer: LayerDNS,
			setup: func(e *env) string { return "https://nosuch.test/" }},
		{name: "resolver fails", code: DNSFailure, layer: LayerDNS,
			setup: func(e *env) string { e.dns.set("broken.test", "SERVFAIL"); return "https://broken.test/" }},
		{name: "dnssec signatures fail", code: DNSSECFailure, layer: LayerDNS,
			setup: func(e *env) string {
				rec := recursive(e.t, "shop.test. 60 IN A 127.0.0.1")
				rec.with(func() { rec.bogus = true })
				e.atResolver(rec, 1)
				return "https://shop.test/"
			}},
		{name: "the zone's servers refuse", code: DNSLameDelegation, layer: LayerDNS,
			setup: func(e *env) string {
				port, pcs := sharedPort(e.t, "127.0.0.2")
				z := serveZone(e.t, pcs[0], "other.test", "other.test. 60 IN SOA a. b. 1 60 60 60 60")
				z.with(func() { z.refuse = true })
				rec := recursive(e.t, "shop.test. 60 IN NS ns1.shop.test.", "ns1.shop.test. 60 IN A 127.0.0.2")
				rec.with(func() { rec.servfail["www.shop.test"] = true })
				e.atResolver(rec, port)
				return "https://www.shop.test/"
			}},
		{name: "a stale record at the resolver", code: DNSMismatch, layer: LayerDNS,
			setup: func(e *env) string {
				authWorldIn(e, []string{"www.shop.test. 60 IN A 127.0.0.1"}, []string{"www.shop.test. 60 IN A 127.0.0.5"})
				e.cfg.Ports = Ports{HTTP: newServerOnly(e.t, "127.0.0.5"), HTTPS: closedPort(e.t)}
				return "http://www.shop.test/"
			}},
		{name: "nothing listening", code: TCPRefused, layer: LayerTCP,
			setup: func(e *env) string { e.name("shop.test"); return "http://shop.test/" }},
		{name: "connections hang", code: TCPTimeout, layer: LayerTCP,
			setup: func(e *env) string {
				e.name("shop.test")
				e.cfg.Ports.HTTP = blackholePort(e.t)
				return "http://shop.test/"
			}},
		{name: "http answers, https refused (missing binding)", code: HTTPSUnavailable, layer: LayerTLS,
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpSite(ok("<h1>shop over http</h1>"))
				return "https://shop.test/"
			}},
		{name: "http redirects to https, which is refused", code: HTTPSUnavailable, layer: LayerTLS,
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpSite(toHTTPS(e))
				return "http://shop.test/"
			}},
		{name: "expired certificate", code: TLSExpired, layer: LayerTLS,
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpsSite(ok("x"), e.pki.leaf(e.t, certSpec{cn: "shop.test", names: []string{"shop.test"},
					notBefore: time.Now().Add(-100 * 24 * time.Hour), notAfter: time.Now().Add(-10 * 24 * time.Hour)}, true))
				return "https://shop.test/"
			},
			check: func(t *testing.T, r *Report) {
				if r.TLS == nil || len(r.TLS.Chain) == 0 || r.TLS.Chain[0].DNSNames[0] != "shop.test" {
					t.Errorf("the certificate details were not kept: %+v", r.TLS)
				}
				if !strings.Contains(r.Verdict.Summary, "expired") {
					t.Errorf("summary %q does not say expired", r.Verdict.Summary)
				}
			}},
		{name: "certificate for another name", code: TLSHostnameMismatch, layer: LayerTLS,
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpsSite(ok("x"), e.cert("other.test"))
				return "https://shop.test/"
			},
			check: func(t *testing.T, r *Report) {
				if !strings.Contains(r.Verdict.Summary, "other.test") {
					t.Errorf("summary %q does not name the certificate's name", r.Verdict.Summary)
				}
			}},
		{name: "self-signed certificate", code: TLSUntrusted, layer: LayerTLS,
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpsSite(ok("x"), selfSigned(e.t, "shop.test"))
				return "https://shop.test/"
			},
			check: func(t *testing.T, r *Report) {
				if r.TLS.Problem != "self_signed" {
					t.Errorf("problem = %q, want self_signed", r.TLS.Problem)
				}
			}},
		{name: "intermediate missing from the chain", code: TLSUntrusted, layer: LayerTLS,
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpsSite(ok("x"), e.pki.leaf(e.t, certSpec{cn: "shop.test", names: []string{"shop.test"}}, false))
				return "https://shop.test/"
			},
			check: func(t *testing.T, r *Report) {
				if r.TLS.Problem != "incomplete_chain" {
					t.Errorf("problem = %q, want incomplete_chain", r.TLS.Problem)
				}
			}},
		{name: "handshake never finishes", code: TLSHandshakeFailed, layer: LayerTLS,
			setup: func(e *env) string {
				e.name("shop.test")
				e.cfg.TLSTimeout = 500 * time.Millisecond
				e.rawSite(true, func(c net.Conn) { io.Copy(io.Discard, c) })
				return "https://shop.test/"
			}},
		{name: "https port speaks something else", code: TLSHandshakeFailed, layer: LayerTLS,
			setup: func(e *env) string {
				e.name("shop.test")
				e.rawSite(true, func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n"); time.Sleep(100 * time.Millisecond) })
				return "https://shop.test/"
			}},
		{name: "403 from the gateway", code: AccessBlocked, layer: LayerHTTP, gateway: "nginx",
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpSite(status(403, "Server", "nginx"))
				return "http://shop.test/"
			}},
		{name: "connection reset after accept (allowlist)", code: AccessBlocked, layer: LayerTCP,
			setup: func(e *env) string {
				e.name("shop.test")
				e.rawSite(false, func(c net.Conn) {
					c.(*net.TCPConn).SetLinger(0) // close with RST, as a firewall does
				})
				return "http://shop.test/"
			}},
		{name: "nginx in front of a dead upstream", code: Gateway502, layer: LayerHTTP, gateway: "nginx",
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpsSite(gateway(e.t, "nginx_502", deadUpstream(e.t), time.Second), e.cert("shop.test"))
				return "https://shop.test/"
			},
			check: func(t *testing.T, r *Report) {
				if r.Counts.Gateway != 3 {
					t.Errorf("samples = %+v, want 3 gateway errors", r.Counts)
				}
				if r.HTTP.Final().Body == "" {
					t.Error("the error page was not kept as evidence")
				}
			}},
		{name: "HAProxy in front of a dead upstream", code: Gateway502, layer: LayerHTTP, gateway: "haproxy",
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpSite(gateway(e.t, "haproxy_502", deadUpstream(e.t), time.Second))
				return "http://shop.test/"
			}},
		{name: "IIS ARR in front of a dead upstream", code: Gateway502, layer: LayerHTTP, gateway: "iis",
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpsSite(gateway(e.t, "iis_502", deadUpstream(e.t), time.Second), e.cert("shop.test"))
				return "https://shop.test/"
			}},
		{name: "Envoy answers 503 for a dead upstream", code: Gateway502, layer: LayerHTTP, gateway: "envoy",
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpSite(gateway(e.t, "envoy_503", deadUpstream(e.t), time.Second))
				return "http://shop.test/"
			}},
		{name: "Varnish answers 503 for a dead backend", code: Gateway502, layer: LayerHTTP, gateway: "varnish",
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpSite(gateway(e.t, "varnish_503", deadUpstream(e.t), time.Second))
				return "http://shop.test/"
			}},
		{name: "Cloudflare 521: origin down", code: Gateway502, layer: LayerHTTP, gateway: "cloudflare",
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpsSite(page(e.t, "cloudflare_521"), e.cert("shop.test"))
				return "https://shop.test/"
			},
			check: func(t *testing.T, r *Report) {
				if !strings.Contains(r.Verdict.Summary, "521") || !strings.Contains(r.Gateway.Note, "refused the connection") {
					t.Errorf("summary %q / note %q do not explain 521", r.Verdict.Summary, r.Gateway.Note)
				}
			}},
		{name: "nginx gives up on a slow upstream", code: GatewayTimeout, layer: LayerHTTP, gateway: "nginx",
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpSite(gateway(e.t, "nginx_504", slowUpstream(e.t, 5*time.Second), 200*time.Millisecond))
				return "http://shop.test/"
			}},
		{name: "Cloudflare 524", code: GatewayTimeout, layer: LayerHTTP, gateway: "cloudflare",
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpSite(page(e.t, "cloudflare_524"))
				return "http://shop.test/"
			}},
		{name: "server accepts and never answers", code: GatewayTimeout, layer: LayerHTTP,
			setup: func(e *env) string {
				e.name("shop.test")
				e.cfg.Timeout = 1500 * time.Millisecond
				e.rawSite(false, func(c net.Conn) { io.Copy(io.Discard, c) })
				return "http://shop.test/"
			}},
		{name: "maintenance 503", code: ServiceUnavailable, layer: LayerHTTP,
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpSite(status(503, "Retry-After", "120"))
				return "http://shop.test/"
			},
			check: func(t *testing.T, r *Report) {
				if !strings.Contains(r.Verdict.Summary, "retry after 120") {
					t.Errorf("summary %q does not pass on Retry-After", r.Verdict.Summary)
				}
			}},
		// The README's verdict table: 429 is service_unavailable, as 503
		// is; its samples are failures, not answers.
		{name: "too many requests (429)", code: ServiceUnavailable, layer: LayerHTTP,
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpSite(status(http.StatusTooManyRequests, "Retry-After", "30"))
				return "http://shop.test/"
			},
			check: func(t *testing.T, r *Report) {
				if !strings.Contains(r.Verdict.Summary, "429 Too Many Requests") || !strings.Contains(r.Verdict.Summary, "retry after 30") {
					t.Errorf("summary %q does not name the 429 and its Retry-After", r.Verdict.Summary)
				}
				if r.Counts.Total != 3 || r.Counts.Other != 3 {
					t.Errorf("samples = %+v, want 3 failures", r.Counts)
				}
			}},
		{name: "HAProxy with no server up", code: ServiceUnavailable, layer: LayerHTTP, gateway: "haproxy",
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpSite(page(e.t, "haproxy_503"))
				return "http://shop.test/"
			}},
		{name: "application error", code: ServerError, layer: LayerHTTP,
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpSite(status(500))
				return "http://shop.test/"
			}},
		{name: "garbage instead of HTTP", code: ProtocolError, layer: LayerHTTP,
			setup: func(e *env) string {
				e.name("shop.test")
				e.rawSite(false, func(c net.Conn) {
					c.SetReadDeadline(time.Now().Add(time.Second))
					c.Read(make([]byte, 4096))
					io.WriteString(c, "\x00\x01garbage from a confused upstream\r\n\r\n")
				})
				return "http://shop.test/"
			}},
		{name: "closes without answering", code: ProtocolError, layer: LayerHTTP,
			setup: func(e *env) string {
				e.name("shop.test")
				e.rawSite(false, func(c net.Conn) {
					c.SetReadDeadline(time.Now().Add(time.Second))
					c.Read(make([]byte, 4096))
				})
				return "http://shop.test/"
			}},
		{name: "redirects in a circle", code: RedirectLoop, layer: LayerHTTP,
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpSite(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					next := map[string]string{"/a": "/b", "/b": "/a"}[r.URL.Path]
					http.Redirect(w, r, next, http.StatusFound)
				}))
				return "http://shop.test/a"
			}},
		{name: "one answer in two is a 502", code: Intermittent, layer: LayerHTTP, gateway: "nginx",
			setup: func(e *env) string {
				e.name("shop.test")
				var n atomic.Int32
				bad := page(e.t, "nginx_502")
				e.httpSite(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if n.Add(1)%2 == 0 {
						bad.ServeHTTP(w, r)
						return
					}
					ok("fine").ServeHTTP(w, r)
				}))
				return "http://shop.test/"
			},
			check: func(t *testing.T, r *Report) {
				if r.Counts.OK == 0 || r.Counts.Gateway == 0 {
					t.Errorf("samples = %+v, want both ok and gateway errors", r.Counts)
				}
				if len(r.Findings) == 0 || r.Findings[0].Code != Gateway502 {
					t.Errorf("findings = %+v, want gateway_502 first", r.Findings)
				}
			}},
		{name: "loopback target without an allowance", code: BlockedTarget, layer: LayerTCP,
			setup: func(e *env) string {
				e.name("shop.test")
				e.httpSite(ok("secret"))
				e.cfg.AllowNets = nil
				return "http://shop.test/"
			}},
		{name: "not a web address", code: InvalidURL, layer: LayerInput,
			setup: func(e *env) string { return "ftp://shop.test/" }},
	}
}

func TestFaultZoo(t *testing.T) {
	covered := map[Code]bool{}
	for _, tc := range zoo() {
		covered[tc.code] = true
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.cfg.Ports = Ports{HTTP: closedPort(t), HTTPS: closedPort(t)}
			url := tc.setup(e)
			r := e.diagnose(url)
			if r.Verdict.Code != tc.code || r.Verdict.Layer != tc.layer {
				t.Fatalf("verdict = %s/%s (%s), want %s/%s\nchecks: %+v", r.Verdict.Code, r.Verdict.Layer, r.Verdict.Summary, tc.code, tc.layer, r.Checks)
			}
			if r.Verdict.Summary == "" || r.Verdict.Explanation == "" {
				t.Errorf("verdict lacks summary or explanation: %+v", r.Verdict)
			}
			if r.Gateway.Name != tc.gateway {
				t.Errorf("gateway = %q (%v), want %q", r.Gateway.Name, r.Gateway.Signals, tc.gateway)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	for _, c := range Codes {
		if !covered[c] {
			t.Errorf("no fault zoo case for verdict %s", c)
		}
	}
}
