"""Request options for the Local API's bigger operations, as frozen dataclasses.

Each field is named exactly as the contract's request property and defaults to :data:`UNSET`,
which means "leave it out of the body, so the server applies its own default". ``UNSET`` is
distinct from ``None``: the contract has no nullable fields, so ``None`` is never a value to
send. ``to_body()`` gives the JSON object to send, without the unset fields.

Values are checked when an option object is built (ranges and combinations the contract
states), so a wrong recipe value fails with a ``ValueError`` naming the field before anything
reaches a server. File paths are not part of these objects: the client's methods take them
separately and map them to server paths (see ``preform_pipeline.api.paths``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, Final, Literal, Protocol, runtime_checkable

from preform_pipeline.api.enums import (
    ApplicationMode,
    ImportUnits,
    Lock,
    PackingType,
    RaftType,
    RepairBehavior,
    Units,
    ViewType,
    WorkspaceMode,
)
from preform_pipeline.api.values import Orientation, Position

__all__ = [
    "ALL_MODELS",
    "UNSET",
    "AutoLayoutOptions",
    "AutoOrientOptions",
    "AutoPackOptions",
    "AutoSupportOptions",
    "CameraAngle",
    "CustomBounds",
    "DrainHole",
    "DrainHoleOptions",
    "FlyaroundTransform",
    "HollowOptions",
    "ImportOptions",
    "LabelOptions",
    "ModelSelection",
    "ModelUpdate",
    "PackAndCageOptions",
    "PrintOptions",
    "ScanToModelOptions",
    "ScreenshotOptions",
    "UnsetType",
]


class UnsetType:
    """Type of :data:`UNSET`: "not given", so the server's default applies."""

    _instance: UnsetType | None = None

    def __new__(cls) -> UnsetType:
        # One instance only, so ``value is UNSET`` holds after copies and dataclasses.replace.
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNSET"


UNSET: Final = UnsetType()

#: Select every model in the scene (the contract's ``"ALL"``).
ALL_MODELS: Final = "ALL"

#: ``"ALL"`` or a sequence of model ids.
ModelSelection = Literal["ALL"] | Sequence[str]


@runtime_checkable
class _HasBody(Protocol):
    def to_body(self) -> Any: ...


#: Values sent as they are. Tested by exact type first: most option values are plain
#: numbers and strings, and the Protocol check below is slow (it inspects the class).
_PLAIN_TYPES: Final = frozenset({str, int, float, bool, type(None)})


def _json_value(value: Any) -> Any:
    if type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, Enum):
        # The member's value, as ``.value`` gives it, without that property's two calls.
        return value._value_
    if isinstance(value, _HasBody):
        return value.to_body()
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    return value


#: Field names of each option class, read once (``dataclasses.fields`` builds them per call).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _fields_body(obj: Any) -> dict[str, Any]:
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        names = _FIELD_NAMES[type(obj)] = tuple(f.name for f in fields(obj))
    body: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        if value is not UNSET:
            body[name] = _json_value(value)
    return body


def _coerce_enum(obj: Any, name: str, enum: type[Enum]) -> None:
    """Accept the plain string a recipe holds as well as the member; refuse unknown values."""
    value = getattr(obj, name)
    if value is UNSET or isinstance(value, enum):
        return
    try:
        member = enum(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum)
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}") from None
    object.__setattr__(obj, name, member)


def _check_range(
    obj: Any,
    name: str,
    minimum: float | None = None,
    maximum: float | None = None,
) -> None:
    value = getattr(obj, name)
    if value is UNSET:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")


def _check_int(obj: Any, name: str, minimum: int | None = None) -> None:
    value = getattr(obj, name)
    if value is UNSET:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _normalise_models(obj: Any, name: str = "models") -> None:
    value = getattr(obj, name)
    if value is UNSET:
        return
    if isinstance(value, str):
        # A bare string other than "ALL" is almost always one id passed without a list.
        if value != ALL_MODELS:
            raise ValueError(
                f'{name} must be "ALL" or a list of model ids, got the string {value!r}'
            )
        return
    ids = tuple(value)
    if not all(isinstance(item, str) and item for item in ids):
        raise ValueError(f"{name} must contain non-empty model id strings, got {list(ids)!r}")
    object.__setattr__(obj, name, ids)


@dataclass(frozen=True)
class ImportOptions:
    """Options of import-model besides the file itself."""

    repair_behavior: RepairBehavior | UnsetType = UNSET
    name: str | UnsetType = UNSET
    position: Position | UnsetType = UNSET
    orientation: Orientation | UnsetType = UNSET
    scale: float | UnsetType = UNSET
    units: ImportUnits | UnsetType = UNSET
    lock: Lock | UnsetType = UNSET

    def __post_init__(self) -> None:
        _coerce_enum(self, "repair_behavior", RepairBehavior)
        _coerce_enum(self, "units", ImportUnits)
        _coerce_enum(self, "lock", Lock)
        _check_range(self, "scale")
        if not isinstance(self.scale, UnsetType) and self.scale <= 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)


@dataclass(frozen=True)
class ModelUpdate:
    """Properties of a model to change with update-model; unset ones stay as they are."""

    name: str | UnsetType = UNSET
    position: Position | UnsetType = UNSET
    orientation: Orientation | UnsetType = UNSET
    scale: float | UnsetType = UNSET
    units: Units | UnsetType = UNSET
    lock: Lock | UnsetType = UNSET

    def __post_init__(self) -> None:
        _coerce_enum(self, "units", Units)
        _coerce_enum(self, "lock", Lock)
        _check_range(self, "scale")
        if not isinstance(self.scale, UnsetType) and self.scale <= 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)


#: scan-to-model options the contract says only apply when ``hollow`` is true.
_HOLLOW_ONLY = (
    "shell_thickness_mm",
    "wall_thickness_mm",
    "drain_hole_radius_mm",
    "drain_hole_height_ratio",
    "drain_hole_suppression_distance_mm",
    "drain_hole_max_count",
)


@dataclass(frozen=True)
class ScanToModelOptions:
    """Options of scan-to-model (dental scan to solid model) besides the scan file(s).

    ``cutoff_height_mm`` is required by the contract. The shell, wall and drain-hole options
    need ``hollow=True``; setting them without it raises ``ValueError``.
    """

    cutoff_height_mm: float
    units: ImportUnits | UnsetType = UNSET
    extrude_distance_mm: float | UnsetType = UNSET
    hollow: bool | UnsetType = UNSET
    enable_honeycomb_infill: bool | UnsetType = UNSET
    cutoff_below_gumline_mm: float | UnsetType = UNSET
    shell_thickness_mm: float | UnsetType = UNSET
    wall_thickness_mm: float | UnsetType = UNSET
    drain_hole_radius_mm: float | UnsetType = UNSET
    drain_hole_height_ratio: float | UnsetType = UNSET
    drain_hole_suppression_distance_mm: float | UnsetType = UNSET
    drain_hole_max_count: float | UnsetType = UNSET
    enable_smooth_contour_extended_sides: bool | UnsetType = UNSET

    def __post_init__(self) -> None:
        _coerce_enum(self, "units", ImportUnits)
        for name in (
            "cutoff_height_mm",
            "extrude_distance_mm",
            "cutoff_below_gumline_mm",
            *_HOLLOW_ONLY,
        ):
            _check_range(self, name)
        if self.hollow is not True:
            given = [name for name in _HOLLOW_ONLY if getattr(self, name) is not UNSET]
            if given:
                raise ValueError(f"{', '.join(given)} only apply with hollow=True")

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)


@dataclass(frozen=True)
class AutoOrientOptions:
    """Options of auto-orient.

    ``mode`` unset orients with the standard workspace's algorithm; ``WorkspaceMode.DENTAL``
    uses the dental workspace's, and only then may ``tilt`` (degrees) be given.
    """

    models: ModelSelection | UnsetType = UNSET
    mode: WorkspaceMode | UnsetType = UNSET
    tilt: int | UnsetType = UNSET

    def __post_init__(self) -> None:
        _normalise_models(self)
        _coerce_enum(self, "mode", WorkspaceMode)
        _check_int(self, "tilt")
        if self.tilt is not UNSET and self.mode is not WorkspaceMode.DENTAL:
            raise ValueError("tilt only applies with mode=DENTAL")

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)


@dataclass(frozen=True)
class AutoSupportOptions:
    """Options of auto-support; every one has a server default."""

    models: ModelSelection | UnsetType = UNSET
    density: float | UnsetType = UNSET
    slope_multiplier: float | UnsetType = UNSET
    only_minima: bool | UnsetType = UNSET
    raft_type: RaftType | UnsetType = UNSET
    raft_label_enabled: bool | UnsetType = UNSET
    breakaway_structure_enabled: bool | UnsetType = UNSET
    touchpoint_size_mm: float | UnsetType = UNSET
    internal_supports_enabled: bool | UnsetType = UNSET
    raft_thickness_mm: float | UnsetType = UNSET
    height_above_raft_mm: float | UnsetType = UNSET
    z_compression_correction_mm: float | UnsetType = UNSET
    early_layer_merge_mm: float | UnsetType = UNSET

    def __post_init__(self) -> None:
        _normalise_models(self)
        _coerce_enum(self, "raft_type", RaftType)
        for name in (
            "density",
            "slope_multiplier",
            "touchpoint_size_mm",
            "raft_thickness_mm",
            "height_above_raft_mm",
            "z_compression_correction_mm",
            "early_layer_merge_mm",
        ):
            _check_range(self, name, minimum=0)

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)


@dataclass(frozen=True)
class CustomBounds:
    """Platform region (scene mm) that auto-layout keeps the selected models inside."""

    x_min_mm: float | UnsetType = UNSET
    x_max_mm: float | UnsetType = UNSET
    y_min_mm: float | UnsetType = UNSET
    y_max_mm: float | UnsetType = UNSET

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)


@dataclass(frozen=True)
class AutoLayoutOptions:
    """Options of auto-layout (SLA scenes); ``mode`` unset means the standard workspace."""

    models: ModelSelection | UnsetType = UNSET
    mode: WorkspaceMode | UnsetType = UNSET
    model_spacing_mm: float | UnsetType = UNSET
    allow_overlapping_supports: bool | UnsetType = UNSET
    lock_rotation: bool | UnsetType = UNSET
    build_platform_2_optimized: bool | UnsetType = UNSET
    custom_bounds: CustomBounds | UnsetType = UNSET

    def __post_init__(self) -> None:
        _normalise_models(self)
        _coerce_enum(self, "mode", WorkspaceMode)
        _check_range(self, "model_spacing_mm", minimum=0)

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)


@dataclass(frozen=True)
class AutoPackOptions:
    """Options of auto-pack (SLS scenes)."""

    model_spacing_mm: float | UnsetType = UNSET

    def __post_init__(self) -> None:
        _check_range(self, "model_spacing_mm", minimum=0)

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)


@dataclass(frozen=True)
class PackAndCageOptions:
    """Options of pack-and-cage (SLS scenes). ``models`` is required, so it defaults to ALL.

    The contract nests the packing type in an object (``{"packing_type": {"packing_type":
    "PACK_VOLUME"}}``); ``to_body()`` builds that shape from the plain ``packing_type`` field.
    """

    models: ModelSelection = ALL_MODELS
    packing_type: PackingType | UnsetType = UNSET
    cage_label: str | UnsetType = UNSET
    generate_mesh_label: bool | UnsetType = UNSET
    model_spacing_mm: float | UnsetType = UNSET
    bar_spacing_mm: float | UnsetType = UNSET
    bar_thickness_mm: float | UnsetType = UNSET
    bar_width_mm: float | UnsetType = UNSET
    distance_to_cage_mm: float | UnsetType = UNSET
    enable_round_edges: bool | UnsetType = UNSET
    enable_square_bars: bool | UnsetType = UNSET

    def __post_init__(self) -> None:
        _normalise_models(self)
        _coerce_enum(self, "packing_type", PackingType)
        for name in ("model_spacing_mm", "bar_spacing_mm", "distance_to_cage_mm"):
            _check_range(self, name, minimum=0)
        for name in ("bar_thickness_mm", "bar_width_mm"):
            _check_range(self, name, minimum=1)

    def to_body(self) -> dict[str, Any]:
        body = _fields_body(self)
        if "packing_type" in body:
            body["packing_type"] = {"packing_type": body["packing_type"]}
        return body


@dataclass(frozen=True)
class HollowOptions:
    """Options of hollow."""

    models: ModelSelection | UnsetType = UNSET
    wall_thickness_mm: float | UnsetType = UNSET
    feature_size_mm: float | UnsetType = UNSET
    accuracy: float | UnsetType = UNSET

    def __post_init__(self) -> None:
        _normalise_models(self)
        _check_range(self, "wall_thickness_mm", minimum=0.1)
        _check_range(self, "feature_size_mm", minimum=0.05)
        _check_range(self, "accuracy", minimum=0, maximum=1)

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)


@dataclass(frozen=True)
class LabelOptions:
    """A label wrapped onto one model's surface; all but ``application_mode`` are required."""

    model_id: str
    label: str
    position: Position
    orientation: Orientation
    font_size_mm: float
    depth_mm: float
    application_mode: ApplicationMode | UnsetType = UNSET

    def __post_init__(self) -> None:
        _coerce_enum(self, "application_mode", ApplicationMode)
        _check_range(self, "font_size_mm", minimum=2, maximum=20)
        _check_range(self, "depth_mm", minimum=0.2, maximum=10)
        if not self.model_id:
            raise ValueError("model_id must not be empty")

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)


@dataclass(frozen=True)
class DrainHole:
    """One drain hole; ``depth_mm="AUTO"`` lets the server choose the depth.

    ``max_search_distance`` (mm from ``position`` to look for the surface) needs
    ``depth_mm="AUTO"``.
    """

    position: Position
    orientation: Orientation
    diameter_mm: float
    depth_mm: float | Literal["AUTO"]
    create_plug: bool
    outset_mm: float | UnsetType = UNSET
    max_search_distance: float | UnsetType = UNSET

    def __post_init__(self) -> None:
        _check_range(self, "diameter_mm", minimum=0)
        _check_range(self, "outset_mm", minimum=0)
        _check_range(self, "max_search_distance", minimum=0)
        if self.depth_mm != "AUTO":
            _check_range(self, "depth_mm", minimum=0)
            if self.max_search_distance is not UNSET:
                raise ValueError('max_search_distance only applies with depth_mm="AUTO"')

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)


@dataclass(frozen=True)
class DrainHoleOptions:
    """Drain holes to add to one model (at least one)."""

    model_id: str
    drain_holes: Sequence[DrainHole]

    def __post_init__(self) -> None:
        holes = tuple(self.drain_holes)
        if not holes:
            raise ValueError("drain_holes needs at least one DrainHole")
        object.__setattr__(self, "drain_holes", holes)

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)


@dataclass(frozen=True)
class PrintOptions:
    """Where and under which name to send a scene.

    ``printer`` is a printer serial name, an IP address or a Fleet Control queue id.
    ``print_now`` unset lets the server start printing if the printer is ready, else queue.
    """

    printer: str
    job_name: str
    find_printer_timeout_seconds: int | UnsetType = UNSET
    print_now: bool | UnsetType = UNSET

    def __post_init__(self) -> None:
        _check_int(self, "find_printer_timeout_seconds", minimum=0)
        if not self.printer:
            raise ValueError("printer must not be empty")

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)


@dataclass(frozen=True)
class CameraAngle:
    """A camera direction: yaw 0 looks down -x; pitch 0 is level, positive looks down."""

    yaw: float
    pitch: float

    def to_body(self) -> dict[str, float]:
        return {"yaw": self.yaw, "pitch": self.pitch}


@dataclass(frozen=True)
class FlyaroundTransform:
    """An animated .webp flyaround through at least two camera angles."""

    transform: Sequence[CameraAngle]
    frame_count: float | UnsetType = UNSET
    ensure_constant_size: bool | UnsetType = UNSET

    def __post_init__(self) -> None:
        angles = tuple(self.transform)
        if len(angles) < 2:
            raise ValueError("a flyaround needs at least 2 camera angles")
        object.__setattr__(self, "transform", angles)
        _check_range(self, "frame_count", minimum=1)

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)


@dataclass(frozen=True)
class ScreenshotOptions:
    """Options of save-screenshot besides the .png/.webp file path."""

    view_type: ViewType | UnsetType = UNSET
    yaw: float | UnsetType = UNSET
    pitch: float | UnsetType = UNSET
    image_size_px: int | UnsetType = UNSET
    crop_to_models: bool | UnsetType = UNSET
    models: ModelSelection | UnsetType = UNSET
    flyaround_transform: FlyaroundTransform | UnsetType = UNSET

    def __post_init__(self) -> None:
        _coerce_enum(self, "view_type", ViewType)
        _normalise_models(self)
        _check_int(self, "image_size_px", minimum=1)

    def to_body(self) -> dict[str, Any]:
        return _fields_body(self)
