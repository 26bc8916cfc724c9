"""Scene state of the simulated PreFormServer and the LRU cache that holds it.

A :class:`Scene` is its settings (machine, material, layer thickness) plus its models; a
:class:`SimModel` keeps the mesh exactly as read from its file and the transform the Local API
describes (units, scale, Euler orientation, position). The placed ("world") mesh is derived:

    world = R(orientation) * scale * unit_factor * raw, then translated so that the bounding
    box's x/y centre lands on ``position.x/y`` and its lowest point on ``position.z``.

So ``position`` is "where the model's footprint centre is, and how high its bottom floats"
(0 on the platform, the support height when supported); changing the orientation keeps the
model where it stands.

:class:`SceneStore` keeps at most ``capacity`` scenes in memory, like PreFormServer's
``--scene-cache-size``; the least recently used ones are pickled to ``work_dir`` and read back
on their next use. Scenes in use (pinned) are never evicted, so the cache may briefly exceed
its capacity while every cached scene is busy.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from preform_pipeline.catalogue import ADAPTIVE, Catalogue, LayerThickness, MachineType, Material
from preform_pipeline.geometry import INCH_MM
from preform_pipeline.logging import get_logger

from .atomic import atomic_write_bytes
from .fps import CustomPrintSetting, ParsedFps
from .protocol import Json, SimError

if TYPE_CHECKING:
    # numpy and the mesh code come with the first model (the methods that place one import
    # them): the scene store is made before READY FOR INPUT, and a simulator that is never
    # sent a model never needs them (engine.py).
    import numpy as np
    import numpy.typing as npt

    from preform_pipeline.geometry import Mesh

__all__ = [
    "DEFAULT_SCENE_ID",
    "DEFAULT_SCENE_SETTINGS",
    "IN_BOUNDS_TOLERANCE_MM",
    "LOCKS",
    "Scene",
    "SceneSettings",
    "SceneStore",
    "SimModel",
    "mesh_hash",
    "new_id",
    "placed_triangles",
]

log = get_logger(__name__)

#: The path segment that names PreFormServer's single global scene.
DEFAULT_SCENE_ID: Final = "default"
#: A model may stick out of the build volume by this much (float noise of packing, STL
#: float32 rounding) and still count as in bounds.
IN_BOUNDS_TOLERANCE_MM: Final = 1e-3
LOCKS: Final = (
    "FREE",
    "LOCKED_XY_ROTATION_FREE_TRANSLATION",
    "LOCKED_ROTATION_FREE_TRANSLATION",
    "FULLY_LOCKED",
)
_PICKLE_SUFFIX: Final = ".scene.pickle"
T = TypeVar("T")


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class SceneSettings:
    """A scene's printing setup, as the contract's "Manual" SceneTypeModel spells it.

    A scene made from a PreForm ``.fps`` also keeps that file's print setting (``custom``):
    then ``material_code`` is its base material, ``layer_thickness_mm`` the thickness it
    prints at, and ``custom_print_setting_id`` its id.
    """

    machine_type: str
    material_code: str
    layer_thickness_mm: LayerThickness
    print_setting: str = "DEFAULT"
    custom_print_setting_id: str | None = None
    custom: CustomPrintSetting | None = None

    @classmethod
    def from_fps(cls, parsed: ParsedFps) -> SceneSettings:
        """The settings a schema-3 .fps gives a scene: its base material, the thickness it
        prints at, and its own print setting."""
        return cls(
            machine_type=parsed.machine_type,
            material_code=parsed.material_code,
            layer_thickness_mm=parsed.layer_thickness_mm,
            custom_print_setting_id=parsed.custom.id,
            custom=parsed.custom,
        )

    def to_json(self) -> Json:
        out: Json = {
            "machine_type": self.machine_type,
            "material_code": self.material_code,
            "print_setting": self.print_setting,
            "layer_thickness_mm": self.layer_thickness_mm,
        }
        if self.custom_print_setting_id is not None:
            out["custom_print_setting_id"] = self.custom_print_setting_id
        return out

    def machine(self, catalogue: Catalogue) -> MachineType:
        machine = catalogue.machine(self.machine_type)
        if machine is None:  # settings are validated on the way in; a changed catalogue
            raise SimError(400, "UNKNOWN_MACHINE_TYPE", f"unknown machine {self.machine_type}")
        return machine

    def material(self, catalogue: Catalogue) -> Material:
        material = self.machine(catalogue).material(self.material_code)
        if material is None:
            raise SimError(400, "UNKNOWN_MATERIAL", f"unknown material {self.material_code}")
        return material

    def thickness_for_estimates(self, adaptive_average_mm: float) -> float:
        if self.layer_thickness_mm == ADAPTIVE:
            return adaptive_average_mm
        return float(self.layer_thickness_mm)


#: What the default scene and a deleted default scene start as.
DEFAULT_SCENE_SETTINGS: Final = SceneSettings("FORM-4-0", "FLGPGR05", 0.1)


class SimModel:
    """One model in a scene: raw mesh, Local API transform, and the edits applied to it."""

    def __init__(
        self,
        *,
        model_id: str,
        name: str,
        mesh: Mesh,
        original_file: str,
        units: str = "MILLIMETERS",
        scale: float = 1.0,
        orientation: tuple[float, float, float] = (0.0, 0.0, 0.0),
        position: tuple[float, float, float] = (0.0, 0.0, 0.0),
        lock: str = "FREE",
    ) -> None:
        self.id = model_id
        self.name = name
        self.mesh = mesh
        self.original_file = original_file
        self.units = units
        self.scale = scale
        self.orientation = orientation
        self.position = position
        self.lock = lock
        self.visible = True
        self.has_supports = False
        #: Auto-support options in force (raft thickness, height above raft, density...).
        self.support: Json = {}
        #: Hollowing in force: wall thickness and the options it was made with.
        self.hollow: Json | None = None
        self.drain_holes: list[Json] = []
        self.labels: list[Json] = []
        #: How scan-to-model built this model (cutoff, extrusion, hollowing), if it did.
        self.scan: Json | None = None
        self.raw_mesh_hash = mesh_hash(mesh)
        self._shape_cache: _Derived | None = None
        self._world_cache: _Derived | None = None

    # Caches are derived data: keep pickles (eviction, .form) small and independent of them.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_shape_cache"] = None
        state["_world_cache"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def unit_factor(self) -> float:
        return INCH_MM if self.units == "INCHES" else 1.0

    def linear(self) -> npt.NDArray[np.float64]:
        """The 3x3 map from file coordinates to scene orientation and size (no translation)."""
        from preform_pipeline.geometry import euler_matrix

        rotation = euler_matrix(*self.orientation)
        return rotation * (self.scale * self.unit_factor)

    def _shape(self) -> _Derived:
        """The mesh oriented and sized (not yet placed): its bounds and measures, recomputed
        when the shape changes. Its mesh may have been let go (see :meth:`world_mesh`)."""
        key = (self.units, self.scale, self.orientation, id(self.mesh))
        cache = self._shape_cache
        if cache is None or cache.key != key:
            shaped = self._shaped_mesh()
            cache = self._shape_cache = _Derived(key, shaped, shaped.bounds)
        return cache

    def _shaped_mesh(self) -> Mesh:
        import numpy as np

        linear = self.linear()
        if np.array_equal(linear, np.eye(3)):
            return self.mesh  # as imported: the same values, no second copy
        return self.mesh.transformed(linear)

    def _shape_mesh(self) -> Mesh:
        """The oriented, sized mesh, made again if it was let go for the placed one (a model
        holds at most one derived copy of its mesh besides the mesh itself)."""
        shape = self._shape()
        if shape.mesh is None:
            if self._world_cache is not None:
                self._world_cache.mesh = None
            shape.mesh = self._shaped_mesh()
        return shape.mesh

    def _offset(self) -> npt.NDArray[np.float64]:
        import numpy as np

        low, high = self._shape().bounds
        px, py, pz = self.position
        return np.array(
            [px - (low[0] + high[0]) / 2.0, py - (low[1] + high[1]) / 2.0, pz - low[2]]
        )

    def world_mesh(self) -> Mesh:
        """The mesh as placed in the scene (millimetres, platform frame). Cached per transform;
        while it is held, the oriented mesh is not (it is made again when asked for), so a
        model holds its mesh and at most one copy derived from it."""
        from preform_pipeline.geometry import Mesh

        shape = self._shape()
        key = (*shape.key, self.position)
        cache = self._world_cache
        if cache is None or cache.key != key or cache.mesh is None:
            offset = self._offset()
            if shape.mesh is not None and shape.mesh is not self.mesh:
                shape.mesh = None  # let the oriented copy go before the placed one is made
            world = Mesh(
                placed_triangles(self.mesh.triangles, self.linear(), offset),
                self.mesh.name, self.mesh.source,
            )
            if cache is not None and cache.key == key:
                cache.mesh = world
            else:
                low, high = shape.bounds
                cache = self._world_cache = _Derived(key, world, (low + offset, high + offset))
        assert cache.mesh is not None
        return cache.mesh

    def bounds(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Placed bounding box ``(min_xyz, max_xyz)``, without building the placed mesh."""
        low, high = self._shape().bounds
        offset = self._offset()
        return low + offset, high + offset

    def in_file_frame(self, point: Sequence[float]) -> tuple[float, float, float]:
        """A scene point in the model's own (file) coordinates: where it stays on the model
        whatever later turns and moves the model (:meth:`in_scene`)."""
        import numpy as np

        local = np.linalg.solve(self.linear(), np.asarray(point, dtype=np.float64) - self._offset())
        return float(local[0]), float(local[1]), float(local[2])

    def in_scene(self, point: Sequence[float]) -> tuple[float, float, float]:
        """A point of the model's own coordinates where the model now places it."""
        import numpy as np

        placed = self.linear() @ np.asarray(point, dtype=np.float64) + self._offset()
        return float(placed[0]), float(placed[1]), float(placed[2])

    def size(self) -> tuple[float, float, float]:
        """Extent of the placed model along x, y and z."""
        low, high = self._shape().bounds
        return float(high[0] - low[0]), float(high[1] - low[1]), float(high[2] - low[2])

    def shape_measure(self, name: str, measure: Callable[[Mesh], float]) -> float:
        """``measure`` of the oriented, sized mesh, remembered until the shape changes; for
        measures that moving the model does not change (volume, surface area)."""
        memo = self._shape().memo
        if name not in memo:
            memo[name] = measure(self._shape_mesh())
        return memo[name]

    def shadow(self) -> npt.NDArray[np.float64]:
        """``(N, 2)`` boundary points of the oriented model's shadow on the platform, relative
        to its footprint centre (``position`` x/y); remembered until the shape changes."""
        import numpy as np

        from preform_pipeline.geometry.projection import projected_points

        shape = self._shape()
        if shape.shadow is None:
            low, high = shape.bounds
            centre = np.array([(low[0] + high[0]) / 2.0, (low[1] + high[1]) / 2.0])
            shape.shadow = projected_points(self._shape_mesh()) - centre
        return shape.shadow

    def placed_measure(self, name: str, measure: Callable[[Mesh], float]) -> float:
        """``measure`` of the placed mesh, remembered until the model moves or changes."""
        world = self.world_mesh()
        assert self._world_cache is not None
        memo = self._world_cache.memo
        if name not in memo:
            memo[name] = measure(world)
        return memo[name]

    def canonical_hash(self) -> str:
        transform = json.dumps(
            {
                "units": self.units,
                "scale": round(self.scale, 9),
                "orientation": [round(v, 6) for v in self.orientation],
                "position": [round(v, 6) for v in self.position],
            },
            sort_keys=True,
        )
        return hashlib.sha256((self.raw_mesh_hash + transform).encode("ascii")).hexdigest()

    def in_bounds(self, build_volume_mm: tuple[float, float, float]) -> bool:
        """Bounding box inside the build volume: platform centred on (0, 0), z from 0 up."""
        low, high = self.bounds()
        bx, by, bz = build_volume_mm
        tol = IN_BOUNDS_TOLERANCE_MM
        return bool(
            low[0] >= -bx / 2 - tol
            and high[0] <= bx / 2 + tol
            and low[1] >= -by / 2 - tol
            and high[1] <= by / 2 + tol
            and low[2] >= -tol
            and high[2] <= bz + tol
        )

    def set_mesh(self, mesh: Mesh) -> None:
        """Swap the geometry (replace-model) keeping name, transform and edits."""
        self.mesh = mesh
        self.raw_mesh_hash = mesh_hash(mesh)
        self._shape_cache = None
        self._world_cache = None

    def clear_supports(self) -> None:
        """Supports no longer match a re-oriented or re-scaled model: drop them (as PreForm
        does) and let the model down onto the platform."""
        if self.has_supports:
            self.has_supports = False
            self.support = {}
            self.position = (self.position[0], self.position[1], 0.0)

    def copy(self, model_id: str) -> SimModel:
        """A twin with its own id and edits; meshes are immutable values and are shared."""
        twin = copy.copy(self)  # goes through __getstate__, which drops the caches...
        twin._shape_cache, twin._world_cache = self._shape_cache, self._world_cache  # ...share
        twin.id = model_id
        twin.support = copy.deepcopy(self.support)
        twin.hollow = copy.deepcopy(self.hollow)
        twin.drain_holes = copy.deepcopy(self.drain_holes)
        twin.labels = copy.deepcopy(self.labels)
        twin.scan = copy.deepcopy(self.scan)
        return twin

    def to_json(self, build_volume_mm: tuple[float, float, float]) -> Json:
        low, high = self.bounds()
        return {
            "id": self.id,
            "name": self.name,
            "position": _xyz(self.position),
            "orientation": _xyz(self.orientation),
            "scale": self.scale,
            "units": self.units,
            "bounding_box": {"min_corner": _xyz(low), "max_corner": _xyz(high)},
            "original_file": self.original_file,
            "visible": self.visible,
            "has_supports": self.has_supports,
            "in_bounds": self.in_bounds(build_volume_mm),
            "raw_mesh_hash": self.raw_mesh_hash,
            "canonical_model_hash": self.canonical_hash(),
            "lock": self.lock,
        }


@dataclass
class _Derived:
    """A mesh derived from a model for one ``key`` (its transform), with measures of it."""

    key: tuple[Any, ...]
    #: None once let go to keep one derived copy per model; made again on demand.
    mesh: Mesh | None
    bounds: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]
    memo: dict[str, float] = field(default_factory=dict)
    #: The shadow's boundary points on the platform, relative to the footprint centre.
    shadow: npt.NDArray[np.float64] | None = None


def mesh_hash(mesh: Mesh) -> str:
    """SHA-256 of the mesh's float32 triangles, hashed from the array's own memory (the
    bytes ``tobytes()`` would copy)."""
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(mesh.triangles).data).hexdigest()


def placed_triangles(
    triangles: npt.NDArray[np.float32],
    linear: npt.NDArray[np.float64],
    offset: npt.NDArray[np.float64],
) -> npt.NDArray[np.float32]:
    """The triangles oriented and sized by ``linear``, stored as float32, then moved by
    ``offset`` (the two roundings ``transformed(linear).translated(offset)`` makes), slice
    by slice: the oriented copy never exists whole."""
    import numpy as np

    from preform_pipeline.geometry.mesh import transformed_triangles, triangle_chunks

    placed = np.empty(triangles.shape, dtype=np.float32)
    start = 0
    for chunk in triangle_chunks(triangles):
        shaped = transformed_triangles(chunk, linear, np.zeros(3))
        placed[start:start + chunk.shape[0]] = transformed_triangles(shaped, np.eye(3), offset)
        start += chunk.shape[0]
    return placed


def _xyz(values: Any) -> Json:
    return {"x": float(values[0]), "y": float(values[1]), "z": float(values[2])}


@dataclass
class Scene:
    """A job being prepared: settings plus models in insertion order."""

    id: str
    settings: SceneSettings
    models: dict[str, SimModel] = field(default_factory=dict)
    #: The part cage pack-and-cage built: its model id and the options it was made with.
    cage: Json | None = None

    def model(self, model_id: str) -> SimModel:
        found = self.models.get(model_id)
        if found is None:
            # 400, as the contract gives for every model operation ("Model not found" is one
            # of the label operation's documented 400 answers); it lists no 404 for them.
            raise SimError(
                400, "MODEL_NOT_FOUND", f"scene {self.id} has no model with id {model_id!r}"
            )
        return found

    def share_shapes(self) -> None:
        """Let models with the same mesh object and shape share one oriented mesh and its
        measures (duplicates after a reload would otherwise each compute their own)."""
        first: dict[tuple[Any, ...], SimModel] = {}
        for model in self.models.values():
            key = (id(model.mesh), model.units, model.scale, model.orientation)
            if key in first:
                model._shape_cache = first[key]._shape()
            else:
                first[key] = model

    def select(self, ids: list[str] | None) -> list[SimModel]:
        """The models a ModelsSelectionModel names (``None`` = all), unknown ids refused."""
        if ids is None:
            return list(self.models.values())
        return [self.model(model_id) for model_id in dict.fromkeys(ids)]


@dataclass
class _Entry:
    scene: Scene
    lock: threading.RLock = field(default_factory=threading.RLock)
    pins: int = 0


class SceneStore:
    """At most ``capacity`` scenes in memory; the rest pickled in ``work_dir`` (LRU order)."""

    def __init__(self, capacity: int, work_dir: Path | None) -> None:
        if capacity < 1:
            raise ValueError(f"scene cache size must be at least 1, got {capacity}")
        self.capacity = capacity
        self._work_dir = work_dir
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, _Entry] = OrderedDict()
        self._on_disk: set[str] = set()
        #: Every scene id in creation order (what get-all-scenes lists).
        self._order: dict[str, None] = {}
        self.last_created: str | None = None

    # -- bookkeeping --------------------------------------------------------------------------

    def _spill_dir(self) -> Path:
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="preform-sim-"))
        folder = self._work_dir / "scenes"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _spill_path(self, scene_id: str) -> Path:
        return self._spill_dir() / f"{scene_id}{_PICKLE_SUFFIX}"

    def __contains__(self, scene_id: str) -> bool:
        with self._lock:
            return scene_id in self._order

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._order)

    def in_memory(self) -> list[str]:
        """Ids held in memory, least recently used first (for tests and the latency model)."""
        with self._lock:
            return list(self._memory)

    def on_disk(self) -> list[str]:
        with self._lock:
            return sorted(self._on_disk)

    def peek_triangles(
        self, scene_id: str, model_ids: list[str] | None = None
    ) -> tuple[int, int]:
        """``(triangles, models)`` of a scene in memory (of the ``model_ids`` in it, when
        given) without touching its LRU position."""
        with self._lock:
            entry = self._memory.get(scene_id)
            if entry is None:
                return 0, 0
            models = list(entry.scene.models.values())
            if model_ids is not None:
                wanted = set(model_ids)
                models = [m for m in models if m.id in wanted]
        return sum(m.mesh.triangle_count for m in models), len(models)

    # -- life cycle ---------------------------------------------------------------------------

    def add(self, scene: Scene, *, replace: bool = False) -> None:
        with self._lock:
            if scene.id in self._order and not replace:
                raise ValueError(f"scene {scene.id} exists")
            self._drop_locked(scene.id)
            self._memory[scene.id] = _Entry(scene)
            self._order[scene.id] = None
            self.last_created = scene.id
            self._evict_locked()

    def remove(self, scene_id: str) -> None:
        with self._lock:
            if scene_id not in self._order:
                raise _not_found(scene_id)
            self._drop_locked(scene_id)
            if self.last_created == scene_id:
                self.last_created = next(reversed(self._order), None)

    def _drop_locked(self, scene_id: str) -> None:
        self._memory.pop(scene_id, None)
        self._order.pop(scene_id, None)
        if scene_id in self._on_disk:
            self._on_disk.discard(scene_id)
            self._spill_path(scene_id).unlink(missing_ok=True)

    @contextmanager
    def use(self, scene_id: str) -> Iterator[Scene]:
        """The scene, loaded if evicted, locked against other threads while the block runs."""
        with self._lock:
            entry = self._load_locked(scene_id)
            entry.pins += 1
            self._memory.move_to_end(scene_id)
        try:
            with entry.lock:
                yield entry.scene
        finally:
            with self._lock:
                entry.pins -= 1
                self._evict_locked()

    def read(self, scene_id: str, render: Callable[[Scene], T]) -> T:
        """``render(scene)`` under the scene's lock; evicted scenes are read from disk without
        being promoted, so listing every scene does not thrash the cache."""
        with self._lock:
            entry = self._memory.get(scene_id)
            if entry is None:
                if scene_id not in self._on_disk:
                    raise _not_found(scene_id)
                spilled = self._read_spilled(scene_id)
            else:
                entry.pins += 1
        if entry is None:
            return render(spilled)
        try:
            with entry.lock:
                return render(entry.scene)
        finally:
            with self._lock:
                entry.pins -= 1

    def _load_locked(self, scene_id: str) -> _Entry:
        entry = self._memory.get(scene_id)
        if entry is not None:
            return entry
        if scene_id not in self._on_disk:
            raise _not_found(scene_id)
        scene = self._read_spilled(scene_id)
        self._on_disk.discard(scene_id)
        self._spill_path(scene_id).unlink(missing_ok=True)
        entry = _Entry(scene)
        self._memory[scene_id] = entry
        log.debug("scene_reloaded", scene_id=scene_id)
        self._evict_locked(keep=scene_id)
        return entry

    def _read_spilled(self, scene_id: str) -> Scene:
        path = self._spill_path(scene_id)
        try:
            with path.open("rb") as handle:
                scene = pickle.load(handle)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
            raise SimError(
                500,
                "SCENE_CACHE_CORRUPT",
                f"cached scene {scene_id} in {path} is unreadable: {exc}",
            ) from exc
        if not isinstance(scene, Scene):
            raise SimError(500, "SCENE_CACHE_CORRUPT", f"cached scene {scene_id} is unreadable")
        scene.share_shapes()
        return scene

    def _evict_locked(self, keep: str | None = None) -> None:
        while len(self._memory) > self.capacity:
            victim = next(
                (sid for sid, e in self._memory.items() if e.pins == 0 and sid != keep), None
            )
            if victim is None:
                return  # everything cached is in use; evict once they are released
            entry = self._memory.pop(victim)
            data = pickle.dumps(entry.scene, protocol=pickle.HIGHEST_PROTOCOL)
            atomic_write_bytes(self._spill_path(victim), data)
            self._on_disk.add(victim)
            log.debug("scene_evicted", scene_id=victim, bytes=len(data))


def _not_found(scene_id: str) -> SimError:
    # 400: the contract's only error answer for the operations on a scene (none lists a 404).
    return SimError(400, "SCENE_NOT_FOUND", f"no scene with id {scene_id!r}")
