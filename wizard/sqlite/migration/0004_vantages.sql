-- Points of view on a case's URL besides the server's own probes (whose
-- view is the probe run itself): the visitor's browser ('browser'), agents
-- on other networks later ('agent:NAME'). Each view is made for one probe
-- run of the case, at most one per source and run. reachable is NULL when
-- the view could not be taken; report holds a full diagnosis from sources
-- that can make one (agents).
CREATE TABLE vantages (
	id        INTEGER PRIMARY KEY,
	case_id   INTEGER NOT NULL REFERENCES cases (id),
	run_id    INTEGER NOT NULL REFERENCES probe_runs (id),
	source    TEXT    NOT NULL CHECK (source = 'browser' OR source GLOB 'agent:?*'),
	at        INTEGER NOT NULL,
	reachable INTEGER CHECK (reachable IN (0, 1)),
	detail    TEXT    NOT NULL DEFAULT '',
	report    TEXT,
	UNIQUE (run_id, source)
);
CREATE INDEX vantages_by_case ON vantages (case_id, id);
