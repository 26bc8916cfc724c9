-- Version 9: the inboxes a node's hot folder watches (each as its settings name it, the form
-- the hot folder records in a job's ``_hotfolder.inbox``). A retried job is taken back only by
-- a node that watches its inbox (a node without that mount failed it "its file is gone"), and
-- `jobs` / the dashboard say when no running node watches the inbox a retried job waits for.
-- Nodes registered before this version watch nothing that is known: an empty list.

ALTER TABLE nodes ADD COLUMN inboxes JSONB NOT NULL DEFAULT '[]';
