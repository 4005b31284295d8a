package probes

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// verdicts is the table of verdict codes, in the order of the README: each
// code, the layer it concerns, and what it means for the person who saw
// the error and who can act on it. Codes, LayerOf and Explanation read it.
var verdicts = []struct {
	code        Code
	layer       Layer
	explanation string
}{
	{Healthy, LayerHTTP, "From where gatecheck runs, the site answers normally. If you still see 502 Bad Gateway, the problem is " +
		"probably between you and the site: a stale page in your browser's cache, your own network, a proxy or VPN, " +
		"or an allowlist that lets gatecheck in but not you. Refreshing, clearing the cache or trying another network usually tells which."},
	{DNSNXDomain, LayerDNS, "The site's name does not exist in DNS, so no browser can find the server. Either the address is mistyped, " +
		"or the domain's DNS records were removed, changed or have expired. Only whoever manages the domain can fix the records; " +
		"after a change it can take a few hours to reach everyone."},
	{DNSFailure, LayerDNS, "The name could not be looked up: the DNS servers did not answer, or answered with an error. This is usually " +
		"a problem with the domain's name servers or with the resolver used, not with the web server itself. It is often temporary."},
	{DNSSECFailure, LayerDNS, "The site's name exists, but its DNSSEC signatures (the seals that prove DNS answers are genuine) do not check out, " +
		"so every resolver that checks them refuses to give out the site's address, and most visitors cannot reach it. Usually the domain's " +
		"signing keys were changed or its signatures expired without the registrar's record (DS) being updated. Only whoever manages the domain can fix it."},
	{DNSLameDelegation, LayerDNS, "The domain is handed to name servers that do not answer for it: they are gone, refuse, or were never set up " +
		"for this domain (a \"lame delegation\"). No resolver can look the name up then. Whoever manages the domain must point it at working " +
		"name servers at the registrar, or set the zone up on the servers it names."},
	{DNSMismatch, LayerDNS, "The DNS answer gatecheck got differs from what the domain's own name servers say: a recent change has not " +
		"reached every resolver yet, or a resolver still holds an old record. The site fails at the old address. It usually clears on its own " +
		"once the old record expires (minutes to a day); whoever manages the domain can check the records and how long they are kept (TTL)."},
	{TCPRefused, LayerTCP, "The server's address was found, but nothing accepted the connection on the site's port: the web server, " +
		"or the gateway in front of it, is not running or not listening there. The site's operators need to start it or fix its configuration."},
	{TCPTimeout, LayerTCP, "The server's address was found, but connections to it went unanswered. The server may be down or overloaded, " +
		"or a firewall is silently dropping traffic. The site's hosting team can tell which."},
	{HTTPSUnavailable, LayerTLS, "The site answers over plain http, but not over https. This is what happens when the https binding " +
		"(the part of the web server configuration that listens for secure connections) is missing or broken, for example after a " +
		"certificate change. The site's administrators need to restore the https binding with a valid certificate."},
	{TLSExpired, LayerTLS, "The site's security certificate has expired (or is not valid yet), so browsers refuse the secure connection and " +
		"gateways in front of the site may report a 502. The site's owner must renew the certificate and install it on the server."},
	{TLSHostnameMismatch, LayerTLS, "The server presents a security certificate for a different name than the one you typed. Usually the https " +
		"binding points at the wrong certificate, or the site was moved without a certificate for its name. The site's owner must install a certificate that covers this name."},
	{TLSUntrusted, LayerTLS, "The server's security certificate is not issued by an authority browsers trust: it is self-signed, or the server " +
		"does not send the intermediate certificates that link it to a trusted authority. The site's owner must install a certificate from a trusted authority, with its full chain."},
	{TLSHandshakeFailed, LayerTLS, "The server accepted the connection but the secure (TLS) handshake failed: the server may not be set up for " +
		"https on this address, may only offer obsolete protocols, or may have stopped half-way. The site's administrators need to check the https configuration."},
	{AccessBlocked, LayerHTTP, "The server refused access: it answered that you are not allowed in, or cut the connection in a way that " +
		"firewalls and IP allowlists do. If the site is restricted to known IP addresses, the address you connect from has to be added; " +
		"a firewall or CDN rule may also be blocking you by mistake. The site's hosting team can check."},
	{Gateway502, LayerHTTP, "A gateway (a proxy, load balancer or CDN in front of the site) is running, but the application server behind it " +
		"sent no valid answer: it is down, crashing, overloaded, or misconfigured. Nothing on your side can fix it; it often clears when the " +
		"application recovers. The site's operators should check the application and the gateway's logs."},
	{GatewayTimeout, LayerHTTP, "The gateway in front of the site waited for the application behind it and gave up: the application is too slow, " +
		"overloaded or stuck. Waiting a few minutes and retrying often works; if it persists, the site's operators need to look at the application's load and logs."},
	{ServiceUnavailable, LayerHTTP, "The site is up but says it cannot serve requests right now: it is overloaded, in maintenance, or has no healthy " +
		"servers behind its load balancer. This is usually temporary; retry in a few minutes, and check the service's status page."},
	{ServerError, LayerHTTP, "The site's application itself failed while handling the request. This is a bug or a broken configuration " +
		"on the server side (a recent deployment, a plugin, a database change). Only the site's developers or administrators can fix it."},
	{ProtocolError, LayerHTTP, "The server answered with something that is not valid HTTP, or hung up without answering. This is the classic cause " +
		"of a 502: a gateway gets a garbled answer from the server behind it. The server is misconfigured or crashing."},
	{RedirectLoop, LayerHTTP, "The site keeps redirecting to itself (or through too many steps), so a browser never arrives at a page. This is a " +
		"configuration error on the site, often between http and https rules or between a CDN and the server. Clearing cookies sometimes helps; otherwise the site's owner must fix it."},
	{Intermittent, LayerHTTP, "The site sometimes works and sometimes fails: some requests succeed and others get an error. This points to one " +
		"unhealthy server among several, an overloaded application, or a flaky network path. Refreshing may get you through; the site's operators should check each server behind the load balancer."},
	{BlockedTarget, LayerTCP, "gatecheck does not probe this address: it is not on the public internet (a private, loopback, link-local or otherwise " +
		"reserved address). If it is an internal site, ask your IT team; an operator can allow internal ranges explicitly."},
	{InvalidURL, LayerInput, "That is not an address gatecheck can check. Enter the full address of the page that showed the error, such as https://shop.example.com/."},
}

// Codes lists every verdict code, in the order of the README.
var Codes = func() []Code {
	out := make([]Code, len(verdicts))
	for i, v := range verdicts {
		out[i] = v.code
	}
	return out
}()

// Explanation returns the plain-language explanation of a code.
func Explanation(c Code) string {
	for _, v := range verdicts {
		if v.code == c {
			return v.explanation
		}
	}
	return ""
}

// LayerOf returns the layer a code belongs to.
func LayerOf(c Code) Layer {
	for _, v := range verdicts {
		if v.code == c {
			return v.layer
		}
	}
	return LayerHTTP
}

func newVerdict(c Code, l Layer, summary string) Verdict {
	return Verdict{Code: c, Layer: l, Summary: clean(summary), Explanation: Explanation(c)}
}

// statusVerdicts are the HTTP statuses that stand for a verdict on their
// own: refusals, overload, and what gateways and CDNs answer when what is
// behind them fails (Cloudflare's 52x among them). Other 5xx are
// ServerError; any other status is an answer (Healthy).
var statusVerdicts = map[int]Code{
	401: AccessBlocked, 403: AccessBlocked, 451: AccessBlocked,
	429: ServiceUnavailable, 503: ServiceUnavailable,
	502: Gateway502, 520: Gateway502, 521: Gateway502, 523: Gateway502, 525: Gateway502, 526: Gateway502, 527: Gateway502, 530: Gateway502,
	504: GatewayTimeout, 522: GatewayTimeout, 524: GatewayTimeout,
}

// statusCode is the verdict an HTTP status stands for on its own.
func statusCode(status int) Code {
	if c, ok := statusVerdicts[status]; ok {
		return c
	}
	switch {
	case status == 0:
		return ""
	case status >= 500:
		return ServerError
	}
	return Healthy
}

// responseCode refines statusCode with what the page says: some products
// (Envoy, Varnish, lighttpd, Pound, Heroku's router; see the gateways
// table) answer 503 for what other gateways call 502.
func responseCode(status int, g Gateway, body string) Code {
	c := statusCode(status)
	if status == 503 && upstream503(g, body) {
		return Gateway502
	}
	return c
}

func statusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// fingerprintReport fingerprints the response that carries the problem: the
// main answer, or a failing sample's when the main answer was fine.
func fingerprintReport(r *Report) Gateway {
	if h := r.HTTP.Final(); h != nil && h.Status != 0 && statusCode(h.Status) != Healthy {
		return fingerprint(h.Status, h.Header, h.Body)
	}
	for _, s := range r.Samples {
		if s.hop != nil && s.hop.Status != 0 && statusCode(s.hop.Status) != Healthy {
			return fingerprint(s.hop.Status, s.hop.Header, s.hop.Body)
		}
	}
	if h := r.HTTP.Final(); h != nil && h.Status != 0 {
		return fingerprint(h.Status, h.Header, h.Body)
	}
	return Gateway{}
}

// decide turns the evidence into one primary verdict and secondary findings.
func decide(r *Report, t *Target) (Verdict, []Verdict) {
	findings := []Verdict{}
	primary := mainVerdict(r, t)

	// Samples: a mix of answers and failures is its own diagnosis.
	good, bad := 0, 0
	observe := func(c Code) {
		switch c {
		case Healthy:
			good++
		case "":
		default:
			bad++
		}
	}
	observe(primary.Code)
	for _, s := range r.Samples {
		if s.CutOff {
			continue
		}
		if s.Status != 0 {
			h := s.hop
			observe(responseCode(s.Status, fingerprint(s.Status, h.Header, h.Body), h.Body))
		} else {
			observe(ProtocolError)
		}
	}
	if good > 0 && bad > 0 {
		what := primary
		if primary.Code == Healthy {
			what = sampleFailure(r)
		}
		findings = append(findings, what)
		primary = newVerdict(Intermittent, LayerHTTP, fmt.Sprintf("%d of %d requests failed and %d succeeded: the site fails intermittently", bad, good+bad, good))
	}

	// Some addresses failing while others work explains intermittent
	// failures in browsers that pick the bad one.
	var tcpBad []string
	tcpCode, tried := TCPRefused, 0
	for _, c := range r.TCP {
		switch c.Outcome {
		case "blocked":
			continue
		case "connected":
		default:
			tcpBad = append(tcpBad, c.Address+" ("+c.Outcome+")")
			if c.Outcome != "refused" {
				tcpCode = TCPTimeout
			}
		}
		tried++
	}
	if len(tcpBad) > 0 && len(tcpBad) < tried {
		findings = append(findings, newVerdict(tcpCode, LayerTCP, fmt.Sprintf("%d of %d addresses do not accept connections: %s", len(tcpBad), tried, strings.Join(tcpBad, ", "))))
	}

	// The other scheme. For a name typed without a scheme, it is what a
	// browser did not show: reported whatever it is, but never as the
	// missing https binding when http itself fails.
	if r.NoScheme && r.Twin != nil && primary.Code != HTTPSUnavailable {
		if f, ok := otherScheme(r, t); ok && !hasCode(findings, f.Code) {
			findings = append(findings, f)
		}
	} else if t.URL.Scheme == "http" && r.Twin != nil && !r.Twin.Answered() && primary.Code != HTTPSUnavailable {
		// http answering while https fails is the missing https binding,
		// even when the URL typed was http.
		if c := tlsCode(r.TLS); c != "" && c != TLSHandshakeFailed {
			findings = append(findings, newVerdict(c, LayerTLS, "https: "+strings.Join(r.TLS.Issues, "; ")))
		} else if r.HTTP.Answered() && statusCode(r.HTTP.Status) == Healthy {
			findings = append(findings, newVerdict(HTTPSUnavailable, LayerTLS, "http answers but https does not: "+r.Twin.Error))
		}
	}
	// Certificate problems not already the verdict.
	if c := tlsCode(r.TLS); c != "" && c != primary.Code && t.URL.Scheme == "https" && !hasCode(findings, c) && c != TLSHandshakeFailed {
		findings = append(findings, newVerdict(c, LayerTLS, strings.Join(r.TLS.Issues, "; ")))
	}
	return primary, findings
}

// otherScheme describes, for a name typed without a scheme, the scheme a
// browser did not show, when it fails: https that does not connect (the
// browser fell back to http), or http that fails while https works. ok is
// false when the other scheme works too.
func otherScheme(r *Report, t *Target) (v Verdict, ok bool) {
	o := r.Twin
	other := "https"
	if t.URL.Scheme == "https" {
		other = "http"
	}
	port := ""
	if u, err := url.Parse(o.URL); err == nil {
		port = u.Port()
		if port == "" {
			port = strconv.Itoa(defaultPortOf(other))
		}
	}
	if o.Answered() {
		c := responseCode(o.Status, fingerprint(o.Status, o.Final().Header, o.Final().Body), o.Final().Body)
		if c == Healthy {
			return Verdict{}, false
		}
		shown := "which fails"
		if r.HTTP.Answered() {
			shown = "which answered " + statusLine(r.HTTP.Status)
		}
		return newVerdict(c, LayerOf(c), fmt.Sprintf("%s (port %s) answers %s; a browser given the name without a scheme uses %s, %s",
			o.FinalURL, port, statusLine(o.Status), t.URL.Scheme, shown)), true
	}
	c := kindCode(o.ErrorKind, o.Phase)
	why := o.Error
	switch {
	case other == "https" && (c == TCPRefused || c == TCPTimeout):
		why = fmt.Sprintf("port %s does not accept connections, so the site has no https binding there (%s)", port, o.Error)
	case other == "https" && LayerOf(c) == LayerTLS:
		if tc := tlsCode(r.TLS); tc != "" && tc != TLSHandshakeFailed {
			c, why = tc, strings.Join(r.TLS.Issues, "; ")
		}
	}
	if t.URL.Scheme == "http" {
		// The browser tried https first and fell back.
		return newVerdict(c, LayerOf(c), fmt.Sprintf("https: %s; a browser falls back to http, which answered %s", why, statusLine(r.HTTP.Status))), true
	}
	if !r.HTTP.Answered() {
		return newVerdict(c, LayerOf(c), fmt.Sprintf("%s fails too: %s", other, why)), true
	}
	return newVerdict(c, LayerOf(c), fmt.Sprintf("%s: %s; a browser given the name without a scheme uses https, which answered %s", other, why, statusLine(r.HTTP.Status))), true
}

func hasCode(vs []Verdict, c Code) bool {
	for _, v := range vs {
		if v.Code == c {
			return true
		}
	}
	return false
}

// sampleFailure describes the first failing sample as a verdict.
func sampleFailure(r *Report) Verdict {
	for _, s := range r.Samples {
		if s.Status != 0 && statusCode(s.Status) != Healthy {
			c := responseCode(s.Status, r.Gateway, s.hop.Body)
			return newVerdict(c, LayerHTTP, "some requests got "+statusLine(s.Status)+gatewayBy(r.Gateway))
		}
		if s.Status == 0 && s.Error != "" && !s.CutOff {
			c := kindCode(s.kind, s.phase)
			return newVerdict(c, LayerOf(c), "some requests failed: "+s.Error)
		}
	}
	return newVerdict(ServerError, LayerHTTP, "some requests failed")
}

func gatewayBy(g Gateway) string {
	if g.Name == "" {
		return ""
	}
	return " from " + GatewayLabel(g.Name)
}

// tlsCode is the verdict the TLS probe's finding stands for, or "".
func tlsCode(t *TLSResult) Code {
	if t == nil {
		return ""
	}
	switch t.Problem {
	case "expired", "not_yet_valid":
		return TLSExpired
	case "hostname_mismatch":
		return TLSHostnameMismatch
	case "self_signed", "incomplete_chain", "untrusted":
		return TLSUntrusted
	case "handshake_failed":
		return TLSHandshakeFailed
	}
	return ""
}

// kindCode is the verdict for a request that got no answer.
func kindCode(k Kind, phase string) Code {
	switch k {
	case KindBlocked:
		return BlockedTarget
	case KindNXDomain:
		return DNSNXDomain
	case KindDNS:
		return DNSFailure
	case KindRefused:
		return TCPRefused
	case KindUnreachable:
		return TCPTimeout
	case KindTimeout:
		switch phase {
		case "dns":
			return DNSFailure
		case "connect":
			return TCPTimeout
		case "tls":
			return TLSHandshakeFailed
		}
		return GatewayTimeout
	case KindCertExpired:
		return TLSExpired
	case KindCertHostname:
		return TLSHostnameMismatch
	case KindCertUnknown:
		return TLSUntrusted
	case KindTLS:
		return TLSHandshakeFailed
	case KindReset:
		if phase == "tls" {
			return TLSHandshakeFailed
		}
		return AccessBlocked
	case KindEOF:
		if phase == "tls" {
			return TLSHandshakeFailed
		}
		return ProtocolError
	case KindRedirectLoop:
		return RedirectLoop
	}
	return ProtocolError
}

// mainVerdict judges the main request, with the TLS probe and the other
// scheme as context. Summaries name the host of the hop that failed or
// answered, which after a redirect is not the one typed.
func mainVerdict(r *Report, t *Target) Verdict {
	h := r.HTTP
	last := h.Final()
	host, scheme := t.Host, t.URL.Scheme
	if last != nil {
		if u, err := url.Parse(last.URL); err == nil && u.Hostname() != "" {
			host, scheme = u.Hostname(), u.Scheme
		}
	}
	if h.Answered() {
		c := responseCode(h.Status, r.Gateway, last.Body)
		by := gatewayBy(r.Gateway)
		note := ""
		if r.Gateway.Note != "" {
			note = ". " + r.Gateway.Note
		}
		switch c {
		case Healthy:
			return newVerdict(Healthy, LayerHTTP, fmt.Sprintf("%s answered %s in %.0f ms", h.FinalURL, statusLine(h.Status), h.DurationMS))
		case Gateway502:
			return newVerdict(c, LayerHTTP, fmt.Sprintf("%s answered %s%s: the gateway is up but got no valid answer from the server behind it%s", host, statusLine(h.Status), by, note))
		case GatewayTimeout:
			return newVerdict(c, LayerHTTP, fmt.Sprintf("%s answered %s%s: the gateway gave up waiting for the server behind it%s", host, statusLine(h.Status), by, note))
		case AccessBlocked:
			return newVerdict(c, LayerHTTP, fmt.Sprintf("%s refused access with %s%s", host, statusLine(h.Status), by))
		case ServiceUnavailable:
			s := fmt.Sprintf("%s answered %s%s", host, statusLine(h.Status), by)
			if ra := last.Header.Get("Retry-After"); ra != "" {
				s += " (it asks to retry after " + sanitizeHeader(ra) + ")"
			}
			return newVerdict(c, LayerHTTP, s+note)
		default:
			return newVerdict(c, LayerHTTP, fmt.Sprintf("%s answered %s%s: the application failed", host, statusLine(h.Status), by))
		}
	}

	// No answer. Does the same host answer over plain http? Either the
	// other-scheme probe got an answer on its first hop (it may redirect
	// back to https and fail there), or the hop before the failing one was
	// http on the same host.
	httpAnswers := false
	if scheme == "https" {
		// An http that refuses (401, 403, 451, 429) or fails (5xx) does
		// not "answer": the missing https binding is not the problem then.
		if host == t.Host && r.Twin != nil && len(r.Twin.Hops) > 0 && statusCode(r.Twin.Hops[0].Status) == Healthy {
			httpAnswers = true
		}
		if n := len(h.Hops); n > 1 {
			if u, err := url.Parse(h.Hops[n-2].URL); err == nil && u.Scheme == "http" && u.Hostname() == host {
				httpAnswers = true
			}
		}
	}
	// The TLS probe speaks of the host typed; use it only for that host.
	tlsHere := r.TLS
	if tlsHere != nil && host != t.Host {
		tlsHere = nil
	}
	c := kindCode(h.ErrorKind, h.Phase)
	switch c {
	case TLSExpired, TLSHostnameMismatch, TLSUntrusted:
		detail := h.Error
		if tc := tlsCode(tlsHere); tc != "" && tc != TLSHandshakeFailed {
			c, detail = tc, strings.Join(tlsHere.Issues, "; ")
		}
		return newVerdict(c, LayerTLS, detail)
	case TCPRefused, TCPTimeout, TLSHandshakeFailed:
		if httpAnswers {
			return newVerdict(HTTPSUnavailable, LayerTLS, fmt.Sprintf("%s answers over http but not over https (%s)", host, h.Error))
		}
		addr := host
		if last != nil && last.RemoteAddr != "" {
			addr += " (" + last.RemoteAddr + ")"
		}
		switch c {
		case TCPRefused:
			return newVerdict(c, LayerTCP, addr+" refused the connection: nothing is listening on that port")
		case TCPTimeout:
			return newVerdict(c, LayerTCP, addr+" did not accept the connection in time ("+h.Error+")")
		}
		if tlsHere != nil && tlsHere.Error != "" {
			return newVerdict(c, LayerTLS, tlsHere.Error)
		}
		if tlsHere != nil && len(tlsHere.Issues) > 0 {
			return newVerdict(c, LayerTLS, strings.Join(tlsHere.Issues, "; "))
		}
	case AccessBlocked:
		return newVerdict(c, LayerTCP, fmt.Sprintf("%s accepted the connection, then reset it before answering: consistent with a firewall or IP allowlist", host))
	case GatewayTimeout:
		if h.Phase == "headers" {
			return newVerdict(c, LayerHTTP, fmt.Sprintf("%s started answering but did not finish its response headers within %.0f s", host, h.DurationMS/1000))
		}
		return newVerdict(c, LayerHTTP, fmt.Sprintf("%s accepted the connection but sent no answer within %.0f s", host, h.DurationMS/1000))
	case ProtocolError:
		return newVerdict(c, LayerHTTP, fmt.Sprintf("%s did not answer with valid HTTP: %s", host, h.Error))
	}
	return newVerdict(c, LayerOf(c), h.Error)
}
