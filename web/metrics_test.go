package web

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics as Prometheus would and parses it.
func (a *testApp) scrape() map[string]*dto.MetricFamily {
	a.t.Helper()
	resp, body := a.do("GET", "/metrics", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		a.t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		a.t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return families
}

// value is the value of the series of a family with the labels given
// (name, value, ...); -1 when there is none.
func value(families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
series:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetrics scrapes /metrics after a diagnosis, a report that reuses
// it and a few pages: probes by verdict and their duration, shared runs,
// the queue, and requests by route and status.
func TestMetrics(t *testing.T) {
	site := newGatedSite(t, "127.0.0.1")
	a := outageApp(t)
	first := a.report(site.URL+"/", "198.51.100.1")
	a.waitProbed(first)
	a.waitProbed(a.report(site.URL+"/", "198.51.100.2")) // reused
	a.do("GET", "/c/"+first, nil)
	a.do("GET", "/c/nosuchcase", nil)

	m := a.scrape()
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"gatecheck_probes_total", []string{"verdict", "gateway_502"}, 1},
		{"gatecheck_probe_duration_seconds", nil, 1},
		{"gatecheck_probe_runs_shared_total", []string{"how", "reused"}, 1},
		{"gatecheck_probe_runs_shared_total", []string{"how", "joined"}, 0},
		{"gatecheck_probe_queue_depth", nil, 0},
		{"gatecheck_probes_running", nil, 0},
		{"gatecheck_http_requests_total", []string{"route", "/api/cases", "method", "POST", "code", "201"}, 2},
		{"gatecheck_http_requests_total", []string{"route", "/c/{token}", "method", "GET", "code", "200"}, 1},
		{"gatecheck_http_requests_total", []string{"route", "/c/{token}", "method", "GET", "code", "404"}, 1},
	} {
		if got := value(m, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if value(m, "gatecheck_http_request_duration_seconds", "route", "/api/cases/{token}") < 1 {
		t.Error("no request durations for the case API")
	}
	if value(m, "go_goroutines") <= 0 || value(m, "process_open_fds") <= 0 {
		t.Error("no Go or process metrics")
	}
}

// TestMetricsAccess: loopback, a client in a trusted proxy's range, or
// the metrics token; not the public, not even through a trusted proxy.
func TestMetricsAccess(t *testing.T) {
	a := newApp(t, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		c.MetricsToken = "s3cret-metrics-token"
	})
	for _, c := range []struct {
		name, peer, forwarded, auth string
		want                        int
	}{
		{"loopback", "127.0.0.1:4000", "", "", http.StatusOK},
		{"loopback v6", "[::1]:4000", "", "", http.StatusOK},
		{"the public", "192.0.2.7:4000", "", "", http.StatusForbidden},
		{"a monitoring host in the trusted range", "10.1.2.3:4000", "", "", http.StatusOK},
		{"the public through a trusted proxy", "10.1.2.3:4000", "192.0.2.7", "", http.StatusForbidden},
		{"the public with the token", "192.0.2.7:4000", "", "Bearer s3cret-metrics-token", http.StatusOK},
		{"the public with a wrong token", "192.0.2.7:4000", "", "Bearer s3cret-metrics-tokem", http.StatusForbidden},
		{"the token without Bearer", "192.0.2.7:4000", "", "s3cret-metrics-token", http.StatusForbidden},
	} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.RemoteAddr = c.peer
		if c.forwarded != "" {
			req.Header.Set("X-Forwarded-For", c.forwarded)
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		a.srv.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: %d, want %d", c.name, rec.Code, c.want)
		}
		if c.want == http.StatusOK && !strings.Contains(rec.Body.String(), "gatecheck_probes_running") {
			t.Errorf("%s: no metrics in the answer", c.name)
		}
	}
}
