package probes

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var bomb struct {
	once sync.Once
	data []byte
}

// gzipBomb is 64 MiB of zeros, gzipped to about 64 KiB: a thousand times the body limit.
func gzipBomb() []byte {
	bomb.once.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zero := make([]byte, 1<<20)
		for i := 0; i < 64; i++ {
			zw.Write(zero)
		}
		zw.Close()
		bomb.data = buf.Bytes()
	})
	return bomb.data
}

// TestHostileTargets: servers built to hurt a prober. Each diagnosis must
// end by its deadline with a clear verdict, keeping memory bounded.
func TestHostileTargets(t *testing.T) {
	const timeout = 2 * time.Second
	for _, tc := range []struct {
		name  string
		setup func(e *env)
		code  Code
		check func(t *testing.T, r *Report)
	}{
		{"headers without end", func(e *env) {
			e.rawSite(false, func(c net.Conn) {
				readRequest(c)
				io.WriteString(c, "HTTP/1.1 200 OK\r\n")
				line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
				for {
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			})
		}, ProtocolError, nil},
		{"body without end", func(e *env) {
			e.httpSite(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				chunk := bytes.Repeat([]byte("<p>more</p>"), 1000)
				for r.Context().Err() == nil {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			}))
		}, Healthy, func(t *testing.T, r *Report) {
			h := r.HTTP.Final()
			if len(h.Body) != 64<<10 || !h.BodyTruncated {
				t.Errorf("body kept = %d bytes (truncated %v), want 64 KiB, truncated", len(h.Body), h.BodyTruncated)
			}
		}},
		{"gzip bomb", func(e *env) {
			data := gzipBomb()
			e.httpSite(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				w.Header().Set("Content-Type", "text/html")
				w.Write(data)
			}))
		}, Healthy, func(t *testing.T, r *Report) {
			h := r.HTTP.Final()
			if len(h.Body) != 64<<10 || !h.BodyTruncated {
				t.Errorf("body kept = %d bytes, want 64 KiB after decompression", len(h.Body))
			}
		}},
		{"endless distinct redirects", func(e *env) {
			e.httpSite(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, r.URL.Path+"x", http.StatusFound)
			}))
		}, RedirectLoop, func(t *testing.T, r *Report) {
			if n := len(r.HTTP.Hops); n != 11 {
				t.Errorf("followed %d hops, want 11 (10 redirects)", n)
			}
		}},
		{"headers dripped a byte at a time", func(e *env) {
			e.rawSite(false, func(c net.Conn) {
				readRequest(c)
				for _, b := range []byte("HTTP/1.1 200 OK\r\nX-Slow: " + strings.Repeat("s", 1000)) {
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			})
		}, GatewayTimeout, nil},
		{"accepts and says nothing", func(e *env) {
			e.rawSite(false, func(c net.Conn) { io.Copy(io.Discard, c) })
		}, GatewayTimeout, nil},
		{"TLS handshake that never finishes", func(e *env) {
			e.rawSite(true, func(c net.Conn) {
				io.Copy(io.Discard, c)
			})
		}, TLSHandshakeFailed, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.cfg.Timeout = timeout
			e.cfg.TLSTimeout = timeout
			e.cfg.Ports = Ports{HTTP: closedPort(t), HTTPS: closedPort(t)}
			e.name("evil.test")
			tc.setup(e)
			url := "http://evil.test/"
			if tc.code == TLSHandshakeFailed {
				url = "https://evil.test/"
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			r := e.diagnose(url)
			runtime.ReadMemStats(&after)
			if r.Verdict.Code != tc.code {
				t.Errorf("verdict = %s (%s), want %s", r.Verdict.Code, r.Verdict.Summary, tc.code)
			}
			// The deadline is a correctness property here, not a speed
			// claim: a hostile server must not hold a diagnosis past it.
			if limit := timeout + time.Second; time.Duration(r.DurationMS)*time.Millisecond > limit {
				t.Errorf("took %.0f ms, past the %v deadline", r.DurationMS, timeout)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
				t.Errorf("allocated %d MiB during the diagnosis", alloc>>20)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
			t.Log(fmt.Sprintf("%s in %.0f ms: %s", r.Verdict.Code, r.DurationMS, r.Verdict.Summary))
		})
	}
}

// readRequest reads the request's head, so that what a hostile server sends
// is an answer and not unsolicited bytes.
func readRequest(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(time.Second))
	http.ReadRequest(bufio.NewReader(c))
	c.SetReadDeadline(time.Time{})
}
