// Command seed fills a gatecheck database for the load test in bench/run.sh:
// a bulk of generated cases for the staff list and search, and cases
// sitting on a wizard question (role-gateway, after a real probe of a local
// nginx-style 502) for the step page and answer scenarios.
//
//	go run ./bench/seed -db bench.db -cases 100000 -walkers 4096 -out DIR
//
// It writes DIR/step.txt (one case token) and DIR/walkers.txt (one token a
// line). With -count-steps it only prints the number of step records.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

func main() {
	dbPath := flag.String("db", "", "database file (created and migrated)")
	cases := flag.Int("cases", 100000, "generated cases for the staff list and search")
	walkers := flag.Int("walkers", 4096, "cases on a wizard question step")
	out := flag.String("out", ".", "folder for step.txt and walkers.txt")
	countSteps := flag.Bool("count-steps", false, "print the number of step records and exit")
	flag.Parse()
	if *dbPath == "" {
		fmt.Fprintln(os.Stderr, "seed: -db is required")
		os.Exit(2)
	}
	ctx := context.Background()
	var err error
	if *countSteps {
		err = printSteps(ctx, *dbPath)
	} else {
		err = seed(ctx, *dbPath, *cases, *walkers, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func printSteps(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000&_query_only=true")
	if err != nil {
		return err
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM steps`).Scan(&n); err != nil {
		return err
	}
	fmt.Println(n)
	return nil
}

func seed(ctx context.Context, path string, nCases, nWalkers int, out string) error {
	start := time.Now()
	// Open through the store once, so that the schema is the real one.
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	store.Close()

	probeURL, report, err := probeLocal502(ctx)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(report)
	if err != nil {
		return err
	}

	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=OFF&_foreign_keys=on&_txlock=immediate")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	tree := wizard.Default()
	now := time.Now()
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO trees (version, source, created_at) VALUES (?, ?, ?)`,
		tree.ID(), wizard.DefaultSource(), now.UnixNano()); err != nil {
		return err
	}
	insCase, err := tx.PrepareContext(ctx, `INSERT INTO cases (token, url, host, ticket, requester_ip, status, tree_version, verdict, gateway, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	insNote, err := tx.PrepareContext(ctx, `INSERT INTO notes (case_id, author, body, at) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	insRun, err := tx.PrepareContext(ctx, `INSERT INTO probe_runs (case_id, state, report, actor, queued_at, started_at, finished_at)
		VALUES (?, 'done', ?, '', ?, ?, ?)`)
	if err != nil {
		return err
	}

	// Generated cases: two years of history, oldest first, so that ids
	// and creation times rise together as they do in production.
	rng := rand.New(rand.NewPCG(502, 1))
	g := newGen(rng)
	span := 2 * 365 * 24 * time.Hour
	first := now.Add(-span)
	notes := 0
	for i := range nCases {
		at := first.Add(time.Duration(float64(span) * float64(i) / float64(nCases)))
		c := g.genCase(i)
		res, err := insCase.ExecContext(ctx, token(rng), c.url, c.host, c.ticket, c.ip, c.status, tree.ID(), c.verdict, c.gateway,
			at.UnixNano(), at.Add(time.Duration(rng.IntN(3600))*time.Second).UnixNano())
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		// Every case has its probe run, as in production (a case without
		// one is queued again when the server starts).
		rep, _ := json.Marshal(probes.Report{URL: c.url, Verdict: probes.Verdict{Code: probes.Code(c.verdict)}})
		if _, err := insRun.ExecContext(ctx, id, string(rep), at.UnixNano(), at.UnixNano(), at.UnixNano()); err != nil {
			return err
		}
		for _, body := range c.notes {
			if _, err := insNote.ExecContext(ctx, id, g.pick(staffNames), body, at.Add(time.Hour).UnixNano()); err != nil {
				return err
			}
			notes++
		}
	}

	// Walkers: cases whose probe found the local 502, so the wizard
	// stands on the question "Who are you in this?".
	host := strings.TrimPrefix(strings.TrimSuffix(probeURL, "/"), "http://")
	tokens := make([]string, nWalkers+1)
	for i := range tokens {
		tokens[i] = token(rng)
		at := now.Add(-time.Duration(nWalkers+1-i) * time.Second)
		res, err := insCase.ExecContext(ctx, tokens[i], probeURL, host, fmt.Sprintf("INC%07d", 9000000+i), "127.0.0.1", "open", tree.ID(),
			string(report.Verdict.Code), report.Gateway.Name, at.UnixNano(), at.UnixNano())
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		if _, err := insRun.ExecContext(ctx, id, string(raw), at.UnixNano(), at.UnixNano(), at.UnixNano()); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "step.txt"), []byte(tokens[0]+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "walkers.txt"), []byte(strings.Join(tokens[1:], "\n")+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Printf("seeded %d cases (%d notes) and %d walkers on %s (verdict %s, gateway %s) in %s\n",
		nCases, notes, nWalkers+1, probeURL, report.Verdict.Code, report.Gateway.Name, time.Since(start).Round(time.Millisecond))
	return nil
}

// probeLocal502 runs the real prober once against a loopback server that
// answers like nginx in front of a dead upstream.
func probeLocal502(ctx context.Context) (string, *probes.Report, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	defer ln.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Server", "nginx/1.24.0")
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, nginx502)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	cfg := probes.DefaultConfig()
	cfg.Samples = 1
	cfg.Timeout = 10 * time.Second
	cfg.AllowNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	url := "http://" + ln.Addr().String() + "/"
	rep := probes.New(cfg).Diagnose(ctx, url)
	if rep.Verdict.Code != probes.Gateway502 {
		return "", nil, fmt.Errorf("probing %s gave %s, not %s", url, rep.Verdict.Code, probes.Gateway502)
	}
	return url, rep, nil
}

const nginx502 = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n" +
	"<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n"

func token(rng *rand.Rand) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [32]byte
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b[:])
}

type genCase struct {
	url, host, ticket, ip, status, verdict, gateway string
	notes                                           []string
}

type gen struct {
	rng   *rand.Rand
	hosts []string
}

var (
	words = strings.Fields(`acme apex atlas aurora beacon birch blue bolt bright cedar cloud cobalt comet coral crest
		delta echo ember falcon fern forge frost garnet glacier harbor hazel horizon indigo iris jade juniper kestrel
		lark lumen maple meadow mercury nimbus north oak onyx orbit pine pixel quartz raven ridge river sable sage
		sierra silver spruce stone summit swift terra tidal timber topaz union vale vector willow zephyr`)
	services = strings.Fields(`shop portal app api www login billing pay status intranet wiki crm erp mail hr
		booking tickets docs support my account cdn assets admin`)
	tlds       = strings.Fields(`com com com net org io de co.uk fr nl`)
	paths      = strings.Fields(`/ / / /login /checkout /cart /account /api/v2/orders /api/v1/users /search /reports/monthly /admin/settings /dashboard /invoices /sso/callback /graphql /health /products/shoes /basket/confirm`)
	statuses   = []string{"open", "open", "open", "open", "resolved", "resolved", "resolved", "escalated", "escalated", "unresolved"}
	verdicts   = []string{"gateway_502", "gateway_502", "gateway_502", "gateway_timeout", "service_unavailable", "tcp_refused", "healthy", "tls_expired", "dns_nxdomain", "intermittent"}
	gateways   = []string{"nginx", "nginx", "Cloudflare", "HAProxy", "AWS ELB", "Envoy", "Apache httpd", "IIS / ARR", "Caddy", ""}
	staffNames = []string{"ann", "bo", "chandra", "dmitri", "eva", "farid"}
	noteParts  = []string{
		"Customer reports the 502 since this morning.",
		"Upstream app pool was recycled; asked the user to retry.",
		"Escalated to the platform team, waiting for their answer.",
		"Same error from the office VPN and from mobile data.",
		"Certificate renewed on the load balancer.",
		"Backend pods were crash-looping after the deploy.",
		"User confirms it works again after clearing cookies.",
		"Duplicate of an earlier ticket about the checkout page.",
		"Firewall change rolled back by the network team.",
		"Monitoring shows the upstream timed out at 60 seconds.",
		"Vendor support case opened.",
		"Could not reproduce from here; the site answers normally.",
	}
)

func newGen(rng *rand.Rand) *gen {
	g := &gen{rng: rng}
	// A long tail of sites, each seen a few times.
	for range 6000 {
		g.hosts = append(g.hosts, g.pick(services)+"."+g.pick(words)+"-"+g.pick(words)+"."+g.pick(tlds))
	}
	return g
}

func (g *gen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

// genCase makes one case. About a fifth of cases are about the shared
// portal (a term that matches many rows); every 25,000th case carries the
// rare word "zanzibar" in a note (a term that matches four).
func (g *gen) genCase(i int) genCase {
	var c genCase
	switch r := g.rng.IntN(100); {
	case r < 20:
		c.host = "portal.example-corp.com"
	case r < 30:
		c.host = g.pick(services) + ".example-corp.com"
	default:
		c.host = g.hosts[g.rng.IntN(len(g.hosts))]
	}
	scheme := "https"
	if g.rng.IntN(10) == 0 {
		scheme = "http"
	}
	c.url = scheme + "://" + c.host + g.pick(paths)
	if g.rng.IntN(5) == 0 {
		c.url += fmt.Sprintf("?id=%d", g.rng.IntN(1000000))
	}
	switch r := g.rng.IntN(10); {
	case r < 5:
		c.ticket = fmt.Sprintf("INC%07d", g.rng.IntN(10000000))
	case r < 7:
		c.ticket = fmt.Sprintf("HD-%d", 10000+g.rng.IntN(90000))
	case r < 8:
		c.ticket = fmt.Sprintf("OPS-%d", 100+g.rng.IntN(9900))
	}
	c.ip = fmt.Sprintf("10.%d.%d.%d", g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254))
	c.status = g.pick(statuses)
	c.verdict = g.pick(verdicts)
	c.gateway = g.pick(gateways)
	if g.rng.IntN(5) == 0 {
		for range 1 + g.rng.IntN(3) {
			c.notes = append(c.notes, g.pick(noteParts)+" "+g.pick(noteParts))
		}
	}
	if i%25000 == 12345 {
		c.notes = append(c.notes, "Traveller in Zanzibar on hotel Wi-Fi; the captive portal breaks TLS.")
	}
	return c
}
