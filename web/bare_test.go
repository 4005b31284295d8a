package web

import (
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
)

// iisAllowlist is IIS refusing every client its IP allowlist does not know.
func iisAllowlist(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "Microsoft-IIS/10.0")
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "<html><head><title>403 - Forbidden: Access is denied.</title></head><body><h2>403 - Forbidden: Access is denied.</h2>"+
			"<h3>You do not have permission to view this directory or page using the credentials that you supplied.</h3></body></html>")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// withPorts makes the probes take http and https on 127.0.0.1 to be the
// ports given (nothing listening where 0), as 80 and 443 are for a real
// site: "127.0.0.1" typed bare is then probed on both.
func withPorts(t *testing.T, http, https int, roots *x509.CertPool) func(*Config) {
	closed := func() int { return portOf(t, strings.TrimSuffix(strings.TrimPrefix(closedPort(t), "http://"), "/")) }
	if http == 0 {
		http = closed()
	}
	if https == 0 {
		https = closed()
	}
	return func(c *Config) {
		c.Prober = probes.New(probes.Config{Timeout: 3 * time.Second, Samples: 1, SampleSpacing: time.Millisecond,
			AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			Ports:     probes.Ports{HTTP: http, HTTPS: https}, RootCAs: roots})
	}
}

// bareDoc is what the API says of a case typed without a scheme.
type bareDoc struct {
	URL      string
	NoScheme bool `json:"no_scheme"`
	Probe    struct {
		SharedFrom int64 `json:"shared_from"`
		Report     struct {
			URL      string
			NoScheme bool `json:"no_scheme"`
			Verdict  struct{ Code string }
			Findings []struct{ Code, Summary string }
		}
	}
}

func (a *testApp) bareDoc(token string) bareDoc {
	a.t.Helper()
	var d bareDoc
	_, body := a.do("GET", "/api/cases/"+token, nil)
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		a.t.Fatalf("case %s: %v: %s", token, err, body)
	}
	return d
}

// TestBareNameBlockedOverHTTP: "blocked.example" typed without a scheme,
// where https has no binding and http answers 403 (an IIS allowlist): the
// person saw the 403, so the case is about the allowlist, from the first
// step to the escalation, and never about the https binding, which is a
// finding. The same site typed https:// is another target, and is not the
// https binding either.
func TestBareNameBlockedOverHTTP(t *testing.T) {
	iis := iisAllowlist(t)
	httpPort := portOf(t, iis.Listener.Addr().String())
	a := newApp(t, withPorts(t, httpPort, 0, nil), func(c *Config) { c.Settings.HostedAllowlist = true })

	token := a.createCase("127.0.0.1", "INC-16")
	a.waitProbed(token)
	d := a.bareDoc(token)
	rep := d.Probe.Report
	httpURL := "http://127.0.0.1:" + strconv.Itoa(httpPort) + "/"
	if !d.NoScheme || d.URL != "https://127.0.0.1/" || !rep.NoScheme || rep.URL != httpURL || rep.Verdict.Code != "access_blocked" {
		t.Fatalf("a bare name where http answers 403: case %s (no_scheme %v), report of %s (no_scheme %v) %s, want access_blocked on %s",
			d.URL, d.NoScheme, rep.URL, rep.NoScheme, rep.Verdict.Code, httpURL)
	}
	finding := ""
	for _, f := range rep.Findings {
		if f.Code == "https_unavailable" {
			t.Errorf("a finding leads to the https binding: %+v", f)
		}
		if f.Code == "tcp_refused" {
			finding = f.Summary
		}
	}
	if !strings.Contains(finding, "no https binding") || !strings.Contains(finding, "403 Forbidden") {
		t.Errorf("findings %+v, want https refused described, with http's 403", rep.Findings)
	}

	https := []string{"Who can fix the https setup?", "https binding", "Reinstate the https binding"}
	noHTTPS := func(page, where string) {
		t.Helper()
		for _, s := range https {
			if strings.Contains(page, s) && !strings.Contains(page, "no https binding") {
				t.Errorf("%s leads to the https binding (%q)", where, s)
			}
		}
	}
	_, page := a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, "Your IP address and the allowlist") {
		t.Fatalf("the first step is not the allowlist: %s", excerpt(page, "<main"))
	}
	noHTTPS(page, "the first step")
	if _, page = a.do("GET", "/c/"+token+"/at/probe", nil); !strings.Contains(page, "found that the site refuses access") {
		t.Errorf("the probe step does not show the verdict: %s", excerpt(page, "<main"))
	}
	page = a.answer(token, "allowlist-who", "some")
	noHTTPS(page, "the allowlist check")
	// {url} is what the person's browser showed: http.
	if !strings.Contains(page, "Open "+httpURL+" from a second machine") {
		t.Errorf("the fix does not name the http address the browser showed: %s", excerpt(page, "second machine"))
	}
	page = a.answer(token, "allowlist-verify", "broken")
	if !strings.Contains(page, "Ask CloudOps to update the allowlist") || !strings.Contains(page, httpURL) {
		t.Errorf("the escalation is not the allowlist's, of %s: %s", httpURL, excerpt(page, "<main"))
	}
	noHTTPS(page, "the escalation")

	// Typed with https://, the same site is another target (no sharing),
	// and the person saw https refused: not the binding, since http fails.
	typed := a.createCase("https://127.0.0.1/", "")
	a.waitProbed(typed)
	td := a.bareDoc(typed)
	if td.NoScheme || td.Probe.Report.NoScheme || td.Probe.SharedFrom != 0 || td.Probe.Report.Verdict.Code == "https_unavailable" {
		t.Errorf("typed https: no_scheme %v/%v, shared from %d, verdict %s", td.NoScheme, td.Probe.Report.NoScheme, td.Probe.SharedFrom, td.Probe.Report.Verdict.Code)
	}
}

// TestBareNameHTTPSWorksHTTPFails: typed without a scheme, https answers
// and http refuses: a browser shows https, so the verdict is healthy, with
// http's 403 as a finding, and the visitor's browser is asked to try https.
func TestBareNameHTTPSWorksHTTPFails(t *testing.T) {
	site := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<h1>shop</h1>") }))
	t.Cleanup(site.Close)
	roots := x509.NewCertPool()
	roots.AddCert(site.Certificate())
	iis := iisAllowlist(t)
	httpsPort := portOf(t, site.Listener.Addr().String())
	a := newApp(t, withPorts(t, portOf(t, iis.Listener.Addr().String()), httpsPort, roots))

	token := a.createCase("127.0.0.1/", "")
	a.waitProbed(token)
	rep := a.bareDoc(token).Probe.Report
	httpsURL := "https://127.0.0.1:" + strconv.Itoa(httpsPort) + "/"
	if !rep.NoScheme || rep.URL != httpsURL || rep.Verdict.Code != "healthy" {
		t.Fatalf("report of %s (no_scheme %v) %s, want healthy on %s", rep.URL, rep.NoScheme, rep.Verdict.Code, httpsURL)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Code != "access_blocked" || !strings.Contains(rep.Findings[0].Summary, "403 Forbidden") {
		t.Errorf("findings %+v, want http's 403", rep.Findings)
	}
	resp, _ := a.do("GET", "/c/"+token, nil)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "https://127.0.0.1:"+strconv.Itoa(httpsPort)) {
		t.Errorf("the browser check does not try the https the report is about: %s", csp)
	}
}
