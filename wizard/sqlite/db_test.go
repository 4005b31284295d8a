package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

func newCase(t testing.TB, db *DB, url, ticket string) *wizard.Case {
	t.Helper()
	c := &wizard.Case{URL: url, Host: strings.Split(strings.Split(url, "//")[1], "/")[0], Ticket: ticket, RequesterIP: "203.0.113.9", TreeVersion: "v1+abc"}
	if err := db.CreateCase(context.Background(), c, []byte("tree source")); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCaseLifecycle(t *testing.T) { onEngines(t, testCaseLifecycle) }

func testCaseLifecycle(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	c := newCase(t, db, "https://shop.example.com/cart", "INC-42")
	if len(c.Token) < 26 || c.Status != wizard.StatusOpen {
		t.Fatalf("case = %+v", c)
	}
	got, err := db.Case(ctx, c.Token)
	if err != nil || got.URL != c.URL || got.Ticket != "INC-42" || got.TreeVersion != "v1+abc" {
		t.Fatalf("Case = %+v, %v", got, err)
	}
	if _, err := db.Case(ctx, "nope"); wizard.ErrorCode(err) != wizard.ENOTFOUND {
		t.Errorf("missing case: %v", err)
	}
	src, err := db.TreeSource(ctx, "v1+abc")
	if err != nil || string(src) != "tree source" {
		t.Errorf("tree source = %q, %v", src, err)
	}

	// Steps: append, replay, and the log cannot be rewritten.
	at := time.Unix(100, 0).UTC()
	recs := wizard.RecordsFor(nil, []wizard.Answer{{Node: "q1", Choice: "a"}, {Node: "q2", Choice: "b"}}, "", at)
	if err := db.AppendSteps(ctx, c.ID, recs); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendSteps(ctx, c.ID, []wizard.StepRecord{{Index: 1, At: at}}); err != nil { // back
		t.Fatal(err)
	}
	log, _ := db.Steps(ctx, c.ID)
	if ans := wizard.ReplayAnswers(log); len(log) != 3 || len(ans) != 1 || ans[0].Choice != "a" || !log[0].At.Equal(at) {
		t.Errorf("log %+v replays to %+v", log, ans)
	}
	if _, err := db.write.ExecContext(ctx, `UPDATE steps SET choice = 'x'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("updating the step log: %v", err)
	}
	if _, err := db.write.ExecContext(ctx, `DELETE FROM steps`); err == nil {
		t.Error("deleted from the step log")
	}

	// Status, notes, probe runs.
	if err := db.SetStatus(ctx, c.ID, wizard.StatusEscalated, "ann"); err != nil {
		t.Fatal(err)
	}
	db.SetStatus(ctx, c.ID, wizard.StatusEscalated, "ann") // no change, no record
	if err := db.SetStatus(ctx, c.ID, "sideways", "ann"); wizard.ErrorCode(err) != wizard.EINVALID {
		t.Errorf("bad status: %v", err)
	}
	changes, _ := db.StatusChanges(ctx, c.ID)
	if len(changes) != 1 || changes[0].From != wizard.StatusOpen || changes[0].To != wizard.StatusEscalated || changes[0].Actor != "ann" {
		t.Errorf("changes = %+v", changes)
	}
	if _, err := db.AddNote(ctx, c.ID, "ann", "  "); wizard.ErrorCode(err) != wizard.EINVALID {
		t.Errorf("empty note: %v", err)
	}
	if _, err := db.AddNote(ctx, c.ID, "ann", "Called CloudOps about the allowlist"); err != nil {
		t.Fatal(err)
	}
	run, err := db.QueueProbe(ctx, c.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if pending, _ := db.InterruptedProbes(ctx); pending[run.ID] != c.ID {
		t.Errorf("interrupted = %v", pending)
	}
	db.StartProbe(ctx, run.ID)
	rep := &probes.Report{URL: c.URL, Verdict: probes.Verdict{Code: probes.Gateway502}, Gateway: probes.Gateway{Name: "nginx"}}
	if err := db.FinishProbe(ctx, run.ID, rep); err != nil {
		t.Fatal(err)
	}
	runs, _ := db.ProbeRuns(ctx, c.ID)
	if len(runs) != 1 || runs[0].State != wizard.ProbeDone || runs[0].Report.Verdict.Code != probes.Gateway502 {
		t.Errorf("runs = %+v", runs)
	}
	got, _ = db.Case(ctx, c.Token)
	if got.Verdict != "gateway_502" || got.Gateway != "nginx" || got.Status != wizard.StatusEscalated {
		t.Errorf("case after probe = %+v", got)
	}
}

func TestFindCases(t *testing.T) { onEngines(t, testFindCases) }

func testFindCases(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var cases []*wizard.Case
	for i := 0; i < 30; i++ {
		db.Now = func() time.Time { return base.Add(time.Duration(i) * time.Hour) }
		host := "shop.example.com"
		if i%3 == 0 {
			host = "portal.example.org"
		}
		cases = append(cases, newCase(t, db, "https://"+host+"/p"+fmt.Sprint(i), fmt.Sprintf("INC-%d", i)))
	}
	db.SetStatus(ctx, cases[5].ID, wizard.StatusResolved, "ann")
	db.AddNote(ctx, cases[7].ID, "ann", "Customer moved office; whitelist needs the Leeds range")
	run, _ := db.QueueProbe(ctx, cases[9].ID, "")
	db.FinishProbe(ctx, run.ID, &probes.Report{Verdict: probes.Verdict{Code: probes.TLSExpired}})

	for _, tt := range []struct {
		name  string
		f     wizard.CaseFilter
		total int
		first int // index into cases of the first result, -1 for none
	}{
		{"all, newest first", wizard.CaseFilter{}, 30, 29},
		{"status", wizard.CaseFilter{Status: wizard.StatusResolved}, 1, 5},
		{"open", wizard.CaseFilter{Status: wizard.StatusOpen}, 29, 29},
		{"verdict", wizard.CaseFilter{Verdict: "tls_expired"}, 1, 9},
		{"host", wizard.CaseFilter{Host: "PORTAL.example.org"}, 10, 27},
		{"ticket", wizard.CaseFilter{Ticket: "INC-12"}, 1, 12},
		{"date range", wizard.CaseFilter{From: base.Add(10 * time.Hour), To: base.Add(12 * time.Hour)}, 2, 11},
		{"full text in notes", wizard.CaseFilter{Query: "whitelist leeds"}, 1, 7},
		{"full text prefix", wizard.CaseFilter{Query: "white"}, 1, 7},
		{"full text in URL", wizard.CaseFilter{Query: "portal"}, 10, 27},
		{"full text in ticket", wizard.CaseFilter{Query: "INC-14"}, 1, 14},
		{"hostile query", wizard.CaseFilter{Query: `"' OR 1=1; -- NEAR(`}, 0, -1},
		{"page 2", wizard.CaseFilter{Limit: 10, Offset: 10}, 30, 19},
		{"full text, page 2", wizard.CaseFilter{Query: "portal", Limit: 3, Offset: 3}, 10, 18},
		{"full text and status", wizard.CaseFilter{Query: "example", Status: wizard.StatusOpen}, 29, 29},
		{"full text and status, none", wizard.CaseFilter{Query: "portal", Status: wizard.StatusResolved}, 0, -1},
		{"full text and date range", wizard.CaseFilter{Query: "shop", From: base.Add(10 * time.Hour), To: base.Add(13 * time.Hour)}, 2, 11},
	} {
		// Few matches are fetched by id, many by walking the cases in
		// date order: both ways must give the same answers.
		for _, many := range []int{manyMatches, 0} {
			t.Run(fmt.Sprintf("%s/many=%d", tt.name, many), func(t *testing.T) {
				defer func(old int) { manyMatches = old }(manyMatches)
				manyMatches = many
				got, total, err := db.FindCases(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				if total != tt.total {
					t.Errorf("total = %d, want %d", total, tt.total)
				}
				if tt.first < 0 {
					if len(got) != 0 {
						t.Errorf("got %d cases, want none", len(got))
					}
					return
				}
				if len(got) == 0 || got[0].ID != cases[tt.first].ID {
					t.Errorf("first = %+v, want case %d", got, tt.first)
				}
				for i := 1; i < len(got); i++ {
					if !got[i].CreatedAt.Before(got[i-1].CreatedAt) {
						t.Errorf("case %d is not older than the one before it", i)
					}
				}
			})
		}
	}
	// Counting many matches against another filter may stop early when the
	// caller asks; without other filters the index's count is exact anyway.
	defer func(old int) { manyMatches = old }(manyMatches)
	manyMatches = 0
	got, total, err := db.FindCases(ctx, wizard.CaseFilter{Query: "example", Status: wizard.StatusOpen, CountUpTo: 5, Limit: 3})
	if err != nil || total != 6 || len(got) != 3 || got[0].ID != cases[29].ID {
		t.Errorf("capped count: total %d, %d cases, %v", total, len(got), err)
	}
	if _, total, _ := db.FindCases(ctx, wizard.CaseFilter{Query: "example", CountUpTo: 5}); total != 30 {
		t.Errorf("search alone, capped: total %d, want the exact 30", total)
	}
	if _, total, _ := db.FindCases(ctx, wizard.CaseFilter{Status: wizard.StatusOpen, CountUpTo: 5}); total != 29 {
		t.Errorf("filter alone, capped: total %d, want the exact 29", total)
	}
}

func TestUsersAndSessions(t *testing.T) { onEngines(t, testUsersAndSessions) }

func testUsersAndSessions(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	u, err := db.CreateUser(ctx, "ann", "hash1", wizard.RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUser(ctx, "ANN", "hash2", wizard.RoleAgent); wizard.ErrorCode(err) != wizard.ECONFLICT {
		t.Errorf("duplicate user: %v", err)
	}
	tok, err := db.CreateSession(ctx, u.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := db.SessionUser(ctx, tok); err != nil || got.Name != "ann" {
		t.Errorf("session user = %+v, %v", got, err)
	}
	var stored string
	db.read.QueryRow(`SELECT token_hash FROM sessions`).Scan(&stored)
	if stored == tok {
		t.Error("the session token is stored as is")
	}
	db.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := db.SessionUser(ctx, tok); wizard.ErrorCode(err) != wizard.EUNAUTHORIZED {
		t.Errorf("expired session: %v", err)
	}
	db.Now = time.Now
	tok2, _ := db.CreateSession(ctx, u.ID, time.Hour)
	if err := db.SetPassword(ctx, "ann", "hash3"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SessionUser(ctx, tok2); err == nil {
		t.Error("a password change left a session alive")
	}
	tok3, _ := db.CreateSession(ctx, u.ID, time.Hour)
	db.DeleteSession(ctx, tok3)
	if _, err := db.SessionUser(ctx, tok3); err == nil {
		t.Error("a deleted session is alive")
	}
}

func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			newCase(t, db, fmt.Sprintf("https://shop.example.com/%d", i), "")
		}
	}()
	time.Sleep(50 * time.Millisecond)
	path := filepath.Join(t.TempDir(), "copy.db")
	err := db.Backup(ctx, path)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if res, err := cp.IntegrityCheck(ctx); err != nil || res != "ok" {
		t.Errorf("integrity = %q, %v", res, err)
	}
	if _, n, _ := cp.FindCases(ctx, wizard.CaseFilter{}); n == 0 {
		t.Error("the backup has no cases")
	}
	if err := db.Backup(ctx, path); err == nil {
		t.Error("backup overwrote an existing file")
	}
}

func TestOpenTwiceAndRefuseMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	for i := 0; i < 2; i++ {
		db, err := Open(context.Background(), path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		db.Close()
	}
	if _, err := Open(context.Background(), ":memory:"); err == nil {
		t.Error("opened an in-memory store")
	}
}

// TestCaseWithoutRunIsQueuedAtStart: a server stopped between storing a
// case and queueing its probes leaves a case with no run; the next start
// queues one, once.
func TestCaseWithoutRunIsQueuedAtStart(t *testing.T) { onEngines(t, testCaseWithoutRunIsQueuedAtStart) }

func testCaseWithoutRunIsQueuedAtStart(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	orphan := newCase(t, db, "https://orphan.example/", "")
	probed := newCase(t, db, "https://probed.example/", "")
	run, err := db.QueueProbe(ctx, probed.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	pending, err := db.InterruptedProbes(ctx)
	if err != nil || len(pending) != 2 || pending[run.ID] != probed.ID {
		t.Fatalf("pending = %v, %v", pending, err)
	}
	again, _ := db.InterruptedProbes(ctx)
	if len(again) != 2 {
		t.Errorf("a second start queued more: %v", again)
	}
	runs, _ := db.ProbeRuns(ctx, orphan.ID)
	if len(runs) != 1 || runs[0].State != wizard.ProbeQueued || runs[0].Actor != "gatecheck" {
		t.Errorf("the orphan's runs = %+v", runs)
	}
}

// modeOf is the permission bits of the file at path.
func modeOf(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestFilesAreOwnerOnly: the database, its -wal and -shm files and a
// backup hold secrets, password hashes and case tokens, so nobody but
// their owner may read them, whatever the umask lets new files be.
func TestFilesAreOwnerOnly(t *testing.T) {
	old := syscall.Umask(0o022) // the usual umask, which makes new files 0644
	defer syscall.Umask(old)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "gatecheck.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	newCase(t, db, "https://shop.example.com/", "INC-1") // a write: the WAL has content
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if m := modeOf(t, p); m != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", filepath.Base(p), m)
		}
	}
	cp := filepath.Join(dir, "copy.db")
	if err := db.Backup(ctx, cp); err != nil {
		t.Fatal(err)
	}
	if m := modeOf(t, cp); m != 0o600 {
		t.Errorf("the backup: mode %04o, want 0600", m)
	}
	if err := db.Backup(ctx, cp); err == nil || modeOf(t, cp) != 0o600 {
		t.Errorf("a second backup to the same file: %v", err)
	}
	// A backup that fails leaves no empty file behind, to be taken for one.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	failed := filepath.Join(dir, "failed.db")
	if err := db.Backup(cancelled, failed); err == nil {
		t.Error("a cancelled backup worked")
	}
	if _, err := os.Stat(failed); err == nil {
		t.Error("a failed backup left its file")
	}
}

// TestOpenTightensReadableFiles: a database an older gatecheck left
// readable by everybody (0644, its -wal and -shm too) is made the owner's
// alone when opened, and the log says which files changed and how.
func TestOpenTightensReadableFiles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatecheck.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	newCase(t, db, "https://shop.example.com/", "INC-1")
	db.Close()
	// As an older gatecheck, or a server killed mid-write, left them.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644) // (the WAL is empty after a clean close)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	db, err = Open(ctx, path, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if m := modeOf(t, p); m != 0o600 {
			t.Errorf("%s: mode %04o after opening, want 0600", filepath.Base(p), m)
		}
		if want := fmt.Sprintf(`msg="tightened file mode" path=%s old_mode=0644 mode=0600`, p); !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, logs.String())
		}
	}
	if _, n, err := db.FindCases(ctx, wizard.CaseFilter{}); err != nil || n != 1 {
		t.Errorf("the tightened database has %d cases: %v", n, err)
	}
	// Opened again, nothing is left to change, and nothing is logged.
	logs.Reset()
	again, err := Open(ctx, path, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
	if logs.Len() != 0 {
		t.Errorf("a second open logged: %s", logs.String())
	}
}
