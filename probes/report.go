package probes

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Code is a verdict code. The codes are a public contract: the wizard, the
// case store and integrations rely on them, so they are only ever added to.
type Code string

// The verdict codes.
const (
	Healthy             Code = "healthy"
	DNSNXDomain         Code = "dns_nxdomain"
	DNSFailure          Code = "dns_failure"
	DNSSECFailure       Code = "dnssec_failure"
	DNSLameDelegation   Code = "dns_lame_delegation"
	DNSMismatch         Code = "dns_mismatch"
	TCPRefused          Code = "tcp_refused"
	TCPTimeout          Code = "tcp_timeout"
	HTTPSUnavailable    Code = "https_unavailable"
	TLSExpired          Code = "tls_expired"
	TLSHostnameMismatch Code = "tls_hostname_mismatch"
	TLSUntrusted        Code = "tls_untrusted"
	TLSHandshakeFailed  Code = "tls_handshake_failed"
	AccessBlocked       Code = "access_blocked"
	Gateway502          Code = "gateway_502"
	GatewayTimeout      Code = "gateway_timeout"
	ServiceUnavailable  Code = "service_unavailable"
	ServerError         Code = "server_error"
	ProtocolError       Code = "protocol_error"
	RedirectLoop        Code = "redirect_loop"
	Intermittent        Code = "intermittent"
	BlockedTarget       Code = "blocked_target"
	InvalidURL          Code = "invalid_url"
)

// Layer is the network layer a verdict belongs to.
type Layer string

// The layers. LayerInput is for verdicts reached before any network traffic
// (an invalid URL).
const (
	LayerInput Layer = "input"
	LayerDNS   Layer = "dns"
	LayerTCP   Layer = "tcp"
	LayerTLS   Layer = "tls"
	LayerHTTP  Layer = "http"
)

// Verdict is a diagnosis: a code, the layer it concerns, a one-line summary
// specific to this URL, and a plain-language explanation for the person who
// reported the error.
type Verdict struct {
	Code        Code   `json:"code"`
	Layer       Layer  `json:"layer"`
	Summary     string `json:"summary"`
	Explanation string `json:"explanation"`
}

// Status is the outcome of one check.
type Status string

// Check outcomes.
const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
	StatusSkip Status = "skip"
)

// ProbeKind is the probe a check comes from. Readers of a report (the wizard's
// check.* fields) go by kind; a check's name is a label for people.
type ProbeKind string

// The kinds of check. ProbeTLS covers the handshake with the https twin of
// an http URL too; ProbeTwin is the request on the other scheme.
const (
	ProbeURL     ProbeKind = "url"
	ProbeDNS     ProbeKind = "dns"
	ProbeGuard   ProbeKind = "guard"
	ProbeTCP     ProbeKind = "tcp"
	ProbeTLS     ProbeKind = "tls"
	ProbeHTTP    ProbeKind = "http"
	ProbeTwin    ProbeKind = "twin"
	ProbeSamples ProbeKind = "samples"
	ProbeGateway ProbeKind = "gateway"
)

// ProbeKinds lists the kinds in the order a report shows their checks.
var ProbeKinds = []ProbeKind{ProbeURL, ProbeDNS, ProbeGuard, ProbeTCP, ProbeTLS, ProbeHTTP, ProbeTwin, ProbeSamples, ProbeGateway}

// Check is one line of evidence: what was checked and how it went.
type Check struct {
	Kind       ProbeKind `json:"kind"`
	Name       string    `json:"name"`
	Status     Status    `json:"status"`
	Detail     string    `json:"detail"`
	DurationMS float64   `json:"duration_ms"`
}

// UnmarshalJSON reads a check, giving a check stored before checks had
// kinds the kind its name says.
func (c *Check) UnmarshalJSON(data []byte) error {
	type plain Check
	if err := json.Unmarshal(data, (*plain)(c)); err != nil {
		return err
	}
	if c.Kind == "" {
		c.Kind = kindOfName(c.Name)
	}
	return nil
}

// kindOfName is the kind of a check by the name it was given before
// checks had kinds: "tcp 192.0.2.1:443", "tls (https twin)", "https",
// "http (other scheme)".
func kindOfName(name string) ProbeKind {
	switch {
	case strings.HasSuffix(name, "(other scheme)"):
		return ProbeTwin
	case name == "http" || name == "https":
		return ProbeHTTP
	case strings.HasPrefix(name, "tcp "):
		return ProbeTCP
	case strings.HasPrefix(name, "tls"):
		return ProbeTLS
	}
	return ProbeKind(name)
}

// Report is everything one diagnosis found.
type Report struct {
	URL        string    `json:"url"`
	Host       string    `json:"host,omitempty"`
	Port       int       `json:"port,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS float64   `json:"duration_ms"`
	// NoScheme is true when the address was typed without a scheme: both
	// were probed, and URL, HTTP and the verdict are those of the scheme a
	// browser would have shown (https, or http when https did not
	// connect); Twin is the other. Absent in reports of typed schemes.
	NoScheme bool `json:"no_scheme,omitempty"`

	Verdict  Verdict   `json:"verdict"`
	Findings []Verdict `json:"findings"`
	Gateway  Gateway   `json:"gateway"`
	Checks   []Check   `json:"checks"`

	DNS     *DNSResult   `json:"dns,omitempty"`
	TCP     []TCPResult  `json:"tcp,omitempty"`
	TLS     *TLSResult   `json:"tls,omitempty"`
	HTTP    *HTTPResult  `json:"http,omitempty"`
	Twin    *HTTPResult  `json:"twin,omitempty"`
	Samples []Sample     `json:"samples"`
	Counts  SampleCounts `json:"sample_counts"`
	// Timings are the phase timings of each hop of the main request.
	Timings []HopTiming `json:"timings"`
	// Addresses are the URL fetched from each address of a name that has
	// several, one entry per address with its own verdict.
	Addresses []AddressResult `json:"addresses,omitempty"`
	// Backends are the servers behind a load balancer its answers named.
	Backends []Backend `json:"backends,omitempty"`
	// Origin is the address every connection to the URL's host was
	// dialled to, when the origin was asked directly (RunOrigin): the
	// report is the origin's answer, not the public one.
	Origin string `json:"origin,omitempty"`
}

// Problem reports whether the verdict is anything but healthy.
func (r *Report) Problem() bool { return r.Verdict.Code != Healthy }

// FinishedAt is when the diagnosis ended: the time its evidence is from.
func (r *Report) FinishedAt() time.Time {
	return r.StartedAt.Add(time.Duration(r.DurationMS * float64(time.Millisecond)))
}

// DNSResult is what name resolution found.
type DNSResult struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
	CNAMEs    []string `json:"cname_chain,omitempty"`
	// Withheld counts addresses left out because they are not public.
	Withheld   int     `json:"withheld,omitempty"`
	Error      string  `json:"error,omitempty"`
	NotFound   bool    `json:"not_found,omitempty"`
	TimedOut   bool    `json:"timed_out,omitempty"`
	DurationMS float64 `json:"duration_ms"`

	// Resolver is the recursive resolver asked directly (see dnsdepth.go),
	// nil when none could be.
	Resolver *ResolverView `json:"resolver,omitempty"`
	// DNSSEC is what the resolver said of the name's signatures: secure
	// (validated, the AD bit), unvalidated (an answer without it: the zone
	// is unsigned or the resolver does not validate) or bogus (SERVFAIL,
	// but an answer with checking disabled: validation fails).
	DNSSEC string `json:"dnssec,omitempty"`
	// EDE are the Extended DNS Errors (RFC 8914) the servers asked sent.
	EDE []ExtendedError `json:"ede,omitempty"`
	// Authoritative is what the name's own servers answer, asked directly.
	Authoritative *Authoritative `json:"authoritative,omitempty"`

	// server is the resolver that answered directly, final the name at
	// the end of the CNAME chain: what the authoritative check asks.
	server, final string
}

// ResolverView is what the recursive resolver answered when asked
// directly, with DNSSEC records requested (the DO bit).
type ResolverView struct {
	// Address is the resolver's address and port, "" when it is not a
	// public address (withheld like the target's non-public addresses).
	Address string `json:"address,omitempty"`
	// Source is "flag" (the operator's --resolver) or "system" (the
	// servers of /etc/resolv.conf).
	Source  string      `json:"source"`
	Answers []DNSAnswer `json:"answers"`
}

// DNSAnswer is one answer to one question.
type DNSAnswer struct {
	Type string `json:"type"` // A, AAAA, NS
	// Rcode is the response code (NOERROR, NXDOMAIN, SERVFAIL, REFUSED),
	// or "" when no answer came (Error says why).
	Rcode     string   `json:"rcode,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
	// Withheld counts non-public addresses left out.
	Withheld int `json:"withheld,omitempty"`
	// Authenticated is the AD bit: the resolver validated the answer.
	Authenticated bool `json:"authenticated,omitempty"`
	// CheckingDisabled marks the question asked again with the CD bit,
	// after a SERVFAIL.
	CheckingDisabled bool    `json:"checking_disabled,omitempty"`
	Error            string  `json:"error,omitempty"`
	DurationMS       float64 `json:"duration_ms"`
}

// ExtendedError is one Extended DNS Error (RFC 8914).
type ExtendedError struct {
	Code uint16 `json:"code"`
	Name string `json:"name"` // the RFC's name for the code
	// Text is the server's own words (EXTRA-TEXT), cleaned and cut.
	Text string `json:"text,omitempty"`
	// From is who sent it: "resolver", or the name server's name.
	From string `json:"from"`
}

// Authoritative is the name asked of its own (authoritative) servers
// directly, without recursion, and compared with the resolver's answer.
type Authoritative struct {
	// Zone is the zone the name belongs to, Name the name asked (the end
	// of the CNAME chain the resolver gave).
	Zone    string       `json:"zone"`
	Name    string       `json:"name"`
	Servers []AuthServer `json:"servers"`
	// Stale are addresses the resolver gives but none of the name's
	// servers does; Missing the reverse. Non-public ones are counted in
	// Withheld instead.
	Stale    []string `json:"stale,omitempty"`
	Missing  []string `json:"missing,omitempty"`
	Withheld int      `json:"withheld,omitempty"`
	// Reachable are those of Missing that accept connections on the
	// site's port (at most two are tried, by connecting only): a site
	// failing at the resolver's addresses and reachable at these is
	// failing because the resolver's record is stale.
	Reachable []string `json:"reachable,omitempty"`
	// Disagree is true when the resolver's addresses and the servers'
	// differ; Lame when none of the servers answers for the name.
	Disagree bool `json:"disagree,omitempty"`
	Lame     bool `json:"lame,omitempty"`
	// Note says why the comparison could not be made, when it could not.
	Note string `json:"note,omitempty"`

	stale, missing, reachable []netip.Addr    // unfiltered
	ede                       []ExtendedError // sent by the name's servers
}

// AuthServer is one of the name's servers and its answer.
type AuthServer struct {
	Name string `json:"name"`
	// Address is the address asked, "" when not public (withheld) or
	// when the server's name has no address.
	Address string `json:"address,omitempty"`
	// Outcome is answered, nxdomain, refused, servfail, not_authoritative,
	// timeout, error, unresolved (its name has no address) or withheld
	// (not a public address: not asked).
	Outcome   string   `json:"outcome"`
	Addresses []string `json:"addresses,omitempty"`
	// Alias is the CNAME target when the server answers with one.
	Alias      string  `json:"alias,omitempty"`
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// TCPResult is one connection attempt to one address.
type TCPResult struct {
	Address    string  `json:"address"`
	Outcome    string  `json:"outcome"` // connected, refused, timeout, unreachable, reset, blocked, error
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// TLSResult is the handshake with the https endpoint and its certificate.
type TLSResult struct {
	Address     string        `json:"address"`
	ServerName  string        `json:"server_name"`
	Version     string        `json:"version,omitempty"`
	CipherSuite string        `json:"cipher_suite,omitempty"`
	ALPN        string        `json:"alpn,omitempty"`
	Chain       []Certificate `json:"chain,omitempty"`
	// Problem is "", expired, not_yet_valid, hostname_mismatch, self_signed,
	// incomplete_chain, untrusted or handshake_failed.
	Problem    string   `json:"problem,omitempty"`
	Issues     []string `json:"issues,omitempty"`
	Error      string   `json:"error,omitempty"`
	DurationMS float64  `json:"duration_ms"`
}

// Certificate is one certificate as the server presented it.
type Certificate struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	DNSNames    []string  `json:"dns_names,omitempty"`
	IPAddresses []string  `json:"ip_addresses,omitempty"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	Serial      string    `json:"serial"`
	SHA256      string    `json:"sha256"`
	IsCA        bool      `json:"is_ca"`
	SelfSigned  bool      `json:"self_signed"`
}

// HTTPResult is one request and the redirects it followed.
type HTTPResult struct {
	URL      string `json:"url"`
	FinalURL string `json:"final_url"`
	Hops     []Hop  `json:"hops"`
	// Status is the final hop's status code, 0 when no answer came.
	Status    int    `json:"status"`
	Error     string `json:"error,omitempty"`
	ErrorKind Kind   `json:"error_kind,omitempty"`
	// Phase is where a failed request stopped: dns, connect, tls, response or body.
	Phase      string  `json:"phase,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// Final returns the last hop, or nil.
func (h *HTTPResult) Final() *Hop {
	if h == nil || len(h.Hops) == 0 {
		return nil
	}
	return &h.Hops[len(h.Hops)-1]
}

// Answered reports whether the server sent an HTTP response.
func (h *HTTPResult) Answered() bool { return h != nil && h.Status != 0 && h.Error == "" }

// Hop is one request of a redirect chain.
type Hop struct {
	URL           string      `json:"url"`
	RemoteAddr    string      `json:"remote_addr,omitempty"`
	Proto         string      `json:"proto,omitempty"`
	Status        int         `json:"status,omitempty"`
	StatusText    string      `json:"status_text,omitempty"`
	Header        http.Header `json:"headers,omitempty"`
	Body          string      `json:"body,omitempty"`
	BodyTruncated bool        `json:"body_truncated,omitempty"`
	Error         string      `json:"error,omitempty"`
	// Reused is true when the request went on a kept-alive connection,
	// false on a fresh one.
	Reused bool      `json:"reused"`
	Timing HopTiming `json:"timing"`
}

// HopTiming is the phase breakdown of one request, as httpstat shows it.
type HopTiming struct {
	URL        string  `json:"url"`
	DNSMS      float64 `json:"dns_ms"`
	ConnectMS  float64 `json:"connect_ms"`
	TLSMS      float64 `json:"tls_ms"`
	WaitMS     float64 `json:"wait_ms"` // request written to first response byte
	TransferMS float64 `json:"transfer_ms"`
	TotalMS    float64 `json:"total_ms"`
}

// Sample is one of the repeated requests on fresh connections.
type Sample struct {
	Status     int     `json:"status"`
	Error      string  `json:"error"`
	DurationMS float64 `json:"duration_ms"`
	// CutOff marks a sample the diagnosis deadline stopped: it says
	// nothing about the site and is left out of the counts.
	CutOff bool `json:"cut_off,omitempty"`
	// Reused says whether a failed sample's connection was kept alive
	// from an earlier request (a keep-alive race) or fresh.
	Reused bool `json:"reused"`
	// ErrorMS is, for a failed sample, how long the failure took: from
	// the request written to the gateway's error page, or to the error
	// when no answer came.
	ErrorMS float64 `json:"error_ms,omitempty"`
	// Speed classes a failed sample's ErrorMS: fast, at_timeout (about a
	// gateway product's default timeout) or slow.
	Speed string `json:"speed,omitempty"`
	// Backend is the backend its answer names (see Report.Backends).
	Backend string `json:"backend,omitempty"`
	kind    Kind
	phase   string
	hop     *Hop // the final hop, kept for fingerprinting a failure
}

// SampleCounts sums the samples up.
type SampleCounts struct {
	Total   int `json:"total"`
	OK      int `json:"ok"`      // an answer below 500 (other than 401/403/451/429)
	Gateway int `json:"gateway"` // 502, 503, 504 or 52x
	Other   int `json:"other"`   // other failing statuses
	Errors  int `json:"errors"`  // no answer: reset, timeout, refused...
	// FailureRate is the share of samples that did not work, 0 to 1.
	FailureRate float64 `json:"failure_rate"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
