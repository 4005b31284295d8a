package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"strings"
	"unicode"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// sqliteDialect is SQLite's: one writer at a time (the write pool has one
// connection and takes its lock at BEGIN), so nothing needs a retry.
var sqliteDialect = &dialect{
	name:  "sqlite",
	retry: func(error) bool { return false },
	constraint: func(err error) bool {
		var se sqlite3.Error
		return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint
	},
	searchQuery: ftsQuery,
	matchCount:  `SELECT COUNT(*) FROM case_search WHERE case_search MATCH ?`,
	matchIDs:    `SELECT docid FROM case_search WHERE case_search MATCH ?`,
	jsonText: func(expr, path string) string {
		return `json_extract(` + expr + `, '$.` + path + `')`
	},
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

// open opens the SQLite database at path and applies the migrations named
// before before (all of them when it is empty): tests make a database as
// an older gatecheck left it.
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
	db := &DB{path: path, d: sqliteDialect, write: &pool{w, sqliteDialect}, read: &pool{r, sqliteDialect}}
	db.defaults()
	if err := db.migrateSQLite(ctx, before); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return db, nil
}

// migrateSQLite migrates on the one write connection: nothing else can
// write meanwhile.
func (db *DB) migrateSQLite(ctx context.Context, before string) error {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return migrate(ctx, conn, db.d, before)
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
// copy is the owner's alone (mode 0600), as the database is. A PostgreSQL
// store is backed up with PostgreSQL's own tools (pg_dump): Backup refuses,
// saying so.
func (db *DB) Backup(ctx context.Context, path string) error {
	if db.d != sqliteDialect {
		return ErrBackupPostgres
	}
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

// ErrBackupPostgres is Backup's answer on PostgreSQL.
var ErrBackupPostgres = errors.New("gatecheck backup copies a SQLite file; this database is on PostgreSQL: back it up with pg_dump (for example pg_dump -Fc -f gatecheck.dump 'postgres://...'), or make a SQLite copy with gatecheck copy --from 'postgres://...' --to copy.db")

// IntegrityCheck runs the engine's check of the database and returns its
// verdict, "ok" when sound: SQLite's integrity check, or on PostgreSQL (which
// checks its pages itself) a count of every table of the store.
func (db *DB) IntegrityCheck(ctx context.Context) (string, error) {
	if db.d != sqliteDialect {
		for _, t := range copyTables {
			var n int64
			if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t).Scan(&n); err != nil {
				return "", fmt.Errorf("table %s: %w", t, err)
			}
		}
		return "ok", nil
	}
	var res string
	err := db.read.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res)
	return res, err
}

// ftsQuery turns what a person typed into an FTS query that cannot be a
// syntax error: each word quoted, all required, the last one as a prefix.
// A word without a letter or digit (a dash, «) is left out: the tokenizer
// finds nothing in it, and an empty phrase would match no case. So are the
// words after the first maxTerms: FTS4 refuses a query of more than 4096.
func ftsQuery(s string) string {
	var terms []string
	for _, w := range searchWords(s) {
		terms = append(terms, `"`+strings.ReplaceAll(w, `"`, ``)+`"`)
	}
	if len(terms) == 0 {
		return ""
	}
	last := terms[len(terms)-1]
	terms[len(terms)-1] = last[:len(last)-1] + `*"`
	return strings.Join(terms, " ")
}

// searchWords are the words of a search, as both engines take them: split
// at anything but letters, digits, '-' and '_', those with no letter or
// digit left out, at most maxTerms.
func searchWords(s string) []string {
	var words []string
	for _, w := range strings.FieldsFunc(s, func(r rune) bool {
		return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 127)
	}) {
		if len(words) == maxTerms {
			break
		}
		if strings.IndexFunc(w, func(r rune) bool { return unicode.In(r, unicode.L, unicode.N, unicode.Co) }) < 0 {
			continue
		}
		words = append(words, w)
	}
	return words
}

// maxTerms is how many words of a search count.
const maxTerms = 100
