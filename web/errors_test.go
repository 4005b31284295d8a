package web

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAbandonedRequestIsNotAnError: a client that hangs up while its
// request waits on the store is not logged as a server failure; a real
// failure still is.
func TestAbandonedRequestIsNotAnError(t *testing.T) {
	var logs bytes.Buffer
	s := newApp(t).srv
	s.log = slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("GET", "/c/abc", nil).WithContext(ctx)
	s.Error(httptest.NewRecorder(), r, fmt.Errorf("loading case: %w", context.Canceled))
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("an abandoned request was logged as an error: %s", logs.String())
	}
	rec := httptest.NewRecorder()
	s.Error(rec, httptest.NewRequest("GET", "/c/abc", nil), fmt.Errorf("disk on fire"))
	if rec.Code != 500 || !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a real failure: %d, logged %q", rec.Code, logs.String())
	}
}
