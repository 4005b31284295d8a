package web

import (
	"io"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestStepPageSpeed measures the step page's requests a second, a case
// on a question served over loopback by one instance on SQLite and by one
// of three on PostgreSQL, with GATECHECK_BENCH=1 (a measure, not a test:
// nothing is asserted on the numbers).
//
//	GATECHECK_BENCH=1 go test ./web -run TestStepPageSpeed -count=1 -v
func TestStepPageSpeed(t *testing.T) {
	if os.Getenv("GATECHECK_BENCH") != "1" {
		t.Skip("a measure: GATECHECK_BENCH=1 runs it")
	}
	gw := brokenGateway(t)
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			var a *testApp
			if engine == "sqlite" {
				a = newApp(t)
			} else {
				a = newCluster(t, 3)[0]
			}
			token := a.createCase(gw.URL, "")
			a.waitProbed(token)
			url := a.ts.URL + "/c/" + token
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			get := func() {
				resp, err := client.Get(url)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %d", url, resp.StatusCode)
				}
			}
			get()
			for range 3 {
				res := testing.Benchmark(func(b *testing.B) {
					b.SetParallelism(16)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							get()
						}
					})
				})
				t.Logf("%s: step page %.0f requests/s (%d in %v)", engine, float64(res.N)/res.T.Seconds(), res.N, res.T.Round(time.Millisecond))
			}
		})
	}
}
