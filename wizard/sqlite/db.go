// Package sqlite is gatecheck's case store on SQLite.
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
	sqlite3 "github.com/mattn/go-sqlite3"
)

//go:embed migration/*.sql
var migrationFS embed.FS

// DB is the case store. Writes go through one connection, so they queue in
// Go instead of failing with "database is locked"; reads use a pool.
type DB struct {
	path  string
	write *sql.DB
	read  *sql.DB
	// Now is the clock; tests replace it.
	Now func() time.Time
	// IncidentMinReports and IncidentWindow say when reports of one host
	// and verdict open an incident (the incident.opened event): that many
	// unresolved cases within the window (default 3 in an hour).
	IncidentMinReports int
	IncidentWindow     time.Duration
}

// dsn builds a data source name; options go in the DSN so that every
// pooled connection gets them.
func dsn(path string, extra ...string) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "5000")
	q.Set("_foreign_keys", "on")
	q.Set("_synchronous", "NORMAL")
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return "file:" + path + "?" + q.Encode()
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

// Open opens (creating if needed) and migrates the database at path.
//
// The database holds webhook secrets, password hashes and every case's
// token, so its files are the owner's alone (mode 0600): a new database is
// created so, SQLite gives its -wal and -shm files the main file's mode,
// and files an older gatecheck left readable by others are tightened, with
// a line in the log for each.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	return open(ctx, path, "", opts...)
}

// open opens the database at path and applies the migrations named before
// before (all of them when it is empty): tests make a database as an older
// gatecheck left it.
func open(ctx context.Context, path, before string, opts ...Option) (*DB, error) {
	if path == "" || strings.Contains(path, ":memory:") {
		return nil, errors.New("the case store needs a file: an in-memory database differs per connection")
	}
	o := options{log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if err := ownerOnly(path, o.log); err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	w, err := sql.Open("sqlite3", dsn(path, "_txlock", "immediate"))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite3", dsn(path, "_query_only", "true"))
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(max(4, runtime.NumCPU()*2))
	db := &DB{path: path, write: w, read: r, Now: time.Now, IncidentMinReports: 3, IncidentWindow: time.Hour}
	if err := db.migrate(ctx, before); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error {
	return errors.Join(db.read.Close(), db.write.Close())
}

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error {
	var n int
	return db.read.QueryRowContext(ctx, "SELECT 1").Scan(&n)
}

// migrate applies the embedded migrations not yet applied, in name order,
// each in its own transaction; before, when set, stops at the first named
// so or later.
func (db *DB) migrate(ctx context.Context, before string) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrationFS, "migration/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if before != "" && strings.TrimPrefix(name, "migration/") >= before {
			break
		}
		if err := db.migrateOne(ctx, name); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

func (db *DB) migrateOne(ctx context.Context, name string) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM migrations WHERE name = ?`, name).Scan(&n); err != nil || n > 0 {
		return err
	}
	src, err := migrationFS.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(src)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO migrations (name) VALUES (?)`, name); err != nil {
		return err
	}
	return tx.Commit()
}

// fileMode is the mode of the database's files: the owner's alone.
const fileMode fs.FileMode = 0o600

// ownerOnly makes the database at path, and the -wal, -shm and -journal
// files beside it, readable by their owner only: it creates the database
// file with mode 0600 when there is none (SQLite then gives its other
// files the same mode), and tightens existing files that others may read,
// logging each.
func ownerOnly(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	switch {
	case err == nil:
		// An empty file is an empty database to SQLite.
		if err := f.Close(); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrExist):
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if old := fi.Mode().Perm(); fi.Mode().IsRegular() && old&^fileMode != 0 {
			if err := os.Chmod(p, old&fileMode); err != nil {
				return fmt.Errorf("making %s readable by its owner only: %w", p, err)
			}
			log.Warn("tightened file mode", "path", p, "old_mode", fmt.Sprintf("%04o", old), "mode", fmt.Sprintf("%04o", old&fileMode))
		}
	}
	return nil
}

// Backup writes a consistent copy of the live database to path (which must
// not exist), with VACUUM INTO: readers and writers carry on meanwhile. The
// copy is the owner's alone (mode 0600), as the database is.
func (db *DB) Backup(ctx context.Context, path string) error {
	// Created here, empty and 0600, before SQLite writes into it (it
	// would make it 0644): the copy is never readable by others, not
	// even while it is written.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	// Its own connection: the readers are query-only, and the writer
	// must stay free for the application while the copy is made.
	conn, err := sql.Open("sqlite3", dsn(db.path))
	if err != nil {
		os.Remove(path)
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	return nil
}

// IntegrityCheck runs SQLite's integrity check and returns its verdict.
func (db *DB) IntegrityCheck(ctx context.Context) (string, error) {
	var res string
	err := db.read.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res)
	return res, err
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

// isConstraint reports a SQLite constraint violation (unique name, say).
func isConstraint(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint
}

var errNotFound = wizard.Errorf(wizard.ENOTFOUND, "There is no such case. Check the link: it may have been cut short.")
