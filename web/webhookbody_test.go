package web

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"
)

// TestBodyTemplateDeadline: a run that outlives its deadline is given up
// at the deadline, and stops at its next write or call instead of running
// on in the background. (Templates with loops are refused before they run;
// this is the bound for whatever a template might still find to be slow.)
func TestBodyTemplateDeadline(t *testing.T) {
	var calls atomic.Int64
	tmpl := template.Must(template.New("body").Funcs(template.FuncMap{
		"tick": func() string { calls.Add(1); return "" },
	}).Parse(`{{range 1000000000}}{{tick}}{{end}}`))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := executeBounded(ctx, tmpl, nil, 1<<40)
	if took := time.Since(start); err == nil || !strings.Contains(err.Error(), "ran longer than") || took > 2*time.Second {
		t.Fatalf("after %s: %v", took, err)
	}
	time.Sleep(50 * time.Millisecond)
	n := calls.Load()
	time.Sleep(200 * time.Millisecond)
	if m := calls.Load(); m > n+1 {
		t.Errorf("the run went on after its deadline: %d calls, then %d", n, m)
	}
}

// TestBodyTemplateStopsWithTheServer: a run cut short by the server
// stopping is not the template's fault (the delivery is tried again at
// the next start), and the functions stop at once.
func TestBodyTemplateStopsWithTheServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := renderBody(ctx, `{{json .Event}}`, examplePayload())
	var be *bodyError
	if !errors.Is(err, context.Canceled) || errors.As(err, &be) {
		t.Errorf("a cancelled run: %v", err)
	}
	body, err := renderBody(context.Background(), `{{json .Event}}`, examplePayload())
	if err != nil || string(body) != `"case.created"` {
		t.Errorf("a run: %q, %v", body, err)
	}
}
