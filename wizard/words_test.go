package wizard

import (
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatecheck/gatecheck/probes"
)

// rawText are what a visitor must never read: Go's error strings and
// timestamps as the probes record them.
var rawText = regexp.MustCompile(`x509:|\btls: |dial tcp|i/o timeout|context deadline|\blookup |remote error|\bEOF\b|\d{4}-\d\d-\d\dT\d\d:\d\d`)

// jargon finds what a visitor's words must not hold: a verdict code (from
// probes' verdict table), an error string, a settings name (the fields of
// Settings, and the tree's fields with a dot or an underscore in them).
func jargon(s string) []string {
	var out []string
	for _, c := range probes.Codes {
		if regexp.MustCompile(`\b` + regexp.QuoteMeta(string(c)) + `\b`).MatchString(s) {
			out = append(out, string(c))
		}
	}
	out = append(out, rawText.FindAllString(s, -1)...)
	st := reflect.TypeFor[Settings]()
	for i := range st.NumField() {
		if f := st.Field(i).Name; strings.Contains(s, f) {
			out = append(out, f)
		}
	}
	for _, f := range Fields() {
		if strings.ContainsAny(f, "._") && strings.Contains(s, f) {
			out = append(out, f)
		}
	}
	return out
}

// checkWords holds words to the table's promise: a headline in sentence
// case, one sentence of explanation, no jargon.
func checkWords(t *testing.T, what string, w Words) {
	t.Helper()
	if r, _ := utf8.DecodeRuneInString(w.Headline); !unicode.IsUpper(r) {
		t.Errorf("%s: the headline %q does not start with a capital letter", what, w.Headline)
	}
	if strings.HasSuffix(w.Headline, ".") || strings.Contains(w.Headline, "\n") {
		t.Errorf("%s: the headline %q is not one line without a full stop", what, w.Headline)
	}
	if !strings.HasSuffix(w.Explain, ".") || strings.Count(strings.TrimSuffix(w.Explain, "."), ". ") > 1 {
		t.Errorf("%s: the explanation %q is not one (or two short) sentences", what, w.Explain)
	}
	if j := jargon(w.Headline + " " + w.Explain); len(j) > 0 {
		t.Errorf("%s: %q / %q holds %q", what, w.Headline, w.Explain, j)
	}
}

// richReport is a report with every kind of detail a verdict's words may
// read, all of it pointing at code.
func richReport(code probes.Code) *probes.Report {
	started := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	hop := probes.Hop{URL: "https://shop.example.com/", Status: 502, Header: http.Header{"Retry-After": {"120"}}}
	return &probes.Report{
		URL: "https://shop.example.com/", Host: "shop.example.com", StartedAt: started,
		Verdict:  probes.Verdict{Code: code, Layer: probes.LayerOf(code), Summary: "x509: certificate has expired or is not yet valid: current time 2026-12-03T14:00:00Z is after 2026-11-03T14:00:00Z"},
		Findings: []probes.Verdict{{Code: probes.TLSExpired, Summary: "dial tcp 192.0.2.1:443: i/o timeout"}},
		Gateway:  probes.Gateway{Name: "nginx", Certainty: "high"},
		HTTP:     &probes.HTTPResult{URL: hop.URL, FinalURL: hop.URL, Hops: []probes.Hop{hop, hop, hop}, Status: 502, DurationMS: 4000},
		TLS: &probes.TLSResult{Problem: "expired", Version: "TLS 1.3", Chain: []probes.Certificate{{Subject: "CN=shop.example.com",
			Issuer: "CN=R11,O=Let's Encrypt,C=US", DNSNames: []string{"shop.example.com"}, NotBefore: started.AddDate(0, -4, 0), NotAfter: started.AddDate(0, -1, 0)}}},
		TCP:     []probes.TCPResult{{Address: "192.0.2.1:443", Outcome: "connected"}, {Address: "192.0.2.2:443", Outcome: "refused"}},
		Samples: []probes.Sample{{Status: 502}, {Status: 200}, {Error: "EOF"}},
		Counts:  probes.SampleCounts{Total: 3, OK: 1, Gateway: 1, Errors: 1},
	}
}

// TestEveryVerdictHasWords is the guard of the words table: every code of
// probes' verdict table has its row and its claim, and its words, from a
// bare report and from one full of raw details, hold to the table's
// promise. A verdict added to the probes without words fails here.
func TestEveryVerdictHasWords(t *testing.T) {
	now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	headlines := map[string]probes.Code{}
	for _, code := range probes.Codes {
		row, ok := verdictWords[code]
		if !ok || row.words == nil {
			t.Errorf("%s has no row in the words table", code)
			continue
		}
		if c := Claim(code); c == "" || jargon(c) != nil {
			t.Errorf("%s: claim %q", code, c)
		}
		bare := &probes.Report{URL: "https://shop.example/", Host: "shop.example",
			Verdict: probes.Verdict{Code: code, Summary: probes.Explanation(code), Explanation: probes.Explanation(code)}}
		w := VisitorWords(bare, now)
		checkWords(t, string(code)+" (bare)", w)
		if other, ok := headlines[w.Headline]; ok {
			t.Errorf("%s and %s share the headline %q", code, other, w.Headline)
		}
		headlines[w.Headline] = code
		checkWords(t, string(code)+" (rich)", VisitorWords(richReport(code), now))
		for _, f := range []string{"verdict", "findings", "gateway"} {
			if s := Default().said(f, string(code), Facts{Report: richReport(code), Now: now}, Settings{}); jargon(s) != nil || s == "" {
				t.Errorf("%s: %s found %q", code, f, s)
			}
		}
	}
	checkWords(t, "no report", VisitorWords(nil, now))
	checkWords(t, "a code without words", VisitorWords(&probes.Report{Verdict: probes.Verdict{Code: "quic_failed"}}, now))
}

// TestWordsFromDetails: the words carry the report's details, in words:
// the certificate's dates counted from now, the names it covers, who
// issued it, the gateway product, the tries that failed, when to retry.
func TestWordsFromDetails(t *testing.T) {
	now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	cert := func(problem string, certs ...probes.Certificate) *probes.Report {
		r := richReport(probes.TLSExpired)
		r.TLS.Problem, r.TLS.Chain = problem, certs
		switch problem {
		case "hostname_mismatch":
			r.Verdict.Code = probes.TLSHostnameMismatch
		case "expired", "not_yet_valid":
		default:
			r.Verdict.Code = probes.TLSUntrusted
		}
		return r
	}
	valid := probes.Certificate{NotBefore: now.AddDate(0, -1, 0), NotAfter: now.AddDate(0, 1, 0)}
	with := func(c probes.Certificate, f func(*probes.Certificate)) probes.Certificate { f(&c); return c }
	answered := func(code probes.Code, status int, gateway string, hdr ...string) *probes.Report {
		r := richReport(code)
		r.HTTP.Status, r.HTTP.Hops = status, r.HTTP.Hops[:1]
		r.HTTP.Hops[0].Status, r.HTTP.Hops[0].Header = status, http.Header{}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.HTTP.Hops[0].Header.Set(hdr[i], hdr[i+1])
		}
		r.Gateway.Name = gateway
		return r
	}
	for _, tt := range []struct {
		name     string
		r        *probes.Report
		headline string
		explain  []string
	}{
		{"expired this year", cert("expired", with(valid, func(c *probes.Certificate) { c.NotAfter = time.Date(2026, 11, 3, 14, 25, 0, 0, time.UTC) })),
			"The site's security certificate expired on 3 November, 30 days ago", []string{"Browsers refuse the site's secure connection until its owner renews"}},
		{"expired last year", cert("expired", with(valid, func(c *probes.Certificate) { c.NotAfter = time.Date(2025, 11, 3, 0, 0, 0, 0, time.UTC) })),
			"The site's security certificate expired on 3 November 2025, 395 days ago", nil},
		{"expired yesterday", cert("expired", with(valid, func(c *probes.Certificate) { c.NotAfter = now.Add(-30 * time.Hour) })),
			"The site's security certificate expired on 2 December, yesterday", nil},
		{"an intermediate expired", cert("expired", valid, with(valid, func(c *probes.Certificate) { c.NotAfter = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC) })),
			"A certificate the site's own certificate depends on expired on 23 November, 10 days ago", nil},
		{"not valid yet", cert("not_yet_valid", with(valid, func(c *probes.Certificate) { c.NotBefore = time.Date(2027, 1, 5, 16, 0, 0, 0, time.UTC) })),
			"The site's security certificate is only valid from 5 January 2027, in 33 days", []string{"installed too early, or a clock is wrong"}},
		{"for other names", cert("hostname_mismatch", with(valid, func(c *probes.Certificate) { c.DNSNames = []string{"a.example", "b.example"} })),
			"The site's security certificate is for another name", []string{"covers a.example and b.example, not shop.example.com"}},
		{"for many names", cert("hostname_mismatch", with(valid, func(c *probes.Certificate) {
			c.DNSNames, c.IPAddresses = []string{"a.example", "b.example", "c.example", "d.example", "e.example"}, []string{"192.0.2.9"}
		})), "The site's security certificate is for another name", []string{"covers a.example, b.example, c.example, d.example and 2 more, not shop.example.com"}},
		{"for no name", cert("hostname_mismatch", valid), "The site's security certificate is for another name", []string{"covers no names at all"}},
		{"an unknown issuer", cert("untrusted", with(valid, func(c *probes.Certificate) { c.Issuer = "CN=Evil Root CA,O=Evil Corp,C=US" })),
			"The site's security certificate is not trusted", []string{"issued by Evil Root CA, which browsers do not trust"}},
		{"an issuer without a common name", cert("untrusted", with(valid, func(c *probes.Certificate) { c.Issuer = "O=Acme Co" })),
			"The site's security certificate is not trusted", []string{"issued by Acme Co, which"}},
		{"self-signed", cert("self_signed", valid), "The site's security certificate is not trusted", []string{"made by the server itself"}},
		{"an incomplete chain", cert("incomplete_chain", with(valid, func(c *probes.Certificate) { c.Issuer = "CN=R11,O=Let's Encrypt" })),
			"The site's security certificate is not trusted", []string{"does not send the certificates that link its own to a trusted authority (it names R11)"}},
		{"nginx's 502", answered(probes.Gateway502, 502, "nginx"),
			"The site's gateway (nginx) could not get an answer from the server behind it", []string{"shop.example.com answered 502 Bad Gateway"}},
		{"an AWS load balancer's 502", answered(probes.Gateway502, 502, "aws-elb"),
			"The site's gateway (AWS load balancer) could not get an answer from the server behind it", nil},
		{"an unknown gateway's 502", answered(probes.Gateway502, 502, ""), "The site's gateway could not get an answer from the server behind it", nil},
		{"Cloudflare's 521", answered(probes.Gateway502, 521, "cloudflare"),
			"The site's gateway (Cloudflare) could not get an answer from the server behind it", []string{"answered 521:"}},
		{"a 504", answered(probes.GatewayTimeout, 504, "haproxy"),
			"The site's gateway (HAProxy) gave up waiting for the server behind it", []string{"answered 504 Gateway Timeout"}},
		{"no answer in time", func() *probes.Report {
			r := answered(probes.GatewayTimeout, 0, "")
			r.HTTP.Error = "context deadline exceeded"
			return r
		}(), "The site did not answer in time", []string{"no answer within 4 seconds"}},
		{"a 503 with a retry", answered(probes.ServiceUnavailable, 503, "", "Retry-After", "120"),
			"The site says it cannot serve anyone right now", []string{"answered 503 Service Unavailable", "asks to try again in 2 minutes."}},
		{"a 503 with a retry date", answered(probes.ServiceUnavailable, 503, "", "Retry-After", now.Add(2*time.Hour).Format(http.TimeFormat)),
			"The site says it cannot serve anyone right now", []string{"asks to try again after 17:00 UTC."}},
		{"a 403", answered(probes.AccessBlocked, 403, "iis"), "The site refuses access", []string{"answered 403 Forbidden"}},
		{"a reset", func() *probes.Report {
			r := answered(probes.AccessBlocked, 0, "")
			r.HTTP.Error = "connection reset by the server"
			return r
		}(), "The site refuses access", []string{"cut it off before answering"}},
		{"three of six", func() *probes.Report {
			r := answered(probes.Intermittent, 200, "nginx")
			r.Samples = []probes.Sample{{Status: 502}, {Status: 200}, {Status: 502}, {Status: 200}, {Status: 502}}
			r.Counts = probes.SampleCounts{Total: 5, OK: 2, Gateway: 3}
			return r
		}(), "The site works only some of the time: 3 of 6 tries failed", []string{"The failed tries got 502 Bad Gateway from nginx, the others worked"}},
		{"the main request failed", func() *probes.Report {
			r := answered(probes.Intermittent, 504, "haproxy")
			r.Samples = []probes.Sample{{Status: 200}}
			r.Counts = probes.SampleCounts{Total: 1, OK: 1}
			return r
		}(), "The site works only some of the time: 1 of 2 tries failed", []string{"The failed tries got 504 Gateway Timeout from HAProxy, the others worked"}},
		{"no detail of the failures", func() *probes.Report {
			r := answered(probes.Intermittent, 200, "")
			r.Samples = []probes.Sample{{CutOff: true}}
			r.Counts = probes.SampleCounts{Total: 3, OK: 1, Other: 2}
			return r
		}(), "The site works only some of the time: 2 of 4 tries failed", []string{"The others worked: usually one of several servers"}},
		{"one of two addresses", func() *probes.Report {
			r := answered(probes.Intermittent, 200, "nginx")
			r.Addresses = []probes.AddressResult{{Address: "192.0.2.1", Family: "ipv4", Verdict: probes.Healthy, Status: 200},
				{Address: "192.0.2.2", Family: "ipv4", Verdict: probes.Gateway502, Status: 502}}
			return r
		}(), "The site works only some of the time: 1 of its 2 servers fails", []string{"gatecheck tried each of the site's 2 addresses: 1 failed"}},
		{"IPv6 fails", func() *probes.Report {
			r := answered(probes.Intermittent, 200, "nginx")
			r.Addresses = []probes.AddressResult{{Address: "192.0.2.1", Family: "ipv4", Verdict: probes.Healthy, Status: 200},
				{Address: "2001:db8::1", Family: "ipv6", Verdict: probes.Gateway502, Status: 502}}
			return r
		}(), "The site works only some of the time: it fails on newer internet connections", []string{"newer internet connections (IPv6) use fail"}},
		{"IPv4 fails", func() *probes.Report {
			r := answered(probes.Intermittent, 200, "nginx")
			r.Addresses = []probes.AddressResult{{Address: "192.0.2.1", Family: "ipv4", Verdict: probes.TCPRefused},
				{Address: "2001:db8::1", Family: "ipv6", Verdict: probes.Healthy, Status: 200}}
			return r
		}(), "The site works only some of the time: it fails on older internet connections", []string{"older internet connections (IPv4) use fail"}},
		{"one backend fails", func() *probes.Report {
			r := answered(probes.Intermittent, 200, "nginx")
			r.Samples = []probes.Sample{{Status: 502}, {Status: 200}, {Status: 502}}
			r.Counts = probes.SampleCounts{Total: 3, OK: 1, Gateway: 2}
			r.Backends = []probes.Backend{{ID: "10.0.0.5:8080", Source: "X-Served-By", Failed: 2}, {ID: "10.0.0.6:8080", Source: "X-Served-By", OK: 2}}
			return r
		}(), "The site works only some of the time: 2 of 4 tries failed", []string{"All the failed tries came from the same one of the servers behind the site"}},
		{"a loop", func() *probes.Report {
			r := richReport(probes.RedirectLoop)
			r.HTTP.Status, r.HTTP.Hops = 0, make([]probes.Hop, 11)
			r.HTTP.Error = "stopped after 10 redirects"
			return r
		}(), "The site sends browsers round in circles", []string{"another 10 times without ever showing a page"}},
		{"works, but not on https", func() *probes.Report {
			r := answered(probes.Healthy, 200, "")
			r.TLS.Problem = "expired"
			return r
		}(), "The site works from gatecheck's server", []string{"But its secure https:// address has a problem: the site's security certificate expired on 3 November, 30 days ago."}},
		{"works, on some addresses", func() *probes.Report {
			r := answered(probes.Healthy, 200, "")
			r.Findings = []probes.Verdict{{Code: probes.TCPRefused}}
			return r
		}(), "The site works from gatecheck's server", []string{"But 1 of the site's 2 addresses do not take connections"}},
		{"works on https, http refuses", func() *probes.Report {
			r := answered(probes.Healthy, 200, "")
			r.NoScheme, r.TCP = true, nil
			r.Twin = &probes.HTTPResult{URL: "http://shop.example.com/", FinalURL: "http://shop.example.com/", Status: 403}
			r.Findings = []probes.Verdict{{Code: probes.AccessBlocked, Summary: "http://shop.example.com/ (port 80) answers 403 Forbidden"}}
			return r
		}(), "The site works from gatecheck's server", []string{"But its http:// address fails: the site refuses access."}},
		{"works on http, no https", func() *probes.Report {
			r := answered(probes.Healthy, 200, "")
			r.TCP = nil
			r.Twin = &probes.HTTPResult{URL: "https://shop.example.com/", Error: "connection refused"}
			r.Findings = []probes.Verdict{{Code: probes.HTTPSUnavailable, Summary: "http answers but https does not: connection refused"}}
			return r
		}(), "The site works from gatecheck's server", []string{"But its secure https:// address does not work, so a browser that tries it first may show an error."}},
		{"an obsolete protocol", func() *probes.Report {
			r := richReport(probes.TLSHandshakeFailed)
			r.TLS.Version = "TLS 1.0"
			return r
		}(), "The site's secure connection fails", []string{"only offers an outdated kind of secure connection"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := VisitorWords(tt.r, now)
			checkWords(t, tt.name, w)
			if w.Headline != tt.headline {
				t.Errorf("headline %q, want %q", w.Headline, tt.headline)
			}
			for _, want := range tt.explain {
				if !strings.Contains(w.Explain, want) {
					t.Errorf("explanation %q lacks %q", w.Explain, want)
				}
			}
		})
	}
}

// TestVisitorRendersWordsTechniciansTheProbes: the steps a visitor reads
// quote the finding in words; the hand-off keeps the probes' own summary
// for the technicians it goes to, with the words beside it.
func TestVisitorRendersWordsTechniciansTheProbes(t *testing.T) {
	r := richReport(probes.Gateway502)
	r.Verdict.Summary = "shop.example.com answered 502 Bad Gateway from nginx: the gateway is up but got no valid answer from the server behind it"
	f := Facts{Report: r, RequesterIP: "203.0.113.7", URL: r.URL, Now: now}
	st, err := Default().StepAt(settings(), f, "role-gateway")
	if err != nil {
		t.Fatal(err)
	}
	if want := "the site's gateway (nginx) could not get an answer from the server behind it"; !strings.Contains(st.Text, want) || strings.Contains(st.Text, r.Verdict.Summary) {
		t.Errorf("the visitor's step says %q, want %q and not the probes' summary", st.Text, want)
	}
	esc, err := Default().StepAt(settings(), f, "escalate-host")
	if err != nil {
		t.Fatal(err)
	}
	e := esc.Escalation
	for _, want := range []string{r.Verdict.Summary + ". Please check", "Diagnosis: gateway_502 (http layer): " + r.Verdict.Summary,
		"In plain words: The site's gateway (nginx) could not get an answer from the server behind it. shop.example.com answered 502 Bad Gateway"} {
		if !strings.Contains(e.Body, want) {
			t.Errorf("the hand-off lacks %q:\n%s", want, e.Body)
		}
	}
	// A check's finding: the reason keeps the code for the API and the
	// command line, the words are for the person.
	next, err := Default().Next(settings(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := next.Path[0]
	if !strings.Contains(p.Reason, "gateway_502") || p.Words != "the site's gateway (nginx) could not get an answer from the server behind it" {
		t.Errorf("the probe's entry: reason %q, words %q", p.Reason, p.Words)
	}
	allow := settings()
	for _, v := range []bool{true, false} {
		allow.HostedAllowlist = v
		if s := Default().said("setting.hosted_allowlist", map[bool]string{true: "yes", false: "no"}[v], f, allow); jargon(s) != nil || !strings.Contains(s, "known IP addresses") {
			t.Errorf("the allowlist setting %v in words: %q", v, s)
		}
	}
}

// TestNotRightOffersWhatMakesSense: disagreeing with the verdict offers,
// for every verdict, the finding first and marked, then a few answers in
// the person's words: the site working, or working some of the time, and
// the other problems of the same layer; never the whole list, never an
// address that is not one.
func TestNotRightOffersWhatMakesSense(t *testing.T) {
	tr := Default()
	probe := tr.Node(tr.Start)
	labels := map[string]string{}
	for _, c := range probe.Choices {
		labels[c.ID] = c.Label
	}
	for _, code := range probes.Codes {
		f := facts(code)
		st, err := tr.NotRight(settings(), f, tr.Start)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		seen := map[string]bool{}
		for i, c := range st.Choices {
			ids = append(ids, c.ID)
			if seen[c.Label] {
				t.Errorf("%s: two answers say %q", code, c.Label)
			}
			seen[c.Label] = true
			if c.Label == labels[c.ID] {
				t.Errorf("%s: %s keeps the tree's label %q", code, c.ID, c.Label)
			}
			if (i == 0) != c.Suggested {
				t.Errorf("%s: answer %d (%s) suggested=%v: the finding must come first, and only it", code, i, c.ID, c.Suggested)
			}
			if jargon(c.Label) != nil {
				t.Errorf("%s: %q", code, c.Label)
			}
		}
		found := probe.pick(string(code), f)
		if len(ids) == 0 || ids[0] != found {
			t.Errorf("%s: the finding (%s) is not first: %v", code, found, ids)
		}
		for _, c := range st.Choices {
			if want := Claim(probes.Code(probe.Choice(c.ID).When[0])); c.Label != want {
				t.Errorf("%s: %s is labelled %q, want %q", code, c.ID, c.Label, want)
			}
		}
		if want := "found that " + lowerFirst(VisitorWords(f.Report, f.Now).Headline) + "."; !strings.Contains(st.Text, want) || st.FoundWords != "" {
			t.Errorf("%s: the step says %q (and %q), want %q once", code, st.Text, st.FoundWords, want)
		}
		if len(ids) > 6 || len(ids) >= len(probe.Choices) {
			t.Errorf("%s: %d answers of %d: %v", code, len(ids), len(probe.Choices), ids)
		}
		for _, want := range []string{"works", "intermittent"} {
			if !slices.Contains(ids, want) {
				t.Errorf("%s: no %q among %v", code, want, ids)
			}
		}
		if code != probes.InvalidURL && slices.Contains(ids, "bad-url") {
			t.Errorf("%s: offers an address that is not one: %v", code, ids)
		}
		for _, c := range probe.Choices {
			same := slices.ContainsFunc(c.When, func(w string) bool { return probes.LayerOf(probes.Code(w)) == probes.LayerOf(code) })
			if same && probes.LayerOf(code) != probes.LayerInput && !slices.Contains(ids, c.ID) {
				t.Errorf("%s: %s, of the same layer, is not offered: %v", code, c.ID, ids)
			}
		}
		if !strings.Contains(st.Text, "choose what you see") {
			t.Errorf("%s: the step does not say what to do: %q", code, st.Text)
		}
	}
	// Other checks keep their answers.
	st, err := tr.NotRight(settings(), facts(probes.Healthy), "browser-works")
	if err != nil || len(st.Choices) != len(tr.Node("browser-works").Choices) {
		t.Errorf("browser-works: %v %+v", err, st)
	}
}

// TestFindingHeadline: every verdict code reads as words for an incident's
// title (no code, no jargon, sentence case, a product named when given),
// and none panics without a probe's details.
func TestFindingHeadline(t *testing.T) {
	for _, code := range probes.Codes {
		h := FindingHeadline("shop.example", code, "nginx")
		if h == "" || jargon(h) != nil || strings.ToUpper(h[:1]) != h[:1] {
			t.Errorf("%s: %q (%v)", code, h, jargon(h))
		}
	}
	if h := FindingHeadline("shop.example", probes.Gateway502, "nginx"); !strings.Contains(h, "nginx") {
		t.Errorf("the gateway's product is not named: %q", h)
	}
}

// TestEDEInWords: an Extended DNS Error the resolver sent is said in the
// visitor's words, in plain English; its code and the server's own text
// stay in the evidence.
func TestEDEInWords(t *testing.T) {
	now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		code probes.Code
		ede  probes.ExtendedError
		want string
	}{
		{probes.DNSSECFailure, probes.ExtendedError{Code: 9, Name: "DNSKEY Missing", Text: "<script>no key</script>", From: "resolver"},
			"The name server gatecheck asked said that the key that seals the domain's answers is missing."},
		{probes.DNSFailure, probes.ExtendedError{Code: 18, Name: "Prohibited", Text: "not for you", From: "resolver"},
			"The name server gatecheck asked said that it does not answer gatecheck's server."},
		{probes.DNSLameDelegation, probes.ExtendedError{Code: 20, Name: "Not Authoritative", From: "ns1.shop.example"},
			"One of the domain's name servers said that it is not responsible for this name."},
	} {
		r := &probes.Report{URL: "https://shop.example/", Host: "shop.example",
			Verdict: probes.Verdict{Code: tt.code, Summary: "x"}, DNS: &probes.DNSResult{Name: "shop.example", EDE: []probes.ExtendedError{tt.ede}}}
		w := VisitorWords(r, now)
		checkWords(t, string(tt.code)+" with an extended error", w)
		if !strings.HasSuffix(w.Explain, tt.want) {
			t.Errorf("%s: %q does not end %q", tt.code, w.Explain, tt.want)
		}
		if strings.Contains(w.Explain, tt.ede.Name) || (tt.ede.Text != "" && strings.Contains(w.Explain, tt.ede.Text)) {
			t.Errorf("%s: %q holds the server's words", tt.code, w.Explain)
		}
	}
	// A site that works, whose name's servers disagree with the resolver:
	// the finding is about the name, not about the other scheme.
	r := &probes.Report{URL: "http://shop.example/", Host: "shop.example", Verdict: probes.Verdict{Code: probes.Healthy},
		Twin:     &probes.HTTPResult{URL: "https://shop.example/", Status: 200},
		Findings: []probes.Verdict{{Code: probes.DNSMismatch, Layer: probes.LayerDNS, Summary: "x"}}}
	if w := VisitorWords(r, now); !strings.Contains(w.Explain, "also found that different DNS servers give different addresses") {
		t.Errorf("healthy with a DNS finding: %q", w.Explain)
	}
	// One of two name servers failing, the name still found: not the
	// words of a domain nobody can look up.
	r.Findings = []probes.Verdict{{Code: probes.DNSLameDelegation, Layer: probes.LayerDNS, Summary: "x"}}
	r.DNS = &probes.DNSResult{Name: "shop.example", Addresses: []string{"192.0.2.1"}, Authoritative: &probes.Authoritative{Zone: "shop.example",
		Servers: []probes.AuthServer{{Name: "ns1.shop.example", Outcome: "answered"}, {Name: "ns2.shop.example", Outcome: "refused"}}}}
	if w := VisitorWords(r, now); !strings.Contains(w.Explain, "also found that some of the site's name servers do not answer") {
		t.Errorf("healthy with one server failing: %q", w.Explain)
	}
}

// TestHandOffSaysWhatTheNameServersSaid: the hand-off of a DNS problem
// quotes each of the name's servers, asked directly, for the team that
// runs the domain.
func TestHandOffSaysWhatTheNameServersSaid(t *testing.T) {
	r := &probes.Report{URL: "https://shop.example/", Host: "shop.example", StartedAt: now,
		Verdict: probes.Verdict{Code: probes.DNSLameDelegation, Layer: probes.LayerDNS, Summary: "none answers"},
		DNS: &probes.DNSResult{Name: "shop.example", Authoritative: &probes.Authoritative{Zone: "shop.example", Lame: true, Servers: []probes.AuthServer{
			{Name: "ns1.shop.example", Outcome: "refused"}, {Name: "ns2.shop.example", Outcome: "not_authoritative"}}}}}
	esc, err := Default().StepAt(settings(), Facts{Report: r, URL: r.URL, RequesterIP: "203.0.113.7", Now: now}, "escalate-host")
	if err != nil {
		t.Fatal(err)
	}
	want := "The name's servers (shop.example), asked directly: ns1.shop.example refused; ns2.shop.example not authoritative"
	if !strings.Contains(esc.Escalation.Body, want) {
		t.Errorf("the hand-off lacks %q:\n%s", want, esc.Escalation.Body)
	}
}
