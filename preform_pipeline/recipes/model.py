"""The validated recipe as frozen values: what the planner and the executor read.

A :class:`Recipe` is produced only by :func:`preform_pipeline.recipes.load_recipe` after the
YAML has passed the JSON Schema and the semantic checks, so consumers can trust its fields
without re-checking them. Step options are read-only mappings in the Local API's snake_case
vocabulary; :meth:`Step.api_options` turns them into a request body (renaming the few options
the recipe names differently and dropping the pipeline-only ones).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

__all__ = [
    "APPROVAL_REQUIRED",
    "requires_approval",
    "API_OPTION_NAMES",
    "AUTO_PRINTER",
    "PRINTER_LIST_SEPARATOR",
    "DEFAULT_JOB_NAME",
    "DEFAULT_LAYOUT_ATTEMPTS",
    "DEFAULT_MARGIN_MM",
    "DEFAULT_OUTPUTS",
    "DEFAULT_SPACING_MM",
    "PIPELINE_OPTION_KEYS",
    "SLA_ONLY_STEPS",
    "SLS_ONLY_STEPS",
    "STEP_KINDS",
    "SUPPORT_FINDINGS",
    "TEMPLATE_OPTIONS",
    "VALIDATION_FINDINGS",
    "MACHINE_TYPE_NEEDED",
    "MACHINE_TYPE_NEEDED_HINT",
    "BatchingSpec",
    "ImportSpec",
    "OutputSpec",
    "Position",
    "Recipe",
    "SceneSpec",
    "Step",
    "StepKind",
    "frozen_mapping",
]

StepKind = Literal[
    "auto_orient",
    "auto_support",
    "hollow",
    "add_drain_holes",
    "label",
    "auto_layout",
    "auto_pack",
    "pack_and_cage",
    "validate",
    "estimate",
    "save_form",
    "screenshot",
    "print",
    "verify",
]

#: Every step kind a recipe may list, in the order they usually run.
STEP_KINDS: Final[tuple[str, ...]] = (
    "auto_orient",
    "auto_support",
    "hollow",
    "add_drain_holes",
    "label",
    "auto_layout",
    "auto_pack",
    "pack_and_cage",
    "validate",
    "estimate",
    "save_form",
    "screenshot",
    "print",
    "verify",
)

#: Steps that only make sense on resin (SLA) machines, and on powder (SLS) machines.
SLA_ONLY_STEPS: Final[frozenset[str]] = frozenset(
    {"auto_support", "hollow", "add_drain_holes", "auto_layout"}
)
SLS_ONLY_STEPS: Final[frozenset[str]] = frozenset({"auto_pack", "pack_and_cage"})

#: Option keys that steer the pipeline rather than the Local API call, per step kind; the
#: executor removes them before sending the request body (see :meth:`Step.api_options`).
PIPELINE_OPTION_KEYS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "label": frozenset({"placement"}),
        "add_drain_holes": frozenset({"placement"}),
        "validate": frozenset({"fail_on", "collision_offset_mm"}),
        "estimate": frozenset({"max_print_time_s", "max_material_ml"}),
        "verify": frozenset({"timeout_s", "poll_interval_s"}),
        "print": frozenset({"approval"}),
    }
)

#: Recipe option names that the Local API spells differently, per step kind. ``print`` names
#: its target by kind (serial name, IP address or Fleet Control queue) where the API has one
#: ``printer`` field; ``label`` calls its template ``text`` where the API says ``label``.
API_OPTION_NAMES: Final[Mapping[str, Mapping[str, str]]] = MappingProxyType(
    {
        "label": MappingProxyType({"text": "label"}),
        "print": MappingProxyType({"printer_ip": "printer", "fleet_group": "printer"}),
    }
)

#: Options whose string values are templates (``{case_id}``) that the executor renders before
#: sending, per step kind.
TEMPLATE_OPTIONS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "label": frozenset({"text"}),
        "print": frozenset({"printer", "printer_ip", "fleet_group", "job_name"}),
        "pack_and_cage": frozenset({"cage_label"}),
    }
)

#: Print-validation findings a ``validate`` step can fail a build on.
VALIDATION_FINDINGS: Final[tuple[str, ...]] = (
    "undersupported",
    "unsupported_minima",
    "cups",
    "interferences",
    "out_of_bounds",
)
#: The findings that concern supports, which SLS parts do not have.
SUPPORT_FINDINGS: Final[frozenset[str]] = frozenset(
    {"undersupported", "unsupported_minima", "cups"}
)

DEFAULT_JOB_NAME: Final = "{job}"
#: ``print: {approval: required}``: the hot folder holds the prepared build (its .form saved)
#: until an operator approves it on the web dashboard or with ``jobs approve`` (docs/web.md).
APPROVAL_REQUIRED: Final = "required"


def requires_approval(recipe: Recipe) -> bool:
    """True when the recipe's print step asks for a person's approval before it prints."""
    return any(
        s.kind == "print" and s.options.get("approval") == APPROVAL_REQUIRED
        for s in recipe.steps
    )
#: ``print: {printer: auto}``: no printer named; at print time the first printer ready to print,
#: of the scene's machine type and with its material loaded, is chosen from printer status
#: (``preform_pipeline.verify.targets``). Matched without regard to case.
AUTO_PRINTER: Final = "auto"
#: Joins a ``printer`` list (any of these printers) into the one print-target string the
#: executor hands on; serial names and addresses never contain it.
PRINTER_LIST_SEPARATOR: Final = ","
#: Minimum gap between two footprints: room for supports' base and for the part to be cut off
#: (the recipe's layout default; the planner packs with it too).
DEFAULT_SPACING_MM: Final = 2.0
DEFAULT_MARGIN_MM: Final = 5.0
DEFAULT_LAYOUT_ATTEMPTS: Final = 3


def frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only deep copy: nested mappings become MappingProxyType, lists become tuples."""

    def freeze(item: Any) -> Any:
        if isinstance(item, Mapping):
            return MappingProxyType({str(k): freeze(v) for k, v in item.items()})
        if isinstance(item, (list, tuple)):
            return tuple(freeze(v) for v in item)
        return item

    frozen: Mapping[str, Any] = freeze(value)
    return frozen


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Position:
    """Where a value sits in a recipe file; line and column are 1-based."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


#: Why a scene of an ``fps_file`` alone cannot be used: the file is not read for its machine
#: (only the server reads it), and every batch is planned on the machine's build volume.
#: Validation says it at the recipe's line (``recipes/semantic.check_fps_machine_type``); the
#: planner's guard, for a recipe built without validation, says the same words.
MACHINE_TYPE_NEEDED: Final = (
    "scene.machine_type is missing: the machine an fps_file was made for is not read from "
    "it, and builds are planned on that machine's build volume"
)
MACHINE_TYPE_NEEDED_HINT: Final = "add scene.machine_type (e.g. FORM-4-0) next to fps_file"


@dataclass(frozen=True)
class SceneSpec:
    """Scene settings for a new build, or an .fps file that holds them.

    With ``fps_file``, ``machine_type`` is still given (validation requires it): it is not
    sent, but tells validation and planning the build volume.
    """

    machine_type: str | None
    material_code: str | None
    layer_thickness_mm: float | Literal["ADAPTIVE"] | None
    print_setting: str = "DEFAULT"
    fps_file: str | None = None

    def to_api(self) -> dict[str, Any]:
        """The body of ``POST /scene/``."""
        if self.fps_file is not None:
            return {"fps_file": self.fps_file}
        return {
            "machine_type": self.machine_type,
            "material_code": self.material_code,
            "layer_thickness_mm": self.layer_thickness_mm,
            "print_setting": self.print_setting,
        }


@dataclass(frozen=True)
class ImportSpec:
    """How model files enter the scene: plain import options, or dental scan-to-model."""

    units: str = "DETECTED"
    repair_behavior: str = "ERROR"
    scale: float = 1.0
    #: Options for ``POST /scene/{id}/scan-to-model/`` (without ``file``/``files``); None for a
    #: plain import.
    scan_to_model: Mapping[str, Any] | None = None
    #: Orientation constraint that auto-pack (SLS) respects; ``FREE`` is the server's default.
    lock: str = "FREE"
    #: ``(pattern, units)`` pairs: the first pattern matching a file states its units.
    units_by_path: tuple[tuple[str, str], ...] = ()
    #: What a unitless file is read as when both readings could print; ``HOLD`` holds it.
    ambiguous_units: str = "HOLD"
    #: Thinnest side (mm) a part may have for a units reading to count as printable.
    min_feature_mm: float = 0.3

    def stated_units(self, path: Path) -> str | None:
        """The units the recipe states for ``path``: the first ``units_by_path`` pattern that
        matches its path, its name or the name of one of its folders, else ``units`` unless
        it is ``DETECTED``; None when the recipe leaves it to judgement."""
        whole = path.as_posix()
        for pattern, units in self.units_by_path:
            if (
                fnmatch.fnmatchcase(whole, pattern)
                or fnmatch.fnmatchcase(whole, f"*/{pattern}")
                or fnmatch.fnmatchcase(path.name, pattern)
                or any(fnmatch.fnmatchcase(part, pattern) for part in path.parent.parts)
            ):
                return units
        return None if self.units == "DETECTED" else self.units

    @property
    def uses_scan_to_model(self) -> bool:
        return self.scan_to_model is not None

    def import_options(self) -> dict[str, Any]:
        """The ``POST /scene/{id}/import-model/`` options (without ``file``; ``scale`` apart)."""
        options: dict[str, Any] = {"units": self.units, "repair_behavior": self.repair_behavior}
        if self.lock != "FREE":
            options["lock"] = self.lock
        return options


@dataclass(frozen=True)
class Step:
    """One step of the recipe's graph.

    ``id`` defaults to ``kind`` (``kind#2`` for the second step of the same kind); ``after``
    names extra steps that must finish first (only steps listed earlier: steps run in recipe
    order). ``position`` points at the step's item in the recipe file.
    """

    id: str
    kind: str
    options: Mapping[str, Any]
    after: tuple[str, ...] = ()
    position: Position | None = None

    def api_options(self) -> dict[str, Any]:
        """``options`` as the Local API names them, without the pipeline-only keys.

        Template values (:data:`TEMPLATE_OPTIONS`) come back unrendered. ``label`` and
        ``add_drain_holes`` still need what only geometry gives (the model id, and a position
        and orientation when the recipe names a placement rule); ``save_form`` and
        ``screenshot`` need the output ``file``; the other kinds are complete request bodies.
        """
        drop = PIPELINE_OPTION_KEYS.get(self.kind, frozenset())
        names = API_OPTION_NAMES.get(self.kind, {})
        return {names.get(k, k): _thaw(v) for k, v in self.options.items() if k not in drop}


@dataclass(frozen=True)
class BatchingSpec:
    """How dropped models are grouped into builds."""

    max_models_per_build: int | None = None
    spacing_mm: float = DEFAULT_SPACING_MM
    margin_mm: float = DEFAULT_MARGIN_MM
    layout_attempts: int = DEFAULT_LAYOUT_ATTEMPTS
    on_overflow: Literal["split", "fail"] = "split"
    keep_cases_together: bool = True
    allow_rotation: bool = True
    #: SLS: share of the chamber a build's parts may fill; None: the planner's default.
    packing_density: float | None = None
    #: Resin: after its search, the planner also tries to empty its emptiest builds into the
    #: others (never more builds, several times the planning time, and on the bench no build
    #: saved on the simulated server; off by default, docs/planning.md).
    empty_builds: bool = False


@dataclass(frozen=True)
class OutputSpec:
    """Output path templates; ``form``/``screenshot``/``report`` are relative to ``root``.

    A relative ``root`` is relative to the recipe's folder.
    """

    root: str = "output/{recipe}"
    form: str = "{date}/{build}.form"
    screenshot: str = "{date}/{build}.png"
    report: str = "{date}/{build}.json"


DEFAULT_OUTPUTS: Final = OutputSpec()


@dataclass(frozen=True)
class Recipe:
    """A validated recipe."""

    name: str
    source: Path
    scene: SceneSpec
    import_options: ImportSpec
    steps: tuple[Step, ...]
    batching: BatchingSpec
    outputs: OutputSpec
    #: Extra sidecar field names the recipe declares it expects (usable in templates).
    fields: tuple[str, ...] = ()
    technology: Literal["SLA", "SLS"] = "SLA"
    description: str = ""
    #: Files the recipe was merged from, the base first and ``source`` last.
    extends_chain: tuple[Path, ...] = field(default=())
    #: A model failing a per-model step: ``drop_case`` (its case leaves the build, which goes
    #: on) or ``fail_build``.
    on_model_failure: Literal["drop_case", "fail_build"] = "drop_case"

    def step(self, kind: str) -> Step | None:
        """The first step of ``kind``, or None."""
        for step in self.steps:
            if step.kind == kind:
                return step
        return None

    def has_step(self, kind: str) -> bool:
        return self.step(kind) is not None

    @property
    def step_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.steps)

    @property
    def base_dir(self) -> Path:
        """The recipe's folder: relative ``outputs.root`` and ``scene.fps_file`` start here."""
        return self.source.parent
