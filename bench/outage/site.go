//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// nginxPage is the page nginx 1.24 sends with its own 502.
const nginxPage = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
	"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n"

// fleet is a set of broken sites sharing one dead upstream. It counts what
// reaches them all: requests in flight together, the most seen at once.
type fleet struct {
	sites    []*site
	upstream *url.URL

	inflight    atomic.Int64
	maxInflight atomic.Int64
}

// site is one broken site: nginx (a real reverse proxy dressed as nginx)
// in front of an application that is down.
type site struct {
	fleet *fleet
	url   string
	srv   *http.Server

	requests atomic.Int64 // requests that reached the proxy
	conns    atomic.Int64 // TCP connections accepted
	bare     atomic.Int64 // connections closed without a request: the probes' plain TCP connects

	mu          sync.Mutex
	active      map[net.Conn]bool // connections seen, and whether a request came on them
	first, last time.Time         // first connection accepted, last request answered
}

// deadUpstream returns an address on ip where nothing listens: a port
// taken from the kernel and given back.
func deadUpstream(ip string) (*url.URL, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	return &url.URL{Scheme: "http", Host: addr}, nil
}

// newFleet starts one broken site on each address in ips (port chosen by
// the kernel), all in front of one dead upstream on upstreamIP.
func newFleet(ips []string, upstreamIP string) (*fleet, error) {
	up, err := deadUpstream(upstreamIP)
	if err != nil {
		return nil, fmt.Errorf("dead upstream: %w", err)
	}
	f := &fleet{upstream: up}
	for _, ip := range ips {
		s, err := f.start(ip)
		if err != nil {
			f.close()
			return nil, fmt.Errorf("broken site on %s: %w", ip, err)
		}
		f.sites = append(f.sites, s)
	}
	return f, nil
}

func (f *fleet) start(ip string) (*site, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	s := &site{fleet: f, url: "http://" + ln.Addr().String() + "/", active: map[net.Conn]bool{}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(f.upstream)
			pr.Out.Host = pr.In.Host
		},
		Transport: &http.Transport{
			Proxy:             nil, // never leave loopback, whatever the environment says
			DialContext:       (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			DisableKeepAlives: true,
		},
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set("Server", "nginx/1.24.0")
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h := w.Header()
			h.Set("Server", "nginx/1.24.0")
			h.Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, nginxPage)
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	s.srv = &http.Server{
		Handler:           s.count(proxy),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnState:         s.connState,
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("broken site %s: %v", s.url, err)
		}
	}()
	return s, nil
}

// count wraps the proxy: every request is counted, with those in flight
// over the whole fleet, and ends the site's activity window.
func (s *site) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		n := s.fleet.inflight.Add(1)
		for m := s.fleet.maxInflight.Load(); n > m && !s.fleet.maxInflight.CompareAndSwap(m, n); m = s.fleet.maxInflight.Load() {
		}
		next.ServeHTTP(w, r)
		s.fleet.inflight.Add(-1)
		s.mu.Lock()
		s.last = time.Now()
		s.mu.Unlock()
	})
}

func (s *site) connState(c net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state {
	case http.StateNew:
		s.conns.Add(1)
		s.active[c] = false
		if s.first.IsZero() {
			s.first = time.Now()
		}
	case http.StateActive:
		s.active[c] = true
	case http.StateClosed, http.StateHijacked:
		if used, ok := s.active[c]; ok && !used {
			s.bare.Add(1)
		}
		delete(s.active, c)
	}
}

// window is the span from the first connection to the last answer: inside
// the probe run that caused them, when the site was probed once.
func (s *site) window() (first, last time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, s.last
}

func (f *fleet) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range f.sites {
		s.srv.Shutdown(ctx)
	}
}

// totals sums what reached the sites.
func (f *fleet) totals() (requests, conns, bare int64) {
	for _, s := range f.sites {
		requests += s.requests.Load()
		conns += s.conns.Load()
		bare += s.bare.Load()
	}
	return
}

// mostAtOnce is the largest number of sites whose activity windows
// overlap. A site probed once is busy only within that probe run, so this
// is at most the probes that ran at once.
func (f *fleet) mostAtOnce() int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, s := range f.sites {
		first, last := s.window()
		if first.IsZero() || last.IsZero() {
			continue
		}
		edges = append(edges, edge{first, +1}, edge{last, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta // an end before a start at the same instant
	})
	most, n := 0, 0
	for _, e := range edges {
		n += e.delta
		most = max(most, n)
	}
	return most
}
