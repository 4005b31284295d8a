package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestClusterSurvivesAKill: three gatecheck serve processes on one
// PostgreSQL database, behind a client that spreads a flood of reports of
// one slow site over them; the instance running the site's probe is
// killed (SIGKILL) mid-flood. Every report an instance acknowledged gets
// its verdict from the two left, and the site is probed at most twice
// (the probe that died with its instance, and the one that took over).
func TestClusterSurvivesAKill(t *testing.T) {
	pgURL := postgresURL(t)
	var asked atomic.Int64
	var mu sync.Mutex
	gate := make(chan struct{})
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		mu.Lock()
		g := gate
		mu.Unlock()
		select {
		case <-g:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Server", "nginx/1.24.0")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx/1.24.0</center></body></html>")
	}))
	t.Cleanup(site.Close)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		select {
		case <-gate:
		default:
			close(gate)
		}
	})

	var srvs []*serverProcess
	for range 3 {
		srvs = append(srvs, startServer(t, pgURL, "--probe-lease", "1s", "--probes-per-minute", "100000", "--probe-queue", "100000"))
	}
	client := &http.Client{Timeout: 10 * time.Second}
	report := func(p *serverProcess, n int) (string, bool) {
		req, _ := http.NewRequest("POST", p.base+"/api/cases", strings.NewReader(`{"url": "`+site.URL+`/shop"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.%d.%d", n/250, n%250+1))
		resp, err := client.Do(req)
		if err != nil {
			return "", false
		}
		defer resp.Body.Close()
		var doc struct{ Token string }
		if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&doc) != nil {
			return "", false
		}
		return doc.Token, true
	}

	var acked []string
	// The first report makes instance 0 the site's prober.
	tok, ok := report(srvs[0], 0)
	if !ok {
		t.Fatalf("the first report was refused\n%s", srvs[0].log())
	}
	acked = append(acked, tok)
	deadline := time.Now().Add(20 * time.Second)
	for asked.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the probe never reached the site\n%s", srvs[0].log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	const flood = 60
	for n := 1; n < flood; n++ {
		if n == flood/3 {
			// Mid-flood, the prober dies.
			srvs[0].cmd.Process.Signal(syscall.SIGKILL)
			srvs[0].wait(10 * time.Second)
		}
		p := srvs[n%3]
		if n >= flood/3 && p == srvs[0] {
			p = srvs[1+n%2]
		}
		if tok, ok := report(p, n); ok {
			acked = append(acked, tok)
		}
	}
	mu.Lock()
	close(gate)
	mu.Unlock()

	own := 0
	for _, tok := range acked {
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := client.Get(srvs[2].base + "/api/cases/" + tok)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Probe struct {
					State      string
					SharedFrom int64 `json:"shared_from"`
					Report     *struct{ Verdict struct{ Code string } }
				}
			}
			json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			if doc.Probe.State == "done" && doc.Probe.Report != nil {
				if doc.Probe.Report.Verdict.Code != "gateway_502" {
					t.Errorf("case %s: %s", tok, doc.Probe.Report.Verdict.Code)
				}
				if doc.Probe.SharedFrom == 0 {
					own++
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("case %s never got its verdict (%s)\n%s\n%s", tok, doc.Probe.State, srvs[1].log(), srvs[2].log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(acked) < flood*2/3 {
		t.Errorf("only %d of %d reports were acknowledged", len(acked), flood)
	}
	if own < 1 || own > 2 {
		t.Errorf("%d probes stored for %d reports of one site, want 1 or 2", own, len(acked))
	}
	t.Logf("%d reports acknowledged, %d probes stored, the site asked %d times", len(acked), own, asked.Load())
}
