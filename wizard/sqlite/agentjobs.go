package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// QueueAgentJobs queues one job per agent for probe run runID of case
// caseID, in one transaction.
func (db *DB) QueueAgentJobs(ctx context.Context, caseID, runID int64, agentIDs []int64, actor string, internal bool, expires time.Time) ([]*wizard.AgentJob, error) {
	var out []*wizard.AgentJob
	err := db.inTx(ctx, func(tx *txn) error {
		out = nil
		// The agent probes what the server's probes were given: the URL
		// without its scheme when none was typed.
		var c wizard.Case
		err := tx.QueryRowContext(ctx, `SELECT c.url, c.no_scheme FROM probe_runs r JOIN cases c ON c.id = r.case_id WHERE r.id = ? AND r.case_id = ?`, runID, caseID).Scan(&c.URL, &c.NoScheme)
		url := c.ProbeInput()
		if errors.Is(err, sql.ErrNoRows) {
			return wizard.Errorf(wizard.ENOTFOUND, "This case has no check number %d.", runID)
		} else if err != nil {
			return err
		}
		now := db.Now().UTC()
		tx.changed(caseID) // the case's pages say where its agents' jobs stand
		var ids []int64
		for _, agentID := range agentIDs {
			var id int64
			err := tx.QueryRowContext(ctx, `INSERT INTO agent_jobs (agent_id, case_id, run_id, url, internal, actor, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
				agentID, caseID, runID, url, internal, actor, nanos(now), nanos(expires)).Scan(&id)
			if db.isConstraint(err) {
				return wizard.Errorf(wizard.ENOTFOUND, "There is no agent number %d.", agentID)
			} else if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET updated_at = ? WHERE id = ?`, nanos(now), caseID); err != nil {
			return err
		}
		for _, id := range ids {
			j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM agent_jobs j JOIN agents a ON a.id = j.agent_id WHERE j.id = ?`, id))
			if err != nil {
				return err
			}
			out = append(out, j)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

const jobColumns = `j.id, j.case_id, j.run_id, j.url, j.state, j.internal, j.actor, j.created_at, j.taken_at, j.lease_until, j.expires_at, j.finished_at, j.attempts,
	a.id, a.name, a.created_at, a.revoked_at, a.last_seen, a.last_addr, a.version`

func scanJob(row scanner) (*wizard.AgentJob, error) {
	var j wizard.AgentJob
	var a wizard.Agent
	var created, taken, lease, expires, finished, aCreated, aRevoked, aSeen int64
	if err := row.Scan(&j.ID, &j.CaseID, &j.RunID, &j.URL, &j.State, &j.Internal, &j.Actor, &created, &taken, &lease, &expires, &finished, &j.Attempts,
		&a.ID, &a.Name, &aCreated, &aRevoked, &aSeen, &a.LastAddr, &a.Version); err != nil {
		return nil, err
	}
	j.CreatedAt, j.TakenAt, j.LeaseUntil, j.ExpiresAt, j.FinishedAt = fromNanos(created), fromNanos(taken), fromNanos(lease), fromNanos(expires), fromNanos(finished)
	a.CreatedAt, a.RevokedAt, a.LastSeen = fromNanos(aCreated), fromNanos(aRevoked), fromNanos(aSeen)
	j.Agent = &a
	return &j, nil
}

// runReport is the report in force of the probe run r, its own or the one
// it shared (src); cleared says whether the server's guard let the
// address through: a report that says blocked_target, or that withheld
// non-public addresses of the name, does not clear it, and neither does a
// run without a report.
const runReport = `COALESCE(r.report, src.report)`

func (d *dialect) cleared() string {
	return `(COALESCE(` + d.jsonText(runReport, "verdict.code") + `, 'blocked_target') <> 'blocked_target'
		AND COALESCE(CAST(` + d.jsonText(runReport, "dns.withheld") + ` AS BIGINT), 0) = 0)`
}

// sendable picks, among queued jobs j, those an agent may be sent now.
func (d *dialect) sendable() string {
	return `(j.internal OR EXISTS (SELECT 1 FROM probe_runs r LEFT JOIN probe_runs src ON src.id = r.shared_from
		WHERE r.id = j.run_id AND r.state = 'done' AND ` + d.cleared() + `))`
}

// refusable picks, among queued jobs j, those no agent will ever be
// sent: not internal, and the server's guard refused their address.
func (d *dialect) refusable() string {
	return `(NOT j.internal AND EXISTS (SELECT 1 FROM probe_runs r LEFT JOIN probe_runs src ON src.id = r.shared_from
		WHERE r.id = j.run_id AND r.state = 'done' AND NOT ` + d.cleared() + `))`
}

// nextJob finds an agent's next job; claim, on PostgreSQL, locks it and
// skips the ones other transactions hold.
func (d *dialect) nextJob(claim bool) string {
	q := `SELECT j.id FROM agent_jobs j WHERE j.agent_id = ? AND j.state = 'queued' AND j.expires_at > ? AND ` + d.sendable() + ` ORDER BY j.id LIMIT 1`
	if claim {
		q += d.claim
	}
	return q
}

// TakeAgentJob leases the agent's oldest job that may be sent to it, or
// returns nil. An agent asks every few seconds while it waits, so the
// look is made on a reading connection first: only a job found takes the
// writer.
func (db *DB) TakeAgentJob(ctx context.Context, agentID int64, lease time.Duration) (*wizard.AgentJob, error) {
	now := db.Now().UTC()
	var id int64
	err := db.read.QueryRowContext(ctx, db.d.nextJob(false), agentID, nanos(now)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var j *wizard.AgentJob
	err = db.inTx(ctx, func(tx *txn) error {
		j = nil
		// Again under the writer (on PostgreSQL, locking the row): another
		// long-poll of the agent may have taken it meanwhile.
		err := tx.QueryRowContext(ctx, db.d.nextJob(true), agentID, nanos(now)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE agent_jobs SET state = 'taken', taken_at = ?, lease_until = ? WHERE id = ?`, nanos(now), nanos(now.Add(lease)), id); err != nil {
			return err
		}
		if j, err = scanJob(tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM agent_jobs j JOIN agents a ON a.id = j.agent_id WHERE j.id = ?`, id)); err != nil {
			return err
		}
		tx.changed(j.CaseID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return j, nil
}

// FinishAgentJob stores the agent's view made by a job it holds, and marks
// the job done. The view is stored for the job's run even when the case was
// checked again since: it describes the moment it was asked for.
func (db *DB) FinishAgentJob(ctx context.Context, agentID, jobID int64, v *wizard.Vantage) (*wizard.AgentJob, error) {
	var report sql.NullString
	if v.Report != nil {
		raw, err := reportJSON(v.Report)
		if err != nil {
			return nil, err
		}
		report = sql.NullString{String: string(raw), Valid: true}
	}
	var reachable sql.NullBool
	if v.Reachable != nil {
		reachable = sql.NullBool{Bool: *v.Reachable, Valid: true}
	}
	now := db.Now().UTC()
	var j *wizard.AgentJob
	var id int64
	err := db.inTx(ctx, func(tx *txn) error {
		var err error
		j, err = scanJob(tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM agent_jobs j JOIN agents a ON a.id = j.agent_id WHERE j.id = ?`, jobID))
		switch {
		case errors.Is(err, sql.ErrNoRows) || err == nil && j.Agent.ID != agentID:
			// Another agent's job is none of this one's business: not even
			// whether it exists.
			return wizard.Errorf(wizard.ENOTFOUND, "This agent has no job number %d.", jobID)
		case err != nil:
			return err
		case j.State == wizard.JobDone:
			return wizard.Errorf(wizard.ECONFLICT, "Job %d is done already: its report was stored.", jobID)
		case j.State == wizard.JobExpired:
			return wizard.Errorf(wizard.ECONFLICT, "Job %d expired: it was not done in time.", jobID)
		case j.State != wizard.JobTaken:
			return wizard.Errorf(wizard.ECONFLICT, "Job %d is not leased to this agent any more: its lease passed and it was given back.", jobID)
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO vantages (case_id, run_id, source, at, reachable, detail, report, addr) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			j.CaseID, j.RunID, j.From(), nanos(now), reachable, v.Detail, report, v.Addr).Scan(&id)
		if db.isConstraint(err) {
			return wizard.Errorf(wizard.ECONFLICT, "The %s's result for this check is stored already.", j.From())
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE agent_jobs SET state = 'done', finished_at = ? WHERE id = ?`, nanos(now), jobID); err != nil {
			return err
		}
		tx.changed(j.CaseID)
		_, err = tx.ExecContext(ctx, `UPDATE cases SET updated_at = ? WHERE id = ?`, nanos(now), j.CaseID)
		return err
	})
	if err != nil {
		return nil, err
	}
	v.ID, v.At, v.RunID, v.From = id, now, j.RunID, j.From()
	j.State, j.FinishedAt = wizard.JobDone, now
	return j, nil
}

// SweepAgentJobs gives back jobs whose lease passed and expires jobs past
// their time or their attempts, returning the cases touched.
func (db *DB) SweepAgentJobs(ctx context.Context, maxAttempts int) ([]int64, error) {
	now := nanos(db.Now())
	var cases []int64
	err := db.inTx(ctx, func(tx *txn) error {
		var err error
		cases, err = db.sweepAgentJobs(ctx, tx, now, maxAttempts)
		return err
	})
	return cases, err
}

func (db *DB) sweepAgentJobs(ctx context.Context, tx *txn, now int64, maxAttempts int) ([]int64, error) {
	var cases []int64
	for _, q := range []struct {
		sql  string
		args []any
	}{
		// Past their time, whatever their state: nobody waits any more.
		{`UPDATE agent_jobs SET state = 'expired', finished_at = ?1 WHERE state IN ('queued', 'taken') AND expires_at <= ?1 RETURNING case_id`, []any{now}},
		// Leases that passed for the last allowed time.
		{`UPDATE agent_jobs SET state = 'expired', finished_at = ?1, attempts = attempts + 1 WHERE state = 'taken' AND lease_until <= ?1 AND attempts + 1 >= ?2 RETURNING case_id`, []any{now, maxAttempts}},
		// Other leases that passed: the job waits for the agent again.
		{`UPDATE agent_jobs SET state = 'queued', taken_at = 0, lease_until = 0, attempts = attempts + 1 WHERE state = 'taken' AND lease_until <= ?1 RETURNING case_id`, []any{now}},
		// Jobs that will never be sent: the server refused the address.
		{`UPDATE agent_jobs AS j SET state = 'refused', finished_at = ?1 WHERE j.state = 'queued' AND ` + db.d.refusable() + ` RETURNING case_id`, []any{now}},
	} {
		rows, err := tx.QueryContext(ctx, q.sql, q.args...)
		if err != nil {
			return nil, fmt.Errorf("sweeping agent jobs: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			cases = append(cases, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	if len(cases) == 0 {
		return nil, nil
	}
	slices.Sort(cases)
	cases = slices.Compact(cases)
	tx.changed(cases...)
	for _, id := range cases {
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET updated_at = ? WHERE id = ?`, now, id); err != nil {
			return nil, err
		}
	}
	return cases, nil
}

// CaseAgentJobs returns a case's agent jobs, oldest first.
func (db *DB) CaseAgentJobs(ctx context.Context, caseID int64) ([]*wizard.AgentJob, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+jobColumns+` FROM agent_jobs j JOIN agents a ON a.id = j.agent_id WHERE j.case_id = ? ORDER BY j.id`, caseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*wizard.AgentJob
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}
