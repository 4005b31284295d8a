package web

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

// startFrom opens a case for target on a through the API, from client
// address ip with Authorization auth ("" for none), and returns the
// status.
func (a *testApp) startFrom(target, ip, auth string) int {
	a.t.Helper()
	req, _ := http.NewRequest("POST", a.ts.URL+"/api/cases", strings.NewReader(`{"url": "`+target+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestClusterLimits: on three instances sharing a database, a client's
// checks, an API key's cases and an account's failed sign-ins are each
// limited once across the three, not once per instance; a sign-in that
// succeeds costs its account nothing on any of them.
func TestClusterLimits(t *testing.T) {
	const slow = 0.001 // a token each 1,000 minutes: none refills during the test
	apps := newCluster(t, 3, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.ProbesPerMinute, c.ProbeBurst = slow, 4
		c.APIKeyProbesPerMinute, c.APIKeyProbeBurst = slow, 5
		c.AccountFailuresPerMinute = slow // burst 5
	})
	gw := brokenGateway(t)

	// A client's checks: 4 across the instances, then none on any.
	for i := range 4 {
		if got := apps[i%3].startFrom(gw.URL, "198.51.100.7", ""); got != http.StatusCreated {
			t.Fatalf("check %d of the client's 4, on instance %d: %d", i+1, i%3, got)
		}
	}
	for i, a := range apps {
		if got := a.startFrom(gw.URL, "198.51.100.7", ""); got != http.StatusTooManyRequests {
			t.Errorf("the client's fifth check, on instance %d: %d, want 429", i, got)
		}
	}
	if got := apps[2].startFrom(gw.URL, "198.51.100.8", ""); got != http.StatusCreated {
		t.Errorf("another client's check: %d", got)
	}

	// An API key's cases: 5 across the instances (from addresses of
	// their own), then none on any.
	key := apps[0].apiKey("servicedesk")
	for i := range 5 {
		if got := apps[i%3].startFrom(gw.URL, "203.0.113.1", key); got != http.StatusCreated {
			t.Fatalf("case %d of the key's 5, on instance %d: %d", i+1, i%3, got)
		}
	}
	for i, a := range apps {
		if got := a.startFrom(gw.URL, "203.0.113.2", key); got != http.StatusTooManyRequests {
			t.Errorf("the key's sixth case, on instance %d: %d, want 429", i, got)
		}
	}

	// An account's sign-ins, each from an address of its own (the
	// per-address limit is not the one tested): six that succeed cost
	// nothing; five failures anywhere, and the right password is refused
	// everywhere.
	apps[0].addStaff("ann", wizard.RoleAgent)
	ip := 0
	signIn := func(a *testApp, password string) (*http.Response, string) {
		ip++
		return a.do("POST", "/staff/login", url.Values{"name": {"Ann"}, "password": {password}}, "X-Forwarded-For", "192.0.2."+strconv.Itoa(ip))
	}
	for i := range 6 {
		if resp, _ := signIn(apps[i%3], staffPassword); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in %d, on instance %d: %d", i+1, i%3, resp.StatusCode)
		}
	}
	for i := range 5 {
		if resp, _ := signIn(apps[i%3], "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failed sign-in %d, on instance %d: %d", i+1, i%3, resp.StatusCode)
		}
	}
	for i, a := range apps {
		resp, page := signIn(a, staffPassword)
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(page, "Too many failed sign-in attempts for this account") {
			t.Errorf("after 5 failures, the right password on instance %d: %d", i, resp.StatusCode)
		}
	}
}

// lockedBuffer is a log's output that goroutines may write at once.
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

// TestStoreLimiterFailsOpen: when the database keeping the limits fails,
// checks are started anyway, past the limit, and the failure is logged as
// a warning, once, not once a request.
func TestStoreLimiterFailsOpen(t *testing.T) {
	broken, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "limits.db"))
	if err != nil {
		t.Fatal(err)
	}
	broken.Close()
	var logged lockedBuffer
	a := newApp(t, func(c *Config) {
		c.Tokens = broken
		c.ProbesPerMinute, c.ProbeBurst = 0.001, 1
		c.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	})
	gw := brokenGateway(t)
	for i := range 3 {
		if resp, body := a.keyDo("POST", "/api/cases", "", `{"url": "`+gw.URL+`"}`); resp.StatusCode != http.StatusCreated {
			t.Fatalf("check %d with the limits' database down: %d %s", i+1, resp.StatusCode, body)
		}
	}
	if n := strings.Count(logged.String(), "level=WARN msg=\"rate limit not checked"); n != 1 {
		t.Errorf("%d warnings for 3 checks with the limits' database down, want 1:\n%s", n, logged.String())
	}
}
