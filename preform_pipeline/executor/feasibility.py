"""Per-case checks made before a case joins a build: can each of its models be done?

A case that cannot be done must fail on its own, with its own reason, before it shares a
build (and a server, and a print) with other cases. :func:`case_problems` answers, from what
the planner already read of each model (its size) and the recipe, without a server:

- **case id** (:func:`missing_case_id`): a model with no case id (a loose file: not in a
  case folder, and no sidecar gives one) where one of those templates needs ``{case_id}``.
  The rule ``run`` rejects such a file by as well, so both say the same: the folder's name
  (``inbox``) engraved in its stead would mark a wrong part;
- **templates**: the label text, the job name, the print target and the output paths render
  with the model's fields (a sidecar without ``label_text`` when the label needs it);
- **label**: the rendered text fits a face of the model at the smallest font the rule allows
  (any face when the recipe orients the model, since the orientation is not known yet);
- **drain holes** (placed by a rule): the hole is narrower than the model's thinnest
  dimension.

Each :class:`CaseProblem` names the case, the model and the step, so the note in
``failed/`` is about that case only. :func:`refused_cases` is the one rule ``watch`` (before
batching) and ``run`` (before any server work) refuse cases by: a case with a problem is
refused whole, with its first problem.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from preform_pipeline.errors import LabelDoesNotFitError, PipelineError
from preform_pipeline.executor.steps import case_step_message, model_values
from preform_pipeline.plan.builds import ModelInfo
from preform_pipeline.plan.labels import place_label
from preform_pipeline.recipes.model import DEFAULT_JOB_NAME, Recipe
from preform_pipeline.recipes.templates import render_template, template_fields

__all__ = [
    "CHECK_BUILD_NAME",
    "CaseProblem",
    "case_problems",
    "missing_case_id",
    "refused_cases",
]

_Case = TypeVar("_Case", bound=Hashable)

#: Stands in for the build's name while checking templates (builds are named later).
CHECK_BUILD_NAME: Final = "PP-0000000000"


@dataclass(frozen=True)
class CaseProblem:
    """Why one model of a case cannot be done: the case, the model, the step, the reason."""

    case_id: str | None
    model: str
    step: str
    reason: str
    hint: str = ""

    @property
    def message(self) -> str:
        return case_step_message(self.case_id, self.model, self.step, self.reason)


def _faces(size: tuple[float, float, float], oriented: bool) -> list[tuple[float, ...]]:
    """Bounding boxes to try a label on: as read, or every axis order when the recipe
    orients the model (the server may stand it any way up)."""
    if not oriented:
        return [size]
    return [tuple(p) for p in dict.fromkeys(itertools.permutations(size))]


def _label_problem(
    step_id: str, options: Mapping[str, Any], model: ModelInfo, values: Mapping[str, object],
    oriented: bool,
) -> CaseProblem | None:
    text = render_template(str(options["text"]), values)
    placement = options.get("placement")
    if not isinstance(placement, Mapping) or str(placement.get("fit", "shrink")) == "skip":
        return None
    last: LabelDoesNotFitError | None = None
    for box in _faces(model.size_mm, oriented):
        try:
            place_label((0.0, 0.0, 0.0), box, placement, text,
                        font_size_mm=float(options.get("font_size_mm", 5.0)))
            return None
        except LabelDoesNotFitError as exc:
            last = exc
    assert last is not None
    return CaseProblem(model.case_id, model.path.name, step_id, last.message,
                       last.hint or "")


def _drain_problem(step_id: str, options: Mapping[str, Any], model: ModelInfo
                   ) -> CaseProblem | None:
    if not isinstance(options.get("placement"), Mapping):
        # Explicit holes go to the model nearest each one: which that is, only the scene
        # tells (on_model_failure handles a refusal there).
        return None
    diameter = float(options.get("diameter_mm", 0.0))
    thinnest = min(model.size_mm)
    if diameter < thinnest:
        return None
    # The part's size and how its units were decided are said too: a dental arch 6.7 mm
    # wide is one exported in centimetres, which "1.84 mm thin" alone did not show (session
    # 47's trial).
    x, y, z = model.size_mm
    return CaseProblem(
        model.case_id, model.path.name, step_id,
        f"a {diameter:g} mm drain hole does not fit a part {thinnest:.2f} mm thin "
        f"({x:.1f} x {y:.1f} x {z:.1f} mm, read as {model.units} ({model.units_source}))",
        "use a smaller diameter_mm, or a recipe without drain holes for thin parts; a part "
        "smaller than it should be was exported in other units: state them (a sidecar's "
        "units, or the recipe's import units or scale)",
    )


def _model_templates(recipe: Recipe, kind: str, options: Mapping[str, Any]
                    ) -> list[tuple[str, str]]:
    """The templates a step of ``kind`` renders with one model's fields, each with what it
    is (for the person told that one cannot be filled)."""
    if kind == "label":
        return [("the label text", str(options["text"]))]
    if kind == "print":
        targets = [(f"the print step's {key}", str(options[key]))
                   for key in ("printer", "printer_ip", "fleet_group") if key in options]
        return [*targets, ("the print job name",
                           str(options.get("job_name", DEFAULT_JOB_NAME)))]
    if kind == "save_form":
        return [("outputs.form", recipe.outputs.form)]
    if kind == "screenshot":
        return [("outputs.screenshot", recipe.outputs.screenshot)]
    return []


def missing_case_id(recipe: Recipe, model: ModelInfo) -> CaseProblem | None:
    """Why ``model`` cannot be done when it has no case id and the recipe needs one (its
    label engraves ``{case_id}``, say); None otherwise. A case is a folder: a loose file
    (dropped straight into an inbox, or the named folder's own in ``run``) has no case id
    unless its sidecar gives one, and nothing stands in for it."""
    if model.case_id is not None or "case_id" in model.fields:
        return None
    name = model.path.name
    for step in recipe.steps:
        for what, template in _model_templates(recipe, step.kind, step.options):
            if "case_id" in template_fields(template):
                return CaseProblem(
                    None, name, step.id,
                    f"{what} needs {{case_id}}, and {name} has none: it is not in a case "
                    "folder, and no sidecar gives it one",
                    f"put it in a folder named by its case id (C-1042/{name}; `run` takes the "
                    f"folder above it), or give it a sidecar with case_id, or take {{case_id}} "
                    f"out of {what}",
                )
    return None


def case_problems(
    recipe: Recipe, models: Sequence[ModelInfo], run: Mapping[str, object]
) -> list[CaseProblem]:
    """What stops each of ``models`` (one case) from being done; empty when nothing does.

    ``run`` holds the run's template fields (:func:`~preform_pipeline.executor.runner.
    run_values`); the build's own (``build``, ``job``) are stood in for.
    """
    problems: list[CaseProblem] = []
    oriented = recipe.has_step("auto_orient")
    for model in models:
        uncased = missing_case_id(recipe, model)
        if uncased is not None:
            problems.append(uncased)
            continue
        job = model.case_id or model.path.stem
        values = model_values(model, {**run, "build": CHECK_BUILD_NAME, "job": job})
        for step in recipe.steps:
            try:
                found = _step_problem(recipe, step.id, step.kind, step.options, model, values,
                                      oriented)
            except PipelineError as exc:
                found = CaseProblem(model.case_id, model.path.name, step.id, exc.message,
                                    exc.hint or "")
            if found is not None:
                problems.append(found)
                break  # one reason per model is enough to fail it
    return problems


def refused_cases(
    recipe: Recipe, cases: Mapping[_Case, Sequence[ModelInfo]], run: Mapping[str, object]
) -> dict[_Case, CaseProblem]:
    """The cases among ``cases`` (each a key and its models) that cannot be done, each with
    its first problem (:func:`case_problems`): the case is refused whole for it, since a case
    printed without one of its parts would go out split. ``run`` as for
    :func:`case_problems`."""
    refused: dict[_Case, CaseProblem] = {}
    for case, members in cases.items():
        problems = case_problems(recipe, members, run)
        if problems:
            refused[case] = problems[0]
    return refused


def _step_problem(
    recipe: Recipe, step_id: str, kind: str, options: Mapping[str, Any], model: ModelInfo,
    values: Mapping[str, object], oriented: bool,
) -> CaseProblem | None:
    if kind == "label":
        return _label_problem(step_id, options, model, values, oriented)
    if kind == "add_drain_holes":
        return _drain_problem(step_id, options, model)
    for _, template in _model_templates(recipe, kind, options):
        render_template(template, values)
    return None
