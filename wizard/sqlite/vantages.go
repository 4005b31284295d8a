package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// AddVantage stores a view of a case's URL made for its probe run
// v.RunID. Only the case's latest run takes views, one per source: a view
// made for a run since superseded would describe another moment.
func (db *DB) AddVantage(ctx context.Context, caseID int64, v *wizard.Vantage) error {
	if v.From != wizard.VantageBrowser && v.From != wizard.VantageOrigin && (!strings.HasPrefix(v.From, "agent:") || len(v.From) == len("agent:")) {
		return wizard.Errorf(wizard.EINVALID, "%q is not a point of view (browser, origin, or agent:NAME).", v.From)
	}
	var report sql.NullString
	if v.Report != nil {
		raw, err := reportJSON(v.Report)
		if err != nil {
			return err
		}
		report = sql.NullString{String: string(raw), Valid: true}
	}
	var reachable sql.NullBool
	if v.Reachable != nil {
		reachable = sql.NullBool{Bool: *v.Reachable, Valid: true}
	}
	now := db.Now().UTC()
	var id int64
	err := db.inTx(ctx, func(tx *txn) error {
		var latest sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(id) FROM probe_runs WHERE case_id = ?`, caseID).Scan(&latest); err != nil {
			return err
		}
		var owner int64
		err := tx.QueryRowContext(ctx, `SELECT case_id FROM probe_runs WHERE id = ?`, v.RunID).Scan(&owner)
		switch {
		case errors.Is(err, sql.ErrNoRows) || err == nil && owner != caseID:
			return wizard.Errorf(wizard.ENOTFOUND, "This case has no check number %d.", v.RunID)
		case err != nil:
			return err
		case v.RunID != latest.Int64:
			return wizard.Errorf(wizard.ECONFLICT, "That result is for an earlier check of this case; the site has been checked again since.")
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO vantages (case_id, run_id, source, at, reachable, detail, report, addr) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			caseID, v.RunID, v.From, nanos(now), reachable, v.Detail, report, v.Addr).Scan(&id)
		if db.isConstraint(err) {
			return wizard.Errorf(wizard.ECONFLICT, "The %s's result for this check is stored already: it is taken once per check.", v.From)
		} else if err != nil {
			return err
		}
		tx.changed(caseID)
		_, err = tx.ExecContext(ctx, `UPDATE cases SET updated_at = ? WHERE id = ?`, nanos(now), caseID)
		return err
	})
	if err != nil {
		return err
	}
	v.ID, v.At = id, now
	return nil
}

// Vantages returns a case's views, oldest first.
func (db *DB) Vantages(ctx context.Context, caseID int64) ([]wizard.Vantage, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, run_id, source, at, reachable, detail, report, addr FROM vantages WHERE case_id = ? ORDER BY id`, caseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []wizard.Vantage
	for rows.Next() {
		var v wizard.Vantage
		var at int64
		var reachable sql.NullBool
		var report sql.NullString
		if err := rows.Scan(&v.ID, &v.RunID, &v.From, &at, &reachable, &v.Detail, &report, &v.Addr); err != nil {
			return nil, err
		}
		v.At = fromNanos(at)
		if reachable.Valid {
			v.Reachable = &reachable.Bool
		}
		if report.Valid {
			v.Report = new(probes.Report)
			if err := json.Unmarshal([]byte(report.String), v.Report); err != nil {
				return nil, fmt.Errorf("vantage %d: %w", v.ID, err)
			}
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
