-- The origin, reached directly: the address staff (or an API key) asked
-- gatecheck to reach the case's host at, bypassing where the name leads
-- (an edge or CDN), and its view stored as the source 'origin'.
ALTER TABLE cases ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE vantages DROP CONSTRAINT vantages_source_check;
ALTER TABLE vantages ADD CONSTRAINT vantages_source_check CHECK (source IN ('browser', 'origin') OR source LIKE 'agent:_%');
