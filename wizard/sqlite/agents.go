package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/gatecheck/gatecheck/wizard"
)

// CreateAgent registers an agent and returns its token; only the token's
// hash is stored.
func (db *DB) CreateAgent(ctx context.Context, name string) (*wizard.Agent, string, error) {
	now := db.Now().UTC()
	token := "gca_" + newToken()
	var id int64
	err := db.inTx(ctx, func(tx *txn) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO agents (name, token_hash, created_at) VALUES (?, ?, ?) RETURNING id`, name, hashToken(token), nanos(now)).Scan(&id)
		if db.isConstraint(err) {
			return wizard.Errorf(wizard.ECONFLICT, "There is already an agent called %q.", name)
		}
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return &wizard.Agent{ID: id, Name: name, CreatedAt: now}, token, nil
}

const agentColumns = `id, name, created_at, revoked_at, last_seen, last_addr, version`

func scanAgent(row scanner) (*wizard.Agent, error) {
	var a wizard.Agent
	var created, revoked, seen int64
	if err := row.Scan(&a.ID, &a.Name, &created, &revoked, &seen, &a.LastAddr, &a.Version); err != nil {
		return nil, err
	}
	a.CreatedAt, a.RevokedAt, a.LastSeen = fromNanos(created), fromNanos(revoked), fromNanos(seen)
	return &a, nil
}

// Agents returns every agent, revoked ones included, by name.
func (db *DB) Agents(ctx context.Context) ([]*wizard.Agent, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+agentColumns+` FROM agents ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*wizard.Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// RevokeAgent refuses an agent's token from now on.
func (db *DB) RevokeAgent(ctx context.Context, name string) error {
	return db.inTx(ctx, func(tx *txn) error {
		var revoked int64
		err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM agents WHERE name = ?`, name).Scan(&revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return wizard.Errorf(wizard.ENOTFOUND, "There is no agent called %q.", name)
		case err != nil:
			return err
		case revoked != 0:
			return wizard.Errorf(wizard.ECONFLICT, "The agent %q is already revoked.", name)
		}
		_, err = tx.ExecContext(ctx, `UPDATE agents SET revoked_at = ? WHERE name = ?`, nanos(db.Now()), name)
		return err
	})
}

// AgentByToken returns the agent a live token belongs to.
func (db *DB) AgentByToken(ctx context.Context, token string) (*wizard.Agent, error) {
	a, err := scanAgent(db.read.QueryRowContext(ctx, `SELECT `+agentColumns+` FROM agents WHERE token_hash = ? AND revoked_at = 0`, hashToken(token)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wizard.Errorf(wizard.EUNAUTHORIZED, "This agent token is not valid: it was never issued, or it was revoked.")
	}
	return a, err
}

// AgentSeen records that an agent asked for work, from addr.
func (db *DB) AgentSeen(ctx context.Context, id int64, addr, version string) error {
	return db.inTx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `UPDATE agents SET last_seen = ?, last_addr = ?, version = ? WHERE id = ?`,
			nanos(db.Now()), addr, version, id)
		return err
	})
}
