package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"html"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// Issue 17, 1: a visitor reads words, not an engineer's log. Every page a
// walk shows (step pages, the pages that change an earlier answer, the end)
// is read for the text a person sees, and must hold no verdict code, no Go
// error string or timestamp, no settings name, and a headline in sentence
// case.

var (
	headBlock     = regexp.MustCompile(`(?s)<head>.*?</head>|<script\b.*?</script>|<style\b.*?</style>`)
	closedDetails = regexp.MustCompile(`(?s)<details>.*?</details>|<details\s[^>]*>.*?</details>`)
	summaryArea   = regexp.MustCompile(`(?s)<textarea[^>]*class="summary"[^>]*>.*?</textarea>`)
	headlineTag   = regexp.MustCompile(`(?s)<[a-z0-9]+[^>]*data-testid="headline"[^>]*>(.*?)</`)
	// rawError are Go's error strings and timestamps as the probes
	// record them.
	rawError = regexp.MustCompile(`x509:|\btls: |dial tcp|i/o timeout|context deadline|\blookup |remote error|\bEOF\b|\d{4}-\d\d-\d\dT\d\d:\d\d`)
	// technical is what the probes' own summaries say, which a visitor's
	// page must not quote (the evidence, closed, may).
	technical = regexp.MustCompile(`the probe's verdict|operator's settings|allowlist: (yes|no)|Failed at |the gateway is up but got no valid answer`)
)

// visibleText is what a person sees of a page without opening anything:
// no head or scripts, no closed <details>, not the hand-off summary for
// the technicians.
func visibleText(page string) string {
	page = headBlock.ReplaceAllString(page, " ")
	page = closedDetails.ReplaceAllStringFunc(page, func(d string) string {
		if open := regexp.MustCompile(`^<details[^>]*\sopen\b`); open.MatchString(d) {
			return d
		}
		return " "
	})
	page = summaryArea.ReplaceAllString(page, " ")
	return strings.Join(strings.Fields(html.UnescapeString(tags.ReplaceAllString(page, " "))), " ")
}

// jargonIn lists what a visitor must not read in text: verdict codes (from
// probes' verdict table), error strings, the probes' technical phrases,
// and settings names (the fields of wizard.Settings, and the tree's
// fields with a dot or an underscore).
func jargonIn(text string) []string {
	var out []string
	for _, c := range probes.Codes {
		if regexp.MustCompile(`\b` + regexp.QuoteMeta(string(c)) + `\b`).MatchString(text) {
			out = append(out, string(c))
		}
	}
	out = append(out, rawError.FindAllString(text, -1)...)
	out = append(out, technical.FindAllString(text, -1)...)
	st := reflect.TypeFor[wizard.Settings]()
	for i := range st.NumField() {
		if f := st.Field(i).Name; regexp.MustCompile(`\b` + f + `\b`).MatchString(text) {
			out = append(out, f)
		}
	}
	for _, f := range wizard.Fields() {
		if strings.ContainsAny(f, "._") && strings.Contains(text, f) {
			out = append(out, f)
		}
	}
	return out
}

// plainWalk takes every answer of every step of one case, depth first, as
// truthWalk does, and reads every page it meets.
type plainWalk struct {
	t        *testing.T
	a        *testApp
	code     probes.Code
	token    string
	explored map[string]bool
	revisits map[string]bool
	pages    int
	problems []string
}

func (w *plainWalk) read(where, path string, page string) {
	w.pages++
	text := visibleText(page)
	if j := jargonIn(text); len(j) > 0 {
		w.problems = append(w.problems, fmt.Sprintf("%s: %s %s shows %q: %.600s", w.code, where, path, j, text))
	}
	if m := headlineTag.FindStringSubmatch(page); m != nil {
		h := strings.TrimSpace(html.UnescapeString(tags.ReplaceAllString(m[1], "")))
		if r, _ := utf8.DecodeRuneInString(h); !unicode.IsUpper(r) {
			w.problems = append(w.problems, fmt.Sprintf("%s: %s %s: the headline %q does not start with a capital letter", w.code, where, path, h))
		}
	} else if strings.Contains(page, `aria-labelledby="step-title"`) && !strings.Contains(where, "change") {
		w.problems = append(w.problems, fmt.Sprintf("%s: %s %s has no headline", w.code, where, path))
	}
}

func (w *plainWalk) explore(path []string) {
	if len(w.problems) > 10 || len(path) > maxTruthDepth {
		return
	}
	resp, page := w.a.do("GET", "/c/"+w.token, nil)
	for deadline := time.Now().Add(10 * time.Second); strings.Contains(page, `data-testid="confirming"`) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		resp, page = w.a.do("GET", "/c/"+w.token, nil)
	}
	at := strings.Join(path, " → ")
	if resp.StatusCode != http.StatusOK {
		w.problems = append(w.problems, fmt.Sprintf("%s: after %s: %d", w.code, at, resp.StatusCode))
		return
	}
	w.read("the step after", at, page)
	m := stepSection.FindStringSubmatch(page)
	if m == nil {
		w.problems = append(w.problems, fmt.Sprintf("%s: after %s: not a step page", w.code, at))
		return
	}
	section := m[1]
	// Every earlier step offers to change its answer ("Not right?" on a
	// check): read each of those pages once per case.
	if p := pathSection.FindStringSubmatch(page); p != nil {
		for _, n := range pathNode.FindAllStringSubmatch(p[1], -1) {
			if w.revisits[n[1]] {
				continue
			}
			w.revisits[n[1]] = true
			resp, rp := w.a.do("GET", "/c/"+w.token+"/at/"+n[1], nil)
			if resp.StatusCode != http.StatusOK {
				w.problems = append(w.problems, fmt.Sprintf("%s: the change page of %s: %d", w.code, n[1], resp.StatusCode))
				continue
			}
			w.read("the change page of", n[1], rp)
		}
	}
	node := ""
	if m := stepNode.FindStringSubmatch(section); m != nil {
		node = m[1]
	}
	checked := strings.Contains(section, `data-testid="confirmation"`)
	key := node
	if checked {
		key += " after a check"
	}
	if node == "" || w.explored[key] {
		return // the end, or a step explored already
	}
	w.explored[key] = true
	for _, c := range stepChoice.FindAllStringSubmatch(section, -1) {
		if checked && c[1] == wizard.ChoiceFixed {
			continue
		}
		resp, body := w.a.do("POST", "/c/"+w.token+"/answer", map[string][]string{"node": {node}, "choice": {c[1]}})
		if resp.StatusCode != http.StatusSeeOther {
			w.problems = append(w.problems, fmt.Sprintf("%s: answering %s=%s: %d %.200s", w.code, node, c[1], resp.StatusCode, body))
			continue
		}
		w.explore(append(path[:len(path):len(path)], node+"="+c[1]))
	}
}

// rawReport is a stored report for a verdict loopback cannot give, whose
// summary is the kind of raw text the probes record: it must not reach the
// visitor's pages.
func rawReport(t *testing.T, a *testApp, code probes.Code) string {
	ctx := context.Background()
	c := &wizard.Case{URL: "https://shop.example/", Host: "shop.example", RequesterIP: "203.0.113.7", TreeVersion: a.srv.cfg.Tree.ID()}
	if err := a.db.CreateCase(ctx, c, a.srv.cfg.TreeSource); err != nil {
		t.Fatal(err)
	}
	run, err := a.db.QueueProbe(ctx, c.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	raw := "Get \"https://shop.example/\": dial tcp: lookup shop.example: i/o timeout; x509: certificate has expired or is not yet valid: " +
		"current time 2026-10-04T14:25:17Z is before 2026-12-02T14:25:17Z; remote error: tls: handshake failure; EOF; " + string(code)
	rep := &probes.Report{URL: c.URL, Host: c.Host, StartedAt: time.Now(),
		Verdict: probes.Verdict{Code: code, Layer: probes.LayerOf(code), Summary: raw, Explanation: probes.Explanation(code)},
		HTTP:    &probes.HTTPResult{URL: c.URL, Error: raw, ErrorKind: probes.KindOther},
		Checks:  []probes.Check{{Kind: probes.ProbeHTTP, Name: "https", Status: probes.StatusFail, Detail: raw}}}
	if err := a.db.FinishProbe(ctx, run.ID, rep); err != nil {
		t.Fatal(err)
	}
	return c.Token
}

// TestVisitorPagesSpeakPlainly walks every verdict, from its loopback
// site or a stored report full of raw error text, through every answer of
// the real handlers, and reads every page for what a visitor must not see.
func TestVisitorPagesSpeakPlainly(t *testing.T) {
	var pages, zoo int
	walk := func(a *testApp, name string, code probes.Code) {
		t.Run(name, func(t *testing.T) {
			w := &plainWalk{t: t, a: a, code: code, explored: map[string]bool{}, revisits: map[string]bool{}}
			if site := zooSite(t, code); site != "" {
				w.token = truthCaseFor(t, a, code, personas[0], site)
				zoo++
			} else {
				w.token = rawReport(t, a, code)
			}
			w.explore(nil)
			for _, p := range w.problems {
				t.Error(p)
			}
			if w.pages == 0 || len(w.explored) == 0 && !slices.Contains([]probes.Code{probes.BlockedTarget, probes.InvalidURL}, code) {
				t.Errorf("%d pages read, %d steps explored", w.pages, len(w.explored))
			}
			pages += w.pages
		})
	}
	a := truthApp(t)
	for _, code := range probes.Codes {
		walk(a, string(code), code)
	}
	// The operator's allowlist setting, told in words where walks read it.
	allow := truthApp(t, func(c *Config) { c.Settings.HostedAllowlist = true })
	for _, code := range []probes.Code{probes.AccessBlocked, probes.Healthy} {
		walk(allow, "allowlist/"+string(code), code)
	}
	t.Logf("%d verdicts and 2 with the allowlist set: %d walks from loopback sites, the others from stored reports; %d pages read", len(probes.Codes), zoo, pages)
}

// TestVisibleTextGuard: the reader of pages sees what a person sees, and
// finds what it must: a page with the probes' raw text outside the
// evidence fails, the same text in the closed evidence or the summary
// for technicians does not.
func TestVisibleTextGuard(t *testing.T) {
	raw := "x509: certificate has expired (2026-10-04T14:25:17Z); dial tcp 10.0.0.1:443: i/o timeout; gateway_502; setting.hosted_allowlist"
	hidden := `<html><head><title>x509: in the title</title></head><body><h1>Fine</h1><details><summary>Evidence</summary>` + raw +
		`</details><textarea id="summary" class="summary" readonly>` + raw + `</textarea></body></html>`
	if j := jargonIn(visibleText(hidden)); len(j) > 0 {
		t.Errorf("hidden text read as visible: %q", j)
	}
	for _, shown := range []string{`<p>` + raw + `</p>`, `<details open><summary>Evidence</summary>` + raw + `</details>`} {
		j := jargonIn(visibleText(`<body>` + shown + `</body>`))
		for _, want := range []string{"x509:", "2026-10-04T14:25", "dial tcp", "i/o timeout", "gateway_502", "setting.hosted_allowlist"} {
			if !slices.Contains(j, want) {
				t.Errorf("%q not found in %s (found %q)", want, shown, j)
			}
		}
	}
	if j := jargonIn("The settings say HostedAllowlist is on"); !slices.Contains(j, "HostedAllowlist") {
		t.Errorf("a settings name not found: %q", j)
	}
}

// certSite serves https on 127.0.0.1 with a self-made certificate made
// from tmpl.
func certSite(t *testing.T, tmpl *x509.Certificate) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(17)
	tmpl.KeyUsage, tmpl.ExtKeyUsage = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// TestCertificateInWords: real certificates on loopback, expired, not
// valid yet and made for other names, are told in words with their dates
// counted from today and the names they cover; the raw x509 text stays in
// the evidence, and the staff page keeps it.
func TestCertificateInWords(t *testing.T) {
	a := newApp(t)
	now := time.Now().UTC()
	day := func(d time.Time) string {
		if d.Year() == now.Year() {
			return d.UTC().Format("2 January")
		}
		return d.UTC().Format("2 January 2006")
	}
	expiredAt := now.AddDate(0, 0, -30).Add(-time.Hour)
	startsAt := now.AddDate(0, 0, 12).Add(time.Hour)
	for _, tt := range []struct {
		name     string
		cert     *x509.Certificate
		code     probes.Code
		headline string
		explain  string
		server   string
	}{
		{"expired", &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore: now.AddDate(-1, 0, 0), NotAfter: expiredAt}, probes.TLSExpired,
			"The site's security certificate expired on " + day(expiredAt) + ", 30 days ago", "until its owner renews the certificate",
			"No secure connection: the certificate has expired"},
		{"not valid yet", &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore: startsAt, NotAfter: now.AddDate(1, 0, 0)}, probes.TLSExpired,
			"The site's security certificate is only valid from " + day(startsAt) + ", in 12 days", "installed too early, or a clock is wrong",
			"No secure connection: the certificate is not valid yet"},
		{"for other names", &x509.Certificate{Subject: pkix.Name{CommonName: "shop.example"}, DNSNames: []string{"shop.example", "www.shop.example"},
			NotBefore: now.AddDate(0, -1, 0), NotAfter: now.AddDate(0, 1, 0)}, probes.TLSHostnameMismatch,
			"The site's security certificate is for another name", "covers shop.example and www.shop.example, not 127.0.0.1",
			"No secure connection: the certificate is for another name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			token := a.createCase(certSite(t, tt.cert), "")
			a.waitProbed(token)
			rep := a.apiCase(token).Probe.Report
			if rep == nil || rep.Verdict.Code != tt.code {
				t.Fatalf("the site gives %+v, want %s", rep, tt.code)
			}
			_, page := a.do("GET", "/c/"+token, nil)
			text := visibleText(page)
			m := headlineTag.FindStringSubmatch(page)
			if m == nil || html.UnescapeString(m[1]) != tt.headline {
				t.Errorf("headline %q, want %q", m, tt.headline)
			}
			for _, want := range []string{tt.explain, tt.server} {
				if !strings.Contains(text, want) {
					t.Errorf("the page lacks %q: %.800s", want, text)
				}
			}
			if j := jargonIn(text); len(j) > 0 {
				t.Errorf("the visitor reads %q: %.800s", j, text)
			}
			// The precise text is there for those who open the evidence,
			// and on the staff page.
			if !strings.Contains(page, rep.TLS.Issues[0]) {
				t.Errorf("the evidence lost the probe's words %q", rep.TLS.Issues[0])
			}
		})
	}
}

// TestStaffKeepThePreciseText: the staff's case page shows the verdict's
// code and the probes' own summary, as before.
func TestStaffKeepThePreciseText(t *testing.T) {
	a := newApp(t)
	token := a.createCase(brokenGateway(t).URL+"/", "")
	a.waitProbed(token)
	rep := a.apiCase(token).Probe.Report
	a.addStaff("ann", wizard.RoleAgent)
	a.signIn("ann", staffPassword)
	_, page := a.do("GET", "/staff/c/"+token, nil)
	// The probe evidence's line, and the timeline's.
	for _, want := range []string{"<strong>" + string(probes.Gateway502) + "</strong>: " + html.EscapeString(rep.Verdict.Summary),
		"Probes finished: " + string(probes.Gateway502) + ": " + html.EscapeString(rep.Verdict.Summary)} {
		if !strings.Contains(page, want) {
			t.Errorf("the staff page lacks %q", want)
		}
	}
}

// TestNotRightPage: "Not right?" at the automatic finding offers a few
// answers in the person's words, the finding first and marked; answering
// another records the disagreement, said in words.
func TestNotRightPage(t *testing.T) {
	a := newApp(t)
	token := a.createCase(brokenGateway(t).URL+"/", "")
	a.waitProbed(token)
	_, page := a.do("GET", "/c/"+token, nil)
	if !strings.Contains(page, `/c/`+token+`/at/probe"`) {
		t.Fatalf("no Not right? link: %s", excerpt(page, "path-title"))
	}
	_, page = a.do("GET", "/c/"+token+"/at/probe", nil)
	buttons := regexp.MustCompile(`<button type="submit" name="choice" value="([^"]+)" class="([^"]*)">([^<]*)</button>`).FindAllStringSubmatch(page, -1)
	tree := a.srv.cfg.Tree.Node("probe")
	if len(buttons) < 3 || len(buttons) >= len(tree.Choices) {
		t.Fatalf("%d answers of %d: %q", len(buttons), len(tree.Choices), buttons)
	}
	if b := buttons[0]; b[1] != "gateway" || b[2] != "suggested" {
		t.Errorf("the first answer is %q, want the finding, marked", b)
	}
	if want := "found that the site&#39;s gateway (nginx) could not get an answer from the server behind it."; !strings.Contains(page, want) {
		t.Errorf("the page does not say what was found: %s", excerpt(page, "step-title"))
	}
	var ids []string
	for _, b := range buttons {
		ids = append(ids, b[1])
		if html.UnescapeString(b[3]) != wizard.Claim(probes.Code(tree.Choice(b[1]).When[0])) {
			t.Errorf("%s is labelled %q, not in the person's words", b[1], b[3])
		}
	}
	if !slices.Contains(ids, "works") || slices.Contains(ids, "internal") || slices.Contains(ids, "bad-url") || slices.Contains(ids, "dns") {
		t.Errorf("answers %v: want the site working, and nothing of another layer", ids)
	}
	if j := jargonIn(visibleText(page)); len(j) > 0 {
		t.Errorf("the page shows %q", j)
	}
	page = a.answer(token, "probe", "works")
	if !strings.Contains(html.UnescapeString(page), "(you disagreed; gatecheck found: the site's gateway (nginx) could not get an answer from the server behind it)") {
		t.Errorf("the disagreement is not said in words: %s", excerpt(page, "path-title"))
	}
}
