"""Scene settings: checking a SceneTypeModel body against the catalogue, and .fps files.

A scene is created from either the "Manual" settings (machine type, material code, layer
thickness, print setting) or an ``fps_file``. save-fps-file writes PreForm's schema-3 print
settings (``fps.py``); ``fps_file`` reads those, and the simulator's own older ``.fps``::

    {"format": FPS_FORMAT, "version": 1, "scene_settings": {<Manual SceneTypeModel>}}

Unknown machine types, materials, thicknesses and print settings are refused with 400 and a
message listing what is valid, so a recipe author sees the choices.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

from preform_pipeline.catalogue import ADAPTIVE, Catalogue, LayerThickness

from .atomic import atomic_write_bytes
from .bodies import Body, bad_body, existing_file
from .fps import parse_schema3, schema3_document
from .protocol import SimError
from .scene import SceneSettings

__all__ = [
    "FPS_FORMAT",
    "INVALID_FPS_FILE",
    "MANUAL_KEYS",
    "MAX_FPS_BYTES",
    "read_fps",
    "resolve_settings",
    "validate_settings",
    "write_fps",
]

FPS_FORMAT: Final = "preform-pipeline-simulated-fps"
INVALID_FPS_FILE: Final = "INVALID_FPS_FILE"
#: A print-settings file is a few kilobytes of JSON; one this large is not one, and reading
#: it whole would only cost memory.
MAX_FPS_BYTES: Final = 16 * 1024 * 1024
MANUAL_KEYS: Final = (
    "machine_type",
    "material_code",
    "print_setting",
    "layer_thickness_mm",
    "custom_print_setting_id",
)


#: A layer thickness written as a decimal string. Formlabs' generated Python client wraps the
#: contract's ``oneOf`` (``"ADAPTIVE"`` or a number) in a class whose examples pass ``"0.1"``, and
#: sends it as that string; PreFormServer takes it, so the simulator does too.
_DECIMAL_TEXT: Final = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)")


def _thickness(body: Body) -> LayerThickness:
    value: Any = body.raw("layer_thickness_mm")
    if value == ADAPTIVE:
        return ADAPTIVE
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value.strip()):
        text = float(value)
        if text <= 0.0:
            raise bad_body(body.at("layer_thickness_mm"), f"{text:g} must be greater than 0")
        return text
    number = body.number("layer_thickness_mm", required=True, exclusive_minimum=0.0)
    assert number is not None
    return number


def validate_settings(settings: SceneSettings, catalogue: Catalogue) -> SceneSettings:
    """``settings`` if the catalogue offers that machine/material/thickness, else 400."""
    machine = catalogue.machine(settings.machine_type)
    if machine is None:
        raise SimError(
            400,
            "UNKNOWN_MACHINE_TYPE",
            f"unknown machine_type {settings.machine_type!r}; valid: "
            + ", ".join(catalogue.type_ids),
        )
    material = machine.material(settings.material_code)
    if material is None:
        raise SimError(
            400,
            "UNKNOWN_MATERIAL",
            f"material {settings.material_code!r} is not available on {machine.label}; valid: "
            + ", ".join(m.code for m in machine.materials),
        )
    custom = settings.custom
    if custom is not None:
        # An .fps prints at its own thickness (checked sane when read); its base material's
        # setting must still be one the catalogue offers.
        if not material.supports_thickness(custom.base_layer_thickness_mm):
            raise SimError(
                400,
                "UNSUPPORTED_LAYER_THICKNESS",
                f"the print setting's base material, {material.label} on {machine.label}, has "
                f"no setting at layer_thickness_mm={custom.base_layer_thickness_mm!r} "
                "($.metadata.base_material_identifier.layer_thickness_mm); valid: "
                + ", ".join(str(t) for t in material.thicknesses),
            )
    elif not material.supports_thickness(settings.layer_thickness_mm):
        raise SimError(
            400,
            "UNSUPPORTED_LAYER_THICKNESS",
            f"{material.label} on {machine.label} cannot print at layer_thickness_mm="
            f"{settings.layer_thickness_mm!r}; valid: "
            + ", ".join(str(t) for t in material.thicknesses),
        )
    known = {s.print_setting for s in material.settings}
    if settings.print_setting not in known:
        raise SimError(
            400,
            "UNKNOWN_PRINT_SETTING",
            f"print_setting {settings.print_setting!r} is not offered for {material.label}; "
            "valid: " + ", ".join(sorted(known)),
        )
    return settings


def resolve_settings(data: Any, catalogue: Catalogue) -> SceneSettings:
    """Settings from a SceneTypeModel body: the Manual form or ``{"fps_file": path}``."""
    body = Body(data)
    if body.has("fps_file"):
        body.only(("fps_file",))
        path = existing_file(body.req_string("fps_file"), "$.fps_file")
        return validate_settings(read_fps(path), catalogue)
    body.only(MANUAL_KEYS)
    settings = SceneSettings(
        machine_type=body.req_string("machine_type"),
        material_code=body.req_string("material_code"),
        layer_thickness_mm=_thickness(body),
        print_setting=body.string("print_setting") or "DEFAULT",
        custom_print_setting_id=body.string("custom_print_setting_id"),
    )
    return validate_settings(settings, catalogue)


def write_fps(settings: SceneSettings, path: Path) -> None:
    """PreForm's schema-3 ``.fps`` of ``settings``: the custom setting a scene was made from
    as it was read, else the catalogue setting with its machine family's default knobs."""
    if settings.custom is not None:
        document = json.loads(settings.custom.document)
    else:
        document = schema3_document(
            settings.machine_type,
            settings.material_code,
            settings.layer_thickness_mm,
            settings.custom_print_setting_id,
        )
    data = (json.dumps(document, indent=4) + "\n").encode("utf-8")
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise SimError(400, "FILE_WRITE_FAILED", f"cannot write {path}: {exc}") from exc


def read_fps(path: Path) -> SceneSettings:
    """The settings of a schema-3 ``.fps`` or of the simulator's older format; anything else,
    or a malformed file, is a 400 ``INVALID_FPS_FILE`` that says where."""
    try:
        size = path.stat().st_size
        if size > MAX_FPS_BYTES:
            raise ValueError(f"{size} bytes, more than a print-settings file's {MAX_FPS_BYTES}")
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise SimError(
            400,
            INVALID_FPS_FILE,
            f"{path}: not a readable .fps ({exc}); the simulator reads PreForm's schema-3 "
            "print settings and the .fps files it wrote",
        ) from exc
    if isinstance(document, dict) and document.get("format") == FPS_FORMAT:
        return _read_simulator_fps(document, path)
    if not isinstance(document, dict) or "metadata" not in document:
        raise SimError(
            400,
            INVALID_FPS_FILE,
            f"{path}: not a print-settings file (no $.metadata, and not the simulator's own "
            "format)",
        )
    try:
        parsed = parse_schema3(document)
    except SimError as exc:
        raise bad_body(str(path), exc.error_message, INVALID_FPS_FILE) from exc
    return SceneSettings.from_fps(parsed)


def _read_simulator_fps(document: dict[str, Any], path: Path) -> SceneSettings:
    """The simulator's own format (written before schema 3), read as it was."""
    inner = Body(document.get("scene_settings"), "fps.scene_settings")
    try:
        inner.only(MANUAL_KEYS)
        return SceneSettings(
            machine_type=inner.req_string("machine_type"),
            material_code=inner.req_string("material_code"),
            layer_thickness_mm=_thickness(inner),
            print_setting=inner.string("print_setting") or "DEFAULT",
            custom_print_setting_id=inner.string("custom_print_setting_id"),
        )
    except SimError as exc:
        raise bad_body(str(path), exc.error_message, INVALID_FPS_FILE) from exc
