//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// pollClient talks to the server from its own address, 127.0.0.1, never
// through a proxy.
var pollClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 32},
	Timeout:   10 * time.Second,
}

// report is one person reporting a broken site: the POST /api/cases and,
// when a case was made, the polling of it until its verdict.
type report struct {
	from   netip.Addr
	target string

	sent, answered time.Duration // since the first report was sent
	status         int           // 0: no answer
	failure        string        // transport error, or the body of an unexpected answer
	refusal        string        // a 429's message
	retryAfter     string
	token          string

	verdictAt time.Duration // since the first report was sent; 0 while none
	verdict   string
	late      time.Duration // since the read before, which saw no verdict: how late verdictAt may be
}

// run is one burst of reports and what came of them.
type run struct {
	t0      time.Time
	reports []*report
	polls   atomic.Int64
}

// burst sends one report per target, each from its own client address,
// spread evenly over spread (all at once when 0), reads every case made
// every pollEvery (at most pollRate reads a second in all, so that the
// polling does not take the cores the server needs) until it has a
// verdict or wait has passed since the first report, and returns when all
// is done.
func burst(ctx context.Context, base string, targets []string, from []netip.Addr, spread, wait, pollEvery time.Duration, pollRate int) *run {
	r := &run{reports: make([]*report, len(targets))}
	reads := rate.NewLimiter(rate.Limit(pollRate), max(pollRate/20, 1))
	var wg sync.WaitGroup
	r.t0 = time.Now()
	deadline := r.t0.Add(wait)
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(5*time.Second))
	defer cancel()
	for i, target := range targets {
		if spread > 0 {
			slot := r.t0.Add(spread * time.Duration(i) / time.Duration(len(targets)))
			select {
			case <-time.After(time.Until(slot)):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break // the rest stay unsent, and are counted so
		}
		rep := &report{from: from[i], target: target}
		r.reports[i] = rep
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.send(ctx, base, rep)
			if rep.token != "" {
				r.poll(ctx, base, rep, deadline, pollEvery, reads)
			}
		}()
	}
	wg.Wait()
	return r
}

// send posts the report from the client's own loopback address, so that
// the server sees a distinct peer (no proxy headers involved).
func (r *run) send(ctx context.Context, base string, rep *report) {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: rep.from.AsSlice()}, Timeout: 5 * time.Second}
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, DialContext: dialer.DialContext, DisableKeepAlives: true},
		Timeout:   20 * time.Second,
	}
	body, _ := json.Marshal(map[string]string{"url": rep.target})
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/cases", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	rep.sent = time.Since(r.t0)
	resp, err := client.Do(req)
	rep.answered = time.Since(r.t0)
	if err != nil {
		rep.failure = err.Error()
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	rep.status = resp.StatusCode
	var doc struct {
		Token string `json:"token"`
		Error string `json:"error"`
	}
	json.Unmarshal(b, &doc)
	switch resp.StatusCode {
	case http.StatusCreated:
		rep.token = doc.Token
		if rep.token == "" {
			rep.failure = fmt.Sprintf("201 without a token: %.100s", b)
		}
	case http.StatusTooManyRequests:
		rep.refusal, rep.retryAfter = doc.Error, resp.Header.Get("Retry-After")
	default:
		rep.failure = fmt.Sprintf("%d: %.100s", resp.StatusCode, b)
	}
}

// poll reads the case until its probe run is done with a verdict.
func (r *run) poll(ctx context.Context, base string, rep *report, deadline time.Time, every time.Duration, reads *rate.Limiter) {
	before := rep.answered
	for time.Now().Before(deadline) {
		if reads.Wait(ctx) != nil {
			return
		}
		code, err := r.verdict(ctx, base, rep.token)
		at := time.Since(r.t0)
		if err == nil && code != "" {
			rep.verdictAt, rep.verdict, rep.late = at, code, at-before
			return
		}
		before = at
		select {
		case <-time.After(every):
		case <-ctx.Done():
		}
	}
}

// verdict returns the case's verdict code once its probe run is done.
func (r *run) verdict(ctx context.Context, base, token string) (string, error) {
	r.polls.Add(1)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/cases/"+token, nil)
	resp, err := pollClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return "", fmt.Errorf("GET /api/cases/%s: %d", token, resp.StatusCode)
	}
	var doc struct {
		Probe struct {
			State  string `json:"state"`
			Report *struct {
				Verdict struct {
					Code string `json:"code"`
				} `json:"verdict"`
			} `json:"report"`
		} `json:"probe"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return "", err
	}
	if doc.Probe.State != "done" || doc.Probe.Report == nil {
		return "", nil
	}
	return doc.Probe.Report.Verdict.Code, nil
}

// clientAddrs returns n distinct loopback addresses in 127.second.0.0/16,
// none ending in .0 or .255.
func clientAddrs(second byte, n int) []netip.Addr {
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{127, second, byte(i / 250), byte(i%250 + 1)})
	}
	return addrs
}
