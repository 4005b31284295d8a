package wizard

import (
	"context"
	"regexp"
	"strings"
	"time"
)

// Role is what a staff account may do. Every account works cases; admins
// also manage users, webhooks and API keys.
type Role string

// The roles: an agent works cases, an admin also manages the helpdesk's
// accounts and integrations. (A role "agent" is a person; gatecheck's
// probing agents in customers' networks are wizard.Agent.)
const (
	RoleAdmin Role = "admin"
	RoleAgent Role = "agent"
)

// Roles lists the roles, the default first.
var Roles = []Role{RoleAgent, RoleAdmin}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleAgent }

// IsAdmin reports whether the account may manage users, webhooks and API
// keys.
func (u *User) IsAdmin() bool { return u != nil && u.Role == RoleAdmin }

// CheckUserName refuses a name a staff account cannot have: it is 1 to 64
// characters without spaces (it shows as the author of notes).
func CheckUserName(name string) error {
	if name == "" || len(name) > 64 || strings.ContainsAny(name, " \t\r\n") || strings.ContainsFunc(name, isControl) {
		return Errorf(EINVALID, "A name is 1 to 64 characters without spaces.")
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// keyName is what an API key may be called: the ticket system it is for.
var keyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckKeyName refuses a name an API key cannot have.
func CheckKeyName(name string) error {
	if !keyName.MatchString(name) {
		return Errorf(EINVALID, "A key's name is 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit.")
	}
	return nil
}

// UserStore manages staff accounts, for admins. Signing in and sessions
// are in CaseStore.
type UserStore interface {
	// CreateUser adds an account; hash is the password's bcrypt hash.
	CreateUser(ctx context.Context, name, hash string, role Role) (*User, error)
	// Users returns every account, by name.
	Users(ctx context.Context) ([]*User, error)
	// SetRole changes an account's role; DeleteUser removes an account and
	// ends its sessions. Neither may leave gatecheck without an admin:
	// that is ECONFLICT.
	SetRole(ctx context.Context, name string, role Role) error
	DeleteUser(ctx context.Context, name string) error
}

// APIKey lets a ticket system use the JSON API as itself: with limits of
// its own, and to the incidents, which anonymous clients may not read.
type APIKey struct {
	ID   int64  `json:"-"`
	Name string `json:"name"`
	// CreatedBy is the admin who made it ("" when made on the server).
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// LastUsed is when it was last sent, to the minute or so.
	LastUsed time.Time `json:"last_used,omitzero"`
}

// APIKeyPrefix starts every API key, so that one pasted in the wrong place
// is recognised (agents' tokens start gca_).
const APIKeyPrefix = "gck_"

// APIKeyStore keeps the API keys, stored by their hash.
type APIKeyStore interface {
	// CreateAPIKey makes a key and returns its token, which is not stored
	// and cannot be shown again.
	CreateAPIKey(ctx context.Context, name, createdBy string) (*APIKey, string, error)
	// APIKeys returns every key, revoked ones included, by name.
	APIKeys(ctx context.Context) ([]*APIKey, error)
	RevokeAPIKey(ctx context.Context, name string) error
	// APIKeyByToken returns the key a token is; an unknown or revoked
	// token is EUNAUTHORIZED.
	APIKeyByToken(ctx context.Context, token string) (*APIKey, error)
	// APIKeyUsed records that a key was sent now.
	APIKeyUsed(ctx context.Context, id int64) error
}
