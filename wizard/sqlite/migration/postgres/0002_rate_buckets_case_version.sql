-- Rate limits' token buckets (ratelimit.go), as SQLite's migration 0016
-- makes them: one per key, shared by the instances on this database.
CREATE TABLE rate_buckets (
	key     TEXT             PRIMARY KEY,
	tokens  DOUBLE PRECISION NOT NULL,
	at      BIGINT           NOT NULL,
	taken   BOOLEAN          NOT NULL,
	full_at BIGINT           NOT NULL
);
CREATE INDEX rate_buckets_by_full ON rate_buckets (full_at);

-- A case's version counts the writes to it (changes.go), as SQLite's
-- migration 0016 adds it.
ALTER TABLE cases ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
