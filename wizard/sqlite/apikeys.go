package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/gatecheck/gatecheck/wizard"
)

// CreateAPIKey makes an API key and returns its token; only the token's
// hash is stored.
func (db *DB) CreateAPIKey(ctx context.Context, name, createdBy string) (*wizard.APIKey, string, error) {
	if err := wizard.CheckKeyName(name); err != nil {
		return nil, "", err
	}
	now := db.Now().UTC()
	token := wizard.APIKeyPrefix + newToken()
	var id int64
	err := db.inTx(ctx, func(tx *txn) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO api_keys (name, token_hash, created_by, created_at) VALUES (?, ?, ?, ?) RETURNING id`,
			name, hashToken(token), createdBy, nanos(now)).Scan(&id)
		if db.isConstraint(err) {
			return wizard.Errorf(wizard.ECONFLICT, "There is already an API key called %q (revoked keys keep their names).", name)
		}
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return &wizard.APIKey{ID: id, Name: name, CreatedBy: createdBy, CreatedAt: now}, token, nil
}

const apiKeyColumns = `id, name, created_by, created_at, revoked_at, last_used`

func scanAPIKey(row scanner) (*wizard.APIKey, error) {
	var k wizard.APIKey
	var created, revoked, used int64
	if err := row.Scan(&k.ID, &k.Name, &k.CreatedBy, &created, &revoked, &used); err != nil {
		return nil, err
	}
	k.CreatedAt, k.RevokedAt, k.LastUsed = fromNanos(created), fromNanos(revoked), fromNanos(used)
	return &k, nil
}

// APIKeys returns every API key, revoked ones included, by name.
func (db *DB) APIKeys(ctx context.Context) ([]*wizard.APIKey, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*wizard.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey refuses a key from now on.
func (db *DB) RevokeAPIKey(ctx context.Context, name string) error {
	return db.inTx(ctx, func(tx *txn) error {
		var revoked int64
		err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM api_keys WHERE name = ?`, name).Scan(&revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return wizard.Errorf(wizard.ENOTFOUND, "There is no API key called %q.", name)
		case err != nil:
			return err
		case revoked != 0:
			return wizard.Errorf(wizard.ECONFLICT, "The API key %q is already revoked.", name)
		}
		_, err = tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE name = ?`, nanos(db.Now()), name)
		return err
	})
}

// APIKeyByToken returns the live key a token is. The lookup is by the
// token's hash, so how long it takes tells nothing about valid tokens.
func (db *DB) APIKeyByToken(ctx context.Context, token string) (*wizard.APIKey, error) {
	k, err := scanAPIKey(db.read.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE token_hash = ? AND revoked_at = 0`, hashToken(token)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wizard.Errorf(wizard.EUNAUTHORIZED, "This API key is not valid: it was never issued, or it was revoked.")
	}
	return k, err
}

// APIKeyUsed records that a key was sent now.
func (db *DB) APIKeyUsed(ctx context.Context, id int64) error {
	return db.inTx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used = ? WHERE id = ?`, nanos(db.Now()), id)
		return err
	})
}
