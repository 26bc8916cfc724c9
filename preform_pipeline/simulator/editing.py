"""Per-model edits: hollowing, drain holes, labels, and scan-to-model.

Each function reads and checks its whole request body first and changes the scene only when
everything is valid, so a 400 answer leaves the scene as it was. The simulator records the
edits on the model (they travel with save-form) and lets them change what it reports: a
hollowed model's volume becomes its shell, labels add (emboss) or remove (engrave) material,
plugs become models of their own. It does not cut the mesh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from preform_pipeline.geometry import INCH_MM, Mesh, detect_units, read_mesh
from preform_pipeline.wording import counted, noun

from .bodies import Body, bad_body, euler_of, existing_file, orientation_matrix
from .layout import DEFAULT_MODEL_SPACING_MM
from .meshops import cylinder_triangles, scan_to_solid
from .protocol import Json, SimError
from .scene import Scene, SimModel, new_id

__all__ = [
    "DEFAULT_HOLLOW_FEATURE_SIZE_MM",
    "DEFAULT_HOLLOW_WALL_MM",
    "IMPORT_UNITS",
    "LABEL_CHAR_WIDTH",
    "PLUG_CLEARANCE_MM",
    "SURFACE_TOLERANCE_MM",
    "ScanRequest",
    "add_drain_holes",
    "hollow_models",
    "label_model",
    "scan_models",
]

DEFAULT_HOLLOW_WALL_MM: Final = 2.0
DEFAULT_HOLLOW_FEATURE_SIZE_MM: Final = 1.0
#: Labels and drain holes must be centred within this distance of the model's bounding box.
SURFACE_TOLERANCE_MM: Final = 1.0
#: Clearance between a drain-hole plug and its hole, on the radius.
PLUG_CLEARANCE_MM: Final = 0.1
#: Width of a label character relative to the font size, for the fit and volume rules.
LABEL_CHAR_WIDTH: Final = 0.6
IMPORT_UNITS: Final = ("DETECTED", "MILLIMETERS", "INCHES")


def _distance_to_box(model: SimModel, point: tuple[float, float, float]) -> float:
    low, high = model.bounds()
    p = np.array(point)
    outside = np.maximum(low - p, 0.0) + np.maximum(p - high, 0.0)
    return float(np.linalg.norm(outside))


def _low_corner(model: SimModel) -> tuple[float, float, float]:
    low = model.bounds()[0]
    return float(low[0]), float(low[1]), float(low[2])


def _xyz(values: tuple[float, float, float]) -> Json:
    return {"x": values[0], "y": values[1], "z": values[2]}


# -- hollowing ---------------------------------------------------------------------------------


def hollow_models(scene: Scene, data: Body) -> Json:
    """Hollow the selected models. A model thinner than two walls plus the feature size cannot
    be hollowed: it keeps its solid and the answer carries a warning naming it. An open mesh
    (imported with holes) has no inside to hollow: the operation fails (400, ``failures``
    listing those models, as the contract's answer does) and no model is hollowed."""
    wall = data.number("wall_thickness_mm", DEFAULT_HOLLOW_WALL_MM, minimum=0.1)
    feature = data.number("feature_size_mm", DEFAULT_HOLLOW_FEATURE_SIZE_MM, minimum=0.05)
    accuracy = data.number("accuracy", 0.5, minimum=0.0, maximum=1.0)
    assert wall is not None and feature is not None
    selected = scene.select(data.selection())
    open_models = [m.id for m in selected if not m.mesh.is_closed()]
    if open_models:
        raise SimError(
            400, "HOLLOW_FAILED",
            f"cannot hollow {counted(len(open_models), 'model')} with "
            f"{noun(len(open_models), 'an open mesh', 'open meshes')}: "
            + ", ".join(open_models[:10]),
            extra={"failures": open_models},
        )
    warnings: list[str] = []
    for model in selected:
        thinnest = min(model.size())
        if thinnest <= 2 * wall + feature:
            warnings.append(
                f"Failed to hollow model with ID {model.id}: it is {thinnest:.2f} mm thin, "
                f"too thin for {wall:g} mm walls"
            )
            continue
        model.hollow = {"wall_thickness_mm": wall, "feature_size_mm": feature, "accuracy": accuracy}
    return {"warnings": warnings, "infos": []}


# -- drain holes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hole:
    record: Json
    point: tuple[float, float, float]
    diameter: float
    reach: float


def _drain_hole(body: Body) -> _Hole:
    orientation = body.object("orientation", required=True)
    assert orientation is not None
    rotation = orientation_matrix(orientation)
    position = body.triple("position")
    if position is None:
        raise bad_body(body.at("position"), "is required")
    diameter = body.number("diameter_mm", required=True, exclusive_minimum=0.0)
    assert diameter is not None
    depth: Any = body.raw("depth_mm")
    if depth != "AUTO":
        depth = body.number("depth_mm", required=True, minimum=0.0)
    create_plug = body.boolean("create_plug")
    if create_plug is None:
        raise bad_body(body.at("create_plug"), "is required")
    search = body.number("max_search_distance", minimum=0.0)
    if search is not None and depth != "AUTO":
        raise bad_body(body.at("max_search_distance"), 'requires depth_mm "AUTO"')
    record = {
        "orientation": _xyz(euler_of(rotation)),
        "position": _xyz(position),
        "diameter_mm": diameter,
        "depth_mm": depth,
        "outset_mm": body.number("outset_mm", 0.0, minimum=0.0),
        "create_plug": create_plug,
        "max_search_distance": search,
    }
    return _Hole(record, position, diameter, search or SURFACE_TOLERANCE_MM)


def _plug(hole: Json, model: SimModel) -> SimModel:
    """A cylinder that closes ``hole``, standing on the platform beside its model."""
    radius = max(0.05, float(hole["diameter_mm"]) / 2 - PLUG_CLEARANCE_MM)
    depth = hole["depth_mm"]
    wall = float((model.hollow or {}).get("wall_thickness_mm", DEFAULT_HOLLOW_WALL_MM))
    height = float(depth) if depth != "AUTO" and float(depth) > 0 else wall
    low, high = model.bounds()
    beside = float(high[0]) + DEFAULT_MODEL_SPACING_MM + radius
    position = (beside, float(low[1] + high[1]) / 2, 0.0)
    mesh = Mesh(cylinder_triangles(radius, height).astype(np.float32), "plug")
    return SimModel(
        model_id=new_id(),
        name=f"{model.name} plug",
        mesh=mesh,
        original_file="",
        position=position,
    )


def add_drain_holes(scene: Scene, data: Body) -> Json:
    """Record drain holes on a model; a hole must sit on the model (within its
    ``max_search_distance``, or :data:`SURFACE_TOLERANCE_MM`, of the bounding box) and be
    narrower than the model. ``create_plug`` adds a plug model per hole."""
    data.only(("model_id", "drain_holes"))
    model_id = data.req_string("model_id")
    raw_holes = data.raw("drain_holes")
    if not isinstance(raw_holes, list) or not raw_holes:
        raise bad_body("$.drain_holes", "expected a non-empty array of drain holes")
    holes = [_drain_hole(Body(h, f"$.drain_holes[{i}]")) for i, h in enumerate(raw_holes)]
    model = scene.model(model_id)
    thinnest = min(model.size())
    for index, hole in enumerate(holes):
        where = f"$.drain_holes[{index}]"
        if _distance_to_box(model, hole.point) > hole.reach:
            raise SimError(
                400,
                "DRAIN_HOLE_FAILED",
                f"{where}.position is not on model {model_id} (farther than {hole.reach:g} mm)",
            )
        if hole.diameter >= thinnest:
            raise SimError(
                400,
                "DRAIN_HOLE_FAILED",
                f"{where}.diameter_mm {hole.diameter:g} is not smaller than the model "
                f"({thinnest:.2f} mm at its thinnest)",
            )
    infos = []
    if model.hollow is None:
        infos.append(f"model {model_id} is not hollow; its drain holes drain nothing")
    plugs: list[str] = []
    for hole in holes:
        model.drain_holes.append(hole.record)
        if hole.record["create_plug"]:
            plug = _plug(hole.record, model)
            scene.models[plug.id] = plug
            plugs.append(plug.id)
    return {"plugs": plugs, "warnings": [], "infos": infos}


# -- labels ------------------------------------------------------------------------------------


def label_model(scene: Scene, data: Body) -> Json:
    """Record a label. Its centre must lie on the model (within :data:`SURFACE_TOLERANCE_MM`
    of the bounding box) and its text (characters x :data:`LABEL_CHAR_WIDTH` x font size)
    must not be longer than the model's largest extent."""
    model_id = data.req_string("model_id")
    orientation = data.object("orientation", required=True)
    assert orientation is not None
    angles = euler_of(orientation_matrix(orientation))
    position = data.triple("position")
    if position is None:
        raise bad_body("$.position", "is required")
    text = data.req_string("label")
    mode = data.choice("application_mode", ("EMBOSS", "ENGRAVE"), "EMBOSS")
    font = data.req_number("font_size_mm", minimum=2.0, maximum=20.0)
    depth = data.req_number("depth_mm", minimum=0.2, maximum=10.0)
    model = scene.model(model_id)
    distance = _distance_to_box(model, position)
    if distance > SURFACE_TOLERANCE_MM:
        raise SimError(
            400,
            "LABEL_FAILED",
            f"Failed to create label for part {model_id}: the label centre is {distance:.2f} mm "
            "away from the model",
        )
    width = len(text) * LABEL_CHAR_WIDTH * font
    if width > max(model.size()):
        raise SimError(
            400,
            "LABEL_FAILED",
            f"Failed to create label for part {model_id}: the text is {width:.1f} mm long, "
            "longer than the model; use a smaller font_size_mm",
        )
    model.labels.append(
        {
            "label": text,
            "application_mode": mode,
            "font_size_mm": font,
            "depth_mm": depth,
            "position": _xyz(position),
            "orientation": _xyz(angles),
            # Where the model was: a layout moves the model, and its labels go with it.
            "model_min_corner": _xyz(_low_corner(model)),
            # And where on the model: a layout may turn it too, and the label turns with it
            # (before session 47 only the move was followed: a dental arch turned end for
            # end by the layout showed its engraved case id in the air between its arms).
            "model_point": _xyz(model.in_file_frame(position)),
        }
    )
    return {"warnings": [], "infos": []}


# -- scan to model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanRequest:
    """A checked scan-to-model body."""

    paths: tuple[Path, ...]
    units: str
    cutoff_height_mm: float
    extrude_distance_mm: float
    cutoff_below_gumline_mm: float | None
    hollow: bool
    shell_thickness_mm: float | None
    infill_wall_thickness_mm: float | None
    honeycomb_infill: bool
    drain_hole_radius_mm: float
    drain_hole_height_ratio: float
    drain_hole_suppression_mm: float
    drain_hole_max_count: int
    smooth_sides: bool

    @classmethod
    def parse(cls, data: Body) -> ScanRequest:
        files = [data.req_string("file")]
        extra = data.raw("files")
        if extra is not None:
            if not isinstance(extra, list) or not all(isinstance(f, str) for f in extra):
                raise bad_body("$.files", "expected an array of path strings")
            files += [f for f in extra if f not in files]
        paths = tuple(
            existing_file(f, "$.file" if i == 0 else "$.files") for i, f in enumerate(files)
        )
        hollow = bool(data.boolean("hollow", False))
        shell = data.number("shell_thickness_mm", exclusive_minimum=0.0)
        infill = data.number("wall_thickness_mm", exclusive_minimum=0.0)
        if not hollow and (shell is not None or infill is not None):
            raise bad_body(
                "$.shell_thickness_mm", "shell_thickness_mm and wall_thickness_mm need hollow=true"
            )
        return cls(
            paths=paths,
            units=data.choice("units", IMPORT_UNITS, "DETECTED") or "DETECTED",
            cutoff_height_mm=data.req_number("cutoff_height_mm", minimum=0.0),
            extrude_distance_mm=data.number("extrude_distance_mm", 0.0, minimum=0.0) or 0.0,
            cutoff_below_gumline_mm=data.number("cutoff_below_gumline_mm", minimum=0.0),
            hollow=hollow,
            shell_thickness_mm=shell,
            infill_wall_thickness_mm=infill,
            honeycomb_infill=bool(data.boolean("enable_honeycomb_infill", True)),
            drain_hole_radius_mm=data.number("drain_hole_radius_mm", 1.5, exclusive_minimum=0.0)
            or 1.5,
            drain_hole_height_ratio=data.number(
                "drain_hole_height_ratio", 1.0, exclusive_minimum=0.0
            )
            or 1.0,
            drain_hole_suppression_mm=data.number(
                "drain_hole_suppression_distance_mm", 2.0, minimum=0.0
            )
            or 0.0,
            drain_hole_max_count=int(data.number("drain_hole_max_count", 2, minimum=0) or 0),
            smooth_sides=bool(data.boolean("enable_smooth_contour_extended_sides", True)),
        )


def _scan_drain_holes(model: SimModel, request: ScanRequest) -> list[Json]:
    """Drain holes in the base of a hollowed scan: up to the maximum count, evenly along x and
    at least the suppression distance apart."""
    count, radius = request.drain_hole_max_count, request.drain_hole_radius_mm
    low, high = model.bounds()
    if count == 0:
        return []
    gap = 2 * radius + request.drain_hole_suppression_mm
    step = max(gap, float(high[0] - low[0]) / (count + 1))
    holes = []
    for k in range(1, count + 1):
        x = float(low[0]) + k * step
        if x > float(high[0]) - radius:
            break
        holes.append(
            {
                "position": {"x": x, "y": float(low[1] + high[1]) / 2, "z": float(low[2])},
                "orientation": {"x": 180.0, "y": 0.0, "z": 0.0},
                "diameter_mm": 2 * radius,
                "depth_mm": 2 * radius * request.drain_hole_height_ratio,
                "create_plug": False,
            }
        )
    return holes


def scan_models(
    request: ScanRequest, progress: Callable[[int, int], None]
) -> tuple[list[SimModel], list[str]]:
    """One closed model per scan file (see :func:`.meshops.scan_to_solid`), in millimetres,
    standing at the platform centre; and an info line per file."""
    made: list[SimModel] = []
    infos: list[str] = []
    for index, path in enumerate(request.paths):
        raw = read_mesh(path)
        units = detect_units(raw) if request.units == "DETECTED" else request.units
        try:
            result = scan_to_solid(
                raw.scaled(INCH_MM if units == "INCHES" else 1.0),
                cutoff_height_mm=request.cutoff_height_mm,
                extrude_distance_mm=request.extrude_distance_mm,
                cutoff_below_gumline_mm=request.cutoff_below_gumline_mm,
            )
        except ValueError as exc:
            raise bad_body("$.cutoff_height_mm", str(exc)) from exc
        model = SimModel(
            model_id=new_id(), name=path.stem, mesh=result.mesh, original_file=str(path)
        )
        model.scan = {
            "cutoff_z_mm": result.cutoff_z,
            "base_z_mm": result.base_z,
            "extrude_distance_mm": request.extrude_distance_mm,
            "removed_triangles": result.removed_triangles,
            "holes_closed": result.holes_closed,
            "smooth_contour_extended_sides": request.smooth_sides,
        }
        if request.hollow:
            model.hollow = {
                "wall_thickness_mm": request.shell_thickness_mm or DEFAULT_HOLLOW_WALL_MM,
                "honeycomb_infill": request.honeycomb_infill,
                "infill_wall_thickness_mm": request.infill_wall_thickness_mm,
            }
            model.drain_holes = _scan_drain_holes(model, request)
        infos.append(
            f"{path.name}: removed {counted(result.removed_triangles, 'triangle')} below the "
            f"cutoff and closed {counted(result.holes_closed, 'open boundary loop')} with walls "
            "and a base"
        )
        made.append(model)
        progress(index + 1, len(request.paths))
    return made, infos
