package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unicode/utf8"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestDiagnoseExitStatus(t *testing.T) {
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hi")) }))
	defer healthy.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx/1.24.0")
		w.WriteHeader(502)
		w.Write([]byte("<html><body><center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center></body></html>"))
	}))
	defer broken.Close()

	for _, tt := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"healthy", []string{"diagnose", "--samples", "2", "--allow-net", "127.0.0.0/8", healthy.URL}, 0, "[healthy · http layer]"},
		{"broken gateway", []string{"diagnose", "--samples", "2", "--allow-net", "127.0.0.1", broken.URL}, 1, "Gateway: nginx"},
		{"flags after the URL", []string{"diagnose", broken.URL, "--allow-net", "127.0.0.1/32", "--samples", "1"}, 1, "gateway_502"},
		{"refused target", []string{"diagnose", "--samples", "0", healthy.URL}, 2, "blocked_target"},
		{"invalid URL", []string{"diagnose", "ftp://example.com/"}, 2, "invalid_url"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCmd(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit = %d, want %d\n%s%s", code, tt.code, out, errs)
			}
			if !strings.Contains(out, tt.out) {
				t.Errorf("output lacks %q:\n%s", tt.out, out)
			}
			for _, line := range strings.Split(out, "\n") {
				if n := utf8.RuneCountInString(line); n > 80 {
					t.Errorf("line of %d columns: %q", n, line)
				}
			}
		})
	}
}

func TestDiagnoseJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx")
		w.WriteHeader(504)
	}))
	defer srv.Close()
	code, out, errs := runCmd(t, "diagnose", "--json", "--samples", "3", "--allow-net", "127.0.0.0/8", srv.URL)
	if code != 1 {
		t.Fatalf("exit = %d, want 1: %s", code, errs)
	}
	var got struct {
		URL     string `json:"url"`
		Verdict struct {
			Code, Layer, Summary string
		} `json:"verdict"`
		Gateway struct {
			Name       string  `json:"name"`
			Confidence float64 `json:"confidence"`
		} `json:"gateway"`
		Checks []struct {
			Name       string   `json:"name"`
			Status     string   `json:"status"`
			Detail     string   `json:"detail"`
			DurationMS *float64 `json:"duration_ms"`
		} `json:"checks"`
		Samples []struct {
			Status     int      `json:"status"`
			Error      string   `json:"error"`
			DurationMS *float64 `json:"duration_ms"`
		} `json:"samples"`
		Timings []struct {
			URL     string  `json:"url"`
			TotalMS float64 `json:"total_ms"`
			WaitMS  float64 `json:"wait_ms"`
		} `json:"timings"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if got.URL != srv.URL+"/" || got.Verdict.Code != "gateway_timeout" || got.Verdict.Layer != "http" || got.Verdict.Summary == "" {
		t.Errorf("url/verdict = %q %+v", got.URL, got.Verdict)
	}
	if got.Gateway.Name != "nginx" || got.Gateway.Confidence <= 0 {
		t.Errorf("gateway = %+v", got.Gateway)
	}
	if len(got.Checks) < 3 {
		t.Errorf("checks = %+v", got.Checks)
	}
	for _, c := range got.Checks {
		if c.Name == "" || c.DurationMS == nil || !strings.Contains("ok warn fail skip", c.Status) {
			t.Errorf("bad check %+v", c)
		}
	}
	if len(got.Samples) != 3 || got.Samples[0].Status != 504 || got.Samples[0].DurationMS == nil {
		t.Errorf("samples = %+v", got.Samples)
	}
	if len(got.Timings) != 1 || got.Timings[0].TotalMS <= 0 || got.Timings[0].URL == "" {
		t.Errorf("timings = %+v", got.Timings)
	}
}

func TestDiagnoseUsage(t *testing.T) {
	for _, args := range [][]string{
		{"frobnicate"},
		{"diagnose"},
		{"diagnose", "a.example", "b.example"},
		{"diagnose", "--samples", "-1", "a.example"},
		{"diagnose", "--timeout", "1ms", "a.example"},
		{"diagnose", "--allow-net", "intranet", "a.example"},
		{"diagnose", "--bogus", "a.example"},
		{"diagnose", "--samples", "0", "--over", "1m", "a.example"},
		{"diagnose", "--samples", "10", "--over", "6m", "a.example"},
	} {
		code, _, errs := runCmd(t, args...)
		if code != 2 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, errs)
		}
	}
	if code, out, _ := runCmd(t, "help"); code != 0 || !strings.Contains(out, "diagnose") {
		t.Errorf("help: %d %q", code, out)
	}
}

func TestAllowNetsFromEnvironment(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	t.Setenv("GATECHECK_ALLOW_NETS", "10.0.0.0/8, 127.0.0.0/8")
	if code, out, _ := runCmd(t, "diagnose", "--samples", "0", srv.URL); code != 0 {
		t.Errorf("exit %d with the range allowed from the environment:\n%s", code, out)
	}
}

// A staff member's longer run: the samples spread over --over, and a
// failure rate, from a server that fails every other request.
func TestDiagnoseOver(t *testing.T) {
	var n, failed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			failed.Add(1)
			w.Header().Set("Server", "nginx")
			w.WriteHeader(502)
		}
	}))
	defer srv.Close()
	_, out, errs := runCmd(t, "diagnose", "--json", "--samples", "10", "--over", "3s", "--allow-net", "127.0.0.0/8", srv.URL)
	var got struct {
		Counts struct {
			Total       int     `json:"total"`
			OK          int     `json:"ok"`
			FailureRate float64 `json:"failure_rate"`
		} `json:"sample_counts"`
		HTTP struct {
			Status int `json:"status"`
		} `json:"http"`
		DurationMS float64 `json:"duration_ms"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s%s", err, out, errs)
	}
	want := failed.Load()
	if got.HTTP.Status == 502 {
		want--
	}
	if got.Counts.Total != 10 || got.Counts.FailureRate != float64(want)/10 || want == 0 {
		t.Errorf("counts = %+v, want 10 samples of which %d failed", got.Counts, want)
	}
	// The last sample cannot start before the run's end: a lower bound,
	// not a timing.
	if got.DurationMS < 3000 {
		t.Errorf("the diagnosis took %.0f ms: the samples were not spread over 3s", got.DurationMS)
	}
	_, out, _ = runCmd(t, "diagnose", "--samples", "4", "--over", "100ms", "--allow-net", "127.0.0.0/8", srv.URL)
	if !strings.Contains(out, "Failure rate: ") || !strings.Contains(out, "of 4 samples failed") {
		t.Errorf("text output lacks the failure rate:\n%s", out)
	}
}

// An edge (an nginx-like proxy whose origin setting is wrong) answers
// 502; --origin reaches the origin directly, which answers 200, with the
// URL's Host; the edge is not asked. A name as origin is refused.
func TestDiagnoseOrigin(t *testing.T) {
	var hosts []string
	var mu sync.Mutex
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		w.Write([]byte("<html><body>shop</body></html>"))
	}))
	defer origin.Close()
	var edgeHits atomic.Int32
	wrong, _ := url.Parse("http://127.0.0.1:1") // the edge's wrong origin: nothing listens there
	proxy := httputil.NewSingleHostReverseProxy(wrong)
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		w.Header().Set("Server", "nginx/1.24.0")
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center></body></html>"))
	}
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { edgeHits.Add(1); proxy.ServeHTTP(w, r) }))
	defer edge.Close()
	edgeURL := strings.Replace(edge.URL, "127.0.0.1", "shop.invalid", 1)
	originAddr := strings.TrimPrefix(origin.URL, "http://")

	code, out, _ := runCmd(t, "diagnose", "--json", "--samples", "1", "--allow-net", "127.0.0.0/8", edge.URL)
	if code != 1 || !strings.Contains(out, `"gateway_502"`) {
		t.Fatalf("the edge: exit %d, want 1 and gateway_502:\n%s", code, out)
	}
	edgeHits.Store(0)
	code, out, errs := runCmd(t, "diagnose", "--json", "--samples", "1", "--allow-net", "127.0.0.0/8", "--origin", originAddr, edgeURL)
	var got struct {
		Origin  string `json:"origin"`
		Verdict struct {
			Code string `json:"code"`
		} `json:"verdict"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s%s", err, out, errs)
	}
	if code != 0 || got.Verdict.Code != "healthy" || got.Origin != originAddr {
		t.Errorf("the origin: exit %d, verdict %s, origin %q; want 0, healthy, %s\n%s", code, got.Verdict.Code, got.Origin, originAddr, out)
	}
	if n := edgeHits.Load(); n != 0 {
		t.Errorf("the edge got %d requests while the origin was asked", n)
	}
	mu.Lock()
	for _, h := range hosts {
		if !strings.HasPrefix(h, "shop.invalid:") {
			t.Errorf("the origin saw Host %q, want the URL's", h)
		}
	}
	mu.Unlock()
	_, out, _ = runCmd(t, "diagnose", "--samples", "0", "--allow-net", "127.0.0.0/8", "--origin", originAddr, edgeURL)
	if !strings.Contains(out, "Reached directly at the origin "+originAddr) {
		t.Errorf("text output does not say the origin was asked:\n%s", out)
	}
	code, _, errs = runCmd(t, "diagnose", "--origin", "origin.example.com", edgeURL)
	if code != exitUsage || !strings.Contains(errs, "not a name") {
		t.Errorf("a name as origin: exit %d, %q", code, errs)
	}
	code, _, _ = runCmd(t, "diagnose", "--samples", "0", "--origin", originAddr, edgeURL)
	if code != 2 {
		t.Errorf("a loopback origin without --allow-net: exit %d, want 2 (refused)", code)
	}
}
