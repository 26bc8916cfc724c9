"""The simulator's own .form format: what save-form writes and load-form reads back.

Real .form files are PreForm's private format; the simulator does not read or write them. Its
``.form`` is a zip archive:

``manifest.json``
    ``{"format": FORM_FORMAT, "version": 1, "scene": {...}, "models": [...]}``: the scene
    settings and cage (and the whole ``.fps`` document of a custom print setting, as
    ``print_settings_fps``, so its knobs come back with the scene), and per model its id,
    name, original file, units, scale, orientation, position, lock, visibility, supports
    (flag and options), hollowing, drain holes, labels, scan-to-model record, the file name
    of its mesh and the SHA-256 of its triangles.
``meshes/<sha256>.stl``
    Each distinct mesh exactly as imported (file units, untransformed) as binary STL, named by
    its hash and stored once however many models share it (duplicates); float32 coordinates
    survive the round trip bit for bit, so the hashes match after loading.

A loaded scene is equivalent to the saved one: same model ids, meshes, transforms and flags.
Every ``.form`` save-form writes, load-form reads: the manifest is bounded by its size
(:data:`MAX_MANIFEST_BYTES`, which save-form refuses to pass), not by how well it compresses.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any, Final

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import Mesh, read_mesh_bytes
from preform_pipeline.geometry.bounded import read_zip_member
from preform_pipeline.geometry.stl import write_binary_stl

from .atomic import atomic_writer
from .fps import parse_schema3
from .protocol import Json, SimError
from .scene import LOCKS, Scene, SceneSettings, SimModel

__all__ = ["FORM_FORMAT", "FORM_VERSION", "INVALID_FORM_FILE", "MAX_MANIFEST_BYTES", "load_form",
           "save_form"]

FORM_FORMAT: Final = "preform-pipeline-simulated-form"
FORM_VERSION: Final = 1
INVALID_FORM_FILE: Final = "INVALID_FORM_FILE"
_MANIFEST: Final = "manifest.json"
#: The most manifest.json may hold. Its scene settings carry a whole print-settings file (at
#: most 16 MiB, JSON-escaped at most three times over) beside the models' records.
MAX_MANIFEST_BYTES: Final = 64 * 1024 * 1024
# Archive members this large need the zip64 format (decided before writing a streamed one).
_ZIP64: Final = 1 << 31


def _mesh_name(model: SimModel) -> str:
    return f"meshes/{model.raw_mesh_hash}.stl"


def _model_record(model: SimModel) -> Json:
    return {
        "id": model.id,
        "name": model.name,
        "mesh": _mesh_name(model),
        "raw_mesh_hash": model.raw_mesh_hash,
        "original_file": model.original_file,
        "units": model.units,
        "scale": model.scale,
        "orientation": list(model.orientation),
        "position": list(model.position),
        "lock": model.lock,
        "visible": model.visible,
        "has_supports": model.has_supports,
        "support": model.support,
        "hollow": model.hollow,
        "drain_holes": model.drain_holes,
        "labels": model.labels,
        "scan": model.scan,
    }


def save_form(scene: Scene, path: Path, *, max_manifest_bytes: int = MAX_MANIFEST_BYTES
              ) -> None:
    """Write ``scene`` to ``path`` atomically (readers never see a partial archive); a
    manifest over ``max_manifest_bytes``, which load-form would refuse, is not written."""
    custom = scene.settings.custom
    manifest = {
        "format": FORM_FORMAT,
        "version": FORM_VERSION,
        "scene": {
            "id": scene.id,
            "scene_settings": scene.settings.to_json(),
            "print_settings_fps": None if custom is None else json.loads(custom.document),
            "cage": scene.cage,
        },
        "models": [_model_record(m) for m in scene.models.values()],
    }
    text = json.dumps(manifest, indent=2, sort_keys=True).encode()
    if len(text) > max_manifest_bytes:
        raise SimError(
            400, "FILE_WRITE_FAILED",
            f"cannot write {path}: the scene's manifest would be {len(text):,} bytes, over "
            f"the {max_manifest_bytes:,} a .form's manifest may hold (a name, id or print "
            "setting of the scene is that long); shorten it and save again",
        )
    try:
        # Streamed into the archive, the archive into a temporary file renamed at the end:
        # neither the STL bytes nor the archive sit in memory beside the meshes.
        with atomic_writer(path) as handle, zipfile.ZipFile(
            # Level 1: float coordinates barely compress; speed matters more for big scenes.
            handle, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
        ) as archive:
            archive.writestr(_MANIFEST, text)
            written: set[str] = set()
            for model in scene.models.values():
                if _mesh_name(model) not in written:
                    triangles = model.mesh.triangles
                    with archive.open(
                        _mesh_name(model), "w", force_zip64=84 + 50 * len(triangles) >= _ZIP64
                    ) as entry:
                        write_binary_stl(entry, triangles, name=model.name[:60])
                    written.add(_mesh_name(model))
    except OSError as exc:
        raise SimError(400, "FILE_WRITE_FAILED", f"cannot write {path}: {exc}") from exc


def _invalid(path: Path, reason: str) -> SimError:
    return SimError(
        400,
        INVALID_FORM_FILE,
        f"{path}: {reason}; the simulator reads only .form files it wrote itself",
    )


def _triple(value: Any, what: str, path: Path) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise _invalid(path, f"{what} is not three numbers")
    return (float(value[0]), float(value[1]), float(value[2]))


def load_form(path: Path, scene_id: str, *, max_manifest_bytes: int = MAX_MANIFEST_BYTES
              ) -> Scene:
    """Read a simulator .form into a new scene with id ``scene_id`` (model ids are kept)."""
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                # Bounded: a .form is any file a client names, a zip bomb as well. By size
                # only: JSON text compresses as well as it repeats itself (a 10 MB id of one
                # character inflates 226 times), and save-form wrote no more than the bound.
                manifest = json.loads(read_zip_member(
                    archive, _MANIFEST, path, max_bytes=max_manifest_bytes, max_ratio=math.inf))
            except KeyError:
                raise _invalid(path, "no manifest.json in the archive") from None
            except ModelFileError as exc:
                raise _invalid(path, f"manifest.json is unreadable: {exc.reason}") from exc
            if not isinstance(manifest, dict) or manifest.get("format") != FORM_FORMAT:
                raise _invalid(path, "manifest.json is not a simulator manifest")
            if manifest.get("version") != FORM_VERSION:
                raise _invalid(path, f"unsupported version {manifest.get('version')!r}")
            scene_record = manifest["scene"]
            settings = _settings(scene_record, path)
            scene = Scene(id=scene_id, settings=settings, cage=scene_record.get("cage"))
            meshes: dict[str, Mesh] = {}
            for record in manifest["models"]:
                scene.models[record["id"]] = _load_model(archive, record, path, meshes)
            scene.share_shapes()
    except (zipfile.BadZipFile, OSError) as exc:
        raise _invalid(path, f"not a readable zip archive ({exc})") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise _invalid(path, f"manifest.json is incomplete ({exc!r})") from exc
    return scene


def _settings(scene_record: Json, path: Path) -> SceneSettings:
    """The scene's settings: from its custom print setting's document when it has one."""
    fps = scene_record.get("print_settings_fps")
    if fps is not None:
        try:
            parsed = parse_schema3(fps)
        except SimError as exc:
            raise _invalid(path, f"its print settings are invalid: {exc.error_message}") from exc
        return SceneSettings.from_fps(parsed)
    settings_json = scene_record["scene_settings"]
    return SceneSettings(
        machine_type=str(settings_json["machine_type"]),
        material_code=str(settings_json["material_code"]),
        layer_thickness_mm=settings_json["layer_thickness_mm"],
        print_setting=str(settings_json.get("print_setting", "DEFAULT")),
        custom_print_setting_id=settings_json.get("custom_print_setting_id"),
    )


def _load_model(
    archive: zipfile.ZipFile, record: Json, path: Path, meshes: dict[str, Mesh]
) -> SimModel:
    """One model; ``meshes`` shares each mesh file between the models that use it."""
    name = str(record["mesh"])
    if name not in meshes:
        try:
            data = read_zip_member(archive, name, path)
            meshes[name] = read_mesh_bytes(data, ".stl", name=Path(name).stem)
        except ModelFileError as exc:
            raise _invalid(path, f"mesh {name} is unreadable: {exc.reason}") from exc
    mesh = meshes[name]
    lock = record.get("lock", "FREE")
    if lock not in LOCKS:
        raise _invalid(path, f"model {record['id']} has an unknown lock {lock!r}")
    model = SimModel(
        model_id=str(record["id"]),
        name=str(record["name"]),
        mesh=mesh,
        original_file=str(record.get("original_file", "")),
        units=str(record.get("units", "MILLIMETERS")),
        scale=float(record.get("scale", 1.0)),
        orientation=_triple(record["orientation"], "orientation", path),
        position=_triple(record["position"], "position", path),
        lock=lock,
    )
    if model.raw_mesh_hash != record.get("raw_mesh_hash"):
        raise _invalid(path, f"mesh of model {record['id']} does not match its recorded hash")
    model.visible = bool(record.get("visible", True))
    model.has_supports = bool(record.get("has_supports", False))
    model.support = dict(record.get("support") or {})
    model.hollow = record.get("hollow")
    model.drain_holes = list(record.get("drain_holes") or [])
    model.labels = list(record.get("labels") or [])
    model.scan = record.get("scan")
    return model
