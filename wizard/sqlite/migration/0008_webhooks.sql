-- Webhooks: where events go, and a durable outbox of events. An event is
-- written in the transaction of the change it reports, with one delivery
-- for each destination then enabled; deliveries are made in the
-- background, retried with backoff, and survive a restart.
CREATE TABLE webhooks (
	id          INTEGER PRIMARY KEY,
	url         TEXT    NOT NULL,
	secret      TEXT    NOT NULL DEFAULT '',
	template    TEXT    NOT NULL DEFAULT '',
	source      TEXT    NOT NULL CHECK (source IN ('flag', 'staff')),
	created_by  TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	disabled_at INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE events (
	id      INTEGER PRIMARY KEY,
	event   TEXT    NOT NULL,
	case_id INTEGER REFERENCES cases (id),
	data    TEXT    NOT NULL,
	at      INTEGER NOT NULL
);

CREATE TABLE deliveries (
	id           INTEGER PRIMARY KEY,
	event_id     INTEGER NOT NULL REFERENCES events (id),
	webhook_id   INTEGER NOT NULL REFERENCES webhooks (id),
	state        TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_at      INTEGER NOT NULL,
	last_status  INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT    NOT NULL DEFAULT '',
	delivered_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, id);

-- Incidents opened, so that incident.opened fires once a window.
CREATE TABLE incidents_opened (
	host      TEXT    NOT NULL,
	verdict   TEXT    NOT NULL,
	opened_at INTEGER NOT NULL
);
CREATE INDEX incidents_opened_by_key ON incidents_opened (host, verdict, opened_at);
