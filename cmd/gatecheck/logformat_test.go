package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a buffer the server's goroutines may log to at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogFormatJSON: with --log-format json every log line is a JSON
// object with slog's keys; an unknown format is a usage error.
func TestLogFormatJSON(t *testing.T) {
	if code, _, errs := runWith(t, "", "serve", "--log-format", "yaml", "--db", filepath.Join(t.TempDir(), "x.db")); code != exitUsage || !strings.Contains(errs, "text or json") {
		t.Errorf("--log-format yaml: %d %s", code, errs)
	}
	ctx, stop := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var logs lockedBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "gatecheck.db"), "--log-format", "json", "--verbose"},
			strings.NewReader(""), pw, &logs)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("server did not start: %v", err)
	}
	go io.Copy(io.Discard, pr)
	base := strings.TrimSuffix(strings.Fields(strings.SplitAfter(line, "serving ")[1])[0], "/")
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	stop()
	if code := <-exited; code != exitOK {
		t.Fatalf("exit %d\n%s", code, logs.String())
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var msgs []string
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", l)
		}
		if rec["time"] == nil || rec["level"] == nil || rec["msg"] == nil {
			t.Errorf("a log line without slog's keys: %q", l)
		}
		msgs = append(msgs, rec["msg"].(string))
	}
	if !strings.Contains(strings.Join(msgs, "|"), "request") || msgs[len(msgs)-1] != "stopped" {
		t.Errorf("log messages %q: want the request (--verbose) and a last \"stopped\"", msgs)
	}
}
