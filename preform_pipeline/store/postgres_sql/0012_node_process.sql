-- Version 12: a node's row names the process of the daemon that registered it (liveness.py's
-- label: host, pid, start time, instance: boot and pid namespace, start ticks), so a daemon
-- starting with that node id tells its own previous life (killed on this PC: that very process
-- runs no more) from another daemon that still runs, by the one rule the printer claims use;
-- a pid alone would take a process that reused it, or another container's pid, for the
-- holder. NULL in rows written before: such a holder is never proven gone (its beat decides).

ALTER TABLE nodes
    ADD COLUMN process TEXT;
