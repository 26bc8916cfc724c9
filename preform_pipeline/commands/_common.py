"""What every command does the same way: exit codes, the console log level, loading settings.

Written once here so the commands cannot drift apart: ``0`` is success, ``1`` a failure the
command explained on stderr, ``2`` a refused command line, ``130`` an interrupt (as shells
report SIGINT). The console shows
log events from ``--log-level`` up, while the JSON log file gets the settings' level.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

from preform_pipeline.cloud.login import LOGIN_SETTING_HINT, load_dashboard_login
from preform_pipeline.commands.arguments.common import (
    CONSOLE_LOG_LEVELS,
    DEFAULT_CONSOLE_LOG_LEVEL,
    add_console_level_argument,
    positive_seconds,
    store_argument,
)
from preform_pipeline.commands.exits import (
    EXIT_BROKEN_PIPE,
    EXIT_CRASH,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
)
from preform_pipeline.errors import ConfigError, PipelineError, UnusablePathError
from preform_pipeline.logging import configure_logging
from preform_pipeline.preflight import PathCheck, check_paths, make_folders
from preform_pipeline.recipes.settings_check import position_settings_error
from preform_pipeline.settings import Settings, load_settings
from preform_pipeline.settings.store import JOBS_COMMAND, rehearsal_store_path
from preform_pipeline.store import pgurl
from preform_pipeline.store.pgurl import is_postgres_url
from preform_pipeline.userpath import expand_user

if TYPE_CHECKING:
    from preform_pipeline.recipes import Recipe

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_CRASH",
    "CONSOLE_LOG_LEVELS",
    "DEFAULT_CONSOLE_LOG_LEVEL",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "LOG_SETTING_HINT",
    "add_console_level_argument",
    "positive_seconds",
    "store_argument",
    "store_location",
    "warn_typed_password",
    "configure_command_logging",
    "load_command_settings",
    "output_line",
    "queue_login_warnings",
    "rehearsal_aside",
]

def store_location(text: str, stderr: TextIO) -> Path | str:
    """What a ``--store`` (after :func:`store_argument`) opens: a shared store's URL as written
    (:func:`warn_typed_password` said if it holds a password), else the file, ``~`` expanded
    (jobs and verify took ``~/jobs.db`` as a folder named ``~``)."""
    if is_postgres_url(text):
        warn_typed_password(text, "--store", stderr)
        return text
    return expand_user(text, source="--store")


def warn_typed_password(url: str, option: str, stderr: TextIO) -> None:
    """Say that a password typed into a command line's URL is in the process list (``ps``,
    Task Manager) for every user of the PC while the command runs, and where it belongs.
    The command goes on: the person typed it on purpose, and it works."""
    if "***" in pgurl.redact_url(url) and "***" not in url:
        print(f"warning: the {option} URL holds a password, which every user of this PC can "
              "read in the process list while this command runs; leave it out of the URL and "
              f"set {pgurl.PASSWORD_ENV} (or {pgurl.PASSWORD_FILE_ENV})", file=stderr)


#: What to fix when the log file's folder cannot be used, for a log the settings name.
LOG_SETTING_HINT: Final = "fix logging.file in the settings (or the folder itself)"


def configure_command_logging(
    settings: Settings, console_level: str, err: TextIO, *, json_file: Path | None,
    hint: str = LOG_SETTING_HINT,
) -> None:
    """Logging at the settings' level (to ``json_file`` when given), the console at its own.

    Raises :class:`~preform_pipeline.errors.UnusablePathError` with ``hint`` (what to fix,
    where the log file was chosen) when the log file's folder cannot be made or written,
    before anything runs.
    """
    if json_file is not None:
        folder = [PathCheck(json_file.parent, "folder", "log file's folder")]
        try:
            check_paths(folder)
            # Made here, where a refusal the check cannot see (a folder below /proc) is an
            # error naming it: left to the log handler, it was a crash report.
            make_folders(folder)
        except UnusablePathError as exc:
            raise UnusablePathError(exc.problems, hint=hint) from None
    configure_logging(level=settings.logging.level, json_file=json_file, console=err)
    level = logging.getLevelName(console_level)
    if not isinstance(level, int):
        return
    root = logging.getLogger("preform_pipeline")
    # The logger passes what either output takes (below it, an event is dropped before any
    # handler sees it: --log-level DEBUG showed no debug event); each handler keeps its own.
    file_level = root.level
    root.setLevel(min(file_level, level))
    for handler in root.handlers:
        handler.setLevel(file_level if isinstance(handler, logging.FileHandler) else level)


def load_command_settings(path: Path | None, err: TextIO) -> Settings | None:
    """The settings at ``path`` (defaults when None); None after saying on ``err`` why not."""
    try:
        return load_settings(path)
    except ConfigError as exc:
        # Each problem with its file:line:col, as `validate --settings` prints it.
        with contextlib.suppress(PipelineError, OSError):
            exc = position_settings_error(exc)
        print(f"error: {exc}", file=err)
        return None


def output_line(
    roots: Sequence[tuple[Path, Recipe]], *, chosen: Path | None, elsewhere: str
) -> str:
    """``output: /abs/folder``: where a command's files go (``roots``: each output folder
    with the recipe it is for). When one is a recipe's relative ``outputs.root``, the rule
    that put it there (beside the recipe, wherever the command was started: whoever looks
    in the current folder is surprised), and ``elsewhere``, the option that moves it."""
    folders = ", ".join(dict.fromkeys(str(root) for root, _ in roots))
    relative = chosen is None and any(
        not Path(recipe.outputs.root).is_absolute() for _, recipe in roots)
    if not relative:
        return f"output: {folders}"
    return (f"output: {folders} (the recipe's outputs.root, relative to the recipe's folder; "
            f"{elsewhere} puts it elsewhere)")


def queue_login_warnings(
    recipes: Iterable[Recipe], settings: Settings, env: Mapping[str, str] = os.environ
) -> list[str]:
    """One line per recipe that prints to a Fleet Control queue while no Dashboard login is
    configured: the pool then logs no server in, and the queue refuses each print
    (``NOT_LOGGED_IN``) only after its build was prepared. Said at the start instead."""
    try:
        login = load_dashboard_login(settings.dashboard_login, env,
                                     base_dir=settings.dashboard_login_base)
    except ConfigError:
        return []  # half a login: the pool refuses to start and says why
    if login is not None:
        return []
    return [
        f"{recipe.name}: its print step sends to Fleet Control queue {group!r}, and no "
        "dashboard_login is configured: the servers are not logged in to the Dashboard, so "
        f"the queue refuses the print; {LOGIN_SETTING_HINT}"
        for recipe in recipes
        for step in recipe.steps
        if step.kind == "print" and (group := step.options.get("fleet_group"))
    ]


def rehearsal_aside(
    path: Path | str, *, command: str = JOBS_COMMAND, does: str = "lists them"
) -> str:
    """Where the simulated runs' jobs are, when ``path`` is the default store, which is not
    there, and the rehearsal store beside it is ("" otherwise): the README's first command
    records there, and ``jobs`` or ``verify`` right after it said only "no job store".
    ``command`` is the one that was run (``verify`` is not told to run ``jobs``), and
    ``does`` what it would do with that store."""
    if not isinstance(path, Path):
        return ""
    # The rule that sends a simulated run to the rehearsal store says where it is, if anywhere.
    rehearsal = rehearsal_store_path(path, simulated=True)
    if rehearsal == path or not rehearsal.is_file():
        return ""
    return (f"; simulated runs record their jobs in the rehearsal store beside it: "
            f"`{command} --store {rehearsal}` {does}")
