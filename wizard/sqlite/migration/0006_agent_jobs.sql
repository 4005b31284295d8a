-- Probe jobs for agents: one agent probes a case's URL for one probe run of
-- the case. queued until the agent takes it; taken, with a lease, while it
-- probes (a lease that passes gives the job back, attempts + 1); done once
-- its report is stored as the vantage 'agent:NAME' of the run; expired when
-- not done by expires_at, or after too many attempts.
CREATE TABLE agent_jobs (
	id          INTEGER PRIMARY KEY,
	agent_id    INTEGER NOT NULL REFERENCES agents (id),
	case_id     INTEGER NOT NULL REFERENCES cases (id),
	run_id      INTEGER NOT NULL REFERENCES probe_runs (id),
	url         TEXT    NOT NULL,
	state       TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'taken', 'done', 'expired')),
	actor       TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	taken_at    INTEGER NOT NULL DEFAULT 0,
	lease_until INTEGER NOT NULL DEFAULT 0,
	expires_at  INTEGER NOT NULL,
	finished_at INTEGER NOT NULL DEFAULT 0,
	attempts    INTEGER NOT NULL DEFAULT 0
);
-- The next queued job of an agent; a case's jobs; the jobs a sweep looks at.
CREATE INDEX agent_jobs_next ON agent_jobs (agent_id, state, id);
CREATE INDEX agent_jobs_by_case ON agent_jobs (case_id, id);
CREATE INDEX agent_jobs_live ON agent_jobs (state, lease_until) WHERE state IN ('queued', 'taken');

-- The address gatecheck saw an agent report from: its network's public
-- address, as a site's allowlist sees it.
ALTER TABLE vantages ADD COLUMN addr TEXT NOT NULL DEFAULT '';
