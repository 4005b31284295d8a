-- The origin, reached directly: the address staff (or an API key) asked
-- gatecheck to reach the case's host at, bypassing where the name leads
-- (an edge or CDN), and its view stored as the source 'origin'. SQLite
-- cannot change a CHECK constraint in place: the vantages table is built
-- again (nothing refers to it).
ALTER TABLE cases ADD COLUMN origin TEXT NOT NULL DEFAULT '';

CREATE TABLE vantages_new (
	id        INTEGER PRIMARY KEY,
	case_id   INTEGER NOT NULL REFERENCES cases (id),
	run_id    INTEGER NOT NULL REFERENCES probe_runs (id),
	source    TEXT    NOT NULL CHECK (source IN ('browser', 'origin') OR source GLOB 'agent:?*'),
	at        INTEGER NOT NULL,
	reachable INTEGER CHECK (reachable IN (0, 1)),
	detail    TEXT    NOT NULL DEFAULT '',
	report    TEXT,
	addr      TEXT    NOT NULL DEFAULT '',
	UNIQUE (run_id, source)
);
INSERT INTO vantages_new (id, case_id, run_id, source, at, reachable, detail, report, addr)
	SELECT id, case_id, run_id, source, at, reachable, detail, report, addr FROM vantages;
DROP TABLE vantages;
ALTER TABLE vantages_new RENAME TO vantages;
CREATE INDEX vantages_by_case ON vantages (case_id, id);
