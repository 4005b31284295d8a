package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// emit writes an event about a case, as the case stands in tx, and a
// delivery of it for every enabled webhook. It runs in the transaction of
// the change it reports, so that an event is sent if and only if its
// change was made.
func emit(ctx context.Context, tx *txn, name string, caseID int64, incident *wizard.EventIncident, now int64) error {
	c, err := scanCase(tx.QueryRowContext(ctx, `SELECT `+caseColumns+` FROM cases WHERE id = ?`, caseID))
	if err != nil {
		return err
	}
	ev := wizard.Event{Name: name, At: fromNanos(now), Incident: incident, Case: &wizard.EventCase{
		Token: c.Token, URL: c.URL, Host: c.Host, Ticket: c.Ticket, Status: c.Status, Verdict: c.Verdict, Gateway: c.Gateway,
		CreatedAt: c.CreatedAt, RecoveredAt: c.RecoveredAt,
	}}
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	var id int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO events (event, case_id, data, at) VALUES (?, ?, ?, ?) RETURNING id`,
		name, caseID, string(data), now).Scan(&id); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO deliveries (event_id, webhook_id, next_at) SELECT CAST(? AS BIGINT), id, CAST(? AS BIGINT) FROM webhooks WHERE disabled_at = 0`, id, now)
	return err
}

// statusEvent is the event a move to status sends, if any.
func statusEvent(to wizard.Status) string {
	switch to {
	case wizard.StatusEscalated:
		return wizard.EventCaseEscalated
	case wizard.StatusResolved:
		return wizard.EventCaseResolved
	}
	return ""
}

// openIncident sends incident.opened when the case's host and verdict have
// become an incident (IncidentMinReports unresolved cases within
// IncidentWindow) that was not opened within the window already.
func (db *DB) openIncident(ctx context.Context, tx *txn, caseID int64, now int64) error {
	var host, verdict, gateway string
	if err := tx.QueryRowContext(ctx, `SELECT host, verdict, gateway FROM cases WHERE id = ?`, caseID).Scan(&host, &verdict, &gateway); err != nil {
		return err
	}
	if verdict == "" || verdict == string(probes.Healthy) {
		return nil
	}
	// One opening per host and verdict and window, whatever the
	// isolation of the transaction: on PostgreSQL the look and the
	// opening hold a lock of the pair until the transaction ends.
	if err := tx.lock(ctx, "incident "+host+" "+verdict); err != nil {
		return err
	}
	since := now - int64(db.IncidentWindow)
	var reports int
	var first sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM cases
		WHERE host = ? AND created_at >= ? AND verdict = ? AND status != 'resolved'`, host, since, verdict).Scan(&reports, &first); err != nil {
		return err
	}
	if reports < max(db.IncidentMinReports, 1) {
		return nil
	}
	var opened int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM incidents_opened WHERE host = ? AND verdict = ? AND opened_at >= ?`,
		host, verdict, since).Scan(&opened); err != nil || opened > 0 {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO incidents_opened (host, verdict, opened_at) VALUES (?, ?, ?)`, host, verdict, now); err != nil {
		return err
	}
	return emit(ctx, tx, wizard.EventIncidentOpened, caseID,
		&wizard.EventIncident{Host: host, Verdict: verdict, Gateway: gateway, Reports: reports, FirstAt: fromNanos(first.Int64)}, now)
}

// SyncFlagWebhooks makes the flag-set webhooks those of urls.
func (db *DB) SyncFlagWebhooks(ctx context.Context, urls []string, secret string) error {
	return db.inTx(ctx, func(tx *txn) error { return db.syncFlagWebhooks(ctx, tx, urls, secret) })
}

func (db *DB) syncFlagWebhooks(ctx context.Context, tx *txn, urls []string, secret string) error {
	now := nanos(db.Now())
	rows, err := tx.QueryContext(ctx, `SELECT id, url, secret FROM webhooks WHERE source = 'flag' AND disabled_at = 0`)
	if err != nil {
		return err
	}
	kept := map[string]bool{}
	var drop []int64
	for rows.Next() {
		var id int64
		var u, s string
		if err := rows.Scan(&id, &u, &s); err != nil {
			rows.Close()
			return err
		}
		if slices.Contains(urls, u) && s == secret && !kept[u] {
			kept[u] = true
		} else {
			drop = append(drop, id)
		}
	}
	rows.Close()
	for _, id := range drop {
		if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET disabled_at = ? WHERE id = ?`, now, id); err != nil {
			return err
		}
	}
	for _, u := range urls {
		if !kept[u] {
			kept[u] = true
			if _, err := tx.ExecContext(ctx, `INSERT INTO webhooks (url, secret, source, created_by, created_at) VALUES (?, ?, 'flag', 'operator', ?)`,
				u, secret, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// AddWebhook adds a destination set by staff.
func (db *DB) AddWebhook(ctx context.Context, w *wizard.Webhook) error {
	now := db.Now().UTC()
	w.Source, w.CreatedAt = "staff", now
	return db.inTx(ctx, func(tx *txn) error {
		return tx.QueryRowContext(ctx, `INSERT INTO webhooks (url, secret, template, source, created_by, created_at) VALUES (?, ?, ?, 'staff', ?, ?) RETURNING id`,
			w.URL, w.Secret, w.Template, w.CreatedBy, nanos(now)).Scan(&w.ID)
	})
}

// DisableWebhook stops sending to a destination; its pending deliveries
// are given up.
func (db *DB) DisableWebhook(ctx context.Context, id int64) error {
	now := nanos(db.Now())
	return db.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhooks SET disabled_at = ? WHERE id = ? AND disabled_at = 0`, now, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return wizard.Errorf(wizard.ENOTFOUND, "There is no such webhook, or it is disabled already.")
		}
		_, err = tx.ExecContext(ctx, `UPDATE deliveries SET state = 'failed', last_error = 'the webhook was disabled' WHERE webhook_id = ? AND state = 'pending'`, id)
		return err
	})
}

const webhookColumns = `w.id, w.url, w.secret, w.template, w.source, w.created_by, w.created_at, w.disabled_at`

func scanWebhook(dest *wizard.Webhook, extra ...any) []any {
	return append([]any{&dest.ID, &dest.URL, &dest.Secret, &dest.Template, &dest.Source, &dest.CreatedBy}, extra...)
}

// Webhooks returns every destination, enabled first, newest first.
func (db *DB) Webhooks(ctx context.Context) ([]*wizard.Webhook, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks w ORDER BY w.disabled_at != 0, w.id DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*wizard.Webhook
	for rows.Next() {
		var w wizard.Webhook
		var created, disabled int64
		if err := rows.Scan(scanWebhook(&w, &created, &disabled)...); err != nil {
			return nil, err
		}
		w.CreatedAt, w.DisabledAt = fromNanos(created), fromNanos(disabled)
		out = append(out, &w)
	}
	return out, rows.Err()
}

const deliveryQuery = `SELECT d.id, d.state, d.attempts, d.next_at, d.last_status, d.last_error, d.delivered_at, e.id, e.data, ` +
	webhookColumns + ` FROM deliveries d JOIN events e ON e.id = d.event_id JOIN webhooks w ON w.id = d.webhook_id`

func (db *DB) deliveries(ctx context.Context, query string, args ...any) ([]*wizard.Delivery, error) {
	rows, err := db.read.QueryContext(ctx, deliveryQuery+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*wizard.Delivery
	for rows.Next() {
		var d wizard.Delivery
		var next, delivered, created, disabled int64
		var data string
		if err := rows.Scan(append([]any{&d.ID, &d.State, &d.Attempts, &next, &d.LastStatus, &d.LastError, &delivered, &d.Event.ID, &data},
			scanWebhook(&d.Webhook, &created, &disabled)...)...); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(data), &d.Event); err != nil {
			return nil, fmt.Errorf("event %d: %w", d.Event.ID, err)
		}
		d.NextAt, d.DeliveredAt = fromNanos(next), fromNanos(delivered)
		d.Webhook.CreatedAt, d.Webhook.DisabledAt = fromNanos(created), fromNanos(disabled)
		out = append(out, &d)
	}
	return out, rows.Err()
}

// errNotPending refuses to record an attempt of a delivery no longer
// pending.
var errNotPending = errors.New("the delivery is not pending")

// DueDeliveries returns pending deliveries due at now, oldest first.
func (db *DB) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]*wizard.Delivery, error) {
	return db.deliveries(ctx, ` WHERE d.state = 'pending' AND d.next_at <= ? ORDER BY d.next_at, d.id LIMIT ?`, nanos(now), limit)
}

// Deliveries returns the latest deliveries, newest first.
func (db *DB) Deliveries(ctx context.Context, limit int) ([]*wizard.Delivery, error) {
	return db.deliveries(ctx, ` ORDER BY d.id DESC LIMIT ?`, limit)
}

// Delivered records a delivery the destination took.
func (db *DB) Delivered(ctx context.Context, id int64, status int) error {
	return db.execOne(ctx, errNotPending, `UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, last_status = ?, last_error = '', delivered_at = ?
		WHERE id = ? AND state = 'pending'`, status, nanos(db.Now()), id)
}

// DeliveryFailed records a failed attempt: retried at next, or given up
// when next is zero.
func (db *DB) DeliveryFailed(ctx context.Context, id int64, status int, reason string, next time.Time) error {
	state := wizard.DeliveryPending
	if next.IsZero() {
		state = wizard.DeliveryFailed
	}
	return db.execOne(ctx, errNotPending, `UPDATE deliveries SET state = ?, attempts = attempts + 1, last_status = ?, last_error = ?, next_at = ?
		WHERE id = ? AND state = 'pending'`, state, status, reason, nanos(next), id)
}
