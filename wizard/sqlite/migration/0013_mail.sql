-- The mail outbox: escalation summaries gatecheck sends itself. A mail is
-- written in the transaction of the case's hand-off (its step, its status,
-- its case.escalated event), sent in the background, retried with backoff
-- while the mail server refuses, and survives a restart.
CREATE TABLE mails (
	id         INTEGER PRIMARY KEY,
	case_id    INTEGER NOT NULL REFERENCES cases (id),
	to_name    TEXT    NOT NULL DEFAULT '',
	to_addr    TEXT    NOT NULL,
	subject    TEXT    NOT NULL,
	body       TEXT    NOT NULL,
	actor      TEXT    NOT NULL DEFAULT '',
	state      TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
	attempts   INTEGER NOT NULL DEFAULT 0,
	next_at    INTEGER NOT NULL,
	last_error TEXT    NOT NULL DEFAULT '',
	sent_at    INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
);
CREATE INDEX mails_due ON mails (next_at) WHERE state = 'pending';
CREATE INDEX mails_by_case ON mails (case_id, id);
