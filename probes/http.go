package probes

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// newTransport returns the transport of one diagnosis: guarded dialer, no
// proxy from the environment, fresh connections for every request (samples
// must not share one), bounded headers.
func (p *Prober) newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            p.dial,
		TLSClientConfig:        &tls.Config{RootCAs: p.cfg.RootCAs},
		TLSHandshakeTimeout:    p.cfg.TLSTimeout,
		DisableKeepAlives:      true,
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: p.cfg.MaxHeaderBytes,
	}
}

// fetch GETs target and follows up to MaxRedirects redirects by hand, so
// every hop is timed and every hop's address passes the guard at dial time.
func (p *Prober) fetch(ctx context.Context, tr *http.Transport, target string) *HTTPResult {
	start := time.Now()
	res := &HTTPResult{URL: target}
	defer func() { res.DurationMS = ms(time.Since(start)) }()
	seen := map[string]bool{}
	cur := target
	for {
		hop, next, kind, phase, err := p.hop(ctx, tr, cur)
		res.Hops = append(res.Hops, hop)
		res.FinalURL = cur
		if err != nil {
			res.Error, res.ErrorKind, res.Phase = plainError(err), kind, phase
			if kind == KindTimeout && phase == "body" {
				res.Error = "the body did not finish arriving in time"
			}
			if hop.Status != 0 && phase == "body" {
				// The status and headers arrived: that is the answer.
				res.Status = hop.Status
				res.Error, res.ErrorKind, res.Phase = "", "", ""
			}
			return res
		}
		res.Status = hop.Status
		if next == "" {
			return res
		}
		seen[cur] = true
		if seen[next] {
			res.Error, res.ErrorKind, res.Phase = "redirect loop: "+next+" redirects back to an address already visited", KindRedirectLoop, "response"
			return res
		}
		if len(res.Hops) > p.cfg.MaxRedirects {
			res.Error, res.ErrorKind, res.Phase = "more than "+strconv.Itoa(p.cfg.MaxRedirects)+" redirects", KindRedirectLoop, "response"
			return res
		}
		cur = next
	}
}

type hopTrace struct {
	mu                                  sync.Mutex
	start, dnsStart, dnsDone            time.Time
	connStart, connDone                 time.Time
	tlsStart, tlsDone, wrote, firstByte time.Time
	remote                              string
	reused                              bool
}

func (t *hopTrace) set(f *time.Time) {
	t.mu.Lock()
	if f.IsZero() {
		*f = time.Now()
	}
	t.mu.Unlock()
}

func (t *hopTrace) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart:     func(httptrace.DNSStartInfo) { t.set(&t.dnsStart) },
		DNSDone:      func(httptrace.DNSDoneInfo) { t.set(&t.dnsDone) },
		ConnectStart: func(string, string) { t.set(&t.connStart) },
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				t.set(&t.connDone)
			}
		},
		TLSHandshakeStart: func() { t.set(&t.tlsStart) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err == nil {
				t.set(&t.tlsDone)
			}
		},
		GotConn: func(i httptrace.GotConnInfo) {
			t.mu.Lock()
			t.remote = i.Conn.RemoteAddr().String()
			t.reused = t.reused || i.Reused
			t.mu.Unlock()
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { t.set(&t.wrote) },
		GotFirstResponseByte: func() { t.set(&t.firstByte) },
	}
}

// phase names where a request that failed had got to.
func (t *hopTrace) phase() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case !t.firstByte.IsZero():
		return "headers"
	case !t.wrote.IsZero():
		return "response"
	case !t.tlsStart.IsZero() && t.tlsDone.IsZero():
		return "tls"
	case !t.connDone.IsZero() && t.tlsStart.IsZero():
		return "response"
	case !t.connDone.IsZero():
		return "tls"
	case !t.dnsStart.IsZero() && t.dnsDone.IsZero():
		return "dns"
	}
	return "connect"
}

func span(a, b time.Time) float64 {
	if a.IsZero() || b.IsZero() {
		return 0
	}
	return ms(b.Sub(a))
}

func (t *hopTrace) timing(url string, end time.Time) HopTiming {
	t.mu.Lock()
	defer t.mu.Unlock()
	return HopTiming{
		URL:        url,
		DNSMS:      span(t.dnsStart, t.dnsDone),
		ConnectMS:  span(t.connStart, t.connDone),
		TLSMS:      span(t.tlsStart, t.tlsDone),
		WaitMS:     span(t.wrote, t.firstByte),
		TransferMS: span(t.firstByte, end),
		TotalMS:    span(t.start, end),
	}
}

// hop makes one request. next is the resolved Location of a redirect.
func (p *Prober) hop(ctx context.Context, tr *http.Transport, target string) (hop Hop, next string, kind Kind, phase string, err error) {
	hop.URL = target
	tt := &hopTrace{start: time.Now()}
	defer func() {
		hop.Timing = tt.timing(target, time.Now())
		hop.RemoteAddr = tt.remote
		hop.Reused = tt.reused
		if err != nil {
			hop.Error = plainError(err)
		}
	}()
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, tt.clientTrace()), http.MethodGet, target, nil)
	if err != nil {
		return hop, "", KindOther, "connect", err
	}
	req.Header.Set("User-Agent", p.cfg.UserAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		kind = classify(err)
		return hop, "", kind, tt.phase(), err
	}
	defer resp.Body.Close()
	hop.Status, hop.Proto, hop.Header = resp.StatusCode, resp.Proto, resp.Header
	hop.StatusText = http.StatusText(resp.StatusCode)
	// The limit applies after the transport's gzip decoding: a small
	// compressed body cannot grow past it in memory.
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, p.cfg.MaxBody+1))
	if int64(len(body)) > p.cfg.MaxBody {
		body, hop.BodyTruncated = body[:p.cfg.MaxBody], true
	}
	hop.Body = string(body)
	if rerr != nil && !hop.BodyTruncated {
		return hop, "", classify(rerr), "body", rerr
	}
	if isRedirect(resp.StatusCode) {
		loc := resp.Header.Get("Location")
		if loc == "" {
			return hop, "", "", "", nil
		}
		u, perr := url.Parse(loc)
		if perr != nil {
			return hop, "", KindProtocol, "response", &InputError{Reason: "the server redirected to an invalid address " + quoteShort(loc)}
		}
		abs := req.URL.ResolveReference(u)
		t, nerr := Normalize(abs.String(), p.cfg.Ports)
		if nerr != nil {
			return hop, "", KindProtocol, "response", &InputError{Reason: "the server redirected to " + quoteShort(loc) + ": " + nerr.Error()}
		}
		return hop, t.String(), "", "", nil
	}
	return hop, "", "", "", nil
}

func isRedirect(code int) bool {
	switch code {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

func quoteShort(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return `"` + strings.ToValidUTF8(s, "�") + `"`
}
