package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gatecheck/gatecheck/wizard"
)

// Changes: every write that changes what a case's pages show notes the
// case in its transaction (tx.changed, or tx.changedRuns and tx.finished
// for probe runs, tx.changedHost for a host's notice). Before committing,
// tryTx increases those cases' versions in the same transaction, so that
// any instance reading a case learns which writes its read includes;
// after committing, it calls the OnChange hooks with what changed and
// sends a "case" signal for each case. TestEveryWriteNotesItsCases keeps
// every write method noting its cases.

// hooks are the OnChange functions.
type hooks struct {
	mu  sync.RWMutex
	fns []func(wizard.Change)
}

// OnChange has fn called after each write this process commits that
// changed cases, in the writing goroutine.
func (db *DB) OnChange(fn func(wizard.Change)) {
	db.hooks.mu.Lock()
	defer db.hooks.mu.Unlock()
	db.hooks.fns = append(db.hooks.fns, fn)
}

// Shared says whether other processes may write the store: on PostgreSQL,
// several instances may share the database; a SQLite file is one
// process's (serve holds a lock on it).
func (db *DB) Shared() bool { return db.d.name == "postgres" }

// CaseVersion returns the case's version, which each write to it
// increases.
func (db *DB) CaseVersion(ctx context.Context, caseID int64) (int64, error) {
	var v int64
	err := db.read.QueryRowContext(ctx, `SELECT version FROM cases WHERE id = ?`, caseID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errNotFound
	}
	return v, err
}

// changed notes that the transaction changes the cases.
func (t *txn) changed(caseIDs ...int64) { t.cases = append(t.cases, caseIDs...) }

// changedRuns notes that the transaction changes the cases of the probe
// runs.
func (t *txn) changedRuns(runIDs ...int64) { t.runs = append(t.runs, runIDs...) }

// finished notes that the transaction finishes the probe runs (it notes
// their cases with changed).
func (t *txn) finished(runIDs ...int64) { t.done = append(t.done, runIDs...) }

// changedHost notes that the transaction changes what the pages of every
// case of host show (a notice).
func (t *txn) changedHost(host string) { t.hosts = append(t.hosts, host) }

// maxIn bounds the ids in one IN list.
const maxIn = 500

// maxCaseSignals bounds the "case" signals of one transaction: past it,
// one signal with no case says look again at every case.
const maxCaseSignals = 16

// bump increases the versions of the cases the transaction changed, and
// returns the change, or nil when it changed none.
func (t *txn) bump(ctx context.Context) (*wizard.Change, error) {
	if len(t.cases)+len(t.runs)+len(t.hosts) == 0 {
		return nil, nil
	}
	ch := &wizard.Change{Finished: dedupe(t.done)}
	ids := dedupe(t.cases)
	runs := dedupe(t.runs)
	var cases []int64
	if len(runs) == 0 && len(ids) == 1 {
		// The common write, to one case: no need to be told which.
		if _, err := t.ExecContext(ctx, `UPDATE cases SET version = version + 1 WHERE id = ?`, ids[0]); err != nil {
			return nil, err
		}
		cases, ids = ids, nil
	}
	for len(ids)+len(runs) > 0 {
		var where []string
		var args []any
		n := min(len(ids), maxIn)
		if n > 0 {
			where = append(where, `id IN (`+marks(n)+`)`)
			args = appendIDs(args, ids[:n])
			ids = ids[n:]
		}
		m := min(len(runs), maxIn)
		if m > 0 {
			where = append(where, `id IN (SELECT case_id FROM probe_runs WHERE id IN (`+marks(m)+`))`)
			args = appendIDs(args, runs[:m])
			runs = runs[m:]
		}
		rows, err := t.QueryContext(ctx, `UPDATE cases SET version = version + 1 WHERE `+strings.Join(where, ` OR `)+` RETURNING id`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			cases = append(cases, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	// A case listed by id and by run was increased twice: no matter, a
	// version only has to grow.
	ch.Cases = dedupe(cases)
	for _, host := range dedupe(t.hosts) {
		if _, err := t.ExecContext(ctx, `UPDATE cases SET version = version + 1 WHERE host = ?`, host); err != nil {
			return nil, err
		}
		ch.All = true
	}
	if ch.All || len(ch.Cases) > maxCaseSignals {
		return ch, t.notify(ctx, "case", "")
	}
	for _, id := range ch.Cases {
		if err := t.notify(ctx, "case", strconv.FormatInt(id, 10)); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

// changedAfterCommit calls the hooks with a committed change.
func (db *DB) changedAfterCommit(ch *wizard.Change) {
	if ch == nil {
		return
	}
	db.hooks.mu.RLock()
	fns := db.hooks.fns
	db.hooks.mu.RUnlock()
	for _, fn := range fns {
		fn(*ch)
	}
}

func dedupe[T int64 | string](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// marks is n placeholders, comma-separated.
func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func appendIDs(args []any, ids []int64) []any {
	for _, id := range ids {
		args = append(args, id)
	}
	return args
}
