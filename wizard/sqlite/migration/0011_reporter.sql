-- The browser that reported a case: the SHA-256 (hex) of a secret that
-- browser holds in a cookie scoped to the case's link. Only that browser
-- records "your browser's" view of the site, so that a helpdesk agent or a
-- colleague who opens the link never overwrites the reporter's evidence.
-- Empty until a browser reports or claims the case (cases made through
-- the API, and those made before this column).
ALTER TABLE cases ADD COLUMN reporter_hash TEXT NOT NULL DEFAULT '';
