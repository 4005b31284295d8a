package web

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are gatecheck's Prometheus series, on a registry of the
// server's own (so that tests can run many servers in one process).
type metrics struct {
	reg            *prometheus.Registry
	probes         *prometheus.CounterVec
	probeSeconds   prometheus.Histogram
	shared         *prometheus.CounterVec
	requests       *prometheus.CounterVec
	webhooks       *prometheus.CounterVec
	mails          *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
}

func newMetrics(r *Runner) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatecheck_probes_total",
			Help: "Diagnoses gatecheck made of a site (probe runs that reached it), by verdict.",
		}, []string{"verdict"}),
		probeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gatecheck_probe_duration_seconds",
			Help:    "How long one diagnosis took.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30},
		}),
		shared: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatecheck_probe_runs_shared_total",
			Help: "Probe runs that took another report's diagnosis instead of probing the site: joined one under way, or reused a recent one.",
		}, []string{"how"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatecheck_webhook_deliveries_total",
			Help: "Webhook delivery attempts, by result: delivered, retry (failed, tried again later) or failed (given up).",
		}, []string{"result"}),
		mails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatecheck_mail_attempts_total",
			Help: "Attempts to send a mail (an escalation summary or a reply to the visitor), by result: delivered, retry (not taken, tried again later) or failed (given up).",
		}, []string{"result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatecheck_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatecheck_http_request_duration_seconds",
			Help:    "How long requests took to answer, by route pattern (progress streams last as long as their probe).",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30},
		}, []string{"route"}),
	}
	m.reg.MustRegister(m.probes, m.probeSeconds, m.shared, m.requests, m.requestSeconds, m.webhooks, m.mails,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatecheck_probe_queue_depth",
			Help: "Probe jobs (distinct targets) waiting for a worker.",
		}, func() float64 { waiting, _ := r.Stats(); return float64(waiting) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatecheck_probes_running",
			Help: "Probe jobs under way.",
		}, func() float64 { _, running := r.Stats(); return float64(running) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Every verdict's series exists from the start, so that rates work
	// from the first scrape.
	for _, how := range []string{"joined", "reused"} {
		m.shared.WithLabelValues(how)
	}
	for _, result := range []string{"delivered", "retry", "failed"} {
		m.webhooks.WithLabelValues(result)
		m.mails.WithLabelValues(result)
	}
	return m
}

// probed counts a diagnosis. A nil *metrics counts nothing.
func (m *metrics) probed(verdict string, took time.Duration) {
	if m == nil {
		return
	}
	m.probes.WithLabelValues(verdict).Inc()
	m.probeSeconds.Observe(took.Seconds())
}

// webhook counts a webhook delivery attempt by its result.
func (m *metrics) webhook(result string) {
	if m != nil {
		m.webhooks.WithLabelValues(result).Inc()
	}
}

// mail counts an attempt to send an escalation mail by its result.
func (m *metrics) mail(result string) {
	if m != nil {
		m.mails.WithLabelValues(result).Inc()
	}
}

// sharedRuns counts runs that took another's diagnosis.
func (m *metrics) sharedRuns(how string, n int) {
	if m != nil {
		m.shared.WithLabelValues(how).Add(float64(n))
	}
}

// request counts an answered request; route is chi's pattern, so that
// case tokens do not each make a series.
func (m *metrics) request(r *http.Request, status int, took time.Duration) {
	route := "other"
	if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
		route = rc.RoutePattern()
	}
	m.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
	m.requestSeconds.WithLabelValues(route).Observe(took.Seconds())
}

// handleMetrics answers GET /metrics in the Prometheus text format, to a
// client on loopback or in a trusted proxy range (as clientIP sees it, so
// that the public coming through a trusted proxy is not let in), or with
// the metrics token.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if !s.mayScrape(r) {
		http.Error(w, "Metrics are for loopback, the trusted proxies' ranges, or a client with the metrics token.", http.StatusForbidden)
		return
	}
	promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: slogPrintln{s}}).ServeHTTP(w, r)
}

func (s *Server) mayScrape(r *http.Request) bool {
	if token := s.cfg.MetricsToken; token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1 {
			return true
		}
	}
	ip := s.clientIP(r)
	return ip.IsValid() && (ip.IsLoopback() || s.trusted(ip))
}

// slogPrintln hands promhttp's errors to the server's log.
type slogPrintln struct{ s *Server }

func (l slogPrintln) Println(v ...any) { l.s.log.Error("serving metrics", "err", v) }
