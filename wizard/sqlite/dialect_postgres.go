package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// postgresDialect is PostgreSQL's: write transactions are serializable,
// as SQLite's single writer makes them, and are run again when they fail
// as such transactions may (SQLSTATE 40001, or a deadlock, 40P01).
var postgresDialect = &dialect{
	name:       "postgres",
	numbered:   true,
	writeTx:    &sql.TxOptions{Isolation: sql.LevelSerializable},
	snapshotTx: &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
	retry: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
	},
	constraint: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "23")
	},
	searchQuery: tsQuery,
	// case_search.doc is the tsvector of the case's URL, ticket and
	// notes with everything but letters and digits made a space, as
	// SQLite's unicode61 tokenizer splits them (see the migration).
	matchCount: `SELECT COUNT(*) FROM case_search WHERE doc @@ to_tsquery('simple', ?)`,
	matchIDs:   `SELECT case_id FROM case_search WHERE doc @@ to_tsquery('simple', ?)`,
	jsonText: func(expr, path string) string {
		return `((` + expr + `)::jsonb #>> '{` + strings.ReplaceAll(path, ".", ",") + `}')`
	},
	claim:      ` FOR UPDATE OF j SKIP LOCKED`,
	skipLocked: ` FOR UPDATE SKIP LOCKED`,
	rowLockTx:  &sql.TxOptions{Isolation: sql.LevelReadCommitted},
	forUpdate:  ` FOR UPDATE`,
	text:       pgText,
}

// pgText makes string arguments text PostgreSQL can store: it refuses a
// NUL and bytes that are not UTF-8 in a text column, where SQLite keeps
// them. A hostile visitor or server can send either (in a note, a
// browser's report); each becomes U+FFFD instead of an error.
func pgText(args []any) []any {
	var out []any
	for i, a := range args {
		var s string
		switch v := a.(type) {
		case string:
			s = v
		case sql.NullString:
			s = v.String
		default:
			continue
		}
		if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
			continue
		}
		if out == nil {
			out = slices.Clone(args)
		}
		fixed := strings.ReplaceAll(strings.ToValidUTF8(s, "\ufffd"), "\x00", "\ufffd")
		if ns, ok := a.(sql.NullString); ok {
			out[i] = sql.NullString{String: fixed, Valid: ns.Valid}
		} else {
			out[i] = fixed
		}
	}
	if out == nil {
		return args
	}
	return out
}

// tsQuery is ftsQuery for PostgreSQL's to_tsquery: the same words, all
// required (&), the parts of a word that has several ("example-corp") one
// after the other (<->), the last part of the last word a prefix (:*).
func tsQuery(s string) string {
	var terms []string
	for _, w := range searchWords(s) {
		parts := strings.FieldsFunc(w, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
		if len(parts) == 0 {
			continue
		}
		for i, p := range parts {
			parts[i] = "'" + capWord(p) + "'"
		}
		terms = append(terms, strings.Join(parts, " <-> "))
	}
	if len(terms) == 0 {
		return ""
	}
	return strings.Join(terms, " & ") + ":*"
}

// maxWord is the longest word, in bytes, that PostgreSQL's parser keeps,
// in a tsvector as in a tsquery: it leaves out words of 2047 bytes or
// more, which would make a search for one a search for the other words.
const maxWord = 2046

// capWord cuts w to maxWord bytes, at a character's start: a longer word
// is in no case's index, and so cut it finds none.
func capWord(w string) string {
	if len(w) <= maxWord {
		return w
	}
	n := maxWord
	for n > 0 && !utf8.RuneStart(w[n]) {
		n--
	}
	return w[:n]
}

// migrationLock is the key of the advisory lock under which an instance
// migrates a PostgreSQL database, so that instances starting together
// migrate it once.
const migrationLock = 0x6761746563686b // "gatechk"

// openPostgres opens and migrates the PostgreSQL database at the URL addr.
func openPostgres(ctx context.Context, addr string) (*DB, error) {
	cfg, err := pgx.ParseConfig(addr)
	if err != nil {
		// pgx's message may quote the URL, password and all.
		return nil, errors.New("the database URL is not one PostgreSQL understands: postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=...")
	}
	where := fmt.Sprintf("PostgreSQL database %s on %s", cfg.Database, cfg.Host)
	sdb := stdlib.OpenDB(*cfg)
	n := max(8, runtime.NumCPU()*4)
	sdb.SetMaxOpenConns(n)
	sdb.SetMaxIdleConns(n)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	p := &pool{sdb, postgresDialect}
	db := &DB{path: where, d: postgresDialect, write: p, read: p, hub: newHub()}
	db.hub.start = listenPostgres(db.hub, cfg.Copy())
	db.defaults()
	if err := db.migratePostgres(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("opening %s: %w", where, err)
	}
	return db, nil
}

// migratePostgres migrates under an advisory lock held by one connection,
// so that of several instances starting at once one migrates and the
// others wait, then find nothing left to do.
func (db *DB) migratePostgres(ctx context.Context) error {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return err
	}
	err = migrate(ctx, conn, db.d, "")
	_, uerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	return errors.Join(err, uerr)
}
