package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// CreateUser adds a staff account; hash is the password's bcrypt hash.
func (db *DB) CreateUser(ctx context.Context, name, hash string) (*wizard.User, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	now := db.Now().UTC()
	res, err := tx.ExecContext(ctx, `INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)`, name, hash, nanos(now))
	if isConstraint(err) {
		return nil, wizard.Errorf(wizard.ECONFLICT, "There is already a user called %q.", name)
	} else if err != nil {
		return nil, err
	}
	id, _ := res.LastInsertId()
	return &wizard.User{ID: id, Name: name, PasswordHash: hash, CreatedAt: now}, tx.Commit()
}

// SetPassword replaces a user's password hash and ends their sessions.
func (db *DB) SetPassword(ctx context.Context, name, hash string) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var id int64
	if err := tx.QueryRowContext(ctx, `UPDATE users SET password_hash = ? WHERE name = ? RETURNING id`, hash, name).Scan(&id); errors.Is(err, sql.ErrNoRows) {
		return wizard.Errorf(wizard.ENOTFOUND, "There is no user called %q.", name)
	} else if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, id); err != nil {
		return err
	}
	return tx.Commit()
}

// UserByName returns the user called name.
func (db *DB) UserByName(ctx context.Context, name string) (*wizard.User, error) {
	var u wizard.User
	var created int64
	err := db.read.QueryRowContext(ctx, `SELECT id, name, password_hash, created_at FROM users WHERE name = ?`, name).
		Scan(&u.ID, &u.Name, &u.PasswordHash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wizard.Errorf(wizard.ENOTFOUND, "There is no user called %q.", name)
	} else if err != nil {
		return nil, err
	}
	u.CreatedAt = fromNanos(created)
	return &u, nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateSession starts a session for a user and returns its token.
func (db *DB) CreateSession(ctx context.Context, userID int64, ttl time.Duration) (string, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	now := db.Now()
	token := newToken()
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, nanos(now)); err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		hashToken(token), userID, nanos(now), nanos(now.Add(ttl))); err != nil {
		return "", err
	}
	return token, tx.Commit()
}

// SessionUser returns the user of a live session.
func (db *DB) SessionUser(ctx context.Context, token string) (*wizard.User, error) {
	var u wizard.User
	var created int64
	err := db.read.QueryRowContext(ctx, `SELECT u.id, u.name, u.password_hash, u.created_at FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = ? AND s.expires_at > ?`, hashToken(token), nanos(db.Now())).Scan(&u.ID, &u.Name, &u.PasswordHash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wizard.Errorf(wizard.EUNAUTHORIZED, "Your session has ended. Please sign in again.")
	} else if err != nil {
		return nil, err
	}
	u.CreatedAt = fromNanos(created)
	return &u, nil
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, token string) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, hashToken(token)); err != nil {
		return err
	}
	return tx.Commit()
}
