-- Version 5: notices said about things the store holds no job for (a name too long to take),
-- the counterpart of the SQLite store's schema version 6, so a run from cron (or another node)
-- does not say them again.

CREATE TABLE notices (
    key TEXT PRIMARY KEY,
    about TEXT NOT NULL,
    said_at TIMESTAMPTZ NOT NULL
);
