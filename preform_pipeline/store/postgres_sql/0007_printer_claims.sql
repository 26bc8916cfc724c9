-- Version 7: printers chosen for a build whose print is not sent yet, the counterpart of the
-- SQLite store's schema version 8, so two nodes of a farm (or a run beside a watch) do not both
-- choose one printer while its status still says it is free. A claim ends at ``until`` by
-- itself if its holder dies.

CREATE TABLE printer_claims (
    printer TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    build TEXT NOT NULL,
    until TIMESTAMPTZ NOT NULL
);
