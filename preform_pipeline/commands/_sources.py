"""The model files ``run`` plans, read once for ``run`` and ``plan`` alike.

From the paths on the command line to the models a plan is made of, in one path, so that
``plan`` shows what ``run`` would do: the files found (complete ones; those still being
written wait, unsupported ones are rejected), their sidecars as the hot folder reads them
(a case folder's, then the file's own: case ids and template fields), the models read, the
planner's refusals of a model alone (too large for the platform), and then the two case
rules the hot folder judges by too, so a case is taken whole or not at all: a case holding a
file that cannot be prepared is held whole (:func:`~preform_pipeline.plan.held.
held_with_cases`: each bad file rejected for its own reason, the others "held with its
case"), and a case that cannot be done is rejected whole (:func:`~preform_pipeline.executor.
feasibility.refused_cases`), with the words ``watch``'s note uses, before any server work.
Nothing is claimed or moved: the files stay where they are, and the next run (once a bad
file is fixed or replaced) takes the case whole.

``run`` names the files it will skip anyway (``unread``: their content already printed): a
case made of such files alone is not read or measured, nor judged, since nothing of it will
be planned (a cron repeat over thirty printed models spent a quarter of a second of CPU
measuring their outlines); a case with one new file is read whole, as ever, so its rules see
every member.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from preform_pipeline.errors import SidecarError
from preform_pipeline.executor.runroot import run_values
from preform_pipeline.hotfolder.sidecar import (
    SidecarValues,
    folder_values,
    model_values,
    named_cases,
)
from preform_pipeline.plan.held import HELD_HINT, CaseOf, hold_cases
from preform_pipeline.plan.rejection import Rejection, advised
from preform_pipeline.plan.sources import find_sources
from preform_pipeline.recipes import Recipe
from preform_pipeline.settings.run import RunSettings

if TYPE_CHECKING:
    from preform_pipeline.plan.builds import ModelInfo

__all__ = ["TakenSources", "take_sources", "waiting_lines"]


@dataclass(frozen=True)
class TakenSources:
    """What :func:`take_sources` found: the ``models`` to plan, the ``rejected`` files (each
    with its reason and what helps), the files ``waiting`` (still being written), each
    with why, and the complete files left ``unread`` (whole cases the caller said it skips)."""

    models: tuple[ModelInfo, ...]
    rejected: tuple[Rejection, ...]
    waiting: tuple[tuple[Path, str], ...]
    unread: tuple[Path, ...] = ()


def take_sources(
    paths: Sequence[Path | str], recipe: Recipe, *, rules: RunSettings,
    started_at: datetime, skip: Iterable[Path] = (),
    unread: Callable[[Sequence[Path]], Collection[Path]] | None = None,
) -> TakenSources:
    """The models named by ``paths`` (files, or folders walked, a folder its case's sidecar
    marks being one case) as ``run`` takes them by ``rules``; ``started_at`` names the run
    (its ``{date}`` and ``{time}`` in templates); files below ``skip`` (the run's output
    folder) are not looked at. ``unread``, given the complete files whose sidecars were
    read, answers those the caller will skip whatever they hold: the cases made of them
    alone are not read (:func:`_unread_cases`), and are returned as ``unread``."""

    sources = find_sources(paths, quiet_period_s=rules.quiet_period_s,
                           incomplete_timeout_s=rules.incomplete_timeout_s, skip=skip,
                           cases=named_cases(paths))
    # Unsupported files are rejections: listed with what to do, in the report, exit 1.
    rejected = [Rejection(path, f"{path}: {why}") for path, why in sources.unsupported]
    fields, case_ids, bad = _sidecars(sources.models, sources.case_folders, recipe.fields)
    rejected.extend(bad)
    cases = {path: _case_of_file(path, sources.case_folders.get(path), case_ids.get(path))
             for path in (*sources.models, *(p for p, _ in sources.unsupported))}
    taken = [p for p in sources.models if p in case_ids]
    left = _unread_cases(taken, unread(taken), cases, case_ids) if unread and taken else ()
    taken = [p for p in taken if p not in left]
    cases = {path: case for path, case in cases.items() if path not in left}
    models = _read(taken, recipe, case_ids, fields, rejected) if taken else []
    models = _whole_cases(recipe, models, cases, rejected)
    kept = _without_refused_cases(recipe, models, run_values(recipe, started_at), rejected)
    return TakenSources(tuple(kept), tuple(rejected), sources.waiting, tuple(left))


def _read(
    paths: Sequence[Path], recipe: Recipe, case_ids: Mapping[Path, str | None],
    fields: Mapping[Path, Mapping[str, str]], rejected: list[Rejection],
) -> list[ModelInfo]:
    """The models of ``paths`` read and measured for ``recipe``; each unreadable one is
    appended to ``rejected``."""
    # The planner, its geometry and numpy only for files that are read: a cron run over an
    # empty inbox, or whose files were all printed, reads none (test_cli_start_imports).
    from preform_pipeline.plan.builds import read_models, recipe_machine

    return read_models(paths, import_spec=recipe.import_options, rejected=rejected,
                       case_ids=case_ids, fields=fields, machine=recipe_machine(recipe))


def _unread_cases(
    taken: Sequence[Path], skipped: Collection[Path], cases: Mapping[Path, CaseOf | None],
    case_ids: Mapping[Path, str | None],
) -> tuple[Path, ...]:
    """The files of ``taken`` (in its order) that need no reading: each is one of
    ``skipped``, and so is every other file of each case it is in, by its case folder or
    case id (the two ways a case is judged whole: :func:`_whole_cases`,
    :func:`_without_refused_cases`), a file that is no model or whose sidecar was bad
    included. A case with one file to read is read whole: its rules see every member."""
    def keys(path: Path) -> set[Hashable]:
        case, case_id = cases.get(path), case_ids.get(path)
        return ({("case", case.key)} if case is not None else set()) | (
            {("id", case_id)} if case_id is not None else set())

    skipped = frozenset(skipped)
    open_keys = {key for path in cases if path not in skipped for key in keys(path)}
    return tuple(p for p in taken if p in skipped and not keys(p) & open_keys)


def _case_of_file(path: Path, folder: Path | None, case_id: str | None) -> CaseOf | None:
    """The case ``path`` is judged in: its case folder (whatever its files' case id, so a
    file that is no model, or whose sidecar is bad, is of it too), else the case id its own
    sidecar gives; None for a loose file without one (a case of its own)."""
    if folder is not None:
        return CaseOf(folder, case_id or folder.name)
    return CaseOf(case_id, case_id) if case_id is not None else None


def _whole_cases(
    recipe: Recipe, models: Sequence[ModelInfo], cases: Mapping[Path, CaseOf | None],
    rejected: list[Rejection],
) -> list[ModelInfo]:
    """``models`` but those of a case holding a part that cannot be prepared
    (:func:`~preform_pipeline.plan.held.hold_cases`, the rule the hot folder holds a case
    by): each held one is appended to ``rejected`` as held with its case."""
    kept, held = hold_cases(recipe, models, cases, rejected)
    for one in held:
        rejected.append(Rejection(one.path, advised(f"{one.path}: {one.reason}", HELD_HINT)))
    return kept


def waiting_lines(sources: TakenSources) -> list[str]:
    """What is said of each file still being written: ``run`` leaves it for the next run,
    and ``plan`` shows the plan without it."""
    return [f"not taken yet: {path}: {why}; the next run takes it"
            for path, why in sources.waiting]


def _sidecars(
    found: Mapping[Path, str | None], folders: Mapping[Path, Path | None],
    extra_fields: Sequence[str],
) -> tuple[dict[Path, Mapping[str, str]], dict[Path, str | None], list[Rejection]]:
    """Sidecar values of each model, as the hot folder reads them (its case folder's sidecar,
    then the file's own: :func:`~preform_pipeline.hotfolder.sidecar.model_values`): template
    fields (``units`` among them) and case ids. A model whose sidecar cannot be used is
    rejected with the reason, as the hot folder does (the rest of its case folder is held
    with it: :func:`_whole_cases`). ``folders``: each model's case folder, None for a named
    folder's own files, which stand alone."""
    fields: dict[Path, Mapping[str, str]] = {}
    case_ids: dict[Path, str | None] = {}
    rejected: list[Rejection] = []

    @functools.cache  # a case folder's sidecar read once for all its files
    def base_of(folder: Path) -> SidecarValues:
        return folder_values(folder, extra_fields=extra_fields)

    for path, case in found.items():
        folder = folders.get(path)
        try:
            base = base_of(folder) if folder is not None else SidecarValues(case_id=case)
            values = (model_values(path, base, extra_fields=extra_fields)
                      if path.parent.is_dir() else base)
        except SidecarError as exc:
            rejected.append(Rejection(path, f"{path}: {exc}"))
            continue
        fields[path] = values.fields
        case_ids[path] = values.case_id
    return fields, case_ids, rejected


def _without_refused_cases(
    recipe: Recipe, models: Sequence[ModelInfo], run: Mapping[str, object],
    rejected: list[Rejection],
) -> list[ModelInfo]:
    """``models`` but those of the cases ``watch`` refuses before batching
    (:func:`~preform_pipeline.executor.feasibility.refused_cases`: no case id where the
    recipe needs one, a label that fits no face, a drain hole wider than the part, a field a
    template needs), each appended to ``rejected`` with the case's reason and what helps, as
    the hot folder's note says them. A case is its case id (a loose file without one is a
    case of its own): refused whole, its files left where they are, the others go on."""
    # The executor's steps (and the planner, numpy) only when there is a model to judge.
    if not models:
        return []
    from preform_pipeline.executor.feasibility import refused_cases

    cases: dict[str | Path, list[ModelInfo]] = {}
    for model in models:
        cases.setdefault(_case_of(model), []).append(model)
    refused = refused_cases(recipe, cases, run)
    kept: list[ModelInfo] = []
    for model in models:
        problem = refused.get(_case_of(model))
        if problem is None:
            kept.append(model)
        else:
            why = f"{problem.message}; {problem.hint}" if problem.hint else problem.message
            rejected.append(Rejection(model.path, f"{model.path}: {why}"))
    return kept


def _case_of(model: ModelInfo) -> str | Path:
    """The case ``model`` is judged in: its case id, or the file itself without one."""
    return model.case_id if model.case_id is not None else model.path
