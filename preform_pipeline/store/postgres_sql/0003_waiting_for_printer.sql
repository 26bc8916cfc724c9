-- Version 3: builds waiting for a free printer (dispatch), the counterpart of the SQLite
-- store's schema version 4: where the build may print, since when it waits, its priority,
-- and when the one "waiting too long" notification went out.

ALTER TABLE builds
    ADD COLUMN print_target JSONB,
    ADD COLUMN waiting_since TIMESTAMPTZ,
    ADD COLUMN priority INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN wait_notified_at TIMESTAMPTZ;
