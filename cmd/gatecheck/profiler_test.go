package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestServeProfiler checks the profiler listens on loopback only, under a
// path nobody can guess.
func TestServeProfiler(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if hs, _, err := serveProfiler("0.0.0.0:0", log); err == nil {
		hs.Close()
		t.Fatal("the profiler listened on every interface")
	} else if !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("refusal = %v", err)
	}
	hs, url, err := serveProfiler("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	for path, want := range map[string]int{url + "cmdline": 200, "http://" + hs.Addr + "/debug/pprof/cmdline": 404} {
		resp, err := http.Get(path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
