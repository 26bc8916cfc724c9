"""Typed results of Local API calls, as frozen dataclasses.

Field names follow the contract's JSON keys. Every result parsed from a server object keeps
that object in ``raw`` (left out of ``==`` and ``repr``), so a field the client does not type
yet is still at hand. ``from_json`` raises :class:`~preform_pipeline.api._parse.MalformedResponse`
for a body that breaks the contract; the client reports that as a ``ServerInternalError``.

Absent optional values are ``None`` here: results describe what the server said, and the
contract leaves most response properties optional.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from preform_pipeline.api._parse import (
    MalformedResponse,
    as_object,
    opt_bool,
    opt_fraction,
    opt_int,
    opt_number,
    opt_object,
    opt_str,
    opt_str_list,
    req_number,
    req_str,
)
from preform_pipeline.api.enums import OperationStatus
from preform_pipeline.api.values import BoundingBox, EulerAngles, Position

__all__ = [
    "ActionReport",
    "ApiVersion",
    "Device",
    "DrainHoleResult",
    "FpsSettings",
    "Interferences",
    "Material",
    "MaterialCatalogue",
    "MaterialSetting",
    "MaterialUsage",
    "ModelInfo",
    "ModelValidation",
    "Operation",
    "PrintResult",
    "PrintTimeEstimate",
    "PrintValidation",
    "PrinterType",
    "ReplaceResult",
    "ScanToModelResult",
    "Scene",
    "SceneSettings",
    "SlaMaterialUsage",
    "SlsMaterialUsage",
    "User",
    "WebAuthTokens",
    "parse_scene_settings",
]


def _raw() -> Any:
    """The ``raw`` field: the server's object, kept out of comparisons and repr."""
    return field(default_factory=dict, compare=False, repr=False)


# --------------------------------------------------------------------------- scene settings


@dataclass(frozen=True)
class SceneSettings:
    """Printer type, material and layer thickness of a scene (the contract's "Manual" form).

    Used both to create/update a scene and as the settings a scene reports. ``None`` optional
    fields are left out of the request body.
    """

    machine_type: str
    material_code: str
    layer_thickness_mm: float | Literal["ADAPTIVE"]
    print_setting: str | None = None
    custom_print_setting_id: str | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "machine_type": self.machine_type,
            "material_code": self.material_code,
            "layer_thickness_mm": self.layer_thickness_mm,
        }
        if self.print_setting is not None:
            body["print_setting"] = self.print_setting
        if self.custom_print_setting_id is not None:
            body["custom_print_setting_id"] = self.custom_print_setting_id
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SceneSettings:
        thickness = data.get("layer_thickness_mm")
        if thickness != "ADAPTIVE":
            thickness = req_number(data, "layer_thickness_mm")
        return cls(
            machine_type=req_str(data, "machine_type"),
            material_code=req_str(data, "material_code"),
            layer_thickness_mm=thickness,
            print_setting=opt_str(data, "print_setting"),
            custom_print_setting_id=opt_str(data, "custom_print_setting_id"),
        )


@dataclass(frozen=True)
class FpsSettings:
    """Scene settings taken from a .fps print-settings file.

    In a request the client maps ``fps_file`` to a server path like every other path; in a
    result it is the server's own path string.
    """

    fps_file: str | Path


def parse_scene_settings(data: Any) -> SceneSettings | FpsSettings:
    obj = as_object(data, "scene_settings")
    if "fps_file" in obj:
        return FpsSettings(req_str(obj, "fps_file"))
    return SceneSettings.from_json(obj)


# --------------------------------------------------------------------------- material usage


@dataclass(frozen=True)
class SlaMaterialUsage:
    """Resin use of an SLA scene: with supports, and of the models alone."""

    volume_ml: float
    unsupported_volume_ml: float
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class SlsMaterialUsage:
    """Powder use of an SLS scene."""

    total_powder_ml: float
    total_powder_kg: float
    total_sintered_powder_ml: float
    total_sintered_powder_kg: float
    mass_packing_density: float
    raw: Mapping[str, Any] = _raw()


MaterialUsage = SlaMaterialUsage | SlsMaterialUsage


def _parse_material_usage(data: Any) -> MaterialUsage:
    obj = as_object(data, "material_usage")
    if "volume_ml" in obj:
        return SlaMaterialUsage(
            req_number(obj, "volume_ml"), req_number(obj, "unsupported_volume_ml"), raw=obj
        )
    return SlsMaterialUsage(
        req_number(obj, "total_powder_ml"),
        req_number(obj, "total_powder_kg"),
        req_number(obj, "total_sintered_powder_ml"),
        req_number(obj, "total_sintered_powder_kg"),
        req_number(obj, "mass_packing_density"),
        raw=obj,
    )


# --------------------------------------------------------------------------- models and scenes


@dataclass(frozen=True)
class ModelInfo:
    """One model in a scene (the contract's ModelProperties).

    ``units`` and ``lock`` hold the server's strings; they compare equal to the members of
    :class:`~preform_pipeline.api.enums.Units` and :class:`~preform_pipeline.api.enums.Lock`.
    """

    id: str
    name: str | None = None
    position: Position | None = None
    orientation: EulerAngles | None = None
    scale: float | None = None
    units: str | None = None
    bounding_box: BoundingBox | None = None
    original_file: str | None = None
    visible: bool | None = None
    has_supports: bool | None = None
    in_bounds: bool | None = None
    raw_mesh_hash: str | None = None
    canonical_model_hash: str | None = None
    lock: str | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> ModelInfo:
        obj = as_object(data, "model")
        plain = _plain_model(obj) if type(obj) is dict and cls is ModelInfo else None
        return plain if plain is not None else cls._read(obj)

    @classmethod
    def _read(cls, obj: Mapping[str, Any]) -> ModelInfo:
        """A model by the general readers, which check each field and explain an error."""
        position = obj.get("position")
        orientation = obj.get("orientation")
        box = opt_object(obj, "bounding_box")
        return cls(
            id=req_str(obj, "id"),
            name=opt_str(obj, "name"),
            position=None if position is None else Position.from_json(position),
            orientation=None if orientation is None else EulerAngles.from_json(orientation),
            scale=opt_number(obj, "scale"),
            units=opt_str(obj, "units"),
            bounding_box=(
                BoundingBox.from_json(box)
                if box is not None and "min_corner" in box and "max_corner" in box
                else None
            ),
            original_file=opt_str(obj, "original_file"),
            visible=opt_bool(obj, "visible"),
            has_supports=opt_bool(obj, "has_supports"),
            in_bounds=opt_bool(obj, "in_bounds"),
            raw_mesh_hash=opt_str(obj, "raw_mesh_hash"),
            canonical_model_hash=opt_str(obj, "canonical_model_hash"),
            lock=opt_str(obj, "lock"),
            raw=obj,
        )


def _plain_point(data: Any) -> Position | None:
    """A point of three floats; None for anything else (``_plain_model`` then gives up)."""
    if type(data) is dict:
        x, y, z = data.get("x"), data.get("y"), data.get("z")
        if type(x) is float and type(y) is float and type(z) is float:
            return Position(x, y, z)
    return None


def _plain_model(obj: dict[str, Any]) -> ModelInfo | None:
    """The model of a usual answer, read in one pass: every text a string or missing, every
    flag a boolean or missing, the scale and the points' coordinates floats (what servers
    send: an import answers one, a layout five or thirty). The same ModelInfo the general
    readers make of it, with a few calls instead of about thirty; None for anything else,
    which the general readers then read, and explain when it is wrong."""
    get = obj.get
    model_id = get("id")
    texts = (get("name"), get("units"), get("original_file"), get("raw_mesh_hash"),
             get("canonical_model_hash"), get("lock"))
    flags = (get("visible"), get("has_supports"), get("in_bounds"))
    scale = get("scale")
    if type(model_id) is not str or not (scale is None or type(scale) is float):
        return None
    for text in texts:
        if text is not None and type(text) is not str:
            return None
    for flag in flags:
        if flag is not None and type(flag) is not bool:
            return None
    position = orientation = box = None
    raw_position = get("position")
    if raw_position is not None:
        position = _plain_point(raw_position)
        if position is None:
            return None
    raw_orientation = get("orientation")
    if raw_orientation is not None:
        point = _plain_point(raw_orientation)
        if point is None:
            return None
        orientation = EulerAngles(point.x, point.y, point.z)
    raw_box = get("bounding_box")
    if raw_box is not None:
        if type(raw_box) is not dict:
            return None
        if "min_corner" in raw_box and "max_corner" in raw_box:
            low, high = _plain_point(raw_box["min_corner"]), _plain_point(raw_box["max_corner"])
            if low is None or high is None:
                return None
            box = BoundingBox(low, high)
    name, units, original, raw_hash, canonical, lock = texts
    visible, supports, in_bounds = flags
    return ModelInfo(
        id=model_id, name=name, position=position, orientation=orientation, scale=scale,
        units=units, bounding_box=box, original_file=original, visible=visible,
        has_supports=supports, in_bounds=in_bounds, raw_mesh_hash=raw_hash,
        canonical_model_hash=canonical, lock=lock, raw=obj,
    )


def _parse_models(obj: Mapping[str, Any]) -> tuple[ModelInfo, ...]:
    models = obj.get("models")
    if models is None:
        return ()
    if not isinstance(models, list):
        raise MalformedResponse(f"models: expected a list, got {models!r}")
    return tuple(ModelInfo.from_json(item) for item in models)


@dataclass(frozen=True)
class Scene:
    """A scene: its models, settings and material use (the contract's SceneModel)."""

    id: str | None
    models: tuple[ModelInfo, ...] = ()
    scene_settings: SceneSettings | FpsSettings | None = None
    material_usage: MaterialUsage | None = None
    layer_count: int | None = None
    raw: Mapping[str, Any] = _raw()

    @property
    def model_ids(self) -> tuple[str, ...]:
        return tuple(model.id for model in self.models)

    def model(self, model_id: str) -> ModelInfo:
        """The model with ``model_id``; ``KeyError`` if the scene has none."""
        for model in self.models:
            if model.id == model_id:
                return model
        raise KeyError(model_id)

    @classmethod
    def from_json(cls, data: Any) -> Scene:
        obj = as_object(data, "scene")
        settings = obj.get("scene_settings")
        usage = obj.get("material_usage")
        return cls(
            id=opt_str(obj, "id"),
            models=_parse_models(obj),
            scene_settings=None if settings is None else parse_scene_settings(settings),
            material_usage=None if usage is None else _parse_material_usage(usage),
            layer_count=opt_int(obj, "layer_count"),
            raw=obj,
        )


@dataclass(frozen=True)
class ScanToModelResult:
    """The scene after scan-to-model, with the server's warnings and info messages."""

    scene: Scene
    warnings: tuple[str, ...] = ()
    infos: tuple[str, ...] = ()
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> ScanToModelResult:
        obj = as_object(data, "scan-to-model result")
        return cls(
            Scene.from_json(obj), opt_str_list(obj, "warnings"), opt_str_list(obj, "infos"), obj
        )


@dataclass(frozen=True)
class ReplaceResult:
    """The replacing model's properties and any warnings from replace-model."""

    model: ModelInfo | None
    warnings: tuple[str, ...] = ()
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> ReplaceResult:
        obj = as_object(data, "replace result")
        props = obj.get("model_properties")
        return cls(
            None if props is None else ModelInfo.from_json(props),
            opt_str_list(obj, "warnings"),
            obj,
        )


@dataclass(frozen=True)
class ActionReport:
    """Warnings and info messages of hollow and label (both succeed with messages)."""

    warnings: tuple[str, ...] = ()
    infos: tuple[str, ...] = ()
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> ActionReport:
        obj = as_object({} if data is None else data, "result")
        return cls(opt_str_list(obj, "warnings"), opt_str_list(obj, "infos"), obj)


@dataclass(frozen=True)
class DrainHoleResult:
    """Outcome of add-drain-holes: ids of the plug models created, warnings, infos."""

    plugs: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    infos: tuple[str, ...] = ()
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> DrainHoleResult:
        obj = as_object({} if data is None else data, "add-drain-holes result")
        plugs = obj.get("plugs")
        if plugs == "ALL":
            # The contract types plugs as a model selection; "ALL" carries no ids to report.
            plug_ids: tuple[str, ...] = ()
        else:
            plug_ids = opt_str_list(obj, "plugs")
        return cls(plug_ids, opt_str_list(obj, "warnings"), opt_str_list(obj, "infos"), obj)


# --------------------------------------------------------------------------- checks and estimates


@dataclass(frozen=True)
class ModelValidation:
    """Print-validation findings for one model."""

    cups: int | None = None
    unsupported_minima: int | None = None
    undersupported: bool | None = None
    has_seamline: bool | None = None

    @classmethod
    def from_json(cls, data: Any) -> ModelValidation:
        obj = as_object(data, "per_model_results entry")
        return cls(
            opt_int(obj, "cups"),
            opt_int(obj, "unsupported_minima"),
            opt_bool(obj, "undersupported"),
            opt_bool(obj, "has_seamline"),
        )


@dataclass(frozen=True)
class PrintValidation:
    """Print validation of a scene, by model id."""

    per_model_results: Mapping[str, ModelValidation]
    raw: Mapping[str, Any] = _raw()

    @property
    def undersupported_model_ids(self) -> tuple[str, ...]:
        return tuple(mid for mid, r in self.per_model_results.items() if r.undersupported)

    @property
    def models_with_unsupported_minima(self) -> tuple[str, ...]:
        return tuple(mid for mid, r in self.per_model_results.items() if r.unsupported_minima)

    @classmethod
    def from_json(cls, data: Any) -> PrintValidation:
        obj = as_object(data, "print validation")
        per_model = opt_object(obj, "per_model_results") or {}
        return cls(
            {str(mid): ModelValidation.from_json(entry) for mid, entry in per_model.items()},
            obj,
        )


@dataclass(frozen=True)
class PrintTimeEstimate:
    """Estimated print time in seconds; the cooling times are reported for SLS only."""

    total_print_time_s: float | None = None
    preprint_time_s: float | None = None
    printing_time_s: float | None = None
    cool_to_removal_time_s: float | None = None
    additional_cool_to_room_temp_time_s: float | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> PrintTimeEstimate:
        obj = as_object(data, "print time estimate")
        return cls(
            opt_number(obj, "total_print_time_s"),
            opt_number(obj, "preprint_time_s"),
            opt_number(obj, "printing_time_s"),
            opt_number(obj, "cool_to_removal_time_s"),
            opt_number(obj, "additional_cool_to_room_temp_time_s"),
            obj,
        )


@dataclass(frozen=True)
class Interferences:
    """Pairs of ids of models that interfere with each other.

    The contract documents no body for this answer beyond "a list of pairs of IDs"; the client
    reads a top-level list of pairs, or such a list under an ``interferences`` key.
    """

    pairs: tuple[tuple[str, str], ...] = ()
    raw: Any = field(default=None, compare=False, repr=False)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    @classmethod
    def from_json(cls, data: Any) -> Interferences:
        items = data
        if isinstance(data, Mapping):
            items = data.get("interferences", [])
        if items is None:
            items = []
        if not isinstance(items, list):
            raise MalformedResponse(f"interferences: expected a list of pairs, got {data!r}")
        pairs = []
        for item in items:
            if (
                not isinstance(item, (list, tuple))
                or len(item) != 2
                or not all(isinstance(i, str) for i in item)
            ):
                raise MalformedResponse(f"interferences: expected [id, id] pairs, got {item!r}")
            pairs.append((item[0], item[1]))
        return cls(tuple(pairs), data)


# --------------------------------------------------------------------------- printing and devices


@dataclass(frozen=True)
class PrintResult:
    """A job handed to a printer or queue."""

    job_id: str | None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> PrintResult:
        # No empty answer taken for a print sent, unlike the steps that read the scene after
        # (label, layout): nothing else would ever say the print did not go out, and the
        # build was recorded sent when the server had printed nothing (session 47's fuzzer).
        # Unreadable, the print is unconfirmed: a person checks the printer.
        obj = as_object(data, "print result")
        return cls(opt_str(obj, "job_id"), obj)


@dataclass(frozen=True)
class Device:
    """A printer, Fleet Control group or other device the server knows about.

    The fields every device status has are typed; printer-family fields (tank, cartridges,
    Fuse powder, Fleet Control queue) are typed where a pipeline needs them and kept in
    ``raw`` otherwise.
    """

    id: str
    product_name: str | None = None
    status: str | None = None
    is_connected: bool | None = None
    connection_type: str | None = None
    ip_address: str | None = None
    firmware_version: str | None = None
    ready_to_print_now: bool | None = None
    is_remote_print_enabled: bool | None = None
    tank_material_code: str | None = None
    estimated_print_time_remaining_ms: int | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> Device:
        obj = as_object(data, "device")
        return cls(
            id=req_str(obj, "id"),
            product_name=opt_str(obj, "product_name"),
            status=opt_str(obj, "status"),
            is_connected=opt_bool(obj, "is_connected"),
            connection_type=opt_str(obj, "connection_type"),
            ip_address=opt_str(obj, "ip_address"),
            firmware_version=opt_str(obj, "firmware_version"),
            ready_to_print_now=opt_bool(obj, "ready_to_print_now"),
            is_remote_print_enabled=opt_bool(obj, "is_remote_print_enabled"),
            tank_material_code=opt_str(obj, "tank_material_code"),
            estimated_print_time_remaining_ms=opt_int(obj, "estimated_print_time_remaining_ms"),
            raw=obj,
        )

    @staticmethod
    def list_from_json(data: Any) -> tuple[Device, ...]:
        obj = as_object(data, "device list")
        devices = obj.get("devices") or []
        if not isinstance(devices, list):
            raise MalformedResponse(f"devices: expected a list, got {devices!r}")
        return tuple(Device.from_json(item) for item in devices)


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Operation:
    """An asynchronous operation's state; ``result`` is set once it succeeded or failed.

    ``result`` has the shape of the operation's synchronous answer when it succeeded, and of
    its error answer (usually ``{"error": {"code", "message"}}``) when it failed.
    """

    id: str
    status: OperationStatus
    progress: float | None = None
    result: Any = None
    raw: Mapping[str, Any] = _raw()

    @property
    def done(self) -> bool:
        return self.status is not OperationStatus.IN_PROGRESS

    @classmethod
    def from_json(cls, data: Any) -> Operation:
        obj = as_object(data, "operation")
        status_text = req_str(obj, "status")
        try:
            status = OperationStatus(status_text)
        except ValueError:
            raise MalformedResponse(f"status: unknown operation status {status_text!r}") from None
        return cls(
            id=req_str(obj, "id"),
            status=status,
            # The contract's progress runs from 0.0 to 1.0; any other (1.5, -1, NaN: session
            # 47's fuzzer) is no progress known, not "still in progress at 150%". Not refused:
            # it says nothing of the operation itself.
            progress=opt_fraction(obj, "progress"),
            result=obj.get("result"),
            raw=obj,
        )

    @staticmethod
    def list_from_json(data: Any) -> tuple[Operation, ...]:
        obj = as_object(data, "operation list")
        items = obj.get("operations") or []
        if not isinstance(items, list):
            raise MalformedResponse(f"operations: expected a list, got {items!r}")
        return tuple(Operation.from_json(item) for item in items)


# --------------------------------------------------------------------------- API info, account


@dataclass(frozen=True)
class ApiVersion:
    """The Local API version a server speaks, e.g. ``"0.9.12"``."""

    version: str
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> ApiVersion:
        obj = as_object(data, "API version")
        return cls(req_str(obj, "version"), obj)


@dataclass(frozen=True)
class User:
    """The Formlabs account the server is logged in with."""

    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    persistent_id: str | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> User:
        obj = as_object(data, "user")
        return cls(
            opt_str(obj, "username"),
            opt_str(obj, "first_name"),
            opt_str(obj, "last_name"),
            opt_str(obj, "email"),
            opt_str(obj, "persistent_id"),
            obj,
        )


@dataclass(frozen=True)
class WebAuthTokens:
    """Tokens a login returned. Never shown by ``repr`` so they cannot leak into logs."""

    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> WebAuthTokens:
        obj = as_object({} if data is None else data, "login result")
        return cls(opt_str(obj, "access_token"), opt_str(obj, "refresh_token"), obj)


# --------------------------------------------------------------------------- materials


@dataclass(frozen=True)
class MaterialSetting:
    """One material setting (e.g. "0.100mm") and the scene settings that select it."""

    label: str | None
    scene_settings: SceneSettings | FpsSettings | None


@dataclass(frozen=True)
class Material:
    """One material of a printer type, with its settings."""

    label: str | None
    description: str | None
    material_settings: tuple[MaterialSetting, ...]


@dataclass(frozen=True)
class PrinterType:
    """A printer type (e.g. "Form 4") with its build volume and materials."""

    label: str | None
    build_volume_dimensions_mm: tuple[float, ...] | None
    supported_machine_type_ids: tuple[str, ...]
    supported_product_names: tuple[str, ...]
    materials: tuple[Material, ...]


@dataclass(frozen=True)
class MaterialCatalogue:
    """What list-materials answered: printer types, their materials and settings."""

    printer_types: tuple[PrinterType, ...]
    raw: Mapping[str, Any] = _raw()

    def scene_settings_for(
        self, machine_type: str, material_code: str
    ) -> tuple[SceneSettings, ...]:
        """Every listed setting for ``machine_type`` with ``material_code``, in server order."""
        found: list[SceneSettings] = []
        for printer in self.printer_types:
            for material in printer.materials:
                for setting in material.material_settings:
                    s = setting.scene_settings
                    if (
                        isinstance(s, SceneSettings)
                        and s.machine_type == machine_type
                        and s.material_code == material_code
                    ):
                        found.append(s)
        return tuple(found)

    @classmethod
    def from_json(cls, data: Any) -> MaterialCatalogue:
        obj = as_object(data, "material list")
        printers = []
        for p in _list(obj, "printer_types"):
            p_obj = as_object(p, "printer type")
            materials = []
            for m in _list(p_obj, "materials"):
                m_obj = as_object(m, "material")
                settings = []
                for s in _list(m_obj, "material_settings"):
                    s_obj = as_object(s, "material setting")
                    raw_settings = s_obj.get("scene_settings")
                    settings.append(
                        MaterialSetting(
                            opt_str(s_obj, "label"),
                            None if raw_settings is None else parse_scene_settings(raw_settings),
                        )
                    )
                materials.append(
                    Material(
                        opt_str(m_obj, "label"), opt_str(m_obj, "description"), tuple(settings)
                    )
                )
            dims = p_obj.get("build_volume_dimensions_mm")
            if dims is not None and not (
                isinstance(dims, list)
                and all(isinstance(d, (int, float)) and not isinstance(d, bool) for d in dims)
            ):
                raise MalformedResponse(
                    f"build_volume_dimensions_mm: expected numbers, got {dims!r}"
                )
            printers.append(
                PrinterType(
                    opt_str(p_obj, "label"),
                    None if dims is None else tuple(float(d) for d in dims),
                    opt_str_list(p_obj, "supported_machine_type_ids"),
                    opt_str_list(p_obj, "supported_product_names"),
                    tuple(materials),
                )
            )
        return cls(tuple(printers), obj)


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedResponse(f"{key}: expected a list, got {value!r}")
    return value
