package sqlite

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// TestSearchWholeWordsOfHostNames holds both engines to one search: whole
// words, all required, the last one a prefix, a host name's parts words
// of their own.
func TestSearchWholeWordsOfHostNames(t *testing.T) { onEngines(t, testSearchWholeWordsOfHostNames) }

func testSearchWholeWordsOfHostNames(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	portal := newCase(t, db, "https://portal.example-corp.com/login", "INC-4711")
	shop := newCase(t, db, "https://shop.example.org/cart", "REQ-9")
	if _, err := db.AddNote(ctx, shop.ID, "ann", "Customer says the café checkout hangs"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    string
		want []int64
	}{
		{"portal", []int64{portal.ID}},
		{"example", []int64{shop.ID, portal.ID}},
		{"example-corp", []int64{portal.ID}},
		{"EXAMPLE corp", []int64{portal.ID}},
		{"corp portal", []int64{portal.ID}},
		{"exam", []int64{shop.ID, portal.ID}}, // the last word is a prefix
		{"exam portal", nil},                  // the others are whole words
		{"xample", nil},                       // words, not substrings
		{"portal cart", nil},                  // every word is required
		{"inc-47", []int64{portal.ID}},        // a ticket by its prefix
		{"café", []int64{shop.ID}},            // a word of a note
		{"checkout hang", []int64{shop.ID}},   // across the words of a note
		{"login example-corp.com", []int64{portal.ID}},
		{"--- «»", []int64{shop.ID, portal.ID}}, // nothing to look for: every case
		{strings.Repeat("é", 1500), nil},        // longer than PostgreSQL's words
		{"portal " + strings.Repeat("x", 3000), nil},
	} {
		got, total, err := db.FindCases(ctx, wizard.CaseFilter{Query: tc.q})
		if err != nil {
			t.Fatalf("%q: %v", tc.q, err)
		}
		var ids []int64
		for _, c := range got {
			ids = append(ids, c.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tc.want) || total != len(tc.want) {
			t.Errorf("search %q found %v (total %d), want %v", tc.q, ids, total, tc.want)
		}
	}
	// Where the engines differ, as the README says: SQLite's tokenizer
	// drops accents, PostgreSQL's simple configuration keeps them.
	got, _, err := db.FindCases(ctx, wizard.CaseFilter{Query: "cafe"})
	if want := map[string]int{"sqlite": 1, "postgres": 0}[engineOf(t)]; err != nil || len(got) != want {
		t.Errorf("%s: cafe finds %d cases, want %d (%v)", engineOf(t), len(got), want, err)
	}
}

// TestLastAdminUnderConcurrency has two admins demote each other at the
// same moment, again and again: one of the two changes must be refused,
// so that an admin is always left. On PostgreSQL this is the
// serializable transactions and their retries at work.
func TestLastAdminUnderConcurrency(t *testing.T) { onEngines(t, testLastAdminUnderConcurrency) }

func testLastAdminUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	for round := range 15 {
		a, b := fmt.Sprintf("ann%d", round), fmt.Sprintf("bob%d", round)
		for _, n := range []string{a, b} {
			if _, err := db.CreateUser(ctx, n, "hash", wizard.RoleAdmin); err != nil {
				t.Fatal(err)
			}
		}
		// The admins of the rounds before step down first.
		for _, u := range mustUsers(t, db) {
			if u.Name != a && u.Name != b && u.Role == wizard.RoleAdmin {
				if err := db.SetRole(ctx, u.Name, wizard.RoleAgent); err != nil {
					t.Fatal(err)
				}
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, n := range []string{a, b} {
			wg.Go(func() {
				<-start
				errs[i] = db.SetRole(ctx, n, wizard.RoleAgent)
			})
		}
		close(start)
		wg.Wait()
		admins := 0
		for _, u := range mustUsers(t, db) {
			if u.Role == wizard.RoleAdmin {
				admins++
			}
		}
		refused := 0
		for _, err := range errs {
			if wizard.ErrorCode(err) == wizard.ECONFLICT {
				refused++
			} else if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if admins != 1 || refused != 1 {
			t.Fatalf("round %d: %d admins left, %d changes refused (%v): want 1 and 1", round, admins, refused, errs)
		}
	}
}

func mustUsers(t *testing.T, db *DB) []*wizard.User {
	t.Helper()
	us, err := db.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// TestAgentJobTakenOnce has many long-polls of one agent ask at once for
// its queued jobs: each job goes to exactly one of them.
func TestAgentJobTakenOnce(t *testing.T) { onEngines(t, testAgentJobTakenOnce) }

func testAgentJobTakenOnce(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	now := time.Now()
	a, _, err := db.CreateAgent(ctx, "office")
	if err != nil {
		t.Fatal(err)
	}
	const jobs = 20
	for i := range jobs {
		c := newCase(t, db, fmt.Sprintf("https://s%d.example.com/", i), "")
		run, _ := db.QueueProbe(ctx, c.ID, "")
		if err := db.FinishProbe(ctx, run.ID, &probes.Report{URL: c.URL, Verdict: probes.Verdict{Code: probes.Gateway502}}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.QueueAgentJobs(ctx, c.ID, run.ID, []int64{a.ID}, "", false, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	taken := map[int64]int{}
	var wg sync.WaitGroup
	for range 24 {
		wg.Go(func() {
			for {
				j, err := db.TakeAgentJob(ctx, a.ID, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if j == nil {
					return
				}
				mu.Lock()
				taken[j.ID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(taken) != jobs {
		t.Errorf("%d of %d jobs taken: %v", len(taken), jobs, taken)
	}
	for id, n := range taken {
		if n != 1 {
			t.Errorf("job %d taken %d times", id, n)
		}
	}
}

// TestPostgresMigratesOnce starts several stores at once on one empty
// PostgreSQL database, as instances starting together do: each opens, and
// every migration is applied once.
func TestPostgresMigratesOnce(t *testing.T) {
	if pgErr != nil {
		MustOpenDB(&onEngine{t, "postgres"}) // skips or fails, as MustOpenDB does
	}
	ctx := context.Background()
	url, err := pg.CreateDatabase(ctx, fmt.Sprintf("fresh%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	dbs := make([]*DB, 4)
	errs := make([]error, len(dbs))
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = Open(ctx, url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		} else {
			defer dbs[i].Close()
		}
	}
	if t.Failed() {
		return
	}
	names, _ := postgresDialect.migrations()
	var applied, distinct int
	if err := dbs[0].read.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT name) FROM migrations`).Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	if applied != len(names) || distinct != len(names) {
		t.Errorf("%d migrations recorded (%d distinct), want %d", applied, distinct, len(names))
	}
}

// onEngine names a test or fuzz target as a subtest of engine, so that
// MustOpenDB opens a store of that engine for it.
type onEngine struct {
	testing.TB
	engine string
}

func (o *onEngine) Name() string { return o.TB.Name() + "/" + o.engine }

// TestRebind turns the shared SQL's placeholders into PostgreSQL's, and
// leaves question marks in quotes alone.
func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`a = ? AND b = ?`, `a = $1 AND b = $2`},
		{`x = ?1 AND y <= ?1 AND z >= ?2`, `x = $1 AND y <= $1 AND z >= $2`},
		{`note = '?' AND id = ?`, `note = '?' AND id = $1`},
		{`"odd?col" = ? AND s = 'it''s ?'`, `"odd?col" = $1 AND s = 'it''s ?'`},
	} {
		if got := postgresDialect.rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := sqliteDialect.rebind(tc.in); got != tc.in {
			t.Errorf("SQLite's rebind(%q) = %q", tc.in, got)
		}
	}
}

// TestHostileTextStored: a report quoting a hostile server's NUL bytes
// (and the six characters \u0000, which are text) is stored and read on
// both engines, and the agent jobs that read its fields in SQL still go
// out; notes, notices and views with text PostgreSQL cannot hold are
// stored (made U+FFFD there).
func TestHostileTextStored(t *testing.T) { onEngines(t, testHostileTextStored) }

func testHostileTextStored(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	a, _, _ := db.CreateAgent(ctx, "office")
	c := newCase(t, db, "https://shop.example.com/", "INC-1")
	run, _ := db.QueueProbe(ctx, c.ID, "")
	if _, err := db.QueueAgentJobs(ctx, c.ID, run.ID, []int64{a.ID}, "", false, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	summary := "upstream said \x00\x00 then \\u0000 and \\\x00"
	if err := db.FinishProbe(ctx, run.ID, &probes.Report{URL: c.URL, Verdict: probes.Verdict{Code: probes.Gateway502, Summary: summary}}); err != nil {
		t.Fatal(err)
	}
	runs, err := db.ProbeRuns(ctx, c.ID)
	if want := "upstream said \ufffd\ufffd then \\u0000 and \\\ufffd"; err != nil || len(runs) != 1 || runs[0].Report.Verdict.Summary != want {
		t.Fatalf("stored report: %+v %v, want summary %q", runs, err, want)
	}
	if j, err := db.TakeAgentJob(ctx, a.ID, time.Minute); err != nil || j == nil {
		t.Errorf("the agent's job after a report with NULs: %+v %v", j, err)
	}
	// A NUL or bytes that are not UTF-8: SQLite keeps them as given,
	// PostgreSQL (which refuses them in text) as U+FFFD.
	for body, onPostgres := range map[string]string{"a\x00b": "a\ufffdb", "caf\xe9 ok": "caf\ufffd ok"} {
		want := map[string]string{"sqlite": body, "postgres": onPostgres}[engineOf(t)]
		n, err := db.AddNote(ctx, c.ID, "ann", body)
		if err != nil {
			t.Errorf("note %q: %v", body, err)
			continue
		}
		notes, _ := db.Notes(ctx, c.ID)
		if got := notes[len(notes)-1]; got.ID != n.ID || got.Body != want {
			t.Errorf("note %q stored as %q, want %q", body, got.Body, want)
		}
		no := &wizard.Notice{Host: "shop.example.com", Body: body, Author: "ann"}
		if err := db.PublishNotice(ctx, no); err != nil {
			t.Errorf("notice %q: %v", body, err)
		} else if got, err := db.ActiveNotice(ctx, "shop.example.com"); err != nil || got.Body != want {
			t.Errorf("notice %q stored as %+v, %v", body, got, err)
		}
	}
	// And a browser's report of the site, whatever text it sends.
	run2, _ := db.QueueProbe(ctx, c.ID, "")
	v := &wizard.Vantage{RunID: run2.ID, From: wizard.VantageBrowser, Reachable: new(true), Detail: "odd \x00 \xff detail"}
	if err := db.AddVantage(ctx, c.ID, v); err != nil {
		t.Errorf("a browser's view with odd text: %v", err)
	}
}
