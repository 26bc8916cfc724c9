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

__all__ = ["OWN_OPTIONS", "SECRET_OPTIONS", "secret_option_in", "secret_option_refusal"]

#: Options a newcomer types to give a secret; no command of the project has one of them.
SECRET_OPTIONS: Final = frozenset({
    "--client-secret", "--secret", "--password", "--passwd", "--token", "--access-token",
    "--api-key", "--dashboard-password",
})

#: Parts of an option's name that say it gives a secret: ``--api-token``, ``--db-password``
#: and ``--secret-key`` were echoed by argparse as unrecognized, their values with them.
_SECRET_WORDS: Final = frozenset({"secret", "password", "passwd", "token", "apikey"})

#: The project's own options whose names hold such a word and take no secret (a flag, a
#: number). An option ending in ``-file`` names where a secret is, never the secret.
OWN_OPTIONS: Final = frozenset({"--hash-secret", "--token-lifetime"})

#: How much of a secret option's last word an abbreviation reaches before it counts:
#: argparse takes ``--client-sec`` for the simulator's ``--client-secret-file`` (its one
#: option of that prefix) and named the secret typed after it as a file it could not read.
_ABBREVIATED_LETTERS: Final = 3


def secret_option_in(argv: Sequence[str]) -> str | None:
    """The first secret-giving option in ``argv`` (its name as ``--client-secret``, whatever
    its spelling: ``--Client_Secret=x`` too; an abbreviation argparse would take, such as
    ``--client-sec``; another name holding a secret's word: ``--api-token``), or None. The
    project's own options (:data:`OWN_OPTIONS`, ``--client-secret-file``) are not. Words
    after ``--`` are names, not options."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("--"):
            continue
        name = word.partition("=")[0].replace("_", "-").lower()
        if name in SECRET_OPTIONS:
            return name
        if name in OWN_OPTIONS or name.endswith("-file"):
            continue
        if any(option.startswith(name) and len(name) >= _shortest(option)
               for option in SECRET_OPTIONS):
            return name
        parts = name[2:].split("-")
        if any(part in _SECRET_WORDS for part in parts) or "apikey" in "".join(parts):
            return name
    return None


def _shortest(option: str) -> int:
    """The length of ``option``'s shortest abbreviation that counts: its last word's first
    letters (``--client-sec``, ``--pas``, ``--tok``)."""
    return option.rfind("-") + 1 + _ABBREVIATED_LETTERS


def secret_option_refusal(option: str, *, instead: str) -> str:
    """The line that refuses ``option``: why, that the value is not repeated, and ``instead``
    (where this program reads the secret from)."""
    return (f"{option}: a secret is never taken on the command line, where every user of this "
            f"machine can read it (the value typed is not repeated here); {instead}")
