-- Version 2: several nodes on one store. Each node registers and beats; a build's work is
-- claimed by one node at a time under a lease on the database's clock, fenced by an epoch
-- that every reclaim increments (a node that lost its lease can no longer write the build).

CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    version TEXT NOT NULL,
    pid INTEGER,
    printers JSONB NOT NULL DEFAULT '[]',
    machine_types JSONB NOT NULL DEFAULT '[]',
    started_at TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    stopped_at TIMESTAMPTZ
);

ALTER TABLE builds
    ADD COLUMN owner TEXT REFERENCES nodes (id),
    ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN lease_until TIMESTAMPTZ;
CREATE INDEX builds_owner ON builds (owner);

-- A file in a shared inbox is taken by the node that inserts its row first; the move follows.
CREATE TABLE inbox_claims (
    source_path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    node TEXT NOT NULL REFERENCES nodes (id),
    claimed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source_path, content_hash)
);
