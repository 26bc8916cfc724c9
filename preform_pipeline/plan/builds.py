"""Build planning: which models go into which build, before any server is involved.

Planning works on what the model files say, as imported (no auto-orientation is simulated):

1. **Read** (:func:`read_models`): every file is read once; its size, footprint, volume and a
   support-volume estimate are kept in a :class:`ModelInfo`, in millimetres after its units
   and the recipe's ``scale``. Units are stated (3MF file, sidecar, recipe) or judged against
   the machine (:func:`preform_pipeline.geometry.decide_units`): a guess is a plan warning, a
   model that could be either is rejected (held) with the reason; the import is sent the
   units decided here, so planner and server agree.
2. **Reject up front** (:func:`plan_builds`): a model larger than the machine's build volume
   (x, y, z; the footprint may turn 90 degrees about z) can never print, and one that does not
   fit the platform inside the recipe's margin cannot be laid out. Each becomes a
   :class:`Rejection` carrying the sizes, so the rest of the batch still plans.
3. **Group**: resin (SLA) machines pack footprints onto the platform
   (:func:`preform_pipeline.plan.packing.pack_into_bins`, honouring spacing, margin, maximum
   models per build and rotation); powder (SLS) machines group by volume instead, since the
   server packs parts in 3-D: a build takes models while their total volume stays under the
   chamber volume times :data:`DEFAULT_SLS_PACKING_DENSITY`.
   With ``servers`` above 1, resin builds are then balanced so their estimated work splits
   evenly over that many servers (:mod:`preform_pipeline.plan.balance`): as many builds,
   each still laid out on one platform.
4. **Estimate** resin per build: model volume plus the support estimate when the recipe has
   ``auto_support`` (SLA); sintered powder volume, i.e. the model volume (SLS).

**Cases.** A model's case id groups files that belong together (a dental case: upper, lower,
bite). With ``keep_cases_together`` all files of a case land in one build; a case that cannot
share one build (more files than ``max_models_per_build``, too large together) is split over
builds with a warning in :attr:`Plan.warnings` instead, since each of its models can print
on its own. The id comes from the caller (a ``{path: case_id}`` mapping, e.g. from hot-folder
sidecars) or, for files found by expanding a folder, from the name of the folder directly below
it that holds the file, subfolders and all, as the hot folder takes a dropped folder
(:func:`case_folder`, :func:`expand_model_paths`); folders with the same name are the same case.
A case is a folder: a loose file (the named folder's own, or one named on its own) has no case
id, as a file dropped straight into the hot folder's inbox has none; its folder's name
(``inbox``) is not a case id, and a label engraving it would mark a wrong part. Files without a
case id are each on their own.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from preform_pipeline.catalogue import DEFAULT_CATALOGUE, Catalogue, MachineType
from preform_pipeline.errors import (
    ModelFileError,
    ModelTooLargeError,
    NotAModelError,
    PlanningError,
)
from preform_pipeline.geometry import (
    INCH_MM,
    SUPPORTED_SUFFIXES,
    Mesh,
    Units,
    UnitsSource,
    decide_units,
    parse_units,
    read_mesh,
    support_volume_estimate,
)
from preform_pipeline.geometry.orientation import (
    ORIENTATION_PHRASES,
    orientation_fault,
    reoriented,
)
from preform_pipeline.geometry.units import STATED_UNITS_HINT
from preform_pipeline.logging import get_logger
from preform_pipeline.plan.balance import balance_groups, model_work
from preform_pipeline.plan.footprint import Footprint, Shadow, measure_shadow, predict
from preform_pipeline.plan.graph import StepGraph, compile_graph
from preform_pipeline.plan.nesting import (
    NestedBin,
    Outline,
    fits_one_platform,
    nest,
    one_platform_layout,
)
from preform_pipeline.plan.planned import Plan
from preform_pipeline.plan.powder import PowderEstimate, estimate_powder
from preform_pipeline.plan.rejection import Rejection
from preform_pipeline.plan.walk import case_folder, walk_folder
from preform_pipeline.recipes.model import (
    MACHINE_TYPE_NEEDED,
    MACHINE_TYPE_NEEDED_HINT,
    ImportSpec,
    Recipe,
)
from preform_pipeline.wording import counted

__all__ = [
    "DEFAULT_SLS_PACKING_DENSITY",
    "MM3_PER_ML",
    "BuildPlan",
    "ModelInfo",
    "ModelPlacement",
    "Plan",
    "Rejection",
    "case_folder",
    "expand_model_paths",
    "plain_pass_fits",
    "plan_builds",
    "recipe_machine",
    "read_model",
    "read_models",
    "refused_alone",
    "units_label",
    "walk_folder",
]

log = get_logger(__name__)

#: Share of an SLS chamber's volume that a build's parts may fill, unless the recipe's
#: ``batching.packing_density`` says otherwise. The server's packer decides the final
#: arrangement and a build it cannot pack is split through the overflow (its answer, not
#: this share, decides); this only decides how many parts are offered to one build. 0.2 is
#: below what the simulator's packer reaches with the mixed sample parts (0.24 measured,
#: docs/planning.md) and within the 10-25 % Formlabs quotes for typical Fuse builds, so a
#: build offered this much normally packs at the first attempt.
DEFAULT_SLS_PACKING_DENSITY: Final = 0.20

MM3_PER_ML: Final = 1000.0

# Sizes are compared with a small tolerance so a part exported at exactly the platform size
# (200.0 mm stored as 199.99999 or 200.00001 in float32) is not rejected by rounding.
_FIT_TOLERANCE_MM: Final = 1e-3

_FILE_UNITS_KNOWN: Final = frozenset({".3mf"})


def _empty_fields() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ModelInfo:
    """What planning knows about one model file; lengths in mm, volumes in mm^3."""

    path: Path
    name: str
    size_mm: tuple[float, float, float]
    footprint_mm: tuple[float, float]
    volume_mm3: float
    support_estimate_mm3: float
    triangle_count: int
    case_id: str | None = None
    #: Values for output templates that came with the file (e.g. from a sidecar); read-only.
    fields: Mapping[str, str] = field(default_factory=_empty_fields)
    #: Units the file was read in (``MILLIMETERS`` or ``INCHES``); the import is sent these.
    units: str = "MILLIMETERS"
    #: Where the units came from: ``file`` (3MF), ``recipe``, ``sidecar`` or ``guess``.
    units_source: str = "recipe"
    #: Set when the units were guessed: names the model, both sizes and the setting.
    units_warning: str | None = None
    #: Set when the triangles faced the wrong way: names the model and what was done.
    normals_warning: str | None = None
    #: Surface area in mm^2 (a hollowed part's material is about its surface times the wall).
    surface_mm2: float = 0.0
    #: The model's shadow on the platform, as it lies and flat-face down (mm); None when
    #: the info was made by hand (planning then uses the footprint box) or read for a powder
    #: (SLS) machine, whose builds are grouped by volume and never laid out by outline.
    shadow: Shadow | None = field(default=None, compare=False, repr=False)

    @property
    def shown(self) -> str:
        """The model as a build's messages name it: ``C-1042/upper.stl`` in a case, as the
        hot folder names a dropped file, else its file's name. Every case of a dental lab
        holds an ``upper.stl``: by the file's name alone two cases' read alike."""
        return f"{self.case_id}/{self.path.name}" if self.case_id else self.path.name


@dataclass(frozen=True)
class ModelPlacement:
    """Where the planner put a model on the platform (SLA): footprint centre in scene
    coordinates (mm, 0 at the platform centre, +x right, +y away from the front), the placed
    footprint, and whether it turned 90 degrees about z.

    The server's ``auto_layout`` makes the final arrangement; these positions prove that the
    build fits and serve as a fallback layout.
    """

    path: Path
    x_mm: float
    y_mm: float
    width_mm: float
    depth_mm: float
    rotated: bool
    #: The planned turn about z in degrees (counter-clockwise); ``rotated`` is ``!= 0``.
    angle_deg: float = 0.0


@dataclass(frozen=True)
class BuildPlan:
    """One build: its models, planned placements (SLA only), fill ratio, resin, step graph.

    ``fill_ratio`` is footprint area over platform area (SLA) or part volume over chamber
    volume (SLS). ``estimated_volume_ml`` is resin (SLA) or sintered powder (SLS).
    """

    index: int
    name: str
    models: tuple[ModelInfo, ...]
    placements: tuple[ModelPlacement, ...]
    fill_ratio: float
    estimated_volume_ml: float
    graph: StepGraph
    #: SLS builds: bed, powder, print and cooling figures as planned; None for resin.
    powder: PowderEstimate | None = None

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(m.path for m in self.models)

    @property
    def units(self) -> tuple[str, ...]:
        """Each model's units and their source: ``part.stl: INCHES (recipe)``."""
        return tuple(units_label(m) for m in self.models)


# -- reading ------------------------------------------------------------------------------------


def _is_model_file(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES and not path.name.startswith(".")


def expand_model_paths(
    paths: Iterable[Path | str], *, cases: Collection[Path] = ()
) -> dict[Path, str | None]:
    """Model files named by ``paths`` with their case ids, in a stable order.

    A file is taken as is, without a case id. A folder expands recursively to the model files
    (``.stl``, ``.obj``, ``.3mf``; hidden files skipped) below it, sorted, each with its
    :func:`case_folder`'s name as its case id, or none for the folder's own files unless the
    folder is in ``cases``. A path that does not exist is kept (reading it reports the
    problem).
    """
    found: dict[Path, str | None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files, unlisted = walk_folder(path)
            named_is_case = path in cases
            for file in (p for p in files if _is_model_file(p)):
                folder = case_folder(path, file, named_is_case=named_is_case)
                found.setdefault(file, folder.name if folder is not None else None)
            for folder in unlisted:  # kept, so reading it says it cannot be read
                found.setdefault(folder, None)
        else:
            found.setdefault(path, None)
    return found


def units_label(model: ModelInfo) -> str:
    """``part.stl: INCHES (recipe)``: a model's units and where they came from."""
    return f"{model.path.name}: {model.units} ({model.units_source})"


def recipe_machine(
    recipe: Recipe, catalogue: Catalogue = DEFAULT_CATALOGUE
) -> MachineType | None:
    """The recipe's machine, whose build volume judges units; None for a recipe that names
    none (an .fps file) or an unknown one (planning reports that)."""
    try:
        return _machine(recipe, catalogue)
    except PlanningError:
        return None


def _largest_machine(catalogue: Catalogue) -> MachineType:
    return max(catalogue.machines, key=lambda m: math.prod(m.build_volume_mm))


def _stated_units(
    path: Path, import_spec: ImportSpec, fields: Mapping[str, str]
) -> tuple[Units, UnitsSource] | None:
    """Units stated for an unitless file: its sidecar first, then the recipe."""
    if "units" in fields:
        units = parse_units(fields["units"])
        if units is None:
            # Not met from a hot folder or `run`: their sidecar reader refuses such units,
            # and the case with them (review rv47-dental); said here for other callers.
            raise ModelFileError(
                path,
                f"the sidecar says units {fields['units']!r}",
                hint=STATED_UNITS_HINT,
            )
        return (units, "sidecar")
    stated = import_spec.stated_units(path)
    return None if stated is None else (parse_units(stated) or "MILLIMETERS", "recipe")


def _checked_normals(path: Path, mesh: Mesh, repair: str) -> tuple[Mesh, str | None]:
    """The mesh as the import will bring it in, and a warning when its triangles face the
    wrong way: re-oriented under ``repair_behavior: REPAIR`` (the server does the same on
    import), left as is under ``IGNORE``, refused under ``ERROR``."""
    fault = orientation_fault(mesh)
    if fault is None:
        return mesh, None
    what = ORIENTATION_PHRASES[fault]
    if repair == "ERROR":
        raise ModelFileError(
            path, what,
            hint="set import.repair_behavior: REPAIR to re-orient the faces, or export it again",
        )
    if repair == "REPAIR":
        fixed, turned = reoriented(mesh)
        if not turned:  # too large to re-orient face by face here (geometry.orientation)
            return mesh, (f"{path.name}: {what}; measured as it is ({mesh.triangle_count:,} "
                          "triangles are too many to re-orient before planning); the import "
                          "repairs it (import.repair_behavior: REPAIR)")
        return fixed, (f"{path.name}: {what}; {counted(turned, 'triangle')} re-oriented on import "
                       "(import.repair_behavior: REPAIR)")
    return mesh, (f"{path.name}: {what}; imported as it is (import.repair_behavior: IGNORE); "
                  "set REPAIR to re-orient the faces")


def read_model(
    path: Path | str,
    *,
    import_spec: ImportSpec,
    case_id: str | None = None,
    fields: Mapping[str, str] | None = None,
    machine: MachineType | None = None,
) -> ModelInfo:
    """Read one model file and measure it in millimetres, as the import will bring it in.

    Units (:mod:`preform_pipeline.geometry.units`): a 3MF file states its own; for STL and OBJ
    a sidecar's ``units`` wins, then the recipe's ``import.units_by_path`` and ``import.units``;
    otherwise both readings are judged against ``machine``'s build volume (the largest in the
    catalogue when None) and ``import.min_feature_mm``. ``import_spec.scale`` multiplies after.
    For a powder (SLS) ``machine`` the shadow is not measured (``shadow`` is None): its builds
    are grouped by volume, and measuring the outline was most of the reading time there.
    Raises :class:`~preform_pipeline.errors.ModelFileError` for a file that cannot be read or
    whose units cannot be decided (both readings could print and the recipe names none).
    """
    path = Path(path)
    values = dict(fields or {})
    mesh = read_mesh(path)
    units: Units = "MILLIMETERS"
    source: UnitsSource = "file"
    warning: str | None = None
    if path.suffix.lower() not in _FILE_UNITS_KNOWN and mesh.triangle_count:
        target = machine or _largest_machine(DEFAULT_CATALOGUE)
        ambiguous = parse_units(import_spec.ambiguous_units)
        decision = decide_units(
            path.name,
            mesh.size,
            stated=_stated_units(path, import_spec, values),
            build_volume_mm=target.build_volume_mm,
            scale=float(import_spec.scale),
            min_feature_mm=import_spec.min_feature_mm,
            assume=ambiguous,
            machine=target.label,
        )
        if decision.units is None or decision.source is None:
            raise ModelFileError(
                path,
                decision.reason or "units not stated",
                hint="say which units the file is in; nothing was guessed",
            )
        units, source, warning = decision.units, decision.source, decision.warning
        if warning is not None:
            log.warning("units_guessed", path=str(path), units=units)
    mesh, normals_warning = _checked_normals(path, mesh, import_spec.repair_behavior)
    factor = (INCH_MM if units == "INCHES" else 1.0) * float(import_spec.scale)
    sx, sy, sz = (v * factor for v in mesh.size)
    cube = factor**3
    shadow: Shadow | None = None
    # Outlines are only nested on resin platforms (an SLS recipe has no auto_layout step, so
    # nothing at run time asks for a footprint either); an unknown machine keeps them.
    if machine is None or machine.technology != "SLS":
        measured = measure_shadow(mesh)
        shadow = Shadow(
            measured.as_is * factor,
            measured.flat * factor,
            measured.as_is_hull_mm2 * factor**2,
            measured.flat_hull_mm2 * factor**2,
        )
    return ModelInfo(
        path=path,
        name=mesh.name,
        size_mm=(sx, sy, sz),
        footprint_mm=(sx, sy),
        volume_mm3=mesh.volume() * cube,
        support_estimate_mm3=support_volume_estimate(mesh) * cube,
        triangle_count=mesh.triangle_count,
        case_id=case_id,
        fields=MappingProxyType(dict(fields or {})),
        units=units,
        units_source=source,
        units_warning=warning,
        normals_warning=normals_warning,
        surface_mm2=mesh.surface_area() * factor**2,
        shadow=shadow,
    )


def read_models(
    paths: Iterable[Path | str],
    *,
    import_spec: ImportSpec,
    case_ids: Mapping[Path, str | None] | None = None,
    fields: Mapping[Path, Mapping[str, str]] | None = None,
    rejected: list[Rejection] | None = None,
    machine: MachineType | None = None,
    cases: Collection[Path] = (),
) -> list[ModelInfo]:
    """Read every model named by ``paths`` (files, or folders expanded with their case ids:
    :func:`expand_model_paths`, a named folder in ``cases`` being one case).

    ``case_ids`` and ``fields`` are keyed by file path and override what folder expansion
    gives. Without ``rejected`` the first unreadable file raises
    :class:`~preform_pipeline.errors.ModelFileError`; with a list, each unreadable file is
    appended to it as a :class:`Rejection` and reading goes on.
    """
    given = dict(case_ids or {})
    infos: list[ModelInfo] = []
    for path, folder_case in expand_model_paths(paths, cases=cases).items():
        case_id = given.get(path, folder_case)
        try:
            infos.append(
                read_model(
                    path,
                    import_spec=import_spec,
                    case_id=case_id,
                    fields=(fields or {}).get(path),
                    machine=machine,
                )
            )
        except ModelFileError as exc:
            if rejected is None:
                raise
            # A PNG named .stl is no broken model: the event and the heading say so.
            looks_like = exc.looks_like if isinstance(exc, NotAModelError) else None
            no_model = isinstance(exc, NotAModelError)
            log.warning("model_unreadable", path=str(path), reason=exc.reason,
                        not_a_model=no_model, looks_like=looks_like)
            rejected.append(Rejection(path, str(exc), not_a_model=no_model,
                                      looks_like=looks_like, hint=exc.hint or None))
    return infos


# -- planning -----------------------------------------------------------------------------------


def _fits(width: float, depth: float, space_x: float, space_y: float, rotate: bool) -> bool:
    tol = _FIT_TOLERANCE_MM
    if width <= space_x + tol and depth <= space_y + tol:
        return True
    return rotate and depth <= space_x + tol and width <= space_y + tol


def _machine(recipe: Recipe, catalogue: Catalogue) -> MachineType:
    type_id = recipe.scene.machine_type
    if type_id is None:
        # Validation refuses such a recipe (recipes/semantic.check_fps_machine_type); a
        # Recipe built without it meets the same words here.
        raise PlanningError(f"{recipe.source}: {MACHINE_TYPE_NEEDED}",
                            hint=MACHINE_TYPE_NEEDED_HINT)
    machine = catalogue.machine(type_id)
    if machine is None:
        raise PlanningError(
            f"{recipe.source}: machine type {type_id!r} is not in the {catalogue.source}",
            hint=f"use one of {', '.join(catalogue.type_ids)}",
        )
    return machine


def _reject_oversized(
    recipe: Recipe, models: Sequence[ModelInfo], machine: MachineType
) -> tuple[list[ModelInfo], list[Rejection]]:
    bx, by, bz = machine.build_volume_mm
    margin = recipe.batching.margin_mm
    sla = machine.technology == "SLA"
    keep: list[ModelInfo] = []
    rejected: list[Rejection] = []
    for model in models:
        sx, sy, sz = model.size_mm
        if sz > bz + _FIT_TOLERANCE_MM or not _fits(sx, sy, bx, by, True):
            error = ModelTooLargeError(model.path, model.size_mm, (bx, by, bz), machine.type_id)
            rejected.append(Rejection(model.path, str(error), model.size_mm, (bx, by, bz)))
        elif sla and not _fits(
            sx, sy, bx - 2 * margin, by - 2 * margin, recipe.batching.allow_rotation
        ):
            turn = "" if recipe.batching.allow_rotation else " without rotation"
            reason = (
                f"{model.path}: footprint {sx:.1f} x {sy:.1f} mm does not fit{turn} the "
                f"{bx - 2 * margin:.0f} x {by - 2 * margin:.0f} mm platform area inside the "
                f"recipe's {margin:g} mm margin (reduce batching.margin_mm"
                f"{' or allow rotation' if turn else ''})"
            )
            rejected.append(Rejection(model.path, reason, model.size_mm, (bx, by, bz)))
        else:
            keep.append(model)
    for rejection in rejected:
        log.warning("model_rejected", path=str(rejection.path), reason=rejection.reason)
    return keep, rejected


#: PreFormServer's hollowing wall when the recipe's ``hollow`` step names none.
DEFAULT_HOLLOW_WALL_MM: Final = 2.0


def _hollow_wall_mm(recipe: Recipe) -> float | None:
    """The wall of the recipe's ``hollow`` step, or None when it hollows nothing."""
    step = recipe.step("hollow")
    if step is None:
        return None
    return float(step.options.get("wall_thickness_mm", DEFAULT_HOLLOW_WALL_MM))


def _resin_mm3(model: ModelInfo, with_supports: bool, wall_mm: float | None = None) -> float:
    """A model's material: solid, or for a hollowed one its shell (surface x wall, never more
    than solid: a part too thin to hollow stays solid), plus supports when asked."""
    solid = model.volume_mm3
    if wall_mm is not None and model.surface_mm2 > 0:
        solid = min(solid, model.surface_mm2 * wall_mm)
    return solid + (model.support_estimate_mm3 if with_supports else 0.0)


def _units_of(models: Sequence[ModelInfo], grouped: Collection[str]) -> list[list[int]]:
    """Indices of ``models`` in units that must share a build, in first-seen order: one unit
    per case id in ``grouped``, one per model otherwise."""
    units: list[list[int]] = []
    by_case: dict[str, list[int]] = {}
    for i, model in enumerate(models):
        if model.case_id is not None and model.case_id in grouped:
            if model.case_id not in by_case:
                by_case[model.case_id] = []
                units.append(by_case[model.case_id])
            by_case[model.case_id].append(i)
        else:
            units.append([i])
    return units


def _box_points(width: float, depth: float) -> npt.NDArray[np.float64]:
    """A box's boundary, sampled every millimetre, for models known only by their size."""
    xs = np.linspace(-width / 2, width / 2, max(2, math.ceil(width) + 1))
    ys = np.linspace(-depth / 2, depth / 2, max(2, math.ceil(depth) + 1))
    return np.concatenate([
        np.column_stack([xs, np.full_like(xs, -depth / 2)]),
        np.column_stack([xs, np.full_like(xs, depth / 2)]),
        np.column_stack([np.full_like(ys, -width / 2), ys]),
        np.column_stack([np.full_like(ys, width / 2), ys]),
    ])


def _footprint(recipe: Recipe, model: ModelInfo, machine: MachineType) -> Footprint:
    shadow = model.shadow
    if shadow is None:
        box = _box_points(*model.footprint_mm)
        area = model.footprint_mm[0] * model.footprint_mm[1]
        shadow = Shadow(box, box, area, area)
    supported = machine.technology == "SLA" and recipe.has_step("auto_support")
    return predict(shadow, recipe, supported=supported)


def _outlines(
    recipe: Recipe,
    models: Sequence[ModelInfo],
    indices: Iterable[int],
    machine: MachineType,
    grouped: Collection[str],
) -> tuple[list[Outline], float]:
    """The models' predicted outlines (keyed by index) and how far a grown outline may
    reach past the margin."""
    outlines = []
    spill = 0.0
    for i in indices:
        footprint = _footprint(recipe, models[i], machine)
        outlines.append(Outline(
            key=str(i),
            points=footprint.points,
            grow=footprint.grow_mm,
            hull_mm2=footprint.hull_mm2,
            group=models[i].case_id if models[i].case_id in grouped else None,
        ))
        # The margin is kept from the model; its raft may lie in the margin, never past the
        # edge; half the spacing belongs to the neighbour and may reach past the edge.
        half = footprint.spacing_mm / 2.0
        spill = half + min(footprint.grow_mm - half, recipe.batching.margin_mm)
    return outlines, spill


def _nest(
    recipe: Recipe,
    models: Sequence[ModelInfo],
    indices: Iterable[int],
    machine: MachineType,
    grouped: Collection[str],
    unfit: list[str] | None = None,
    *,
    search: bool = True,
) -> list[NestedBin]:
    batching = recipe.batching
    bx, by, _ = machine.build_volume_mm
    outlines, spill = _outlines(recipe, models, indices, machine, grouped)
    return nest(
        outlines,
        (bx, by),
        margin=batching.margin_mm,
        spill=spill,
        max_items=batching.max_models_per_build,
        allow_rotation=batching.allow_rotation,
        unfit=unfit,
        search=search,
        empty_platforms=batching.empty_builds,
    )


def _fits_one_platform(
    recipe: Recipe, models: Sequence[ModelInfo], indices: Iterable[int], machine: MachineType
) -> bool:
    bx, by, _ = machine.build_volume_mm
    outlines, spill = _outlines(recipe, models, indices, machine, ())
    return fits_one_platform(outlines, (bx, by), margin=recipe.batching.margin_mm, spill=spill,
                             allow_rotation=recipe.batching.allow_rotation)


def plain_pass_fits(
    recipe: Recipe, models: Sequence[ModelInfo], machine: MachineType | None
) -> bool:
    """Whether ``models`` share one platform of ``machine`` by the planner's plain pass (the
    test every planned build passed, but one whose moved model took a finer turn under
    ``batching.empty_builds``: it may fail this); True when there is no platform to judge: no
    machine known, or a powder machine, whose server packs a volume."""
    if machine is None or machine.technology != "SLA":
        return True
    if not models:
        return True
    bx, by, _ = machine.build_volume_mm
    outlines, spill = _outlines(recipe, models, range(len(models)), machine, ())
    found = one_platform_layout(outlines, (bx, by), margin=recipe.batching.margin_mm,
                                spill=spill, allow_rotation=recipe.batching.allow_rotation)
    return found is not None


def _grouped_cases(
    recipe: Recipe, models: Sequence[ModelInfo], machine: MachineType, density: float
) -> tuple[frozenset[str], tuple[str, ...]]:
    """The case ids kept together, and a warning for each case that cannot share one build.

    A case too large for one build (more files than ``max_models_per_build``, footprints that
    do not fit one platform together, or more part volume than one SLS build takes) is split
    over several builds rather than refused: every model in it can still print.
    """
    batching = recipe.batching
    if not batching.keep_cases_together:
        return frozenset(), ()
    bx, by, bz = machine.build_volume_mm
    limit = batching.max_models_per_build
    capacity = bx * by * bz * density
    everything = frozenset(m.case_id for m in models if m.case_id is not None)
    split: set[str] = set()
    warnings: list[str] = []
    for unit in _units_of(models, everything):
        if len(unit) < 2:
            continue
        case = models[unit[0]].case_id
        assert case is not None
        reason = ""
        if limit is not None and len(unit) > limit:
            reason = f"more than batching.max_models_per_build ({limit})"
        elif machine.technology == "SLS":
            total = sum(models[i].volume_mm3 for i in unit)
            if total > capacity:
                reason = (
                    f"{total / MM3_PER_ML:.0f} ml of parts, more than one build takes "
                    f"({capacity / MM3_PER_ML:.0f} ml at packing density {density:g})"
                )
        # The nester's own test: a case kept together always finds a platform in the batch
        # (a model that fits no platform on its own is left out: it is rejected later).
        elif not _fits_one_platform(recipe, models, unit, machine):
            reason = f"too large together for one {bx:g} x {by:g} mm platform"
        if reason:
            split.add(case)
            warnings.append(
                f"case {case!r} ({counted(len(unit), 'model')}) is split over builds: {reason}"
            )
            log.warning("case_split", case_id=case, models=len(unit), reason=reason)
    return everything - split, tuple(warnings)


def _group_sla(
    recipe: Recipe,
    models: Sequence[ModelInfo],
    machine: MachineType,
    grouped: Collection[str],
    refused: list[Rejection],
) -> list[tuple[list[int], tuple[ModelPlacement, ...], float]]:
    """Nest the predicted footprints; a model whose footprint with its raft border and
    spacing fits no empty platform is refused (its box alone may still have fitted)."""
    unfit: list[str] = []
    results = _nest(recipe, models, range(len(models)), machine, grouped, unfit)
    refused.extend(_unfit(recipe, models, unfit, machine))
    return [_group_of(models, result) for result in results]


def _unfit(recipe: Recipe, models: Sequence[ModelInfo], unfit: Iterable[str],
           machine: MachineType) -> list[Rejection]:
    """The refusals of the models the nesting left ``unfit`` (keys: their indices)."""
    bx, by, bz = machine.build_volume_mm
    refused: list[Rejection] = []
    for key in unfit:
        model = models[int(key)]
        reason = (
            f"{model.path}: footprint with raft border and spacing does not fit the "
            f"{bx:g} x {by:g} mm platform inside the recipe's {recipe.batching.margin_mm:g} mm "
            "margin (reduce batching.margin_mm or the layout spacing, or scale the model)"
        )
        log.warning("model_rejected", path=str(model.path), reason=reason)
        refused.append(Rejection(model.path, reason, model.size_mm, (bx, by, bz)))
    return refused


def refused_alone(
    recipe: Recipe, models: Sequence[ModelInfo], *, catalogue: Catalogue = DEFAULT_CATALOGUE
) -> list[Rejection]:
    """The models of ``models`` that :func:`plan_builds` would refuse whatever else is
    planned with them (too large for the build volume, or for the platform inside the
    recipe's margin, or a footprint with its raft border that fits no empty platform), in
    its words; nothing when the recipe's machine is unknown (the plan says so). Each such
    refusal is about the model alone, so a case can be judged before it is planned (or
    claimed) with others: ``plan/held.py`` holds the rest of its case."""
    try:
        machine = _machine(recipe, catalogue)
    except PlanningError:
        return []
    fitting, refused = _reject_oversized(recipe, models, machine)
    if machine.technology == "SLA" and fitting:
        # The nester's own test of each part on an empty platform, without its search:
        # plan_builds nests the case (a big case's search, once).
        unfit: list[str] = []
        _nest(recipe, fitting, range(len(fitting)), machine, (), unfit, search=False)
        refused.extend(_unfit(recipe, fitting, unfit, machine))
    return refused


def _group_of(
    models: Sequence[ModelInfo], result: NestedBin
) -> tuple[list[int], tuple[ModelPlacement, ...], float]:
    """One nested platform as a build's model indices, placements and fill."""
    placements = tuple(
        ModelPlacement(
            path=models[int(p.key)].path,
            x_mm=p.x,
            y_mm=p.y,
            width_mm=p.width,
            depth_mm=p.depth,
            rotated=p.angle_deg != 0.0,
            angle_deg=p.angle_deg,
        )
        for p in result.placements
    )
    return sorted(int(p.key) for p in result.placements), placements, result.density


def _balance_sla(
    recipe: Recipe,
    models: Sequence[ModelInfo],
    machine: MachineType,
    grouped: Collection[str],
    groups: list[tuple[list[int], tuple[ModelPlacement, ...], float]],
    servers: int,
) -> list[tuple[list[int], tuple[ModelPlacement, ...], float]]:
    """The builds with their work split evenly over ``servers`` (:mod:`.balance`): a build
    takes a unit when all its models share one platform by the planner's test (that of
    :func:`_fits_one_platform`) in a plain pass, as every platform of :func:`nest` (a
    build that only another order fills, the server's one pass may not: arches64 carried
    a model on then), and every build that changed carries the layout the test found."""
    outlines, spill = _outlines(recipe, models, range(len(models)), machine, grouped)
    batching = recipe.batching
    bx, by, _ = machine.build_volume_mm
    laid: dict[tuple[int, ...], NestedBin] = {}

    def fits(indices: Sequence[int]) -> bool:
        limit = batching.max_models_per_build
        if limit is not None and len(indices) > limit:
            return False
        found = one_platform_layout([outlines[i] for i in indices], (bx, by),
                                    margin=batching.margin_mm, spill=spill,
                                    allow_rotation=batching.allow_rotation)
        if found is None:
            return False
        laid[tuple(indices)] = found
        return True

    result = balance_groups(
        [indices for indices, _, _ in groups],
        _units_of(models, grouped),
        [model_work(m) for m in models],
        servers,
        fits,
        hulls=[o.hull_mm2 for o in outlines],
    )
    log.info(
        "builds_balanced",
        servers=servers,
        builds=len(groups),
        moved=sum(len(unit) for unit in result.moved),
        checks=result.checks,
        work_span_before=round(result.span_before, 2),
        work_span_after=round(result.span_after, 2),
    )
    return [
        old if tuple(old[0]) == indices else _group_of(models, laid[indices])
        for old, indices in zip(groups, result.groups, strict=True)
    ]


def _group_sls(
    recipe: Recipe,
    models: Sequence[ModelInfo],
    machine: MachineType,
    grouped: Collection[str],
    density: float,
) -> list[tuple[list[int], tuple[ModelPlacement, ...], float]]:
    """First-fit decreasing by part volume against ``chamber volume x density`` per build."""
    bx, by, bz = machine.build_volume_mm
    chamber = bx * by * bz
    capacity = chamber * density
    limit = recipe.batching.max_models_per_build or math.inf
    units = _units_of(models, grouped)
    # Largest first; the first index breaks ties so the result depends only on the input.
    units.sort(key=lambda u: (-sum(models[i].volume_mm3 for i in u), u[0]))
    bins: list[list[int]] = []
    volumes: list[float] = []
    for unit in units:
        need = sum(models[i].volume_mm3 for i in unit)
        for b, members in enumerate(bins):
            if volumes[b] + need <= capacity and len(members) + len(unit) <= limit:
                members.extend(unit)
                volumes[b] += need
                break
        else:
            # A single part above the density limit still gets a build of its own: it fits
            # the chamber (checked up front), it is just a dense build.
            bins.append(list(unit))
            volumes.append(need)
    return [
        (sorted(members), (), vol / chamber) for members, vol in zip(bins, volumes, strict=True)
    ]


def _powder(
    recipe: Recipe, machine: MachineType, members: Sequence[ModelInfo], density: float
) -> PowderEstimate | None:
    if machine.technology != "SLS":
        return None
    material = machine.material(recipe.scene.material_code or "")
    layer = recipe.scene.layer_thickness_mm
    return estimate_powder(
        machine,
        [m.volume_mm3 for m in members],
        [min(m.size_mm) for m in members],
        packing_density=density,
        material_density_g_ml=material.density_g_ml if material is not None else 1.0,
        layer_mm=float(layer) if isinstance(layer, (int, float)) else 0.1,
    )


def plan_builds(
    recipe: Recipe,
    models: Sequence[ModelInfo],
    *,
    catalogue: Catalogue = DEFAULT_CATALOGUE,
    rejected: Sequence[Rejection] = (),
    sls_packing_density: float = DEFAULT_SLS_PACKING_DENSITY,
    servers: int = 1,
) -> Plan:
    """Group ``models`` into builds for ``recipe``'s machine; see the module docstring.

    ``rejected`` (e.g. unreadable files from :func:`read_models`) is carried into the plan
    ahead of the models rejected here. ``servers``: how many servers will run the builds;
    above 1, resin (SLA) builds are balanced so their work splits evenly over that many
    (:mod:`preform_pipeline.plan.balance`; as many builds, each still on one platform).
    Raises :class:`~preform_pipeline.errors.PlanningError` when the machine is unknown, or
    when the recipe says ``on_overflow: fail`` and the models need more than one build.
    """
    if not 0 < sls_packing_density <= 1:
        raise ValueError(f"sls_packing_density must be in (0, 1], got {sls_packing_density}")
    if servers < 1:
        raise ValueError(f"servers must be 1 or more, got {servers}")
    if recipe.batching.packing_density is not None:
        sls_packing_density = recipe.batching.packing_density
    machine = _machine(recipe, catalogue)
    # Compile once before grouping so a broken graph is reported even when nothing fits.
    compile_graph(recipe)
    fitting, refused = _reject_oversized(recipe, models, machine)
    grouped, warnings = _grouped_cases(recipe, fitting, machine, sls_packing_density)
    if machine.technology == "SLS":
        groups = _group_sls(recipe, fitting, machine, grouped, sls_packing_density)
    else:
        groups = _group_sla(recipe, fitting, machine, grouped, refused)
        if servers > 1 and len(groups) > 1:
            groups = _balance_sla(recipe, fitting, machine, grouped, groups, servers)

    if recipe.batching.on_overflow == "fail" and len(groups) > 1:
        raise PlanningError(
            f"{recipe.source}: {counted(len(fitting), 'model')} need "
            f"{counted(len(groups), 'build')} on "
            f"{machine.label}, but the recipe says batching.on_overflow: fail",
            hint="send fewer models per batch, or set batching.on_overflow: split",
        )

    with_supports = machine.technology == "SLA" and recipe.has_step("auto_support")
    wall = _hollow_wall_mm(recipe)
    builds = []
    for number, (indices, placements, fill) in enumerate(groups, start=1):
        members = tuple(fitting[i] for i in indices)
        volume = sum(_resin_mm3(m, with_supports, wall) for m in members) / MM3_PER_ML
        builds.append(
            BuildPlan(
                index=number,
                name=f"{recipe.name}-{number:03d}",
                models=members,
                placements=placements,
                fill_ratio=fill,
                estimated_volume_ml=volume,
                graph=compile_graph(recipe, members),
                powder=_powder(recipe, machine, members, sls_packing_density),
            )
        )
    log.info(
        "builds_planned",
        recipe=recipe.name,
        builds=len(builds),
        models=len(fitting),
        rejected=len(refused) + len(rejected),
    )
    guessed = tuple(w for m in models for w in (m.units_warning, m.normals_warning) if w)
    return Plan(recipe, tuple(builds), (*rejected, *refused), machine, (*guessed, *warnings),
                servers if machine.technology == "SLA" else 1)
