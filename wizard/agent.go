package wizard

import (
	"context"
	"time"
)

// Agent is gatecheck run inside a customer's network: it dials out to the
// server, takes the probe jobs meant for it and probes from where the
// customer's people sit, so that a case can compare "from the office" with
// "from gatecheck".
type Agent struct {
	ID        int64     `json:"-"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// LastSeen is when it last asked for work, LastAddr the address the
	// server saw it come from (the customer network's public address, as a
	// hosting team's allowlist sees it), Version what it said it runs.
	LastSeen time.Time `json:"last_seen,omitzero"`
	LastAddr string    `json:"last_addr,omitempty"`
	Version  string    `json:"version,omitempty"`
}

// AgentOfflineAfter is how long an agent may go without asking for work
// before it counts as offline. Agents ask at least every AgentPoll.
const (
	AgentPoll         = 25 * time.Second
	AgentOfflineAfter = 2*AgentPoll + 10*time.Second
)

// Online reports whether the agent asked for work recently.
func (a *Agent) Online(now time.Time) bool {
	return a.RevokedAt.IsZero() && !a.LastSeen.IsZero() && now.Sub(a.LastSeen) < AgentOfflineAfter
}

// AgentStore keeps the agents and their tokens (stored hashed).
type AgentStore interface {
	// CreateAgent registers an agent and returns its token, which is not
	// stored and cannot be shown again.
	CreateAgent(ctx context.Context, name string) (*Agent, string, error)
	Agents(ctx context.Context) ([]*Agent, error)
	RevokeAgent(ctx context.Context, name string) error
	// AgentByToken returns the agent a token belongs to; an unknown or
	// revoked token is EUNAUTHORIZED.
	AgentByToken(ctx context.Context, token string) (*Agent, error)
	// AgentSeen records that an agent asked for work, from addr.
	AgentSeen(ctx context.Context, id int64, addr, version string) error
}
