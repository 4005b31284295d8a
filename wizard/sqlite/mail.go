package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// QueueMail records the hand-off of a case by gatecheck's mail: the step
// records, the move to escalated (its status change and case.escalated
// event) and the mail itself, all in one transaction.
func (db *DB) QueueMail(ctx context.Context, caseID int64, recs []wizard.StepRecord, m *wizard.Mail) error {
	return db.inTx(ctx, func(tx *txn) error {
		var from wizard.Status
		if err := tx.QueryRowContext(ctx, `SELECT status FROM cases WHERE id = ?`, caseID).Scan(&from); errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		} else if err != nil {
			return err
		}
		tx.changed(caseID)
		var sent int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(created_at), 0) FROM mails WHERE case_id = ? AND to_addr = ? AND kind = 'handoff'`, caseID, m.To).Scan(&sent); err != nil {
			return err
		}
		if sent != 0 {
			return wizard.Errorf(wizard.ECONFLICT, "gatecheck has already sent this case to %s (at %s UTC).", m.To, fromNanos(sent).UTC().Format("2006-01-02 15:04"))
		}
		now := db.Now().UTC()
		for _, r := range recs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO steps (case_id, idx, node, choice, actor, at) VALUES (?, ?, ?, ?, ?, ?)`,
				caseID, r.Index, r.Node, r.Choice, r.Actor, nanos(r.At)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET status = ?, updated_at = ? WHERE id = ?`, wizard.StatusEscalated, nanos(now), caseID); err != nil {
			return err
		}
		if from != wizard.StatusEscalated {
			if _, err := tx.ExecContext(ctx, `INSERT INTO status_changes (case_id, from_status, to_status, actor, at) VALUES (?, ?, ?, ?, ?)`,
				caseID, from, wizard.StatusEscalated, "wizard", nanos(now)); err != nil {
				return err
			}
			if err := emit(ctx, tx, wizard.EventCaseEscalated, caseID, nil, nanos(now)); err != nil {
				return err
			}
		}
		m.Kind = wizard.MailHandoff
		return queueMail(ctx, tx, caseID, m, now)
	})
}

// queueMail puts m in the outbox in tx, due at now.
func queueMail(ctx context.Context, tx *txn, caseID int64, m *wizard.Mail, now time.Time) error {
	if m.Kind == "" {
		m.Kind = wizard.MailHandoff
	}
	m.CaseID, m.State, m.CreatedAt, m.NextAt = caseID, wizard.DeliveryPending, now, now
	tx.changed(caseID) // the case's pages say where its mails stand
	return tx.QueryRowContext(ctx, `INSERT INTO mails (case_id, kind, to_name, to_addr, subject, body, actor, next_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		caseID, m.Kind, m.ToName, m.To, m.Subject, m.Body, m.Actor, nanos(now), nanos(now)).Scan(&m.ID)
}

const mailColumns = `id, case_id, kind, to_name, to_addr, subject, body, actor, state, attempts, next_at, last_error, sent_at, created_at`

func (db *DB) mails(ctx context.Context, query string, args ...any) ([]*wizard.Mail, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+mailColumns+` FROM mails `+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*wizard.Mail
	for rows.Next() {
		var m wizard.Mail
		var next, sent, created int64
		if err := rows.Scan(&m.ID, &m.CaseID, &m.Kind, &m.ToName, &m.To, &m.Subject, &m.Body, &m.Actor, &m.State, &m.Attempts,
			&next, &m.LastError, &sent, &created); err != nil {
			return nil, err
		}
		m.NextAt, m.SentAt, m.CreatedAt = fromNanos(next), fromNanos(sent), fromNanos(created)
		out = append(out, &m)
	}
	return out, rows.Err()
}

// CaseMails returns a case's mails, oldest first.
func (db *DB) CaseMails(ctx context.Context, caseID int64) ([]*wizard.Mail, error) {
	return db.mails(ctx, `WHERE case_id = ? ORDER BY id`, caseID)
}

// DueMails returns pending mails due at now, oldest first.
func (db *DB) DueMails(ctx context.Context, now time.Time, limit int) ([]*wizard.Mail, error) {
	return db.mails(ctx, `WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?`, nanos(now), limit)
}

// MailSent records a mail the server took.
func (db *DB) MailSent(ctx context.Context, id int64) error {
	return db.mailWrite(ctx, `UPDATE mails SET state = 'delivered', attempts = attempts + 1, last_error = '', sent_at = ?
		WHERE id = ? AND state = 'pending' RETURNING case_id`, nanos(db.Now()), id)
}

// MailFailed records a failed attempt: retried at next, or given up when
// next is zero.
func (db *DB) MailFailed(ctx context.Context, id int64, reason string, next time.Time) error {
	state := wizard.DeliveryPending
	if next.IsZero() {
		state = wizard.DeliveryFailed
	}
	return db.mailWrite(ctx, `UPDATE mails SET state = ?, attempts = attempts + 1, last_error = ?, next_at = ?
		WHERE id = ? AND state = 'pending' RETURNING case_id`, state, reason, nanos(next), id)
}

// mailWrite runs an update of one pending mail that returns its case,
// noting the case changed (its pages say where its mails stand).
func (db *DB) mailWrite(ctx context.Context, query string, args ...any) error {
	return db.inTx(ctx, func(tx *txn) error {
		var caseID int64
		err := tx.QueryRowContext(ctx, query, args...).Scan(&caseID)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotPending
		} else if err != nil {
			return err
		}
		tx.changed(caseID)
		return nil
	})
}
