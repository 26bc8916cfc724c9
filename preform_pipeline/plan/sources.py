"""Which files a one-shot ``run`` takes: complete model files, and a word for every other one.

A folder is walked like :func:`preform_pipeline.plan.builds.expand_model_paths` (each file's
case is its case folder's name; a loose file, the named folder's own, has none), but nothing
is passed over in silence:

- a model file still being written (judged in one look by
  :func:`preform_pipeline.geometry.completeness.judge_at_rest`: the hot folder's format
  rules, or a quiet period since its last change) is *waiting*: left for the next run;
- a file in a format the server does not import is *unsupported*, with what to do, in the
  words the hot folder's intake says (:func:`preform_pipeline.plan.advice.by_name`);
- a copy tool's temporary name (``.part``, ``.tmp``, ``.crdownload``, ``~``) is *waiting*;
- a case folder below a named folder (``inbox/C-1042/``) is kept on one build: while one of
  its model files is still being written, its complete ones wait with it (taken alone, the
  case would be split over two runs' builds), as the hot folder takes a case folder only once
  every file is complete. Its subfolders are part of it (``inbox/C-1042/scans/upper.stl`` is
  case ``C-1042``), as the hot folder takes a dropped folder whole
  (:func:`~preform_pipeline.plan.builds.case_folder`). The named folder's own files are
  judged one by one: from cron it is an inbox, and one file being copied into it holds up no
  other; unless the caller names it in ``cases`` (``run C-1042/`` on a folder a case's
  sidecar marks: see :func:`preform_pipeline.hotfolder.sidecar.is_case_folder`), then it is
  one case, subfolders and all, and waits whole as well;
- a model file whose name (or folder's) is not UTF-8 is *unsupported*: no store, report or
  console writes it as text (its build failed at the import, and its report ended the run);
- hidden files (a leading dot) and sidecars (``.json``, ``.yaml``) are the only ones passed
  over, since they are not models; and so is the run's own output folder (``skip``) when it
  lies inside a model folder (its log, reports and ``.form`` files are not models either).
"""

from __future__ import annotations

import functools
import os
import stat
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from preform_pipeline.geometry.bounded import permission_refusal
from preform_pipeline.geometry.completeness import judge_at_rest
from preform_pipeline.plan.advice import by_name
from preform_pipeline.plan.parts import MODEL_SUFFIXES
from preform_pipeline.plan.walk import case_folder, walk_folder
from preform_pipeline.wording import NAME_NOT_TEXT, is_text_path

__all__ = ["Sources", "find_sources"]

_NOT_MODELS: Final = frozenset({".json", ".yaml", ".yml"})
#: Names copy tools and browsers give a file until it is complete.
_IN_PROGRESS_SUFFIXES: Final = (".tmp", ".part", ".partial", ".crdownload", ".download")


@dataclass(frozen=True)
class Sources:
    """What a run found: ``models`` (complete, with case ids: None for a loose file),
    ``waiting`` and ``unsupported`` files each with a sentence saying why.
    ``case_folders``: the case folder of each model or unsupported file found in a folder
    (an unsupported file holds its case: :mod:`preform_pipeline.plan.held`; whose name is its
    case id, and whose sidecar gives values to every file in it): the named folder itself
    when it is in ``find_sources``'s ``cases``, else None for its own files, which are no
    case's."""

    models: dict[Path, str | None]
    waiting: tuple[tuple[Path, str], ...] = ()
    unsupported: tuple[tuple[Path, str], ...] = ()
    case_folders: Mapping[Path, Path | None] = field(default_factory=dict)


def _in_progress(name: str) -> bool:
    return name.lower().endswith(_IN_PROGRESS_SUFFIXES) or name.endswith("~")


def find_sources(
    paths: Iterable[Path | str],
    *,
    quiet_period_s: float,
    incomplete_timeout_s: float,
    now: float | None = None,
    skip: Iterable[Path] = (),
    cases: Collection[Path] = (),
) -> Sources:
    """Sort the files named by ``paths`` (files, or folders walked recursively) into complete
    models, files still being written and unsupported files. ``now`` is wall-clock seconds
    (file modification times are wall-clock too). A named file that does not exist is kept as
    a model, so reading it reports the problem. Files below a ``skip`` folder (the run's own
    output) are not looked at. A named folder in ``cases`` is one case: its own files wait
    whole, as a case folder below a named folder does."""
    moment = time.time() if now is None else now
    skipped = tuple(Path(os.path.realpath(folder)) for folder in skip)
    models: dict[Path, str | None] = {}
    waiting: list[tuple[Path, str]] = []
    unsupported: list[tuple[Path, str]] = []
    unfinished: dict[Path, Path] = {}  # a case folder: its first file still being written
    folders: dict[Path, Path | None] = {}

    def judge(file: Path, case: str | None, *, in_case_folder: Path | None = None) -> None:
        name = file.name
        if _in_progress(name):
            waiting.append((file, "still being written (a temporary name)"))
            return
        if name.startswith(".") or file.suffix.lower() in _NOT_MODELS:
            return
        if file.suffix.lower() not in MODEL_SUFFIXES:
            unsupported.append((file, by_name(file).said))
            return
        if not is_text_path(file):  # the hot folder sets such a file aside for the same
            unsupported.append((file, NAME_NOT_TEXT))
            return
        try:
            info = os.stat(file)
        except OSError:  # gone, a link to nothing or to itself
            models.setdefault(file, case)
            return
        if not stat.S_ISREG(info.st_mode) or permission_refusal(file) is not None:
            # A named pipe, a device, a file this account may not read: the reader refuses
            # it, saying why, without opening a pipe; judging its completeness would open it
            # (a pipe blocks until a writer comes), or call it "still being written".
            models.setdefault(file, case)
            return
        verdict = judge_at_rest(
            file,
            age_s=moment - info.st_mtime,
            size=info.st_size,
            quiet_period_s=quiet_period_s,
            incomplete_timeout_s=incomplete_timeout_s,
        )
        if verdict.takeable:
            models.setdefault(file, case)
        else:
            waiting.append((file, verdict.reason))
            if in_case_folder is not None:
                unfinished.setdefault(in_case_folder, file)

    @functools.cache
    def in_skipped(folder: Path) -> bool:
        # Once per folder, not per file: a folder of a thousand models is resolved once.
        real = Path(os.path.realpath(folder))
        return any(real.is_relative_to(skip_folder) for skip_folder in skipped)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files, unlisted = walk_folder(path)
            named_is_case = path in cases
            for file in files:
                if skipped and in_skipped(file.parent):
                    continue
                # The named folder's own files are no case's (an inbox), unless it is one.
                case = case_folder(path, file, named_is_case=named_is_case)
                folders.setdefault(file, case)
                judge(file, case.name if case is not None else None, in_case_folder=case)
            for folder in unlisted:  # kept as a model, so reading it says it cannot be read
                models.setdefault(folder, None)
        elif path.exists():
            judge(path, None)
        else:
            models.setdefault(path, None)
    for file in list(models):
        held = folders.get(file)
        being_written = unfinished.get(held) if held is not None else None
        if held is not None and being_written is not None:
            del models[file]
            waiting.append((file, f"its case folder {held.name} waits for "
                                  f"{being_written.name}, still being written"))
    return Sources(models, tuple(waiting), tuple(unsupported),
                   {file: folders.get(file) for file in (*models, *(f for f, _ in unsupported))})
