-- Probe jobs shared by the instances on one database: one row per target
-- (the normalised URL a probe diagnoses), owned by the instance probing it
-- under a lease it renews; another instance's report of the target joins
-- the job (its run waits for the leader run, joined_to) or, once it is
-- done, reuses its report within the reuse window. A job whose lease ran
-- out (its instance died) is taken over by another instance.
CREATE TABLE probe_jobs (
	target      TEXT    NOT NULL PRIMARY KEY,
	host        TEXT    NOT NULL,
	leader_run  INTEGER NOT NULL,
	owner       TEXT    NOT NULL,
	state       TEXT    NOT NULL CHECK (state IN ('queued', 'done')),
	lease_until INTEGER NOT NULL DEFAULT 0,
	finished_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX probe_jobs_live ON probe_jobs (lease_until) WHERE state = 'queued';
ALTER TABLE probe_runs ADD COLUMN joined_to INTEGER NOT NULL DEFAULT 0;
CREATE INDEX probe_runs_joined ON probe_runs (joined_to) WHERE joined_to <> 0;
-- The politeness cap across instances: when each host's last probes
-- started (a list of times, newest last, at most the cap's length).
CREATE TABLE host_starts (
	host   TEXT NOT NULL PRIMARY KEY,
	starts TEXT NOT NULL DEFAULT ''
);
CREATE INDEX probe_jobs_by_leader ON probe_jobs (leader_run);
