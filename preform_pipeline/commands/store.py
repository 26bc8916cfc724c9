"""``preform-pipeline store migrate --to postgresql://…``: move a SQLite job store to PostgreSQL.

Copies the SQLite store (``--store PATH``, default the settings' ``store.path``) into an empty
PostgreSQL database with every job, build, job key and audit row, keeping their ids, and the
Web API budget still live (the last hour's requests, holds not ended); the
target must be empty and is left empty if anything fails. The password comes from
``PREFORM_PIPELINE_STORE_PASSWORD`` (or its ``_FILE``) or libpq's own sources; the URL is
printed without it. Stop the hot-folder daemon first, then point ``store.url`` at the target.

Exit status: 0 copied; 1 the source or target cannot be used (said why); 2 usage errors.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from preform_pipeline.commands._common import (
    EXIT_FAILURE,
    EXIT_OK,
    load_command_settings,
    warn_typed_password,
)
from preform_pipeline.commands.arguments.common import shown_not_a_store
from preform_pipeline.commands.arguments.store import (
    HELP,
    NAME,
    add_arguments,
)
from preform_pipeline.errors import PipelineError
from preform_pipeline.store.pgurl import is_postgres_url
from preform_pipeline.userpath import expand_user
from preform_pipeline.wording import counted

__all__ = ["HELP", "NAME", "add_arguments", "run"]


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if not is_postgres_url(args.to):
        print(f"error: --to must be a postgresql:// URL, got {shown_not_a_store(args.to)!r}",
              file=stderr)
        return EXIT_FAILURE
    warn_typed_password(args.to, "--to", stderr)
    source: Path
    if args.store is not None:
        source = expand_user(args.store, source="--store")
    else:
        settings = load_command_settings(args.settings, stderr)
        if settings is None:
            return EXIT_FAILURE
        source = settings.store.path
    # Imported here: psycopg is an optional dependency, needed only for this action.
    from preform_pipeline.store.migrate import migrate_sqlite_to_postgres
    from preform_pipeline.store.postgres import PostgresJobStore

    try:
        with PostgresJobStore(args.to) as target:
            report = migrate_sqlite_to_postgres(source, target)
    except PipelineError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILURE
    rows = report.rows
    print(f"copied {counted(rows['jobs'], 'job')}, {counted(rows['builds'], 'build')} and "
          f"{counted(rows['transitions'], 'audit row')} from {report.source} to "
          f"{report.target}", file=stdout)
    requests, holds = rows.get("web_api_requests", 0), rows.get("web_api_holds", 0)
    if requests or holds:
        print(f"kept the Web API budget still live: {counted(requests, 'request')} of the "
              f"last hour, {counted(holds, 'Retry-After hold')} not ended", file=stdout)
    print("next: set store.url (or PREFORM_PIPELINE_STORE_URL) to that URL on every node",
          file=stdout)
    return EXIT_OK
