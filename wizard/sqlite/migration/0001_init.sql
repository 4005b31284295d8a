-- Cases and everything that happens to them. Times are Unix nanoseconds (UTC).
CREATE TABLE cases (
	id           INTEGER PRIMARY KEY,
	token        TEXT    NOT NULL UNIQUE,
	url          TEXT    NOT NULL,
	host         TEXT    NOT NULL,
	ticket       TEXT    NOT NULL DEFAULT '',
	requester_ip TEXT    NOT NULL DEFAULT '',
	status       TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'escalated', 'unresolved')),
	tree_version TEXT    NOT NULL,
	verdict      TEXT    NOT NULL DEFAULT '',
	gateway      TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);
CREATE INDEX cases_by_created ON cases (created_at DESC, id DESC);
CREATE INDEX cases_by_status ON cases (status, created_at DESC);
CREATE INDEX cases_by_verdict ON cases (verdict, created_at DESC);
CREATE INDEX cases_by_host ON cases (host, created_at DESC);
CREATE INDEX cases_by_ticket ON cases (ticket);

-- The step log is append-only: answers are never changed, only followed by
-- newer records (see wizard.StepRecord).
CREATE TABLE steps (
	id      INTEGER PRIMARY KEY,
	case_id INTEGER NOT NULL REFERENCES cases (id),
	idx     INTEGER NOT NULL,
	node    TEXT    NOT NULL,
	choice  TEXT    NOT NULL,
	actor   TEXT    NOT NULL DEFAULT '',
	at      INTEGER NOT NULL
);
CREATE INDEX steps_by_case ON steps (case_id, id);
CREATE TRIGGER steps_no_update BEFORE UPDATE ON steps
BEGIN SELECT RAISE(ABORT, 'the step log is append-only'); END;
CREATE TRIGGER steps_no_delete BEFORE DELETE ON steps
BEGIN SELECT RAISE(ABORT, 'the step log is append-only'); END;

CREATE TABLE probe_runs (
	id          INTEGER PRIMARY KEY,
	case_id     INTEGER NOT NULL REFERENCES cases (id),
	state       TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done')),
	report      TEXT,
	actor       TEXT    NOT NULL DEFAULT '',
	queued_at   INTEGER NOT NULL,
	started_at  INTEGER NOT NULL DEFAULT 0,
	finished_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX probe_runs_by_case ON probe_runs (case_id, id);

CREATE TABLE notes (
	id      INTEGER PRIMARY KEY,
	case_id INTEGER NOT NULL REFERENCES cases (id),
	author  TEXT    NOT NULL,
	body    TEXT    NOT NULL,
	at      INTEGER NOT NULL
);
CREATE INDEX notes_by_case ON notes (case_id, id);

CREATE TABLE status_changes (
	id          INTEGER PRIMARY KEY,
	case_id     INTEGER NOT NULL REFERENCES cases (id),
	from_status TEXT    NOT NULL,
	to_status   TEXT    NOT NULL,
	actor       TEXT    NOT NULL,
	at          INTEGER NOT NULL
);
CREATE INDEX status_changes_by_case ON status_changes (case_id, id);

-- Trees walked by cases, by version, so that old cases stay readable after
-- the tree changes.
CREATE TABLE trees (
	version    TEXT PRIMARY KEY,
	source     BLOB    NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	name          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
	password_hash TEXT    NOT NULL,
	created_at    INTEGER NOT NULL
);

-- Sessions are stored by the SHA-256 of their token: a stolen database
-- does not hand out live sessions.
CREATE TABLE sessions (
	token_hash TEXT PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);

-- Full-text search over URL, ticket and notes; docid is the case id.
CREATE VIRTUAL TABLE case_search USING fts4 (url, ticket, notes, tokenize=unicode61);
CREATE TRIGGER case_search_insert AFTER INSERT ON cases
BEGIN INSERT INTO case_search (docid, url, ticket, notes) VALUES (new.id, new.url, new.ticket, ''); END;
CREATE TRIGGER case_search_note AFTER INSERT ON notes
BEGIN UPDATE case_search SET notes = notes || ' ' || new.body WHERE docid = new.case_id; END;
