-- Rate limits' token buckets (ratelimit.go), one per key ("probe:" and a
-- client's address, "key:" and an API key's ID, "account:" and a hash of
-- an account's name): so that gatecheck instances sharing the database
-- share their limits. tokens is what the bucket held at at (Unix ns);
-- taken says whether the last take got a token; full_at is when the
-- bucket is full again, after which it is the same as no bucket and the
-- sweep deletes it.
CREATE TABLE rate_buckets (
	key     TEXT    PRIMARY KEY,
	tokens  REAL    NOT NULL,
	at      INTEGER NOT NULL,
	taken   INTEGER NOT NULL,
	full_at INTEGER NOT NULL
);
CREATE INDEX rate_buckets_by_full ON rate_buckets (full_at);

-- A case's version counts the writes to it (changes.go): a page kept of
-- the case is served only while the version it was read at is the case's,
-- so that a write made by another instance is never missed.
ALTER TABLE cases ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
