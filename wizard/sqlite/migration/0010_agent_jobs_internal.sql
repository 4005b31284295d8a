-- Agents' jobs learn two things (issue 15, finding 1):
--
-- internal: staff asked for an internal check, so the agent may use the
-- non-public ranges its operator allowed (agent run --allow-net). Any other
-- job is sent to its agent only once gatecheck's own probe run for it found
-- a public address, and the agent probes it with its default guard.
--
-- state 'refused': a job that was never sent, because gatecheck's server
-- refused the address (blocked_target, or the name resolves to non-public
-- addresses). SQLite cannot change a CHECK constraint in place, so the table
-- is made again, as https://sqlite.org/lang_altertable.html#otheralter says.
CREATE TABLE agent_jobs_new (
	id          INTEGER PRIMARY KEY,
	agent_id    INTEGER NOT NULL REFERENCES agents (id),
	case_id     INTEGER NOT NULL REFERENCES cases (id),
	run_id      INTEGER NOT NULL REFERENCES probe_runs (id),
	url         TEXT    NOT NULL,
	state       TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'taken', 'done', 'expired', 'refused')),
	internal    INTEGER NOT NULL DEFAULT 0 CHECK (internal IN (0, 1)),
	actor       TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	taken_at    INTEGER NOT NULL DEFAULT 0,
	lease_until INTEGER NOT NULL DEFAULT 0,
	expires_at  INTEGER NOT NULL,
	finished_at INTEGER NOT NULL DEFAULT 0,
	attempts    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO agent_jobs_new (id, agent_id, case_id, run_id, url, state, actor, created_at, taken_at, lease_until, expires_at, finished_at, attempts)
	SELECT id, agent_id, case_id, run_id, url, state, actor, created_at, taken_at, lease_until, expires_at, finished_at, attempts FROM agent_jobs;
DROP TABLE agent_jobs;
ALTER TABLE agent_jobs_new RENAME TO agent_jobs;
CREATE INDEX agent_jobs_next ON agent_jobs (agent_id, state, id);
CREATE INDEX agent_jobs_by_case ON agent_jobs (case_id, id);
CREATE INDEX agent_jobs_live ON agent_jobs (state, lease_until) WHERE state IN ('queued', 'taken');
