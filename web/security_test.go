package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/wizard"
)

// Tests of issue 15's findings that live in this package's middleware:
// each reproduces the attack against the real server and fails without
// its fix.

// TestProgressStreamsAreBounded is finding 3: one client opened 3,000
// progress streams, all accepted (6,000 goroutines, 3,000 open files).
// Streams are bounded per client, per case and in all; past a bound the
// answer is a quick 429 with Retry-After, and a stream that ends frees its
// place.
func TestProgressStreamsAreBounded(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	a := newApp(t, func(c *Config) { c.TrustedProxies = loopback; c.StreamsPerCase = 1000; c.Streams = 1000 })
	slow, release := slowSite(t)
	defer release()
	token := a.createCase(slow, "")

	type stream struct {
		resp   *http.Response
		cancel context.CancelFunc
	}
	var open []stream
	defer func() {
		for _, s := range open {
			s.cancel()
			s.resp.Body.Close()
		}
	}()
	follow := func(a *testApp, token, from string) (*http.Response, context.CancelFunc) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", a.ts.URL+"/c/"+token+"/events", nil)
		req.Header.Set("X-Forwarded-For", from)
		resp, err := a.client.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		return resp, cancel
	}
	// The attack, with the default bound per client (16): the 17th is
	// refused, from the same address or from another in its IPv6 /64.
	for i := range 40 {
		from := "198.51.100.7"
		if i%2 == 1 {
			from = fmt.Sprintf("2001:db8:5:6::%x", i)
		}
		resp, cancel := follow(a, token, from)
		if resp.StatusCode == http.StatusOK {
			open = append(open, stream{resp, cancel})
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "reloads by itself") {
			t.Fatalf("stream %d from %s: %d %.300q", i, from, resp.StatusCode, body)
		}
	}
	if len(open) != 32 || a.srv.streams.count() != 32 {
		t.Fatalf("%d streams open (gate says %d), want 16 for the IPv4 client and 16 for the IPv6 /64", len(open), a.srv.streams.count())
	}
	// Another client still gets one.
	if resp, cancel := follow(a, token, "203.0.113.50"); resp.StatusCode != http.StatusOK {
		t.Errorf("another client: %d", resp.StatusCode)
	} else {
		open = append(open, stream{resp, cancel})
	}

	// Per case and in all, with small bounds.
	b := newApp(t, func(c *Config) {
		c.TrustedProxies = loopback
		c.StreamsPerClient, c.StreamsPerCase, c.Streams = 2, 3, 4
	})
	one, two := b.createCase(slow, ""), b.createCase(slow, "")
	steps := []struct {
		token, from string
		want        int
	}{
		{one, "192.0.2.1", 200}, {one, "192.0.2.1", 200}, {one, "192.0.2.1", 429}, // per client
		{one, "192.0.2.2", 200}, {one, "192.0.2.3", 429}, // per case
		{two, "192.0.2.4", 200}, {two, "192.0.2.5", 429}, // in all
	}
	for i, st := range steps {
		resp, cancel := follow(b, st.token, st.from)
		if resp.StatusCode != st.want {
			t.Errorf("step %d (%s): %d, want %d", i, st.from, resp.StatusCode, st.want)
		}
		if resp.StatusCode == 200 {
			open = append(open, stream{resp, cancel})
		} else {
			resp.Body.Close()
			cancel()
		}
	}
	// A stream that ends frees its place.
	last := open[len(open)-1]
	last.cancel()
	last.resp.Body.Close()
	open = open[:len(open)-1]
	waitFor(t, "the stream to end", func() bool { return b.srv.streams.count() == 3 })
	if resp, cancel := follow(b, two, "192.0.2.5"); resp.StatusCode != 200 {
		t.Errorf("after one ended: %d", resp.StatusCode)
		cancel()
	} else {
		open = append(open, stream{resp, cancel})
	}
}

// TestSignInBackoffPerAccount is finding 8's second half: 40 guesses of
// one account's password from 8 addresses met no 429. Each account has its
// own budget of failures whatever address they come from (5 at once, then
// one a minute), the same for a name that has no account (so the refusal
// tells nothing); another account is not affected, and successful
// sign-ins cost nothing.
func TestSignInBackoffPerAccount(t *testing.T) {
	a := newApp(t, func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	hash, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ann", "bob"} {
		if _, err := a.db.CreateUser(context.Background(), name, hash, wizard.RoleAgent); err != nil {
			t.Fatal(err)
		}
	}
	signIn := func(name, password string, from int) *http.Response {
		resp, _ := a.do("POST", "/staff/login", url.Values{"name": {name}, "password": {password}},
			"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", from))
		return resp
	}
	for i := range 10 {
		if resp := signIn("bob", "correct horse battery", i%8+1); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("bob's sign-in %d: %d", i, resp.StatusCode)
		}
	}
	for n, name := range []string{"ann", "nobody"} {
		var refused int
		for i := range 40 {
			// Eight addresses per account, each within its own limit.
			switch resp := signIn(name, fmt.Sprintf("guess %d", i), 10*(n+1)+i%8); resp.StatusCode {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				refused++
				if resp.Header.Get("Retry-After") == "" {
					t.Errorf("429 without Retry-After")
				}
			default:
				t.Fatalf("%s guess %d: %d", name, i, resp.StatusCode)
			}
		}
		if refused != 35 {
			t.Errorf("%s: %d of 40 guesses from 8 addresses refused, want 35", name, refused)
		}
	}
	// The right password waits too: a guess that would be right must not
	// be told apart from a wrong one.
	if resp := signIn("ann", "correct horse battery", 9); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("ann's right password while backing off: %d", resp.StatusCode)
	}
	if resp := signIn("bob", "correct horse battery", 9); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("bob, after ann's guesses: %d", resp.StatusCode)
	}
}

// TestProbeLimitGroupsIPv6 is finding 8's first half: IPv6 clients were
// limited per address, and one subscriber holds a whole /64. Checks
// started from one /64 share a bucket; another /64 has its own.
func TestProbeLimitGroupsIPv6(t *testing.T) {
	a := newApp(t, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.ProbesPerMinute, c.ProbeBurst = 6, 5
	})
	site := healthySite(t)
	start := func(from string) int {
		resp, _ := a.do("POST", "/cases", url.Values{"url": {site.URL}}, "X-Forwarded-For", from)
		return resp.StatusCode
	}
	for i := range 8 {
		want := http.StatusSeeOther
		if i >= 5 {
			want = http.StatusTooManyRequests
		}
		if got := start(fmt.Sprintf("2001:db8:aa:bb:%x::%x", i, i+1)); got != want {
			t.Errorf("check %d from the same /64: %d, want %d", i, got, want)
		}
	}
	if got := start("2001:db8:aa:cc::1"); got != http.StatusSeeOther {
		t.Errorf("another /64: %d", got)
	}
	for _, tc := range []struct{ in, want string }{
		{"2001:db8:aa:bb:1:2:3:4", "2001:db8:aa:bb::"},
		{"2001:db8:aa:bb::1%eth0", "2001:db8:aa:bb::"},
		{"::ffff:198.51.100.7", "198.51.100.7"},
		{"198.51.100.7", "198.51.100.7"},
	} {
		if got := bucketOf(netip.MustParseAddr(tc.in)).String(); got != tc.want {
			t.Errorf("bucketOf(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestUnparseableForwardedForIsUntrusted is finding 9: behind a trusted
// proxy, an X-Forwarded-For hop that is not an address ("unknown",
// "203.0.113.9:4444" was one too) was taken for the proxy itself, which
// may read /metrics and has its own rate-limit bucket.
func TestUnparseableForwardedForIsUntrusted(t *testing.T) {
	a := newApp(t, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.ProbesPerMinute, c.ProbeBurst = 6, 1
	})
	if resp, _ := a.do("GET", "/metrics", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the proxy itself may read /metrics: %d", resp.StatusCode)
	}
	for _, hop := range []string{"unknown", "_hidden", "203.0.113.9, garbage", "not an address"} {
		if resp, _ := a.do("GET", "/metrics", nil, "X-Forwarded-For", hop); resp.StatusCode != http.StatusForbidden {
			t.Errorf("/metrics with X-Forwarded-For %q: %d, want 403", hop, resp.StatusCode)
		}
	}
	// A hop with a port is the client at that address, not the proxy.
	if resp, _ := a.do("GET", "/metrics", nil, "X-Forwarded-For", "203.0.113.9:4444"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("/metrics with a hop and port: %d, want 403", resp.StatusCode)
	}
	// Unknown clients share one bucket, apart from the proxy's own.
	site := healthySite(t)
	if resp, _ := a.do("POST", "/cases", url.Values{"url": {site.URL}}, "X-Forwarded-For", "unknown"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first unknown client: %d", resp.StatusCode)
	}
	if resp, _ := a.do("POST", "/cases", url.Values{"url": {site.URL}}, "X-Forwarded-For", "unknown"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("second unknown client: %d, want 429 (one bucket for unknowns)", resp.StatusCode)
	}
	if resp, _ := a.do("POST", "/cases", url.Values{"url": {site.URL}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the proxy's own bucket was spent by unknown clients: %d", resp.StatusCode)
	}
}

// TestStrictTransportSecurity is finding 12: Strict-Transport-Security on
// every answer when gatecheck is served over https (its base URL, or a
// trusted proxy's X-Forwarded-Proto), never over plain http.
func TestStrictTransportSecurity(t *testing.T) {
	plain := newApp(t)
	for _, path := range []string{"/", "/healthz", "/no/such/page"} {
		if resp, _ := plain.do("GET", path, nil); resp.Header.Get("Strict-Transport-Security") != "" {
			t.Errorf("plain http %s: HSTS %q", path, resp.Header.Get("Strict-Transport-Security"))
		}
	}
	if resp, _ := plain.do("GET", "/", nil, "X-Forwarded-Proto", "https"); resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("X-Forwarded-Proto from an untrusted peer was believed")
	}
	secure := newApp(t, func(c *Config) { c.BaseURL = "https://gatecheck.example" })
	proxied := newApp(t, func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	for name, get := range map[string]func(string) *http.Response{
		"base URL": func(p string) *http.Response { r, _ := secure.do("GET", p, nil); return r },
		"proxy": func(p string) *http.Response {
			r, _ := proxied.do("GET", p, nil, "X-Forwarded-Proto", "https")
			return r
		},
	} {
		for _, path := range []string{"/", "/healthz", "/no/such/page", "/staff/login"} {
			if got := get(path).Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") || got == "max-age=0" {
				t.Errorf("%s %s: HSTS %q", name, path, got)
			}
		}
	}
}
