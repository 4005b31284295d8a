package probes

import (
	"math"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Gateway names the product that most likely produced the response.
type Gateway struct {
	// Name is one of the GatewayNames, or "" when nothing was recognised.
	Name string `json:"name"`
	// Confidence is how sure the fingerprint is, from 0 to 1.
	Confidence float64 `json:"confidence"`
	// Certainty is Confidence in words: high, medium or low.
	Certainty string `json:"certainty"`
	// Signals are the pieces of evidence, as they were seen.
	Signals []string `json:"signals,omitempty"`
	// Others are products also seen on the path (a CDN in front, say).
	Others []string `json:"others"`
	// Note explains a product quirk that matters for this response.
	Note string `json:"note"`
}

// GatewayNames are the products the fingerprint knows.
var GatewayNames = []string{
	"nginx", "haproxy", "apache", "caddy", "traefik", "envoy", "varnish", "squid", "iis",
	"cloudflare", "aws-elb", "cloudfront", "akamai", "fastly", "google", "azure-front-door",
}

// signal is one piece of evidence for a product. Weights combine as
// independent probabilities: 1 - Π(1 - w).
type signal struct {
	product string
	weight  float64
	// page marks evidence from the error page itself, which says who
	// generated the response rather than who merely relayed it.
	page  bool
	match func(h http.Header, body string) (string, bool)
}

func headerHas(name, substr string) func(http.Header, string) (string, bool) {
	substr = strings.ToLower(substr)
	return func(h http.Header, _ string) (string, bool) {
		for _, v := range h.Values(name) {
			if strings.Contains(strings.ToLower(v), substr) {
				return name + ": " + v, true
			}
		}
		return "", false
	}
}

func headerPresent(name string) func(http.Header, string) (string, bool) {
	return func(h http.Header, _ string) (string, bool) {
		if v := h.Values(name); len(v) > 0 {
			return name + ": " + v[0], true
		}
		return "", false
	}
}

func bodyHas(desc string, substrs ...string) func(http.Header, string) (string, bool) {
	return func(_ http.Header, body string) (string, bool) {
		for _, s := range substrs {
			if !strings.Contains(body, s) {
				return "", false
			}
		}
		return desc, true
	}
}

func bodyMatches(desc string, re *regexp.Regexp) func(http.Header, string) (string, bool) {
	return func(_ http.Header, body string) (string, bool) {
		if re.MatchString(body) {
			return desc, true
		}
		return "", false
	}
}

var (
	reNginxPage    = regexp.MustCompile(`<hr><center>(nginx|openresty)(/[\d.]+)?</center>`)
	reServerNginx  = regexp.MustCompile(`(?i)^(nginx|openresty|tengine)`)
	reELBPage      = regexp.MustCompile(`(?s)^<html>\s*<head><title>50\d [^<]+</title></head>\s*<body>\s*<center><h1>50\d [^<]+</h1></center>\s*</body>\s*</html>\s*$`)
	reHAProxyPage  = regexp.MustCompile(`(?s)^<html><body><h1>50[234] [^<]+</h1>\s*(The server returned an invalid or incomplete response\.|No server is available to handle this request\.|The server didn't respond in time\.)`)
	reGooglePage   = regexp.MustCompile(`<title>Error 50\d \([^)]*\)!!1</title>`)
	reAkamaiRef    = regexp.MustCompile(`Reference&#32;&#35;\d+&#46;|Reference #\d+\.[0-9a-f]+\.|errors&#46;edgesuite&#46;net|errors\.edgesuite\.net`)
	reTraefikPlain = regexp.MustCompile(`^(Bad Gateway|Gateway Timeout|Service Unavailable)\s*$`)
)

var signals = []signal{
	// nginx (and openresty, its distribution)
	{"nginx", 0.8, false, func(h http.Header, _ string) (string, bool) {
		v := h.Get("Server")
		return "Server: " + v, reServerNginx.MatchString(v)
	}},
	{"nginx", 0.85, true, bodyMatches("nginx's default error page", reNginxPage)},

	// HAProxy sends no Server header; its built-in pages are recognisable.
	{"haproxy", 0.85, true, bodyMatches("HAProxy's built-in error page", reHAProxyPage)},
	{"haproxy", 0.6, false, headerHas("Server", "haproxy")},

	// Apache httpd, usually mod_proxy.
	{"apache", 0.75, false, headerHas("Server", "apache")},
	{"apache", 0.85, true, bodyHas("Apache's proxy error page", "The proxy server received an invalid", "response from an upstream server")},
	{"apache", 0.6, true, bodyMatches("Apache's server signature", regexp.MustCompile(`<address>Apache(/[\d.]+)?[^<]* Server at `))},

	// Caddy always sets Server: Caddy.
	{"caddy", 0.85, false, headerHas("Server", "caddy")},

	// Traefik: no Server header, a bare text status line as the body.
	{"traefik", 0.35, true, func(h http.Header, body string) (string, bool) {
		if h.Get("Server") == "" && strings.HasPrefix(h.Get("Content-Type"), "text/plain") && reTraefikPlain.MatchString(body) {
			return "a bare text/plain status body with no Server header (Traefik's default)", true
		}
		return "", false
	}},
	{"traefik", 0.7, false, headerHas("Server", "traefik")},

	// Envoy (and Istio, which is Envoy).
	{"envoy", 0.8, false, headerHas("Server", "envoy")},
	{"envoy", 0.6, false, headerPresent("X-Envoy-Upstream-Service-Time")},
	{"envoy", 0.85, true, bodyHas("Envoy's upstream failure text", "upstream connect error or disconnect/reset before headers")},
	{"envoy", 0.8, true, bodyHas("Envoy's \"no healthy upstream\" text", "no healthy upstream")},

	// Varnish.
	{"varnish", 0.6, false, headerPresent("X-Varnish")},
	{"varnish", 0.7, false, headerHas("Server", "varnish")},
	{"varnish", 0.4, false, headerHas("Via", "varnish")},
	{"varnish", 0.85, true, bodyHas("Varnish's Guru Meditation page", "Guru Meditation")},
	{"varnish", 0.5, true, bodyHas("Varnish's backend failure text", "Backend fetch failed")},

	// Squid.
	{"squid", 0.8, false, headerHas("Server", "squid")},
	{"squid", 0.8, false, headerPresent("X-Squid-Error")},
	{"squid", 0.5, false, headerHas("Via", "squid")},
	{"squid", 0.7, true, bodyHas("Squid's error page", "ERROR", "The requested URL could not be retrieved")},

	// IIS, with Application Request Routing as the gateway.
	{"iis", 0.8, false, headerHas("Server", "microsoft-iis")},
	{"iis", 0.5, false, headerHas("X-Powered-By", "ARR")},
	{"iis", 0.3, false, headerHas("X-Powered-By", "ASP.NET")},
	{"iis", 0.85, true, bodyHas("IIS ARR's gateway error page", "Web server received an invalid response while acting as a gateway or proxy server")},
	{"iis", 0.85, true, bodyMatches("IIS's detailed error page", regexp.MustCompile(`HTTP Error 50\d\.\d+ - `))},

	// Cloudflare.
	{"cloudflare", 0.7, false, headerHas("Server", "cloudflare")},
	{"cloudflare", 0.8, false, headerPresent("CF-RAY")},
	{"cloudflare", 0.3, false, headerPresent("CF-Cache-Status")},
	{"cloudflare", 0.85, true, bodyMatches("Cloudflare's branded error page", regexp.MustCompile(`(?i)cloudflare-nginx|cf-error-details|Cloudflare Ray ID|cdn-cgi/styles/cf\.errors\.css|error code: 5\d\d`))},

	// AWS Elastic Load Balancing.
	{"aws-elb", 0.85, false, headerHas("Server", "awselb")},
	{"aws-elb", 0.4, true, func(h http.Header, body string) (string, bool) {
		if h.Get("Server") == "" && reELBPage.MatchString(body) {
			return "a bare error page without a product name (an AWS load balancer's)", true
		}
		return "", false
	}},

	// CloudFront.
	{"cloudfront", 0.85, false, headerPresent("X-Amz-Cf-Id")},
	{"cloudfront", 0.5, false, headerPresent("X-Amz-Cf-Pop")},
	{"cloudfront", 0.6, false, headerHas("Via", "cloudfront")},
	{"cloudfront", 0.5, false, headerHas("X-Cache", "cloudfront")},
	{"cloudfront", 0.6, false, headerHas("Server", "cloudfront")},
	{"cloudfront", 0.85, true, bodyHas("CloudFront's error page", "Generated by cloudfront (CloudFront)")},

	// Akamai.
	{"akamai", 0.8, false, headerHas("Server", "akamaighost")},
	{"akamai", 0.5, false, headerPresent("X-Akamai-Request-Id")},
	{"akamai", 0.7, true, bodyMatches("Akamai's error reference number", reAkamaiRef)},

	// Fastly (built on Varnish, hence the Varnish-looking headers).
	{"fastly", 0.6, false, headerHas("X-Served-By", "cache-")},
	{"fastly", 0.8, false, headerPresent("X-Fastly-Request-ID")},
	{"fastly", 0.4, false, headerPresent("X-Timer")},
	{"fastly", 0.8, true, bodyHas("Fastly's error page", "Fastly error")},
	{"fastly", 0.8, true, bodyMatches("Fastly's error page", regexp.MustCompile(`Details: cache-[a-z0-9-]+ \d+`))},

	// Google Front End / Cloud Load Balancing.
	{"google", 0.6, false, headerHas("Via", "1.1 google")},
	{"google", 0.75, false, func(h http.Header, _ string) (string, bool) {
		v := h.Get("Server")
		return "Server: " + v, v == "Google Frontend" || v == "gws" || v == "GFE/2.0" || v == "ESF"
	}},
	{"google", 0.85, true, bodyMatches("Google's error page", reGooglePage)},
	{"google", 0.7, true, bodyHas("Google Cloud load balancer's error page", "The server encountered a temporary error and could not complete your request.")},

	// Azure Front Door.
	{"azure-front-door", 0.85, false, headerPresent("X-Azure-Ref")},
	{"azure-front-door", 0.4, false, headerPresent("X-MSEdge-Ref")},
	{"azure-front-door", 0.4, false, headerHas("X-Cache", "CONFIG_NOCACHE")},
	{"azure-front-door", 0.8, true, bodyHas("Azure Front Door's error page", "Our services aren't available right now")},
}

// fingerprint scores every signal in a response and names the product most
// likely to have produced it. Evidence from the page itself decides between
// products seen together (a CDN relaying an origin's page).
func fingerprint(status int, h http.Header, body string) Gateway {
	if h == nil {
		h = http.Header{}
	}
	type score struct {
		miss    float64 // Π(1 - w)
		page    bool
		signals []string
	}
	scores := map[string]*score{}
	for _, s := range signals {
		desc, ok := s.match(h, body)
		if !ok {
			continue
		}
		sc := scores[s.product]
		if sc == nil {
			sc = &score{miss: 1}
			scores[s.product] = sc
		}
		sc.miss *= 1 - s.weight
		sc.page = sc.page || s.page
		sc.signals = append(sc.signals, sanitizeHeader(desc))
	}
	if len(scores) == 0 {
		return Gateway{}
	}
	names := make([]string, 0, len(scores))
	for n := range scores {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := scores[names[i]], scores[names[j]]
		if a.page != b.page {
			return a.page
		}
		if a.miss != b.miss {
			return a.miss < b.miss
		}
		return names[i] < names[j]
	})
	// Fastly runs Varnish: Varnish-looking headers next to Fastly's own
	// are Fastly's, not a second product.
	if scores["fastly"] != nil && names[0] == "varnish" && !scores["varnish"].page {
		rest := slices.DeleteFunc(slices.Clone(names[1:]), func(n string) bool { return n == "fastly" })
		names = append([]string{"fastly"}, rest...)
	}
	best := scores[names[0]]
	g := Gateway{
		Name:       names[0],
		Confidence: math.Round((1-best.miss)*100) / 100,
		Signals:    best.signals,
		Others:     append([]string{}, names[1:]...),
	}
	switch {
	case g.Confidence >= 0.8:
		g.Certainty = "high"
	case g.Confidence >= 0.5:
		g.Certainty = "medium"
	default:
		g.Certainty = "low"
	}
	g.Note = quirk(g.Name, status, body)
	return g
}

// quirk explains what a product's status means when the product does
// something unusual with it.
func quirk(name string, status int, body string) string {
	switch name {
	case "cloudflare":
		if n, ok := cloudflareCodes[status]; ok {
			return n
		}
		if status == 502 || status == 504 {
			return "Cloudflare shows its own branded page when the origin server behind it answered " + strconv.Itoa(status) + ": the fault is at the origin, not at Cloudflare."
		}
	case "envoy":
		if status == 503 {
			return "Envoy answers 503 where most gateways answer 502: it could not get a response from the service behind it."
		}
	case "varnish", "fastly":
		if status == 503 && (strings.Contains(body, "Backend fetch failed") || strings.Contains(body, "Backend.fail")) {
			return "Varnish answers 503 \"Backend fetch failed\" where most gateways answer 502: the backend did not give it a usable answer."
		}
	case "haproxy":
		if status == 503 {
			return "HAProxy answers 503 when none of the servers behind it is up."
		}
	}
	return ""
}

// cloudflareCodes are Cloudflare's own 52x statuses, each a specific problem
// between Cloudflare and the origin server.
var cloudflareCodes = map[int]string{
	520: "Cloudflare 520: the origin server returned an empty, unknown or unexpected response.",
	521: "Cloudflare 521: the origin web server refused the connection from Cloudflare (it is down, or blocks Cloudflare's addresses).",
	522: "Cloudflare 522: Cloudflare timed out connecting to the origin server.",
	523: "Cloudflare 523: Cloudflare could not reach the origin server (a DNS or routing problem at the origin).",
	524: "Cloudflare 524: Cloudflare connected to the origin, but the origin did not answer within 100 seconds.",
	525: "Cloudflare 525: the TLS handshake between Cloudflare and the origin server failed.",
	526: "Cloudflare 526: the origin server's certificate is invalid, and Cloudflare is set to require a valid one.",
	527: "Cloudflare 527: Cloudflare's Railgun connection to the origin was interrupted.",
	530: "Cloudflare 530: Cloudflare could not resolve or reach the origin (the page names a 1xxx error).",
}

// clean makes text a remote server chose safe to print on a terminal: valid
// UTF-8, without C0 or C1 control characters (escape sequences) or the
// bidirectional overrides that reorder what a reader sees.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "�")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return ' '
		case r < 0x20, r >= 0x7f && r <= 0x9f:
			return -1
		case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
			return -1
		}
		return r
	}, s)
}

// sanitizeHeader cleans a header value and cuts it to 200 characters.
func sanitizeHeader(s string) string {
	s = clean(s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}
