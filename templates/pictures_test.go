package templates

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"
	"golang.org/x/net/html"

	"github.com/gatecheck/gatecheck/probes"
)

// loopbackProber probes the test sites on 127.0.0.1, trusting roots.
func loopbackProber(roots *x509.CertPool) *probes.Prober {
	return probes.New(probes.Config{Timeout: 10 * time.Second, Samples: 1, SampleSpacing: time.Millisecond, RootCAs: roots,
		AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
}

// render renders a component and parses the HTML.
func render(t *testing.T, c templ.Component) *html.Node {
	t.Helper()
	var b strings.Builder
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// findAll returns the elements under n that match.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := range n.Descendants() {
		if c.Type == html.ElementNode && match(c) {
			out = append(out, c)
		}
	}
	return out
}

func byTestID(id string) func(*html.Node) bool {
	return func(n *html.Node) bool { return attr(n, "data-testid") == id }
}

func num(t *testing.T, n *html.Node, key string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(attr(n, key), 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", n.Data, key, attr(n, key), err)
	}
	return v
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return b.String()
}

// checkWaterfall reads a drawn waterfall back from its SVG's own numbers:
// each hop's segments lie end to end from the hop's start, and their
// widths and milliseconds add up to the hop's drawn width and total; the
// hops lie end to end across the whole axis; the drawn total of each hop
// is its measured total (the phases never exceed it on a real request).
func checkWaterfall(t *testing.T, doc *html.Node, ts []probes.HopTiming, secure []bool) {
	t.Helper()
	const eps = 0.002 // the SVG's numbers carry three decimals
	hops := findAll(doc, byTestID("hop-bar"))
	if len(hops) != len(ts) {
		t.Fatalf("%d hop bars drawn for %d hops", len(hops), len(ts))
	}
	at := 0.0
	for i, g := range hops {
		x, w, total := num(t, g, "data-x"), num(t, g, "data-w"), num(t, g, "data-ms")
		if math.Abs(x-at) > eps*float64(i+1) {
			t.Errorf("hop %d starts at %.3f, not where hop %d ended (%.3f)", i+1, x, i, at)
		}
		at = x + w
		if math.Abs(total-ts[i].TotalMS) > eps {
			t.Errorf("hop %d is drawn as %.3f ms, measured %.3f ms (phases %+v)", i+1, total, ts[i].TotalMS, ts[i])
		}
		segs := findAll(g, func(n *html.Node) bool { return n.Data == "rect" })
		if len(segs) == 0 {
			t.Fatalf("hop %d has no segments", i+1)
		}
		sumW, sumMS, end := 0.0, 0.0, x
		for _, s := range segs {
			sx, sw, sms := num(t, s, "x"), num(t, s, "width"), num(t, s, "data-ms")
			if sw <= 0 || sms <= 0 {
				t.Errorf("hop %d: a segment of nothing drawn: %s width %.3f, %.3f ms", i+1, attr(s, "class"), sw, sms)
			}
			if math.Abs(sx-end) > eps*float64(len(segs)) {
				t.Errorf("hop %d: segment %s starts at %.3f, the one before ended at %.3f", i+1, attr(s, "class"), sx, end)
			}
			if strings.Contains(attr(s, "class"), "tls") && !secure[i] {
				t.Errorf("hop %d (%s) is plain http but draws a TLS segment", i+1, ts[i].URL)
			}
			end = sx + sw
			sumW += sw
			sumMS += sms
		}
		if math.Abs(sumW-w) > eps*float64(len(segs)) {
			t.Errorf("hop %d: segments are %.3f wide, the hop is drawn %.3f wide", i+1, sumW, w)
		}
		if math.Abs(sumMS-total) > eps*float64(len(segs)) {
			t.Errorf("hop %d: segments add up to %.3f ms, the hop's total is %.3f ms", i+1, sumMS, total)
		}
	}
	if math.Abs(at-waterfallWidth) > 0.01 {
		t.Errorf("the hops span %.3f of the axis's %.0f", at, waterfallWidth)
	}
}

// TestWaterfallAddsUp measures real requests on loopback, over http, https
// and along a redirect chain from http to https, and reads their drawn
// waterfall back: the segments add up to the drawn total.
func TestWaterfallAddsUp(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * time.Millisecond) // the server at work: a wait to see
		io.WriteString(w, strings.Repeat("gatecheck ", 2000))
	})
	plain := httptest.NewServer(page)
	defer plain.Close()
	secure := httptest.NewUnstartedServer(page)
	secure.Config.ErrorLog = log.New(io.Discard, "", 0) // set before it serves: the server reads it from its own goroutines
	secure.StartTLS()
	defer secure.Close()
	roots := x509.NewCertPool()
	roots.AddCert(secure.Certificate())
	// Two redirects, the last to another origin over https.
	chain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			http.Redirect(w, r, "/b", http.StatusFound)
			return
		}
		http.Redirect(w, r, secure.URL+"/end", http.StatusFound)
	}))
	defer chain.Close()
	p := loopbackProber(roots)
	for _, c := range []struct {
		name, url string
		secure    []bool
	}{
		{"http", plain.URL + "/", []bool{false}},
		{"https", secure.URL + "/", []bool{true}},
		{"redirects", chain.URL + "/a", []bool{false, false, true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := p.Diagnose(context.Background(), c.url)
			if len(r.Timings) != len(c.secure) {
				t.Fatalf("%d hops measured, want %d: %s", len(r.Timings), len(c.secure), r.Verdict.Summary)
			}
			for i, tm := range r.Timings {
				if tm.TotalMS <= 0 {
					t.Fatalf("hop %d measured no time: %+v", i+1, tm)
				}
				if c.secure[i] && tm.TLSMS <= 0 {
					t.Fatalf("hop %d over https measured no handshake: %+v", i+1, tm)
				}
			}
			if failedHop(r) != -1 {
				t.Fatalf("the request failed: %s", r.HTTP.Error)
			}
			checkWaterfall(t, render(t, waterfall(r.Timings, failedHop(r))), r.Timings, c.secure)
		})
	}
	// A request that fails (a certificate the prober does not trust) is
	// drawn to where it failed: the time no phase covers is "until it
	// failed", not "other".
	t.Run("failed", func(t *testing.T) {
		r := loopbackProber(x509.NewCertPool()).Diagnose(context.Background(), secure.URL+"/")
		failed := failedHop(r)
		if failed != 0 {
			t.Fatalf("the failed hop is %d, want 0 (%s)", failed, r.HTTP.Error)
		}
		doc := render(t, waterfall(r.Timings, failed))
		checkWaterfall(t, doc, r.Timings, []bool{true})
		classes := ""
		for _, s := range findAll(doc, func(n *html.Node) bool { return strings.HasPrefix(attr(n, "class"), "seg ") }) {
			classes += attr(s, "class") + " "
		}
		if !strings.Contains(classes, "seg failed") || strings.Contains(classes, "seg other") {
			t.Errorf("the failed request's segments: %s", classes)
		}
	})
}

// TestWaterfallShowsTheRemainder: the case of issue 17, a 13 ms request
// whose measured phases add to 1 ms, is drawn over its 13 ms, the 12 ms
// no phase covers as "other", and nothing for the phases that did not
// happen.
func TestWaterfallShowsTheRemainder(t *testing.T) {
	tm := probes.HopTiming{URL: "http://shop.example/", DNSMS: 0.2, ConnectMS: 0.3, WaitMS: 0.4, TransferMS: 0.1, TotalMS: 13}
	doc := render(t, waterfall([]probes.HopTiming{tm}, -1))
	checkWaterfall(t, doc, []probes.HopTiming{tm}, []bool{false})
	var other float64
	for _, s := range findAll(doc, func(n *html.Node) bool { return n.Data == "rect" && strings.HasPrefix(attr(n, "class"), "seg ") }) {
		if attr(s, "class") == "seg other" {
			other = num(t, s, "data-ms")
		}
	}
	if math.Abs(other-12) > 0.001 {
		t.Errorf("the unmeasured 12 ms is drawn as %.3f ms", other)
	}
	svg := findAll(doc, func(n *html.Node) bool { return n.Data == "svg" })[0]
	if attr(svg, "role") != "img" || !strings.Contains(attr(svg, "aria-label"), "took 13 ms") || strings.Contains(attr(svg, "aria-label"), "0 ms,") {
		t.Errorf("the bar's text equivalent: role %q, label %q", attr(svg, "role"), attr(svg, "aria-label"))
	}
	legend := textOf(findAll(doc, func(n *html.Node) bool { return attr(n, "class") == "legend small" })[0])
	if strings.Contains(legend, "Secure connection") || !strings.Contains(legend, "Other time") {
		t.Errorf("the legend names phases that did not happen, or not the remainder: %q", legend)
	}
}

// certSite serves https on 127.0.0.1 with a certificate valid from nb to
// na, issued by a test CA it returns.
func certSite(t *testing.T, nb, na time.Time) (string, *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Gatecheck Test CA"},
		NotBefore: time.Now().AddDate(-5, 0, 0), NotAfter: time.Now().AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: nb, NotAfter: na, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"shop.example"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der, caDER}, PrivateKey: key}}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return srv.URL + "/", pool
}

// TestCertWindow probes real certificates on loopback, expired, not yet
// valid and valid, and reads the drawn window back: today's marker falls
// after, before or inside the window, and the words say so, with the
// names the certificate covers and who issued it.
func TestCertWindow(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		state  string
		nb, na time.Time
		words  string
	}{
		{"expired", now.AddDate(-1, 0, 0), now.AddDate(0, 0, -30), "It expired on " + day(now.AddDate(0, 0, -30)) + ", 30 days ago."},
		{"not-yet-valid", now.AddDate(0, 0, 10).Add(time.Hour), now.AddDate(1, 0, 0), "It is not valid yet: it starts on " + day(now.AddDate(0, 0, 10).Add(time.Hour)) + ", in 10 days."},
		{"valid", now.AddDate(0, -1, 0), now.AddDate(0, 2, 0).Add(time.Hour), "It is valid today, until " + day(now.AddDate(0, 2, 0).Add(time.Hour))},
	} {
		t.Run(c.state, func(t *testing.T) {
			u, roots := certSite(t, c.nb, c.na)
			r := loopbackProber(roots).Diagnose(context.Background(), u)
			if r.TLS == nil || len(r.TLS.Chain) == 0 {
				t.Fatalf("no certificate: %+v", r.TLS)
			}
			doc := render(t, certWindow(r.TLS, r.FinishedAt()))
			figs := findAll(doc, byTestID("cert-window"))
			if len(figs) != 1 {
				t.Fatalf("%d certificate pictures", len(figs))
			}
			if got := attr(figs[0], "data-state"); got != c.state {
				t.Errorf("state %q, want %q", got, c.state)
			}
			win := findAll(doc, byTestID("cert-valid"))[0]
			today := num(t, findAll(doc, byTestID("cert-today"))[0], "x1")
			from, to := num(t, win, "x"), num(t, win, "x")+num(t, win, "width")
			if from < 0 || to > certWidth || today < 0 || today > certWidth {
				t.Errorf("drawn off the picture: window %.1f–%.1f, today %.1f", from, to, today)
			}
			inside := today >= from && today <= to
			switch c.state {
			case "expired":
				if today <= to {
					t.Errorf("today (%.1f) is not after the window's end (%.1f)", today, to)
				}
			case "not-yet-valid":
				if today >= from {
					t.Errorf("today (%.1f) is not before the window's start (%.1f)", today, from)
				}
			case "valid":
				if !inside {
					t.Errorf("today (%.1f) is not inside the window (%.1f–%.1f)", today, from, to)
				}
			}
			text := strings.Join(strings.Fields(textOf(figs[0])), " ")
			for _, want := range []string{c.words, "shop.example, 127.0.0.1", "Issued by: Gatecheck Test CA", "Valid from " + day(c.nb) + " to " + day(c.na)} {
				if !strings.Contains(text, want) {
					t.Errorf("the picture does not say %q:\n%s", want, text)
				}
			}
			svg := findAll(figs[0], func(n *html.Node) bool { return n.Data == "svg" })[0]
			if attr(svg, "role") != "img" || !strings.Contains(attr(svg, "aria-label"), c.words) {
				t.Errorf("text equivalent: role %q, label %q", attr(svg, "role"), attr(svg, "aria-label"))
			}
		})
	}
}

// TestProgressSteps walks the steps' own table: each check kind that
// finishes a step marks that step done, the lookup runs first and then
// every step it unlocks; a queued check has every step waiting.
func TestProgressSteps(t *testing.T) {
	steps, done := plainProgress(nil, false, true)
	for _, s := range steps {
		if s.State != "waiting" {
			t.Errorf("queued: %q is %s", s.Label, s.State)
		}
	}
	if done != 0 || len(steps) != len(progressSteps) {
		t.Errorf("queued: %d steps, %d done", len(steps), done)
	}
	steps, _ = plainProgress([]probes.Check{{Kind: probes.ProbeURL}}, true, true)
	for i, s := range steps {
		if want := map[bool]string{true: "running", false: "waiting"}[i == 0]; s.State != want {
			t.Errorf("started: step %d %q is %s, want %s", i, s.Label, s.State, want)
		}
	}
	for i, ps := range progressSteps {
		for _, k := range ps.Kinds {
			checks := []probes.Check{{Kind: probes.ProbeURL}, {Kind: probes.ProbeDNS}, {Kind: k}}
			steps, done := plainProgress(checks, true, true)
			want := map[int]bool{0: true, i: true}
			if done != len(want) {
				t.Errorf("after a %s check: %d steps done, want %d", k, done, len(want))
			}
			for j, s := range steps {
				st := "running"
				if want[j] {
					st = "done"
				}
				if s.State != st {
					t.Errorf("after a %s check: step %q is %s, want %s", k, s.Label, s.State, st)
				}
			}
		}
	}
	// A failed check marks its step as where the trouble is; the others
	// are not.
	steps, _ = plainProgress([]probes.Check{{Kind: probes.ProbeDNS, Status: probes.StatusSkip}, {Kind: probes.ProbeTCP, Status: probes.StatusFail},
		{Kind: probes.ProbeHTTP, Status: probes.StatusFail}, {Kind: probes.ProbeTLS, Status: probes.StatusWarn}}, true, true)
	for _, s := range steps {
		want := slices.Contains(s.Kinds, probes.ProbeTCP) || slices.Contains(s.Kinds, probes.ProbeHTTP)
		if s.Problem != want {
			t.Errorf("step %q: problem %v, want %v", s.Label, s.Problem, want)
		}
	}
	steps, _ = plainProgress(nil, true, false)
	for _, s := range steps {
		for _, k := range s.Kinds {
			if k == probes.ProbeTLS {
				t.Errorf("an http check without an https twin shows %q", s.Label)
			}
		}
	}
}

// TestProgressStepsEndDone: a real check of an https site on loopback
// ends with every step done, and one of an http site on a port of its
// own, with no secure connection to make, likewise: every step's kind of
// check really comes.
func TestProgressStepsEndDone(t *testing.T) {
	secure := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	secure.Config.ErrorLog = log.New(io.Discard, "", 0) // set before it serves: the server reads it from its own goroutines
	secure.StartTLS()
	defer secure.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	roots := x509.NewCertPool()
	roots.AddCert(secure.Certificate())
	for _, c := range []struct {
		url    string
		secure bool
	}{{secure.URL + "/", true}, {plain.URL + "/", false}} {
		var checks []probes.Check
		loopbackProber(roots).Run(context.Background(), c.url, func(ch probes.Check) { checks = append(checks, ch) })
		steps, done := plainProgress(checks, true, c.secure)
		if done != len(steps) {
			t.Errorf("%s: %d of %d steps done after the check: %+v", c.url, done, len(steps), steps)
		}
	}
}

// TestWhereItFails diagnoses real sites on loopback and reads the server's
// lane back: the stage where the request failed is marked, the ones before
// it worked, the ones after it are not known; a plain http site has no
// security stage to fail.
func TestWhereItFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/"
	ln.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer bad.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer good.Close()
	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	defer forbidden.Close()
	expired, roots := certSite(t, time.Now().AddDate(-1, 0, 0), time.Now().AddDate(0, 0, -3))
	stage := map[string]int{}
	for i, n := range stageNames {
		stage[n] = i
	}
	for _, c := range []struct {
		name, url, fails string // fails: the stage marked, "" when none
	}{
		{"nothing listens", dead, "Connection"},
		{"a 502", bad.URL + "/", "Page"},
		{"a 403", forbidden.URL + "/", "Page"},
		{"an expired certificate", expired, "Security"},
		{"working", good.URL + "/", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := loopbackProber(roots).Diagnose(context.Background(), c.url)
			doc := render(t, whereItFails(viewLanes(r, nil, nil, "From your browser", nil)))
			lanes := findAll(doc, func(n *html.Node) bool { return attr(n, "class") == "lane" })
			if len(lanes) != 2 {
				t.Fatalf("%d lanes, want the server's and the browser's", len(lanes))
			}
			if label := attr(lanes[0], "aria-label"); attr(lanes[0], "role") != "img" || !strings.HasPrefix(label, "gatecheck's server: ") {
				t.Errorf("the server's lane in words: %q", label)
			}
			got := map[string]string{}
			for _, s := range findAll(lanes[0], func(n *html.Node) bool { return strings.HasPrefix(attr(n, "class"), "stage ") }) {
				got[strings.Fields(textOf(s))[1]] = strings.TrimPrefix(attr(s, "class"), "stage ")
			}
			for i, name := range stageNames {
				want := "ok"
				switch {
				case c.fails != "" && i == stage[c.fails]:
					want = "fail"
				case c.fails != "" && i > stage[c.fails]:
					want = "unknown"
				case name == "Security" && strings.HasPrefix(c.url, "http:"):
					want = "" // plain http has no security stage to draw
				}
				if got[name] != want {
					t.Errorf("stage %s is %q, want %q (%s)", name, got[name], want, r.Verdict.Summary)
				}
			}
			if b := attr(lanes[1], "aria-label"); b != "Your browser: Not checked." {
				t.Errorf("the browser's lane without a view: %q", b)
			}
			if n := len(findAll(lanes[1], func(n *html.Node) bool { return strings.HasPrefix(attr(n, "class"), "stage ") })); n != 0 {
				t.Errorf("the browser's lane without a view draws %d stages of nothing", n)
			}
		})
	}
}
