-- The visitor's e-mail address (optional), for the helpdesk's replies by
-- mail; shown to staff and to the reporting browser only. Mails now say
-- what they are: an escalation's hand-off to a team, or a reply to the
-- visitor.
ALTER TABLE cases ADD COLUMN visitor_email TEXT NOT NULL DEFAULT '';
ALTER TABLE mails ADD COLUMN kind TEXT NOT NULL DEFAULT 'handoff' CHECK (kind IN ('handoff', 'reply'));
