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
letter that is none of the command's own (``-h``, and ``run``'s ``-v``:
:func:`command_letters`) is refused too, and nothing typed with it or after it is repeated:
``-p hunter2`` (and mysql's ``-phunter2``) was echoed by argparse as "unrecognized arguments:
-p hunter2", and ``-p`` gives a password as often as a port. The letters are the command's,
not the program's: with every command's letters allowed everywhere, ``jobs list -v hunter2``
was still echoed ("unrecognized arguments: -v hunter2"), ``-v`` being only ``run``'s. No
command of the project has a single-letter option that takes a value.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Final, TextIO

from preform_pipeline.wording import visible

__all__ = ["OWN_OPTIONS", "SECRET_OPTIONS", "command_letters", "foreign_letter_in",
           "refuse_secret_option", "secret_option_in"]

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

#: Why a secret is never taken there, as a refusal says it.
_READABLE: Final = "where every user of this machine can read it"

#: How much of a secret option's last word an abbreviation reaches before it counts:
#: argparse takes ``--client-sec`` for the simulator's ``--client-secret-file`` (its one
#: option of that prefix) and named the secret typed after it as a file it could not read.
_ABBREVIATED_LETTERS: Final = 3


def refuse_secret_option(argv: Sequence[str], stderr: TextIO, *, instead: str,
                         letters: str = "h") -> bool:
    """Whether ``argv`` gives a secret (:func:`secret_option_in`), or may (a single-letter
    option that is none of ``letters``, the program's own: :func:`foreign_letter_in`); when
    it does, the refusal is written to ``stderr`` first: the option (shown escaped, as typed
    it may hold any character), why, that the value is not repeated, and ``instead`` (where
    this program reads the secret from). Called before argparse reads the line, which would
    echo the value; the caller then exits with its usage status."""
    option = secret_option_in(argv)
    letter = foreign_letter_in(argv, letters) if option is None else None
    if option is not None:
        why = "a secret is never taken on the command line"
        said = f"{visible(option)}: {why}, {_READABLE} (the value typed is not repeated here)"
    elif letter is not None:
        # In a cluster the command's own letters lead (``jobs -hv``, ``run -vp``): the one
        # that is not is named, not the cluster ("no option starts with -hv" of a command
        # whose -h the line held).
        foreign = f"-{letter[-1]}" if len(letter) > 2 and letter[-1].isalpha() else letter
        said = (f"{letter}: no option of this command starts with {foreign} (its options are "
                f"spelt with two dashes: see --help); nothing typed with it or after it is "
                f"repeated here, in case it was a secret (a password after -p, say): a secret "
                f"is never taken on the command line, {_READABLE}")
    else:
        return False
    try:
        stderr.write(f"error: {said}; {instead}\n")
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


def foreign_letter_in(argv: Sequence[str], letters: str) -> str | None:
    """The first single-dash option in ``argv`` that is not made of ``letters`` (the
    program's own), as typed up to its first other character (``-p`` of ``-phunter2`` or
    ``-p=hunter2``; ``-vp`` of ``-vphunter2``), or None. argparse reads ``-vphunter2`` as
    ``-v`` and echoed the rest ("ignored explicit argument 'phunter2'"): a cluster is read to
    its end, not only its first letter. A negative number (``-5``), a file of that name
    (``-rf.stl``, which the command's usage error names as a file) and an option's value
    holding a space (``--reason "-crown 3 lifts"``, which argparse takes as the value) are no
    options; words after ``--`` are names."""
    after_long = False
    for word in argv:
        if word == "--":
            return None
        value = after_long and " " in word
        after_long = word.startswith("--") and "=" not in word
        if (value or len(word) < 2 or word[0] != "-" or not word[1].isascii()
                or not word[1].isalpha() or os.path.lexists(word)):
            continue
        other = next((i for i, c in enumerate(word[1:], 1) if c not in letters), None)
        if other is not None:
            return word[:other + 1]
    return None


def command_letters(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str:
    """The single letters of the (sub)command ``argv`` names (``run``: ``hv``; ``jobs list``:
    ``h``), read from its parsers: the one of each command word in turn (``jobs``, then
    ``list``) and those above it, whose options it shares. A word that names no subcommand
    (a misspelt one, or an option's value before it) ends the walk: the letters known so far,
    fewer rather than more, so a letter is never let through to be echoed."""
    letters: set[str] = set()
    words = iter(argv)
    current: argparse.ArgumentParser | None = parser
    while current is not None:
        letters.update(option[1] for action in current._actions
                       for option in action.option_strings
                       if len(option) == 2 and option[0] == "-" and option[1] != "-")
        sub = next((action for action in current._actions
                    if isinstance(action, argparse._SubParsersAction)), None)
        if sub is None:
            break
        name = next((word for word in words if not word.startswith("-") or word == "--"), None)
        current = sub.choices.get(name) if name is not None else None
    return "".join(sorted(letters))


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
