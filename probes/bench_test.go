package probes

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The pair below compares one full diagnosis of a healthy loopback target
// with a bare http.Get of it:
//
//	go test ./probes -run XXX -bench 'Diagnose|BareGet' -benchtime 50x
func newBenchTarget(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><body><h1>shop</h1></body></html>")
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchDiagnose(b *testing.B, spacing time.Duration) {
	srv := newBenchTarget(b)
	cfg := DefaultConfig()
	cfg.AllowNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	cfg.SampleSpacing = spacing
	p := New(cfg)
	b.ResetTimer()
	for b.Loop() {
		if r := p.Diagnose(context.Background(), srv.URL); r.Verdict.Code != Healthy {
			b.Fatalf("verdict %s", r.Verdict.Code)
		}
	}
}

// BenchmarkDiagnoseDefault is what a user waits for: five samples spaced
// 200 ms apart dominate it by design.
func BenchmarkDiagnoseDefault(b *testing.B) { benchDiagnose(b, 200*time.Millisecond) }

// BenchmarkDiagnoseUnspaced is the probing work itself: every probe and
// five samples, with no pause between the samples.
func BenchmarkDiagnoseUnspaced(b *testing.B) { benchDiagnose(b, time.Microsecond) }

func BenchmarkBareGet(b *testing.B) {
	srv := newBenchTarget(b)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkFingerprint scores every captured gateway page once per
// iteration (ns/op is for all of them together):
//
//	go test ./probes -run XXX -bench Fingerprint -benchmem
func BenchmarkFingerprint(b *testing.B) {
	files, err := filepath.Glob(filepath.Join("testdata", "gateways", "*.http"))
	if err != nil || len(files) == 0 {
		b.Fatal("no pages", err)
	}
	var pages []gatewayPage
	for _, f := range files {
		pages = append(pages, loadPage(b, strings.TrimSuffix(filepath.Base(f), ".http")))
	}
	b.ReportMetric(float64(len(pages)), "pages")
	b.ResetTimer()
	for b.Loop() {
		for _, p := range pages {
			fingerprint(p.status, p.header, p.body)
		}
	}
}

// BenchmarkDiagnoseAddresses is the politeness budget: one diagnosis of a
// name with 1, 2 and 8 addresses (loopback 127.0.0.x, one healthy server
// each), with the default five samples unspaced. requests/op is what the
// site's servers received, all addresses together:
//
//	go test ./probes -run XXX -bench DiagnoseAddresses -benchtime 20x
func BenchmarkDiagnoseAddresses(b *testing.B) {
	for _, n := range []int{1, 2, 8} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			hosts := make([]string, n)
			for i := range hosts {
				hosts[i] = "127.0.0." + strconv.Itoa(i+1)
			}
			var requests atomic.Int64
			lns := listenSamePort(b, hosts...)
			for _, ln := range lns {
				serveHTTP(b, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					requests.Add(1)
					okPage(w, r)
				}), nil)
			}
			e := newEnv(b)
			e.cfg.Samples = DefaultConfig().Samples
			e.cfg.SampleSpacing = time.Microsecond
			e.name("many.test", hosts...)
			e.cfg.Ports = Ports{HTTP: portOf(lns[0]), HTTPS: closedPort(b)}
			p := e.prober()
			b.ResetTimer()
			for b.Loop() {
				if r := p.Diagnose(context.Background(), "http://many.test/"); r.Verdict.Code != Healthy || len(r.Addresses) != n {
					b.Fatalf("verdict %s, %d addresses", r.Verdict.Code, len(r.Addresses))
				}
			}
			b.ReportMetric(float64(requests.Load())/float64(b.N), "requests/op")
		})
	}
}
