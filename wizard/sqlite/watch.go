package sqlite

import (
	"context"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// Watch starts checking a case's site again on a schedule, or starts it
// over: the first check at next, none after until. A case that recovered
// is watched afresh (its site may have failed again).
func (db *DB) Watch(ctx context.Context, caseID int64, next, until time.Time) error {
	return db.execCase(ctx, caseID, `UPDATE cases SET watch_until = ?, watch_next = ?, watch_checks = 0, recovered_at = 0, updated_at = ? WHERE id = ?`,
		nanos(until), nanos(next), nanos(db.Now()), caseID)
}

// Unwatch stops a case's scheduled checks.
func (db *DB) Unwatch(ctx context.Context, caseID int64) error {
	return db.execCase(ctx, caseID, `UPDATE cases SET watch_next = 0, updated_at = ? WHERE id = ?`, nanos(db.Now()), caseID)
}

// WatchChecked records that a watched case's check was queued, and when
// the next is due: none when next is past the watch's end.
func (db *DB) WatchChecked(ctx context.Context, caseID int64, next time.Time) error {
	return db.execCase(ctx, caseID, `UPDATE cases SET watch_checks = watch_checks + 1,
		watch_next = CASE WHEN watch_next = 0 OR CAST(? AS BIGINT) > watch_until THEN 0 ELSE CAST(? AS BIGINT) END WHERE id = ?`,
		nanos(next), nanos(next), caseID)
}

// DueWatches returns up to limit watched cases whose next check is due at
// now, the longest overdue first.
func (db *DB) DueWatches(ctx context.Context, now time.Time, limit int) ([]*wizard.Case, error) {
	return db.casesWhere(ctx, `watch_next > 0 AND watch_next <= ? ORDER BY watch_next LIMIT ?`, nanos(now), limit)
}

// casesWhere reads the cases that cond (a WHERE clause, with its ORDER BY
// and LIMIT) selects.
func (db *DB) casesWhere(ctx context.Context, cond string, args ...any) ([]*wizard.Case, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+caseColumns+` FROM cases WHERE `+cond, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*wizard.Case
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// execCase runs one statement that changes case caseID, in a
// transaction that notes the change; when it changes no row, nothing is
// committed and the error is errNotFound.
func (db *DB) execCase(ctx context.Context, caseID int64, query string, args ...any) error {
	return db.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errNotFound
		}
		tx.changed(caseID)
		return nil
	})
}

// execOne runs one statement in a transaction; when it changes no row,
// nothing is committed and the error is none.
func (db *DB) execOne(ctx context.Context, none error, query string, args ...any) error {
	return db.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return none
		}
		return nil
	})
}
