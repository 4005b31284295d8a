//go:build linux

package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatecheck/gatecheck/wizard/sqlite/pgtest"
)

// cluster is the outage against several gatecheck instances on one
// PostgreSQL database, behind a round-robin proxy on loopback (which
// passes each client's address on in X-Forwarded-For, as a load balancer
// does); with kill, the instance that took the first report (and so
// probes the site) is killed with SIGKILL half-way through the reports.
func cluster(ctx context.Context, bin, dir string, cfg config, instances int, kill bool) (*table, error) {
	pg, err := pgtest.Start(ctx)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL for the cluster scenario (apt-get install postgresql): %w", err)
	}
	defer pg.Stop()
	dbURL, err := pg.CreateDatabase(ctx, "outage")
	if err != nil {
		return nil, err
	}
	f, err := newFleet([]string{"127.0.2.1"}, "127.0.9.1")
	if err != nil {
		return nil, err
	}
	defer f.close()
	var gs []*gatecheck
	defer func() {
		for _, g := range gs {
			g.kill()
		}
	}()
	// The default lease (30 s) unless an instance is killed: then a
	// short one, so that its jobs are taken over within the run.
	lease := "30s"
	if kill {
		lease = "3s"
	}
	for i := range instances {
		g, err := startServerOn(ctx, bin, dir, fmt.Sprintf("cluster%d", i), dbURL,
			append([]string{"--trusted-proxy", "127.0.0.1/32", "--probe-lease", lease}, cfg.serverFlags...))
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	lb, err := newRoundRobin(gs)
	if err != nil {
		return nil, err
	}
	defer lb.close()

	load := loadavg()
	target := f.sites[0].url
	targets := make([]string, cfg.reports)
	for i := range targets {
		targets[i] = target
	}
	what := "none killed"
	if kill {
		what = "the first instance (the site's prober) SIGKILLed half-way"
		time.AfterFunc(cfg.spread/2, func() {
			lb.drop(0)
			gs[0].kill()
			log.Printf("cluster: killed instance 0")
		})
	}
	log.Printf("cluster: %d instances, %d reports of %s within %s, %s", instances, cfg.reports, target, secs(cfg.spread), what)
	r := burst(ctx, lb.base, targets, clientAddrs(3, cfg.reports), cfg.spread, cfg.wait, cfg.pollEvery, cfg.pollRate)
	requests, conns, bare := f.totals()
	s := summarise(r)
	t := &table{title: fmt.Sprintf("Cluster: %d instances on one PostgreSQL database, %d reports of one broken site within %s, %s", instances, cfg.reports, secs(cfg.spread), what)}
	t.note("Load average %s at the start of the scenario. Each instance is `gatecheck serve --db postgres://…` on its own port, behind a round-robin reverse proxy on loopback that sends each client's address in X-Forwarded-For; PostgreSQL runs on this machine too. The reports and the reads of the cases go through the proxy.", load)
	t.add("reports sent", fmt.Sprintf("%d, the last %s after the first", len(r.reports), secs(s.lastSent)), "", "")
	lost := 0 // answered 502 by the proxy: in flight at the killed instance
	for _, rep := range r.reports {
		if rep != nil && rep.status == http.StatusBadGateway {
			lost++
		}
	}
	goalCreated := fmt.Sprint(cfg.reports)
	if kill {
		goalCreated = fmt.Sprintf("all but those in flight at the killed instance (%d, answered 502 by the proxy)", lost)
	}
	t.add("cases created (201)", fmt.Sprint(s.created), goalCreated, passIf(s.created+lost == cfg.reports && (kill || lost == 0)))
	t.add("refused (429)", s.refusedText(), "0", passIf(s.refused == 0))
	t.add("other answers", s.otherText(), "", "")
	t.add("cases with a verdict", s.verdictsText(), "every case created", passIf(s.verdicts == s.created))
	t.add("first report → verdict, p50 / p95 / max", s.verdictTimes(), fmt.Sprintf("each ≤ %s", secs(cfg.goalVerdict)), passIf(s.verdicts == s.created && s.slowest <= cfg.goalVerdict))
	goalReq := cfg.goalRequests
	if kill {
		goalReq *= 2
	}
	t.add("requests reaching the site", fmt.Sprint(requests), fmt.Sprintf("≤ %d", goalReq), passIf(requests <= int64(goalReq)))
	t.add("TCP connections to the site", fmt.Sprintf("%d, of which %d without a request", conns, bare), "", "")
	t.add("requests through the proxy, per instance", lb.counts(), "", "")
	return t, nil
}

// startServerOn starts bin serve with the database dbURL rather than a
// file of its own.
func startServerOn(ctx context.Context, bin, dir, name, dbURL string, extra []string) (*gatecheck, error) {
	return startServerArgs(ctx, bin, dir, name, append([]string{"serve", "--addr", "127.0.0.1:0", "--db", dbURL, "--allow-net", "127.0.0.0/8"}, extra...))
}

// roundRobin is a reverse proxy on loopback that sends each request to
// the next live instance.
type roundRobin struct {
	base  string
	srv   *http.Server
	mu    sync.Mutex
	live  []bool
	next  int
	sent  []atomic.Int64
	proxy []*httputil.ReverseProxy
}

func newRoundRobin(gs []*gatecheck) (*roundRobin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	lb := &roundRobin{base: "http://" + ln.Addr().String(), live: make([]bool, len(gs)), sent: make([]atomic.Int64, len(gs))}
	transport := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 256}
	for i, g := range gs {
		u, _ := url.Parse(g.base)
		p := httputil.NewSingleHostReverseProxy(u)
		p.Transport = transport
		lb.proxy, lb.live[i] = append(lb.proxy, p), true
	}
	lb.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lb.mu.Lock()
		i := -1
		for range lb.live {
			n := lb.next % len(lb.live)
			lb.next++
			if lb.live[n] {
				i = n
				break
			}
		}
		lb.mu.Unlock()
		if i < 0 {
			http.Error(w, "no instance left", http.StatusBadGateway)
			return
		}
		lb.sent[i].Add(1)
		lb.proxy[i].ServeHTTP(w, r)
	})}
	go lb.srv.Serve(ln)
	return lb, nil
}

// drop takes an instance out of the rotation.
func (lb *roundRobin) drop(i int) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.live[i] = false
}

func (lb *roundRobin) counts() string {
	s := ""
	for i := range lb.sent {
		if i > 0 {
			s += " / "
		}
		s += fmt.Sprint(lb.sent[i].Load())
	}
	return s
}

func (lb *roundRobin) close() { lb.srv.Close() }
