"""A secret typed on a command line is refused before argparse reads the line.

A command line is readable by every user of the machine (``ps``, ``/proc/PID/cmdline``) and
kept in shell history, so no command takes a secret there. Left to argparse, a newcomer's
``--client-secret hunter2`` was worse than refused: argparse echoed it back ("unrecognized
arguments: --client-secret hunter2") onto a terminal, a cron mail or a service's journal, and
the Dashboard simulator's parser, matching option prefixes, took it for
``--client-secret-file`` and named the secret as a file it could not read. So the words that
give a secret are looked for first, and the refusal names the option, never the value.

A single dash is read as two when a name follows it (``-password``, ``-client-secret=x``: the
spelling of Go's and Java's tools), since argparse echoed those as unrecognized too. A single
letter is left to argparse: the project's are ``-h`` and ``-v``, and an unknown one says
nothing of a secret (``-p`` is a port as often as a password).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TextIO

from preform_pipeline.wording import visible

__all__ = ["OWN_OPTIONS", "SECRET_OPTIONS", "refuse_secret_option", "secret_option_in"]

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


def refuse_secret_option(argv: Sequence[str], stderr: TextIO, *, instead: str) -> bool:
    """Whether ``argv`` gives a secret (:func:`secret_option_in`); when it does, the refusal
    is written to ``stderr`` first: the option (shown escaped, as typed it may hold any
    character), why, that the value is not repeated, and ``instead`` (where this program
    reads the secret from). Called before argparse reads the line, which would echo the
    value; the caller then exits with its usage status."""
    option = secret_option_in(argv)
    if option is None:
        return False
    try:
        stderr.write(f"error: {visible(option)}: a secret is never taken on the command line, "
                     f"where every user of this machine can read it (the value typed is not "
                     f"repeated here); {instead}\n")
        stderr.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass  # nowhere left to say it; refused all the same
    return True


def secret_option_in(argv: Sequence[str]) -> str | None:
    """The first secret-giving option in ``argv`` (its name as ``--client-secret``, whatever
    its spelling: ``--Client_Secret=x`` and ``-client-secret`` too; an abbreviation argparse
    would take, such as ``--client-sec``; another name holding a secret's word:
    ``--api-token``), or None. The project's own options (:data:`OWN_OPTIONS`,
    ``--client-secret-file``) are not. Words after ``--`` are names, not options."""
    for word in argv:
        if word == "--":
            return None
        typed = _option_name(word)
        if typed is None:
            continue
        name = typed if typed.startswith("--") else f"-{typed}"
        if name in SECRET_OPTIONS:
            return typed
        if name in OWN_OPTIONS or name.endswith("-file"):
            continue
        if any(option.startswith(name) and len(name) >= _shortest(option)
               for option in SECRET_OPTIONS):
            return typed
        parts = name[2:].split("-")
        if any(part in _SECRET_WORDS for part in parts) or "apikey" in "".join(parts):
            return typed
    return None


def _option_name(word: str) -> str | None:
    """The name of the option ``word`` is, lower case with ``-`` for ``_`` and its
    ``=VALUE`` left off (``--client-secret``, ``-password``), or None: a word that is no
    option (a name, ``-`` for standard input) or a single letter (``-v``, ``-p``)."""
    name = word.partition("=")[0].replace("_", "-").lower()
    if name.startswith("--") or (name.startswith("-") and len(name) > 2):
        return name
    return None


def _shortest(option: str) -> int:
    """The length of ``option``'s shortest abbreviation that counts: its last word's first
    letters (``--client-sec``, ``--pas``, ``--tok``)."""
    return option.rfind("-") + 1 + _ABBREVIATED_LETTERS
