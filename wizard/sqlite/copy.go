package sqlite

import (
	"context"
	"fmt"
	"strings"
)

// copyTables are the store's tables, each after the tables its rows refer
// to. The search index is not among them: each engine builds its own as
// the cases and notes arrive.
var copyTables = []string{
	"trees", "users", "sessions", "cases", "steps", "probe_runs", "notes", "status_changes", "notices",
	"vantages", "agents", "agent_jobs", "webhooks", "events", "deliveries", "incidents_opened", "api_keys", "mails",
}

// TableCount is how many rows of one table Copy copied.
type TableCount struct {
	Table string
	Rows  int64
}

// Copy copies everything the store from holds (cases and their history,
// accounts, sessions, keys, agents, webhooks and their outbox, mails) into
// to, which must hold nothing yet: a database just made by Open. It reads
// from one snapshot of from and writes in one transaction, so a copy is
// whole or not made at all; ids are kept, so links, tokens and references
// stay valid. It returns how many rows of each table it copied.
func Copy(ctx context.Context, from, to *DB) ([]TableCount, error) {
	for _, t := range copyTables {
		var any int
		if err := to.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM `+t+` LIMIT 1) AS one`).Scan(&any); err != nil {
			return nil, fmt.Errorf("looking into %s: %w", to.path, err)
		}
		if any > 0 {
			return nil, fmt.Errorf("%s is not empty (its table %s has rows): gatecheck copy fills a new database, and would not mix two installations", to.path, t)
		}
	}
	src, err := from.read.BeginTx(ctx, from.d.snapshotTx)
	if err != nil {
		return nil, err
	}
	defer src.Rollback()
	var counts []TableCount
	err = to.tryTx(ctx, to.d.writeTx, func(dst *txn) error {
		for _, t := range copyTables {
			n, hasID, err := copyTable(ctx, &txn{tx: src, d: from.d}, dst, t)
			if err != nil {
				return fmt.Errorf("copying table %s: %w", t, err)
			}
			counts = append(counts, TableCount{t, n})
			if hasID && to.d == postgresDialect {
				// The identity goes on after the ids copied.
				if _, err := dst.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence(?, 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM `+t+`), false)`, t); err != nil {
					return fmt.Errorf("moving the ids of %s on: %w", t, err)
				}
			}
		}
		return nil
	})
	return counts, err
}

// copyTable copies the rows of table t from src to dst, in id order where
// there are ids (probe runs refer to earlier runs), turning values into
// what dst's columns take (SQLite's 0 and 1 into PostgreSQL's booleans).
// It says whether the table has ids.
func copyTable(ctx context.Context, src, dst *txn, t string) (n int64, hasID bool, err error) {
	kinds, err := columnKinds(ctx, dst, t)
	if err != nil {
		return 0, false, err
	}
	_, hasID = kinds["id"]
	n, err = copyRows(ctx, src, dst, t, kinds, hasID)
	return n, hasID, err
}

func copyRows(ctx context.Context, src, dst *txn, t string, kinds map[string]string, hasID bool) (int64, error) {
	order := ""
	if hasID {
		order = " ORDER BY id"
	}
	rows, err := src.QueryContext(ctx, `SELECT * FROM `+t+order)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	for _, c := range cols {
		if _, ok := kinds[c]; !ok {
			return 0, fmt.Errorf("the destination's table has no column %s: are both gatecheck binaries the same version?", c)
		}
	}
	insert, err := dst.PrepareContext(ctx, `INSERT INTO `+t+` (`+strings.Join(cols, ", ")+`) VALUES (`+strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")+`)`)
	if err != nil {
		return 0, err
	}
	defer insert.Close()
	vals, ptrs := make([]any, len(cols)), make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		for i, c := range cols {
			vals[i] = convert(vals[i], kinds[c])
		}
		if _, err := insert.ExecContext(ctx, vals...); err != nil {
			return n, fmt.Errorf("row %d: %w", n+1, err)
		}
		n++
	}
	return n, rows.Err()
}

// columnKinds returns the type of each column of table t, as the driver
// names it (BOOL, TEXT, BYTEA, INTEGER...).
func columnKinds(ctx context.Context, tx *txn, t string) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT * FROM `+t+` LIMIT 0`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	kinds := map[string]string{}
	for _, ct := range types {
		kinds[ct.Name()] = strings.ToUpper(ct.DatabaseTypeName())
	}
	return kinds, rows.Err()
}

// convert makes v, read from one engine, a value of the other's column
// kind.
func convert(v any, kind string) any {
	switch x := v.(type) {
	case int64:
		if kind == "BOOL" || kind == "BOOLEAN" {
			return x != 0
		}
	case []byte:
		if kind != "BYTEA" && kind != "BLOB" {
			return string(x)
		}
	case string:
		if kind == "BYTEA" || kind == "BLOB" {
			return []byte(x)
		}
	}
	return v
}
