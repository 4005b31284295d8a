package web

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
	"github.com/gatecheck/gatecheck/wizard/sqlite/pgtest"
)

// The web tests' PostgreSQL server, started by the first test that asks
// for a cluster (newCluster) and stopped by TestMain, and the migrated
// database each cluster's database is cloned from.
var (
	pgOnce sync.Once
	pg     *pgtest.Server
	pgErr  error
)

const pgTemplate = "gatecheck_template"

func TestMain(m *testing.M) {
	code := m.Run()
	if pg != nil {
		if err := pg.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping PostgreSQL:", err)
		}
	}
	os.Exit(code)
}

// startPG starts the tests' PostgreSQL server and migrates the template,
// once.
func startPG() (*pgtest.Server, error) {
	pgOnce.Do(func() {
		ctx := context.Background()
		if pg, pgErr = pgtest.Start(ctx); pgErr != nil {
			return
		}
		url, err := pg.CreateDatabase(ctx, pgTemplate)
		if err != nil {
			pgErr = err
			return
		}
		db, err := sqlite.Open(ctx, url)
		if err != nil {
			pgErr = err
			return
		}
		pgErr = db.Close()
	})
	return pg, pgErr
}

// newCluster starts n gatecheck servers sharing one fresh PostgreSQL
// database, as n instances behind a load balancer would: each has its own
// store (its own pool and listener), runner, caches and limits; only the
// database is shared. Without PostgreSQL the test is skipped, or fails
// when GATECHECK_POSTGRES=require (.ci/run sets it).
func newCluster(t *testing.T, n int, tweak ...func(*Config)) []*testApp {
	t.Helper()
	srv, err := startPG()
	if err != nil {
		if pgtest.Required() {
			t.Fatalf("PostgreSQL is required (GATECHECK_POSTGRES=require): %v", err)
		}
		t.Skipf("no PostgreSQL: %v", err)
	}
	ctx := context.Background()
	url, drop, err := srv.Clone(ctx, pgTemplate)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the servers stop, then their stores
	// close, then the database goes.
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	apps := make([]*testApp, n)
	for i := range apps {
		db, err := sqlite.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		apps[i] = newAppOn(t, db, tweak...)
	}
	return apps
}

// TestClusterSharesCases: a case reported on one instance is the same
// case on the others (its page, its probe's verdict).
func TestClusterSharesCases(t *testing.T) {
	site := brokenGateway(t)
	apps := newCluster(t, 3)
	token := apps[0].report(site.URL+"/", "198.51.100.7")
	for i, a := range apps {
		doc := a.waitProbed(token)
		if doc["url"] == nil {
			t.Errorf("instance %d does not know the case reported on instance 0: %v", i, doc)
		}
	}
}

// TestClusterDeliversOnce: three instances, each running the webhook
// loop, on one database: every event reaches the ticket system once, not
// once per instance, whichever instance made it.
func TestClusterDeliversOnce(t *testing.T) {
	rc := newReceiver(t, "s3cret")
	site := brokenGateway(t)
	apps := newCluster(t, 3, func(c *Config) {
		c.WebhookTick, c.WebhookURLs, c.WebhookSecret = 5*time.Millisecond, []string{rc.URL + "/hooks"}, "s3cret"
	})
	var tokens []string
	for i := range 9 {
		tokens = append(tokens, apps[i%3].report(site.URL+fmt.Sprintf("/p%d", i), fmt.Sprintf("198.51.100.%d", i+1)))
	}
	for _, tok := range tokens {
		apps[0].waitProbed(tok)
	}
	ctx := context.Background()
	var made []*wizard.Delivery
	waitFor(t, "every delivery made", func() bool {
		due, err := apps[0].db.DueDeliveries(ctx, time.Now().Add(time.Hour), 1000)
		if err != nil || len(due) > 0 {
			return false
		}
		made, err = apps[0].db.Deliveries(ctx, 1000)
		return err == nil
	})
	// One webhook, though each instance set it up from its flags.
	hooks, err := apps[1].db.Webhooks(ctx)
	if err != nil || len(hooks) != 1 {
		t.Fatalf("%d webhooks (%v), want the one the flags name", len(hooks), err)
	}
	time.Sleep(50 * time.Millisecond) // a second delivery would come now
	rc.mu.Lock()
	defer rc.mu.Unlock()
	seen := map[string]int{}
	for _, g := range rc.got {
		seen[g.delivery]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery %s reached the ticket system %d times", id, n)
		}
	}
	if len(rc.got) != len(made) || len(made) < len(tokens) {
		t.Errorf("the ticket system took %d deliveries; the store made %d for %d cases", len(rc.got), len(made), len(tokens))
	}
	if len(rc.bad) > 0 {
		t.Errorf("refused: %v", rc.bad)
	}
}

// TestClusterAgentWakes: an agent long-polling one instance is handed a
// job queued on another while its poll waits, woken by the store's signal
// rather than by looking again (which this test puts an hour away: a
// poll that is not woken ends empty).
func TestClusterAgentWakes(t *testing.T) {
	apps := newCluster(t, 2, func(c *Config) { c.AgentPoll, c.AgentLookAgain = 4*time.Second, time.Hour })
	a, b := apps[0], apps[1]
	ctx := context.Background()
	key := a.apiKey("servicedesk")
	_, office, err := a.db.CreateAgent(ctx, "office")
	if err != nil {
		t.Fatal(err)
	}
	site := healthySite(t)
	got := make(chan string, 1)
	go func() {
		resp, body := b.agentDo("/agent/v1/poll", office, nil)
		got <- fmt.Sprint(resp.StatusCode, " ", body)
	}()
	waitFor(t, "the poll waits on instance B", func() bool {
		b.srv.agentMu.Lock()
		defer b.srv.agentMu.Unlock()
		return len(b.srv.polls) > 0
	})
	token := a.apiCreate(key, `{"url": "`+site.URL+`", "agents": ["office"]}`)
	a.waitProbed(token)
	if answer := <-got; !strings.HasPrefix(answer, "200 ") || !strings.Contains(answer, site.URL) {
		t.Fatalf("the poll waiting on B for a job queued on A: %s", answer)
	}
}

// trustForwarded tells an instance's clients apart by X-Forwarded-For,
// as behind the cluster's load balancer.
func trustForwarded(c *Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

// ownReports counts the runs among the cases' newest that hold a report
// of their own (the others share one), on instance a.
func ownReports(t *testing.T, a *testApp, tokens []string) int {
	t.Helper()
	n := 0
	for _, tok := range tokens {
		runs := a.runsOf(tok)
		if len(runs) == 0 {
			t.Fatalf("case %s has no probe run", tok)
		}
		if r := runs[len(runs)-1]; r.State != wizard.ProbeDone || r.Report == nil {
			t.Errorf("case %s's run is %s without a report", tok, r.State)
		} else if r.SharedFrom == 0 {
			n++
		}
	}
	return n
}

// followedChecks is what instance a tells the people following case
// token's probe of its checks so far.
func followedChecks(a *testApp, token string) int {
	c, err := a.db.Case(context.Background(), token)
	if err != nil {
		return 0
	}
	_, _, _, checks := a.srv.runner.Progress(c.ID)
	return len(checks)
}

// TestClusterProbesATargetOnce: reports of one site on three instances
// share one probe, whichever instance runs it; the people following the
// cases on the other instances see its checks as they happen; once done,
// a report on yet another instance within the reuse window takes its
// report without asking the site again.
func TestClusterProbesATargetOnce(t *testing.T) {
	site := newGatedSite(t, "127.0.0.1")
	site.hold()
	apps := newCluster(t, 3, trustForwarded)
	var tokens []string
	for i, a := range apps {
		tokens = append(tokens, a.report(site.URL+"/shop", fmt.Sprintf("198.51.100.%d", i+1)))
	}
	waitFor(t, "the probe reaching the site", func() bool { return site.requests.Load() > 0 })
	for i := 1; i < 3; i++ {
		waitFor(t, fmt.Sprintf("instance %d relaying the probe's checks", i), func() bool { return followedChecks(apps[i], tokens[i]) > 0 })
	}
	site.release()
	for i, a := range apps {
		a.waitProbed(tokens[i])
	}
	if n := ownReports(t, apps[2], tokens); n != 1 {
		t.Errorf("%d probes of one site for three reports on three instances, want 1", n)
	}
	asked := site.requests.Load()
	again := apps[1].report(site.URL+"/shop", "198.51.100.9")
	apps[1].waitProbed(again)
	if n := ownReports(t, apps[0], append(tokens, again)); n != 1 || site.requests.Load() != asked {
		t.Errorf("a report within the reuse window: %d probes, the site asked %d more times", n, site.requests.Load()-asked)
	}
}

// TestClusterTakesOverFromADeadInstance: the instance running a probe
// dies (its probes stop, it hands nothing back); once its lease has run
// out another instance probes the target, for its own case and for the
// dead instance's, once.
func TestClusterTakesOverFromADeadInstance(t *testing.T) {
	site := newGatedSite(t, "127.0.0.1")
	site.hold()
	apps := newCluster(t, 2, trustForwarded, func(c *Config) { c.ProbeLease = 300 * time.Millisecond })
	first := apps[0].report(site.URL+"/", "198.51.100.1")
	waitFor(t, "the probe reaching the site", func() bool { return site.requests.Load() > 0 })
	second := apps[1].report(site.URL+"/", "198.51.100.2")
	r := apps[0].srv.runner
	r.shared.handBack = false
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	site.release()
	for _, tok := range []string{first, second} {
		apps[1].waitProbed(tok)
	}
	if n := ownReports(t, apps[1], []string{first, second}); n != 1 {
		t.Errorf("%d probes stored for the two cases, want 1", n)
	}
}

// TestClusterHandsBackOnShutdown: an instance stopping hands its probe
// jobs to the others at once, long before its lease would run out.
func TestClusterHandsBackOnShutdown(t *testing.T) {
	site := newGatedSite(t, "127.0.0.1")
	site.hold()
	apps := newCluster(t, 2, trustForwarded, func(c *Config) { c.ProbeLease = time.Hour })
	first := apps[0].report(site.URL+"/", "198.51.100.1")
	waitFor(t, "the probe reaching the site", func() bool { return site.requests.Load() > 0 })
	second := apps[1].report(site.URL+"/", "198.51.100.2")
	if err := apps[0].srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	site.release()
	for _, tok := range []string{first, second} {
		apps[1].waitProbed(tok)
	}
	if n := ownReports(t, apps[1], []string{first, second}); n != 1 {
		t.Errorf("%d probes stored for the two cases, want 1", n)
	}
}

// TestClusterHostCap: the politeness cap holds across instances: with one
// probe of a host a minute, a second target of the host reported on
// another instance waits (and says why) until the minute has passed.
func TestClusterHostCap(t *testing.T) {
	site := newGatedSite(t, "127.0.0.1")
	clock := &testClock{}
	apps := newCluster(t, 2, trustForwarded, func(c *Config) { c.HostProbesPerMinute, c.Now = 1, clock.now })
	first := apps[0].report(site.URL+"/a", "198.51.100.1")
	apps[0].waitProbed(first)
	asked := site.requests.Load()
	second := apps[1].report(site.URL+"/b", "198.51.100.2")
	c, err := apps[1].db.Case(context.Background(), second)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second target waiting for the host's cap", func() bool {
		_, _, text, _ := apps[1].srv.runner.Progress(c.ID)
		return strings.Contains(text, "at most once a minute")
	})
	if n := site.requests.Load(); n != asked {
		t.Fatalf("the host was asked %d more times within its minute", n-asked)
	}
	clock.advance(61 * time.Second)
	apps[1].waitProbed(second)
	if site.requests.Load() == asked {
		t.Error("the second target was never probed")
	}
}
