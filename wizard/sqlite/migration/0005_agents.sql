-- Agents: gatecheck run inside customers' networks. Tokens are stored by
-- their SHA-256, as sessions are: a stolen database hands out no agent.
CREATE TABLE agents (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL UNIQUE COLLATE NOCASE,
	token_hash TEXT    NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER NOT NULL DEFAULT 0,
	last_seen  INTEGER NOT NULL DEFAULT 0,
	last_addr  TEXT    NOT NULL DEFAULT '',
	version    TEXT    NOT NULL DEFAULT ''
);
