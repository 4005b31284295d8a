package sqlite

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// Claims hand the work that is due (mails, webhook deliveries, watched
// cases' checks) to one instance of several sharing the database: the
// claim moves the work's due time to the end of a lease in the statement
// that picks it, so that other instances skip it, and an instance that
// dies holding it loses it when the lease ends (at least once, never
// lost). The work's own record (MailSent, Delivered, WatchChecked...)
// ends the claim. On PostgreSQL concurrent claims skip the rows another
// transaction is claiming (FOR UPDATE SKIP LOCKED), as riverqueue does;
// SQLite's single writer makes them one after the other.

// claim moves up to limit rows of table that are due at now (due, a
// condition with ?2 for now) to until (set, an assignment with ?1), oldest
// first by order, and returns their ids.
func (db *DB) claim(ctx context.Context, table, set, due, order string, now, until time.Time, limit int) ([]int64, error) {
	q := `UPDATE ` + table + ` SET ` + set + ` WHERE id IN (SELECT id FROM ` + table + ` WHERE ` + due +
		` ORDER BY ` + order + ` LIMIT ?3` + db.d.skipLocked + `) RETURNING id`
	var ids []int64
	err := db.inTx(ctx, func(tx *txn) error {
		ids = ids[:0]
		rows, err := tx.QueryContext(ctx, q, nanos(until), nanos(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		if table == "cases" {
			tx.changed(ids...) // a watched case's page says when it is checked next
		}
		return rows.Err()
	})
	slices.Sort(ids)
	return ids, err
}

// idList is ids as a SQL list, for an IN (...) of ids the store made.
func idList(ids []int64) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}

// ClaimMails takes up to limit pending mails due at now for this instance
// to send, oldest first: no other instance is given them until lease has
// passed (MailSent or MailFailed end the claim).
func (db *DB) ClaimMails(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*wizard.Mail, error) {
	ids, err := db.claim(ctx, "mails", "next_at = ?1", "state = 'pending' AND next_at <= ?2", "next_at, id", now, now.Add(lease), limit)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return db.mails(ctx, `WHERE id IN (`+idList(ids)+`) ORDER BY id`)
}

// ClaimDeliveries takes up to limit pending webhook deliveries due at now
// for this instance to make, oldest first: no other instance is given them
// until lease has passed (Delivered or DeliveryFailed end the claim).
func (db *DB) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*wizard.Delivery, error) {
	ids, err := db.claim(ctx, "deliveries", "next_at = ?1", "state = 'pending' AND next_at <= ?2", "next_at, id", now, now.Add(lease), limit)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return db.deliveries(ctx, ` WHERE d.id IN (`+idList(ids)+`) ORDER BY d.id`)
}

// ClaimWatches takes up to limit watched cases whose check is due at now
// for this instance to check: their next check moves to the lease's end,
// which WatchChecked replaces with the real next one, and ReleaseWatch
// gives back one the instance could not check.
func (db *DB) ClaimWatches(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*wizard.Case, error) {
	ids, err := db.claim(ctx, "cases", "watch_next = ?1", "watch_next > 0 AND watch_next <= ?2", "watch_next, id", now, now.Add(lease), limit)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return db.casesWhere(ctx, `id IN (`+idList(ids)+`) ORDER BY id`)
}

// ReleaseWatch makes a claimed case's check due at due again, for any
// instance, unless the watch changed meanwhile (checked, stopped or
// started over).
func (db *DB) ReleaseWatch(ctx context.Context, caseID int64, claimedUntil, due time.Time) error {
	return db.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE cases SET watch_next = ? WHERE id = ? AND watch_next = ?`, nanos(due), caseID, nanos(claimedUntil))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			tx.changed(caseID)
		}
		return nil
	})
}

// ReleaseMail gives back a claimed mail that was not tried (its instance
// is stopping), due at due for any instance.
func (db *DB) ReleaseMail(ctx context.Context, id int64, due time.Time) error {
	return db.inTx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `UPDATE mails SET next_at = ? WHERE id = ? AND state = 'pending'`, nanos(due), id)
		return err
	})
}

// ReleaseDelivery gives back a claimed delivery that was not tried (its
// instance is stopping), due at due for any instance.
func (db *DB) ReleaseDelivery(ctx context.Context, id int64, due time.Time) error {
	return db.inTx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `UPDATE deliveries SET next_at = ? WHERE id = ? AND state = 'pending'`, nanos(due), id)
		return err
	})
}
