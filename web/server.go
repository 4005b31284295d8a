// Package web is gatecheck's HTTP face: the wizard for people who see a 502,
// the case pages and case list for helpdesk staff, and the JSON API for
// ticket systems. It is the only package that speaks HTTP.
package web

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/go-chi/chi/v5"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/static"
	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

// Config is what the server needs; zero limits take their defaults.
type Config struct {
	Store      wizard.CaseStore
	Prober     *probes.Prober
	Tree       *wizard.Tree
	TreeSource []byte
	Settings   wizard.Settings
	// BaseURL is the public address of gatecheck, for case links; empty
	// means the address the request came to.
	BaseURL string
	// BrowserAllowNets are the non-public ranges the visitor's browser may
	// be asked to reach for its own view of a case's site (none by
	// default: the browser is inside the visitor's network).
	BrowserAllowNets []netip.Prefix
	// TrustedProxies are the ranges whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger

	ProbeWorkers    int     // probes at once (default 4)
	ProbeQueue      int     // probes waiting at most (default 50)
	ProbesPerMinute float64 // per client (default 6, burst ProbeBurst)
	// ReuseWindow is how long a finished diagnosis of a target is given to
	// new reports of it instead of probing again (default 60 s; negative:
	// never reused). Reports made while a probe of the target runs join it
	// whatever this says.
	ReuseWindow time.Duration
	// HostProbesPerMinute caps the probes of one host, server-wide, so that
	// gatecheck never adds much load to a site already in trouble (default
	// 3; negative: no cap). Staff re-runs and fresh checks count too.
	HostProbesPerMinute int
	ProbeBurst          int // (default 5)
	// StreamsPerClient, StreamsPerCase and Streams bound the live
	// progress streams open at once: from one client (an IPv4 address or
	// an IPv6 /64; default 16), of one case (default 32), and in all
	// (default 1000). Past them a stream gets 429 and the page reloads
	// itself instead.
	StreamsPerClient, StreamsPerCase, Streams int
	LoginsPerMinute                           float64 // per client (default 5, burst 5)
	// AccountFailuresPerMinute is how fast an account's failed sign-ins
	// are forgiven (default 1 a minute, after a burst of 5), whatever
	// addresses they come from.
	AccountFailuresPerMinute float64
	SessionTTL               time.Duration
	MaxBodyBytes             int64
	Now                      func() time.Time

	// WatchIntervals are the waits between a watched case's checks, the
	// last repeating (default 1m, 2m, 5m, 10m, 30m, 1h); WatchFor is how
	// long a watch lasts (default 24 h); WatchTick is how often due checks
	// are looked for (default 5 s).
	WatchIntervals []time.Duration
	WatchFor       time.Duration
	WatchTick      time.Duration

	// MetricsToken, when set, lets a client that sends it as a bearer
	// token read /metrics from anywhere; without it only loopback and the
	// trusted proxies' ranges may.
	MetricsToken string

	// IncidentMinReports is the fewest cases of one host and verdict that
	// make an incident (default 3).
	IncidentMinReports int

	// Webhooks keeps the destinations and the outbox (nil: no webhooks);
	// WebhookURLs are the operator's destinations, all signed with
	// WebhookSecret. WebhookTick is how often due deliveries are looked for
	// (default 1 s), WebhookTimeout how long one may take (default 10 s).
	Webhooks       wizard.WebhookStore
	WebhookURLs    []string
	WebhookSecret  string
	WebhookTick    time.Duration
	WebhookTimeout time.Duration
	// WebhookAllowNets are the non-public ranges admins' destinations may
	// reach (the operator's WebhookURLs are trusted as they are).
	WebhookAllowNets []netip.Prefix
	// lookupHost resolves the name of a destination an admin adds (nil:
	// the system's resolver); tests make a name resolve elsewhere than it
	// will at delivery.
	lookupHost func(ctx context.Context, host string) ([]netip.Addr, error)

	// Mailer sends escalation summaries by e-mail (nil: gatecheck sends
	// none, and an escalation step offers a mailto: link only); Mails
	// keeps the mail outbox (nil takes Store when it keeps it). MailTick
	// is how often due mails are looked for (default 1 s); MailBackoff
	// the waits after failed attempts (default mailBackoff).
	Mailer      MailSender
	Mails       wizard.MailStore
	MailTick    time.Duration
	MailBackoff []time.Duration

	// Agents keeps the agents and their jobs; nil takes Store when it
	// keeps them too, or turns agents off.
	Agents wizard.AgentStore
	// AgentPoll is how long an agent's long-poll waits for a job (default
	// wizard.AgentPoll); AgentLease how long a job taken is the agent's
	// before it is given back (default 2 min); AgentJobTTL how long a job
	// waits for its agent at most (default 10 min); AgentAttempts how many
	// leases may pass before it expires (default 3).
	AgentPoll     time.Duration
	AgentLease    time.Duration
	AgentJobTTL   time.Duration
	AgentAttempts int
	// AgentLookAgain is how often a waiting long-poll looks for a job no
	// signal announced (one the sweep gave back), default 5 s.
	AgentLookAgain time.Duration
	// ProbeLease is how long an instance sharing its store with others
	// (PostgreSQL) owns a probe job it stops renewing: the others take
	// over the jobs of an instance that died after it (default 30 s).
	ProbeLease time.Duration

	// Signals carries wake-ups between instances sharing the store (an
	// agent long-polling one instance for a job queued on another, a
	// probe's progress); nil takes Store's when other instances may share
	// it (PostgreSQL), and none otherwise: one process needs no signals.
	Signals wizard.Signals

	// Users manages staff accounts on the admin pages, and APIKeys keeps
	// the ticket systems' API keys; nil takes Store when it keeps them
	// too, or turns them off.
	Users   wizard.UserStore
	APIKeys wizard.APIKeyStore
	// APIKeyProbesPerMinute is how many cases one API key may open a
	// minute (default 60, burst APIKeyProbeBurst, default 30), counted per
	// key instead of per address: a ticket system sends for many people.
	APIKeyProbesPerMinute float64
	APIKeyProbeBurst      int

	// Changes tells of the writes to the store, so that the step pages
	// kept in memory are dropped when their case changes, and wakes the
	// agents waiting for a probe's verdict; nil takes Store when it tells
	// them, or keeps no pages. When it is Shared (several instances on
	// one PostgreSQL database), a kept page is served only while its
	// case's version is still the one it was built from.
	Changes wizard.ChangeNotifier

	// Tokens keeps the rate limits' buckets where every instance sharing
	// the database sees them, so that the limits hold across instances
	// (PostgreSQL); nil keeps them in this process's memory, as one
	// instance (on SQLite) needs, at no cost to the database.
	Tokens wizard.TokenStore
}

// Server is gatecheck's web application.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	mux     *chi.Mux // the routes, under handler's cross-origin check (the tests walk it)
	runner  *Runner
	metrics *metrics
	pages   *pageCache
	// browserGuard judges the addresses a visitor's browser may be asked
	// to reach.
	browserGuard *probes.Guard
	streams      *streamGate
	probeLimit   limiter // per client (addrKey): the checks it starts
	loginLimit   limiter // per client (addrKey): its sign-in attempts
	// accountLimit counts failed sign-ins per account (accountKey),
	// whatever address they come from.
	accountLimit limiter
	keyLimit     limiter  // per API key (idKey): the cases it opens
	trees        sync.Map // version -> *wizard.Tree
	dummyHash    []byte
	draining     chan struct{} // closed by Drain
	drainOnce    sync.Once

	hooks      wizard.WebhookStore // nil: no webhooks
	hookClient *http.Client
	users      wizard.UserStore   // nil: no user management on the web
	apiKeys    wizard.APIKeyStore // nil: no API keys
	keyMu      sync.Mutex
	keyUsedAt  map[int64]int64 // API key ID -> when its use was last recorded (Unix ns)

	// hookClient posts to the operator's destinations, trusted as
	// configured; staffHookClient to admins', through hookGuard.
	staffHookClient *http.Client
	hookGuard       *probes.Guard

	mails    wizard.MailStore // nil: no mail outbox
	mailWake chan struct{}    // a mail was queued: look for due mails now

	agents  wizard.AgentStore // nil: no agents
	agentMu sync.Mutex
	wakes   map[int64]chan struct{} // agent ID -> closed when a job is queued for it
	polls   map[int64]int           // agent ID -> its open long-polls
	seenAt  map[int64]seenRecord    // agent ID -> its asking as last recorded
	// runWaiters are the probe runs whose verdict agents' jobs wait for.
	runWaiters map[int64]runWaiter
	// The background loops (the agents' job sweep, the watch) run from
	// Start until stop is closed.
	loops     sync.WaitGroup
	loopsOnce sync.Once
	stop      chan struct{}
	closeOnce sync.Once
}

// New builds the server; Start starts its probe workers.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ProbeWorkers <= 0 {
		cfg.ProbeWorkers = 4
	}
	if cfg.ProbeQueue <= 0 {
		cfg.ProbeQueue = 50
	}
	if cfg.ProbesPerMinute <= 0 {
		cfg.ProbesPerMinute = 6
	}
	if len(cfg.WatchIntervals) == 0 {
		cfg.WatchIntervals = DefaultWatchIntervals
	}
	if cfg.WatchFor <= 0 {
		cfg.WatchFor = 24 * time.Hour
	}
	if cfg.WatchTick <= 0 {
		cfg.WatchTick = 5 * time.Second
	}
	if cfg.ReuseWindow == 0 {
		cfg.ReuseWindow = time.Minute
	}
	if cfg.HostProbesPerMinute == 0 {
		cfg.HostProbesPerMinute = 3
	}
	if cfg.StreamsPerClient <= 0 {
		cfg.StreamsPerClient = 16
	}
	if cfg.StreamsPerCase <= 0 {
		cfg.StreamsPerCase = 32
	}
	if cfg.Streams <= 0 {
		cfg.Streams = 1000
	}
	if cfg.ProbeBurst <= 0 {
		cfg.ProbeBurst = 5
	}
	if cfg.LoginsPerMinute <= 0 {
		cfg.LoginsPerMinute = 5
	}
	if cfg.AccountFailuresPerMinute <= 0 {
		cfg.AccountFailuresPerMinute = 1
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.IncidentMinReports <= 0 {
		cfg.IncidentMinReports = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WebhookTick <= 0 {
		cfg.WebhookTick = time.Second
	}
	if cfg.WebhookTimeout <= 0 {
		cfg.WebhookTimeout = 10 * time.Second
	}
	if cfg.AgentPoll <= 0 {
		cfg.AgentPoll = wizard.AgentPoll
	}
	if cfg.AgentLease <= 0 {
		cfg.AgentLease = 2 * time.Minute
	}
	if cfg.ProbeLease <= 0 {
		cfg.ProbeLease = 30 * time.Second
	}
	if cfg.AgentLookAgain <= 0 {
		cfg.AgentLookAgain = 5 * time.Second
	}
	if cfg.AgentJobTTL <= 0 {
		cfg.AgentJobTTL = 10 * time.Minute
	}
	if cfg.AgentAttempts <= 0 {
		cfg.AgentAttempts = 3
	}
	if cfg.MailTick <= 0 {
		cfg.MailTick = time.Second
	}
	if len(cfg.MailBackoff) == 0 {
		cfg.MailBackoff = mailBackoff
	}
	if cfg.Mails == nil {
		cfg.Mails, _ = cfg.Store.(wizard.MailStore)
	}
	if cfg.Agents == nil {
		cfg.Agents, _ = cfg.Store.(wizard.AgentStore)
	}
	if cfg.Users == nil {
		cfg.Users, _ = cfg.Store.(wizard.UserStore)
	}
	if cfg.APIKeys == nil {
		cfg.APIKeys, _ = cfg.Store.(wizard.APIKeyStore)
	}
	if cfg.APIKeyProbesPerMinute <= 0 {
		cfg.APIKeyProbesPerMinute = 60
	}
	if cfg.APIKeyProbeBurst <= 0 {
		cfg.APIKeyProbeBurst = 30
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Changes == nil {
		cfg.Changes, _ = cfg.Store.(wizard.ChangeNotifier)
	}
	// Step pages are kept only when the store tells of every write (the
	// runner's included), so that no kept page outlives a change to its
	// case.
	pages := newPageCache(cfg.Now, 0)
	if cfg.Changes != nil {
		pages = newPageCache(cfg.Now, 16<<20)
	}
	jobs, shared := sharedJobs(cfg.Store)
	if cfg.Signals == nil && shared {
		cfg.Signals, _ = cfg.Store.(wizard.Signals)
	}
	s := &Server{
		pages: pages,
		cfg:   cfg,
		log:   cfg.Logger,
		runner: NewRunner(cfg.Prober, cfg.Store, cfg.Logger, RunnerConfig{Workers: cfg.ProbeWorkers, Queue: cfg.ProbeQueue,
			Reuse: cfg.ReuseWindow, HostCap: cfg.HostProbesPerMinute, Now: cfg.Now}),
		probeLimit:   newLimiter(cfg.Tokens, cfg.Logger, "probe", cfg.ProbesPerMinute, cfg.ProbeBurst),
		loginLimit:   newLimiter(cfg.Tokens, cfg.Logger, "login", cfg.LoginsPerMinute, 5),
		accountLimit: newLimiter(cfg.Tokens, cfg.Logger, "account", cfg.AccountFailuresPerMinute, 5),
		keyLimit:     newLimiter(cfg.Tokens, cfg.Logger, "key", cfg.APIKeyProbesPerMinute, cfg.APIKeyProbeBurst),
		users:        cfg.Users,
		apiKeys:      cfg.APIKeys,
		keyUsedAt:    map[int64]int64{},
		dummyHash:    mustHash("gatecheck: no such user"),
		draining:     make(chan struct{}),
		wakes:        map[int64]chan struct{}{},
		polls:        map[int64]int{},
		seenAt:       map[int64]seenRecord{},
		runWaiters:   map[int64]runWaiter{},
		stop:         make(chan struct{}),
	}
	s.agents = cfg.Agents
	if cfg.Changes != nil {
		cfg.Changes.OnChange(s.changed)
	}
	s.browserGuard = probes.NewGuard(cfg.BrowserAllowNets)
	s.streams = newStreamGate(cfg.StreamsPerClient, cfg.StreamsPerCase, cfg.Streams)
	s.hooks, s.hookGuard = cfg.Webhooks, probes.NewGuard(cfg.WebhookAllowNets)
	s.mails, s.mailWake = cfg.Mails, make(chan struct{}, 1)
	s.hookClient, s.staffHookClient = newHookClient(nil), newHookClient(s.hookGuard)
	if s.cfg.lookupHost == nil {
		s.cfg.lookupHost = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	s.metrics = newMetrics(s.runner)
	s.runner.metrics = s.metrics
	if shared {
		// Instances on one database probe each target once between them.
		s.runner.Share(jobs, cfg.Signals, cfg.ProbeLease, func(caseIDs, runIDs []int64) {
			for _, id := range caseIDs {
				s.pages.written(id)
			}
			if s.agents != nil {
				s.runsDone(context.Background(), runIDs)
			}
		})
	}
	s.trees.Store(cfg.Tree.ID(), cfg.Tree)
	s.handler = s.routes()
	return s
}

// sharedJobs returns store's shared probe jobs when other instances may
// use it too: a PostgreSQL store. A SQLite file has one server (its lock
// refuses a second), whose runner keeps its jobs in memory.
func sharedJobs(store wizard.CaseStore) (wizard.ProbeJobStore, bool) {
	e, ok := store.(interface{ Engine() string })
	if !ok || e.Engine() != "postgres" {
		return nil, false
	}
	jobs, ok := store.(wizard.ProbeJobStore)
	return jobs, ok
}

// Start runs again the probe runs a previous process left unfinished, and
// starts the workers.
func (s *Server) Start(ctx context.Context) error {
	pending, err := s.cfg.Store.InterruptedProbes(ctx)
	if err != nil {
		return err
	}
	// Oldest first, as they were queued.
	for _, runID := range slices.Sorted(maps.Keys(pending)) {
		caseID := pending[runID]
		c, err := s.cfg.Store.CaseByID(ctx, caseID)
		if err != nil {
			return err
		}
		if err := s.runner.Enqueue(ctx, targetOf(c), runID, caseID, false, anyRecent); err != nil {
			return err
		}
	}
	if len(pending) > 0 {
		s.log.Info("resuming interrupted probe runs", "count", len(pending))
	}
	s.runner.Start()
	if s.hooks != nil {
		if err := s.hooks.SyncFlagWebhooks(ctx, s.cfg.WebhookURLs, s.cfg.WebhookSecret); err != nil {
			return err
		}
	}
	if s.mails != nil && s.cfg.Mailer == nil {
		// Mails queued under an earlier configuration wait for a mail
		// server; say so rather than leave them silently.
		if due, err := s.mails.DueMails(ctx, s.cfg.Now().Add(100*365*24*time.Hour), 1); err == nil && len(due) > 0 {
			s.log.Warn("escalation mails wait in the outbox, but no mail server is set (--smtp-url, --mail-from)")
		}
	}
	s.loopsOnce.Do(func() {
		if s.agents != nil {
			s.every(max(min(s.cfg.AgentLease/2, 5*time.Second), 100*time.Millisecond), s.sweepAgentsNow)
		}
		if s.hooks != nil {
			s.every(s.cfg.WebhookTick, s.deliverDue)
		}
		if s.mails != nil && s.cfg.Mailer != nil {
			s.mailLoop()
		}
		s.every(s.cfg.WatchTick, s.checkWatches)
		if s.cfg.Tokens != nil {
			s.every(time.Minute, s.sweepTokens)
		}
		if s.agents != nil && s.cfg.Signals != nil {
			s.hearAgentWakes()
		}
	})
	return nil
}

// every runs work in the background each d until Close, whose context
// ends then (cutting short a delivery under way, say).
func (s *Server) every(d time.Duration, work func(ctx context.Context)) {
	s.loops.Go(func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				work(ctx)
			}
		}
	})
}

// Drain ends the progress streams, for a graceful shutdown: an open one
// would hold the shutdown until its case's probes ran, the whole queue
// before it. Browsers reconnect on their own once gatecheck is back. Give
// it to http.Server.RegisterOnShutdown.
func (s *Server) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// Close ends the progress streams and the agents' long-polls, and stops
// the probe workers and the sweep of agents' jobs.
func (s *Server) Close(ctx context.Context) error {
	s.Drain()
	s.closeOnce.Do(func() {
		close(s.stop)
		s.loops.Wait()
	})
	return s.runner.Close(ctx)
}

// bodyLimit is the most a request's body may hold: MaxBodyBytes, or
// maxAgentReport for an agent's report.
func (s *Server) bodyLimit(r *http.Request) int64 {
	if strings.HasPrefix(r.URL.Path, "/agent/v1/jobs/") {
		return maxAgentReport
	}
	return s.cfg.MaxBodyBytes
}

// ServeHTTP serves the application.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	s.mux = r
	r.Use(s.recoverer, s.logRequests, s.securityHeaders, limitBody(s.bodyLimit))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.errorStatus(w, r, http.StatusNotFound, "There is nothing at this address.")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.errorStatus(w, r, http.StatusMethodNotAllowed, "That method is not allowed here.")
	})

	r.Get("/healthz", s.handleHealthz)
	r.Get("/metrics", s.handleMetrics)
	r.Get("/static/{name}", s.handleStatic)

	r.Get("/", s.handleHome)
	r.Get("/start", s.handleStart)
	r.Get("/help", s.handleHelp)
	r.Post("/cases", s.handleCreateCase)
	r.Get("/c/{token}", s.handleCase)
	r.Get("/c/{token}/events", s.handleEvents)
	r.Post("/c/{token}/answer", s.handleAnswer)
	r.Post("/c/{token}/send", s.handleSendMail)
	r.Post("/c/{token}/back", s.handleBack)
	r.Get("/c/{token}/at/{node}", s.handleRevisit)
	r.Post("/c/{token}/recheck", s.handleRecheck)
	r.Post("/c/{token}/watch", s.handleWatch)
	r.Post("/c/{token}/vantage", s.handleVantage)
	r.Post("/c/{token}/reporter", s.handleClaimReporter)
	r.Post("/c/{token}/email", s.handleVisitorEmail)

	r.Get("/staff/login", s.handleLoginForm)
	r.Post("/staff/login", s.handleLogin)
	r.Post("/staff/logout", s.handleLogout)
	r.Group(func(r chi.Router) {
		r.Use(s.requireStaff)
		r.Get("/staff", s.handleCaseList)
		r.Get("/staff/c/{token}", s.handleStaffCase)
		r.Get("/staff/c/{token}/export.json", s.handleExport)
		r.Post("/staff/c/{token}/notes", s.handleAddNote)
		r.Post("/staff/c/{token}/status", s.handleSetStatus)
		r.Post("/staff/c/{token}/probe", s.handleRerun)
		r.Post("/staff/c/{token}/origin", s.handleStaffOrigin)
		r.Post("/staff/c/{token}/watch", s.handleWatch)
		// Webhooks: staff see the destinations and deliveries; only
		// admins change them.
		r.Route("/staff/webhooks", func(r chi.Router) {
			r.Use(s.requireWebhooks)
			r.Get("/", s.handleWebhooks)
			r.With(s.requireAdmin).Post("/", s.handleAddWebhook)
			r.With(s.requireAdmin).Post("/{id}/disable", s.handleDisableWebhook)
		})
		r.Post("/staff/c/{token}/agent", s.handleRerunAgent)
		r.Get("/staff/agents", s.handleStaffAgents)
		// Incidents show which sites customers report, so they are for
		// signed-in staff only (and, on the API, ticket systems' keys).
		r.Get("/staff/incidents", s.handleIncidents)
		r.Get("/staff/incidents/{host}/{verdict}", s.handleIncident)
		r.Post("/staff/incidents/{host}/{verdict}/notes", s.handleIncidentNote)
		r.Post("/staff/incidents/{host}/{verdict}/status", s.handleIncidentStatus)
		r.Post("/staff/incidents/{host}/{verdict}/notice", s.handlePublishNotice)
		r.Post("/staff/incidents/{host}/{verdict}/notice/clear", s.handleClearNotice)
		// Admins only: the helpdesk's accounts and API keys.
		r.Group(func(r chi.Router) {
			r.Use(s.requireAdmin)
			r.Get("/staff/users", s.handleUsers)
			r.Post("/staff/users", s.handleAddUser)
			r.Post("/staff/users/role", s.handleSetRole)
			r.Post("/staff/users/remove", s.handleRemoveUser)
			r.Get("/staff/apikeys", s.handleAPIKeys)
			r.Post("/staff/apikeys", s.handleAddAPIKey)
			r.Post("/staff/apikeys/revoke", s.handleRevokeAPIKey)
		})
	})

	r.Post("/agent/v1/poll", s.handleAgentPoll)
	r.Post("/agent/v1/jobs/{id}/report", s.handleAgentReport)

	// The JSON API: anonymous, or as a ticket system with an API key.
	r.Group(func(r chi.Router) {
		r.Use(s.apiKey)
		r.Post("/api/cases", s.handleAPICreate)
		r.Get("/api/cases/{token}", s.handleAPICase)
		r.Post("/api/cases/{token}/origin", s.handleAPIOrigin)
		r.With(s.requireStaffOrKey).Get("/api/incidents", s.handleAPIIncidents)
		r.With(s.requireStaffOrKey).Get("/api/incidents/{host}/{verdict}", s.handleAPIIncident)
	})

	// Every state-changing request must come from our own pages (or from a
	// client that is not a browser, like a ticket system).
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.errorStatus(w, r, http.StatusForbidden, "This form was sent from another site, so it was refused. Open gatecheck's page and try again.")
	}))
	return cop.Handler(r)
}

// handleHealthz answers GET /healthz: up, and the database answers.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		s.log.Error("health check", "err", err)
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// handleStatic answers GET /static/{name}: hashed names are cached for
// ever.
func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if plain, ok := static.Lookup(name); ok {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		name = plain
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	http.ServeFileFS(w, r, static.FS, name)
}

// render writes a component with a status.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := c.Render(r.Context(), w); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error("rendering", "path", r.URL.Path, "err", err)
	}
}

// meta is the layout's data for a page.
func (s *Server) meta(r *http.Request, title string) templates.PageMeta {
	m := templates.PageMeta{Title: title, Help: templates.HelpLink(s.cfg.Settings.SupportContact, "/help")}
	if u := staffFrom(r.Context()); u != nil {
		m.Staff, m.Admin = u.Name, u.IsAdmin()
	}
	return m
}

// stepMeta is a case step page's meta: titled with the host and the
// finding in plain words, which link previews show too.
func (s *Server) stepMeta(r *http.Request, st *caseState) templates.PageMeta {
	rep := st.facts.Report
	if run := st.shownRun(); run != nil {
		rep = run.Report // the newest check, as the page shows it
	}
	words := wizard.VisitorWords(rep, st.facts.Now)
	m := s.meta(r, templates.PageTitle(st.c.Host, words.Headline))
	m.Description = words.Headline
	return m
}

// handleHelp answers GET /help: the support contact, for one that is
// neither an e-mail nor a web address (the header links to those
// directly); without a contact there is no such page.
func (s *Server) handleHelp(w http.ResponseWriter, r *http.Request) {
	contact := strings.TrimSpace(s.cfg.Settings.SupportContact)
	if contact == "" {
		s.Error(w, r, wizard.Errorf(wizard.ENOTFOUND, "This gatecheck has no helpdesk contact set."))
		return
	}
	s.render(w, r, http.StatusOK, templates.Help(s.meta(r, "Help"), templates.HelpView{Contact: contact}))
}

// baseURL is gatecheck's public address.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.BaseURL != "" {
		return s.cfg.BaseURL
	}
	scheme := "http"
	if s.secure(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// secure reports whether the client reached us over https.
func (s *Server) secure(r *http.Request) bool {
	if r.TLS != nil || strings.HasPrefix(s.cfg.BaseURL, "https://") {
		return true
	}
	return s.trusted(peerAddr(r)) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// treeFor returns the tree a case walks: the current one, or the version
// stored when the case began, read leniently (it may predate verdict codes
// added since). ok is false when that version cannot be read any more:
// the case then goes on with the current tree, and its pages say so.
func (s *Server) treeFor(ctx context.Context, c *wizard.Case) (t *wizard.Tree, ok bool) {
	if t, ok := s.trees.Load(c.TreeVersion); ok {
		return t.(*wizard.Tree), true
	}
	src, err := s.cfg.Store.TreeSource(ctx, c.TreeVersion)
	if err == nil {
		if t, err = wizard.ParseStored("stored tree "+c.TreeVersion, src); err == nil {
			s.trees.Store(c.TreeVersion, t)
			return t, true
		}
	}
	s.log.Warn("case walks a tree version that cannot be loaded; it goes on with the current tree, and says so", "case", c.Token, "version", c.TreeVersion, "err", err)
	return s.cfg.Tree, false
}
