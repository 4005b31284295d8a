package probes

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Regressions found in review; each case names what used to go wrong.

func TestRedirectToAnotherHostIsJudgedOnThatHost(t *testing.T) {
	for _, from := range []string{"http", "https"} {
		t.Run(from, func(t *testing.T) {
			e := newEnv(t)
			e.name("a.test")
			e.name("b.test")
			redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "https://b.test:"+itoa(e.cfg.Ports.HTTPS)+"/", http.StatusFound)
			})
			// a.test serves both schemes and sends everyone to b.test on
			// a port where nothing listens.
			e.httpSite(redirect)
			e.httpsSite(redirect, e.cert("a.test"))
			dead := closedPort(t)
			redirectDead := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "https://b.test:"+itoa(dead)+"/", http.StatusFound)
			})
			e.httpSite(redirectDead)
			e.httpsSite(redirectDead, e.cert("a.test"))
			r := e.diagnose(from + "://a.test/")
			if r.Verdict.Code != TCPRefused || !strings.Contains(r.Verdict.Summary, "b.test") || strings.Contains(r.Verdict.Summary, "a.test") {
				t.Errorf("verdict %s: %q; want tcp_refused naming b.test", r.Verdict.Code, r.Verdict.Summary)
			}
		})
	}
}

func TestSamplesCutOffByTheDeadlineAreNotFailures(t *testing.T) {
	e := newEnv(t)
	e.name("slow.test")
	e.httpSite(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(700 * time.Millisecond)
	}))
	e.cfg.Timeout = 1500 * time.Millisecond
	e.cfg.Samples = 3
	e.cfg.SampleSpacing = 500 * time.Millisecond // the third starts at 1 s and cannot finish
	r := e.diagnose("http://slow.test/")
	if r.Verdict.Code != Healthy {
		t.Errorf("verdict %s (%s), want healthy", r.Verdict.Code, r.Verdict.Summary)
	}
	if !r.Samples[2].CutOff || r.Counts.Total != 2 || r.Counts.OK != 2 {
		t.Errorf("samples %+v, counts %+v: want the last cut off and left out", r.Samples, r.Counts)
	}
}

// http redirects to https, which is refused: the verdict is the same
// whichever scheme was typed.
func TestSameSiteSameVerdictWhicheverScheme(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			e := newEnv(t)
			e.name("shop.test")
			e.cfg.Ports.HTTPS = closedPort(t)
			e.httpSite(toHTTPS(e))
			r := e.diagnose(scheme + "://shop.test/")
			if r.Verdict.Code != HTTPSUnavailable {
				t.Errorf("verdict %s (%s), want https_unavailable", r.Verdict.Code, r.Verdict.Summary)
			}
		})
	}
}

// A name with a non-public and a public-but-dead address: the verdict is
// about the address that may be dialled, and the other is never dialled
// nor shown.
func TestMixedAddressesAreJudgedOnTheAllowedOnes(t *testing.T) {
	e := newEnv(t)
	e.cfg.AllowNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	e.dns.set("mixed.test", "A 10.9.8.7", "A 127.0.0.2")
	e.cfg.Ports.HTTP = closedPort(t)
	e.cfg.Ports.HTTPS = closedPort(t)
	r := e.diagnose("http://mixed.test/")
	if r.Verdict.Code != TCPRefused {
		t.Errorf("verdict %s (%s), want tcp_refused", r.Verdict.Code, r.Verdict.Summary)
	}
	for _, f := range r.Findings {
		if f.Code == TCPRefused && strings.Contains(f.Summary, "of 2") {
			t.Errorf("finding counts the withheld address: %s", f.Summary)
		}
	}
	raw, _ := json.Marshal(r)
	if strings.Contains(string(raw), "10.9.8.7") {
		t.Errorf("the non-public address is in the report: %s", raw)
	}
	if r.DNS.Withheld != 1 {
		t.Errorf("withheld = %d, want 1", r.DNS.Withheld)
	}
}

func TestRefusedNamesDoNotRevealTheirAddresses(t *testing.T) {
	e := newEnv(t)
	e.cfg.AllowNets = nil
	e.dns.set("intranet.test", "CNAME db.corp.test")
	e.dns.set("db.corp.test", "A 10.20.30.40")
	r := e.diagnose("https://intranet.test/")
	raw, _ := json.Marshal(r)
	if r.Verdict.Code != BlockedTarget || strings.Contains(string(raw), "10.20.30.40") || strings.Contains(string(raw), "db.corp.test") {
		t.Errorf("verdict %s; report reveals the internal answer: %s", r.Verdict.Code, raw)
	}
	if !strings.Contains(r.Verdict.Summary, "private") {
		t.Errorf("summary %q does not say what kind of address", r.Verdict.Summary)
	}
}

func TestInvalidInputLosesItsCredentials(t *testing.T) {
	for _, in := range []string{
		"admin:s3cret@shop.example:99999",
		"https://admin:s3cret@shop.example/%zz",
		"https://admin:s3 cret@shop.example/",
		"//admin:s3cret@shop.example:0/",
	} {
		r := New(Config{}).Diagnose(t.Context(), in)
		if r.Verdict.Code != InvalidURL {
			t.Errorf("%q: verdict %s", in, r.Verdict.Code)
		}
		if strings.Contains(r.URL, "s3") || !strings.Contains(r.URL, "shop.example") {
			t.Errorf("%q recorded as %q", in, r.URL)
		}
	}
}

func TestCertificateNamesCannotDriveATerminal(t *testing.T) {
	e := newEnv(t)
	e.name("shop.test")
	e.httpsSite(ok("x"), e.cert("evil\x1b[2Jx.test"))
	r := e.diagnose("https://shop.test/")
	raw, _ := json.Marshal(r)
	if strings.Contains(string(raw), `\u001b`) || strings.Contains(string(raw), "\u202e") || strings.Contains(string(raw), `\u202e`) {
		t.Errorf("control characters from the certificate reach the report: %s", raw)
	}
	if r.Verdict.Code != TLSHostnameMismatch {
		t.Errorf("verdict %s", r.Verdict.Code)
	}
}

func TestFastlyLeadsAndKeepsTheOthers(t *testing.T) {
	h := http.Header{"X-Varnish": {"1"}, "Server": {"Varnish"}, "Cf-Ray": {"abc"}, "X-Timer": {"S1"}, "X-Served-By": {"cache-fra1"}}
	g := fingerprint(503, h, "")
	if g.Name != "fastly" || strings.Contains(strings.Join(g.Others, ","), "fastly") || !strings.Contains(strings.Join(g.Others, ","), "cloudflare") {
		t.Errorf("gateway %q, others %v", g.Name, g.Others)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
