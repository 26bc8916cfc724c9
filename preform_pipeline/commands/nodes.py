"""``preform-pipeline nodes [SETTINGS]``: the nodes sharing a PostgreSQL job store.

One line per registered node: its id, host, version, health (``alive``; ``silent``: no
heartbeat for a lease, presumed dead, its builds are being reclaimed; ``stopped``: stopped
cleanly), the age of its last heartbeat on the database's clock, the printers and machine
types it reaches, the inboxes its hot folder watches (a retried job goes back to a node
watching its inbox), and the builds it holds under a lease now. ``--format json`` for tools.

Exit status: 0 listed; 1 the store cannot be read, or is a single SQLite file (no nodes).
"""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from preform_pipeline.commands._common import EXIT_FAILURE, EXIT_OK, load_command_settings
from preform_pipeline.commands.arguments.nodes import (
    HELP,
    NAME,
    add_arguments,
)
from preform_pipeline.errors import PipelineError
from preform_pipeline.store.leases import DEFAULT_LEASE_S, NodeStatus
from preform_pipeline.store.opening import is_shared_store
from preform_pipeline.wording import aligned

__all__ = ["HELP", "NAME", "add_arguments", "node_to_dict", "run"]


def node_to_dict(status: NodeStatus) -> dict[str, Any]:
    info = status.info
    return {
        "id": info.id, "host": info.host, "version": info.version, "pid": info.pid,
        "health": status.health(), "heartbeat_age_s": round(status.heartbeat_age_s, 1),
        "heartbeat_at": status.heartbeat_at.isoformat(),
        "started_at": status.started_at.isoformat(), "printers": list(info.printers),
        "machine_types": list(info.machine_types), "inboxes": list(info.inboxes),
        "holds": list(status.held_builds),
    }


def _table(nodes: tuple[NodeStatus, ...]) -> list[str]:
    header = ("NODE", "HOST", "VERSION", "HEALTH", "BEAT", "PRINTERS", "MACHINES", "INBOXES",
              "HOLDS")
    rows = [header] + [
        (n.info.id, n.info.host, n.info.version, n.health(), f"{n.heartbeat_age_s:.0f}s ago",
         ",".join(n.info.printers) or "-", ",".join(n.info.machine_types) or "-",
         ",".join(n.info.inboxes) or "-", ",".join(f"build {b}" for b in n.held_builds) or "-")
        for n in nodes
    ]
    # A node's name, host and printers are what each node registered in the shared store:
    # shown as escapes.
    return aligned(rows)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    settings = load_command_settings(args.settings, stderr)
    if settings is None:
        return EXIT_FAILURE
    if not is_shared_store(settings.store.location):
        print(f"error: the job store is one SQLite file ({settings.store.path}): nodes share a "
              "PostgreSQL store; set store.url (docs/multi-node.md)", file=stderr)
        return EXIT_FAILURE
    from preform_pipeline.store.postgres import PostgresJobStore

    try:
        with PostgresJobStore(str(settings.store.location)) as store:
            nodes = store.list_nodes()
    except PipelineError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILURE
    if args.format == "json":
        json.dump({"lease_s": DEFAULT_LEASE_S, "nodes": [node_to_dict(n) for n in nodes]},
                  stdout, indent=2)
        stdout.write("\n")
    elif not nodes:
        print("no node has registered with this store yet", file=stdout)
    else:
        print("\n".join(_table(nodes)), file=stdout)
    return EXIT_OK
