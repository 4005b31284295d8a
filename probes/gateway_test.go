package probes

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// gatewayPage is a captured gateway error response from testdata.
type gatewayPage struct {
	status int
	header http.Header
	body   string
}

// loadPage reads testdata/gateways/NAME.http: a raw HTTP response. The body
// is the rest of the file, whatever Content-Length says.
func loadPage(t testing.TB, name string) gatewayPage {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "gateways", name+".http"))
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("%s: no blank line after the headers", name)
	}
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(head, "\r\n\r\n"...))))
	line, err := r.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(line)
	status, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("%s: bad status line %q", name, line)
	}
	h, err := r.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	hdr := http.Header(h)
	hdr.Del("Content-Length")
	return gatewayPage{status: status, header: hdr, body: string(body)}
}

// serve writes the page as a gateway would.
func (p gatewayPage) serve(w http.ResponseWriter) {
	for k, vs := range p.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(p.status)
	w.Write([]byte(p.body))
}

func TestFingerprintGatewayPages(t *testing.T) {
	tests := []struct {
		page    string
		product string
		code    Code
		minConf float64
	}{
		{"nginx_502", "nginx", Gateway502, 0.9},
		{"nginx_504", "nginx", GatewayTimeout, 0.9},
		{"haproxy_502", "haproxy", Gateway502, 0.8},
		{"haproxy_503", "haproxy", ServiceUnavailable, 0.8},
		{"haproxy_504", "haproxy", GatewayTimeout, 0.8},
		{"apache_502", "apache", Gateway502, 0.9},
		{"caddy_502", "caddy", Gateway502, 0.8},
		{"traefik_502", "traefik", Gateway502, 0.3},
		{"envoy_503", "envoy", Gateway502, 0.9},
		{"varnish_503", "varnish", Gateway502, 0.9},
		{"squid_502", "squid", Gateway502, 0.9},
		{"iis_502", "iis", Gateway502, 0.9},
		{"cloudflare_502", "cloudflare", Gateway502, 0.9},
		{"cloudflare_521", "cloudflare", Gateway502, 0.9},
		{"cloudflare_524", "cloudflare", GatewayTimeout, 0.9},
		{"aws-elb_502", "aws-elb", Gateway502, 0.8},
		{"cloudfront_502", "cloudfront", Gateway502, 0.9},
		{"akamai_502", "akamai", Gateway502, 0.9},
		{"fastly_503", "fastly", Gateway502, 0.7},
		{"google_502", "google", Gateway502, 0.8},
		{"google_503", "google", ServiceUnavailable, 0.9},
		{"azure-front-door_503", "azure-front-door", ServiceUnavailable, 0.9},
		// Captured from the real product in front of a dead upstream (see
		// products_test.go, which runs them) and from published pages; the
		// source of each is in testdata/gateways/README.md.
		{"lighttpd_503", "lighttpd", Gateway502, 0.9},
		{"h2o_502", "h2o", Gateway502, 0.85},
		{"ats_502", "ats", Gateway502, 0.95},
		{"nghttpx_502", "nghttpx", Gateway502, 0.95},
		{"pound_503", "pound", Gateway502, 0.8},
		{"pound2_503", "pound", Gateway502, 0.8},
		{"openresty_502", "openresty", Gateway502, 0.95},
		{"tengine_502", "tengine", Gateway502, 0.95},
		{"litespeed_503", "litespeed", ServiceUnavailable, 0.95},
		{"kong_502", "kong", Gateway502, 0.95},
		{"f5-bigip_502", "f5-bigip", Gateway502, 0.9},
		{"netscaler_502", "netscaler", Gateway502, 0.9},
		{"netscaler_503", "netscaler", ServiceUnavailable, 0.7},
		{"imperva_502", "imperva", Gateway502, 0.95},
		{"sucuri_502", "sucuri", Gateway502, 0.95},
		{"azure-app-gateway_502", "azure-app-gateway", Gateway502, 0.95},
		{"heroku_503", "heroku", Gateway502, 0.95},
		{"vercel_502", "vercel", Gateway502, 0.95},
		{"netlify_502", "netlify", Gateway502, 0.95},
		{"fly_502", "fly", Gateway502, 0.9},
		{"envoy-istio_503", "envoy", Gateway502, 0.95},
		// Further pages, so that every signal of the table is triggered
		// by a page of its product (TestEverySignalHasACapturedPage).
		{"ats-relayed_502", "ats", Gateway502, 0.9},
		{"nghttpx-relayed_502", "nghttpx", Gateway502, 0.9},
		{"envoy-nohealthy_503", "envoy", ServiceUnavailable, 0.9},
		{"envoy_504", "envoy", GatewayTimeout, 0.9},
		{"iis-detailed_502", "iis", Gateway502, 0.95},
		{"cloudflare_503", "cloudflare", ServiceUnavailable, 0.9},
		{"akamai-pragma_502", "akamai", Gateway502, 0.95},
		{"fastly_500", "fastly", ServerError, 0.9},
		{"fastly-requestid_502", "fastly", Gateway502, 0.9},
		{"azure-front-door-classic_502", "azure-front-door", Gateway502, 0.6},
		{"litespeed-wordpress_500", "litespeed", ServerError, 0.9},
		{"kong-relayed_502", "kong", Gateway502, 0.85},
		{"f5-bigip-apm_502", "f5-bigip", Gateway502, 0.7},
		{"netscaler-nncoection_502", "netscaler", Gateway502, 0.9},
		{"sucuri-relayed_503", "sucuri", ServiceUnavailable, 0.95},
		{"heroku-router2_503", "heroku", Gateway502, 0.95},
		// Firewalls' block pages come with 200: an answer, as far as the
		// status says.
		{"f5-bigip-asm_200", "f5-bigip", Healthy, 0.85},
		{"imperva-block_200", "imperva", Healthy, 0.95},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.page, func(t *testing.T) {
			p := loadPage(t, tt.page)
			g := fingerprint(p.status, p.header, p.body)
			if g.Name != tt.product {
				t.Fatalf("gateway = %q (%v), want %q", g.Name, g.Signals, tt.product)
			}
			if g.Confidence < tt.minConf {
				t.Errorf("confidence = %.2f, want at least %.2f (%v)", g.Confidence, tt.minConf, g.Signals)
			}
			if c := responseCode(p.status, g, p.body); c != tt.code {
				t.Errorf("verdict = %s, want %s", c, tt.code)
			}
			seen[g.Name] = true
		})
	}
	for _, n := range GatewayNames {
		if !seen[n] {
			t.Errorf("no test page for gateway %q", n)
		}
	}
}

func TestFingerprintQuirks(t *testing.T) {
	for _, tt := range []struct {
		page, want string
	}{
		{"cloudflare_502", "the fault is at the origin"},
		{"cloudflare_521", "refused the connection"},
		{"cloudflare_524", "did not answer within 100 seconds"},
		{"envoy_503", "Envoy answers 503 where most gateways answer 502"},
		{"varnish_503", "Varnish answers 503"},
		{"lighttpd_503", "lighttpd answers 503 where most gateways answer 502"},
		{"pound_503", "Pound answers 503"},
		{"heroku_503", "heroku logs"},
		{"envoy-istio_503", "Envoy answers 503"},
	} {
		p := loadPage(t, tt.page)
		if g := fingerprint(p.status, p.header, p.body); !strings.Contains(g.Note, tt.want) {
			t.Errorf("%s: note %q does not say %q", tt.page, g.Note, tt.want)
		}
	}
}

func TestFingerprintNothingKnown(t *testing.T) {
	g := fingerprint(200, http.Header{"Content-Type": {"text/html"}}, "<html>hello</html>")
	if g.Name != "" || g.Confidence != 0 {
		t.Errorf("plain page fingerprinted as %+v", g)
	}
}

// A CDN relaying the origin's own error page: the page names who made it.
func TestFingerprintCDNInFrontOfOrigin(t *testing.T) {
	p := loadPage(t, "nginx_502")
	p.header.Set("X-Amz-Cf-Id", "abc")
	p.header.Set("Via", "1.1 x.cloudfront.net (CloudFront)")
	g := fingerprint(p.status, p.header, p.body)
	if g.Name != "nginx" {
		t.Fatalf("gateway = %q, want nginx (the page's author)", g.Name)
	}
	if len(g.Others) == 0 || g.Others[0] != "cloudfront" {
		t.Errorf("others = %v, want cloudfront seen too", g.Others)
	}
}

func TestFingerprintSanitisesSignals(t *testing.T) {
	h := http.Header{"Server": {"nginx\x1b[31m<script>"}}
	g := fingerprint(502, h, "")
	for _, s := range g.Signals {
		if strings.ContainsRune(s, 0x1b) {
			t.Errorf("signal keeps a control character: %q", s)
		}
	}
}
