//go:build linux

// Command outage measures gatecheck in an outage (issue 9): many people
// reporting one broken site at once, and many broken sites at once. It
// builds ./cmd/gatecheck, runs it as a child process on loopback with a
// fresh SQLite file per scenario, runs the broken sites itself (nginx in
// front of a dead upstream, counting what reaches them), and prints a
// markdown table with PASS/FAIL against the goals.
//
//	go run ./bench/outage [-strict] [-scenario all|one|sites] [-server-flag=--flag=value]...
//
// Every address it touches is in 127.0.0.0/8: the server on 127.0.0.1,
// clients on 127.1-2.x.y, broken sites on 127.0.2.x, the dead upstream on
// 127.0.9.1. Linux routes all of 127.0.0.0/8 to the loopback interface.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is what the flags set.
type config struct {
	reports, sites int
	spread         time.Duration
	wait           time.Duration
	pollEvery      time.Duration
	pollRate       int
	goalVerdict    time.Duration
	goalRequests   int
	serverFlags    []string
	workers, queue int // as the server is told, for the checks
}

type flagList []string

func (l *flagList) String() string     { return strings.Join(*l, " ") }
func (l *flagList) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("outage: ")
	os.Exit(bench())
}

func bench() int {
	var cfg config
	var extra flagList
	scenario := flag.String("scenario", "all", "which to run: all, one (one site, many reports), sites (many sites), or cluster (one site, several instances on PostgreSQL; not in all)")
	instances := flag.Int("instances", 3, "cluster: gatecheck instances on one PostgreSQL database")
	kill := flag.Bool("kill", false, "cluster: SIGKILL the site's prober half-way through the reports")
	flag.IntVar(&cfg.reports, "reports", 300, "reports of the one broken site, each from its own client address")
	flag.DurationVar(&cfg.spread, "spread", time.Second, "the reports of the one site are sent evenly over this time")
	flag.IntVar(&cfg.sites, "sites", 50, "distinct broken sites reported at once, one report each")
	flag.DurationVar(&cfg.wait, "wait", 30*time.Second, "how long after the first report to wait for verdicts")
	flag.DurationVar(&cfg.pollEvery, "poll", 250*time.Millisecond, "how often each case is read while it waits for its verdict")
	flag.IntVar(&cfg.pollRate, "poll-rate", 400, "case reads a second at most, over all cases")
	flag.DurationVar(&cfg.goalVerdict, "goal-verdict", 10*time.Second, "goal: every verdict within this time of the first report")
	flag.IntVar(&cfg.goalRequests, "goal-requests", 30, "goal: requests reaching the one broken site at most")
	flag.Var(&extra, "server-flag", "extra argument for gatecheck serve (repeatable), e.g. -server-flag=--reuse-window=60s")
	strict := flag.Bool("strict", false, "exit 1 when a goal is missed")
	keep := flag.Bool("keep", false, "keep the work folder (binary, databases, server logs)")
	limit := flag.Duration("deadline", 115*time.Second, "the whole run, build included, ends by then")
	flag.Parse()
	if flag.NArg() > 0 || !slices.Contains([]string{"all", "one", "sites", "cluster"}, *scenario) || *instances < 1 || cfg.reports < 1 || cfg.reports > 25000 || cfg.sites < 1 || cfg.sites > 250 || cfg.pollRate < 1 {
		flag.Usage()
		return 2
	}
	cfg.serverFlags = extra
	cfg.workers, cfg.queue = serverInt(extra, "probe-workers", 4), serverInt(extra, "probe-queue", 50)

	loadBefore := loadavg()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()

	root, err := moduleRoot(ctx)
	if err != nil {
		log.Print(err)
		return 2
	}
	dir, err := os.MkdirTemp("", "gatecheck-outage-")
	if err != nil {
		log.Print(err)
		return 2
	}
	if *keep {
		defer log.Printf("kept %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	rev := revision(ctx, root)
	log.Printf("building ./cmd/gatecheck (%s) into %s", rev, dir)
	bin, err := build(ctx, root, dir)
	if err != nil {
		log.Print(err)
		return 2
	}

	var tables []*table
	broken := false // a scenario could not run
	for _, sc := range []struct {
		name string
		run  func(context.Context, string, string, config) (*table, error)
	}{{"one", oneSite}, {"sites", manySites}, {"cluster", func(ctx context.Context, bin, dir string, cfg config) (*table, error) {
		return cluster(ctx, bin, dir, cfg, *instances, *kill)
	}}} {
		if sc.name == "cluster" && *scenario != "cluster" {
			continue
		}
		if *scenario != "all" && *scenario != sc.name {
			continue
		}
		t, err := sc.run(ctx, bin, dir, cfg)
		if err != nil {
			log.Print(err)
			broken = true
			continue
		}
		tables = append(tables, t)
	}

	flags := "none"
	if len(extra) > 0 {
		flags = "`" + strings.Join(extra, " ") + "`"
	}
	fmt.Printf("\n## gatecheck outage benchmark\n\n")
	fmt.Printf("%s, %d cores, load average %s before the run, %s after; code %s; server flags beyond `--allow-net 127.0.0.0/8`: %s (%d probe workers, queue %d).\n",
		time.Now().Format("2006-01-02 15:04"), runtime.NumCPU(), loadBefore, loadavg(), rev, flags, cfg.workers, cfg.queue)
	failed := false
	for _, t := range tables {
		t.print(os.Stdout)
		failed = failed || t.failed()
	}
	fmt.Println()
	if broken {
		fmt.Println("Result: a scenario could not run (see above).")
		return 2
	}
	if err := ctx.Err(); err != nil {
		fmt.Printf("Result: cut short (%v); the numbers are partial.\n", context.Cause(ctx))
		return 2
	}
	if failed {
		fmt.Println("Result: FAIL (a goal was missed).")
		if *strict {
			return 1
		}
	} else {
		fmt.Println("Result: PASS.")
	}
	return 0
}

// oneSite is the outage: many people report the same broken site within a
// second, each from their own address.
func oneSite(ctx context.Context, bin, dir string, cfg config) (*table, error) {
	f, err := newFleet([]string{"127.0.2.1"}, "127.0.9.1")
	if err != nil {
		return nil, err
	}
	defer f.close()
	g, err := startServer(ctx, bin, dir, "one", cfg.serverFlags)
	if err != nil {
		return nil, err
	}
	load := loadavg()
	target := f.sites[0].url
	targets := make([]string, cfg.reports)
	for i := range targets {
		targets[i] = target
	}
	log.Printf("one site: %d reports of %s within %s", cfg.reports, target, secs(cfg.spread))
	cpu0 := g.cpu()
	r := burst(ctx, g.base, targets, clientAddrs(1, cfg.reports), cfg.spread, cfg.wait, cfg.pollEvery, cfg.pollRate)
	cpu := g.cpu() - cpu0
	requests, conns, bare := f.totals()
	code, stopErr := g.stop(15 * time.Second)

	s := summarise(r)
	t := &table{title: fmt.Sprintf("One site: %d reports of one broken site from %d client addresses within %s", cfg.reports, cfg.reports, secs(cfg.spread))}
	t.note("Load average %s at the start of the scenario. The site is nginx (a reverse proxy) in front of a dead upstream. Each case is read every %s until it has a verdict (at most %d reads a second in all), so a verdict is seen a little after it is ready: the table says how late at most.", load, secs(cfg.pollEvery), cfg.pollRate)
	t.add("reports sent", fmt.Sprintf("%d, the last %s after the first", len(r.reports), secs(s.lastSent)), "", "")
	t.add("cases created (201)", fmt.Sprint(s.created), fmt.Sprint(cfg.reports), passIf(s.created == cfg.reports))
	t.add("refused (429)", s.refusedText(), "", "")
	t.add("other answers", s.otherText(), "none", passIf(len(s.others) == 0))
	t.add("report answered (201 or 429), p50 / p95 / max", s.answerText(), "", "")
	t.add("cases with a verdict", s.verdictsText(), fmt.Sprint(cfg.reports), passIf(s.verdicts == cfg.reports))
	t.add("first report → verdict, p50 / p95 / max", s.verdictTimes(), fmt.Sprintf("all %d, each ≤ %s", cfg.reports, secs(cfg.goalVerdict)),
		passIf(s.verdicts == cfg.reports && s.slowest <= cfg.goalVerdict))
	t.add("requests reaching the site (until the last verdict)", fmt.Sprint(requests), fmt.Sprintf("≤ %d", cfg.goalRequests), passIf(requests <= int64(cfg.goalRequests)))
	t.add("TCP connections to the site", fmt.Sprintf("%d, of which %d without a request (the probes' plain TCP connect: about one per probe run)", conns, bare), "", "")
	t.serverRow(g, cpu, r.polls.Load(), code, stopErr)
	return t, nil
}

// manySites is the wide outage: many distinct sites broken at once, one
// report each, from distinct addresses. The queue must still bound the work.
func manySites(ctx context.Context, bin, dir string, cfg config) (*table, error) {
	ips := make([]string, cfg.sites)
	for i := range ips {
		ips[i] = fmt.Sprintf("127.0.2.%d", i+1)
	}
	f, err := newFleet(ips, "127.0.9.1")
	if err != nil {
		return nil, err
	}
	defer f.close()
	g, err := startServer(ctx, bin, dir, "sites", cfg.serverFlags)
	if err != nil {
		return nil, err
	}
	load := loadavg()
	targets := make([]string, cfg.sites)
	for i, s := range f.sites {
		targets[i] = s.url
	}
	log.Printf("%d sites: one report each, all at once", cfg.sites)
	cpu0 := g.cpu()
	r := burst(ctx, g.base, targets, clientAddrs(2, cfg.sites), 0, cfg.wait, cfg.pollEvery, cfg.pollRate)
	cpu := g.cpu() - cpu0
	requests, conns, bare := f.totals()
	var perSite, connsPerSite []int
	for _, s := range f.sites {
		perSite = append(perSite, int(s.requests.Load()))
		connsPerSite = append(connsPerSite, int(s.conns.Load()))
	}
	code, stopErr := g.stop(15 * time.Second)

	s := summarise(r)
	capacity := cfg.workers + cfg.queue
	t := &table{title: fmt.Sprintf("%d sites: %d distinct broken sites (one host each), one report each, all at once", cfg.sites, cfg.sites)}
	t.note("Load average %s at the start of the scenario. Each site is nginx in front of a dead upstream on its own address; the server takes %d probe runs at once and %d waiting, so %d distinct targets fit without a 429.", load, cfg.workers, cfg.queue, capacity)
	want := min(cfg.sites, capacity)
	t.add("reports sent", fmt.Sprintf("%d, the last %s after the first", len(r.reports), secs(s.lastSent)), "", "")
	t.add("cases created (201)", fmt.Sprint(s.created), fmt.Sprintf("≥ %d", want), passIf(s.created >= want))
	goal429 := "0"
	if cfg.sites > capacity {
		goal429 = fmt.Sprintf("≤ %d", cfg.sites-capacity)
	}
	t.add("refused (429)", s.refusedText(), goal429, passIf(s.refused <= max(cfg.sites-capacity, 0)))
	t.add("other answers", s.otherText(), "none", passIf(len(s.others) == 0))
	t.add("cases with a verdict", s.verdictsText(), fmt.Sprint(s.created), passIf(s.verdicts == s.created))
	t.add("first report → verdict, p50 / p95 / max (all)", s.verdictTimes(), "", "")
	t.add("requests per site, min / median / max", spreadText(perSite)+fmt.Sprintf(" (%d in all)", requests), "", "")
	t.add("TCP connections per site, min / median / max", spreadText(connsPerSite)+fmt.Sprintf(" (%d in all, %d without a request)", conns, bare), "", "")
	most := f.mostAtOnce()
	t.add("most sites being probed at once", fmt.Sprint(most), fmt.Sprintf("≤ %d (workers)", cfg.workers), passIf(most <= cfg.workers))
	t.add("most requests in flight at once, all sites", fmt.Sprint(f.maxInflight.Load()), "", "")
	t.serverRow(g, cpu, r.polls.Load(), code, stopErr)
	return t, nil
}

// serverInt reads an integer flag from the arguments passed to the server
// (--name=N or --name N), or returns def.
func serverInt(args []string, name string, def int) int {
	v := def
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if val, ok := strings.CutPrefix(a, name+"="); ok {
			v, _ = strconv.Atoi(val)
		} else if a == name && i+1 < len(args) {
			v, _ = strconv.Atoi(args[i+1])
		}
	}
	return v
}

// loadavg is the 1, 5 and 15 minute load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
