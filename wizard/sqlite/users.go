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

// CreateUser adds a staff account with a role; hash is the password's
// bcrypt hash.
func (db *DB) CreateUser(ctx context.Context, name, hash string, role wizard.Role) (*wizard.User, error) {
	if err := wizard.CheckUserName(name); err != nil {
		return nil, err
	}
	if !role.Valid() {
		return nil, wizard.Errorf(wizard.EINVALID, "There is no role %q: an account is an admin or an agent.", role)
	}
	now := db.Now().UTC()
	var id int64
	err := db.inTx(ctx, func(tx *txn) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO users (name, password_hash, role, created_at) VALUES (?, ?, ?, ?) RETURNING id`, name, hash, role, nanos(now)).Scan(&id)
		if db.isConstraint(err) {
			return wizard.Errorf(wizard.ECONFLICT, "There is already a user called %q.", name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &wizard.User{ID: id, Name: name, PasswordHash: hash, Role: role, CreatedAt: now}, nil
}

const userColumns = `u.id, u.name, u.password_hash, u.role, u.created_at`

func scanUser(row scanner) (*wizard.User, error) {
	var u wizard.User
	var created int64
	if err := row.Scan(&u.ID, &u.Name, &u.PasswordHash, &u.Role, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = fromNanos(created)
	return &u, nil
}

// Users returns every staff account, by name.
func (db *DB) Users(ctx context.Context) ([]*wizard.User, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+userColumns+` FROM users u ORDER BY u.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*wizard.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// SetRole changes a user's role; the last admin stays one.
func (db *DB) SetRole(ctx context.Context, name string, role wizard.Role) error {
	if !role.Valid() {
		return wizard.Errorf(wizard.EINVALID, "There is no role %q: an account is an admin or an agent.", role)
	}
	return db.inTx(ctx, func(tx *txn) error {
		u, err := userForChange(ctx, tx, name)
		if err != nil {
			return err
		}
		if u.Role == role {
			return nil
		}
		if role != wizard.RoleAdmin {
			if err := keepAnAdmin(ctx, tx, u, "made an agent"); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET role = ? WHERE id = ?`, role, u.ID)
		return err
	})
}

// DeleteUser removes a user and their sessions (their notes keep their
// name); the last admin stays.
func (db *DB) DeleteUser(ctx context.Context, name string) error {
	return db.inTx(ctx, func(tx *txn) error {
		u, err := userForChange(ctx, tx, name)
		if err != nil {
			return err
		}
		if err := keepAnAdmin(ctx, tx, u, "removed"); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, u.ID)
		return err
	})
}

func userForChange(ctx context.Context, tx *txn, name string) (*wizard.User, error) {
	u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users u WHERE u.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wizard.Errorf(wizard.ENOTFOUND, "There is no user called %q.", name)
	}
	return u, err
}

// keepAnAdmin refuses a change that would take u's admin role away when u
// is the last admin: nobody could then manage users, webhooks or keys
// except on the server. Inside the write transaction, so two admins
// demoting each other at once cannot both succeed (on PostgreSQL, one of
// the two serializable transactions fails and is run again, and then
// finds the other admin gone).
func keepAnAdmin(ctx context.Context, tx *txn, u *wizard.User, change string) error {
	if u.Role != wizard.RoleAdmin {
		return nil
	}
	var admins int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE role = 'admin'`).Scan(&admins); err != nil {
		return err
	}
	if admins <= 1 {
		return wizard.Errorf(wizard.ECONFLICT, "%s is the last admin, so they cannot be %s: make another user an admin first.", u.Name, change)
	}
	return nil
}

// SetPassword replaces a user's password hash and ends their sessions.
func (db *DB) SetPassword(ctx context.Context, name, hash string) error {
	return db.inTx(ctx, func(tx *txn) error {
		var id int64
		if err := tx.QueryRowContext(ctx, `UPDATE users SET password_hash = ? WHERE name = ? RETURNING id`, hash, name).Scan(&id); errors.Is(err, sql.ErrNoRows) {
			return wizard.Errorf(wizard.ENOTFOUND, "There is no user called %q.", name)
		} else if err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, id)
		return err
	})
}

// UserByName returns the user called name.
func (db *DB) UserByName(ctx context.Context, name string) (*wizard.User, error) {
	u, err := scanUser(db.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users u WHERE u.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wizard.Errorf(wizard.ENOTFOUND, "There is no user called %q.", name)
	}
	return u, err
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateSession starts a session for a user and returns its token.
func (db *DB) CreateSession(ctx context.Context, userID int64, ttl time.Duration) (string, error) {
	now := db.Now()
	token := newToken()
	err := db.inTx(ctx, func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, nanos(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
			hashToken(token), userID, nanos(now), nanos(now.Add(ttl)))
		return err
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// SessionUser returns the user of a live session, with their role as it
// is now.
func (db *DB) SessionUser(ctx context.Context, token string) (*wizard.User, error) {
	u, err := scanUser(db.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = ? AND s.expires_at > ?`, hashToken(token), nanos(db.Now())))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wizard.Errorf(wizard.EUNAUTHORIZED, "Your session has ended. Please sign in again.")
	}
	return u, err
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, token string) error {
	return db.inTx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, hashToken(token))
		return err
	})
}
