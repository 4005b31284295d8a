-- Notices staff publish for the visitors of a host during an incident.
-- At most one is active per host (cleared_at = 0); publishing a new one
-- clears the one before, so the history stays.
CREATE TABLE notices (
	id         INTEGER PRIMARY KEY,
	host       TEXT    NOT NULL,
	verdict    TEXT    NOT NULL DEFAULT '',
	body       TEXT    NOT NULL,
	author     TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	cleared_at INTEGER NOT NULL DEFAULT 0,
	cleared_by TEXT    NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX notices_active ON notices (host) WHERE cleared_at = 0;
