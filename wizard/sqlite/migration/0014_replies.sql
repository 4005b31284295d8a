-- Replies: notes staff write for the visitor (public = 1), shown on the
-- visitor's case page; the rest stay internal to the helpdesk.
ALTER TABLE notes ADD COLUMN public INTEGER NOT NULL DEFAULT 0;
