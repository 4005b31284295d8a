package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// Probe jobs shared by the instances on one database (migration 0018): a
// row per target says which run leads its diagnosis, which instance owns
// it and until when (the lease it renews), and, once done, when it
// finished, for reuse. Claims run at READ COMMITTED with the target's row
// locked on PostgreSQL: a flood of reports of one site queues on the row
// rather than failing serializable transactions over and over.

// ClaimProbeJob decides how a run gets its diagnosis of target; see
// wizard.ProbeJobStore.
func (db *DB) ClaimProbeJob(ctx context.Context, target, host string, runID, caseID int64, owner string, now time.Time, lease, reuse time.Duration) (*wizard.ProbeJobClaim, error) {
	// Most claims in a flood join a job under way: they do so without
	// the row's lock, so that the owner finishing the job is not queued
	// behind them. One that joins as the job is being finished is left
	// out of its report; the instance that follows the job shares the
	// report with it once it sees the job done (web/sharedjobs.go).
	if c, err := db.joinProbeJob(ctx, target, host, runID, now); err != nil || c != nil {
		return c, err
	}
	var claim *wizard.ProbeJobClaim
	err := db.inTxWith(ctx, db.d.rowLockTx, func(tx *txn) error {
		claim = &wizard.ProbeJobClaim{Target: target, Host: host, Owner: owner}
		until := nanos(now.Add(lease))
		var leader int64
		err := tx.QueryRowContext(ctx, `INSERT INTO probe_jobs (target, host, leader_run, owner, state, lease_until) VALUES (?, ?, ?, ?, 'queued', ?)
			ON CONFLICT (target) DO NOTHING RETURNING leader_run`, target, host, runID, owner, until).Scan(&leader)
		if err == nil {
			claim.Kind, claim.Leader, claim.Runs = wizard.JobOwn, runID, []wizard.JobRun{{RunID: runID, CaseID: caseID}}
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var jobOwner, state string
		var leaseUntil, finishedAt int64
		if err := tx.QueryRowContext(ctx, `SELECT leader_run, owner, state, lease_until, finished_at FROM probe_jobs WHERE target = ?`+db.d.forUpdate,
			target).Scan(&leader, &jobOwner, &state, &leaseUntil, &finishedAt); err != nil {
			return err
		}
		claim.Leader = leader
		switch {
		case state == "queued" && leaseUntil > nanos(now):
			// A job under way: join it (its owner may be this instance).
			claim.Kind, claim.Owner = wizard.JobJoin, jobOwner
			if leader != runID {
				_, err := tx.ExecContext(ctx, `UPDATE probe_runs SET joined_to = ? WHERE id = ?`, leader, runID)
				return err
			}
			return nil
		case state == "queued":
			// Its owner stopped renewing the lease: take it over, with the
			// runs waiting for it.
			if _, err := tx.ExecContext(ctx, `UPDATE probe_jobs SET owner = ?, lease_until = ? WHERE target = ?`, owner, until, target); err != nil {
				return err
			}
			if leader != runID {
				if _, err := tx.ExecContext(ctx, `UPDATE probe_runs SET joined_to = ? WHERE id = ?`, leader, runID); err != nil {
					return err
				}
			}
			claim.Kind = wizard.JobOwn
			claim.Runs, err = jobRuns(ctx, tx, leader)
			return err
		case reuse > 0 && finishedAt >= nanos(now.Add(-reuse)):
			claim.Kind, claim.Owner = wizard.JobReuse, jobOwner
			return nil
		}
		// Done too long ago to reuse: this run leads the next diagnosis.
		if _, err := tx.ExecContext(ctx, `UPDATE probe_jobs SET host = ?, leader_run = ?, owner = ?, state = 'queued', lease_until = ?, finished_at = 0 WHERE target = ?`,
			host, runID, owner, until, target); err != nil {
			return err
		}
		claim.Kind, claim.Leader, claim.Runs = wizard.JobOwn, runID, []wizard.JobRun{{RunID: runID, CaseID: caseID}}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return claim, nil
}

// joinProbeJob joins run runID to target's job when one is under way with
// a live lease, another run leading it; nil when the claim needs the
// row's lock (no job, one done, one whose lease ran out, or the run's own).
func (db *DB) joinProbeJob(ctx context.Context, target, host string, runID int64, now time.Time) (*wizard.ProbeJobClaim, error) {
	var claim *wizard.ProbeJobClaim
	err := db.inTxWith(ctx, db.d.rowLockTx, func(tx *txn) error {
		claim = nil
		var leader int64
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT leader_run, owner FROM probe_jobs WHERE target = ? AND state = 'queued' AND lease_until > ?`,
			target, nanos(now)).Scan(&leader, &owner)
		if errors.Is(err, sql.ErrNoRows) || err == nil && leader == runID {
			return nil
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE probe_runs SET joined_to = ? WHERE id = ?`, leader, runID); err != nil {
			return err
		}
		claim = &wizard.ProbeJobClaim{Kind: wizard.JobJoin, Target: target, Host: host, Leader: leader, Owner: owner}
		return nil
	})
	return claim, err
}

// jobRuns are the runs a job holds that are not done: its leader first,
// then the runs that joined it, oldest first.
func jobRuns(ctx context.Context, tx *txn, leader int64) ([]wizard.JobRun, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, case_id FROM probe_runs WHERE (id = ? OR joined_to = ?) AND state <> 'done'
		ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END, id`, leader, leader, leader)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []wizard.JobRun
	for rows.Next() {
		var r wizard.JobRun
		if err := rows.Scan(&r.RunID, &r.CaseID); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RenewProbeJobs extends the leases of owner's jobs not yet done.
func (db *DB) RenewProbeJobs(ctx context.Context, owner string, now time.Time, lease time.Duration) error {
	return db.inTx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `UPDATE probe_jobs SET lease_until = ? WHERE owner = ? AND state = 'queued'`, nanos(now.Add(lease)), owner)
		return err
	})
}

// TakeOverProbeJobs takes, for owner, up to 16 jobs whose lease ran out
// before now (their instance died), each with the runs waiting for it.
// Concurrent takers skip each other's jobs.
func (db *DB) TakeOverProbeJobs(ctx context.Context, owner string, now time.Time, lease time.Duration) ([]*wizard.ProbeJobClaim, error) {
	var out []*wizard.ProbeJobClaim
	err := db.inTx(ctx, func(tx *txn) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE probe_jobs SET owner = ?1, lease_until = ?2 WHERE target IN (
			SELECT target FROM probe_jobs WHERE state = 'queued' AND lease_until <= ?3 ORDER BY lease_until LIMIT 16`+db.d.skipLocked+`)
			RETURNING target, host, leader_run`, owner, nanos(now.Add(lease)), nanos(now))
		if err != nil {
			return err
		}
		for rows.Next() {
			c := &wizard.ProbeJobClaim{Kind: wizard.JobOwn, Owner: owner}
			if err := rows.Scan(&c.Target, &c.Host, &c.Leader); err != nil {
				rows.Close()
				return err
			}
			out = append(out, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range out {
			if c.Runs, err = jobRuns(ctx, tx, c.Leader); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// HandBackProbeJobs ends the leases of owner's jobs not yet done, and
// signals it, so that the other instances take them over at once.
func (db *DB) HandBackProbeJobs(ctx context.Context, owner string) error {
	return db.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE probe_jobs SET lease_until = 0 WHERE owner = ? AND state = 'queued'`, owner)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return tx.notify(ctx, wizard.ProbeJobTopic, "0 handback")
		}
		return nil
	})
}

// ProbeRunDone says whether a run is done.
func (db *DB) ProbeRunDone(ctx context.Context, runID int64) (bool, error) {
	var state string
	err := db.read.QueryRowContext(ctx, `SELECT state FROM probe_runs WHERE id = ?`, runID).Scan(&state)
	return state == "done", err
}

// finishJob, in FinishProbe's transaction, finishes the runs that joined
// the leader run's job from other instances with its report, marks the
// job done, and signals it.
func finishJob(ctx context.Context, tx *txn, leader int64, fin func(runID int64) error, now int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM probe_runs WHERE joined_to = ? AND state <> 'done'`, leader)
	if err != nil {
		return err
	}
	var joined []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		joined = append(joined, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range joined {
		if err := fin(id); err != nil {
			return err
		}
	}
	res, err := tx.ExecContext(ctx, `UPDATE probe_jobs SET state = 'done', finished_at = ?, lease_until = 0 WHERE leader_run = ? AND state = 'queued'`, now, leader)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 || len(joined) > 0 {
		return tx.notify(ctx, wizard.ProbeJobTopic, strconv.FormatInt(leader, 10)+" done")
	}
	return nil
}

// TakeHostStart counts a probe of host starting at now against the cap of
// perMinute probes a host gets a minute, across the instances: it returns
// 0 when the probe may start (and counts it), or how long until it may.
func (db *DB) TakeHostStart(ctx context.Context, host string, perMinute int, now time.Time) (time.Duration, error) {
	var wait time.Duration
	err := db.inTxWith(ctx, db.d.rowLockTx, func(tx *txn) error {
		wait = 0
		if _, err := tx.ExecContext(ctx, `INSERT INTO host_starts (host) VALUES (?) ON CONFLICT (host) DO NOTHING`, host); err != nil {
			return err
		}
		var list string
		if err := tx.QueryRowContext(ctx, `SELECT starts FROM host_starts WHERE host = ?`+db.d.forUpdate, host).Scan(&list); err != nil {
			return err
		}
		var starts []int64
		for _, f := range strings.Split(list, ",") {
			if at, err := strconv.ParseInt(f, 10, 64); err == nil && now.Sub(fromNanos(at)) < time.Minute {
				starts = append(starts, at)
			}
		}
		if len(starts) >= perMinute {
			wait = fromNanos(starts[len(starts)-perMinute]).Add(time.Minute).Sub(now)
			return nil
		}
		starts = append(starts, nanos(now))
		fields := make([]string, len(starts))
		for i, at := range starts {
			fields[i] = strconv.FormatInt(at, 10)
		}
		_, err := tx.ExecContext(ctx, `UPDATE host_starts SET starts = ? WHERE host = ?`, strings.Join(fields, ","), host)
		return err
	})
	return wait, err
}

// lock holds a lock named key until the transaction ends, on PostgreSQL
// (an advisory lock); SQLite's one writer needs none.
func (t *txn) lock(ctx context.Context, key string) error {
	if t.d.name != "postgres" {
		return nil
	}
	_, err := t.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext(?))`, key)
	return err
}
