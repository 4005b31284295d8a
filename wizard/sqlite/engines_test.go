package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/wizard/sqlite/pgtest"
)

// The test binary's PostgreSQL server, and the database migrated once
// that each test's database is cloned from.
var (
	pg    *pgtest.Server
	pgErr error
)

const pgTemplate = "gatecheck_template"

func TestMain(m *testing.M) {
	ctx := context.Background()
	pg, pgErr = pgtest.Start(ctx)
	if pgErr == nil {
		pgErr = migrateTemplate(ctx)
	}
	code := m.Run()
	if pg != nil {
		if err := pg.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping PostgreSQL:", err)
		}
	}
	os.Exit(code)
}

func migrateTemplate(ctx context.Context) error {
	url, err := pg.CreateDatabase(ctx, pgTemplate)
	if err != nil {
		return err
	}
	db, err := Open(ctx, url)
	if err != nil {
		return err
	}
	return db.Close()
}

// onEngines runs test once on each engine, as the subtests sqlite and
// postgres: the store's conformance suite. MustOpenDB gives each the
// store of its engine.
func onEngines(t *testing.T, test func(t *testing.T)) {
	t.Run("sqlite", test)
	t.Run("postgres", test)
}

// engineOf is the engine of the onEngines subtest tb runs in ("sqlite"
// outside one).
func engineOf(tb testing.TB) string {
	if parts := strings.Split(tb.Name(), "/"); len(parts) > 1 && parts[1] == "postgres" {
		return "postgres"
	}
	return "sqlite"
}

// MustOpenDB opens a fresh store: a database file in the test's temporary
// folder, or in a postgres subtest of onEngines a PostgreSQL database of
// its own, cloned from the migrated template. Without PostgreSQL, such a
// test is skipped, or fails when GATECHECK_POSTGRES=require.
func MustOpenDB(tb testing.TB) *DB {
	tb.Helper()
	ctx := context.Background()
	if engineOf(tb) == "postgres" {
		return mustOpenPG(tb, 1)[0]
	}
	db, err := Open(ctx, filepath.Join(tb.TempDir(), "gatecheck.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// MustOpenShared opens n stores on one fresh database, as n instances of
// gatecheck would: on PostgreSQL n handles (each with its own pool and
// listener) on one database; on SQLite, which one process owns, one store
// n times.
func MustOpenShared(tb testing.TB, n int) []*DB {
	tb.Helper()
	if engineOf(tb) == "postgres" {
		return mustOpenPG(tb, n)
	}
	db := MustOpenDB(tb)
	dbs := make([]*DB, n)
	for i := range dbs {
		dbs[i] = db
	}
	return dbs
}

// mustOpenPG opens n stores on one PostgreSQL database cloned from the
// migrated template.
func mustOpenPG(tb testing.TB, n int) []*DB {
	tb.Helper()
	ctx := context.Background()
	if pgErr != nil {
		if pgtest.Required() {
			tb.Fatalf("PostgreSQL is required (GATECHECK_POSTGRES=require): %v", pgErr)
		}
		tb.Skipf("no PostgreSQL: %v", pgErr)
	}
	url, drop, err := pg.Clone(ctx, pgTemplate)
	if err != nil {
		tb.Fatal(err)
	}
	dbs := make([]*DB, n)
	tb.Cleanup(func() {
		for _, db := range dbs {
			if db != nil {
				db.Close()
			}
		}
		if err := drop(); err != nil {
			tb.Error(err)
		}
	})
	for i := range dbs {
		if dbs[i], err = Open(ctx, url); err != nil {
			tb.Fatal(err)
		}
	}
	return dbs
}
