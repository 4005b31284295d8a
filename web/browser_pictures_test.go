package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// picturesCA is a test CA whose certificates the pictures' prober trusts.
type picturesCA struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

func newPicturesCA(t *testing.T) *picturesCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Acme Test CA"},
		NotBefore: time.Now().AddDate(-5, 0, 0), NotAfter: time.Now().AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &picturesCA{cert: cert, der: der, key: key}
}

// site serves https on 127.0.0.1 with a certificate of the CA valid from
// nb to na.
func (ca *picturesCA) site(t *testing.T, nb, na time.Time, h http.Handler) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: nb, NotAfter: na, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"shop.acme.example"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der, ca.der}, PrivateKey: key}}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// picturesApp is browserApp with the test CA trusted and a prober timeout
// long enough for a held probe to outlast the page's audits.
func picturesApp(t *testing.T, ca *picturesCA) *testApp {
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	return newApp(t, func(c *Config) {
		c.Prober = probes.New(probes.Config{Timeout: 90 * time.Second, Samples: 1, SampleSpacing: time.Millisecond, RootCAs: roots,
			AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		c.Settings = wizard.Settings{Org: "Acme", Team: "CloudOps", TeamContact: "cloudops@acme.example", SupportContact: "helpdesk@acme.example"}
	})
}

// shotSizes are the phone and desktop screens, each in light and dark.
var shotSizes = []struct {
	name string
	w, h int64
	opts []chromedp.EmulateViewportOption
}{
	{"phone", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch}},
	{"desktop", 1280, 900, nil},
}

// shoot takes the page at each size in light and dark, audits each (axe,
// keyboard) and checks that nothing is wider than the phone; check runs
// at each too.
func (tb *tab) shoot(name string, check func(size string)) {
	tb.t.Helper()
	dir := tb.t.ArtifactDir()
	for _, size := range shotSizes {
		for _, scheme := range []string{"light", "dark"} {
			tb.do(chromedp.EmulateViewport(size.w, size.h, size.opts...), chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
				_, err := cdp.Call(ctx, target, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
					Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
				return err
			}))
			if got := tb.eval(`matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"`); got != scheme {
				tb.t.Fatalf("the page is in %s, not %s", got, scheme)
			}
			if check != nil {
				check(size.name)
			}
			png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
			if err != nil {
				tb.t.Fatalf("screenshot %s: %v", name, err)
			}
			file := filepath.Join(dir, fmt.Sprintf("pictures-%s-%s-%s.png", name, size.name, scheme))
			if err := os.WriteFile(file, png, 0o644); err != nil {
				tb.t.Fatal(err)
			}
			if size.name == "phone" {
				if w := tb.eval(`String(document.documentElement.scrollWidth)`); w != fmt.Sprint(size.w) {
					tb.t.Errorf("%s at %d px scrolls sideways: %s px wide", name, size.w, w)
				}
			}
			tb.audit(fmt.Sprintf("%s %s %s", name, size.name, scheme))
		}
	}
}

// stepStates reads the probing page's plain steps: "label=state" each.
const stepStatesJS = `Array.from(document.querySelectorAll("[data-steps] > li")).map(li =>
	li.textContent.replace(/\(.*\)/, "").replace(/\s+/g, " ").trim() + "=" + li.getAttribute("data-state")).join("\n")`

// recordSteps is run in every document the tab opens: it keeps each change
// of the probing page's steps (a problem marked "!") and bar in sessionStorage, which outlives
// the reload into the first question.
const recordSteps = `document.addEventListener("DOMContentLoaded", () => {
	const steps = document.querySelector("[data-steps]");
	if (!steps) return;
	const bar = document.querySelector("[data-progress]");
	const log = () => {
		const seen = JSON.parse(sessionStorage.getItem("steps") || "[]");
		seen.push(Array.from(steps.children).map(li => li.getAttribute("data-state") + (li.hasAttribute("data-problem") ? "!" : "")).join(",") +
			" bar=" + bar.value + "/" + bar.max);
		sessionStorage.setItem("steps", JSON.stringify(seen));
	};
	log();
	new MutationObserver(log).observe(steps, {subtree: true, attributes: true, attributeFilter: ["data-state", "data-problem"]});
});`

// TestBrowserProgressSteps: the probing page of a slow site shows its
// plain steps (the lookup and the connection done, the request under
// way), the bar, how long a check usually takes and, folded away, the raw
// log; released (to a 502), the steps advance to done, the failed ones
// marked, and the page moves on to the first question.
func TestBrowserProgressSteps(t *testing.T) {
	b := newBrowser(t)
	a := picturesApp(t, newPicturesCA(t))
	slow, release := slowSite(t)
	token := a.createCase(slow+"?from=a-very-long-address/with/many/parts/to/wrap/nicely", "")
	a.waitStarted(token)
	tb := b.newTab(t, a.ts.URL)
	tb.do(chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		_, err := cdp.Call(ctx, target, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recordSteps})
		return err
	}))
	tb.open("/c/" + token)
	tb.do(chromedp.WaitReady(chromedp.CSS("[data-steps]")))
	// The event stream has replayed the checks so far.
	n := strings.Count(func() string { _, h := a.do("GET", "/c/"+token, nil); return h }(), "<li>")
	tb.liveProgressOnce(n)
	// An http site on a port of its own: no secure connection to make.
	want := "Looking up the name=done\nConnecting to the site's server=done\nAsking the site for the page=running\n" +
		"Asking again a few times, to catch failures that come and go=running"
	if got := tb.eval(stepStatesJS); got != want {
		t.Errorf("the steps while the site holds the request:\n%s\nwant:\n%s", got, want)
	}
	if got := tb.eval(`(() => { const p = document.querySelector("[data-progress]"); return p.value + "/" + p.max; })()`); got != "2/4" {
		t.Errorf("the bar shows %s, want 2/4", got)
	}
	tb.expect("probing page", "Checking 127.0.0.1", "A check usually takes a few seconds, and never more than 1 minute 30 seconds.", "Details, check by check")
	if open := tb.eval(`String(document.querySelector("details.raw-log").open)`); open != "false" {
		t.Errorf("the raw log is not folded away")
	}
	if body := tb.bodyText(); strings.Contains(body, "tcp 127.0.0.1") {
		t.Errorf("the raw log shows while folded:\n%s", body)
	}
	// The title names the host on one line; the address below it wraps
	// between its parts, not inside a word.
	if h := tb.eval(`String(document.querySelector("h1 .host").getClientRects().length)`); h != "1" {
		t.Errorf("the host in the title breaks over %s lines", h)
	}
	tb.shoot("probing", func(size string) {
		words := tb.eval(`(() => { const r = document.createRange(); const out = [];
			const el = document.querySelector(".probing-url .url");
			for (const n of el.childNodes) { if (n.nodeType !== 3) continue;
				r.selectNodeContents(n); if (r.getClientRects().length > 1) out.push(n.textContent); }
			return out.join(" "); })()`)
		if words != "" {
			t.Errorf("%s: the address breaks inside %q", size, words)
		}
	})
	release()
	if title := tb.waitStep(); title == "" {
		t.Fatal("no step after the check")
	}
	var seen []string
	if err := json.Unmarshal([]byte(tb.eval(`sessionStorage.getItem("steps") || "[]"`)), &seen); err != nil {
		t.Fatal(err)
	}
	last := ""
	for _, s := range seen {
		last = s
	}
	// The site's answer, released, is a 502: the request and the repeats
	// are where the trouble is (!), the lookup and the connection are not.
	if last != "done,done,done!,done! bar=4/4" {
		t.Errorf("the steps never all came to done before the page moved on:\n%s", strings.Join(seen, "\n"))
	}
	t.Logf("the steps as the page saw them:\n%s", strings.Join(seen, "\n"))
}

// TestBrowserPictures: a visitor's case page draws the waterfall of a
// redirect chain over https to another origin, the certificate's window and where
// it fails; in the browser's own layout each hop's segments fill its bar
// exactly; every picture is axe-clean at phone and desktop sizes in light
// and dark.
func TestBrowserPictures(t *testing.T) {
	b := newBrowser(t)
	ca := newPicturesCA(t)
	a := picturesApp(t, ca)
	now := time.Now()
	gateway := ca.site(t, now.AddDate(0, -2, 0), now.AddDate(0, 1, 0), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		w.Header().Set("Server", "nginx/1.24.0")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, nginx502Page)
	}))
	// The first site's certificate is the one the picture shows.
	chain := ca.site(t, now.AddDate(0, -2, 0), now.AddDate(0, 1, 0), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusMovedPermanently)
			return
		}
		http.Redirect(w, r, gateway+"/shop/", http.StatusFound)
	}))
	expired := ca.site(t, now.AddDate(-1, 0, 0), now.AddDate(0, 0, -30), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, c := range []struct {
		name, url string
		hops      int
		cert      string
	}{
		{"redirects", chain + "/old", 3, "valid"},
		{"expired", expired + "/", 1, "expired"},
	} {
		t.Run(c.name, func(t *testing.T) {
			token := a.createCase(c.url, "")
			a.waitProbed(token)
			tb := b.newTab(t, a.ts.URL)
			tb.open("/c/" + token)
			tb.do(chromedp.WaitReady(chromedp.CSS(`[data-testid="where-it-fails"]`)))
			// The evidence is one tap away: open it, as a person would.
			tb.eval(`document.querySelectorAll("details").forEach(d => d.open = true); ""`)
			if got := tb.eval(`String(document.querySelectorAll('[data-testid="hop-bar"]').length)`); got != fmt.Sprint(c.hops) {
				t.Errorf("%s hop bars, want %d", got, c.hops)
			}
			if got := tb.eval(`document.querySelector('[data-testid="cert-window"]').getAttribute("data-state")`); got != c.cert {
				t.Errorf("the certificate is drawn %s, want %s", got, c.cert)
			}
			tb.shoot(c.name, func(size string) {
				// In the browser's own layout, each hop's segments fill its
				// bar: their widths add up to the bar's, to half a pixel.
				bars, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]struct{ Bar, Segs float64 }](`Array.from(document.querySelectorAll('[data-testid="hop-bar"]')).map(g => {
					const svg = g.ownerSVGElement.getBoundingClientRect();
					const bar = Number(g.getAttribute("data-w")) / 600 * svg.width;
					const segs = Array.from(g.querySelectorAll("rect")).reduce((s, r) => s + r.getBoundingClientRect().width, 0);
					return {Bar: bar, Segs: segs}; })`))
				if err != nil {
					t.Fatal(err)
				}
				for i, x := range bars {
					if math.Abs(x.Bar-x.Segs) > 0.5 || x.Bar <= 0 {
						t.Errorf("%s: hop %d's segments are %.2f px wide in a %.2f px bar", size, i+1, x.Segs, x.Bar)
					}
				}
				// Every colour key is a small square beside its words, whatever
				// other rule shares its class name (.wait once made the
				// "waiting" key a padded block on a line of its own).
				if big := tb.eval(`Array.from(document.querySelectorAll(".swatch")).filter(s => { const r = s.getBoundingClientRect(); return r.width > 20 || r.height > 20; }).map(s => s.className).join(", ")`); big != "" {
					t.Errorf("%s: colour keys drawn larger than a small square: %s", size, big)
				}
				for _, sel := range []string{`[data-testid="waterfall"]`, `[data-testid="cert-window"]`, `[data-testid="where-it-fails"]`} {
					if v := tb.eval(`String(document.querySelector('` + sel + `').getBoundingClientRect().height > 0)`); v != "true" {
						t.Errorf("%s: %s is not shown", size, sel)
					}
				}
			})
			body := tb.bodyText()
			for _, want := range []string{"Where it fails", "gatecheck's server", "Issued by: Acme Test CA", "shop.acme.example"} {
				if !strings.Contains(body, want) {
					t.Errorf("the page does not show %q", want)
				}
			}
		})
	}
}
