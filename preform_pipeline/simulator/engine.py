"""The simulated PreFormServer's engine: scenes, models, layout, estimates, devices, printing.

:class:`SimEngine` implements :class:`~preform_pipeline.simulator.protocol.SceneEngine`. The
HTTP server calls :meth:`SimEngine.call` with the contract's operationId in snake_case, the
path parameters and the JSON body; the engine answers the response body (JSON-ready) or raises
:class:`~preform_pipeline.simulator.protocol.SimError`. Operations run synchronously; the
server provides ``?async=true`` on top.

The rules each operation follows (geometry, estimates, fleet files) are documented in
``docs/simulator-engine.md``; the pieces live in sibling modules: :mod:`.scene` (state and the
LRU scene cache), :mod:`.estimates`, :mod:`.layout`, :mod:`.meshops`, :mod:`.formfile`,
:mod:`.screenshot`, :mod:`.options`, :mod:`.fleet`, :mod:`.devices`.

Thread safety: each scene has its own lock (held for the whole operation on it), the scene
cache, the account and the fleet files have theirs; operations on different scenes run in
parallel.
"""

from __future__ import annotations

import importlib.util
import re
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from preform_pipeline.catalogue import DEFAULT_CATALOGUE, Catalogue, MachineType
from preform_pipeline.errors import ModelFileError
from preform_pipeline.logging import get_logger
from preform_pipeline.wording import counted

from .bodies import Body, bad_body, euler_of, existing_file, orientation_matrix, writable_target
from .devices import printer_status
from .fleet import FleetState, SimPrinter
from .fleetusers import join
from .options import resolve_settings, validate_settings, write_fps
from .printing import device_bodies, find_target, job_record
from .protocol import Json, ProgressCallback, SimError, WorkEstimate
from .routes import ROUTES
from .scene import (
    DEFAULT_SCENE_ID,
    DEFAULT_SCENE_SETTINGS,
    LOCKS,
    Scene,
    SceneStore,
    SimModel,
    new_id,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from preform_pipeline.geometry import Mesh

    from .layout import Bounds2D, Move

# numpy, the mesh code and the modules that need them (estimates, layout, editing, contact,
# meshops, formfile, screenshot) are imported by the operations that use them, not here: the
# engine is built before READY FOR INPUT (its fleet is set then), and most simulators the
# suite and a pool start are asked GET / and little more. The first operation on a model pays
# the import (~0.1 s of CPU, once), after its modelled latency is spent (server.py).

__all__ = [
    "DEFAULT_CAGE_BAR_MM",
    "DEFAULT_DENTAL_TILT_DEG",
    "DEFAULT_DISTANCE_TO_CAGE_MM",
    "LATE_IMPORTS",
    "MAX_DUPLICATES",
    "MAX_REACH_MM",
    "SIMULATED_API_VERSION",
    "SimEngine",
]

log = get_logger(__name__)

#: What ``GET /`` answers: the Local API version whose contract the simulator serves.
SIMULATED_API_VERSION: Final = "0.9.12"
DEFAULT_DENTAL_TILT_DEG: Final = 0
DEFAULT_CAGE_BAR_MM: Final = 2.0
DEFAULT_DISTANCE_TO_CAGE_MM: Final = 2.0
#: Upper bound on one duplicate request: more copies than any platform holds.
MAX_DUPLICATES: Final = 500
#: Farthest a placed model may reach from the platform's centre, in mm: a kilometre, a
#: thousand times any build volume. Past it (a scale or position of 1e308) a scene's numbers
#: stop being finite and every later read of the scene would fail.
MAX_REACH_MM: Final = 1_000_000.0

#: The modules the engine's operations (and scene.py, bodies.py, printing.py) import when first
#: used, and the modules of the package those import in turn at their top (``layout`` brings
#: ``outline_pack``, ``readers`` the format readers). Each is found, not imported, as an engine
#: is built: a missing one (a broken install) still fails the start loudly, as it did when they
#: were imported here; whether each one imports cleanly is known at the first operation that
#: uses it. A hand list: ``tests/unit/simulator/test_engine_late_imports.py`` imports each one
#: after a start and fails on any module it brings that is not here.
LATE_IMPORTS: Final = (
    "numpy",
    "preform_pipeline.geometry",
    "preform_pipeline.geometry._checks",
    "preform_pipeline.geometry.analysis",
    "preform_pipeline.geometry.bounded",
    "preform_pipeline.geometry.mesh",
    "preform_pipeline.geometry.numerals",
    "preform_pipeline.geometry.obj",
    "preform_pipeline.geometry.orientation",
    "preform_pipeline.geometry.projection",
    "preform_pipeline.geometry.readers",
    "preform_pipeline.geometry.sniff",
    "preform_pipeline.geometry.stl",
    "preform_pipeline.geometry.threemf",
    "preform_pipeline.geometry.transforms",
    "preform_pipeline.simulator.contact",
    "preform_pipeline.simulator.editing",
    "preform_pipeline.simulator.estimate_rules",
    "preform_pipeline.simulator.estimates",
    "preform_pipeline.simulator.formfile",
    "preform_pipeline.simulator.layout",
    "preform_pipeline.simulator.meshops",
    "preform_pipeline.simulator.outline_pack",
    "preform_pipeline.simulator.screenshot",
)

_REPAIR = ("REPAIR", "ERROR", "IGNORE")
_UNITS = ("MILLIMETERS", "INCHES")
_VIEW_TYPES = ("ZOOM_ON_MODELS", "FULL_BUILD_VOLUME", "FULL_PLATFORM_WIDTH")
_RAFT_TYPES = ("FULL_RAFT", "MINI_RAFT", "MINI_RAFTS_ON_BP")
_PACKING_TYPES = ("PACK_NORMAL", "PACK_VOLUME", "PACK_HEIGHT", "PACK_NONE")
_FIRMWARE_SUFFIXES = (".formware", ".formware2")
_OPERATION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ROTATION_LOCKED = ("LOCKED_ROTATION_FREE_TRANSLATION", "FULLY_LOCKED")
#: Operations on the one model named in the path: priced by that model alone.
_ONE_MODEL_OPERATIONS = frozenset(
    {"get_model", "update_model", "delete_model", "duplicate_model", "label_part",
     "add_drain_holes"}
)

#: Operations on a scene: the path names it, or (the contract's deprecated routes) it is the
#: most recently created one. Either way the scene's models are the work they are priced by.
_SCENE_OPERATIONS = frozenset(r.operation_id for r in ROUTES if "{scene_id}" in r.segments)

#: Operations that replace the default scene, discarding its models: priced by those models
#: (no scene id in their path, and not the newest scene's: always the default one's).
_DEFAULT_SCENE_OPERATIONS = frozenset({"create_default_scene", "delete_default_scene"})

Handler = Callable[[dict[str, str], Any, ProgressCallback | None], Any]


#: How close to 1 the z-to-z entry of the change of orientation must be for the change to
#: count as a turn about z only (float noise of Euler angles sent as text).
_UPRIGHT_COS: Final = 1.0 - 1e-9


def _turn_about_z(model: SimModel, rotation: npt.NDArray[np.float64]) -> bool:
    """Whether ``rotation`` is the model's orientation turned about the platform's z axis
    only. Such a turn keeps the supports (they stand upright and turn with the model, as
    this server's own auto-layout turns supported models); a tilt does not."""
    from preform_pipeline.geometry import euler_matrix

    change = rotation @ euler_matrix(*model.orientation).T
    return bool(change[2, 2] >= _UPRIGHT_COS)


def _check_reach(model: SimModel) -> None:
    """400 for a model placed beyond :data:`MAX_REACH_MM` (or at no finite place at all)."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):  # inf and nan are what is looked for
        low, high = model.bounds()
    reach = float(max(np.abs(low).max(), np.abs(high).max()))
    if not reach <= MAX_REACH_MM:  # also catches inf and nan
        raise bad_body(
            "$",
            f"the model would reach {reach:g} mm from the platform's centre; keep its scale "
            f"and position within {MAX_REACH_MM:,.0f} mm",
        )


def _find_late_imports() -> None:
    """ModuleNotFoundError naming each of :data:`LATE_IMPORTS` that cannot be found."""
    missing = [name for name in LATE_IMPORTS if importlib.util.find_spec(name) is None]
    if missing:
        raise ModuleNotFoundError(
            f"the simulator's engine needs {', '.join(missing)}, which cannot be found: "
            "reinstall preform-pipeline (pip install preform-pipeline)",
            name=missing[0],
        )


def _progress(progress: ProgressCallback | None, done: int, total: int) -> None:
    if progress is not None and total > 0:
        progress(min(1.0, done / total))


def _flyaround(fly: Body) -> tuple[list[tuple[float, float]], int]:
    """The camera angles of a flyaround (``{yaw, pitch}``, at least two) and its frame count:
    ``frame_count`` rounded (one frame per angle when absent). ``ensure_constant_size`` is
    read and always holds: an animation's frames share one canvas."""
    from .screenshot import MAX_FLYAROUND_FRAMES

    fly.only(("transform", "frame_count", "ensure_constant_size"))
    raw = fly.raw("transform")
    if not isinstance(raw, list) or len(raw) < 2:
        raise bad_body(fly.at("transform"), "expected an array of at least 2 {yaw, pitch} angles")
    angles = []
    for i, item in enumerate(raw):
        angle = Body(item, f"{fly.at('transform')}[{i}]")
        angle.only(("yaw", "pitch"))
        angles.append(
            (angle.req_number("yaw"), angle.req_number("pitch", minimum=-90.0, maximum=90.0))
        )
    frames = fly.number("frame_count", len(angles), minimum=1.0, maximum=MAX_FLYAROUND_FRAMES)
    assert frames is not None  # the default
    fly.boolean("ensure_constant_size")
    return angles, round(frames)


def _estimated_triangles(path_text: Any) -> int:
    """Triangles a model file probably holds, from its size alone (no parsing)."""
    if not isinstance(path_text, str):
        return 0
    try:
        size = Path(path_text).stat().st_size
    except (OSError, ValueError):  # ValueError: a NUL in the path, refused by the operation
        return 0
    per_triangle = 50 if path_text.lower().endswith((".stl", ".form")) else 120
    return max(0, size - 84) // per_triangle


class SimEngine:
    """A drop-in PreFormServer's state and behaviour, driven one operation at a time."""

    def __init__(
        self,
        *,
        scene_cache_size: int = 100,
        fleet_dir: Path | None = None,
        work_dir: Path | None = None,
        catalogue: Catalogue = DEFAULT_CATALOGUE,
        raft_border_mm: float | None = None,
        declared_printers: Sequence[Json] | None = None,
        print_time_scale: float = 0.0,
    ) -> None:
        _find_late_imports()
        self.catalogue = catalogue
        # A full raft's reach in layouts; another value than PreForm's models a server that
        # disagrees with the planner (tests of carrying overflow on).
        self.raft_border_mm = raft_border_mm
        #: The fleet the settings declare (None: the fleet folder's, or the default fleet).
        self.declared_printers = (
            None if declared_printers is None
            else tuple(SimPrinter.from_json(p) for p in declared_printers)
        )
        #: A printer is busy for a print's estimated time times this (0: free at once).
        self.print_time_scale = print_time_scale
        self.work_dir = work_dir
        self.scenes = SceneStore(scene_cache_size, work_dir / "scene-cache" if work_dir else None)
        self._fleet_dir = fleet_dir
        self._fleet: FleetState | None = None
        #: Leaves the fleet folder (fleetusers.py) once: at close, or when the engine is
        #: collected (an engine of a longer-lived process that is never closed).
        self._leave: weakref.finalize[[], SimEngine] | None = None
        self._fleet_lock = threading.Lock()
        self._default_lock = threading.Lock()
        self._account_lock = threading.Lock()
        self._user: Json | None = None
        if self.declared_printers is not None or fleet_dir is not None:
            # The fleet is set now, before READY FOR INPUT, not at the first fleet request: a
            # Dashboard simulator on the same fleet folder asked first would show printers
            # this server then refuses (PRINTER_NOT_FOUND): the default ones before a
            # declaration, or an earlier rehearsal's declared ones before the default's return.
            _ = self.fleet

    def close(self) -> None:
        """Leave the fleet folder (fleetusers.py): another fleet may start on it now. A
        simulator process that ends leaves it without this (its record's lock goes with it);
        an engine made in a process that goes on calls it."""
        if self._leave is not None:
            self._leave()

    # -- protocol -------------------------------------------------------------------------------

    def _handler(self, operation_id: str) -> Handler:
        method = None
        if _OPERATION_NAME.match(operation_id):
            method = getattr(self, f"_op_{operation_id}", None)
        if method is None:
            raise SimError(404, "NOT_FOUND", f"the simulator has no operation {operation_id!r}")
        handler: Handler = method
        return handler

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        handler = self._handler(operation_id)
        try:
            return handler(params, body, progress)
        except SimError:
            raise
        except ModelFileError as exc:
            raise SimError(400, "INVALID_MODEL_FILE", f"{exc.path}: {exc.reason}") from exc
        except Exception as exc:
            log.exception("engine_operation_failed", operation=operation_id)
            raise SimError(
                500, "INTERNAL_ERROR", f"{operation_id} failed: {type(exc).__name__}: {exc}"
            ) from exc

    def estimate_work(self, operation_id: str, params: dict[str, str], body: Any) -> WorkEstimate:
        self._handler(operation_id)
        data = body if isinstance(body, dict) else {}
        if operation_id in ("import_model", "replace_model", "scan_to_model", "load_form_file"):
            extra = data.get("files")
            files = [data.get("file"), *(extra if isinstance(extra, list) else [])]
            return WorkEstimate(triangles=sum(_estimated_triangles(f) for f in files), models=1)
        if operation_id in _DEFAULT_SCENE_OPERATIONS:
            triangles, models = self.scenes.peek_triangles(DEFAULT_SCENE_ID)
            return WorkEstimate(triangles=triangles, models=models)
        if operation_id not in _SCENE_OPERATIONS:
            return WorkEstimate()
        # The scene the operation will act on, by the rule it runs under (_scene_id), so a
        # deprecated route costs what its current counterpart does.
        scene_id = self._target_scene(params)
        # An operation on some models (orient or support one new model) costs those models,
        # not the whole scene; an operation on one model (its id in the path) costs that one.
        try:
            chosen = Body(data).selection()
        except SimError:
            # Priced as the whole scene: an operation that reads the selection refuses it by
            # the same rule, one that has none (GET /scene/ with a body) answers as ever.
            chosen = None
        if operation_id in _ONE_MODEL_OPERATIONS and "id" in params:
            chosen = [params["id"]]
        triangles, models = self.scenes.peek_triangles(scene_id, chosen)
        return WorkEstimate(triangles=triangles, models=models)

    # -- shared helpers -----------------------------------------------------------------------

    @property
    def fleet(self) -> FleetState:
        with self._fleet_lock:
            if self._fleet is None:
                root = self._fleet_dir
                if root is None:
                    base = self.work_dir or Path(tempfile.mkdtemp(prefix="preform-sim-"))
                    root = base / "fleet"
                root.mkdir(parents=True, exist_ok=True)
                if self._fleet_dir is not None:
                    # Before printers.json is touched: a live simulator of another fleet on
                    # this folder refuses this start (FleetInUseError), never the reverse.
                    self._leave = weakref.finalize(
                        self, join(root, self.declared_printers).leave)
                self._fleet = FleetState(root)
                if self.declared_printers is not None:
                    self._fleet.declare(self.declared_printers)
                else:
                    self._fleet.use_default()
            return self._fleet

    def _target_scene(self, params: dict[str, str]) -> str:
        """The scene an operation acts on: the path's, or without a scene id in the path (the
        contract's deprecated operations) the most recently created scene."""
        scene_id = params.get("scene_id")
        return scene_id if scene_id is not None else self.scenes.last_created or DEFAULT_SCENE_ID

    def _scene_id(self, params: dict[str, str]) -> str:
        scene_id = self._target_scene(params)
        if scene_id == DEFAULT_SCENE_ID:
            self._ensure_default()
        return scene_id

    def _ensure_default(self) -> None:
        with self._default_lock:
            if DEFAULT_SCENE_ID not in self.scenes:
                last = self.scenes.last_created
                self.scenes.add(Scene(DEFAULT_SCENE_ID, DEFAULT_SCENE_SETTINGS))
                self.scenes.last_created = last  # creating it on demand is not "creating"

    def _machine(self, scene: Scene) -> MachineType:
        return scene.settings.machine(self.catalogue)

    def _scene_json(self, scene: Scene) -> Json:
        from . import estimates

        volume = self._machine(scene).build_volume_mm
        return {
            "id": scene.id,
            "scene_settings": scene.settings.to_json(),
            "models": [m.to_json(volume) for m in scene.models.values()],
            "material_usage": estimates.material_usage(scene, self.catalogue),
            "layer_count": estimates.layer_count(scene),
        }

    def _require(self, scene: Scene, technology: str, operation: str) -> None:
        machine = self._machine(scene)
        if machine.technology == technology:
            return
        message = (
            f"{operation} applies to {technology} scenes; scene {scene.id} is a "
            f"{machine.technology} scene ({machine.label})"
        )
        if operation in ("auto-layout", "auto-pack"):
            message += "; use " + ("auto-pack" if technology == "SLA" else "auto-layout")
        raise SimError(400, "WRONG_TECHNOLOGY", message)

    def _read_model_file(self, path: Path, repair: str, warnings: list[str]) -> Mesh:
        from preform_pipeline.geometry import read_mesh
        from preform_pipeline.geometry.orientation import reoriented

        from .meshops import close_holes

        mesh = read_mesh(path)
        if repair == "REPAIR":
            mesh, turned = reoriented(mesh)
            if turned:
                warnings.append(f"Re-oriented {counted(turned, 'triangle')} in {path.name}")
        if mesh.is_closed():
            return mesh
        if repair == "ERROR":
            raise SimError(
                400,
                "MODEL_NOT_WATERTIGHT",
                f"{path}: the mesh has holes (open edges); send repair_behavior REPAIR to "
                "close them or IGNORE to import it as it is",
            )
        if repair == "REPAIR":
            mesh, holes = close_holes(mesh)
            warnings.append(f"Closed {counted(holes, 'hole')} in {path.name}")
            return mesh
        warnings.append(f"{path.name} is not watertight; imported without repair")
        return mesh

    # -- API info, account, materials -----------------------------------------------------------

    def _op_get_api_version(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        return {"version": SIMULATED_API_VERSION}

    def _op_list_materials(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        return self.catalogue.to_list_materials()

    def _op_login(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        data = Body(body)
        if data.has("access_token"):
            data.only(("access_token",))
            data.req_string("access_token")
            username = "simulated-token-user"
        else:
            data.only(("username", "password"))
            username = data.req_string("username")
            if not data.req_string("password", empty_ok=True):
                raise SimError(400, "INVALID_CREDENTIALS", "username or password is wrong")
        persistent = uuid.uuid5(uuid.NAMESPACE_URL, f"simulated-user:{username}")
        email = username if "@" in username else f"{username}@example.com"
        with self._account_lock:
            self._user = {
                "username": username,
                "first_name": "Simulated",
                "last_name": "User",
                "email": email,
                "persistent_id": str(persistent),
            }
        log.info("user_logged_in", username=username)
        return {"access_token": uuid.uuid4().hex, "refresh_token": uuid.uuid4().hex}

    def _op_logout(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        with self._account_lock:
            if self._user is None:
                raise SimError(400, "NOT_LOGGED_IN", "no user is logged in")
            self._user = None
        return {}

    def _op_get_user(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        with self._account_lock:
            if self._user is None:
                raise SimError(404, "NOT_LOGGED_IN", "no user is logged in; POST /login/ first")
            return dict(self._user)

    @property
    def logged_in(self) -> bool:
        with self._account_lock:
            return self._user is not None

    # -- scenes ---------------------------------------------------------------------------------

    def _op_create_scene(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        scene = Scene(new_id(), resolve_settings(body, self.catalogue))
        self.scenes.add(scene)
        log.info("scene_created", scene_id=scene.id, machine_type=scene.settings.machine_type)
        return self._scene_json(scene)

    def _op_create_default_scene(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        scene = Scene(DEFAULT_SCENE_ID, resolve_settings(body, self.catalogue))
        with self._default_lock:
            self.scenes.add(scene, replace=True)
        return self._scene_json(scene)

    def _op_delete_default_scene(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        scene = Scene(DEFAULT_SCENE_ID, DEFAULT_SCENE_SETTINGS)
        with self._default_lock:
            self.scenes.add(scene, replace=True)
        return self._scene_json(scene)

    def _op_get_all_scenes(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        scenes = []
        for scene_id in self.scenes.ids():
            try:
                scenes.append(self.scenes.read(scene_id, self._scene_json))
            except SimError as exc:
                if exc.code != "SCENE_NOT_FOUND":  # deleted while listing
                    raise
        return {"scenes": scenes}

    def _op_get_scene(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        return self.scenes.read(self._scene_id(params), self._scene_json)

    def _op_update_scene(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        settings = resolve_settings(body, self.catalogue)
        with self.scenes.use(self._scene_id(params)) as scene:
            scene.settings = settings
            return self._scene_json(scene)

    def _op_delete_scene(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        scene_id = self._scene_id(params)
        with self.scenes.use(scene_id) as scene:
            answer = self._scene_json(scene)
        if scene_id == DEFAULT_SCENE_ID:
            self._op_delete_default_scene(params, None, None)
        else:
            self.scenes.remove(scene_id)
        return answer

    # -- files ----------------------------------------------------------------------------------

    def _op_load_form_file(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        from .formfile import load_form

        data = Body(body)
        path = existing_file(data.req_string("file"), "$.file")
        scene = load_form(path, new_id())
        validate_settings(scene.settings, self.catalogue)
        self.scenes.add(scene)
        log.info("form_loaded", scene_id=scene.id, file=str(path), models=len(scene.models))
        return self._scene_json(scene)

    def _op_save_form_file(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        from .formfile import save_form

        data = Body(body)
        path = writable_target(data.req_string("file"), "$.file")
        with self.scenes.use(self._scene_id(params)) as scene:
            save_form(scene, path)
        return {}

    def _op_save_fps_file(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        data = Body(body)
        text = data.req_string("file")
        if not text.endswith(".fps"):
            raise bad_body("$.file", f"{text!r} must end in .fps")
        path = writable_target(text, "$.file")
        with self.scenes.use(self._scene_id(params)) as scene:
            write_fps(scene.settings, path)
        return {}

    def _op_save_screenshot(
        self, params: dict[str, str], body: Any, progress: ProgressCallback | None
    ) -> Json:
        from .screenshot import (
            DEFAULT_IMAGE_SIZE_PX,
            DEFAULT_PITCH_DEG,
            DEFAULT_YAW_DEG,
            MAX_IMAGE_SIZE_PX,
            View,
            flyaround_views,
            item_for,
            render,
            write_png,
            write_webp,
        )

        data = Body(body)
        text = data.req_string("file")
        suffix = Path(text).suffix.lower()
        if suffix not in (".png", ".webp"):
            raise bad_body("$.file", f"{text!r} must end in .png or .webp")
        fly = data.object("flyaround_transform")
        if fly is not None and suffix != ".webp":
            raise bad_body("$.file", f"{text!r}: a flyaround is an animation, saved as .webp")
        path = writable_target(text, "$.file")
        view = View(
            view_type=data.choice("view_type", _VIEW_TYPES, "ZOOM_ON_MODELS") or "ZOOM_ON_MODELS",
            yaw_deg=data.number("yaw", DEFAULT_YAW_DEG) or 0.0,
            pitch_deg=data.number("pitch", DEFAULT_PITCH_DEG, minimum=-90.0, maximum=90.0) or 0.0,
            image_size_px=data.integer(
                "image_size_px", DEFAULT_IMAGE_SIZE_PX, minimum=1, maximum=MAX_IMAGE_SIZE_PX
            )
            or DEFAULT_IMAGE_SIZE_PX,
            crop_to_models=bool(data.boolean("crop_to_models", True)),
        )
        views = [view] if fly is None else flyaround_views(view, *_flyaround(fly))
        with self.scenes.use(self._scene_id(params)) as scene:
            volume = self._machine(scene).build_volume_mm
            items = [item_for(m, volume) for m in scene.select(data.selection()) if m.visible]
        # Rendered after the scene is let go, as a still always was: the items hold their own
        # arrays, and up to MAX_FLYAROUND_FRAMES renders would block every other request on it.
        frames = []
        for done, frame_view in enumerate(views):
            frames.append(render(items, volume, frame_view))
            _progress(progress, done + 1, len(views) + 1)
        try:
            if suffix == ".png":
                write_png(path, frames[0])
            else:
                write_webp(path, frames)
        except OSError as exc:
            raise SimError(400, "FILE_WRITE_FAILED", f"cannot write {path}: {exc}") from exc
        return {}

    # -- models ---------------------------------------------------------------------------------

    def _op_import_model(
        self, params: dict[str, str], body: Any, progress: ProgressCallback | None
    ) -> Json:
        import numpy as np

        from preform_pipeline.geometry import detect_units

        from .editing import IMPORT_UNITS

        data = Body(body)
        path = existing_file(data.req_string("file"), "$.file")
        repair = data.choice("repair_behavior", _REPAIR, "ERROR") or "ERROR"
        name = data.string("name")
        position = data.triple("position")
        orientation = data.object("orientation")
        rotation = orientation_matrix(orientation) if orientation is not None else np.eye(3)
        scale = data.number("scale", 1.0, exclusive_minimum=0.0) or 1.0
        units = data.choice("units", IMPORT_UNITS, "DETECTED") or "DETECTED"
        lock = data.choice("lock", LOCKS, "FREE") or "FREE"
        scene_id = self._scene_id(params)
        if scene_id not in self.scenes:  # say so before reading a possibly large file
            raise SimError(400, "SCENE_NOT_FOUND", f"no scene with id {scene_id!r}")
        _progress(progress, 0, 2)
        warnings: list[str] = []
        mesh = self._read_model_file(path, repair, warnings)
        _progress(progress, 1, 2)
        if units == "DETECTED":
            units = detect_units(mesh)
        model = SimModel(
            model_id=new_id(),
            name=name if name is not None else path.stem,
            mesh=mesh,
            original_file=str(path),
            units=units,
            scale=scale,
            orientation=euler_of(rotation),
            position=position or (0.0, 0.0, 0.0),
            lock=lock,
        )
        _check_reach(model)
        with self.scenes.use(scene_id) as scene:
            scene.models[model.id] = model
            answer = model.to_json(self._machine(scene).build_volume_mm)
        log.info(
            "model_imported",
            scene_id=scene_id,
            model_id=model.id,
            triangles=mesh.triangle_count,
            warnings=warnings,
        )
        _progress(progress, 2, 2)
        return answer

    def _op_get_model(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        def render(scene: Scene) -> Json:
            model = scene.model(params.get("id", ""))
            return model.to_json(self._machine(scene).build_volume_mm)

        return self.scenes.read(self._scene_id(params), render)

    def _op_update_model(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        # The contract's schema is open (no additionalProperties: false): an unknown field is
        # ignored, as every other open body here, not refused.
        data = Body(body)
        name = data.string("name")
        position = data.triple("position")
        orientation_body = data.object("orientation")
        rotation = orientation_matrix(orientation_body) if orientation_body is not None else None
        scale = data.number("scale", exclusive_minimum=0.0)
        units = data.choice("units", _UNITS)
        lock = data.choice("lock", LOCKS)
        with self.scenes.use(self._scene_id(params)) as scene:
            model = scene.model(params.get("id", ""))
            trial = model.copy(model.id)  # checked as it would be placed, the scene untouched
            trial.orientation = model.orientation if rotation is None else euler_of(rotation)
            trial.scale = model.scale if scale is None else scale
            trial.units = model.units if units is None else units
            trial.position = model.position if position is None else position
            _check_reach(trial)
            if (rotation is not None and not _turn_about_z(model, rotation)) or (
                scale is not None or units is not None
            ):
                model.clear_supports()
            if name is not None:
                model.name = name
            if rotation is not None:
                model.orientation = euler_of(rotation)
            if scale is not None:
                model.scale = scale
            if units is not None:
                model.units = units
            if lock is not None:
                model.lock = lock
            if position is not None:
                model.position = position
        return {}

    def _op_delete_model(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        with self.scenes.use(self._scene_id(params)) as scene:
            model = scene.model(params.get("id", ""))
            del scene.models[model.id]
            if scene.cage is not None and scene.cage.get("model_id") == model.id:
                scene.cage = None
        return {}

    def _op_duplicate_model(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        from .layout import DEFAULT_MODEL_SPACING_MM

        data = Body(body, required=False)
        count = data.integer("count", 1, minimum=1, maximum=MAX_DUPLICATES) or 1
        with self.scenes.use(self._scene_id(params)) as scene:
            original = scene.model(params.get("id", ""))
            width = original.size()[0]
            x, y, z = original.position
            for k in range(1, count + 1):
                twin = original.copy(new_id())
                # Copies go in a row to the right; auto-layout arranges them properly.
                twin.position = (x + k * (width + DEFAULT_MODEL_SPACING_MM), y, z)
                scene.models[twin.id] = twin
            return self._scene_json(scene)

    def _op_replace_model(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        data = Body(body)
        path = existing_file(data.req_string("file"), "$.file")
        repair = data.choice("repair_behavior", _REPAIR, "ERROR") or "ERROR"
        warnings: list[str] = []
        mesh = self._read_model_file(path, repair, warnings)
        with self.scenes.use(self._scene_id(params)) as scene:
            model = scene.model(params.get("id", ""))
            model.set_mesh(mesh)
            model.original_file = str(path)
            return {
                "warnings": warnings,
                "model_properties": model.to_json(self._machine(scene).build_volume_mm),
            }

    def _op_scan_to_model(
        self, params: dict[str, str], body: Any, progress: ProgressCallback | None
    ) -> Json:
        from .editing import ScanRequest, scan_models

        request = ScanRequest.parse(Body(body))
        scene_id = self._scene_id(params)
        with self.scenes.use(scene_id) as scene:
            self._require(scene, "SLA", "scan-to-model")
        made, infos = scan_models(request, lambda done, total: _progress(progress, done, total))
        with self.scenes.use(scene_id) as scene:
            for model in made:
                scene.models[model.id] = model
            return self._scene_json(scene) | {"warnings": [], "infos": infos}

    # -- orient, support, layout, pack ----------------------------------------------------------

    def _op_auto_orient(
        self, params: dict[str, str], body: Any, progress: ProgressCallback | None
    ) -> Json:
        from .layout import orient_rotation

        data = Body(body)
        data.only(("models", "mode", "tilt"))
        mode = data.choice("mode", ("DENTAL",))
        if data.has("tilt") and mode != "DENTAL":
            raise bad_body("$.tilt", 'tilt applies only with mode "DENTAL"')
        tilt = data.integer("tilt", DEFAULT_DENTAL_TILT_DEG, minimum=-90, maximum=90) or 0
        selection = data.selection()
        with self.scenes.use(self._scene_id(params)) as scene:
            models = [m for m in scene.select(selection) if m.lock == "FREE"]
            for index, model in enumerate(models):
                rotation = orient_rotation(model, dental=mode == "DENTAL", tilt_deg=tilt)
                model.clear_supports()
                model.orientation = euler_of(rotation)
                model.position = (model.position[0], model.position[1], 0.0)
                _progress(progress, index + 1, len(models))
        return {}

    def _op_auto_support(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        from . import estimates

        data = Body(body)
        options: Json = {}
        for key in ("density", "slope_multiplier", "touchpoint_size_mm", "raft_thickness_mm",
                    "height_above_raft_mm", "z_compression_correction_mm",
                    "early_layer_merge_mm"):
            value = data.number(key, minimum=0.0)
            if value is not None:
                options[key] = value
        for key in ("only_minima", "raft_label_enabled", "breakaway_structure_enabled",
                    "internal_supports_enabled"):
            flag = data.boolean(key)
            if flag is not None:
                options[key] = flag
        options["raft_type"] = data.choice("raft_type", _RAFT_TYPES, "FULL_RAFT")
        raft = float(options.setdefault("raft_thickness_mm", estimates.DEFAULT_RAFT_THICKNESS_MM))
        above = float(
            options.setdefault("height_above_raft_mm", estimates.DEFAULT_HEIGHT_ABOVE_RAFT_MM)
        )
        with self.scenes.use(self._scene_id(params)) as scene:
            self._require(scene, "SLA", "auto-support")
            for model in scene.select(data.selection()):
                model.has_supports = True
                model.support = dict(options)
                model.position = (model.position[0], model.position[1], raft + above)
        return {}

    def _op_auto_layout(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        from .layout import DEFAULT_MODEL_SPACING_MM, Bounds2D, layout_on_platform

        data = Body(body)
        data.choice("mode", ("DENTAL",))
        spacing = data.number("model_spacing_mm", DEFAULT_MODEL_SPACING_MM, minimum=0.0)
        overlap = bool(data.boolean("allow_overlapping_supports", False))
        lock_rotation = bool(data.boolean("lock_rotation", False))
        data.boolean("build_platform_2_optimized")
        bounds_body = data.object("custom_bounds")
        with self.scenes.use(self._scene_id(params)) as scene:
            self._require(scene, "SLA", "auto-layout")
            bx, by, _ = self._machine(scene).build_volume_mm
            area = Bounds2D(-bx / 2, bx / 2, -by / 2, by / 2)
            if bounds_body is not None:
                area = self._custom_bounds(bounds_body, area)
            models = [m for m in scene.select(data.selection()) if m.lock != "FULLY_LOCKED"]
            moves = layout_on_platform(
                models,
                area,
                spacing=spacing or 0.0,
                allow_rotation=not lock_rotation
                and not any(m.lock in _ROTATION_LOCKED for m in models),
                rafts=not overlap,
                full_raft_mm=self.raft_border_mm,
            )
            self._apply(scene, moves)
            return self._scene_json(scene)

    @staticmethod
    def _custom_bounds(body: Body, platform: Bounds2D) -> Bounds2D:
        from .layout import Bounds2D

        area = Bounds2D(
            max(platform.x_min, body.number("x_min_mm", platform.x_min) or 0.0),
            min(platform.x_max, body.number("x_max_mm", platform.x_max) or 0.0),
            max(platform.y_min, body.number("y_min_mm", platform.y_min) or 0.0),
            min(platform.y_max, body.number("y_max_mm", platform.y_max) or 0.0),
        )
        if area.x_min >= area.x_max or area.y_min >= area.y_max:
            raise bad_body(body.path, "the bounds leave no area on the build platform")
        return area

    @staticmethod
    def _apply(scene: Scene, moves: dict[str, Move]) -> None:
        for model_id, move in moves.items():
            model = scene.models[model_id]
            model.orientation = move.orientation
            model.position = move.position

    def _op_auto_pack(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        from .layout import DEFAULT_MODEL_SPACING_MM, pack_in_volume

        data = Body(body, required=False)
        spacing = data.number("model_spacing_mm", DEFAULT_MODEL_SPACING_MM, minimum=0.0) or 0.0
        with self.scenes.use(self._scene_id(params)) as scene:
            self._require(scene, "SLS", "auto-pack")
            cage_id = (scene.cage or {}).get("model_id")
            models = [
                m for m in scene.models.values() if m.lock != "FULLY_LOCKED" and m.id != cage_id
            ]
            moves = pack_in_volume(
                models,
                self._machine(scene).build_volume_mm,
                spacing=spacing,
                allow_rotation=not any(m.lock in _ROTATION_LOCKED for m in models),
            )
            self._apply(scene, moves)
            if cage_id is not None:  # the old cage no longer surrounds the repacked models
                scene.models.pop(cage_id, None)
                scene.cage = None
            return self._scene_json(scene)

    def _op_pack_and_cage(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        from .layout import DEFAULT_MODEL_SPACING_MM, build_cage, pack_in_volume

        data = Body(body)
        if not data.has("models"):
            raise bad_body("$.models", "is required")
        packing = data.raw("packing_type")
        if isinstance(packing, dict):
            packing_type = Body(packing, "$.packing_type").choice(
                "packing_type", _PACKING_TYPES, "PACK_VOLUME"
            )
        else:
            packing_type = data.choice("packing_type", _PACKING_TYPES, "PACK_VOLUME")
        label = data.string("cage_label") or ""
        data.boolean("generate_mesh_label")
        spacing = data.number("model_spacing_mm", DEFAULT_MODEL_SPACING_MM, minimum=0.0) or 0.0
        data.number("bar_spacing_mm", minimum=0.0)
        thickness = data.number("bar_thickness_mm", DEFAULT_CAGE_BAR_MM, minimum=1.0)
        bar = data.number("bar_width_mm", thickness, minimum=1.0) or DEFAULT_CAGE_BAR_MM
        distance = data.number("distance_to_cage_mm", DEFAULT_DISTANCE_TO_CAGE_MM, minimum=0.0)
        distance = distance or 0.0
        data.boolean("enable_round_edges")
        data.boolean("enable_square_bars")
        with self.scenes.use(self._scene_id(params)) as scene:
            self._require(scene, "SLS", "pack-and-cage")
            old_cage = (scene.cage or {}).get("model_id")
            models = [m for m in scene.select(data.selection()) if m.id != old_cage]
            if not models:
                raise bad_body("$.models", "selects no models to cage")
            volume = self._machine(scene).build_volume_mm
            moves: dict[str, Move] = {}
            if packing_type != "PACK_NONE":
                moves = pack_in_volume(
                    models, volume, spacing=spacing, inset=bar + distance,
                    allow_rotation=not any(m.lock in _ROTATION_LOCKED for m in models),
                )
            cage = build_cage(models, moves, volume, bar_mm=bar, distance_mm=distance, label=label)
            if old_cage is not None:
                scene.models.pop(old_cage, None)
            self._apply(scene, moves)
            scene.models[cage.id] = cage
            scene.cage = {
                "model_id": cage.id,
                "label": label,
                "bar_width_mm": bar,
                "distance_to_cage_mm": distance,
                "packing_type": packing_type,
                "models": [m.id for m in models],
            }
            return self._scene_json(scene)

    # -- analysis -------------------------------------------------------------------------------

    def _op_get_print_validation(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        from . import estimates

        return self.scenes.read(
            self._scene_id(params), lambda s: estimates.print_validation(s, self.catalogue)
        )

    def _op_estimate_print_time(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        from . import estimates

        return self.scenes.read(
            self._scene_id(params), lambda s: estimates.estimate_print_time(s, self.catalogue)
        )

    def _op_get_scene_interferences(
        self, params: dict[str, str], body: Any, progress: Any
    ) -> list[list[str]]:
        import numpy as np

        from .contact import ShadowGrid
        from .layout import boxes_overlap, raft_border

        data = Body(body, required=False)
        gap = data.number("collision_offset_mm", 0.0, minimum=0.0) or 0.0

        def pairs(scene: Scene) -> list[list[str]]:
            # Boxes first (cheap); where they meet, the placed shadows decide, so parts
            # nested by the layout (an arch around another, a pin in a washer) are apart.
            # A supported model's raft reaches past its shadow (by the rim its own layout
            # keeps apart): two rafts closer than the offset interfere as two parts do.
            models = list(scene.models.values())
            rims = {m.id: raft_border(m, self.raft_border_mm) for m in models}
            boxes = [(m, m.bounds()) for m in models]
            if len(models) < 2:
                return []
            low = np.min([lo for _, (lo, _) in boxes], axis=0)
            high = np.max([hi for _, (_, hi) in boxes], axis=0)
            # The grid need reach no further than the models' own span: a wider offset (a
            # hostile 1e308) makes every pair meet anyway, and must not size the grid.
            margin = min(max(rims.values()) + gap, float(np.max(high - low)) + 1.0)
            grid = ShadowGrid(low - margin, high + margin)
            shadows: dict[str, Any] = {}

            def shadow(model: SimModel) -> Any:
                if model.id not in shadows:
                    shadows[model.id] = grid.covered(model.world_mesh())
                return shadows[model.id]

            def meet(first: SimModel, second: SimModel, reach: float) -> bool:
                return grid.within(shadow(first), shadow(second), reach)

            found = []
            for i, (first, box_a) in enumerate(boxes):
                for second, box_b in boxes[i + 1 :]:
                    reach = gap + rims[first.id] + rims[second.id]
                    if boxes_overlap(box_a, box_b, reach) and meet(first, second, reach):
                        found.append([first.id, second.id])
            return found

        return self.scenes.read(self._scene_id(params), pairs)

    # -- hollow, drain holes, labels ------------------------------------------------------------

    def _op_hollow_model(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        from .editing import hollow_models

        data = Body(body)
        with self.scenes.use(self._scene_id(params)) as scene:
            self._require(scene, "SLA", "hollow")
            return hollow_models(scene, data)

    def _op_add_drain_holes(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        from .editing import add_drain_holes

        data = Body(body)
        with self.scenes.use(self._scene_id(params)) as scene:
            self._require(scene, "SLA", "add-drain-holes")
            return add_drain_holes(scene, data)

    def _op_label_part(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        from .editing import label_model

        data = Body(body)
        with self.scenes.use(self._scene_id(params)) as scene:
            return label_model(scene, data)

    # -- devices and printing -------------------------------------------------------------------

    def _device_bodies(self, include_groups: bool) -> list[Json]:
        return device_bodies(
            self.fleet, include_groups=include_groups, print_time_scale=self.print_time_scale
        )

    def _op_get_devices(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        devices = self._device_bodies(include_groups=self.logged_in)
        # The server has read the flag ("yes", "1" ...) and passes "true" or "false".
        if params.get("can_print") == "true":
            devices = [d for d in devices if d["is_connected"]]
        return {"count": len(devices), "devices": devices}

    def _op_get_device(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        wanted = params.get("id", "")
        for device in self._device_bodies(include_groups=self.logged_in):
            if wanted in (device["id"], device["ip_address"], device.get("dashboard_queue_id")):
                return device
        raise SimError(400, "DEVICE_NOT_FOUND", f"no discovered device {wanted!r}")

    def _op_discover_devices(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        data = Body(body, required=False)
        data.integer("timeout_seconds", minimum=0)
        address = data.string("ip_address")
        devices = self._device_bodies(include_groups=False)
        if address is not None:
            devices = [d for d in devices if d["ip_address"] == address]
            if not devices:
                raise SimError(
                    400, "PRINTER_IP_NOT_FOUND", f"no printer answered at IP address {address}"
                )
        return {"count": len(devices), "devices": devices}

    def _op_upload_firmware(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        data = Body(body)
        name = data.req_string("printer")
        path = existing_file(data.req_string("file_path"), "$.file_path")
        if path.suffix.lower() not in _FIRMWARE_SUFFIXES:
            raise SimError(
                400, "INVALID_FIRMWARE_FILE", f"{path.name} is not a .formware/.formware2 file"
            )
        target = self.fleet.find(name)
        if not isinstance(target, SimPrinter):
            raise SimError(400, "PRINTER_NOT_FOUND", f"no printer {name!r} to update")
        updated = self.fleet.update_printer(target.serial, firmware_version=path.stem)
        return {"count": 1, "devices": [printer_status(updated)]}

    def _op_print(
        self, params: dict[str, str], body: Any, progress: ProgressCallback | None
    ) -> Json:
        data = Body(body)
        name = data.req_string("printer")
        job_name = data.req_string("job_name", empty_ok=True)
        data.integer("find_printer_timeout_seconds", 30, minimum=0)
        print_now = data.boolean("print_now")
        scene_id = self._scene_id(params)
        target = find_target(
            self.fleet, name, logged_in=self.logged_in, print_time_scale=self.print_time_scale
        )
        with self.scenes.use(scene_id) as scene:
            job = job_record(
                scene, self.catalogue, self.fleet, target, job_name=job_name, print_now=print_now
            )
        _progress(progress, 1, 2)
        self.fleet.record_job(self.fleet.schedule(job, self.print_time_scale))
        _progress(progress, 2, 2)
        return {"job_id": job["job_id"]}
