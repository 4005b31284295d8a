package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestServeProfiler checks the profiler listens on loopback only.
func TestServeProfiler(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if hs, err := serveProfiler("0.0.0.0:0", log); err == nil {
		hs.Close()
		t.Fatal("the profiler listened on every interface")
	} else if !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("refusal = %v", err)
	}
	hs, err := serveProfiler("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	resp, err := http.Get("http://" + hs.Addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("cmdline: %d", resp.StatusCode)
	}
}
