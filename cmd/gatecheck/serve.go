package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/mailer"
	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/web"
	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// parseIntervals reads a comma-separated list of durations, each at least
// ten seconds (a watch must not become a way to hammer a site).
func parseIntervals(s string) ([]time.Duration, error) {
	var out []time.Duration
	for f := range strings.SplitSeq(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d < 10*time.Second {
			return nil, fmt.Errorf("bad interval %q", f)
		}
		out = append(out, d)
	}
	return out, nil
}

// offIfZero maps an operator's 0 ("off") to the web package's negative.
func offIfZero[T int | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// cmdServe serves the wizard, the staff pages and the API until ctx ends,
// then shuts down gracefully: requests in flight finish, the probe workers
// stop (unfinished runs resume at the next start), the database closes.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", stderr, "gatecheck [serve] [flags]")
	addr := fs.String("addr", envOr("GATECHECK_ADDR", "localhost:8080"), "address to listen on (GATECHECK_ADDR)")
	dbPath := fs.String("db", envOr("GATECHECK_DB", "gatecheck.db"), dbUsage)
	baseURL := fs.String("base-url", os.Getenv("GATECHECK_BASE_URL"), "public address of gatecheck, for case links (GATECHECK_BASE_URL)")
	var trusted stringList
	fs.Var(&trusted, "trusted-proxy", "range whose X-Forwarded-For is believed (repeatable; GATECHECK_TRUSTED_PROXIES, comma-separated)")
	var browserNets stringList
	fs.Var(&browserNets, "allow-browser-net", "non-public range a visitor's browser may be asked to reach for its own view of a case's site (repeatable; GATECHECK_ALLOW_BROWSER_NETS, comma-separated)")
	workers := fs.Int("probe-workers", envInt("GATECHECK_PROBE_WORKERS", 4), "probes run at once (GATECHECK_PROBE_WORKERS)")
	queue := fs.Int("probe-queue", envInt("GATECHECK_PROBE_QUEUE", 50), "probes waiting at most before new ones get 429 (GATECHECK_PROBE_QUEUE)")
	perMinute := fs.Int("probes-per-minute", envInt("GATECHECK_PROBES_PER_MINUTE", 6), "probes one client may start per minute (GATECHECK_PROBES_PER_MINUTE)")
	keyPerMinute := fs.Int("api-key-probes-per-minute", envInt("GATECHECK_API_KEY_PROBES_PER_MINUTE", 60), "cases one API key may open per minute (burst half that), counted per key instead of per address (GATECHECK_API_KEY_PROBES_PER_MINUTE)")
	reuse := fs.Duration("reuse-window", envDuration("GATECHECK_REUSE_WINDOW", time.Minute), "new reports of a site probed this recently get that report instead of a new probe; 0: always probe (GATECHECK_REUSE_WINDOW)")
	probeLease := fs.Duration("probe-lease", envDuration("GATECHECK_PROBE_LEASE", 30*time.Second), "with several instances on one PostgreSQL database: how long a probe job stays with an instance that stopped renewing it before another takes it over (GATECHECK_PROBE_LEASE)")
	perHost := fs.Int("probes-per-host", envInt("GATECHECK_PROBES_PER_HOST", 3), "probes of one host per minute, server-wide, staff re-runs included; 0: no cap (GATECHECK_PROBES_PER_HOST)")
	var webhooks stringList
	fs.Var(&webhooks, "webhook", "an http(s) URL to post events to, signed with --webhook-secret (repeatable; GATECHECK_WEBHOOKS, comma-separated)")
	webhookSecret := fs.String("webhook-secret", os.Getenv("GATECHECK_WEBHOOK_SECRET"), "the secret that signs the bodies sent to --webhook destinations (GATECHECK_WEBHOOK_SECRET)")
	var webhookNets stringList
	fs.Var(&webhookNets, "allow-webhook-net", "a non-public range (CIDR or address) that destinations added by admins at /staff/webhooks may reach; --webhook destinations need none (repeatable; GATECHECK_ALLOW_WEBHOOK_NETS, comma-separated)")
	minReports := fs.Int("incident-min-reports", envInt("GATECHECK_INCIDENT_MIN_REPORTS", 3), "open cases of one host and verdict that make an incident (GATECHECK_INCIDENT_MIN_REPORTS)")
	watchIntervals := fs.String("watch-intervals", envOr("GATECHECK_WATCH_INTERVALS", "1m,2m,5m,10m,30m,1h"), "waits between a watched case's checks, the last repeating (GATECHECK_WATCH_INTERVALS)")
	watchFor := fs.Duration("watch-for", envDuration("GATECHECK_WATCH_FOR", 24*time.Hour), "how long a case is watched before gatecheck stops checking (GATECHECK_WATCH_FOR)")
	smtpURL := fs.String("smtp-url", os.Getenv("GATECHECK_SMTP_URL"), "the mail server that sends escalation summaries: smtp://user:password@host:587 (STARTTLS; ?starttls=opportunistic or none to relax it) or smtps://user:password@host:465 (GATECHECK_SMTP_URL)")
	mailFrom := fs.String("mail-from", os.Getenv("GATECHECK_MAIL_FROM"), "the sender of escalation summaries, e.g. \"gatecheck <gatecheck@example.com>\"; needed with --smtp-url (GATECHECK_MAIL_FROM)")
	metricsToken := fs.String("metrics-token", os.Getenv("GATECHECK_METRICS_TOKEN"), "bearer token that lets a client read /metrics from anywhere; without it only loopback and the trusted proxies' ranges may (GATECHECK_METRICS_TOKEN)")
	logFormat := fs.String("log-format", envOr("GATECHECK_LOG_FORMAT", "text"), "log lines as text (key=value) or json (GATECHECK_LOG_FORMAT)")
	agentPoll := fs.Duration("agent-poll", envDuration("GATECHECK_AGENT_POLL", wizard.AgentPoll), "how long an agent's request for work waits for a job (GATECHECK_AGENT_POLL)")
	agentLease := fs.Duration("agent-lease", envDuration("GATECHECK_AGENT_LEASE", 2*time.Minute), "how long an agent has to report on a job it took before the job is given back (GATECHECK_AGENT_LEASE)")
	agentTTL := fs.Duration("agent-job-ttl", envDuration("GATECHECK_AGENT_JOB_TTL", 10*time.Minute), "how long a job waits for its agent before it expires (GATECHECK_AGENT_JOB_TTL)")
	verbose := fs.Bool("verbose", false, "log every request")
	profAddr := fs.String("pprof", "", "serve Go's profiler (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060; off when empty")
	pf := addProbeFlags(fs)
	sf := addSettingsFlags(fs)
	if _, code, ok := parseArgs(fs, args, 0); !ok {
		return code
	}
	tree, settings, err := sf.resolve()
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck serve:", err)
		return exitUsage
	}
	cfg, err := pf.config()
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck serve:", err)
		return exitUsage
	}
	if *agentPoll < 100*time.Millisecond || *agentPoll > 50*time.Second || *agentLease < time.Second || *agentTTL < *agentLease {
		fmt.Fprintln(stderr, "gatecheck serve: --agent-poll must be between 100ms and 50s (the write timeout is 60s), --agent-lease at least 1s, --agent-job-ttl at least the lease")
		return exitUsage
	}
	intervals, err := parseIntervals(*watchIntervals)
	if err != nil || *watchFor <= 0 {
		fmt.Fprintln(stderr, "gatecheck serve: --watch-intervals is a comma-separated list of durations of 10s or more, such as 1m,5m,1h, and --watch-for a positive duration")
		return exitUsage
	}
	if *reuse < 0 || *perHost < 0 {
		fmt.Fprintln(stderr, "gatecheck serve: --reuse-window and --probes-per-host cannot be negative (0 turns them off)")
		return exitUsage
	}
	if *probeLease < 100*time.Millisecond {
		fmt.Fprintln(stderr, "gatecheck serve: --probe-lease must be at least 100ms (30s is usual)")
		return exitUsage
	}
	var hookURLs []string
	for _, u := range append(strings.Split(os.Getenv("GATECHECK_WEBHOOKS"), ","), webhooks...) {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if err := web.CheckWebhookURL(u); err != nil {
			fmt.Fprintln(stderr, "gatecheck serve: --webhook:", err)
			return exitUsage
		}
		hookURLs = append(hookURLs, u)
	}
	var sender web.MailSender
	switch {
	case *smtpURL != "" && *mailFrom == "":
		fmt.Fprintln(stderr, "gatecheck serve: --smtp-url needs --mail-from, the address escalation summaries are sent from")
		return exitUsage
	case *smtpURL != "":
		m, err := mailer.New(*smtpURL, *mailFrom)
		if err != nil {
			fmt.Fprintln(stderr, "gatecheck serve: --smtp-url:", err)
			return exitUsage
		}
		sender = m
	case *mailFrom != "":
		fmt.Fprintln(stderr, "gatecheck serve: --mail-from needs --smtp-url, the mail server to send through")
		return exitUsage
	}
	hookNets, err := probes.ParseNets(append([]string{os.Getenv("GATECHECK_ALLOW_WEBHOOK_NETS")}, webhookNets...)...)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck serve: --allow-webhook-net:", err)
		return exitUsage
	}
	proxies, err := probes.ParseNets(append([]string{os.Getenv("GATECHECK_TRUSTED_PROXIES")}, trusted...)...)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck serve: --trusted-proxy:", err)
		return exitUsage
	}
	browserAllow, err := probes.ParseNets(append([]string{os.Getenv("GATECHECK_ALLOW_BROWSER_NETS")}, browserNets...)...)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck serve: --allow-browser-net:", err)
		return exitUsage
	}
	if *baseURL != "" {
		if _, err := probes.Normalize(*baseURL, probes.DefaultPorts); err != nil {
			fmt.Fprintln(stderr, "gatecheck serve: --base-url:", err)
			return exitUsage
		}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(stderr, opts)
	case "json":
		handler = slog.NewJSONHandler(stderr, opts)
	default:
		fmt.Fprintf(stderr, "gatecheck serve: --log-format is text or json, not %q\n", *logFormat)
		return exitUsage
	}
	log := slog.New(handler)

	if !sqlite.IsPostgres(*dbPath) {
		unlock, err := lockSQLite(*dbPath)
		if err != nil {
			fmt.Fprintln(stderr, "gatecheck serve:", err)
			return exitProblem
		}
		defer unlock()
	}
	db, err := sqlite.Open(ctx, *dbPath, sqlite.WithLogger(log))
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck serve:", err)
		return exitProblem
	}
	defer db.Close()
	db.IncidentMinReports = *minReports
	src, err := treeSource(*sf.tree)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck serve:", err)
		return exitUsage
	}
	// Listen first: the probes refuse gatecheck's own addresses (its
	// /metrics, its profiler) whatever --allow-net says, so they must know
	// them before the first probe, resumed ones included.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck serve:", err)
		return exitProblem
	}
	defer ln.Close()
	self := []netip.AddrPort{addrPortOf(ln.Addr())}
	if *profAddr != "" {
		prof, profURL, err := serveProfiler(*profAddr, log)
		if err != nil {
			fmt.Fprintln(stderr, "gatecheck serve: --pprof:", err)
			return exitUsage
		}
		defer prof.Close()
		if ap, err := netip.ParseAddrPort(prof.Addr); err == nil {
			self = append(self, ap)
		}
		fmt.Fprintf(stdout, "profiler on %s\n", profURL)
	}
	cfg.Self = self
	// Instances sharing a PostgreSQL database share their rate limits
	// there; one instance on SQLite keeps them in memory.
	var tokens wizard.TokenStore
	if db.Engine() == "postgres" {
		tokens = db
	}
	srv := web.New(web.Config{
		Store: db, Prober: probes.New(cfg), Tree: tree, TreeSource: src, Settings: settings,
		BaseURL: *baseURL, TrustedProxies: proxies, BrowserAllowNets: browserAllow, Logger: log,
		ProbeWorkers: *workers, ProbeQueue: *queue, ProbesPerMinute: float64(*perMinute),
		ReuseWindow: offIfZero(*reuse), HostProbesPerMinute: offIfZero(*perHost), ProbeLease: *probeLease, MetricsToken: *metricsToken,
		WatchIntervals: intervals, WatchFor: *watchFor,
		IncidentMinReports: *minReports,
		Webhooks:           db, WebhookURLs: hookURLs, WebhookSecret: *webhookSecret, WebhookAllowNets: hookNets,
		Mails: db, Mailer: sender,
		Agents: db, AgentPoll: *agentPoll, AgentLease: *agentLease, AgentJobTTL: *agentTTL,
		Users: db, APIKeys: db, APIKeyProbesPerMinute: float64(*keyPerMinute), APIKeyProbeBurst: max(1, *keyPerMinute/2),
		Tokens: tokens, Changes: db,
	})
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintln(stderr, "gatecheck serve:", err)
		return exitProblem
	}
	hs := &http.Server{
		Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	hs.RegisterOnShutdown(srv.Drain)
	fmt.Fprintf(stdout, "gatecheck is serving http://%s/ (database %s; tree %s)\n", ln.Addr(), dbName(*dbPath), tree.ID())
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		log.Error("server stopped", "err", err)
		srv.Close(context.Background())
		return exitProblem
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutdown", "err", err)
	}
	if err := srv.Close(shutdownCtx); err != nil {
		log.Error("stopping probes", "err", err)
	}
	log.Info("stopped")
	return exitOK
}

// addrPortOf is a listener's address as a netip.AddrPort.
func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// serveProfiler serves net/http/pprof on addr, which must be a loopback
// address: profiles show the server's insides, and a CPU profile costs
// CPU, so they are for the operator on the machine only. The pages sit
// under a random path, returned in url: a server allowed to probe loopback
// (--allow-net 127.0.0.0/8) must not let visitors read them through the
// prober's evidence.
func serveProfiler(addr string, log *slog.Logger) (hs *http.Server, url string, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return nil, "", fmt.Errorf("%s is not a loopback address (use 127.0.0.1:PORT)", addr)
	}
	secret := "/" + rand.Text()
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs = &http.Server{Addr: ln.Addr().String(), Handler: http.StripPrefix(secret, mux), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("profiler stopped", "err", err)
		}
	}()
	return hs, "http://" + hs.Addr + secret + "/debug/pprof/", nil
}

// treeSource returns the bytes of the tree in use, stored with each case's
// version so that old cases stay readable.
func treeSource(path string) ([]byte, error) {
	if path == "" {
		return wizard.DefaultSource(), nil
	}
	return os.ReadFile(path)
}
