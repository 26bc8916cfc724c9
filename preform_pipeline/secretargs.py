"""A secret typed on a command line is refused before argparse reads the line.

A command line is readable by every user of the machine (``ps``, ``/proc/PID/cmdline``) and
kept in shell history, so no command takes a secret there. Left to argparse, a newcomer's
``--client-secret hunter2`` was worse than refused: argparse echoed it back ("unrecognized
arguments: --client-secret hunter2") onto a terminal, a cron mail or a service's journal, and
the Dashboard simulator's parser, matching option prefixes, took it for
``--client-secret-file`` and named the secret as a file it could not read. So the words that
give a secret are looked for first, and the refusal names the option, never the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

__all__ = ["SECRET_OPTIONS", "secret_option_in", "secret_option_refusal"]

#: Options a newcomer types to give a secret; no command of the project has one of them.
SECRET_OPTIONS: Final = frozenset({
    "--client-secret", "--secret", "--password", "--passwd", "--token", "--access-token",
    "--api-key", "--dashboard-password",
})


def secret_option_in(argv: Sequence[str]) -> str | None:
    """The first secret-giving option in ``argv`` (as ``--client-secret``, whatever its
    spelling: ``--Client_Secret=x`` too), or None. Words after ``--`` are names, not options."""
    for word in argv:
        if word == "--":
            return None
        name = word.partition("=")[0].replace("_", "-").lower()
        if name in SECRET_OPTIONS:
            return name
    return None


def secret_option_refusal(option: str, *, instead: str) -> str:
    """The line that refuses ``option``: why, that the value is not repeated, and ``instead``
    (where this program reads the secret from)."""
    return (f"{option}: a secret is never taken on the command line, where every user of this "
            f"machine can read it (the value typed is not repeated here); {instead}")
