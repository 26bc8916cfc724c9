"""Each command's command line, apart from what the command does.

The command line builds argparse's parser of the command typed only (``cli.py``): a module
here declares that command's arguments and imports what that takes (argparse, a default or
two), not the command's stack (the executor, numpy, the store, httpx), which is imported
when the command runs. ``--help`` and ``--version`` list every command from :data:`COMMANDS`
without importing any of them. A command ``X``'s arguments are ``arguments/X.py``
(``NAME``, ``HELP``, ``add_arguments(parser)``); what it does is ``commands/X.py``
(``run(args, stdout, stderr)``, and the same three names, imported from here).
"""

from __future__ import annotations

from typing import Final

__all__ = ["COMMANDS", "arguments_module", "command_module"]

#: Each command's name and its one line of help, in the order ``--help`` lists them.
COMMANDS: Final[dict[str, str]] = {
    "validate": (
        "Check recipe and settings files; report every problem with its file, line and column."
    ),
    "plan": "Group model files into builds and show each build's step graph (no server needed).",
    "run": (
        "Prepare model files in builds on a pool of PreFormServers (or the simulator) and print."
    ),
    "jobs": "List the job store's jobs (hot folders, prints); show, retry, cancel or resolve one.",
    "watch": "Watch hot folders: prepare (and print) model files dropped into them.",
    "verify": (
        "Check the prints of earlier runs in the Formlabs prints feed and record how they ended."
    ),
    "service": (
        "Install, remove or check the hot-folder daemon as a service (systemd, launchd, Windows)."
    ),
    "fleet": "Manage the Dashboard's printer groups as the settings declare them (fleet sync).",
    "nodes": (
        "List the nodes sharing the PostgreSQL job store: health, reach and the builds they hold."
    ),
    "store": "Job store maintenance: move a SQLite store into PostgreSQL (store migrate --to URL).",
    "serve": "Serve the web dashboard: queue, builds, printers, approval, metrics.",
}


def arguments_module(name: str) -> str:
    """The module that declares command ``name``'s arguments."""
    return f"{__name__}.{name}"


def command_module(name: str) -> str:
    """The module that runs command ``name``."""
    return f"{__name__.rpartition('.')[0]}.{name}"
