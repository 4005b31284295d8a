package sqlite

import (
	"context"
	"database/sql"
	"strconv"
	"sync"
)

// dialect is what differs between the engines the store speaks. The
// queries are written once, in SQLite's spelling with ? placeholders
// (?NNN for a numbered one); the rest differs here and in the small
// dialect_*.go files.
type dialect struct {
	// name is "sqlite" or "postgres".
	name string
	// numbered says whether placeholders are rebound to $1, $2...
	numbered bool
	rebound  sync.Map // query -> rebound query
	// writeTx are the options of the store's write transactions.
	writeTx *sql.TxOptions
	// snapshotTx are the options of a read-only transaction that sees one
	// moment of the database (copy reads its source in one).
	snapshotTx *sql.TxOptions
	// retry says whether a transaction that failed with err may succeed
	// if run again (a serialization failure or a deadlock).
	retry func(err error) bool
	// constraint says whether err is a constraint violation (a unique
	// name taken, a reference to nothing).
	constraint func(err error) bool
	// searchQuery turns what a person typed into the engine's full-text
	// query ("" when there is nothing to look for); matchCount and
	// matchIDs take it as their one argument.
	searchQuery func(s string) string
	matchCount  string
	matchIDs    string
	// jsonText is the SQL of the value at a dotted path ("a.b") of the
	// JSON text expr, as text (NULL when absent).
	jsonText func(expr, path string) string
	// text, when set, makes a query's string arguments text the engine
	// can store.
	text func(args []any) []any
	// claim ends a SELECT of agent_jobs j rows a transaction is about to
	// change, so that concurrent transactions skip them.
	claim string
	// skipLocked ends a subquery that picks rows a claim is about to
	// move (claims.go), so that concurrent claims skip each other's rows.
	skipLocked string
	// rowLockTx are the options of a write transaction that locks the
	// rows it reads (forUpdate) and then sees their latest version, where
	// a serializable one would fail under contention on one row (a flood
	// of reports of one site claiming its probe job); forUpdate ends the
	// SELECT that locks them.
	rowLockTx *sql.TxOptions
	forUpdate string
}

// rebind rewrites q's placeholders for the engine.
func (d *dialect) rebind(q string) string {
	if !d.numbered {
		return q
	}
	if v, ok := d.rebound.Load(q); ok {
		return v.(string)
	}
	out := make([]byte, 0, len(q)+8)
	n, quote := 0, byte(0)
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			if j > i+1 {
				out = append(out, '$')
				out = append(out, q[i+1:j]...)
				i = j - 1
				continue
			}
			n++
			out = append(out, '$')
			out = strconv.AppendInt(out, int64(n), 10)
			continue
		}
		out = append(out, c)
	}
	d.rebound.Store(q, string(out))
	return string(out)
}

// args makes a query's arguments values the engine can store.
func (d *dialect) args(args []any) []any {
	if d.text == nil {
		return args
	}
	return d.text(args)
}

// pool is a connection pool taking the shared SQL.
type pool struct {
	*sql.DB
	d *dialect
}

// ExecContext runs q, rebound for the engine.
func (p *pool) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return p.DB.ExecContext(ctx, p.d.rebind(q), p.d.args(args)...)
}

// Exec runs q, rebound for the engine.
func (p *pool) Exec(q string, args ...any) (sql.Result, error) {
	return p.ExecContext(context.Background(), q, args...)
}

// QueryContext runs q, rebound for the engine.
func (p *pool) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return p.DB.QueryContext(ctx, p.d.rebind(q), p.d.args(args)...)
}

// Query runs q, rebound for the engine.
func (p *pool) Query(q string, args ...any) (*sql.Rows, error) {
	return p.QueryContext(context.Background(), q, args...)
}

// QueryRowContext runs q, rebound for the engine.
func (p *pool) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return p.DB.QueryRowContext(ctx, p.d.rebind(q), p.d.args(args)...)
}

// QueryRow runs q, rebound for the engine.
func (p *pool) QueryRow(q string, args ...any) *sql.Row {
	return p.QueryRowContext(context.Background(), q, args...)
}

// txn is a transaction taking the shared SQL.
type txn struct {
	tx *sql.Tx
	d  *dialect
	// signals are sent once the transaction commits (SQLite; see notify).
	signals [][2]string
	// What the transaction changed (changes.go): cases by id, by probe
	// run, by host; done are the probe runs it finished.
	cases, runs, done []int64
	hosts             []string
}

func (t *txn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.d.rebind(q), t.d.args(args)...)
}

func (t *txn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.d.rebind(q), t.d.args(args)...)
}

func (t *txn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.d.rebind(q), t.d.args(args)...)
}

func (t *txn) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	return t.tx.PrepareContext(ctx, t.d.rebind(q))
}

// maxTxAttempts bounds how often inTx runs a transaction that keeps
// failing with serialization failures.
const maxTxAttempts = 10
