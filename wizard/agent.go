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
	// The agents' probe jobs.
	AgentJobs
}

// AgentJobState is where an agent's probe job stands.
type AgentJobState string

// The states of an agent's job: queued until the agent takes it, taken
// while it probes (for a lease), done once its report is stored, expired
// when it was not done in time, refused when it was never sent because
// gatecheck's own server refused the address (see AgentJob.Internal).
const (
	JobQueued  AgentJobState = "queued"
	JobTaken   AgentJobState = "taken"
	JobDone    AgentJobState = "done"
	JobExpired AgentJobState = "expired"
	JobRefused AgentJobState = "refused"
)

// AgentJob asks one agent to probe a case's URL for one probe run of the
// case; its report becomes the view "agent:NAME" of that run.
type AgentJob struct {
	ID     int64         `json:"id"`
	Agent  *Agent        `json:"agent"`
	CaseID int64         `json:"-"`
	RunID  int64         `json:"run"`
	URL    string        `json:"url"`
	State  AgentJobState `json:"state"`
	// Internal is an internal check that staff asked for: the agent may
	// probe the non-public ranges its operator allowed. Any other job goes
	// to its agent only once gatecheck's own probe run found the address
	// public, and the agent probes it as if it allowed no such range: a
	// customer's agent is not a way into the customer's network.
	Internal bool `json:"internal,omitempty"`
	// Actor is who asked for it ("" when the case was opened with it).
	Actor     string    `json:"actor,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// TakenAt and LeaseUntil are set while the agent works on it: a lease
	// that passes gives the job back, so that an agent that went away
	// mid-job does not keep it.
	TakenAt    time.Time `json:"taken_at,omitzero"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// ExpiresAt is when it stops waiting for any agent.
	ExpiresAt  time.Time `json:"expires_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Attempts counts the leases that passed without a report.
	Attempts int `json:"attempts"`
}

// From is the source of the view the job makes: "agent:NAME".
func (j *AgentJob) From() string { return AgentSource(j.Agent.Name) }

// AgentSource is the From of an agent's views.
func AgentSource(name string) string { return "agent:" + name }

// AgentJobs keeps the probe jobs of agents.
type AgentJobs interface {
	// QueueAgentJobs queues one job per agent for probe run runID of case
	// caseID, to be done by expires; internal ones may probe the agents'
	// allowed non-public ranges.
	QueueAgentJobs(ctx context.Context, caseID, runID int64, agentIDs []int64, actor string, internal bool, expires time.Time) ([]*AgentJob, error)
	// TakeAgentJob gives the agent its oldest queued job that may be sent,
	// leased to it until lease passes; nil when it has none. An internal
	// job may always be sent; any other only once its probe run is done
	// and the server's guard let the address through (its verdict is not
	// blocked_target and no address of the name was withheld as
	// non-public).
	TakeAgentJob(ctx context.Context, agentID int64, lease time.Duration) (*AgentJob, error)
	// FinishAgentJob stores v, the agent's view made by job jobID, as the
	// view "agent:NAME" of the job's run, and marks the job done. A job of
	// another agent is ENOTFOUND; one not taken (queued again, done or
	// expired) is ECONFLICT.
	FinishAgentJob(ctx context.Context, agentID, jobID int64, v *Vantage) (*AgentJob, error)
	// SweepAgentJobs gives back the jobs whose lease passed (queued again,
	// or expired after maxAttempts), expires those past their time and
	// refuses the queued jobs TakeAgentJob will never send (not internal,
	// their run refused by the server's guard). It returns the cases whose
	// jobs changed.
	SweepAgentJobs(ctx context.Context, maxAttempts int) ([]int64, error)
	// CaseAgentJobs returns a case's jobs, oldest first.
	CaseAgentJobs(ctx context.Context, caseID int64) ([]*AgentJob, error)
}
