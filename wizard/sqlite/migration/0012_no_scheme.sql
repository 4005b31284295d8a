-- A case's address typed without a scheme ("shop.example.com"): its url is
-- the https form, and its probes try both schemes as a browser would
-- (probes.Target.Bare). Cases opened before were probed as typed.
ALTER TABLE cases ADD COLUMN no_scheme INTEGER NOT NULL DEFAULT 0;
