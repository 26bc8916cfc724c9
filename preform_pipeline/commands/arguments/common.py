"""Argument types and options that several commands declare the same way."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Final

from preform_pipeline.logging import redact_url
from preform_pipeline.store.pgurl import is_postgres_url

__all__ = [
    "CONSOLE_LOG_LEVELS",
    "DEFAULT_CONSOLE_LOG_LEVEL",
    "add_console_level_argument",
    "add_recipe_and_models",
    "positive_seconds",
    "shown_not_a_store",
    "store_argument",
]

CONSOLE_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_CONSOLE_LOG_LEVEL: Final = "WARNING"


def positive_seconds(text: str) -> float:
    """An argparse type: a number of seconds above 0 (a timeout of 0 or less, or ``nan``,
    would fail later, deep in a client, with a message about something else)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds above 0")
    return value

#: A URL's scheme and ``://`` (two characters at least: ``C://jobs`` is a Windows drive).
_URL_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")
#: A PostgreSQL URL whose ``//`` was left out (``postgresql:u:secret@db/jobs``): no file's.
_POSTGRES_WITHOUT_SLASHES: Final = re.compile(r"(?i)postgres(?:ql)?:(?!//)")


def store_argument(text: str) -> str:
    """``--store``: a file path or a PostgreSQL URL. Another URL was taken as a file path:
    shown back with its password, "no job store there yet", and a run made folders of it;
    so was a PostgreSQL URL without its ``//`` (session 45)."""
    if ((_URL_SCHEME.match(text.strip()) and not is_postgres_url(text))
            or _POSTGRES_WITHOUT_SLASHES.match(text.strip())):
        raise argparse.ArgumentTypeError(
            f"{shown_not_a_store(text)!r} is not a job store: give the store's file or a "
            "postgresql:// URL")
    return text


def shown_not_a_store(text: str) -> str:
    """A ``--store`` or ``--to`` value refused as no job store, as it may be said back:
    anything that may hold a password (a URL of another scheme; a PostgreSQL one without its
    ``//``, ``postgresql:host/db?password=secret``; a login's ``@``) by scheme and host only;
    a plain path as written."""
    text = text.strip()
    url = _URL_SCHEME.match(text) or _POSTGRES_WITHOUT_SLASHES.match(text)
    return redact_url(text) if url or "@" in text else text



def add_console_level_argument(parser: argparse.ArgumentParser, file_note: str) -> None:
    """``--log-level`` for the console; ``file_note`` says what the log file gets instead."""
    parser.add_argument(
        "--log-level", default=DEFAULT_CONSOLE_LOG_LEVEL, choices=CONSOLE_LOG_LEVELS,
        help=f"log level on the console (default {DEFAULT_CONSOLE_LOG_LEVEL}); {file_note}",
    )


def add_recipe_and_models(parser: argparse.ArgumentParser) -> None:
    """The recipe and the model files ``plan`` and ``run`` take, in that order."""
    parser.add_argument("recipe", type=Path, metavar="RECIPE", help="recipe YAML file")
    parser.add_argument(
        "models",
        type=Path,
        nargs="+",
        metavar="MODELS",
        help="model files (.stl, .obj, .3mf) or folders of them; each folder in a folder is a "
        "case, subfolders and all",
    )
