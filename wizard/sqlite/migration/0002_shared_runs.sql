-- Probe runs may share one diagnosis: reports of the same site made while a
-- probe of it runs join that probe, and reports soon after it reuse its
-- report. Such a run keeps no report of its own; shared_from names the run
-- that holds it.
ALTER TABLE probe_runs ADD COLUMN shared_from INTEGER REFERENCES probe_runs (id);
