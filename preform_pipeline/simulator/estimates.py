"""What the simulated server answers about a scene: layers, time, material, print validation.

Every number follows a stated rule from the scene's geometry and a named constant below, so a
test (or a user reading ``docs/simulator-engine.md``) can predict it. The constants are
plausible orders of magnitude for Formlabs machines, not measured values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from preform_pipeline.catalogue import Catalogue
from preform_pipeline.geometry import (
    DEFAULT_PLATFORM_CONTACT_TOLERANCE_MM,
    DEFAULT_SUPPORT_FILL_FACTOR,
    Mesh,
    downward_area,
    platform_contact_area,
    support_volume_estimate,
    weld_vertices,
)

from .estimate_rules import (
    ADAPTIVE_AVERAGE_LAYER_MM,
    DEFAULT_HEIGHT_ABOVE_RAFT_MM,
    DEFAULT_RAFT_THICKNESS_MM,
    SLA_PREPRINT_S,
    SLA_SECONDS_PER_LAYER,
    SLS_ADDITIONAL_COOL_BASE_S,
    SLS_ADDITIONAL_COOL_S_PER_MM,
    SLS_COOL_TO_REMOVAL_BASE_S,
    SLS_COOL_TO_REMOVAL_S_PER_MM,
    SLS_POWDER_BULK_DENSITY_G_ML,
    SLS_PREPRINT_S,
    SLS_SECONDS_PER_LAYER,
)
from .fps import DEFAULT_KNOBS, PrintKnobs
from .protocol import Json
from .scene import Scene, SceneSettings, SimModel

__all__ = [
    "ADAPTIVE_AVERAGE_LAYER_MM",
    "DEFAULT_HEIGHT_ABOVE_RAFT_MM",
    "DEFAULT_RAFT_THICKNESS_MM",
    "SLA_PREPRINT_S",
    "SLA_SECONDS_PER_LAYER",
    "SLA_MECHANICS_S",
    "SLS_ADDITIONAL_COOL_BASE_S",
    "SLS_ADDITIONAL_COOL_S_PER_MM",
    "SLS_COOL_TO_REMOVAL_BASE_S",
    "SLS_COOL_TO_REMOVAL_S_PER_MM",
    "SLS_POWDER_BULK_DENSITY_G_ML",
    "SLS_PREPRINT_S",
    "SLS_SECONDS_PER_LAYER",
    "SceneFigures",
    "cup_count",
    "estimate_print_time",
    "layer_count",
    "material_usage",
    "model_volume_ml",
    "print_validation",
    "scene_figures",
    "sla_seconds_per_layer",
    "support_volume_ml",
    "top_z",
    "unsupported_minima",
]

#: SLA: what a layer takes besides its light and cure wait (peel, recoat, wiping), per
#: family: 7 s less its default knobs' exposure and wait, so the defaults cost 7 s a layer.
SLA_MECHANICS_S: Final = {
    family: SLA_SECONDS_PER_LAYER - knobs.exposure_s - knobs.post_expose_cure_wait_s
    for family, knobs in DEFAULT_KNOBS.items()
}
_MM3_PER_ML: Final = 1000.0
_G_PER_KG: Final = 1000.0


def top_z(scene: Scene) -> float:
    """Height of the build: the highest point of any model (0 for an empty scene)."""
    tops = [float(m.bounds()[1][2]) for m in scene.models.values()]
    return max([0.0, *tops])


def layer_count(scene: Scene) -> int:
    """``ceil(top_z / layer thickness)``; ADAPTIVE uses :data:`ADAPTIVE_AVERAGE_LAYER_MM`."""
    thickness = scene.settings.thickness_for_estimates(ADAPTIVE_AVERAGE_LAYER_MM)
    height = top_z(scene)
    if height <= 0:
        return 0
    # The epsilon keeps an exact multiple (10 mm / 0.1 mm) from rounding up to one more layer.
    return math.ceil(height / thickness - 1e-9)


def sla_seconds_per_layer(settings: SceneSettings) -> float:
    """One SLA layer: :data:`SLA_SECONDS_PER_LAYER`, or under a custom setting's knobs its
    light (largest exposure / irradiance) + post-exposure cure wait + the family's mechanics.
    Wiping is not priced (the vendor says changing it may not change the estimate)."""
    knobs: PrintKnobs | None = settings.custom.knobs if settings.custom is not None else None
    if knobs is None:
        return SLA_SECONDS_PER_LAYER
    return knobs.exposure_s + knobs.post_expose_cure_wait_s + SLA_MECHANICS_S[knobs.family]


def model_volume_ml(model: SimModel) -> float:
    """Printed volume of the part itself: the mesh volume, or the shell of a hollowed model
    (surface area x wall thickness, never more than the solid), adjusted by embossed (+) and
    engraved (-) labels (text area x depth, text area = characters x 0.6 x font size^2)."""
    volume = model.shape_measure("volume", Mesh.volume)
    if model.hollow is not None:
        wall = float(model.hollow["wall_thickness_mm"])
        volume = min(volume, model.shape_measure("surface_area", Mesh.surface_area) * wall)
    for label in model.labels:
        text_area = len(label["label"]) * 0.6 * float(label["font_size_mm"]) ** 2
        sign = 1.0 if label["application_mode"] == "EMBOSS" else -1.0
        volume = max(0.0, volume + sign * text_area * float(label["depth_mm"]))
    return volume / _MM3_PER_ML


def support_volume_ml(model: SimModel) -> float:
    """Supports of a supported model: geometry's column estimate under its overhangs (density
    scales the fill) plus a raft and the pillars lifting its base (contact area x lift)."""
    if not model.has_supports:
        return 0.0
    density = float(model.support.get("density", 1.0))
    fill = DEFAULT_SUPPORT_FILL_FACTOR * density
    raft = float(model.support.get("raft_thickness_mm", DEFAULT_RAFT_THICKNESS_MM))
    lift = max(0.0, float(model.bounds()[0][2]) - raft)
    # Both geometry measures take the model's lowest point as the platform, so they do not
    # change when the model moves: measure the oriented shape once.
    volume = model.shape_measure(
        f"supports:{fill}:{raft}",
        lambda mesh: support_volume_estimate(mesh, fill_factor=fill, raft_thickness_mm=raft),
    )
    volume += model.shape_measure("contact_area", platform_contact_area) * lift * fill
    return volume / _MM3_PER_ML


@dataclass(frozen=True)
class SceneFigures:
    """The numbers a job record keeps about a scene."""

    layer_count: int
    volume_ml: float
    print_time_s: float


def material_usage(scene: Scene, catalogue: Catalogue) -> Json:
    """MaterialUsageModel: the SLA shape, or the SLS shape for powder machines."""
    machine = scene.settings.machine(catalogue)
    parts_ml = sum(model_volume_ml(m) for m in scene.models.values())
    if machine.technology == "SLA":
        supports_ml = sum(support_volume_ml(m) for m in scene.models.values())
        return {"volume_ml": parts_ml + supports_ml, "unsupported_volume_ml": parts_ml}
    # SLS: the whole chamber cross-section is filled with powder up to the build height. The
    # parts take part of that bed as solid material; the rest is loose powder. Mass is kept
    # consistent: sintered powder is the parts' volume at the material's solid density, the
    # bed's mass is that plus the loose powder around it, so the mass packing density (sintered
    # over total) is at most 1 and the sintered volume never falls below the parts' volume.
    bx, by, _ = machine.build_volume_mm
    bed_ml = max(bx * by * top_z(scene) / _MM3_PER_ML, parts_ml)
    density = scene.settings.material(catalogue).density_g_ml
    sintered_kg = parts_ml * density / _G_PER_KG
    loose_kg = (bed_ml - parts_ml) * SLS_POWDER_BULK_DENSITY_G_ML / _G_PER_KG
    powder_kg = sintered_kg + loose_kg
    return {
        "total_powder_ml": bed_ml,
        "total_powder_kg": powder_kg,
        "total_sintered_powder_ml": parts_ml,
        "total_sintered_powder_kg": sintered_kg,
        "mass_packing_density": sintered_kg / powder_kg if powder_kg > 0 else 0.0,
    }


def estimate_print_time(scene: Scene, catalogue: Catalogue) -> Json:
    """EstimatedPrintTimeModel. An empty scene prints nothing and takes no time."""
    machine = scene.settings.machine(catalogue)
    layers = layer_count(scene)
    if layers == 0:
        base: Json = {"total_print_time_s": 0.0, "preprint_time_s": 0.0, "printing_time_s": 0.0}
        if machine.technology == "SLS":
            base |= {"cool_to_removal_time_s": 0.0, "additional_cool_to_room_temp_time_s": 0.0}
        return base
    if machine.technology == "SLA":
        printing = layers * sla_seconds_per_layer(scene.settings)
        return {
            "total_print_time_s": SLA_PREPRINT_S + printing,
            "preprint_time_s": SLA_PREPRINT_S,
            "printing_time_s": printing,
        }
    height = top_z(scene)
    printing = layers * SLS_SECONDS_PER_LAYER
    return {
        "total_print_time_s": SLS_PREPRINT_S + printing,
        "preprint_time_s": SLS_PREPRINT_S,
        "printing_time_s": printing,
        "cool_to_removal_time_s": (
            SLS_COOL_TO_REMOVAL_BASE_S + height * SLS_COOL_TO_REMOVAL_S_PER_MM
        ),
        "additional_cool_to_room_temp_time_s": (
            SLS_ADDITIONAL_COOL_BASE_S + height * SLS_ADDITIONAL_COOL_S_PER_MM
        ),
    }


def scene_figures(scene: Scene, catalogue: Catalogue) -> SceneFigures:
    usage = material_usage(scene, catalogue)
    volume = float(usage.get("volume_ml", usage.get("total_sintered_powder_ml")) or 0.0)
    time_s = float(estimate_print_time(scene, catalogue)["total_print_time_s"])
    return SceneFigures(layer_count(scene), volume, time_s)


def unsupported_minima(mesh: Mesh, platform_z: float = 0.0) -> int:
    """Local minima of the surface that do not rest on the platform.

    A minimum is a vertex, or a connected plateau of equal-height vertices, with no lower
    neighbour; one lying within the platform contact tolerance of ``platform_z`` is resting on
    the platform and does not count.
    """
    if mesh.triangle_count == 0:
        return 0
    vertices, faces = weld_vertices(mesh.triangles)
    z = vertices[:, 2].astype(np.float64)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    lowest_neighbour = np.full(len(z), np.inf)
    np.minimum.at(lowest_neighbour, edges[:, 0], z[edges[:, 1]])
    np.minimum.at(lowest_neighbour, edges[:, 1], z[edges[:, 0]])
    candidate = z <= lowest_neighbour
    candidate &= z > platform_z + DEFAULT_PLATFORM_CONTACT_TOLERANCE_MM
    if not candidate.any():
        return 0
    # Merge plateaus: propagate the smallest vertex index along equal-height candidate edges.
    flat = edges[candidate[edges[:, 0]] & candidate[edges[:, 1]]]
    flat = flat[z[flat[:, 0]] == z[flat[:, 1]]]
    labels = np.arange(len(z))
    while flat.size:
        low = np.minimum(labels[flat[:, 0]], labels[flat[:, 1]])
        before = labels.copy()
        np.minimum.at(labels, flat[:, 0], low)
        np.minimum.at(labels, flat[:, 1], low)
        labels = labels[labels]  # pointer jumping: converge in O(log n) rounds on long chains
        if np.array_equal(labels, before):
            break
    return int(np.unique(labels[candidate]).size)


def cup_count(model: SimModel) -> int:
    """Cavities of an SLA model that trap resin: the inside of a hollowed model with no drain
    hole is one (nothing lets the uncured resin out, and the closed shell pulls on the tank
    at every peel); a drain hole opens it. The simulator has no other cavity geometry (it
    does not hollow the mesh itself), so a solid model, or a model that could not be
    hollowed, has none."""
    return 1 if model.hollow is not None and not model.drain_holes else 0


def print_validation(scene: Scene, catalogue: Catalogue) -> Json:
    """PrintValidationResultModel, one entry per model.

    SLA, unsupported model: ``unsupported_minima`` counts minima above the platform and
    ``undersupported`` is true when it has overhangs (:func:`downward_area` > 0) or floats.
    Supported models and every SLS model (powder supports the part) report none. SLA
    ``cups`` are counted by :func:`cup_count`, supported or not (supports do not drain a
    closed hollow); SLS models have none (powder fills and leaves any cavity). The simulator
    has no seamlines.
    """
    machine = scene.settings.machine(catalogue)
    results: Json = {}
    for model in scene.models.values():
        minima = 0
        under = False
        cups = cup_count(model) if machine.technology == "SLA" else 0
        if machine.technology == "SLA" and not model.has_supports:
            minima = int(model.placed_measure("unsupported_minima", unsupported_minima))
            floating = float(model.bounds()[0][2]) > DEFAULT_PLATFORM_CONTACT_TOLERANCE_MM
            under = floating or model.shape_measure("downward_area", downward_area) > 0.0
        results[model.id] = {
            "cups": cups,
            "unsupported_minima": minima,
            "undersupported": under,
            "has_seamline": False,
        }
    return {"per_model_results": results}
