// Package sqlite is gatecheck's case store, on SQLite (a file, the
// default) or on PostgreSQL (a postgres:// URL). The queries are shared;
// what differs per engine sits in dialect_sqlite.go and
// dialect_postgres.go, the migrations in migration/ (SQLite) and
// migration/postgres/.
package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

//go:embed migration/*.sql migration/postgres/*.sql
var migrationFS embed.FS

// DB is the case store. On SQLite, writes go through one connection, so
// they queue in Go instead of failing with "database is locked", and reads
// use a pool; on PostgreSQL one pool does both, and write transactions are
// serializable, run again when PostgreSQL reports a conflict.
type DB struct {
	path  string
	d     *dialect
	write *pool
	read  *pool
	// Now is the clock; tests replace it.
	Now func() time.Time
	// hub carries signals to this process's listeners (notify.go).
	hub *hub
	// hooks are told of the writes committed (changes.go).
	hooks hooks
	// IncidentMinReports and IncidentWindow say when reports of one host
	// and verdict open an incident (the incident.opened event): that many
	// unresolved cases within the window (default 3 in an hour).
	IncidentMinReports int
	IncidentWindow     time.Duration
}

// Option tunes Open.
type Option func(*options)

type options struct {
	log *slog.Logger
}

// WithLogger says where Open reports what it changed on disk (the files'
// modes it tightened); the default is slog.Default().
func WithLogger(log *slog.Logger) Option {
	return func(o *options) { o.log = log }
}

// IsPostgres says whether the store's address names a PostgreSQL
// database (a postgres:// or postgresql:// URL) rather than a SQLite file.
func IsPostgres(addr string) bool {
	return strings.HasPrefix(addr, "postgres://") || strings.HasPrefix(addr, "postgresql://")
}

// Open opens (creating if needed) and migrates the store at addr: a
// postgres:// or postgresql:// URL opens a PostgreSQL database, anything
// else is the path of a SQLite file.
//
// A SQLite database holds webhook secrets, password hashes and every
// case's token, so its files are the owner's alone (mode 0600): a new
// database is created so, SQLite gives its -wal and -shm files the main
// file's mode, and files an older gatecheck left readable by others are
// tightened, with a line in the log for each.
func Open(ctx context.Context, addr string, opts ...Option) (*DB, error) {
	if IsPostgres(addr) {
		return openPostgres(ctx, addr)
	}
	return open(ctx, addr, "", opts...)
}

// defaults sets the clock and the incident thresholds.
func (db *DB) defaults() {
	db.Now, db.IncidentMinReports, db.IncidentWindow = time.Now, 3, time.Hour
	if db.hub == nil {
		db.hub = newHub()
	}
}

// Engine is the store's engine: "sqlite" or "postgres".
func (db *DB) Engine() string { return db.d.name }

// Close closes the database.
func (db *DB) Close() error {
	db.hub.close()
	if db.read == db.write {
		return db.write.Close()
	}
	return errors.Join(db.read.Close(), db.write.Close())
}

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error {
	var n int
	return db.read.QueryRowContext(ctx, "SELECT 1").Scan(&n)
}

// migrations returns the names of the engine's embedded migrations, in
// the order they apply.
func (d *dialect) migrations() ([]string, error) {
	pattern := "migration/*.sql"
	if d.name == "postgres" {
		pattern = "migration/postgres/*.sql"
	}
	names, err := fs.Glob(migrationFS, pattern)
	sort.Strings(names)
	return names, err
}

// migrate applies the embedded migrations not yet applied, in name order,
// each in its own transaction, on conn; before, when set, stops at the
// first named so or later.
func migrate(ctx context.Context, conn *sql.Conn, d *dialect, before string) error {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY)`); err != nil {
		return err
	}
	names, err := d.migrations()
	if err != nil {
		return err
	}
	for _, name := range names {
		if before != "" && name[strings.LastIndexByte(name, '/')+1:] >= before {
			break
		}
		if err := migrateOne(ctx, conn, d, name); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

func migrateOne(ctx context.Context, conn *sql.Conn, d *dialect, name string) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT COUNT(*) FROM migrations WHERE name = ?`), name).Scan(&n); err != nil || n > 0 {
		return err
	}
	src, err := migrationFS.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(src)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO migrations (name) VALUES (?)`), name); err != nil {
		return err
	}
	return tx.Commit()
}

// inTx runs fn in a write transaction and commits it when fn returns no
// error. On PostgreSQL a transaction that fails because a concurrent one
// changed what it read (a serialization failure, a deadlock) is run again,
// a few times, after a short random pause: fn must not keep anything from
// an attempt that failed.
func (db *DB) inTx(ctx context.Context, fn func(tx *txn) error) error {
	return db.inTxWith(ctx, db.d.writeTx, fn)
}

// inTxWith is inTx with the transaction's options.
func (db *DB) inTxWith(ctx context.Context, opts *sql.TxOptions, fn func(tx *txn) error) error {
	for attempt := 1; ; attempt++ {
		err := db.tryTx(ctx, opts, fn)
		if err == nil || attempt == maxTxAttempts || !db.d.retry(err) || ctx.Err() != nil {
			return err
		}
		pause := time.Duration(attempt) * time.Millisecond
		time.Sleep(pause + mrand.N(pause))
	}
}

func (db *DB) tryTx(ctx context.Context, opts *sql.TxOptions, fn func(tx *txn) error) error {
	tx, err := db.write.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	t := &txn{tx: tx, d: db.d}
	if err := fn(t); err != nil {
		return err
	}
	ch, err := t.bump(ctx)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, s := range t.signals {
		db.hub.deliver(s[0], s[1])
	}
	db.changedAfterCommit(ch)
	return nil
}

// reportJSON is a report as stored: its JSON, with every NUL character
// (\u0000, which a hostile server can put in a header or a body that a
// report quotes) made U+FFFD, since PostgreSQL's json cannot read one and
// the store reads reports' fields in SQL (agentjobs.go).
func reportJSON(rep any) ([]byte, error) {
	raw, err := json.Marshal(rep)
	if err != nil || !bytes.Contains(raw, []byte(`\u0000`)) {
		return raw, err
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 == len(raw) {
			out = append(out, raw[i])
			continue
		}
		// An escape: \u0000 becomes \ufffd; any other (\\ included) is
		// kept whole, so that what follows it is not read as one.
		if bytes.HasPrefix(raw[i:], []byte(`\u0000`)) {
			out = append(out, `\ufffd`...)
			i += len(`\u0000`) - 1
			continue
		}
		out = append(out, raw[i], raw[i+1])
		i++
	}
	return out, nil
}

// isConstraint reports a constraint violation (a unique name taken, a
// reference to nothing).
func (db *DB) isConstraint(err error) bool {
	return err != nil && db.d.constraint(err)
}

// newToken returns 160 random bits in lower-case base32: unguessable
// case links and session tokens.
func newToken() string {
	b := make([]byte, 20)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// nanos is t in Unix nanoseconds, 0 for the zero time. Times an int64 of
// nanoseconds cannot hold (before 1678 or after 2262, which only a date
// filter asks for) are clamped, not wrapped around.
func nanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minNanos):
		return math.MinInt64
	case t.After(maxNanos):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var minNanos, maxNanos = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

var errNotFound = wizard.Errorf(wizard.ENOTFOUND, "There is no such case. Check the link: it may have been cut short.")
