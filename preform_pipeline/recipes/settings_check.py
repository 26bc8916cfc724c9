"""Checking a settings file the way recipes are checked: every problem, each with its position.

``settings.load_settings`` knows what is wrong (schema and semantic checks) and the key path of
each problem; the recipe loader knows where every key is written. :func:`validate_settings`
puts the two together for ``preform-pipeline validate --settings FILE``, and
:func:`position_settings_error` does the same for an error raised while a command loads its
settings, so ``run`` and ``watch`` print ``file:line:col: $.path: message`` too.

The file is checked on its own: the ``PREFORM_PIPELINE_*`` variables that override settings are
not applied (a ``secret_env`` the file names is read, whatever its name).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from preform_pipeline.cloud.login import unreadable_login_files
from preform_pipeline.errors import ConfigError, Problem, SettingsError
from preform_pipeline.recipes.loader import Document, JsonPath, YamlNode, parse_yaml
from preform_pipeline.recipes.report import ValidationReport
from preform_pipeline.settings import MAX_SETTINGS_FILE_BYTES, Settings, load_settings
from preform_pipeline.settings.environment import without_overrides
from preform_pipeline.textfiles import SAVE_AS_UTF8, not_utf8, read_small_text
from preform_pipeline.userpath import expand_user, unusable_path

__all__ = [
    "SETTINGS_CHECKED_AGAINST",
    "position_settings_error",
    "validate_settings",
]

#: How much of a path a problem quotes: a path of 200,000 characters filled the console.
_PATH_SHOWN: Final = 200
#: What the summary line says a settings file was checked against.
SETTINGS_CHECKED_AGAINST: Final = "settings schema"
_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]")
_PATH_PREFIX = re.compile(r"(\$(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\['(?:[^'\\]|\\.)*'\])*): ")


def _parts(json_path: str) -> JsonPath:
    parts: list[str | int] = []
    for name, index, quoted in _PATH_PART.findall(json_path):
        parts.append(name or (int(index) if index else quoted))
    return tuple(parts)


def _read(path: Path) -> tuple[str | None, Problem | None]:
    try:
        size = path.stat().st_size
        if path.is_dir():
            return None, Problem(str(path), None, None, "$", "is a folder, not a settings file")
        if size > MAX_SETTINGS_FILE_BYTES:
            return None, Problem(
                str(path), None, None, "$",
                f"is over {MAX_SETTINGS_FILE_BYTES} bytes; a settings file is a page of YAML",
            )
        return read_small_text(path, max_bytes=MAX_SETTINGS_FILE_BYTES,
                               encoding="utf-8-sig"), None
    except FileNotFoundError:
        return None, Problem(str(path), None, None, "$", "file not found")
    except UnicodeDecodeError as exc:
        return None, Problem(str(path), None, None, "$",
                             f"{not_utf8(exc)}; {SAVE_AS_UTF8}")
    except OSError as exc:
        return None, Problem(str(path), None, None, "$",
                             f"cannot read the file: {exc.strerror or exc}")


def _positioned(
    problems: Sequence[Problem], key_paths: Sequence[JsonPath], file: str, root: YamlNode
) -> list[Problem]:
    document = Document(root, [], [], file)
    out: list[Problem] = []
    for problem, parts in zip(problems, key_paths, strict=True):
        if problem.file != file or problem.line is not None:
            out.append(problem)
            continue
        # An unknown key is best shown at the key itself.
        pos = document.position(parts, key=problem.message.startswith("unknown key"))
        out.append(Problem(problem.file, pos.line, pos.column, problem.json_path,
                           problem.message, problem.suggestion))
    return out


def _single(exc: ConfigError, file: str) -> tuple[Problem, JsonPath]:
    """One ConfigError as a Problem: its ``$.key.path: `` prefix becomes the json path."""
    text = exc.message
    if exc.source and text.startswith(exc.source + ": "):
        text = text[len(exc.source) + 2:]
    if exc.hint:
        text += f" ({exc.hint})"
    match = _PATH_PREFIX.match(text)
    if match is None:
        return Problem(exc.source or file, None, None, "$", text), ()
    json_path = match.group(1)
    return (
        Problem(exc.source or file, None, None, json_path, text[match.end():]),
        _parts(json_path),
    )


def validate_settings(path: Path | str, *, display: str | None = None) -> ValidationReport:
    """Every problem of the settings file at ``path``, positioned where it is written."""
    shown = display if display is not None else str(path)
    # Read where it is written, ~ expanded as load_settings expands it (run, watch ...).
    path = expand_user(path, source="settings file").absolute()
    file = str(path)
    text, unreadable = _read(path)
    problems: list[Problem]
    if unreadable is not None or text is None:
        problems = [unreadable] if unreadable is not None else []
    else:
        root, problems = parse_yaml(text, file, kind="settings file")
        if root is not None and not problems:
            problems = sorted(_load(path, file, root),
                              key=lambda p: (p.file, p.line or 0, p.column or 0))
    renamed = [
        Problem(shown if p.file == file else p.file, p.line, p.column, p.json_path, p.message,
                p.suggestion)
        for p in problems
    ]
    return ValidationReport(tuple(renamed), SETTINGS_CHECKED_AGAINST, None, file=shown)


def _load(path: Path, file: str, root: YamlNode) -> list[Problem]:
    # The file alone: no variable that overrides a setting is applied. A variable the file
    # itself names (a web user's secret_env) is read, as serve and watch read it: with env={}
    # a secret_env was "not set or empty" even when exported (session 48, docs/web.md's
    # example); with the whole PREFORM_PIPELINE_ prefix left out, one of that name was.
    try:
        settings = load_settings(path, env=without_overrides(os.environ))
    except SettingsError as exc:
        return _positioned(exc.problems, exc.key_paths, file, root)
    except ConfigError as exc:
        problem, parts = _single(exc, file)
        return _positioned([problem], [parts], file, root)
    return (_missing_recipes(settings, Document(root, [], [], file))
            + _unreadable_login_files(settings, file, root))


def _missing_recipes(settings: Settings, document: Document) -> list[Problem]:
    """The hot folders' recipe files that are not there: ``watch`` would refuse to start."""
    problems: list[Problem] = []
    for i, inbox in enumerate(settings.hotfolders.inboxes):
        named: list[tuple[JsonPath, Path]] = [
            (("hotfolders", "inboxes", i, "routes", j), route)
            for j, route in enumerate(inbox.routes)
        ]
        if inbox.recipe is not None:
            named.insert(0, (("hotfolders", "inboxes", i, "recipe"), inbox.recipe))
        problems.extend(document.problem(parts, said) for parts, recipe in named
                        if (said := _recipe_problem(recipe)) is not None)
    return problems


def _recipe_problem(recipe: Path) -> str | None:
    """What is wrong with the recipe file a setting names, or None when it is a file."""
    shown = str(recipe)
    if len(shown) > _PATH_SHOWN:
        shown = f"{shown[:_PATH_SHOWN // 2]}... ({len(shown)} characters)"
    try:
        if recipe.is_file():
            return None
        recipe.stat()  # not a file, or not there: is_file hides why
    except (OSError, ValueError) as exc:
        why = unusable_path(exc)
        if why is not None:
            return f"the recipe path cannot name a file: {why}: {shown}"
        if not isinstance(exc, FileNotFoundError | NotADirectoryError):
            return f"the recipe file cannot be checked ({getattr(exc, 'strerror', exc)}): {shown}"
    return (f"recipe file not found: {shown} (a relative path starts in the settings file's "
            "folder)")


def _unreadable_login_files(settings: Settings, file: str, root: YamlNode) -> list[Problem]:
    """The files ``dashboard_login`` names that cannot be read: the pool would refuse to
    start (its own words, :func:`~preform_pipeline.cloud.login.unreadable_login_files`)."""
    found = [_single(exc, file) for exc in unreadable_login_files(
        settings.dashboard_login, {}, base_dir=settings.dashboard_login_base, written_in=file)]
    return _positioned([p for p, _ in found], [parts for _, parts in found], file, root)


def position_settings_error(exc: ConfigError) -> ConfigError:
    """``exc`` with lines and columns filled in from the settings file its problems name.

    Returns ``exc`` itself when nothing can be positioned (the file is gone, the problem came
    from an environment variable).
    """
    if isinstance(exc, SettingsError):
        problems, key_paths = list(exc.problems), list(exc.key_paths)
    else:
        problem, parts = _single(exc, exc.source or "")
        problems, key_paths = [problem], [parts]
    files = {p.file for p in problems if p.line is None and Path(p.file).is_file()}
    if not files:
        return exc
    for file in files:
        text, unreadable = _read(Path(file))
        if text is None or unreadable is not None:
            continue
        root, syntax = parse_yaml(text, file, kind="settings file")
        if root is None or syntax:
            continue
        problems = _positioned(problems, key_paths, file, root)
    order = sorted(range(len(problems)),
                   key=lambda i: (problems[i].file, problems[i].line or 0, problems[i].column or 0))
    # A single ConfigError's hint is already part of its problem's text.
    hint = exc.hint or None if isinstance(exc, SettingsError) else None
    return SettingsError([problems[i] for i in order], [key_paths[i] for i in order], hint=hint)
