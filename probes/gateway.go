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

// gatewayInfo is one product the fingerprint knows: everything about it is
// written here once, and GatewayNames, GatewayLabel, the fingerprint and
// the verdict's product quirks are all read from the table below.
type gatewayInfo struct {
	// Name is the product's stable identifier: stored in cases, named by
	// trees and webhooks. Names are only ever added.
	Name string
	// Label names the product for people, as in "answered 502 from Label".
	Label string
	// Signals are the evidence for the product.
	Signals []signal
	// Runs names a product this one is built on, whose look-alike headers
	// next to this product's own are this product's (Fastly runs Varnish).
	Runs string
	// Note explains a status the product uses in its own way, or "".
	Note func(status int, body string) string
	// Upstream503 tells, for a 503 this product answered, whether it is
	// the product's way of saying its upstream failed (what most gateways
	// call 502), rather than overload or maintenance.
	Upstream503 func(body string) bool
}

// signal is one piece of evidence for a product. Weights combine as
// independent probabilities: 1 - Π(1 - w).
type signal struct {
	weight float64
	// page marks evidence of who generated the response (the error page,
	// or a header only the generator of an error sets), as opposed to who
	// merely relayed it (Server, Via and vendor headers on the path).
	page  bool
	match func(h http.Header, body string) (string, bool)
}

// relayed and authored build signals: evidence of who relayed the
// response, and of who generated it.
func relayed(w float64, m func(http.Header, string) (string, bool)) signal {
	return signal{weight: w, match: m}
}
func authored(w float64, m func(http.Header, string) (string, bool)) signal {
	return signal{weight: w, page: true, match: m}
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

func headerMatches(name string, re *regexp.Regexp) func(http.Header, string) (string, bool) {
	return func(h http.Header, _ string) (string, bool) {
		for _, v := range h.Values(name) {
			if re.MatchString(v) {
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

// headerPrefix finds any header whose name starts with prefix (canonical
// form, such as "X-Envoy-").
func headerPrefix(prefix string) func(http.Header, string) (string, bool) {
	return func(h http.Header, _ string) (string, bool) {
		for k, v := range h {
			if strings.HasPrefix(k, prefix) && len(v) > 0 {
				return k + ": " + v[0], true
			}
		}
		return "", false
	}
}

// cookie finds a Set-Cookie whose name starts with one of the prefixes.
// Only the name is kept as evidence: such cookies' values may encode the
// site's internal addresses (BIG-IP's do).
func cookie(what string, prefixes ...string) func(http.Header, string) (string, bool) {
	return func(h http.Header, _ string) (string, bool) {
		for _, v := range h.Values("Set-Cookie") {
			name, _, _ := strings.Cut(v, "=")
			name = strings.TrimSpace(name)
			for _, p := range prefixes {
				if strings.HasPrefix(name, p) {
					return "Set-Cookie: " + name + "=… (" + what + ")", true
				}
			}
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

// bodyMatches matches the body against re. A regexp not anchored at the
// start scans the whole body (up to 64 KiB) on every response, so it names
// literals of which the body must contain one before re is tried.
func bodyMatches(desc string, re *regexp.Regexp, lits ...string) func(http.Header, string) (string, bool) {
	return func(_ http.Header, body string) (string, bool) {
		if len(lits) > 0 && !slices.ContainsFunc(lits, func(l string) bool { return strings.Contains(body, l) }) {
			return "", false
		}
		if re.MatchString(body) {
			return desc, true
		}
		return "", false
	}
}

// plainBody matches a short text/plain body, the whole of which matches re.
func plainBody(desc string, re *regexp.Regexp) func(http.Header, string) (string, bool) {
	return func(h http.Header, body string) (string, bool) {
		if len(body) < 200 && strings.HasPrefix(h.Get("Content-Type"), "text/plain") && re.MatchString(body) {
			return desc, true
		}
		return "", false
	}
}

func bodyContains(substrs ...string) func(string) bool {
	return func(body string) bool {
		for _, s := range substrs {
			if strings.Contains(body, s) {
				return true
			}
		}
		return false
	}
}

var (
	reNginxPage    = regexp.MustCompile(`<hr><center>nginx(/[\d.]+)?</center>`)
	reHAProxyPage  = regexp.MustCompile(`(?s)^<html><body><h1>50[234] [^<]+</h1>\s*(The server returned an invalid or incomplete response\.|No server is available to handle this request\.|The server didn't respond in time\.)`)
	reGooglePage   = regexp.MustCompile(`<title>Error 50\d \([^)]*\)!!1</title>`)
	reAkamaiRef    = regexp.MustCompile(`Reference&#32;&#35;\d+&#46;|Reference #\d+\.[0-9a-f]+\.|errors&#46;edgesuite&#46;net|errors\.edgesuite\.net`)
	reTraefikPlain = regexp.MustCompile(`^(Bad Gateway|Gateway Timeout|Service Unavailable)\s*$`)
	// lighttpd's built-in error page: XHTML naming only the status.
	reLighttpdPage = regexp.MustCompile(`(?s)^<\?xml version="1.0" encoding="iso-8859-1"\?>\s*<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\s*"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\s*<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\s*<head>\s*<title>\d{3} [^<]*</title>\s*</head>\s*<body>\s*<h1>\d{3} [^<]*</h1>\s*</body>\s*</html>\s*$`)
	// h2o's proxy errors: a one-line text/plain reason (lib/core/proxy.c).
	reH2OPlain = regexp.MustCompile(`^(connection failed|connection timeout|I/O error|I/O timeout|upstream error|invalid response from upstream|upstream request timeout)\s*$`)
	// Traffic Server's body factory templates (etc/trafficserver/body_factory).
	reATSPage = regexp.MustCompile(`(?s)<BODY BGCOLOR="white" FGCOLOR="black">.*<FONT FACE="Helvetica,Arial"><B>\s*Description: `)
	// Pound 4's built-in page (src/http.c, default_error_page), and Pound
	// 2's bare default text.
	rePoundPage  = regexp.MustCompile(`^<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN"><html><head><title>50\d [^<]+</title></head><body><h1>[^<]+</h1><p>[^<]+</p></body></html>\s*$`)
	rePound2Text = regexp.MustCompile(`^(The service is not available\. Please try again later\.|An internal server error occurred\. Please try again later\.)\s*$`)
	// NetScaler's own answer when a virtual server is down.
	reNetScalerPage = regexp.MustCompile(`^<html><body><b>Http/1\.1 [A-Za-z ]+(\d+)?</b></body> </html>\s*$`)
	reVercelPage    = regexp.MustCompile(`(?s)\b5\d\d: [A-Z_]+\b.*\bCode: [A-Z_]+`)
)

// cloudflareNote explains Cloudflare's statuses.
func cloudflareNote(status int, _ string) string {
	if n, ok := cloudflareCodes[status]; ok {
		return n
	}
	if status == 502 || status == 504 {
		return "Cloudflare shows its own branded page when the origin server behind it answered " + strconv.Itoa(status) + ": the fault is at the origin, not at Cloudflare."
	}
	return ""
}

// on503 returns a Note that says text for a 503 whose body passes ok
// (nil: any 503).
func on503(ok func(string) bool, text string) func(int, string) string {
	return func(status int, body string) string {
		if status == 503 && (ok == nil || ok(body)) {
			return text
		}
		return ""
	}
}

var (
	envoyUpstream   = bodyContains("upstream connect error", "reset before headers")
	varnishBackend  = bodyContains("Backend fetch failed", "Backend.fail")
	varnishNote     = on503(varnishBackend, "Varnish answers 503 \"Backend fetch failed\" where most gateways answer 502: the backend did not give it a usable answer.")
	lighttpdOwnPage = func(body string) bool { return reLighttpdPage.MatchString(body) }
	poundOwnPage    = func(body string) bool { return rePoundPage.MatchString(body) || rePound2Text.MatchString(body) }
	herokuAppError  = bodyContains("herokucdn.com/error-pages/application-error.html")
)

// gateways is the table of products, in the order GatewayNames lists them.
var gateways = []gatewayInfo{
	{Name: "nginx", Label: "nginx", Signals: []signal{
		relayed(0.8, headerMatches("Server", regexp.MustCompile(`(?i)^nginx`))),
		authored(0.85, bodyMatches("nginx's default error page", reNginxPage, "<hr><center>nginx")),
	}},
	// HAProxy sends no Server header; its built-in pages are recognisable.
	{Name: "haproxy", Label: "HAProxy", Signals: []signal{
		authored(0.85, bodyMatches("HAProxy's built-in error page", reHAProxyPage)),
	}, Note: on503(nil, "HAProxy answers 503 when none of the servers behind it is up.")},
	// Apache httpd, usually mod_proxy.
	{Name: "apache", Label: "Apache", Signals: []signal{
		relayed(0.75, headerMatches("Server", regexp.MustCompile(`(?i)^apache($|/| )`))),
		authored(0.85, bodyHas("Apache's proxy error page", "The proxy server received an invalid", "response from an upstream server")),
		authored(0.6, bodyMatches("Apache's server signature", regexp.MustCompile(`<address>Apache(/[\d.]+)?[^<]* Server at `), "<address>Apache")),
	}},
	// Caddy always sets Server: Caddy.
	{Name: "caddy", Label: "Caddy", Signals: []signal{
		relayed(0.85, headerHas("Server", "caddy")),
	}},
	// Traefik: no Server header, the bare status text as the body (written
	// without a newline and without the nosniff header Go's http.Error adds).
	{Name: "traefik", Label: "Traefik", Signals: []signal{
		authored(0.35, func(h http.Header, body string) (string, bool) {
			if h.Get("Server") == "" && h.Get("X-Content-Type-Options") == "" && strings.HasPrefix(h.Get("Content-Type"), "text/plain") && reTraefikPlain.MatchString(body) {
				return "a bare text/plain status body with no Server header (Traefik's default)", true
			}
			return "", false
		}),
	}},
	// Envoy, and Istio, which is Envoy: Istio's sidecars and gateways say
	// "server: istio-envoy" and add x-envoy-* headers.
	{Name: "envoy", Label: "Envoy", Signals: []signal{
		relayed(0.8, headerHas("Server", "envoy")),
		relayed(0.5, headerHas("Server", "istio-envoy")),
		relayed(0.6, headerPrefix("X-Envoy-")),
		authored(0.85, bodyHas("Envoy's upstream failure text", "upstream connect error or disconnect/reset before headers")),
		authored(0.8, bodyHas("Envoy's \"no healthy upstream\" text", "no healthy upstream")),
		authored(0.6, plainBody("Envoy's \"upstream request timeout\" text", regexp.MustCompile(`^upstream request timeout\s*$`))),
	},
		Note:        on503(envoyUpstream, "Envoy answers 503 where most gateways answer 502: it could not get a response from the service behind it."),
		Upstream503: envoyUpstream,
	},
	{Name: "varnish", Label: "Varnish", Signals: []signal{
		relayed(0.6, headerPresent("X-Varnish")),
		relayed(0.7, headerHas("Server", "varnish")),
		relayed(0.4, headerHas("Via", "varnish")),
		authored(0.85, bodyHas("Varnish's Guru Meditation page", "Guru Meditation")),
		authored(0.5, bodyHas("Varnish's backend failure text", "Backend fetch failed")),
	}, Note: varnishNote, Upstream503: varnishBackend},
	{Name: "squid", Label: "Squid", Signals: []signal{
		relayed(0.8, headerHas("Server", "squid")),
		relayed(0.8, headerPresent("X-Squid-Error")),
		relayed(0.5, headerHas("Via", "squid")),
		authored(0.7, bodyHas("Squid's error page", "ERROR", "The requested URL could not be retrieved")),
	}},
	// IIS, with Application Request Routing as the gateway.
	{Name: "iis", Label: "IIS", Signals: []signal{
		relayed(0.8, headerHas("Server", "microsoft-iis")),
		relayed(0.5, headerHas("X-Powered-By", "ARR")),
		relayed(0.3, headerHas("X-Powered-By", "ASP.NET")),
		authored(0.85, bodyHas("IIS ARR's gateway error page", "Web server received an invalid response while acting as a gateway or proxy server")),
		authored(0.85, bodyMatches("IIS's detailed error page", regexp.MustCompile(`HTTP Error 50\d\.\d+ - `), "HTTP Error 50")),
	}},
	{Name: "cloudflare", Label: "Cloudflare", Signals: []signal{
		relayed(0.7, headerHas("Server", "cloudflare")),
		relayed(0.8, headerPresent("CF-RAY")),
		relayed(0.3, headerPresent("CF-Cache-Status")),
		authored(0.85, bodyMatches("Cloudflare's branded error page", regexp.MustCompile(`(?i)cloudflare-nginx|cf-error-details|Cloudflare Ray ID|cdn-cgi/styles/cf\.errors\.css|error code: 5\d\d`),
			"loudflare", "LOUDFLARE", "cf-error-details", "CF-ERROR-DETAILS", "cf.errors.css", "rror code: 5", "RROR CODE: 5")),
	}, Note: cloudflareNote},
	// AWS Elastic Load Balancing: its pages always come with its Server.
	{Name: "aws-elb", Label: "an AWS load balancer", Signals: []signal{
		relayed(0.85, headerHas("Server", "awselb")),
	}},
	{Name: "cloudfront", Label: "Amazon CloudFront", Signals: []signal{
		relayed(0.85, headerPresent("X-Amz-Cf-Id")),
		relayed(0.5, headerPresent("X-Amz-Cf-Pop")),
		relayed(0.6, headerHas("Via", "cloudfront")),
		relayed(0.5, headerHas("X-Cache", "cloudfront")),
		relayed(0.6, headerHas("Server", "cloudfront")),
		authored(0.85, bodyHas("CloudFront's error page", "Generated by cloudfront (CloudFront)")),
	}},
	{Name: "akamai", Label: "Akamai", Signals: []signal{
		relayed(0.8, headerHas("Server", "akamaighost")),
		relayed(0.5, headerPresent("X-Akamai-Request-Id")),
		authored(0.7, bodyMatches("Akamai's error reference number", reAkamaiRef, "Reference", "edgesuite")),
	}},
	// Fastly runs Varnish, hence the Varnish-looking headers.
	{Name: "fastly", Label: "Fastly", Runs: "varnish", Signals: []signal{
		relayed(0.6, headerHas("X-Served-By", "cache-")),
		relayed(0.8, headerPresent("X-Fastly-Request-ID")),
		relayed(0.4, headerPresent("X-Timer")),
		authored(0.8, bodyHas("Fastly's error page", "Fastly error")),
		// Guru Mediation's details: the cache server, named after its POP
		// in capitals (cache-fra-eddf8230123-FRA), and two numbers.
		authored(0.8, bodyMatches("Fastly's error page", regexp.MustCompile(`Details: cache-[A-Za-z0-9-]+ \d+`), "Details: cache-")),
	}, Note: varnishNote, Upstream503: varnishBackend},
	// Google's front ends: the Google Front End and Google Cloud's
	// external Application Load Balancers, which are the same front ends
	// ("Via: 1.1 google" and the "temporary error" page are the load
	// balancer's).
	{Name: "google", Label: "Google's load balancer", Signals: []signal{
		relayed(0.6, headerHas("Via", "1.1 google")),
		relayed(0.75, func(h http.Header, _ string) (string, bool) {
			v := h.Get("Server")
			return "Server: " + v, v == "Google Frontend" || v == "gws" || v == "GFE/2.0" || v == "ESF"
		}),
		authored(0.85, bodyMatches("Google's error page", reGooglePage, "!!1</title>")),
		authored(0.7, bodyHas("Google Cloud load balancer's error page", "The server encountered a temporary error and could not complete your request.")),
	}},
	{Name: "azure-front-door", Label: "Azure Front Door", Signals: []signal{
		relayed(0.85, headerPresent("X-Azure-Ref")),
		relayed(0.4, headerPresent("X-MSEdge-Ref")),
		relayed(0.4, headerHas("X-Cache", "CONFIG_NOCACHE")),
		authored(0.8, bodyHas("Azure Front Door's error page", "Our services aren't available right now")),
	}},

	// lighttpd answers 503 when it cannot connect to any backend
	// (gw_backend.c: "all handlers ... are down"), 502 for a bad answer and
	// 504 for a slow one.
	{Name: "lighttpd", Label: "lighttpd", Signals: []signal{
		relayed(0.8, headerHas("Server", "lighttpd")),
		authored(0.6, bodyMatches("lighttpd's built-in error page", reLighttpdPage)),
	},
		Note:        on503(lighttpdOwnPage, "lighttpd answers 503 where most gateways answer 502: it could not connect to the server behind it."),
		Upstream503: lighttpdOwnPage,
	},
	{Name: "h2o", Label: "h2o", Signals: []signal{
		relayed(0.8, headerMatches("Server", regexp.MustCompile(`(?i)^h2o(/|$)`))),
		authored(0.4, plainBody("h2o's one-line proxy error", reH2OPlain)),
	}},
	{Name: "ats", Label: "Apache Traffic Server", Signals: []signal{
		relayed(0.8, headerMatches("Server", regexp.MustCompile(`^ATS(/|$)`))),
		relayed(0.7, headerHas("Via", "ApacheTrafficServer")),
		authored(0.85, bodyMatches("Traffic Server's error page (body factory)", reATSPage, `<FONT FACE="Helvetica,Arial"><B>`)),
	}},
	{Name: "nghttpx", Label: "nghttpx", Signals: []signal{
		relayed(0.8, headerHas("Server", "nghttpx")),
		relayed(0.6, headerHas("Via", "nghttpx")),
		authored(0.85, bodyHas("nghttpx's error page", "<footer>nghttpx</footer>")),
	}},
	// Pound sends no Server header. It answers 503 when it cannot connect
	// to a backend, with the cache headers of its own error replies.
	{Name: "pound", Label: "Pound", Signals: []signal{
		authored(0.5, func(h http.Header, _ string) (string, bool) {
			if h.Get("Expires") == "now" && h.Get("Pragma") == "no-cache" && h.Get("Cache-Control") == "no-cache,no-store" {
				return "Expires: now, Pragma: no-cache, Cache-control: no-cache,no-store (Pound's error reply)", true
			}
			return "", false
		}),
		authored(0.6, bodyMatches("Pound's built-in error page", rePoundPage)),
		authored(0.6, bodyMatches("Pound's default error text", rePound2Text)),
	},
		Note:        on503(poundOwnPage, "Pound answers 503 where most gateways answer 502: it could not connect to the server behind it."),
		Upstream503: poundOwnPage,
	},
	// OpenResty and Tengine are nginx distributions with their own names.
	{Name: "openresty", Label: "OpenResty", Runs: "nginx", Signals: []signal{
		relayed(0.8, headerMatches("Server", regexp.MustCompile(`(?i)^openresty`))),
		authored(0.85, bodyMatches("OpenResty's default error page", regexp.MustCompile(`<hr><center>openresty(/[\d.]+)?</center>`), "<hr><center>openresty")),
	}},
	{Name: "tengine", Label: "Tengine", Runs: "nginx", Signals: []signal{
		relayed(0.8, headerMatches("Server", regexp.MustCompile(`(?i)^tengine`))),
		authored(0.85, bodyMatches("Tengine's default error page", regexp.MustCompile(`Powered by Tengine|<hr><center>tengine(/[\d.]+)?</center>`), "Powered by Tengine", "<hr><center>tengine")),
	}},
	{Name: "litespeed", Label: "LiteSpeed", Signals: []signal{
		relayed(0.8, headerHas("Server", "litespeed")),
		relayed(0.5, headerPresent("X-LiteSpeed-Cache")),
		relayed(0.6, headerHas("X-Turbo-Charged-By", "litespeed")),
		authored(0.85, bodyHas("LiteSpeed's default error page", "Proudly powered by", "LiteSpeed Web Server")),
	}},
	// Kong (on OpenResty) answers with JSON messages of its own.
	{Name: "kong", Label: "Kong", Runs: "openresty", Signals: []signal{
		relayed(0.8, headerMatches("Server", regexp.MustCompile(`(?i)^kong/`))),
		relayed(0.7, headerMatches("Via", regexp.MustCompile(`(?i)\bkong/`))),
		relayed(0.6, headerPrefix("X-Kong-")),
		authored(0.8, bodyMatches("Kong's error message", regexp.MustCompile(`"message"\s*:\s*"(An invalid response was received from the upstream server|failure to get a peer from the ring-balancer|The upstream server is timing out|name resolution failed)`), `"message"`)),
	}},
	{Name: "f5-bigip", Label: "F5 BIG-IP", Signals: []signal{
		relayed(0.8, cookie("BIG-IP's persistence cookie", "BIGipServer")),
		relayed(0.7, cookie("BIG-IP APM's session cookie", "MRHSession", "LastMRH_Session", "F5_ST", "F5_fullWT")),
		relayed(0.8, headerMatches("Server", regexp.MustCompile(`(?i)^big-?ip`))),
		relayed(0.6, headerPresent("X-Cnection")),
		authored(0.85, bodyHas("BIG-IP ASM's rejection page", "The requested URL was rejected. Please consult with your administrator.")),
	}},
	{Name: "netscaler", Label: "Citrix NetScaler", Signals: []signal{
		relayed(0.8, cookie("NetScaler's persistence cookie", "NSC_")),
		relayed(0.7, headerHas("Via", "NS-CACHE")),
		// NetScaler renames the Connection header it closes.
		relayed(0.7, headerPresent("Cneonction")),
		relayed(0.7, headerPresent("nnCoection")),
		authored(0.7, bodyMatches("NetScaler's bare error page", reNetScalerPage)),
	}},
	{Name: "imperva", Label: "Imperva", Signals: []signal{
		relayed(0.85, headerPresent("X-Iinfo")),
		relayed(0.85, headerMatches("X-CDN", regexp.MustCompile(`(?i)imperva|incapsula`))),
		relayed(0.7, cookie("Imperva's session cookie", "incap_ses_", "visid_incap_", "nlbi_")),
		authored(0.85, bodyMatches("Imperva's error page", regexp.MustCompile(`_Incapsula_Resource|Incapsula incident ID|Imperva incident ID`), "Incapsula", "Imperva incident")),
	}},
	{Name: "sucuri", Label: "Sucuri", Signals: []signal{
		relayed(0.85, headerHas("Server", "sucuri")),
		relayed(0.85, headerPresent("X-Sucuri-ID")),
		relayed(0.5, headerPresent("X-Sucuri-Cache")),
		authored(0.85, bodyMatches("Sucuri's firewall page", regexp.MustCompile(`(?i)Sucuri WebSite Firewall|cloudproxy@sucuri\.net`), "Sucuri", "sucuri", "SUCURI")),
	}},
	{Name: "azure-app-gateway", Label: "Azure Application Gateway", Signals: []signal{
		relayed(0.85, headerHas("Server", "Microsoft-Azure-Application-Gateway")),
		authored(0.85, bodyMatches("Azure Application Gateway's error page", regexp.MustCompile(`<center>Microsoft-Azure-Application-Gateway(/v\d)?</center>`), "<center>Microsoft-Azure-Application-Gateway")),
	}},
	// Heroku's router answers 503 with its "Application error" page for
	// every failure of the app behind it (H10 crashed, H12 timed out, H13
	// closed the connection...).
	{Name: "heroku", Label: "Heroku's router", Signals: []signal{
		relayed(0.8, headerHas("Via", "vegur")),
		relayed(0.8, headerHas("Via", "heroku-router")), // Router 2.0
		relayed(0.75, headerMatches("Server", regexp.MustCompile(`(?i)^heroku`))),
		relayed(0.3, headerMatches("Server", regexp.MustCompile(`^Cowboy$`))),
		authored(0.85, bodyHas("Heroku's \"Application error\" page", "herokucdn.com/error-pages/")),
	},
		Note:        on503(herokuAppError, "Heroku's router answers 503 \"Application error\" whenever the app behind it fails (crashed, timed out after 30 s, or hung up): `heroku logs` names the H-code."),
		Upstream503: herokuAppError,
	},
	{Name: "vercel", Label: "Vercel", Signals: []signal{
		relayed(0.8, headerHas("Server", "vercel")),
		relayed(0.8, headerPresent("X-Vercel-Id")),
		// Only Vercel's edge sets it, on errors it generated.
		authored(0.85, headerPresent("X-Vercel-Error")),
		authored(0.6, bodyMatches("Vercel's error page", reVercelPage, "Code: ")),
	}},
	{Name: "netlify", Label: "Netlify", Signals: []signal{
		relayed(0.8, headerHas("Server", "netlify")),
		relayed(0.8, headerPresent("X-Nf-Request-Id")),
	}},
	{Name: "fly", Label: "Fly.io's proxy", Signals: []signal{
		relayed(0.8, headerMatches("Server", regexp.MustCompile(`(?i)^fly/`))),
		relayed(0.8, headerPresent("Fly-Request-Id")),
		relayed(0.6, headerHas("Via", "fly.io")),
	}},
}

// GatewayNames are the products the fingerprint knows, in table order.
var GatewayNames = func() []string {
	names := make([]string, len(gateways))
	for i, g := range gateways {
		names[i] = g.Name
	}
	return names
}()

// gatewayIndex finds a product of the table by name.
var gatewayIndex = func() map[string]*gatewayInfo {
	m := make(map[string]*gatewayInfo, len(gateways))
	for i := range gateways {
		m[gateways[i].Name] = &gateways[i]
	}
	return m
}()

// GatewayLabel returns the display name of a gateway product.
func GatewayLabel(name string) string {
	if g, ok := gatewayIndex[name]; ok {
		return g.Label
	}
	return name
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
	for i := range gateways {
		gi := &gateways[i]
		for _, s := range gi.Signals {
			desc, ok := s.match(h, body)
			if !ok {
				continue
			}
			sc := scores[gi.Name]
			if sc == nil {
				sc = &score{miss: 1}
				scores[gi.Name] = sc
			}
			sc.miss *= 1 - s.weight
			sc.page = sc.page || s.page
			sc.signals = append(sc.signals, sanitizeHeader(desc))
		}
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
	// A product built on another (Fastly on Varnish, Kong on OpenResty):
	// the base's look-alike evidence next to the product's own is the
	// product's, not a second product, unless the base wrote the page.
	for _, gi := range gateways {
		if gi.Runs == names[0] && scores[gi.Name] != nil && !scores[names[0]].page {
			rest := slices.DeleteFunc(slices.Clone(names[1:]), func(n string) bool { return n == gi.Name })
			names = append([]string{gi.Name}, rest...)
			break
		}
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
	if gi := gatewayIndex[g.Name]; gi.Note != nil {
		g.Note = gi.Note(status, body)
	}
	return g
}

// upstream503 reports whether a 503 from g, with this body, is the
// product's way of saying its upstream failed.
func upstream503(g Gateway, body string) bool {
	gi, ok := gatewayIndex[g.Name]
	return ok && gi.Upstream503 != nil && gi.Upstream503(body)
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
