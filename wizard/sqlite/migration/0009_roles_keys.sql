-- Roles: every account works cases; admins also manage users, webhooks and
-- API keys. Until now every member of staff could do everything, so the
-- accounts that exist become admins: an upgrade locks no operator out.
-- Accounts made from now on are agents unless made admins.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'agent' CHECK (role IN ('admin', 'agent'));
UPDATE users SET role = 'admin';

-- API keys: ticket systems using the JSON API. Stored by their SHA-256, as
-- sessions and agents' tokens are. created_by is the admin's name (not a
-- reference: removing the admin keeps the key).
CREATE TABLE api_keys (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL UNIQUE COLLATE NOCASE,
	token_hash TEXT    NOT NULL UNIQUE,
	created_by TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	revoked_at INTEGER NOT NULL DEFAULT 0,
	last_used  INTEGER NOT NULL DEFAULT 0
);
