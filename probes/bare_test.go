package probes

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// iis403 serves http as IIS refusing a client its IP allowlist does not
// know.
func (e *env) iis403() {
	e.httpSite(status(403, "Server", "Microsoft-IIS/10.0"))
}

// TestBareNameIsProbedAsABrowserWould: an address typed without a scheme
// is judged by what a browser would have shown (https, or http when https
// does not connect), with the other scheme as a finding; the missing https
// binding is the verdict only when http itself works.
func TestBareNameIsProbedAsABrowserWould(t *testing.T) {
	for _, tc := range []struct {
		name    string
		typed   string
		setup   func(e *env)
		code    Code
		scheme  string // of the report's URL and main request
		finding Code   // "" for none
		says    []string
	}{
		{name: "https has no binding, http answers 403 (an allowlist)", typed: "blocked.test",
			setup: func(e *env) { e.iis403() },
			code:  AccessBlocked, scheme: "http", finding: TCPRefused,
			says: []string{"https binding", "403 Forbidden", "falls back to http"}},
		{name: "https works, http answers 403", typed: "shop.test/cart",
			setup: func(e *env) {
				e.httpsSite(ok("<h1>shop</h1>"), e.cert("shop.test"))
				e.iis403()
			},
			code: Healthy, scheme: "https", finding: AccessBlocked,
			says: []string{"http://shop.test", "403 Forbidden", "uses https, which answered 200 OK"}},
		{name: "https has no binding, http works", typed: "shop.test",
			setup: func(e *env) { e.httpSite(ok("<h1>shop over http</h1>")) },
			code:  Healthy, scheme: "http", finding: TCPRefused,
			says: []string{"https binding", "falls back to http, which answered 200 OK"}},
		{name: "https certificate expired, http works", typed: "shop.test",
			setup: func(e *env) {
				e.httpsSite(ok("x"), e.pki.leaf(e.t, certSpec{cn: "shop.test", names: []string{"shop.test"},
					notBefore: time.Now().Add(-100 * 24 * time.Hour), notAfter: time.Now().Add(-10 * 24 * time.Hour)}, true))
				e.httpSite(ok("<h1>shop over http</h1>"))
			},
			code: Healthy, scheme: "http", finding: TLSExpired,
			says: []string{"expired", "falls back to http"}},
		{name: "https has no binding, http redirects to https (the binding path)", typed: "shop.test",
			setup: func(e *env) { e.httpSite(toHTTPS(e)) },
			code:  HTTPSUnavailable, scheme: "https"},
		{name: "https works, http redirects to it", typed: "shop.test",
			setup: func(e *env) {
				e.httpsSite(ok("<h1>shop</h1>"), e.cert("shop.test"))
				e.httpSite(toHTTPS(e))
			},
			code: Healthy, scheme: "https"},
		{name: "nothing on either port", typed: "shop.test",
			setup: func(e *env) {},
			code:  TCPRefused, scheme: "https", finding: TCPRefused,
			says: []string{"http fails too"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.cfg.Ports = Ports{HTTP: closedPort(t), HTTPS: closedPort(t)}
			e.name(strings.Split(tc.typed, "/")[0])
			tc.setup(e)
			r := e.diagnose(tc.typed)
			if r.Verdict.Code != tc.code {
				t.Fatalf("verdict %s (%s), want %s", r.Verdict.Code, r.Verdict.Summary, tc.code)
			}
			if !r.NoScheme {
				t.Error("the report does not say the scheme was not typed")
			}
			if !strings.HasPrefix(r.URL, tc.scheme+"://") || !strings.HasPrefix(r.HTTP.URL, tc.scheme+"://") {
				t.Errorf("report of %s, main request %s: want the %s one", r.URL, r.HTTP.URL, tc.scheme)
			}
			other := map[string]string{"http": "https", "https": "http"}[tc.scheme]
			if r.Twin == nil || !strings.HasPrefix(r.Twin.URL, other+"://") {
				t.Errorf("twin %+v, want the %s request", r.Twin, other)
			}
			var found *Verdict
			for i, f := range r.Findings {
				if f.Code == tc.finding {
					found = &r.Findings[i]
				}
				if f.Code == HTTPSUnavailable && tc.scheme == "http" {
					t.Errorf("a finding leads to the https binding: %+v", f)
				}
			}
			switch {
			case tc.finding == "" && len(r.Findings) > 0:
				t.Errorf("findings %+v, want none", r.Findings)
			case tc.finding != "" && found == nil:
				t.Errorf("findings %+v, want %s", r.Findings, tc.finding)
			case found != nil:
				for _, s := range tc.says {
					if !strings.Contains(found.Summary, s) {
						t.Errorf("finding %q does not say %q", found.Summary, s)
					}
				}
			}
			// The checks name each request by the scheme it used.
			for _, c := range r.Checks {
				switch c.Kind {
				case ProbeHTTP:
					if c.Name != tc.scheme {
						t.Errorf("the main request's check is named %q, want %q", c.Name, tc.scheme)
					}
				case ProbeTwin:
					if c.Name != other+" (other scheme)" {
						t.Errorf("the other scheme's check is named %q", c.Name)
					}
				case ProbeURL:
					if !strings.Contains(c.Detail, "without a scheme") {
						t.Errorf("the url check does not say the scheme was not typed: %q", c.Detail)
					}
				}
			}
			// The samples asked the scheme the verdict is about.
			if tc.code == AccessBlocked && (r.Counts.Other != r.Counts.Total || r.Counts.Total == 0) {
				t.Errorf("samples %+v, want every one the 403 of http", r.Counts)
			}
		})
	}
}

// TestTypedSchemeIsNotBare: with the scheme typed, the report keeps to it
// (no_scheme absent), and https refused while http answers 403 is not the
// missing https binding: http itself fails.
func TestTypedSchemeIsNotBare(t *testing.T) {
	e := newEnv(t)
	e.cfg.Ports = Ports{HTTP: closedPort(t), HTTPS: closedPort(t)}
	e.name("blocked.test")
	e.iis403()
	r := e.diagnose("https://blocked.test/")
	if r.NoScheme || !strings.HasPrefix(r.URL, "https://") {
		t.Errorf("a typed https URL reported as bare: %s, no_scheme %v", r.URL, r.NoScheme)
	}
	if r.Verdict.Code == HTTPSUnavailable {
		t.Errorf("verdict %s (%s): the https binding, although http answers 403", r.Verdict.Code, r.Verdict.Summary)
	}
	raw, _ := json.Marshal(r)
	if strings.Contains(string(raw), "no_scheme") {
		t.Error("a report of a typed scheme carries no_scheme")
	}
	r = e.diagnose("http://blocked.test/")
	if r.Verdict.Code != AccessBlocked || hasCode(r.Findings, HTTPSUnavailable) {
		t.Errorf("typed http: verdict %s, findings %+v: want access_blocked and no https binding", r.Verdict.Code, r.Findings)
	}
}
