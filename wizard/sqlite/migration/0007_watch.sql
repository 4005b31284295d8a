-- Watching a case: gatecheck probes its site again on a schedule until it
-- works again (recovered_at) or the watch runs out (watch_until).
-- watch_next is when the next check is due, 0 when none is scheduled;
-- watch_checks counts the checks made, which picks the next interval.
ALTER TABLE cases ADD COLUMN watch_until  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN watch_next   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN watch_checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN recovered_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX cases_watched ON cases (watch_next) WHERE watch_next > 0;
