"""PreForm's print-settings file (``.fps``, schema 3) as the simulator writes and reads it.

A schema-3 ``.fps`` is JSON::

    {"metadata": {"id": "{<uuid>}", "name": ..., "schema_version": 3,
                  "base_material_identifier": {"machine_type_id": ..,
                      "versioned_material_code": .., "layer_thickness_mm": ..}},
     "public_fields": {"categories": [
         {"key": "Core_Scene", "values": {"layer_thickness": {"layer_thickness_mm": ..},
                                           "x_correction_factor": .., ...}},
         {"key": "Material_Form_4_Family_Print", "values": {<exposure knobs>}}]}}

``base_material_identifier`` names the material the setting was made from (checked against the
catalogue); ``Core_Scene`` holds the layer thickness actually printed, taken as written (a
custom setting need not be one of the material's thicknesses, only sane); the machine family's
category holds the knobs the SLA print-time estimate follows. Every file read keeps its whole
document, so saving the scene's settings again writes back what was read, unknown keys too.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Final

from preform_pipeline.catalogue import ADAPTIVE, LayerThickness

from .bodies import Body, bad_body
from .protocol import Json

__all__ = [
    "CORE_SCENE",
    "DEFAULT_KNOBS",
    "FORM3_FAMILY_PRINT",
    "FORM4_FAMILY_PRINT",
    "FPS_SCHEMA_VERSION",
    "MAX_CUSTOM_LAYER_MM",
    "MAX_LAYER_LIGHT_AND_WAIT_S",
    "MIN_CUSTOM_LAYER_MM",
    "CustomPrintSetting",
    "ParsedFps",
    "PrintKnobs",
    "family_key",
    "parse_schema3",
    "schema3_document",
]

FPS_SCHEMA_VERSION: Final = 3
CORE_SCENE: Final = "Core_Scene"
FORM4_FAMILY_PRINT: Final = "Material_Form_4_Family_Print"
#: The simulator's key for the other SLA machines' knobs (Form 3, 3L); the public facts name
#: only the Form 4 family's key, so this one follows its pattern.
FORM3_FAMILY_PRINT: Final = "Material_Form_3_Family_Print"
#: A custom printed layer thickness outside these is refused as absurd: no Formlabs resin
#: setting is thinner than 25 um or thicker than 300 um; these leave room around both.
MIN_CUSTOM_LAYER_MM: Final = 0.01
MAX_CUSTOM_LAYER_MM: Final = 0.5
#: A family's knobs that give a layer more light and cure wait than this are refused as absurd
#: (a resin layer takes seconds): larger ones priced a print at 1e303 s or at an infinity,
#: which the estimate's JSON cannot carry.
MAX_LAYER_LIGHT_AND_WAIT_S: Final = 3600.0
#: The namespace of the ids of settings the simulator writes itself (uuid5 of the setting),
#: so saving the same scene settings twice gives the same id.
_ID_NAMESPACE: Final = uuid.UUID("5f0c2a8e-3b1d-4c59-9a51-8f2d7f6e0b13")

_OVERHANGS: Final = "overhang_fill_exposures"
_IRRADIANCE: Final = "irradiance_mWpcm2"
_CURE_WAIT: Final = "post_expose_cure_wait_s"
_WIPING: Final = "wipe_behavior_pattern"


@dataclass(frozen=True)
class PrintKnobs:
    """The knobs of a machine family's category that the print-time estimate reads."""

    #: The category they were read from (or are the defaults of).
    family: str
    model_fill_mj_cm2: float
    perimeter_fill_mj_cm2: float
    supports_fill_mj_cm2: float
    top_surface_mj_cm2: float
    overhang_fills_mj_cm2: tuple[float, ...]
    irradiance_mw_cm2: float
    post_expose_cure_wait_s: float
    #: Kept and written back; not priced (see docs/simulator-engine.md).
    wipe_behaviors: tuple[int, ...]

    @property
    def largest_exposure_mj_cm2(self) -> float:
        return max(
            self.model_fill_mj_cm2,
            self.perimeter_fill_mj_cm2,
            self.supports_fill_mj_cm2,
            self.top_surface_mj_cm2,
            *self.overhang_fills_mj_cm2,
        )

    @property
    def exposure_s(self) -> float:
        """Seconds of light a layer needs: its largest exposure at the irradiance."""
        return self.largest_exposure_mj_cm2 / self.irradiance_mw_cm2

    def values(self) -> Json:
        """The knobs as a family category's ``values`` spell them."""
        return {
            _WIPING: [{"wipe_behavior": b} for b in self.wipe_behaviors],
            "model_fill_exposure_mJpcm2": self.model_fill_mj_cm2,
            _OVERHANGS: [{"exposure_mJpcm2": e} for e in self.overhang_fills_mj_cm2],
            "perimeter_fill_exposure_mJpcm2": self.perimeter_fill_mj_cm2,
            "supports_fill_exposure_mJpcm2": self.supports_fill_mj_cm2,
            "top_surface_exposure_mJpcm2": self.top_surface_mj_cm2,
            _IRRADIANCE: self.irradiance_mw_cm2,
            _CURE_WAIT: self.post_expose_cure_wait_s,
        }


#: Plausible knob values per family, not measured ones. Form 4: a 16 mW/cm^2 backlight, the
#: largest exposure (an overhang's) 12.8 mJ/cm^2, so 0.8 s of light and 1.2 s of cure wait a
#: layer; Form 3: a laser's effective rate over a layer is lower, so 1.6 s of light and 0.4 s
#: of wait. Both leave 5 s of mechanics (peel, recoat, wipe) of the simulator's 7 s per layer
#: (estimates.SLA_SECONDS_PER_LAYER), so a scene priced by its defaults costs what a scene
#: without a custom setting does. Wiping: 1 is "every layer"; speedrun sets -1 (one way)
#: and 0 (disabled).
DEFAULT_KNOBS: Final = {
    FORM4_FAMILY_PRINT: PrintKnobs(
        family=FORM4_FAMILY_PRINT,
        model_fill_mj_cm2=8.0,
        perimeter_fill_mj_cm2=9.6,
        supports_fill_mj_cm2=11.2,
        top_surface_mj_cm2=9.6,
        overhang_fills_mj_cm2=(12.8,),
        irradiance_mw_cm2=16.0,
        post_expose_cure_wait_s=1.2,
        wipe_behaviors=(1,),
    ),
    FORM3_FAMILY_PRINT: PrintKnobs(
        family=FORM3_FAMILY_PRINT,
        model_fill_mj_cm2=12.0,
        perimeter_fill_mj_cm2=14.0,
        supports_fill_mj_cm2=16.0,
        top_surface_mj_cm2=14.0,
        overhang_fills_mj_cm2=(16.0,),
        irradiance_mw_cm2=10.0,
        post_expose_cure_wait_s=0.4,
        wipe_behaviors=(1,),
    ),
}


@dataclass(frozen=True)
class CustomPrintSetting:
    """A print setting read from a schema-3 ``.fps``: frozen, kept with the scene."""

    id: str
    name: str
    #: The thickness of the base material's setting (``base_material_identifier``).
    base_layer_thickness_mm: LayerThickness
    #: The family category's knobs; None for a machine with no family category (SLS).
    knobs: PrintKnobs | None
    #: The whole file as read (JSON text), written back by save-fps-file and .form files.
    document: str

    def to_json(self) -> Json:
        """What a print job records of the setting it was printed with."""
        return {
            "id": self.id,
            "name": self.name,
            "base_layer_thickness_mm": self.base_layer_thickness_mm,
            "knobs": None if self.knobs is None else self.knobs.values(),
        }


@dataclass(frozen=True)
class ParsedFps:
    """What a schema-3 document says: the machine, base material and printed thickness."""

    machine_type: str
    material_code: str
    layer_thickness_mm: LayerThickness
    custom: CustomPrintSetting


def family_key(machine_type: str) -> str | None:
    """The category key of a machine type's print knobs (None: the simulator has none)."""
    if machine_type.startswith("FORM-4"):  # Form 4, 4B and 4L
        return FORM4_FAMILY_PRINT
    if machine_type.startswith("FORM-3"):  # Form 3, 3+ and 3L
        return FORM3_FAMILY_PRINT
    return None


def _setting_id(machine_type: str, material_code: str, thickness: LayerThickness) -> str:
    return "{" + str(uuid.uuid5(_ID_NAMESPACE, f"{machine_type}/{material_code}/{thickness}")) + "}"


def schema3_document(
    machine_type: str,
    material_code: str,
    layer_thickness_mm: LayerThickness,
    setting_id: str | None = None,
) -> Json:
    """The schema-3 document of a catalogue setting, with its family's default knobs."""
    label = "Adaptive" if layer_thickness_mm == ADAPTIVE else f"{float(layer_thickness_mm):.3f}mm"
    categories: list[Json] = [
        {
            "key": CORE_SCENE,
            "values": {
                "layer_thickness": {"layer_thickness_mm": layer_thickness_mm},
                "x_correction_factor": 1.0,
                "y_correction_factor": 1.0,
                "z_correction_factor": 1.0,
            },
        }
    ]
    family = family_key(machine_type)
    if family is not None:
        categories.append({"key": family, "values": DEFAULT_KNOBS[family].values()})
    return {
        "metadata": {
            "id": setting_id or _setting_id(machine_type, material_code, layer_thickness_mm),
            "name": f"{material_code} {label}",
            "schema_version": FPS_SCHEMA_VERSION,
            "base_material_identifier": {
                "machine_type_id": machine_type,
                "versioned_material_code": material_code,
                "layer_thickness_mm": layer_thickness_mm,
            },
        },
        "public_fields": {"categories": categories},
    }


def _thickness(body: Body, key: str, *, custom: bool) -> LayerThickness:
    """A layer thickness: ``"ADAPTIVE"`` or a number; a custom one must be sane."""
    if body.raw(key) == ADAPTIVE:
        return ADAPTIVE
    if custom:
        return body.req_number(key, minimum=MIN_CUSTOM_LAYER_MM, maximum=MAX_CUSTOM_LAYER_MM)
    return body.req_number(key, exclusive_minimum=0.0)


def _list(body: Body, key: str) -> list[Body]:
    """The objects of the array ``key``, each with its JSON path."""
    value = body.raw(key)
    if not isinstance(value, list):
        raise bad_body(body.at(key), "expected an array of objects")
    return [Body(item, f"{body.at(key)}[{i}]") for i, item in enumerate(value)]


def _categories(document: Body) -> dict[str, Body]:
    """The categories by key; a key given twice is refused (which one would count?)."""
    fields = document.object("public_fields", required=True)
    assert fields is not None
    found: dict[str, Body] = {}
    for item in _list(fields, "categories"):
        key = item.req_string("key")
        if key in found:
            raise bad_body(item.at("key"), f"{key!r} appears twice")
        values = item.object("values", required=True)
        assert values is not None
        found[key] = values
    return found


def _exposure(body: Body, key: str, default: float) -> float:
    value = body.number(key, default, exclusive_minimum=0.0)
    assert value is not None
    return value


def _knobs(values: Body, default: PrintKnobs) -> PrintKnobs:
    """The knobs of a family category; a knob left out takes the family's default."""
    overhangs = default.overhang_fills_mj_cm2
    if values.has(_OVERHANGS):
        overhangs = tuple(
            item.req_number("exposure_mJpcm2", exclusive_minimum=0.0)
            for item in _list(values, _OVERHANGS)
        )
    wiping = default.wipe_behaviors
    if values.has(_WIPING):
        wiping = tuple(
            _required_int(item, "wipe_behavior") for item in _list(values, _WIPING)
        )
    model = _exposure(values, "model_fill_exposure_mJpcm2", default.model_fill_mj_cm2)
    perimeter = _exposure(values, "perimeter_fill_exposure_mJpcm2", default.perimeter_fill_mj_cm2)
    supports = _exposure(values, "supports_fill_exposure_mJpcm2", default.supports_fill_mj_cm2)
    top = _exposure(values, "top_surface_exposure_mJpcm2", default.top_surface_mj_cm2)
    irradiance = values.number(_IRRADIANCE, default.irradiance_mw_cm2, exclusive_minimum=0.0)
    wait = values.number(_CURE_WAIT, default.post_expose_cure_wait_s, minimum=0.0)
    assert irradiance is not None and wait is not None
    return PrintKnobs(
        family=default.family,
        model_fill_mj_cm2=model,
        perimeter_fill_mj_cm2=perimeter,
        supports_fill_mj_cm2=supports,
        top_surface_mj_cm2=top,
        overhang_fills_mj_cm2=overhangs,
        irradiance_mw_cm2=irradiance,
        post_expose_cure_wait_s=wait,
        wipe_behaviors=wiping,
    )


def _sane(knobs: PrintKnobs, values: Body) -> PrintKnobs:
    """``knobs``, unless a layer would take longer than any resin setting gives one."""
    seconds = knobs.exposure_s + knobs.post_expose_cure_wait_s
    if not seconds <= MAX_LAYER_LIGHT_AND_WAIT_S:  # not: an infinity or NaN is refused too
        raise bad_body(
            values.path,
            f"a layer would take {seconds:.3g} s of light and cure wait (largest exposure "
            f"{knobs.largest_exposure_mj_cm2:g} mJ/cm2 at {knobs.irradiance_mw_cm2:g} mW/cm2, "
            f"wait {knobs.post_expose_cure_wait_s:g} s); a print setting gives a layer at most "
            f"{MAX_LAYER_LIGHT_AND_WAIT_S:g} s",
        )
    return knobs


def _required_int(body: Body, key: str) -> int:
    if not body.has(key):
        raise bad_body(body.at(key), "is required")
    value = body.integer(key)
    assert value is not None
    return value


def parse_schema3(data: Any) -> ParsedFps:
    """Read a schema-3 document; a malformed one raises a 400 naming the JSON path."""
    document = Body(data)
    metadata = document.object("metadata", required=True)
    assert metadata is not None
    version = metadata.raw("schema_version")
    if version != FPS_SCHEMA_VERSION:
        raise bad_body(
            metadata.at("schema_version"),
            f"{version!r} is not supported; the simulator reads schema {FPS_SCHEMA_VERSION}",
        )
    setting_id = metadata.req_string("id")
    name = metadata.string("name") or ""
    base = metadata.object("base_material_identifier", required=True)
    assert base is not None
    machine_type = base.req_string("machine_type_id")
    material_code = base.req_string("versioned_material_code")
    base_thickness = _thickness(base, "layer_thickness_mm", custom=False)
    categories = _categories(document)
    core = categories.get(CORE_SCENE)
    if core is None:
        raise bad_body("$.public_fields.categories", f"no {CORE_SCENE!r} category")
    layer = core.object("layer_thickness", required=True)
    assert layer is not None
    printed = _thickness(layer, "layer_thickness_mm", custom=True)
    for axis in "xyz":
        core.number(f"{axis}_correction_factor", exclusive_minimum=0.0)
    family = family_key(machine_type)
    knobs = None
    if family is not None:
        values = categories.get(family)
        default = DEFAULT_KNOBS[family]
        knobs = default if values is None else _sane(_knobs(values, default), values)
    custom = CustomPrintSetting(
        id=setting_id,
        name=name,
        base_layer_thickness_mm=base_thickness,
        knobs=knobs,
        document=json.dumps(data),
    )
    return ParsedFps(machine_type, material_code, printed, custom)
