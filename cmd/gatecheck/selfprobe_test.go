package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeRefusesItsOwnAddress is the attack of issue 15's finding 10: a
// server allowed to probe loopback (--allow-net 127.0.0.0/8) was asked to
// diagnose http://127.0.0.1:PORT/metrics, its own address, and showed a
// stranger its metrics. Its own listening address (and the profiler's) is
// refused whatever --allow-net says, at the address it listens on and at
// the other loopback spellings that reach it; another loopback site on
// the allowed range is still probed.
func TestServeRefusesItsOwnAddress(t *testing.T) {
	dir := t.TempDir()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("another site on loopback"))
	}))
	defer other.Close()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	pr, pw := io.Pipe()
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "gatecheck.db"),
			"--allow-net", "127.0.0.0/8", "--samples", "1", "--probes-per-host", "0", "--pprof", "127.0.0.1:0"},
			strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	rd := bufio.NewReader(pr)
	var base, prof string
	for base == "" {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("server did not start: %v", err)
		}
		if p, ok := strings.CutPrefix(line, "profiler on "); ok {
			prof = strings.TrimSpace(p)
		}
		if _, rest, ok := strings.Cut(line, "serving "); ok {
			base = strings.TrimSuffix(strings.Fields(rest)[0], "/")
		}
	}
	go io.Copy(io.Discard, rd)
	port := base[strings.LastIndex(base, ":"):]

	diagnose := func(target string) map[string]any {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"url": target})
		resp, err := http.Post(base+"/api/cases", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var created struct{ Token string }
		json.NewDecoder(resp.Body).Decode(&created)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d", target, resp.StatusCode)
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			resp, err := http.Get(base + "/api/cases/" + created.Token)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var doc struct {
				Probe struct {
					State  string
					Report map[string]any
				}
			}
			json.Unmarshal(raw, &doc)
			if doc.Probe.State == "done" {
				if strings.Contains(string(raw), "go_goroutines") || strings.Contains(string(raw), "gatecheck_requests") || strings.Contains(string(raw), "pprof") && !strings.Contains(target, "pprof") {
					t.Errorf("%s: the case shows gatecheck's own insides: %.400s", target, raw)
				}
				return doc.Probe.Report
			}
		}
		t.Fatalf("%s: no verdict", target)
		return nil
	}
	verdict := func(rep map[string]any) string {
		v, _ := rep["verdict"].(map[string]any)
		s, _ := v["code"].(string)
		return s
	}
	for _, target := range []string{
		base + "/metrics",
		"http://127.0.0.2" + port + "/metrics", // another loopback address: not the one listened on,
		"http://localhost" + port + "/metrics", // a name that resolves to it
		prof + "cmdline",                       // the profiler
	} {
		rep := diagnose(target)
		code := verdict(rep)
		if target == "http://127.0.0.2"+port+"/metrics" {
			// 127.0.0.2 does not reach a listener bound to 127.0.0.1:
			// nothing answers there, which is no leak either.
			if code == "healthy" {
				t.Errorf("%s: healthy", target)
			}
			continue
		}
		if code != "blocked_target" {
			t.Errorf("%s: verdict %q, want blocked_target", target, code)
		}
		raw, _ := json.Marshal(rep)
		if !strings.Contains(string(raw), "gatecheck's own") {
			t.Errorf("%s: the report does not say why: %.300s", target, raw)
		}
	}
	if code := verdict(diagnose(other.URL)); code != "healthy" {
		t.Errorf("another loopback site: %q, want healthy (the allowance still holds)", code)
	}
	stop()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop")
	}
}
