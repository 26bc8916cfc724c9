-- Version 8: a print's send holder names its process's instance, the counterpart of the SQLite
-- store's schema version 9. ``builds.send_holder`` (and a `run`'s claim in ``jobs.fields``) is
-- JSON already: the holder's ``instance`` (boot and pid namespace, liveness.py) goes inside
-- it, and no column changes. The version is the point: an earlier version would judge such a
-- holder by its host name and pid alone (two containers of one host name share pids) and could
-- conclude another node's live server gone, printing twice; it refuses a store of a newer
-- version. Holders written before stay as they are, read as naming no instance: never proven
-- gone. The comment says the same to whoever reads the database.

COMMENT ON COLUMN builds.send_holder IS
    'who held a print''s send: server, request_timeout_s, remote, and its process: pid, '
    'create_time, host, instance (liveness.py; absent in holders written before version 8)';
