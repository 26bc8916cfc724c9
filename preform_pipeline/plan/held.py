"""A case is taken whole or not at all: a file of it that cannot be prepared holds the rest.

A case (``inbox/C-1042/`` with ``upper.stl`` and ``lower.stl``: one patient's or one order's
parts) is kept on one build. Until session 39 a bad file split it by kind: a file too large
(512 MiB), unreadable by the hot folder's account, or with a bad sidecar rejected the whole
case, while a corrupt or degenerate model, one too large for the platform, or a file of an
unsupported type was rejected alone and the rest of the case printed without it: the lab
then had an upper arch on one night's build and the lower on another's, or never.

The one rule, for ``run``, ``plan`` and the hot folder alike: a file that is part of a case
and cannot be prepared (whatever the reason) **holds** every other file of that case. The
bad file keeps its own reason and what helps; each held file is named with the case and
the bad files (:attr:`Held.reason`, :data:`HELD_HINT`), so the person reading either line
knows what to fix and that nothing of the case printed. A loose file (no case) is a case of
its own: it holds nothing else. Fixed or replaced, the case goes on whole; nothing of it
printed before, so nothing prints twice.

One exception, kept on purpose: a file that is plainly no part (a prescription PDF, a photo,
a text, a sidecar without its model: :func:`~preform_pipeline.plan.parts.is_part`) is
refused alone and its case goes on. Scanners and lab software put such files beside the
parts; nothing of the case is missing from its build, and holding every such case would
stop a lab's work for paperwork. A part in a format that is not imported (``.step``,
``.ply``, a ``.form``, a ``.zip``) is a part that cannot be prepared: it holds its case.

:func:`held_with_cases` is the rule; :func:`hold_cases` applies it to models read, with the
planner's part of "cannot be prepared" that does not depend on the other models
(:func:`~preform_pipeline.plan.builds.refused_alone`: too large for the platform), asked
before a case is planned or claimed: ``run`` and ``plan`` (``commands/_sources.py``) and the
hot folder's worker call it; its intake calls :func:`held_with_cases` for what it refuses
before taking a case.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from preform_pipeline.plan.parts import is_part
from preform_pipeline.wording import name_text

if TYPE_CHECKING:
    from preform_pipeline.plan.builds import ModelInfo, Rejection
    from preform_pipeline.recipes.model import Recipe

__all__ = ["HELD_HINT", "CaseOf", "Held", "hold_cases", "held_with_cases", "why_held"]

#: What helps with a held file (its case's bad files each say what helps with them).
HELD_HINT: Final = ("fix or replace the file named (as said of it), or take it out of the "
                    "case; then the whole case goes on")


@dataclass(frozen=True)
class CaseOf:
    """The case a file belongs to: ``key`` makes two files one case (a case folder, or a
    case id), ``name`` is how it is said (its case id, or its folder's name)."""

    key: Hashable
    name: str


@dataclass(frozen=True)
class Held:
    """A file that can be prepared, held because files of its case (``bad``) cannot."""

    path: Path
    case: str
    bad: tuple[Path, ...]

    @property
    def reason(self) -> str:
        return f"held with its case {self.case}: " + why_held(
            [name_text(path.name) for path in self.bad])  # (storable)


def why_held(bad: Sequence[str]) -> str:
    """``lower.stl cannot be prepared, and a case prints whole or not at all``: why a case
    is held, its ``bad`` files named (as they are said: storable names)."""
    verb = "cannot" if len(bad) == 1 else "each cannot"
    return f"{', '.join(bad)} {verb} be prepared, and a case prints whole or not at all"


def held_with_cases(
    cases: Mapping[Path, CaseOf | None], bad: Iterable[Path]
) -> tuple[Held, ...]:
    """The files of ``cases`` (each file's case; None: a loose file, a case of its own) held
    because their case holds one of ``bad`` (files that cannot be prepared, in the order
    they are said), in the order of ``cases``. ``bad`` files are not held: they are
    rejected for their own reason."""
    listed = list(bad)
    bad_of: dict[Hashable, list[Path]] = {}
    for path in listed:
        case = cases.get(path)
        if case is not None:
            bad_of.setdefault(case.key, []).append(path)
    held: list[Held] = []
    rejected = frozenset(listed)  # (a run may reject thousands)
    for path, case in cases.items():
        if case is None or path in rejected:
            continue
        found = bad_of.get(case.key)
        if found:
            held.append(Held(path, case.name, tuple(found)))
    return tuple(held)


def hold_cases(
    recipe: Recipe, models: Sequence[ModelInfo], cases: Mapping[Path, CaseOf | None],
    rejected: list[Rejection],
) -> tuple[list[ModelInfo], tuple[Held, ...]]:
    """``models`` (read for ``recipe``; ``cases``: each file's case) as those that go on and
    those held: held are the files of a case holding a part that cannot be prepared, one in
    ``rejected`` (a file that is no part holds nothing: :func:`~preform_pipeline.plan.
    parts.is_part`) or one the planner refuses alone (:func:`~preform_pipeline.plan.
    builds.refused_alone`, appended to ``rejected``, asked only of cases of several files)."""
    by_case: dict[Hashable, list[ModelInfo]] = {}
    for model in models:
        case = cases.get(model.path)
        if case is not None:
            by_case.setdefault(case.key, []).append(model)
    for members in by_case.values():
        if len(members) > 1:
            # The planner (and numpy with it) only here: the hot folder's intake and `jobs`
            # import this module for held_with_cases, and a `run` with no case of several
            # files read keeps its start light (test_cli_start_imports).
            from preform_pipeline.plan.builds import refused_alone

            rejected.extend(refused_alone(recipe, members))
    held = held_with_cases(cases, [r.path for r in rejected if is_part(r.path)])
    out = {r.path for r in rejected} | {one.path for one in held}
    return [model for model in models if model.path not in out], held
