"""One small function per step kind: recipe step options in, Local API calls out.

Every step function takes the :class:`StepContext` of the build (client, scene, models, output
root, figures gathered so far) and the step's :class:`~preform_pipeline.plan.graph.StepNode`.
Options reach the client as its option dataclasses, built from
:meth:`~preform_pipeline.recipes.model.Step.api_options` (pipeline-only keys dropped, the few
renamed keys renamed), so a value the contract forbids fails before anything is sent.

Templates (label text, job name, print target, cage label, output paths) are rendered with
the build's fields: the run fields (``recipe``, ``date``, ``time``, ``machine``,
``material``; with an ``.fps`` recipe the material as its scene reports it, from the
scene's creation on), ``build``, and every model field (``case_id``, ``stem``, sidecar fields...)
that all models of the build share. Label text is rendered per model with that model's own
fields.

A step ends in one of four ways: it returns (done); an ``ApiError`` escapes (the runner decides
by its class); or it raises :class:`StepFailure` with a ``kind``: ``permanent`` (this build
cannot succeed: a validation finding, a limit, a label that does not fit), ``overflow`` (the
layout does not fit the platform after the recipe's attempts; the runner splits or fails the
build), or ``print_unconfirmed`` (the print request got no answer; never resent).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from preform_pipeline.api import (
    ALL_MODELS,
    AutoLayoutOptions,
    AutoOrientOptions,
    AutoPackOptions,
    AutoSupportOptions,
    CameraAngle,
    CustomBounds,
    DirectionVectors,
    DrainHole,
    DrainHoleOptions,
    EulerAngles,
    FlyaroundTransform,
    FpsSettings,
    HollowOptions,
    ImportOptions,
    ImportUnits,
    LabelOptions,
    ModelUpdate,
    Orientation,
    PackAndCageOptions,
    Position,
    PreFormClient,
    PrintOptions,
    PrintTimeEstimate,
    ScanToModelOptions,
    Scene,
    SceneSettings,
    ScreenshotOptions,
    SlaMaterialUsage,
    SlsMaterialUsage,
    TransformMatrix,
)
from preform_pipeline.api import ModelInfo as SceneModel
from preform_pipeline.api.paths import FolderResolver
from preform_pipeline.errors import (
    ApiError,
    ImportNotAppliedError,
    LabelDoesNotFitError,
    PermanentApiError,
    SceneLostError,
    ServerInternalError,
    TemplateError,
)
from preform_pipeline.executor.hooks import (
    PRINT_HELD,
    PRINT_WAITING,
    VERIFY_PENDING,
    VERIFY_SKIPPED_DRY_RUN,
    VERIFY_SKIPPED_NO_CREDENTIALS,
    BuildPrintHooks,
)
from preform_pipeline.executor.staging import save_staged
from preform_pipeline.legend import (
    DEFAULT_PITCH_DEG,
    DEFAULT_YAW_DEG,
    CameraView,
    ModelMark,
    add_legend,
)
from preform_pipeline.logging import get_logger
from preform_pipeline.plan.builds import BuildPlan, ModelInfo
from preform_pipeline.plan.graph import CREATE_SCENE, IMPORT_MODELS, SCAN_TO_MODEL, StepNode
from preform_pipeline.plan.labels import label_request
from preform_pipeline.printing.holder import SendHolder
from preform_pipeline.recipes.model import (
    DEFAULT_JOB_NAME,
    DEFAULT_SPACING_MM,
    PRINTER_LIST_SEPARATOR,
    Recipe,
    Step,
)
from preform_pipeline.recipes.templates import render_template, resolved_output_path
from preform_pipeline.wording import counted, error_text, noun

__all__ = [
    "DEFAULT_DRAIN_COUNT",
    "DEFAULT_DRAIN_INSET_MM",
    "DEFAULT_MIN_LAYOUT_SPACING_MM",
    "GONE_REASON",
    "LAYOUT_KINDS",
    "LAYOUT_OVERFLOW_CODES",
    "STEP_FUNCTIONS",
    "BuildFacts",
    "StepContext",
    "StepFailure",
    "StepFunction",
    "drain_hole_positions",
    "case_step_message",
    "drop_case_of",
    "import_names",
    "import_some",
    "is_layout_overflow",
    "model_values",
    "scene_fields",
    "named_by_file",
    "sls_figures",
    "preflight",
    "run_step",
    "shared_values",
]

log = get_logger(__name__)

#: Steps that arrange models and can answer "does not fit".
LAYOUT_KINDS: Final[frozenset[str]] = frozenset({"auto_layout", "auto_pack", "pack_and_cage"})
#: Error codes meaning "the models do not fit": the simulator's, and PreFormServer's as far as
#: known. Messages saying "do(es) not fit" count too (see :func:`is_layout_overflow`).
LAYOUT_OVERFLOW_CODES: Final[frozenset[str]] = frozenset({"MODELS_DO_NOT_FIT"})
#: A layout retry halves the spacing between models, but never below this: closer parts fuse
#: or cannot be separated after printing.
DEFAULT_MIN_LAYOUT_SPACING_MM: Final = 0.5
#: Drain holes per model when the placement rule does not say, and their distance from the
#: edges of the face.
DEFAULT_DRAIN_COUNT: Final = 2
DEFAULT_DRAIN_INSET_MM: Final = 3.0

_OVERFLOW_TEXT = re.compile(r"\bdo(es)? not fit\b", re.IGNORECASE)

FailureKind = Literal["permanent", "overflow", "print_unconfirmed"]


class StepFailure(Exception):
    """A step ended the build attempt in a way the runner acts on (see the module docstring).

    Deliberately not a PipelineError: it never leaves the executor; the build's outcome
    carries ``reason`` instead.
    """

    def __init__(self, kind: FailureKind, reason: str, *, cause: BaseException | None = None):
        super().__init__(reason)
        self.kind: FailureKind = kind
        self.reason = reason
        self.cause = cause


def is_layout_overflow(exc: BaseException) -> bool:
    """True when a layout/pack error says the models do not fit."""
    if not isinstance(exc, PermanentApiError):
        return False
    if exc.code in LAYOUT_OVERFLOW_CODES:
        return True
    return bool(_OVERFLOW_TEXT.search(exc.server_message or exc.message))


@dataclass
class BuildFacts:
    """What a build's steps found out; survives retries (one per build, owned by its thread)."""

    material_ml: float | None = None
    print_time_s: float | None = None
    #: SLS builds: the server's powder and cooling figures (see :func:`sls_figures`).
    sls: dict[str, float] | None = None
    job_id: str | None = None
    printer: str | None = None
    job_name: str | None = None
    job_key: str | None = None
    #: The print went out (or an earlier send was found): a retry never sends it again.
    printed: bool = False
    #: The print step held the build for an operator's approval (nothing was sent).
    held: bool = False
    #: The print step left the build waiting in the job store for a free printer (nothing
    #: was sent): the dispatch loop sends it.
    waiting: bool = False
    verify: str | None = None
    layout_calls: int = 0
    #: Models taken out of the scene because the layout did not fit them (indices into the
    #: build's models), to be carried on to a new build (executor/overflow.py).
    carried: list[int] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Step kinds whose operations are polled rather than awaited in one blocking request
    #: (:meth:`StepContext.waiting`).
    polled: set[str] = field(default_factory=set)
    #: Models taken out of the build with their case (``on_model_failure: drop_case``), by
    #: path, with the reason; a retry does not import them again.
    dropped: dict[str, str] = field(default_factory=dict)
    #: Run fields only the scene knows (:func:`scene_fields`): a retry that resumes from a
    #: checkpoint, without making a scene, keeps them.
    scene_fields: dict[str, str] = field(default_factory=dict)

    def add_output(self, path: Path) -> None:
        if path not in self.outputs:
            self.outputs.append(path)


@dataclass
class StepContext:
    """Everything a step needs; one per build attempt, used by one thread only.

    ``model_ids[i]`` is the server's id of ``build.models[i]`` (filled by the import, or from
    a loaded checkpoint). ``values`` are the build's template fields.

    ``quick_client`` (the same server) sends the build's operations as single blocking
    requests whose wait ends at the step's deadline: one request per operation instead of a
    start and a poll every second or so, and the runner's CPU per model is mostly its
    requests. Progress is reported per step (its start, and 1.0 when it ends).
    ``client`` sends them with ``?async=true`` and polls: the print (which the printing
    module follows by its own rules), and any step kind in ``facts.polled`` (a blocking call
    of that kind ran into the request limit, which ends any request, before its deadline).
    """

    client: PreFormClient
    recipe: Recipe
    build: BuildPlan
    values: Mapping[str, object]
    output_root: Path
    facts: BuildFacts
    dry_run: bool = False
    step_timeout_s: float = 900.0
    min_layout_spacing_mm: float = DEFAULT_MIN_LAYOUT_SPACING_MM
    progress: Callable[[float], None] = lambda _fraction: None
    scene_id: str | None = None
    model_ids: dict[int, str] = field(default_factory=dict)
    quick_client: PreFormClient | None = None
    #: Job key, printer policy, job store and verification of the print (None: none).
    print_hooks: BuildPrintHooks | None = None
    #: The server this attempt holds, recorded with a send so recovery can prove it is over.
    send_holder: SendHolder | None = None
    #: What to do when the layout still does not fit after the recipe's attempts and the
    #: recipe says ``on_overflow: split``: take models out and retry (None: hand the whole
    #: build back to the runner as an ``overflow`` failure).
    shed: Callable[[StepContext, PermanentApiError, Callable[[], None]], None] | None = None
    #: When an auto_layout does not fit: lay the scene out as the plan did and keep it if the
    #: server finds it clean (given the step's options and spacing; True: kept), before any
    #: retry or shed (:mod:`preform_pipeline.executor.planned_layout`). None: not tried.
    place_planned: Callable[[StepContext, Mapping[str, Any], float], bool] | None = None
    #: Told of each model dropped with its case (the hot folder fails its job at once).
    on_drop: Callable[[ModelInfo, str], None] | None = None
    #: Where the server reads a model's file from (a node's local copy of a shared file,
    #: ``RunOptions.import_from``); None: the model's own path.
    import_from: Callable[[Path], Path] | None = None
    #: ``output_root`` resolved (the runner resolves it once per run); None: resolved here.
    resolved_output_root: Path | None = None
    #: The saves leave ``.preform-staging`` in place for the run, which removes it when it
    #: ends (:func:`~.staging.remove_empty_staging`); False: each save removes it when empty.
    staging_kept: bool = False
    #: Resolves the model files' paths, each folder once per attempt (CPU per model).
    _folders: FolderResolver = field(
        default_factory=FolderResolver, init=False, repr=False, compare=False
    )

    def source(self, path: Path) -> str:
        """The file the server imports for the model at ``path``, resolved, as text (the
        client sends text: no Path is built for it)."""
        return self._folders.resolve_text(self.import_from(path) if self.import_from is not None
                                          else path)

    @property
    def quick(self) -> PreFormClient:
        return self.quick_client if self.quick_client is not None else self.client

    def waiting(self, kind: str) -> PreFormClient:
        """The client for the long operations of a ``kind`` step (see the class docstring)."""
        return self.client if kind in self.facts.polled else self.quick

    def deadline(self) -> float:
        return self.client.deadline_in(self.step_timeout_s)

    @property
    def scene(self) -> str:
        if self.scene_id is None:
            raise RuntimeError("no scene yet: create_scene or a checkpoint must come first")
        return self.scene_id

    def read_scene(self) -> Scene:
        return self.client.get_scene(self.scene, timeout=self.step_timeout_s)


StepFunction = Callable[[StepContext, StepNode, Mapping[str, Any]], None]


# -- template values ------------------------------------------------------------------------------


def model_values(model: ModelInfo, build_values: Mapping[str, object]) -> dict[str, object]:
    """Template fields of one model: the build's, its file's stem and name, case id, sidecar."""
    values: dict[str, object] = dict(build_values)
    values["stem"] = model.path.stem
    values["model"] = model.path.name
    if model.case_id is not None:
        values["case_id"] = model.case_id
    values.update(model.fields)
    return values


def shared_values(build: BuildPlan, build_values: Mapping[str, object]) -> dict[str, object]:
    """The build's fields plus every model field all of its models agree on."""
    per_model = [model_values(m, build_values) for m in build.models]
    values: dict[str, object] = dict(build_values)
    if per_model:
        first = per_model[0]
        for key, value in first.items():
            if key not in values and all(v.get(key) == value for v in per_model[1:]):
                values[key] = value
    return values


def import_names(build: BuildPlan) -> tuple[str, ...]:
    """A unique scene name per model, so that the models of a loaded checkpoint can be matched
    to their files by name, and a person looking at the scene sees whose part each one is:
    the file stem, after the case id when there is one (``C-1042 upper``), ``-2``... on
    repeats."""
    names: list[str] = []
    taken: set[str] = set()
    for model in build.models:
        stem = model.path.stem or "model"
        base = f"{model.case_id} {stem}" if model.case_id else stem
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        names.append(name)
    return tuple(names)


# -- helpers --------------------------------------------------------------------------------------


def _orientation(data: Mapping[str, Any]) -> Orientation:
    if "linear" in data:
        rows = [[float(v) for v in row] for row in data["linear"]]
        return TransformMatrix(tuple((r[0], r[1], r[2]) for r in rows))
    if "z_direction" in data:
        z = tuple(float(v) for v in data["z_direction"])
        x = tuple(float(v) for v in data["x_direction"])
        return DirectionVectors((z[0], z[1], z[2]), (x[0], x[1], x[2]))
    return EulerAngles(float(data["x"]), float(data["y"]), float(data["z"]))


def _position(data: Mapping[str, Any]) -> Position:
    return Position(float(data["x"]), float(data["y"]), float(data["z"]))


def _bounds(scene: Scene) -> dict[str, tuple[tuple[float, float, float], ...]]:
    found: dict[str, tuple[tuple[float, float, float], ...]] = {}
    for model in scene.models:
        box = model.bounding_box
        if box is not None:
            lo, hi = box.min_corner, box.max_corner
            found[model.id] = ((lo.x, lo.y, lo.z), (hi.x, hi.y, hi.z))
    return found


def _model_bounds(
    ctx: StepContext, scene: Scene, index: int
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    model_id = ctx.model_ids[index]
    box = _bounds(scene).get(model_id)
    if model_id not in scene.model_ids:
        # Not "no bounding box": the server's scene answers without the model it imported
        # (ids that changed between reads, a scene of another server): its fault, not the
        # model's, so the build is tried again rather than failed for good (session 47).
        raise ServerInternalError(
            f"scene {ctx.scene} no longer holds {ctx.build.models[index].path.name} (model "
            f"{model_id}) that the server imported into it; the scene now holds "
            f"{counted(len(scene.model_ids), 'model')} of other ids",
            hint="the build is retried, on another server if it happens again",
        )
    if box is None:
        raise StepFailure(
            "permanent",
            f"the server reported no bounding box for {ctx.build.models[index].path.name} "
            f"(model {model_id}); labels and drain holes are placed from it",
        )
    return box[0], box[1]


# -- scene and import -----------------------------------------------------------------------------


def create_scene(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    fps = options.get("fps_file")
    settings: SceneSettings | FpsSettings
    if fps is not None:
        path = Path(str(fps))
        settings = FpsSettings(path if path.is_absolute() else ctx.recipe.base_dir / path)
    else:
        settings = SceneSettings(
            machine_type=str(options["machine_type"]),
            material_code=str(options["material_code"]),
            layer_thickness_mm=options["layer_thickness_mm"],
            print_setting=options.get("print_setting"),
        )
    scene = ctx.client.create_scene(settings, timeout=ctx.step_timeout_s)
    ctx.scene_id = scene.id
    ctx.model_ids.clear()
    if fps is not None:
        ctx.facts.scene_fields = scene_fields(scene)
        ctx.values = {**ctx.values, **ctx.facts.scene_fields}


def scene_fields(scene: Scene) -> dict[str, str]:
    """The run fields only the scene knows: a recipe with an ``fps_file`` names no material
    (the file holds it, and only the server reads the file), so the run's ``material``, made
    before any scene, is empty; the scene's answer says which (nothing when it reports the
    file, not the settings). The machine is the recipe's own: planning needs it."""
    settings = scene.scene_settings
    if not isinstance(settings, SceneSettings) or not settings.material_code:
        return {}
    return {"material": settings.material_code}


def import_models(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    """Import every model file, then check once that the scene holds all of them.

    One check for the whole build (instead of the client's before/after read per file) keeps
    the cost per model at one request plus polling; a missing model is the same transient
    ``ImportNotAppliedError`` the client would raise.
    """
    import_some(ctx, options, range(len(ctx.build.models)))


def import_some(ctx: StepContext, options: Mapping[str, Any], indices: Sequence[int]) -> None:
    """Import the build's models at ``indices`` (the import step's options), then check once
    that the scene holds them (the final build's intake imports only the carried models)."""
    names = import_names(ctx.build)
    total = len(indices)
    unset = ImportOptions()
    for done, index in enumerate(indices, start=1):
        model = ctx.build.models[index]
        if str(model.path) in ctx.facts.dropped:
            continue  # taken out with its case on an earlier attempt
        import_options = ImportOptions(
            repair_behavior=options.get("repair_behavior", "ERROR"),
            # The units the planner decided (stated or judged), never the server's own guess.
            units=ImportUnits(model.units),
            scale=float(options["scale"]) if "scale" in options else unset.scale,
            lock=options.get("lock", unset.lock),
            name=names[index],
        )
        try:
            info = _import_one(ctx, model, import_options)
        except PermanentApiError:
            if model.path.exists() or not _drop_gone(ctx, index):
                raise
            continue
        ctx.model_ids[index] = info.id
        ctx.progress(done / total)
    # Only the ids are read from the scene: the rest of each model is not needed here.
    present = set(ctx.client.get_scene_model_ids(ctx.scene, timeout=ctx.step_timeout_s))
    missing = [
        ctx.build.models[i].path.name
        for i in indices
        if i in ctx.model_ids and ctx.model_ids[i] not in present
    ]
    if missing:
        raise ImportNotAppliedError(
            f"the server answered success for {counted(len(missing), 'import')} but scene "
            f"{ctx.scene} lacks {noun(len(missing), 'it', 'them')}: {', '.join(missing[:5])}",
            hint="the build is retried, on another server if it happens again",
        )


def _import_one(ctx: StepContext, model: ModelInfo, options: ImportOptions) -> SceneModel:
    """Import one model. A refusal for a node's local copy that is gone by then (removed
    under the import: the server could not read it) is not the model's fault: the copy is
    made again (``ctx.import_from``; it raises when it cannot be, saying why) and imported
    once more, so the build's other cases are not failed with it."""
    source = ctx.source(model.path)
    try:
        return ctx.quick.import_model(ctx.scene, source, options, deadline=ctx.deadline())
    except PermanentApiError as exc:
        if ctx.import_from is None or Path(source).is_file():
            raise  # the file was there: the server's answer stands
        if ctx.import_from(model.path) == model.path:
            raise  # the dropped file itself is gone, not a copy of it
        again = ctx.source(model.path)
        log.warning("import_copy_gone", model=model.path.name, copy=source,
                    error=exc.server_message or exc.message)
    return ctx.quick.import_model(ctx.scene, again, options, deadline=ctx.deadline())


#: Why a model left its build: its file was removed after the run planned it.
GONE_REASON: Final = ("the file was removed after this run planned it, so it was not "
                      "printed; put it back and the next run takes it")


def _drop_gone(ctx: StepContext, index: int) -> bool:
    """Take model ``index``, whose file is gone (deleted or moved away between the plan and
    its import: a person tidying a shared folder while cron's run works), out of the build with
    its case, so the build's other cases still print (session 48's trial: one deleted file
    failed a build of six, the others a cron minute late, with the server's "FILE_NOT_FOUND").

    False when the recipe says ``fail_build``, or no other case would be left: the build
    fails as before, with the server's answer."""
    gone = ctx.build.models[index]
    # Counted among the models still in the build: one that left before (another removed
    # file, its case) is no other case left, else a build of two removed files "succeeded"
    # with nothing on it (review of session 48).
    members: list[int] = []
    others: list[int] = []
    for i, model in enumerate(ctx.build.models):
        if str(model.path) not in ctx.facts.dropped:
            (members if _same_case(ctx, i, index) else others).append(i)
    if ctx.recipe.on_model_failure != "drop_case" or not others:
        return False
    message = case_step_message(gone.case_id, gone.path.name, IMPORT_MODELS, GONE_REASON)
    _take_out(ctx, members, message)
    log.warning("model_gone", case_id=gone.case_id, model=str(gone.path), models=len(members),
                left=len(others))
    return True


def _same_case(ctx: StepContext, i: int, index: int) -> bool:
    """Whether model ``i`` goes with model ``index`` when its case leaves the build: the same
    case, or, for a model of no case, itself alone."""
    case_id = ctx.build.models[index].case_id
    return ctx.build.models[i].case_id == case_id if case_id else i == index


def _take_out(ctx: StepContext, members: Sequence[int], message: str) -> None:
    """Take the models ``members`` of a dropped case out of the build: out of the scene (those
    imported), said with ``message`` (the build's facts, its warnings, ``ctx.on_drop``)."""
    for i in members:
        model = ctx.build.models[i]
        if i in ctx.model_ids:
            ctx.quick.delete_model(ctx.scene, ctx.model_ids.pop(i), timeout=ctx.step_timeout_s)
        ctx.facts.dropped[str(model.path)] = message
        if ctx.on_drop is not None:
            ctx.on_drop(model, message)
    ctx.facts.warnings.append(f"dropped from the build: {message}")


def scan_to_model(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    """Turn each dental scan into a solid model, one request per file, named like imports."""
    names = import_names(ctx.build)
    scan_options = ScanToModelOptions(
        **{k: v for k, v in options.items() if k not in ("files", "file")}
    )
    total = len(ctx.build.models)
    for index, model in enumerate(ctx.build.models):
        before = set(ctx.model_ids.values())
        result = ctx.waiting(node.kind).scan_to_model(
            ctx.scene, ctx.source(model.path), scan_options, deadline=ctx.deadline()
        )
        added = [mid for mid in result.scene.model_ids if mid not in before]
        if len(added) != 1:
            raise ImportNotAppliedError(
                f"scan-to-model of {model.path.name} added {len(added)} models, expected 1",
                hint="the build is retried, on another server if it happens again",
            )
        ctx.client.update_model(
            ctx.scene, added[0], ModelUpdate(name=names[index]), timeout=ctx.step_timeout_s
        )
        ctx.model_ids[index] = added[0]
        ctx.progress((index + 1) / total)


# -- job preparation ------------------------------------------------------------------------------


def auto_orient(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    ctx.waiting(node.kind).auto_orient(
        ctx.scene, AutoOrientOptions(**options), deadline=ctx.deadline(), progress=ctx.progress
    )


def auto_support(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    ctx.waiting(node.kind).auto_support(
        ctx.scene, AutoSupportOptions(**options), deadline=ctx.deadline(), progress=ctx.progress
    )


def hollow(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    """Hollow the scene's models in one call (the Local API hollows a selection).

    When the server answers that the operation failed for some models (its ``failures``),
    nothing was hollowed: under ``on_model_failure: drop_case`` each failing model's case
    leaves the build and the call is made again for the models left; otherwise (or when no
    other case would be left) the build fails as before. A model the server could hollow
    only partly comes back as a warning, named by its file, and stays in the build.
    """
    while True:
        try:
            report = ctx.waiting(node.kind).hollow(
                ctx.scene, HollowOptions(**options), deadline=ctx.deadline(),
                progress=ctx.progress,
            )
        except PermanentApiError as exc:
            failing = _failing_models(ctx, exc)
            reason = exc.server_message or exc.message
            if not failing or not all(
                index not in ctx.model_ids or drop_case_of(ctx, index, node.id, reason)
                for index in failing
            ):
                raise
            continue  # the failing cases are out of the scene: hollow the rest
        ctx.facts.warnings.extend(named_by_file(ctx, report.warnings))
        return


def _failing_models(ctx: StepContext, exc: PermanentApiError) -> list[int]:
    """The build's model indexes an operation's error answer lists under ``failures``."""
    body = exc.body if isinstance(exc.body, Mapping) else {}
    ids = body.get("failures")
    if not isinstance(ids, list):
        return []
    named = {str(i) for i in ids}
    return [index for index, model_id in ctx.model_ids.items() if model_id in named]


def named_by_file(ctx: StepContext, warnings: Iterable[str]) -> list[str]:
    """The server's warnings with every model id it names replaced by the model's file name
    (``Failed to hollow model with ID 3f2c...`` names ``bracket.stl``, or ``C-1042/upper.stl``
    in a case: :attr:`ModelInfo.shown`): a reason a person can act on names the file."""
    names = {
        model_id: ctx.build.models[index].shown
        for index, model_id in ctx.model_ids.items()
        if model_id
    }
    out: list[str] = []
    for warning in warnings:
        for model_id, name in names.items():
            warning = warning.replace(model_id, name)
        out.append(warning)
    return out


_FACE_AXES: Final[Mapping[str, tuple[int, float, int, int]]] = {
    # face: (normal axis, normal sign, spread axis, height axis)
    "front": (1, -1.0, 0, 2),
    "back": (1, 1.0, 0, 2),
    "left": (0, -1.0, 1, 2),
    "right": (0, 1.0, 1, 2),
    "top": (2, 1.0, 0, 1),
    "bottom": (2, -1.0, 0, 1),
}


def drain_hole_positions(
    bounds_min: Sequence[float],
    bounds_max: Sequence[float],
    face: str,
    count: int = DEFAULT_DRAIN_COUNT,
    inset_mm: float = DEFAULT_DRAIN_INSET_MM,
) -> list[tuple[tuple[float, float, float], tuple[float, float, float]]]:
    """``count`` drain holes on a face of the bounding box: ``(position, outward normal)``.

    Holes are spread evenly along the face's horizontal extent, ``inset_mm`` from its ends,
    and sit ``inset_mm`` above the lower edge of a side face (resin drains downwards when the
    part is lifted out) or on the centre line of the top or bottom face. ``largest_side`` is the
    larger vertical face (front when the model is at least as wide as deep, else right).
    """
    lo = [float(v) for v in bounds_min]
    hi = [float(v) for v in bounds_max]
    size = [h - low for low, h in zip(lo, hi, strict=True)]
    if face == "largest_side":
        face = "front" if size[0] >= size[1] else "right"
    if face not in _FACE_AXES:
        raise ValueError(f"drain hole face {face!r} is not one of {', '.join(_FACE_AXES)}")
    normal_axis, sign, spread, height = _FACE_AXES[face]
    inset = min(max(inset_mm, 0.0), size[spread] / 2)
    span = size[spread] - 2 * inset
    holes = []
    for k in range(count):
        point = [0.0, 0.0, 0.0]
        fraction = 0.5 if count == 1 else k / (count - 1)
        point[spread] = lo[spread] + inset + span * fraction
        if height == 2:
            point[height] = lo[height] + min(max(inset_mm, 0.0), size[height] / 2)
        else:
            point[height] = (lo[height] + hi[height]) / 2
        point[normal_axis] = hi[normal_axis] if sign > 0 else lo[normal_axis]
        normal = [0.0, 0.0, 0.0]
        normal[normal_axis] = sign
        holes.append(((point[0], point[1], point[2]), (normal[0], normal[1], normal[2])))
    return holes


def _perpendicular(normal: tuple[float, float, float]) -> tuple[float, float, float]:
    return (0.0, 1.0, 0.0) if abs(normal[0]) > 0.5 else (1.0, 0.0, 0.0)


def add_drain_holes(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    """Drain holes per model: from the placement rule, or explicit holes given to the model
    whose bounding box is nearest each hole."""
    placement = node.options.get("placement")
    common: dict[str, Any] = {
        "diameter_mm": float(options["diameter_mm"]),
        "depth_mm": options.get("depth_mm", "AUTO"),
        "create_plug": bool(options.get("create_plug", False)),
    }
    for key in ("outset_mm", "max_search_distance"):
        if key in options:
            common[key] = float(options[key])
    scene = ctx.read_scene()
    per_model: dict[int, list[DrainHole]] = {}
    if placement is not None:
        for index in sorted(ctx.model_ids):
            low, high = _model_bounds(ctx, scene, index)
            holes = drain_hole_positions(
                low,
                high,
                str(placement["face"]),
                int(placement.get("count", DEFAULT_DRAIN_COUNT)),
                float(placement.get("inset_mm", DEFAULT_DRAIN_INSET_MM)),
            )
            per_model[index] = [
                DrainHole(
                    position=Position(*point),
                    orientation=DirectionVectors(normal, _perpendicular(normal)),
                    **common,
                )
                for point, normal in holes
            ]
    else:
        boxes = {i: _model_bounds(ctx, scene, i) for i in sorted(ctx.model_ids)}
        for raw in options.get("drain_holes", []):
            position = _position(raw["position"])
            nearest = min(boxes, key=lambda i: _box_distance(boxes[i], position))
            hole = {**common, **{k: v for k, v in raw.items() if k not in ("position",)}}
            hole["orientation"] = _orientation(raw["orientation"])
            per_model.setdefault(nearest, []).append(DrainHole(position=position, **hole))
    for done, (index, model_holes) in enumerate(per_model.items(), start=1):
        if index not in ctx.model_ids:
            continue  # dropped with its case meanwhile
        try:
            result = ctx.quick.add_drain_holes(
                ctx.scene,
                DrainHoleOptions(model_id=ctx.model_ids[index], drain_holes=model_holes),
                deadline=ctx.deadline(),
            )
        except PermanentApiError as exc:
            if drop_case_of(ctx, index, node.id, exc.server_message or exc.message):
                continue
            raise
        ctx.facts.warnings.extend(named_by_file(ctx, result.warnings))
        ctx.progress(done / max(len(per_model), 1))


def _box_distance(
    box: tuple[tuple[float, float, float], tuple[float, float, float]], point: Position
) -> float:
    lo, hi = box
    deltas = [
        max(lo[i] - p, 0.0, p - hi[i]) for i, p in enumerate((point.x, point.y, point.z))
    ]
    return math.sqrt(sum(d * d for d in deltas))


def label(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    """One label per model: text rendered with the model's fields, placed by the recipe's
    rule (:func:`preform_pipeline.plan.labels.place_label`) or at its explicit position."""
    scene = ctx.read_scene()
    total = len(ctx.model_ids)
    for done, index in enumerate(sorted(ctx.model_ids), start=1):
        if index not in ctx.model_ids:
            continue  # dropped with its case meanwhile
        model = ctx.build.models[index]
        low, high = _model_bounds(ctx, scene, index)
        try:
            body = label_request(
                node.options,
                model_id=ctx.model_ids[index],
                bounds_min=low,
                bounds_max=high,
                values=model_values(model, ctx.values),
            )
        except LabelDoesNotFitError as exc:
            if _label_fit(node.options) != "skip":
                if drop_case_of(ctx, index, node.id, exc.message):
                    continue
                # Name the model: the build may hold many, each with its own text.
                raise LabelDoesNotFitError(f"{model.shown}: {exc.message}",
                                           hint=exc.hint) from None
            # The recipe prefers an unlabelled part to a failed build; say which one.
            ctx.facts.warnings.append(f"{model.shown} left unlabelled: {exc.message}")
            log.warning("label_skipped", model=str(model.path), reason=exc.message)
            ctx.progress(done / total)
            continue
        request = LabelOptions(
            model_id=body["model_id"],
            label=body["label"],
            position=_position(body["position"]),
            orientation=_orientation(body["orientation"]),
            font_size_mm=float(body["font_size_mm"]),
            depth_mm=float(body["depth_mm"]),
            application_mode=body.get("application_mode", "EMBOSS"),
        )
        try:
            report = ctx.quick.label(ctx.scene, request, deadline=ctx.deadline())
        except PermanentApiError as exc:
            if drop_case_of(ctx, index, node.id, exc.server_message or exc.message):
                continue
            raise
        ctx.facts.warnings.extend(named_by_file(ctx, report.warnings))
        ctx.progress(done / total)


def case_step_message(case_id: str | None, model: str, step: str, reason: str) -> str:
    """Why a case cannot be done, naming the case, the model and the step."""
    case = f"case {case_id}: " if case_id else ""
    return f"{case}model {model}: step {step}: {reason}"


def drop_case_of(ctx: StepContext, index: int, step: str, reason: str) -> bool:
    """Take the case of model ``index`` out of the build after it failed ``step``
    (``on_model_failure: drop_case``): its models leave the scene, the build goes on.

    False when the recipe says ``fail_build``, or when no other case would be left (the
    caller then fails the build as before).
    """
    failed = ctx.build.models[index]
    members = [i for i in ctx.model_ids if _same_case(ctx, i, index)]
    if ctx.recipe.on_model_failure != "drop_case" or len(members) == len(ctx.model_ids):
        return False
    # The server's reason may name models by their ids: the person reading it needs files.
    # Its own model by the file's name alone, as the message names its case before it.
    own = ctx.model_ids.get(index)
    (reason,) = named_by_file(ctx, [reason.replace(own, failed.path.name) if own else reason])
    message = case_step_message(failed.case_id, failed.path.name, step, reason)
    _take_out(ctx, members, message)
    log.warning("case_dropped", case_id=failed.case_id, model=failed.path.name, step=step,
                reason=reason, models=len(members), left=len(ctx.model_ids))
    return True


def _label_fit(options: Mapping[str, Any]) -> str:
    placement = options.get("placement")
    return str(placement.get("fit", "shrink")) if isinstance(placement, Mapping) else "shrink"


def _layout_call(ctx: StepContext, kind: str, options: dict[str, Any]) -> None:
    if kind == "auto_layout":
        if isinstance(options.get("custom_bounds"), Mapping):
            options["custom_bounds"] = CustomBounds(**options["custom_bounds"])
        ctx.waiting(kind).auto_layout(
            ctx.scene, AutoLayoutOptions(**options), deadline=ctx.deadline(),
            progress=ctx.progress,
        )
    elif kind == "auto_pack":
        ctx.waiting(kind).auto_pack(
            ctx.scene, AutoPackOptions(**options), deadline=ctx.deadline(), progress=ctx.progress
        )
    else:
        packing = options.get("packing_type")
        if isinstance(packing, Mapping):
            options["packing_type"] = packing.get("packing_type")
        if "cage_label" in options:
            options["cage_label"] = render_template(str(options["cage_label"]), ctx.values)
        ctx.client.pack_and_cage(PackAndCageOptions(**options), timeout=ctx.step_timeout_s)


def _may_shed(ctx: StepContext, kind: str) -> bool:
    return (
        ctx.shed is not None
        and kind == "auto_layout"
        and ctx.recipe.batching.on_overflow == "split"
        and len(ctx.model_ids) > 1
    )


def layout(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    """auto_layout / auto_pack / pack_and_cage with the recipe's layout attempts.

    When an auto_layout first says the models do not fit, the plan's own layout is tried
    (``ctx.place_planned``) and kept when the server finds it clean. Otherwise the next
    attempt halves ``model_spacing_mm``
    (from the step's value, or the server's 2 mm default), never below
    :data:`DEFAULT_MIN_LAYOUT_SPACING_MM`. A failed layout leaves the scene as it was, so the
    retry uses the same scene. After the last attempt (or once the spacing cannot shrink any
    more) an auto_layout with ``on_overflow: split`` takes models out of the scene until the
    rest fits (``ctx.shed``, :mod:`preform_pipeline.executor.overflow`); otherwise
    :class:`StepFailure` ``overflow`` hands the build back to the runner, which fails it.
    """
    attempts = max(1, ctx.recipe.batching.layout_attempts)
    spacing = float(options.get("model_spacing_mm", DEFAULT_SPACING_MM))
    floor = min(ctx.min_layout_spacing_mm, spacing)
    current = dict(options)
    for attempt in range(1, attempts + 1):
        ctx.facts.layout_calls += 1
        try:
            _layout_call(ctx, node.kind, dict(current))
            return
        except PermanentApiError as exc:
            if not is_layout_overflow(exc):
                raise
            if (
                attempt == 1
                and node.kind == "auto_layout"
                and ctx.place_planned is not None
                and ctx.place_planned(ctx, options, spacing)
            ):
                return  # the plan's own layout, at the recipe's spacing, found clean
            shrunk = max(floor, spacing / 2)
            if attempt == attempts or shrunk >= spacing:
                if _may_shed(ctx, node.kind):
                    assert ctx.shed is not None
                    # At the recipe's own spacing: carrying models on beats crowding them.
                    ctx.shed(ctx, exc, lambda: _layout_call(ctx, node.kind, dict(options)))
                    return
                count = len(ctx.build.models)
                raise StepFailure(
                    "overflow",
                    f"{counted(count, 'model')} {noun(count, 'does', 'do')} not fit after "
                    f"{attempt} layout {noun(attempt, 'attempt')} (last spacing {spacing:g} mm): "
                    f"{exc.server_message or exc.message}",
                    cause=exc,
                ) from exc
            log.info(
                "layout_retry",
                attempt=attempt + 1,
                of=attempts,
                spacing_mm=shrunk,
                previous_spacing_mm=spacing,
                reason=exc.server_message or exc.message,
            )
            spacing = shrunk
            current["model_spacing_mm"] = spacing


# -- checks, estimates, outputs -------------------------------------------------------------------


def validate(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    """Print validation (and interferences, bounds): fail on the findings ``fail_on`` lists;
    the others are recorded as warnings."""
    fail_on = set(node.options.get("fail_on") or ())
    # Named with its case: in a dental lab every case holds an upper.stl, and "interferences:
    # upper.stl / upper.stl" did not say which cases collide (session 47's trial).
    names = {ctx.model_ids[i]: ctx.build.models[i].shown for i in ctx.model_ids}
    findings: dict[str, list[str]] = {}
    validation = ctx.waiting(node.kind).get_print_validation(ctx.scene, deadline=ctx.deadline())
    for model_id, result in validation.per_model_results.items():
        name = names.get(model_id, model_id)
        if result.undersupported:
            findings.setdefault("undersupported", []).append(name)
        if result.unsupported_minima:
            findings.setdefault("unsupported_minima", []).append(name)
        if result.cups:
            findings.setdefault("cups", []).append(name)
    ctx.progress(0.5)
    if "interferences" in fail_on:
        offset = node.options.get("collision_offset_mm")
        pairs = ctx.client.get_interferences(
            ctx.scene,
            **({"collision_offset_mm": float(offset)} if offset is not None else {}),
            timeout=ctx.step_timeout_s,
        )
        for a, b in pairs:
            findings.setdefault("interferences", []).append(
                f"{names.get(a, a)} / {names.get(b, b)}"
            )
    scene = ctx.read_scene()
    for model in scene.models:
        if model.in_bounds is False:
            findings.setdefault("out_of_bounds", []).append(names.get(model.id, model.id))
    failing = {k: v for k, v in findings.items() if k in fail_on}
    for kind, items in findings.items():
        if kind not in failing:
            ctx.facts.warnings.append(f"validation: {kind}: {', '.join(items[:10])}")
    if failing:
        text = "; ".join(
            f"{kind}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
            for kind, items in sorted(failing.items())
        )
        raise StepFailure("permanent", f"validation failed ({text})")


def sls_figures(usage: SlsMaterialUsage, times: PrintTimeEstimate) -> dict[str, float]:
    """A powder build's figures as reports give them: packing density by volume (sintered
    over the whole bed) and by mass, total and sintered powder (ml and kg), print time, and
    cooling in the printer until the build can be removed and on to room temperature."""
    figures = {
        "packing_density": (
            usage.total_sintered_powder_ml / usage.total_powder_ml
            if usage.total_powder_ml > 0 else 0.0
        ),
        "mass_packing_density": usage.mass_packing_density,
        "total_powder_ml": usage.total_powder_ml,
        "total_powder_kg": usage.total_powder_kg,
        "sintered_powder_ml": usage.total_sintered_powder_ml,
        "sintered_powder_kg": usage.total_sintered_powder_kg,
    }
    for key, value in (
        ("print_time_s", times.total_print_time_s),
        ("cool_to_removal_s", times.cool_to_removal_time_s),
        ("cool_to_room_temperature_s", times.additional_cool_to_room_temp_time_s),
    ):
        if value is not None:
            figures[key] = value
    return figures


def estimate(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    """Print time and material; a recipe limit (max_print_time_s, max_material_ml) that is
    exceeded fails the build."""
    result = ctx.waiting(node.kind).estimate_print_time(ctx.scene, deadline=ctx.deadline())
    ctx.facts.print_time_s = result.total_print_time_s
    usage = ctx.read_scene().material_usage
    if isinstance(usage, SlaMaterialUsage):
        ctx.facts.material_ml = usage.volume_ml
    elif usage is not None:
        ctx.facts.material_ml = usage.total_sintered_powder_ml
        ctx.facts.sls = sls_figures(usage, result)
    limit_time = node.options.get("max_print_time_s")
    limit_ml = node.options.get("max_material_ml")
    problems = []
    time_s = ctx.facts.print_time_s
    if limit_time is not None and time_s is not None and time_s > float(limit_time):
        problems.append(f"estimated print time {time_s:.0f} s exceeds {float(limit_time):g} s")
    volume = ctx.facts.material_ml
    if limit_ml is not None and volume is not None and volume > float(limit_ml):
        problems.append(f"material {volume:.1f} ml exceeds {float(limit_ml):g} ml")
    if problems:
        raise StepFailure("permanent", "; ".join(problems))


def _save(ctx: StepContext, template: str, write: Callable[[Path], None]) -> Path:
    """The output ``write`` saves, placed at its rendered path or the first free ``-N``
    (:mod:`.outputs`: an existing file is never replaced, and the build's ``.form``,
    screenshot and report rendered beside one another take one ``-N``); the path it has. The
    server writes into our staging folder (:mod:`.staging`): one that dies mid-save leaves
    its temporaries where we can remove them, and no name taken."""
    # Resolved below the resolved root, as resolve() would; placing makes a missing folder.
    root = ctx.resolved_output_root or ctx.output_root.resolve()
    outputs = ctx.recipe.outputs
    fellows: list[Path] = []
    for other in (outputs.form, outputs.screenshot, outputs.report):
        if other == template:
            continue
        try:
            fellows.append(resolved_output_path(other, ctx.values, root))
        except TemplateError:
            # The report's own writing says so (build_report_failed) and the build stands: a
            # save is not failed for it. The ``.json`` beside is checked all the same.
            continue
    return save_staged(resolved_output_path(template, ctx.values, root), root, write,
                       fellows=fellows, ours=ctx.facts.outputs, keep_staging=ctx.staging_kept)


def save_form(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    def write(path: Path) -> None:
        # Writing the file is short: one blocking request, no polls (bounded by the step).
        ctx.quick.save_form(ctx.scene, path, timeout=ctx.step_timeout_s,
                            deadline=ctx.deadline(), progress=ctx.progress)

    ctx.facts.add_output(_save(ctx, ctx.recipe.outputs.form, write))


def screenshot(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    values = dict(options)
    fly = values.get("flyaround_transform")
    if isinstance(fly, Mapping):
        values["flyaround_transform"] = FlyaroundTransform(
            transform=[CameraAngle(float(a["yaw"]), float(a["pitch"])) for a in fly["transform"]],
            **{k: v for k, v in fly.items() if k != "transform"},
        )
    if values.get("models", ALL_MODELS) != ALL_MODELS:
        values["models"] = ALL_MODELS

    def write(written: Path) -> None:
        ctx.waiting(node.kind).save_screenshot(
            ctx.scene, written, ScreenshotOptions(**values), deadline=ctx.deadline(),
            progress=ctx.progress,
        )

    path = _save(ctx, ctx.recipe.outputs.screenshot, write)
    if path.suffix.lower() == ".png" and "flyaround_transform" not in values:
        _add_legend(ctx, path, values)
    ctx.facts.add_output(path)


def _add_legend(ctx: StepContext, path: Path, options: Mapping[str, Any]) -> None:
    """Number the models on the screenshot and add the legend strip (:mod:`..legend`).

    A screenshot without a legend is still useful: a failure here is a warning, not a
    failed build.
    """
    try:
        placed = {m.id: m for m in ctx.read_scene().models}
        marks: list[ModelMark] = []
        for i, model in enumerate(ctx.build.models):
            if i not in ctx.model_ids:
                # Dropped with its case: not on this platform. Listed, it had no box, and
                # one model without a box leaves every model unmarked.
                continue
            info = placed.get(ctx.model_ids[i])
            box = None if info is None else info.bounding_box
            marks.append(ModelMark(
                number=len(marks) + 1,
                text=model.shown,
                box=None if box is None else (
                    (box.min_corner.x, box.min_corner.y, box.min_corner.z),
                    (box.max_corner.x, box.max_corner.y, box.max_corner.z),
                ),
                supported=bool(info is not None and info.has_supports),
            ))
        view = CameraView(
            yaw_deg=float(options.get("yaw", DEFAULT_YAW_DEG)),
            pitch_deg=float(options.get("pitch", DEFAULT_PITCH_DEG)),
            view_type=str(options.get("view_type", "ZOOM_ON_MODELS")),
            crop_to_models=bool(options.get("crop_to_models", True)),
        )
        add_legend(path, title=ctx.build.name, subtitle=str(ctx.values.get("date", "")),
                   marks=marks, view=view)
    except (OSError, ApiError, ValueError) as exc:
        ctx.facts.warnings.append(f"screenshot legend not drawn: {exc}")
        log.warning("screenshot_legend_failed", path=str(path), error=str(exc))


def print_build(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    """Send the build to its printer, durable before acting.

    The print hooks (the job store, through :mod:`preform_pipeline.printing`) record "sending"
    before the request goes out. A refusal (4xx, FAILED) means nothing was queued; any other
    failure after that point means the job may exist, so the build becomes
    ``print_unconfirmed`` and is never resent automatically.
    """
    if ctx.dry_run:
        ctx.facts.warnings.append("print skipped (--dry-run)")
        log.info("print_skipped", reason="dry run")
        return
    target = options["printer"]
    if isinstance(target, (list, tuple)):  # any of several printers: one string on the way
        target = PRINTER_LIST_SEPARATOR.join(str(t) for t in target)
    printer = render_template(str(target), ctx.values)
    job_name = render_template(str(options.get("job_name", DEFAULT_JOB_NAME)), ctx.values)
    hooks = ctx.print_hooks
    if hooks is not None:
        # printer: auto, the job key in the name, the job store written before the send.
        printer = hooks.resolve_printer(printer, ctx.recipe, ctx.client)
        job_name = hooks.job_name(job_name)
        ctx.facts.job_key = hooks.job_key
        ctx.facts.printer, ctx.facts.job_name = printer, job_name
        form = next((p for p in reversed(ctx.facts.outputs) if p.suffix.lower() == ".form"),
                    None)
        found = hooks.before_send(job_name, printer, holder=ctx.send_holder, form_path=form)
        if found == PRINT_WAITING:  # dispatch sends it when a matching printer is free
            ctx.facts.warnings.append(f"waiting in the job store for a free printer "
                                      f"({printer}); sent from its saved .form when one is "
                                      "free (by watch, or by the next run)")
            ctx.facts.waiting = True
            log.info("print_waiting", printer=printer, job_name=job_name)
            return
        if found == PRINT_HELD:  # not a printer but a person is what it waits for first
            ctx.facts.warnings.append(
                f"held in the job store for an operator's approval (on the dashboard, or "
                f"`jobs approve {hooks.job_key}`); once approved it waits for a free printer "
                f"({printer}) and is sent from its saved .form")
            ctx.facts.held = True
            log.info("print_held", printer=printer, job_name=job_name)
            return
        if found is not None:  # an earlier, interrupted send did reach the printer
            ctx.facts.job_id = found
            ctx.facts.printed = True
            log.info("print_found", printer=printer, job_name=job_name, job_id=found)
            return
    request = PrintOptions(
        printer=printer,
        job_name=job_name,
        **{
            k: options[k]
            for k in ("print_now", "find_printer_timeout_seconds")
            if k in options
        },
    )
    ctx.facts.printer, ctx.facts.job_name = printer, job_name
    log.info("print_sending", printer=printer, job_name=job_name)
    try:
        result = ctx.client.print_scene(ctx.scene, request, deadline=ctx.deadline())
    except PermanentApiError as exc:
        if hooks is not None:
            hooks.refused(str(exc))
        raise
    except SceneLostError as exc:
        # An answer, not silence: the server has no scene to print, so nothing was queued,
        # as with a refusal (the print was begun in the store: this build is not retried).
        reason = f"print refused: {exc.message}"  # without the retry the hint speaks of
        if hooks is not None:
            hooks.refused(reason)
        raise StepFailure("permanent", reason, cause=exc) from exc
    except (ApiError, OSError) as exc:
        reason = (
            # "No usable answer": none came, or one that broke the contract (a 200 holding an
            # error, an unreadable operation status: session 47's fuzzer), which "no answer"
            # said untruly.
            f"the print request to {printer} got no usable answer ({error_text(exc)}); "
            "the job may have been queued: check the printer before sending it again"
        )
        ctx.facts.printed = True  # may exist: never sent again by a retry
        if hooks is not None:
            hooks.unconfirmed(reason)
        raise StepFailure("print_unconfirmed", reason, cause=exc) from exc
    ctx.facts.job_id = result.job_id
    if hooks is not None:
        hooks.sent(result.job_id, printer)
    ctx.facts.printed = True
    log.info("print_sent", printer=printer, job_name=job_name, job_id=result.job_id)


def verify(ctx: StepContext, node: StepNode, options: Mapping[str, Any]) -> None:
    """Recorded as pending: once every build is sent, the run's shared poller follows the
    print through the Web API (``print_hooks.after_run``); without credentials, skipped."""
    if ctx.dry_run:
        ctx.facts.verify = VERIFY_SKIPPED_DRY_RUN
    elif ctx.print_hooks is None or not ctx.print_hooks.verifies:
        ctx.facts.verify = VERIFY_SKIPPED_NO_CREDENTIALS
    else:
        ctx.facts.verify = VERIFY_PENDING


def preflight(recipe: Recipe, build: BuildPlan, values: Mapping[str, object]) -> None:
    """Render every template the build will need (label text per model, job name and print
    target, cage label, output paths) before a server is leased, so that a missing field
    fails the build at once instead of after its expensive steps.

    Raises :class:`~preform_pipeline.errors.TemplateError` naming the template and field.
    """
    for node in build.graph:
        if node.kind == "label":
            for model in build.models:
                render_template(str(node.options["text"]), model_values(model, values))
        elif node.kind == "print":
            for key in ("printer", "printer_ip", "fleet_group"):
                if key in node.options:
                    render_template(str(node.options[key]), values)
            render_template(str(node.options.get("job_name", DEFAULT_JOB_NAME)), values)
        elif node.kind == "pack_and_cage" and "cage_label" in node.options:
            render_template(str(node.options["cage_label"]), values)
        elif node.kind in ("save_form", "screenshot"):
            template = recipe.outputs.form if node.kind == "save_form" else (
                recipe.outputs.screenshot
            )
            render_template(template, values)


#: The function that runs each step kind (synthetic nodes included).
STEP_FUNCTIONS: Final[Mapping[str, StepFunction]] = {
    CREATE_SCENE: create_scene,
    IMPORT_MODELS: import_models,
    SCAN_TO_MODEL: scan_to_model,
    "auto_orient": auto_orient,
    "auto_support": auto_support,
    "hollow": hollow,
    "add_drain_holes": add_drain_holes,
    "label": label,
    "auto_layout": layout,
    "auto_pack": layout,
    "pack_and_cage": layout,
    "validate": validate,
    "estimate": estimate,
    "save_form": save_form,
    "screenshot": screenshot,
    "print": print_build,
    "verify": verify,
}


def run_step(ctx: StepContext, node: StepNode, step: Step | None) -> None:
    """Run one node of the build's graph. ``step`` is the recipe step it came from (None for
    the synthetic nodes), whose :meth:`~Step.api_options` become the request options."""
    function = STEP_FUNCTIONS.get(node.kind)
    if function is None:
        raise StepFailure("permanent", f"step {node.id!r}: unknown step kind {node.kind!r}")
    options: Mapping[str, Any] = step.api_options() if step is not None else dict(node.options)
    function(ctx, node, options)
