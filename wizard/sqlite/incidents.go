package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatecheck/gatecheck/wizard"
)

// maxIncidentWindow bounds a window: its minutes are counted one by one.
const maxIncidentWindow = 7 * 24 * time.Hour

// windowMinutes is how many minutes the per-minute counts of f have.
func windowMinutes(f wizard.IncidentFilter) (int, error) {
	d := f.Until.Sub(f.Since)
	if f.Since.IsZero() || f.Until.IsZero() || d < 0 || d > maxIncidentWindow {
		return 0, wizard.Errorf(wizard.EINVALID, "An incident window runs forward, for at most %s.", maxIncidentWindow)
	}
	return max(1, int((d+time.Minute-1)/time.Minute)), nil
}

// group is an incident being added up.
type group struct {
	inc            *wizard.Incident
	first, latest  int64
	gatewayReports map[string]int
}

// incidentQuery counts the cases of a window by host, verdict, gateway
// and minute; oneHost adds a host and a verdict to match.
func incidentQuery(oneHost bool) string {
	q := `SELECT host, verdict, gateway, (created_at - ?) / ? AS minute, COUNT(*), MIN(created_at), MAX(created_at)
		FROM cases WHERE created_at >= ? AND created_at <= ? AND status != 'resolved'`
	if oneHost {
		q += ` AND host = ? AND verdict = ?`
	}
	return q + ` GROUP BY host, verdict, gateway, minute`
}

// groupIncidents is the one query behind incidents: the cases f selects,
// counted by host, verdict, gateway and minute of the window, then added
// up here. The window's range reads cases_by_created (or, for one host,
// cases_by_host): never the whole table. It returns the groups in no
// order and how many of the cases have no verdict yet.
func (db *DB) groupIncidents(ctx context.Context, f wizard.IncidentFilter, host, verdict string) ([]*wizard.Incident, int, error) {
	minutes, err := windowMinutes(f)
	if err != nil {
		return nil, 0, err
	}
	args := []any{nanos(f.Since), int64(time.Minute), nanos(f.Since), nanos(f.Until)}
	if host != "" {
		args = append(args, host, verdict)
	}
	rows, err := db.read.QueryContext(ctx, incidentQuery(host != ""), args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	groups := map[[2]string]*group{}
	unchecked := 0
	for rows.Next() {
		var h, v, gw string
		var minute int64
		var n int
		var first, latest int64
		if err := rows.Scan(&h, &v, &gw, &minute, &n, &first, &latest); err != nil {
			return nil, 0, err
		}
		if v == "" {
			unchecked += n
			continue
		}
		g := groups[[2]string{h, v}]
		if g == nil {
			g = &group{inc: &wizard.Incident{Host: h, Verdict: v, PerMinute: make([]int, minutes)}, first: first, latest: latest,
				gatewayReports: map[string]int{}}
			groups[[2]string{h, v}] = g
		}
		// A case opened at the very end of the window falls in its
		// last minute.
		g.inc.PerMinute[min(max(int(minute), 0), minutes-1)] += n
		g.inc.Reports += n
		g.gatewayReports[gw] += n
		g.first, g.latest = min(g.first, first), max(g.latest, latest)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	out := make([]*wizard.Incident, 0, len(groups))
	for _, g := range groups {
		g.inc.FirstAt, g.inc.LatestAt = fromNanos(g.first), fromNanos(g.latest)
		g.inc.Gateway = commonestGateway(g.gatewayReports)
		out = append(out, g.inc)
	}
	return out, unchecked, nil
}

// commonestGateway is the gateway with the most reports; on a tie a named
// one before none, then by name, so that the answer does not vary.
func commonestGateway(reports map[string]int) string {
	best, most := "", -1
	for gw, n := range reports {
		if n > most || n == most && (best == "" || gw != "" && gw < best) {
			best, most = gw, n
		}
	}
	return best
}

// Incidents groups the unresolved cases opened in f's window by host and
// verdict: the groups of at least f.MinReports cases, most reports first,
// and how many cases of the window are still being checked (no verdict,
// so not grouped).
func (db *DB) Incidents(ctx context.Context, f wizard.IncidentFilter) ([]*wizard.Incident, int, error) {
	all, unchecked, err := db.groupIncidents(ctx, f, "", "")
	if err != nil {
		return nil, 0, err
	}
	out := slices.DeleteFunc(all, func(inc *wizard.Incident) bool { return inc.Reports < max(f.MinReports, 1) })
	slices.SortFunc(out, func(a, b *wizard.Incident) int {
		return cmp.Or(cmp.Compare(b.Reports, a.Reports), b.LatestAt.Compare(a.LatestAt),
			strings.Compare(a.Host, b.Host), strings.Compare(a.Verdict, b.Verdict))
	})
	return out, unchecked, nil
}

// Incident returns the group of host and verdict in f's window, whatever
// its size (no reports at all when none), with its cases newest first.
func (db *DB) Incident(ctx context.Context, host, verdict string, f wizard.IncidentFilter) (*wizard.Incident, []*wizard.Case, error) {
	if host == "" || verdict == "" {
		return nil, nil, wizard.Errorf(wizard.EINVALID, "An incident needs a host and a verdict.")
	}
	host = strings.ToLower(host)
	found, _, err := db.groupIncidents(ctx, f, host, verdict)
	if err != nil {
		return nil, nil, err
	}
	inc := &wizard.Incident{Host: host, Verdict: verdict}
	if len(found) == 1 {
		inc = found[0]
	} else {
		n, _ := windowMinutes(f) // checked by groupIncidents
		inc.PerMinute = make([]int, n)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+caseColumns+` FROM cases
		WHERE host = ? AND created_at >= ? AND created_at <= ? AND verdict = ? AND status != 'resolved'
		ORDER BY created_at DESC, id DESC`, host, nanos(f.Since), nanos(f.Until), verdict)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var cases []*wizard.Case
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return nil, nil, err
		}
		cases = append(cases, c)
	}
	return inc, cases, rows.Err()
}

// noteBody is a note as stored: trimmed, 1 to 10000 characters.
func noteBody(body string) (string, error) {
	body = strings.TrimSpace(body)
	if body == "" {
		return "", wizard.Errorf(wizard.EINVALID, "The note is empty.")
	}
	if n := utf8.RuneCountInString(body); n > 10000 {
		return "", wizard.Errorf(wizard.EINVALID, "The note is %d characters long; notes take up to 10000.", n)
	}
	return body, nil
}

// AddNotes adds one note to each case (given once each), in one
// transaction: each case shows it on its timeline, and finds it in search.
func (db *DB) AddNotes(ctx context.Context, caseIDs []int64, author, body string) (int, error) {
	body, err := noteBody(body)
	if err != nil {
		return 0, err
	}
	now := nanos(db.Now())
	err = db.inTx(ctx, func(tx *txn) error {
		tx.changed(caseIDs...)
		insert, err := tx.PrepareContext(ctx, `INSERT INTO notes (case_id, author, body, at) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		touch, err := tx.PrepareContext(ctx, `UPDATE cases SET updated_at = ? WHERE id = ?`)
		if err != nil {
			return err
		}
		for _, id := range caseIDs {
			if _, err := insert.ExecContext(ctx, id, author, body, now); err != nil {
				return err
			}
			if _, err := touch.ExecContext(ctx, now, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(caseIDs), nil
}

// SetStatuses moves each case to status in one transaction, recording a
// change for each case that moves; it returns how many did.
func (db *DB) SetStatuses(ctx context.Context, caseIDs []int64, to wizard.Status, actor string) (int, error) {
	changed, _, err := db.SetStatusesMail(ctx, caseIDs, to, actor, nil)
	return changed, err
}

// SetStatusesMail moves each case to status as SetStatuses does and, in
// the same transaction, queues the mails that mails (when not nil) makes
// of the cases that moved, each on its own case.
func (db *DB) SetStatusesMail(ctx context.Context, caseIDs []int64, to wizard.Status, actor string, mails func(moved []int64) []*wizard.Mail) (int, int, error) {
	if !to.Valid() {
		return 0, 0, wizard.Errorf(wizard.EINVALID, "%q is not a case status", to)
	}
	now, changed, queued := nanos(db.Now()), 0, 0
	err := db.inTx(ctx, func(tx *txn) error {
		changed, queued = 0, 0
		var moved []int64
		read, err := tx.PrepareContext(ctx, `SELECT status FROM cases WHERE id = ?`)
		if err != nil {
			return err
		}
		update, err := tx.PrepareContext(ctx, `UPDATE cases SET status = ?, updated_at = ? WHERE id = ?`)
		if err != nil {
			return err
		}
		record, err := tx.PrepareContext(ctx, `INSERT INTO status_changes (case_id, from_status, to_status, actor, at) VALUES (?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		for _, id := range caseIDs {
			var from wizard.Status
			if err := read.QueryRowContext(ctx, id).Scan(&from); errors.Is(err, sql.ErrNoRows) {
				return errNotFound
			} else if err != nil {
				return err
			}
			if from == to {
				continue
			}
			if _, err := update.ExecContext(ctx, to, now, id); err != nil {
				return err
			}
			if _, err := record.ExecContext(ctx, id, from, to, actor, now); err != nil {
				return err
			}
			if ev := statusEvent(to); ev != "" {
				if err := emit(ctx, tx, ev, id, nil, now); err != nil {
					return err
				}
			}
			changed++
			moved = append(moved, id)
			tx.changed(id)
		}
		if mails != nil && len(moved) > 0 {
			at := db.Now().UTC()
			for _, m := range mails(moved) {
				if err := queueMail(ctx, tx, m.CaseID, m, at); err != nil {
					return err
				}
				queued++
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return changed, queued, nil
}

// PublishNotice makes n the active notice of its host, clearing the one
// before (by n's author); it sets n's ID and time, and its body as stored.
func (db *DB) PublishNotice(ctx context.Context, n *wizard.Notice) error {
	n.Body = strings.TrimSpace(n.Body)
	switch count := utf8.RuneCountInString(n.Body); {
	case n.Host == "":
		return wizard.Errorf(wizard.EINVALID, "A notice needs a host.")
	case count == 0:
		return wizard.Errorf(wizard.EINVALID, "The notice is empty.")
	case count > wizard.MaxNotice:
		return wizard.Errorf(wizard.EINVALID, "The notice is %d characters long; notices take up to %d.", count, wizard.MaxNotice)
	}
	n.Host = strings.ToLower(n.Host)
	now := db.Now().UTC()
	var id int64
	err := db.inTx(ctx, func(tx *txn) error {
		tx.changedHost(n.Host) // a notice shows on the pages of its host's cases
		if _, err := tx.ExecContext(ctx, `UPDATE notices SET cleared_at = ?, cleared_by = ? WHERE host = ? AND cleared_at = 0`,
			nanos(now), n.Author, n.Host); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO notices (host, verdict, body, author, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			n.Host, n.Verdict, n.Body, n.Author, nanos(now)).Scan(&id)
	})
	if err != nil {
		return err
	}
	n.ID, n.CreatedAt, n.ClearedAt, n.ClearedBy = id, now, time.Time{}, ""
	return nil
}

// ClearNotice clears the host's active notice, if it has one.
func (db *DB) ClearNotice(ctx context.Context, host, actor string) error {
	return db.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE notices SET cleared_at = ?, cleared_by = ? WHERE host = ? AND cleared_at = 0`,
			nanos(db.Now()), actor, strings.ToLower(host))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			tx.changedHost(strings.ToLower(host))
		}
		return nil
	})
}

const noticeColumns = `id, host, verdict, body, author, created_at, cleared_at, cleared_by`

func scanNotice(row scanner) (*wizard.Notice, error) {
	var n wizard.Notice
	var created, cleared int64
	if err := row.Scan(&n.ID, &n.Host, &n.Verdict, &n.Body, &n.Author, &created, &cleared, &n.ClearedBy); err != nil {
		return nil, err
	}
	n.CreatedAt, n.ClearedAt = fromNanos(created), fromNanos(cleared)
	return &n, nil
}

// ActiveNotice returns the host's active notice, or nil when it has none.
func (db *DB) ActiveNotice(ctx context.Context, host string) (*wizard.Notice, error) {
	n, err := scanNotice(db.read.QueryRowContext(ctx, `SELECT `+noticeColumns+` FROM notices WHERE host = ? AND cleared_at = 0`, strings.ToLower(host)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return n, err
}

// ActiveNotices returns every active notice, newest first.
func (db *DB) ActiveNotices(ctx context.Context) ([]*wizard.Notice, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+noticeColumns+` FROM notices WHERE cleared_at = 0 ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*wizard.Notice
	for rows.Next() {
		n, err := scanNotice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// CountReports counts the cases of host opened since then, whatever their
// status, leaving out the case exceptCaseID.
func (db *DB) CountReports(ctx context.Context, host string, since time.Time, exceptCaseID int64) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM cases WHERE host = ? AND created_at >= ? AND id != ?`,
		strings.ToLower(host), nanos(since), exceptCaseID).Scan(&n)
	return n, err
}
