package wizard

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/probes"
)

// Words is what a visitor reads about a finding: a headline in sentence
// case and one sentence that explains it, in plain language. Verdict codes,
// Go error strings and settings names never appear in them; the precise
// text stays in the report's evidence and on staff pages.
type Words struct {
	Headline string
	Explain  string
}

// said is what the words of one verdict are written from: the verdict
// (the report's own, or one of its findings), the report for its details,
// and the time the words are read at (for "30 days ago").
type said struct {
	v   probes.Verdict
	r   *probes.Report
	now time.Time
}

// verdictWords is the table from verdict to a visitor's words and to what
// a visitor who sees that problem would say of it ("not right?" offers
// those). Every code of probes' verdict table has a row: the guard test
// walks probes.Codes.
var verdictWords = map[probes.Code]struct {
	words func(s said) Words
	// claim is the problem in the words of someone who sees it, for
	// the answers offered to a person who disagrees with gatecheck.
	claim string
}{
	probes.Healthy: {claim: "The site works for me now", words: func(s said) Words {
		return Words{Headline: "The site works from gatecheck's server",
			Explain: fmt.Sprintf("gatecheck got a normal answer from %s, so the error you saw is probably between you and the site: "+
				"your browser, your network, or a rule that lets gatecheck in but not you.", s.host())}
	}},
	probes.DNSNXDomain: {claim: "My browser says it cannot find the site", words: func(s said) Words {
		return Words{Headline: "The site's name does not exist",
			Explain: fmt.Sprintf("gatecheck asked for %s and no such name is registered: the address may be mistyped, "+
				"or the domain's records were removed or have expired.", s.host())}
	}},
	probes.DNSFailure: {claim: "My browser says it cannot find the site", words: func(s said) Words {
		return s.withEDE(Words{Headline: "The site's name cannot be found right now",
			Explain: fmt.Sprintf("The name servers responsible for %s did not answer properly, so no browser can find the site's server; "+
				"this is often temporary.", s.host())})
	}},
	probes.DNSSECFailure: {claim: "The site cannot be found from some networks but can from others", words: func(s said) Words {
		return s.withEDE(Words{Headline: "The site's domain fails its DNS security check",
			Explain: fmt.Sprintf("Resolvers that check the seals on DNS answers refuse to give out the address of %s because its seals "+
				"do not match, so most visitors cannot reach the site; only whoever manages the domain can fix it.", s.host())})
	}},
	probes.DNSLameDelegation: {claim: "The domain was moved to new name servers and stopped working", words: func(s said) Words {
		if s.r != nil && s.r.DNS != nil && s.r.DNS.Authoritative != nil && !s.r.DNS.Authoritative.Lame && len(s.r.DNS.Addresses) > 0 {
			// Some of the servers fail, and the name is still found.
			return Words{Headline: "Some of the site's name servers do not answer",
				Explain: fmt.Sprintf("Some of the name servers the domain of %s is handed to refuse or do not answer for it, which slows down "+
					"or breaks finding the site for some visitors; whoever manages the domain should fix them or remove them.", s.host())}
		}
		return s.withEDE(Words{Headline: "The site's domain points to name servers that do not answer",
			Explain: fmt.Sprintf("No browser can look up %s because the name servers the domain is handed to refuse or do not answer for it; "+
				"only whoever manages the domain can fix this.", s.host())})
	}},
	probes.DNSMismatch: {claim: "Some people reach the site and others reach an old server or an error", words: func(s said) Words {
		w := Words{Headline: "Different DNS servers give different addresses for the site",
			Explain: fmt.Sprintf("gatecheck was given an old or different address for %s than the domain's own name servers give, "+
				"so some visitors reach the wrong place; this usually clears on its own once the old records expire.", s.host())}
		if s.main() && s.r.DNS != nil && s.r.DNS.NotFound {
			w.Explain = fmt.Sprintf("gatecheck was told %s does not exist, while the domain's own name servers know it: "+
				"a new name takes a while to reach everyone, and it usually clears on its own.", s.host())
		}
		return w
	}},
	probes.TCPRefused: {claim: "My browser says it cannot connect to the site", words: func(s said) Words {
		return Words{Headline: "The site's server is not taking connections",
			Explain: fmt.Sprintf("gatecheck found the address of %s, but nothing answered there: the web server, "+
				"or the gateway in front of it, is not running.", s.host())}
	}},
	probes.TCPTimeout: {claim: "My browser says it cannot connect to the site", words: func(s said) Words {
		return Words{Headline: "The site's server does not answer",
			Explain: fmt.Sprintf("gatecheck found the address of %s, but its attempts to connect went unanswered: the server may be "+
				"down or overloaded, or a firewall is dropping the traffic.", s.host())}
	}},
	probes.HTTPSUnavailable: {claim: "My browser cannot make a secure connection to the site", words: func(s said) Words {
		return Words{Headline: "The site's secure address (https) does not work",
			Explain: fmt.Sprintf("%s answers at its plain http:// address but not at https://, which browsers use by default: "+
				"the site's secure setup is missing or broken.", s.host())}
	}},
	probes.TLSExpired: {claim: "My browser warns that the site's certificate is not valid", words: func(s said) Words {
		return s.expired()
	}},
	probes.TLSHostnameMismatch: {claim: "My browser warns that the site's certificate is not valid", words: func(s said) Words {
		names := "no names at all"
		if c := s.leaf(); c != nil {
			if n := append(append([]string{}, c.DNSNames...), c.IPAddresses...); len(n) > 0 {
				names = list(n, 4)
			}
		}
		return Words{Headline: "The site's security certificate is for another name",
			Explain: fmt.Sprintf("The certificate %s presents covers %s, not %s, so browsers refuse it; "+
				"the site's owner must install one that covers this name.", s.host(), names, s.host())}
	}},
	probes.TLSUntrusted: {claim: "My browser warns that the site's certificate is not valid", words: func(s said) Words {
		w := Words{Headline: "The site's security certificate is not trusted"}
		issuer := "an authority browsers do not know"
		if c := s.leaf(); c != nil && c.Issuer != "" {
			issuer = issuerName(c.Issuer)
		}
		switch problem := s.tlsProblem(); problem {
		case "self_signed":
			w.Explain = fmt.Sprintf("The certificate %s presents was made by the server itself rather than issued by an authority "+
				"browsers trust, so browsers warn about it or refuse it.", s.host())
		case "incomplete_chain":
			w.Explain = fmt.Sprintf("%s does not send the certificates that link its own to a trusted authority (it names %s), "+
				"so many browsers refuse it.", s.host(), issuer)
		default:
			w.Explain = fmt.Sprintf("The certificate %s presents was issued by %s, which browsers do not trust, so they warn about it "+
				"or refuse it.", s.host(), issuer)
		}
		return w
	}},
	probes.TLSHandshakeFailed: {claim: "My browser cannot make a secure connection to the site", words: func(s said) Words {
		w := Words{Headline: "The site's secure connection fails",
			Explain: fmt.Sprintf("%s accepted the connection, but the secure (https) greeting that should follow broke off, so "+
				"browsers cannot open the page: the site's secure setup is broken.", s.host())}
		if t := s.r.TLS; t != nil && (t.Version == "TLS 1.0" || t.Version == "TLS 1.1" || t.Version == "SSL 3.0") {
			w.Explain = fmt.Sprintf("%s only offers an outdated kind of secure connection that browsers no longer accept.", s.host())
		}
		return w
	}},
	probes.AccessBlocked: {claim: "The site says I am not allowed in", words: func(s said) Words {
		w := Words{Headline: "The site refuses access"}
		if st := s.status(); st != "" {
			w.Explain = fmt.Sprintf("%s answered %s: the site, or a firewall in front of it, does not let gatecheck's server in, "+
				"and may be turning you away too.", s.host(), st)
		} else {
			w.Explain = fmt.Sprintf("%s accepted the connection and then cut it off before answering, the way firewalls and lists "+
				"of allowed addresses turn away addresses they do not know.", s.host())
		}
		return w
	}},
	probes.Gateway502: {claim: "The site shows an error page, such as 502 Bad Gateway", words: func(s said) Words {
		return Words{Headline: "The site's gateway" + s.product() + " could not get an answer from the server behind it",
			Explain: fmt.Sprintf("%s answered %s: the gateway in front of the site is running, but the application behind it is "+
				"down, crashing or overloaded; nothing on your side can fix it.", s.host(), or(s.status(), "with an error"))}
	}},
	probes.GatewayTimeout: {claim: "The site is very slow, or says it is busy", words: func(s said) Words {
		if st := s.status(); st != "" {
			return Words{Headline: "The site's gateway" + s.product() + " gave up waiting for the server behind it",
				Explain: fmt.Sprintf("%s answered %s: the application behind the gateway is too slow or stuck; "+
					"trying again in a few minutes often works.", s.host(), st)}
		}
		w := Words{Headline: "The site did not answer in time",
			Explain: fmt.Sprintf("%s accepted the connection but sent no answer in time: the application is too slow or stuck.", s.host())}
		if h := s.r.HTTP; h != nil && h.DurationMS >= 1000 {
			w.Explain = fmt.Sprintf("%s accepted the connection but sent no answer within %.0f seconds: the application is too slow or stuck.",
				s.host(), h.DurationMS/1000)
		}
		return w
	}},
	probes.ServiceUnavailable: {claim: "The site is very slow, or says it is busy", words: func(s said) Words {
		w := Words{Headline: "The site says it cannot serve anyone right now",
			Explain: fmt.Sprintf("%s answered %s: it is overloaded or down for maintenance", s.host(), or(s.status(), "that it is unavailable"))}
		if h := s.r.HTTP.Final(); h != nil && s.main() {
			if when := retryAfter(h.Header.Get("Retry-After"), s.now); when != "" {
				w.Explain += ", and asks to try again " + when
			}
		}
		w.Explain += "."
		return w
	}},
	probes.ServerError: {claim: "The site shows an error page, such as 502 Bad Gateway", words: func(s said) Words {
		return Words{Headline: "The site's application failed",
			Explain: fmt.Sprintf("%s answered %s: the site's own software broke while handling the request; "+
				"only its developers or administrators can fix it.", s.host(), or(s.status(), "with an error"))}
	}},
	probes.ProtocolError: {claim: "The site shows an error page, such as 502 Bad Gateway", words: func(s said) Words {
		return Words{Headline: "The site's server sent a garbled answer",
			Explain: fmt.Sprintf("%s answered with something that is not a proper web page, or hung up without answering: "+
				"the server is misconfigured or crashing.", s.host())}
	}},
	probes.RedirectLoop: {claim: "My browser says the site redirected too many times", words: func(s said) Words {
		w := Words{Headline: "The site sends browsers round in circles",
			Explain: fmt.Sprintf("%s kept sending gatecheck from one of its addresses to another without ever showing a page: "+
				"the site's redirect rules undo each other.", s.host())}
		if h := s.r.HTTP; h != nil && len(h.Hops) > 2 && s.main() {
			w.Explain = fmt.Sprintf("%s sent gatecheck from one of its addresses to another %d times without ever showing a page: "+
				"the site's redirect rules undo each other.", s.host(), len(h.Hops)-1)
		}
		return w
	}},
	probes.Intermittent: {claim: "It works sometimes and fails at other times", words: func(s said) Words {
		w := Words{Headline: "The site works only some of the time",
			Explain: "Some of gatecheck's tries failed and others worked: usually one of several servers behind the site is failing, or the site is overloaded."}
		if bad, n := s.tries(); n > 1 && bad > 0 {
			w.Headline += fmt.Sprintf(": %d of %d tries failed", bad, n)
			w.Explain = "The others worked: usually one of several servers behind the site is failing, or the site is overloaded."
			if got := s.failedWith(); got != "" {
				w.Explain = "The failed tries " + got + ", the others worked: usually one of several servers behind the site is failing, " +
					"or the site is overloaded."
			}
			if s.oneBackendFails() {
				w.Explain = "All the failed tries came from the same one of the servers behind the site, and the others worked: that server needs fixing."
			}
		}
		if good, bad, family := s.addressSplit(); good > 0 && bad > 0 {
			switch family {
			case "ipv6":
				w.Headline = "The site works only some of the time: it fails on newer internet connections"
				w.Explain = "gatecheck tried each of the site's addresses: the ones that newer internet connections (IPv6) use fail and the others work, " +
					"so whether the site opens depends on the visitor's connection."
			case "ipv4":
				w.Headline = "The site works only some of the time: it fails on older internet connections"
				w.Explain = "gatecheck tried each of the site's addresses: the ones that older internet connections (IPv4) use fail and the newer ones work, " +
					"so whether the site opens depends on the visitor's connection."
			default:
				w.Headline = fmt.Sprintf("The site works only some of the time: %d of its %d servers %s", bad, good+bad, map[bool]string{true: "fails", false: "fail"}[bad == 1])
				w.Explain = fmt.Sprintf("gatecheck tried each of the site's %d addresses: %d failed and the others worked, so the site fails for some people and not others.", good+bad, bad)
			}
		}
		return w
	}},
	probes.BlockedTarget: {claim: "It is an internal site of my organisation", words: func(s said) Words {
		return Words{Headline: "This address is not on the public internet",
			Explain: fmt.Sprintf("%s points to a private or internal address, so gatecheck does not check it; "+
				"if it is one of your organisation's internal sites, ask your IT team.", s.host())}
	}},
	probes.InvalidURL: {claim: "The address I typed was wrong", words: func(s said) Words {
		return Words{Headline: "That is not a web address gatecheck can check",
			Explain: "Start again with the full address of the page that showed the error, such as https://shop.example.com/."}
	}},
}

// VisitorWords says in plain words what the report found, as of now.
func VisitorWords(r *probes.Report, now time.Time) Words {
	if r == nil {
		return Words{Headline: "Checking the site", Explain: "gatecheck is checking the site from its server."}
	}
	return wordsOf(r.Verdict, r, now)
}

// wordsOf says one verdict of r (its own or a finding) in words.
func wordsOf(v probes.Verdict, r *probes.Report, now time.Time) Words {
	row, ok := verdictWords[v.Code]
	if !ok {
		// A code added to the probes after these words were written.
		return Words{Headline: "Something is wrong with the site",
			Explain: "gatecheck found a problem it cannot name in plain words yet; the details are under the evidence."}
	}
	s := said{v: v, r: r, now: now}
	w := row.words(s)
	if v.Code == probes.Healthy && s.main() {
		// A site that works may still fail on its other scheme, or on
		// some of its addresses: that explains an error others see.
		if also := s.also(); also != "" {
			w.Explain += " " + also
		}
	}
	return w
}

// Claim is a verdict in the words of someone who sees that problem, or ""
// for a code without words.
func Claim(c probes.Code) string { return verdictWords[c].claim }

// main reports whether the words are of the report's own verdict, whose
// details (status, hops, retry) the report's main request holds.
func (s said) main() bool { return s.r != nil && s.v.Code == s.r.Verdict.Code }

// host is the site's name: the host of the request's last hop when the
// verdict is the main request's (a redirect may have moved it), else the
// name typed.
func (s said) host() string {
	if s.main() {
		if h := s.r.HTTP.Final(); h != nil {
			if u, err := url.Parse(h.URL); err == nil && u.Hostname() != "" {
				return u.Hostname()
			}
		}
	}
	if s.r != nil && s.r.Host != "" {
		return s.r.Host
	}
	if s.r != nil {
		if h := hostOf(s.r.URL); h != "" {
			return h
		}
	}
	return "the site"
}

// status is the main answer's status line ("502 Bad Gateway"), or "".
func (s said) status() string {
	if !s.main() || !s.r.HTTP.Answered() {
		return ""
	}
	if t := http.StatusText(s.r.HTTP.Status); t != "" {
		return strconv.Itoa(s.r.HTTP.Status) + " " + t
	}
	return strconv.Itoa(s.r.HTTP.Status)
}

// product names the gateway in brackets, " (nginx)", when it is known.
func (s said) product() string {
	if s.r == nil || s.r.Gateway.Name == "" || !s.main() {
		return ""
	}
	return " (" + strings.TrimPrefix(strings.TrimPrefix(probes.GatewayLabel(s.r.Gateway.Name), "an "), "a ") + ")"
}

func (s said) leaf() *probes.Certificate {
	if s.r == nil || s.r.TLS == nil || len(s.r.TLS.Chain) == 0 {
		return nil
	}
	return &s.r.TLS.Chain[0]
}

func (s said) tlsProblem() string {
	if s.r == nil || s.r.TLS == nil {
		return ""
	}
	return s.r.TLS.Problem
}

// expired says which certificate of the chain is out of its dates, when
// it ended or begins, and how long ago or ahead that is.
func (s said) expired() Words {
	w := Words{Headline: "The site's security certificate has expired",
		Explain: "Browsers refuse the site's secure connection because its security certificate is out of date; only the site's owner can renew it."}
	if s.r == nil || s.r.TLS == nil {
		return w
	}
	at := s.r.StartedAt
	if at.IsZero() {
		at = s.now
	}
	for i, c := range s.r.TLS.Chain {
		whose := "The site's security certificate"
		if i > 0 {
			whose = "A certificate the site's own certificate depends on"
		}
		switch {
		case at.After(c.NotAfter):
			w.Headline = fmt.Sprintf("%s expired on %s, %s", whose, day(c.NotAfter, s.now), daysFrom(c.NotAfter, s.now))
			w.Explain = "Browsers refuse the site's secure connection until its owner renews the certificate; nothing on your side can fix it."
			return w
		case at.Before(c.NotBefore):
			w.Headline = fmt.Sprintf("%s is only valid from %s, %s", whose, day(c.NotBefore, s.now), daysFrom(c.NotBefore, s.now))
			w.Explain = "Browsers refuse it until then: it was installed too early, or a clock is wrong."
			return w
		}
	}
	return w
}

// edeWords are the Extended DNS Errors (RFC 8914) in a visitor's words:
// what the name server said, completing "The name server said that ...".
// Codes without words here (0, Other, and any newer) are left to the
// evidence, as is the server's own text, which is not for visitors.
var edeWords = map[uint16]string{
	1:  "the domain is signed in a way it cannot check",
	2:  "the domain is signed in a way it cannot check",
	3:  "its answer came from an old copy it kept",
	4:  "it changed the answer on purpose",
	5:  "it could not tell whether the domain's seals are genuine",
	6:  "the domain's seals are broken",
	7:  "the domain's seals have expired",
	8:  "the domain's seals are not valid yet",
	9:  "the key that seals the domain's answers is missing",
	10: "the domain's seals are missing",
	11: "the key that seals the domain's answers is not marked as one",
	12: "the proof that a name does not exist is missing",
	13: "it is repeating an error it met a short while ago",
	14: "it is not ready to answer yet",
	15: "its operator blocks this name",
	16: "it is required to block this name",
	17: "it filters this name out",
	18: "it does not answer gatecheck's server",
	19: "its answer that the name does not exist came from an old copy",
	20: "it is not responsible for this name",
	21: "it does not support what was asked",
	22: "none of the domain's name servers answered it",
	23: "it could not reach the domain's name servers",
	24: "the domain's name servers sent it invalid data",
}

// withEDE adds what the name server said, when it sent an Extended DNS
// Error these words know, as a second sentence.
func (s said) withEDE(w Words) Words {
	if !s.main() || s.r.DNS == nil {
		return w
	}
	for _, e := range s.r.DNS.EDE {
		if said, ok := edeWords[e.Code]; ok {
			who := "The name server gatecheck asked"
			if e.From != "resolver" {
				who = "One of the domain's name servers"
			}
			w.Explain += " " + who + " said that " + said + "."
			return w
		}
	}
	return w
}

// tries counts the main request and the repeated ones that were not cut
// off, and how many of them failed.
func (s said) tries() (bad, n int) {
	if !s.main() {
		return 0, 0
	}
	c := s.r.Counts
	n, bad = c.Total, c.Total-c.OK
	if h := s.r.HTTP; h != nil && (h.Status != 0 || h.Error != "") {
		n++
		if !h.Answered() || !answerOK(h.Status) {
			bad++
		}
	}
	return bad, n
}

// addressSplit counts the site's addresses that worked and that failed,
// and names the family of the failing ones when every failing address is
// of one family and every working one of the other.
func (s said) addressSplit() (good, bad int, family string) {
	if !s.main() {
		return 0, 0, ""
	}
	fams := map[bool]map[string]bool{true: {}, false: {}}
	for _, a := range s.r.Addresses {
		switch a.Verdict {
		case "":
			continue
		case probes.Healthy:
			good++
		default:
			bad++
		}
		fams[a.Verdict == probes.Healthy][a.Family] = true
	}
	if len(fams[false]) == 1 && len(fams[true]) == 1 {
		for f := range fams[false] {
			if !fams[true][f] {
				family = f
			}
		}
	}
	return good, bad, family
}

// oneBackendFails reports whether the failed answers all came from one of
// the backends the answers named, while others only worked.
func (s said) oneBackendFails() bool {
	failing, clean := 0, 0
	for _, b := range s.r.Backends {
		switch {
		case b.Failed > 0:
			failing++
		case b.OK > 0:
			clean++
		}
	}
	return failing == 1 && clean > 0
}

// answerOK is a status the samples count as working (probes.SampleCounts).
func answerOK(status int) bool {
	switch status {
	case 401, 403, 451, 429:
		return false
	}
	return status > 0 && status < 500
}

// failedWith says what the failing tries got, the main request's first:
// "got 502 Bad Gateway from nginx", "got no answer", or "" when the report
// does not say.
func (s said) failedWith() string {
	got := func(status int) string {
		st := strconv.Itoa(status)
		if t := http.StatusText(status); t != "" {
			st += " " + t
		}
		if g := s.r.Gateway.Name; g != "" {
			st += " from " + probes.GatewayLabel(g)
		}
		return "got " + st
	}
	if h := s.r.HTTP; h != nil {
		switch {
		case h.Answered() && !answerOK(h.Status):
			return got(h.Status)
		case !h.Answered() && h.Error != "":
			return "got no answer"
		}
	}
	for _, sm := range s.r.Samples {
		switch {
		case sm.CutOff:
		case sm.Status != 0 && !answerOK(sm.Status):
			return got(sm.Status)
		case sm.Status == 0 && sm.Error != "":
			return "got no answer"
		}
	}
	return ""
}

// also says, for a site that works, what else gatecheck found: the other
// scheme failing, or some of its addresses not taking connections.
func (s said) also() string {
	if s.r == nil || len(s.r.Findings) == 0 {
		return ""
	}
	f := s.r.Findings[0]
	if probes.LayerOf(f.Code) == probes.LayerTCP && f.Code != probes.BlockedTarget {
		ok, bad := 0, 0
		for _, c := range s.r.TCP {
			switch c.Outcome {
			case "connected":
				ok++
			case "blocked":
			default:
				bad++
			}
		}
		if ok > 0 && bad > 0 {
			return fmt.Sprintf("But %d of the site's %d addresses do not take connections, so it may fail for some people and not others.", bad, ok+bad)
		}
	}
	// The other scheme: the one a browser did not show for a name typed
	// without one, or https beside an http address.
	other := ""
	if s.r.Twin != nil {
		if u, err := url.Parse(s.r.Twin.URL); err == nil && u.Scheme != "" {
			other = u.Scheme
		}
	}
	switch {
	case probes.LayerOf(f.Code) == probes.LayerDNS:
		// The name, not the other scheme or an address.
		return "But gatecheck also found that " + lowerFirst(findingHeadline(f, s)) + "."
	case f.Code == probes.HTTPSUnavailable:
		return "But its secure https:// address does not work, so a browser that tries it first may show an error."
	case other != "" && probes.LayerOf(f.Code) != probes.LayerTLS:
		return "But its " + other + ":// address fails: " + lowerFirst(findingHeadline(f, s)) + "."
	case probes.LayerOf(f.Code) == probes.LayerTLS:
		return "But its secure https:// address has a problem: " + lowerFirst(findingHeadline(f, s)) + "."
	}
	return "But gatecheck also found that " + lowerFirst(findingHeadline(f, s)) + "."
}

// findingHeadline is a finding's headline (never the healthy row, whose
// words call this).
func findingHeadline(f probes.Verdict, s said) string {
	if row, ok := verdictWords[f.Code]; ok && f.Code != probes.Healthy {
		return row.words(said{v: f, r: s.r, now: s.now}).Headline
	}
	return "something else is wrong"
}

// issuerName is the readable part of a certificate issuer's name: its
// common name, else its organisation, else the whole.
func issuerName(dn string) string {
	var org string
	for _, part := range strings.Split(dn, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
		case k == "CN" && v != "":
			return v
		case k == "O" && org == "":
			org = v
		}
	}
	if org != "" {
		return org
	}
	return dn
}

// day is a date for people: "3 November", with the year when it is not
// now's.
func day(t, now time.Time) string {
	t = t.UTC()
	if t.Year() == now.UTC().Year() {
		return t.Format("2 January")
	}
	return t.Format("2 January 2006")
}

// daysFrom says how far t is from now in whole days: "30 days ago",
// "yesterday", "today", "tomorrow", "in 33 days".
func daysFrom(t, now time.Time) string {
	d := int(now.Sub(t).Hours() / 24)
	switch {
	case d == 0:
		return "today"
	case d == 1:
		return "yesterday"
	case d == -1:
		return "tomorrow"
	case d > 1:
		return strconv.Itoa(d) + " days ago"
	}
	return "in " + strconv.Itoa(-d) + " days"
}

// retryAfter says when a Retry-After header asks to come back: "in 2
// minutes", "after 15:04 UTC"; "" when it says nothing readable.
func retryAfter(v string, now time.Time) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		switch {
		case n < 90:
			return "in a minute or so"
		case n < 90*60:
			return fmt.Sprintf("in %d minutes", (n+30)/60)
		}
		return fmt.Sprintf("in about %d hours", (n+1800)/3600)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return "after " + t.UTC().Format("15:04") + " UTC"
	}
	return ""
}

// list joins names for a sentence: "a, b and c", or "a, b, c, d and 3
// more" past max.
func list(names []string, max int) string {
	more := 0
	if len(names) > max {
		names, more = names[:max], len(names)-max
	}
	if more > 0 {
		return strings.Join(names, ", ") + fmt.Sprintf(" and %d more", more)
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func lowerFirst(s string) string {
	if s == "" || strings.HasPrefix(s, "HTTP") {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// said is what a check read, in words for the person: the facts the
// engine's reason records, without verdict codes or settings names. It
// reads as what follows "found:".
func (t *Tree) said(field, value string, f Facts, s Settings) string {
	switch {
	case strings.HasPrefix(field, "setting."):
		if value == "yes" {
			return "this gatecheck is set up for a site that lets in only known IP addresses"
		}
		return "this gatecheck is not set up for a site that lets in only known IP addresses"
	case field == "requester_ip", field == "vantage.browser":
		_, reason, _ := t.value(field, f, s)
		return reason
	case field == "vantage.origin":
		return originSaid(f)
	case field == "vantage.agent":
		_, _, v := agentValue(f)
		if v == nil {
			return "no agent inside your network has checked the site"
		}
		return "gatecheck's agent " + strings.TrimPrefix(v.From, "agent:") + " inside your network found that " +
			lowerFirst(VisitorWords(v.Report, f.Now).Headline)
	}
	r := f.Report
	if r == nil {
		return "nothing yet: gatecheck has not checked the site"
	}
	switch field {
	case "verdict":
		return lowerFirst(VisitorWords(r, f.Now).Headline)
	case "findings":
		if len(r.Findings) == 0 {
			return "nothing else"
		}
		var hs []string
		for _, fd := range r.Findings {
			hs = append(hs, lowerFirst(wordsOf(fd, r, f.Now).Headline))
		}
		return "also that " + strings.Join(hs, "; and that ")
	case "gateway":
		if r.Gateway.Name == "" {
			return "gatecheck could not tell which kind of gateway answered"
		}
		if r.Gateway.Certainty == "high" {
			return "the answer came from " + probes.GatewayLabel(r.Gateway.Name)
		}
		return "the answer probably came from " + probes.GatewayLabel(r.Gateway.Name)
	}
	if name, ok := strings.CutPrefix(field, "check."); ok {
		what := map[string]string{"url": "reading the address", "dns": "finding the site's name", "guard": "making sure the address is public",
			"tcp": "connecting", "tls": "the secure connection", "http": "asking the site for the page", "twin": "trying the other of http and https",
			"samples": "repeating the request", "gateway": "naming the gateway"}[name]
		if what == "" {
			what = "one of the checks"
		}
		switch value {
		case "ok":
			return what + " worked"
		case "warn":
			return what + " had a problem"
		case "fail":
			return what + " failed"
		}
		return what + " did not run"
	}
	return "something gatecheck cannot say in words"
}

// FindingHeadline is a verdict's headline for a site gatecheck did not
// just probe (an incident's cases of host share the verdict code, and
// gateway names the product most of them name, "" when none): what
// staff read as an incident's title.
func FindingHeadline(host string, code probes.Code, gateway string) string {
	if code == probes.Healthy {
		return "Reported as failing, but the site works from gatecheck's server"
	}
	rep := &probes.Report{Host: host, Verdict: probes.Verdict{Code: code}, Gateway: probes.Gateway{Name: gateway}}
	return wordsOf(rep.Verdict, rep, time.Now()).Headline
}
