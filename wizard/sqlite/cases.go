package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// CreateCase stores a new case, giving it a token and times, and keeps the
// source of the tree it walks (once per version).
func (db *DB) CreateCase(ctx context.Context, c *wizard.Case, treeSource []byte) error {
	now := db.Now()
	c.Token, c.CreatedAt, c.UpdatedAt = newToken(), now.UTC(), now.UTC()
	if c.Status == "" {
		c.Status = wizard.StatusOpen
	}
	return db.inTx(ctx, func(tx *txn) error {
		if treeSource != nil {
			if _, err := tx.ExecContext(ctx, `INSERT INTO trees (version, source, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
				c.TreeVersion, treeSource, nanos(now)); err != nil {
				return err
			}
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO cases (token, url, host, no_scheme, ticket, requester_ip, status, tree_version, created_at, updated_at, reporter_hash, visitor_email)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			c.Token, c.URL, c.Host, c.NoScheme, c.Ticket, c.RequesterIP, c.Status, c.TreeVersion, nanos(now), nanos(now), c.ReporterHash, c.VisitorEmail).Scan(&c.ID); err != nil {
			return err
		}
		tx.changed(c.ID)
		return emit(ctx, tx, wizard.EventCaseCreated, c.ID, nil, nanos(now))
	})
}

const caseColumns = `id, token, url, host, ticket, requester_ip, status, tree_version, verdict, gateway, created_at, updated_at,
	watch_until, watch_next, watch_checks, recovered_at, no_scheme, reporter_hash, visitor_email, version, origin`

type scanner interface{ Scan(dest ...any) error }

func scanCase(row scanner) (*wizard.Case, error) {
	var c wizard.Case
	var created, updated, until, next, recovered int64
	err := row.Scan(&c.ID, &c.Token, &c.URL, &c.Host, &c.Ticket, &c.RequesterIP, &c.Status, &c.TreeVersion,
		&c.Verdict, &c.Gateway, &created, &updated, &until, &next, &c.Watch.Checks, &recovered, &c.NoScheme, &c.ReporterHash, &c.VisitorEmail, &c.Version, &c.Origin)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	} else if err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = fromNanos(created), fromNanos(updated)
	c.Watch.Until, c.Watch.Next, c.RecoveredAt = fromNanos(until), fromNanos(next), fromNanos(recovered)
	return &c, nil
}

// Case returns the case with token.
func (db *DB) Case(ctx context.Context, token string) (*wizard.Case, error) {
	return scanCase(db.read.QueryRowContext(ctx, `SELECT `+caseColumns+` FROM cases WHERE token = ?`, token))
}

// ClaimReporter makes the browser whose secret hashes to hash the case's
// reporter, when it has none.
func (db *DB) ClaimReporter(ctx context.Context, caseID int64, hash string) (bool, error) {
	if hash == "" {
		return false, wizard.Errorf(wizard.EINVALID, "a reporter needs a secret")
	}
	var n int64
	err := db.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE cases SET reporter_hash = ? WHERE id = ? AND reporter_hash = ''`, hash, caseID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n > 0 {
			tx.changed(caseID)
			return err
		}
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM cases WHERE id = ?`, caseID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		} else if err != nil {
			return err
		}
		return nil
	})
	return n == 1, err
}

// SetVisitorEmail keeps the address the visitor wants the helpdesk's
// replies at (empty: none).
func (db *DB) SetVisitorEmail(ctx context.Context, caseID int64, addr string) error {
	return db.execCase(ctx, caseID, `UPDATE cases SET visitor_email = ?, updated_at = ? WHERE id = ?`, addr, nanos(db.Now()), caseID)
}

// SetCaseOrigin keeps the address staff asked the case's host to be
// reached at directly (checked by the caller; empty: none).
func (db *DB) SetCaseOrigin(ctx context.Context, caseID int64, origin string) error {
	return db.execCase(ctx, caseID, `UPDATE cases SET origin = ?, updated_at = ? WHERE id = ?`, origin, nanos(db.Now()), caseID)
}

// TreeSource returns the source of a tree version a case walked.
func (db *DB) TreeSource(ctx context.Context, version string) ([]byte, error) {
	var src []byte
	err := db.read.QueryRowContext(ctx, `SELECT source FROM trees WHERE version = ?`, version).Scan(&src)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wizard.Errorf(wizard.ENOTFOUND, "tree version %s is not stored", version)
	}
	return src, err
}

// AppendSteps adds records to a case's step log. The log is append-only
// (the schema refuses updates and deletes).
func (db *DB) AppendSteps(ctx context.Context, caseID int64, recs []wizard.StepRecord) error {
	return db.inTx(ctx, func(tx *txn) error {
		tx.changed(caseID)
		for _, r := range recs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO steps (case_id, idx, node, choice, actor, at) VALUES (?, ?, ?, ?, ?, ?)`,
				caseID, r.Index, r.Node, r.Choice, r.Actor, nanos(r.At)); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE cases SET updated_at = ? WHERE id = ?`, nanos(db.Now()), caseID)
		return err
	})
}

// Steps returns a case's step log, oldest first.
func (db *DB) Steps(ctx context.Context, caseID int64) ([]wizard.StepRecord, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, idx, node, choice, actor, at FROM steps WHERE case_id = ? ORDER BY id`, caseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []wizard.StepRecord
	for rows.Next() {
		var r wizard.StepRecord
		var at int64
		if err := rows.Scan(&r.Seq, &r.Index, &r.Node, &r.Choice, &r.Actor, &at); err != nil {
			return nil, err
		}
		r.At = fromNanos(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// SetStatus moves a case to status, recording the change; setting the
// status it already has records nothing.
func (db *DB) SetStatus(ctx context.Context, caseID int64, to wizard.Status, actor string) error {
	_, err := db.SetStatusMail(ctx, caseID, to, actor, nil)
	return err
}

// SetStatusMail moves a case to status as SetStatus does, and queues m
// (when not nil) in the same transaction, only when the status changed.
func (db *DB) SetStatusMail(ctx context.Context, caseID int64, to wizard.Status, actor string, m *wizard.Mail) (bool, error) {
	if !to.Valid() {
		return false, wizard.Errorf(wizard.EINVALID, "%q is not a case status", to)
	}
	queued := false
	err := db.inTx(ctx, func(tx *txn) error {
		queued = false
		var from wizard.Status
		if err := tx.QueryRowContext(ctx, `SELECT status FROM cases WHERE id = ?`, caseID).Scan(&from); errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		} else if err != nil {
			return err
		}
		if from == to {
			return nil
		}
		now := nanos(db.Now())
		tx.changed(caseID)
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET status = ?, updated_at = ? WHERE id = ?`, to, now, caseID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO status_changes (case_id, from_status, to_status, actor, at) VALUES (?, ?, ?, ?, ?)`,
			caseID, from, to, actor, now); err != nil {
			return err
		}
		if ev := statusEvent(to); ev != "" {
			if err := emit(ctx, tx, ev, caseID, nil, now); err != nil {
				return err
			}
		}
		if m != nil {
			if err := queueMail(ctx, tx, caseID, m, db.Now().UTC()); err != nil {
				return err
			}
			queued = true
		}
		return nil
	})
	return queued, err
}

// StatusChanges returns a case's status history, oldest first.
func (db *DB) StatusChanges(ctx context.Context, caseID int64) ([]wizard.StatusChange, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT from_status, to_status, actor, at FROM status_changes WHERE case_id = ? ORDER BY id`, caseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []wizard.StatusChange
	for rows.Next() {
		var s wizard.StatusChange
		var at int64
		if err := rows.Scan(&s.From, &s.To, &s.Actor, &at); err != nil {
			return nil, err
		}
		s.At = fromNanos(at)
		out = append(out, s)
	}
	return out, rows.Err()
}

// AddNote adds a staff note to a case.
func (db *DB) AddNote(ctx context.Context, caseID int64, author, body string) (*wizard.Note, error) {
	return db.addNote(ctx, caseID, author, body, false, nil)
}

// AddReply adds a note meant for the visitor.
func (db *DB) AddReply(ctx context.Context, caseID int64, author, body string) (*wizard.Note, error) {
	return db.addNote(ctx, caseID, author, body, true, nil)
}

// AddReplyMail adds a note meant for the visitor and queues m, the mail
// that carries it, in the same transaction.
func (db *DB) AddReplyMail(ctx context.Context, caseID int64, author, body string, m *wizard.Mail) (*wizard.Note, error) {
	return db.addNote(ctx, caseID, author, body, true, m)
}

func (db *DB) addNote(ctx context.Context, caseID int64, author, body string, public bool, m *wizard.Mail) (*wizard.Note, error) {
	body, err := noteBody(body)
	if err != nil {
		return nil, err
	}
	now := db.Now().UTC()
	var id int64
	err = db.inTx(ctx, func(tx *txn) error {
		tx.changed(caseID)
		if err := tx.QueryRowContext(ctx, `INSERT INTO notes (case_id, author, body, at, public) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			caseID, author, body, nanos(now), public).Scan(&id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET updated_at = ? WHERE id = ?`, nanos(now), caseID); err != nil {
			return err
		}
		if m != nil {
			return queueMail(ctx, tx, caseID, m, now)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &wizard.Note{ID: id, Author: author, Body: body, At: now, Public: public}, nil
}

// Notes returns a case's notes, oldest first.
func (db *DB) Notes(ctx context.Context, caseID int64) ([]wizard.Note, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, author, body, at, public FROM notes WHERE case_id = ? ORDER BY id`, caseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []wizard.Note
	for rows.Next() {
		var n wizard.Note
		var at int64
		if err := rows.Scan(&n.ID, &n.Author, &n.Body, &at, &n.Public); err != nil {
			return nil, err
		}
		n.At = fromNanos(at)
		out = append(out, n)
	}
	return out, rows.Err()
}

// QueueProbe records a probe run waiting to start.
func (db *DB) QueueProbe(ctx context.Context, caseID int64, actor string) (*wizard.ProbeRun, error) {
	now := db.Now().UTC()
	var id int64
	err := db.inTx(ctx, func(tx *txn) error {
		tx.changed(caseID)
		return tx.QueryRowContext(ctx, `INSERT INTO probe_runs (case_id, state, actor, queued_at) VALUES (?, 'queued', ?, ?) RETURNING id`,
			caseID, actor, nanos(now)).Scan(&id)
	})
	if err != nil {
		return nil, err
	}
	return &wizard.ProbeRun{ID: id, State: wizard.ProbeQueued, Actor: actor, QueuedAt: now}, nil
}

// StartProbe marks probe runs as running: the runs of every report that
// joined one probe start together.
func (db *DB) StartProbe(ctx context.Context, runIDs ...int64) error {
	now := nanos(db.Now())
	return db.inTx(ctx, func(tx *txn) error {
		tx.changedRuns(runIDs...)
		for _, id := range runIDs {
			if _, err := tx.ExecContext(ctx, `UPDATE probe_runs SET state = 'running', started_at = ? WHERE id = ? AND state = 'queued'`, now, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// FinishProbe stores a probe run's report and copies its verdict and
// gateway to the case. The runs of reports that joined the probe while it
// ran (sharers) finish with it, sharing its report, in the same
// transaction.
func (db *DB) FinishProbe(ctx context.Context, runID int64, rep *probes.Report, sharers ...int64) error {
	raw, err := reportJSON(rep)
	if err != nil {
		return err
	}
	now := nanos(db.Now())
	// With the probe job's row locked (when the run leads a shared job),
	// at READ COMMITTED on PostgreSQL: the runs that joined the job are
	// all seen (a claim locks the row too), and a flood of new cases of
	// the site, which the incident count reads, does not fail the finish
	// over and over as it would a serializable transaction (openIncident
	// takes its own lock).
	return db.inTxWith(ctx, db.d.rowLockTx, func(tx *txn) error {
		var target string
		if err := tx.QueryRowContext(ctx, `SELECT target FROM probe_jobs WHERE leader_run = ?`+db.d.forUpdate, runID).Scan(&target); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		caseID, err := finishRun(ctx, tx, runID, string(raw), 0, rep, now)
		if err != nil {
			return err
		}
		for _, id := range sharers {
			if _, err := finishRun(ctx, tx, id, "", runID, rep, now); err != nil {
				return err
			}
		}
		// Runs of other instances that joined the probe's job share it
		// too, and the job is done (probejobs.go).
		if err := finishJob(ctx, tx, runID, func(id int64) error {
			_, err := finishRun(ctx, tx, id, "", runID, rep, now)
			return err
		}, now); err != nil {
			return err
		}
		// Every run shares one target, so one look for an incident will do.
		return db.openIncident(ctx, tx, caseID, now)
	})
}

// ShareProbe finishes probe runs with the report of the finished run
// from, a diagnosis of the same target recent enough to reuse.
func (db *DB) ShareProbe(ctx context.Context, from int64, runIDs ...int64) error {
	// At READ COMMITTED on PostgreSQL, as FinishProbe.
	return db.inTxWith(ctx, db.d.rowLockTx, func(tx *txn) error {
		var raw sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT report FROM probe_runs WHERE id = ? AND state = 'done' AND shared_from IS NULL`, from).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) || err == nil && !raw.Valid {
			return fmt.Errorf("sharing probe run %d: it has no report of its own", from)
		} else if err != nil {
			return err
		}
		var rep probes.Report
		if err := json.Unmarshal([]byte(raw.String), &rep); err != nil {
			return fmt.Errorf("sharing probe run %d: %w", from, err)
		}
		now := nanos(db.Now())
		var caseID int64
		for _, id := range runIDs {
			if caseID, err = finishRun(ctx, tx, id, "", from, &rep, now); err != nil {
				return err
			}
		}
		if len(runIDs) > 0 {
			return db.openIncident(ctx, tx, caseID, now)
		}
		return nil
	})
}

// finishRun marks one run done, with its own report (raw) or another
// run's (from), and copies the verdict and gateway to its case, which it
// returns.
func finishRun(ctx context.Context, tx *txn, runID int64, raw string, from int64, rep *probes.Report, now int64) (int64, error) {
	report, shared := sql.NullString{String: raw, Valid: from == 0}, sql.NullInt64{Int64: from, Valid: from != 0}
	var caseID, watchNext int64
	if err := tx.QueryRowContext(ctx, `UPDATE probe_runs SET state = 'done', report = ?, shared_from = ?, finished_at = ?,
		started_at = CASE started_at WHEN 0 THEN ? ELSE started_at END WHERE id = ? RETURNING case_id`,
		report, shared, now, now, runID).Scan(&caseID); err != nil {
		return 0, fmt.Errorf("finishing probe run %d: %w", runID, err)
	}
	tx.changed(caseID)
	tx.finished(runID)
	if err := tx.QueryRowContext(ctx, `SELECT watch_next FROM cases WHERE id = ?`, caseID).Scan(&watchNext); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE cases SET verdict = ?, gateway = ?, updated_at = ? WHERE id = ?`,
		rep.Verdict.Code, rep.Gateway.Name, now, caseID); err != nil {
		return 0, err
	}
	// A watched case whose site answers normally again has recovered:
	// its watch ends.
	if watchNext > 0 && rep.Verdict.Code == probes.Healthy {
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET recovered_at = ?, watch_next = 0 WHERE id = ?`, now, caseID); err != nil {
			return 0, err
		}
		if err := emit(ctx, tx, wizard.EventCaseRecovered, caseID, nil, now); err != nil {
			return 0, err
		}
	}
	return caseID, nil
}

// ProbeRuns returns a case's probe runs, oldest first. A run that shared
// another's diagnosis comes with that run's report.
func (db *DB) ProbeRuns(ctx context.Context, caseID int64) ([]*wizard.ProbeRun, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT r.id, r.state, COALESCE(r.report, src.report), r.shared_from, r.actor, r.queued_at, r.started_at, r.finished_at
		FROM probe_runs r LEFT JOIN probe_runs src ON src.id = r.shared_from WHERE r.case_id = ? ORDER BY r.id`, caseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*wizard.ProbeRun
	for rows.Next() {
		var p wizard.ProbeRun
		var report sql.NullString
		var shared sql.NullInt64
		var q, s, f int64
		if err := rows.Scan(&p.ID, &p.State, &report, &shared, &p.Actor, &q, &s, &f); err != nil {
			return nil, err
		}
		p.SharedFrom = shared.Int64
		p.QueuedAt, p.StartedAt, p.FinishedAt = fromNanos(q), fromNanos(s), fromNanos(f)
		if report.Valid {
			p.Report = new(probes.Report)
			if err := json.Unmarshal([]byte(report.String), p.Report); err != nil {
				return nil, fmt.Errorf("probe run %d: %w", p.ID, err)
			}
		}
		out = append(out, &p)
	}
	return out, rows.Err()
}

// InterruptedProbes returns runs left queued or running by a stopped
// server, so that they can be run again. A case with no run at all (the
// server stopped between storing the case and queueing its probes) first
// gets one, queued by "gatecheck".
func (db *DB) InterruptedProbes(ctx context.Context) (map[int64]int64, error) {
	if err := db.inTx(ctx, func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, `INSERT INTO probe_runs (case_id, state, actor, queued_at)
		SELECT id, 'queued', 'gatecheck', CAST(? AS BIGINT) FROM cases
		WHERE NOT EXISTS (SELECT 1 FROM probe_runs WHERE probe_runs.case_id = cases.id) RETURNING case_id`, nanos(db.Now().UTC()))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			tx.changed(id)
		}
		return rows.Err()
	}); err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT id, case_id FROM probe_runs WHERE state != 'done'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, caseID int64
		if err := rows.Scan(&id, &caseID); err != nil {
			return nil, err
		}
		out[id] = caseID
	}
	return out, rows.Err()
}

// CaseByID returns the case with id.
func (db *DB) CaseByID(ctx context.Context, id int64) (*wizard.Case, error) {
	return scanCase(db.read.QueryRowContext(ctx, `SELECT `+caseColumns+` FROM cases WHERE id = ?`, id))
}

// manyMatches is the number of full-text matches above which FindCases
// stops fetching every match by id (and sorting them all by date) and walks
// the cases newest first instead, keeping those that match, until it has a
// page. A variable so that tests can take both ways with few cases.
var manyMatches = 1000

// FindCases returns the cases matching f, newest first, and how many match
// in all.
func (db *DB) FindCases(ctx context.Context, f wizard.CaseFilter) ([]*wizard.Case, int, error) {
	var where []string
	var args []any
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.Verdict != "" {
		where, args = append(where, "verdict = ?"), append(args, f.Verdict)
	}
	if f.Host != "" {
		where, args = append(where, "host = ?"), append(args, strings.ToLower(f.Host))
	}
	if f.Ticket != "" {
		where, args = append(where, "ticket = ?"), append(args, f.Ticket)
	}
	if !f.From.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, nanos(f.From))
	}
	if !f.To.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, nanos(f.To))
	}
	total, slow := -1, false
	if q := db.d.searchQuery(f.Query); q != "" {
		// Counting the matches in the full-text index alone is cheap, and
		// says which way to fetch them.
		var matches int
		if err := db.read.QueryRowContext(ctx, db.d.matchCount, q).Scan(&matches); err != nil {
			return nil, 0, err
		}
		if matches == 0 {
			return nil, 0, nil
		}
		term := "id IN (" + db.d.matchIDs + ")"
		if matches > manyMatches {
			// The unary + keeps SQLite (PostgreSQL takes it too) from looking up every match by
			// rowid and sorting them all (tens of milliseconds for a word
			// in a fifth of 100,000 cases); it then walks an index in date
			// order and tests each case against the set of matches.
			term, slow = "+"+term, len(where) > 0
		}
		if len(where) == 0 {
			// Every case has one row in case_search (a trigger adds it,
			// and cases are never deleted), so the matches are the total.
			total = matches
		}
		where, args = append(where, term), append(args, q)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	if total < 0 {
		count := `SELECT COUNT(*) FROM cases` + cond
		if slow && f.CountUpTo > 0 {
			// Stop testing matches once there are more than asked for.
			count = `SELECT COUNT(*) FROM (SELECT 1 FROM cases` + cond + ` LIMIT ` + strconv.Itoa(f.CountUpTo+1) + `) AS upto`
		}
		if err := db.read.QueryRowContext(ctx, count, args...).Scan(&total); err != nil {
			return nil, 0, err
		}
	}
	limit := f.Limit
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+caseColumns+` FROM cases`+cond+` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
		append(args, limit, max(f.Offset, 0))...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*wizard.Case
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, c)
	}
	return out, total, rows.Err()
}
