"""``preform-pipeline fleet sync``: the Dashboard's printer groups as the settings declare them.

::

    preform-pipeline fleet sync SETTINGS [--dry-run]

Reads the settings' ``fleet`` section, reads the Dashboard's groups and printers through the
Web API, prints the plan (one line per change: ``+`` create or add, ``~`` update, ``>`` move
printers in, ``-`` remove or delete; then notes on what stays as it is) and, unless
``--dry-run``, applies it and says how many changes were made. docs/fleet.md has the details.

Credentials come from ``PREFORM_PIPELINE_CLIENT_ID`` / ``_SECRET`` (or their ``_FILE`` forms)
or the settings' ``cloud`` section, never from the command line.

Exit status: 0 the Dashboard matches (or would, after a dry run's plan); 1 settings without a
``fleet`` section, no or refused credentials, a printer the account lacks, a refused change or
an unreachable Web API; 2 usage errors; 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
from typing import TextIO

from preform_pipeline.cloud.factory import load_cloud_credentials, make_web_client
from preform_pipeline.cloud.groupsync import SyncStep, apply_plan, plan_sync
from preform_pipeline.commands._common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    load_command_settings,
)
from preform_pipeline.commands.arguments.fleet import (
    HELP,
    NAME,
    add_arguments,
)
from preform_pipeline.errors import CloudError, ConfigError
from preform_pipeline.wording import counted, visible

__all__ = ["HELP", "NAME", "add_arguments", "run"]


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    settings = load_command_settings(args.settings, stderr)
    if settings is None:
        return EXIT_FAILURE
    if not settings.fleet.declared:
        print(
            f"error: {args.settings} has no fleet section: nothing to sync "
            "(see docs/fleet.md for fleet: groups: ...)",
            file=stderr,
        )
        return EXIT_FAILURE
    try:
        credentials = load_cloud_credentials(settings.cloud, os.environ)
        with make_web_client(settings.cloud, credentials) as client:
            plan = plan_sync(client, settings.fleet)
            # Group names, members and printers come from the settings and the Dashboard:
            # each line shown as escapes (a group "Lab<ESC>[2J" cleared the terminal).
            if plan.empty:
                print("no difference: the Dashboard's groups match the settings", file=stdout)
            else:
                print(f"plan ({counted(len(plan.steps), 'change')}):", file=stdout)
            indent = "" if plan.empty else "  "  # the notes alone are not indented
            for line in plan.lines():
                print(visible(f"{indent}{line}"), file=stdout)
            if plan.empty:
                return EXIT_OK
            if args.dry_run:
                print("dry run: nothing was changed", file=stdout)
                return EXIT_OK

            def taken(step: SyncStep) -> None:
                print(visible(f"done: {step.describe()}"), file=stdout)

            count = apply_plan(client, plan, done=taken)
    except ConfigError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILURE
    except CloudError as exc:
        print(f"error: fleet sync stopped: {exc}", file=stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted: run fleet sync again to see what is left", file=stderr)
        return EXIT_INTERRUPTED
    print(f"applied {counted(count, 'change')}", file=stdout)
    return EXIT_OK
