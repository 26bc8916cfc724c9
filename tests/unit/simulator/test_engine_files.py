"""SimEngine files: .form save/load round trip, PNG screenshots, .fps settings."""

from __future__ import annotations

import json
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageSequence

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.drives import mount_drives
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.protocol import SimError
from preform_pipeline.simulator.screenshot import PNG_SIGNATURE

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.05}


@pytest.fixture
def engine(tmp_path: Path) -> SimEngine:
    return SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")


def error_of(engine: SimEngine, op: str, params: dict[str, str], body: Any) -> SimError:
    with pytest.raises(SimError) as caught:
        engine.call(op, params, body)
    return caught.value


@pytest.fixture
def prepared(engine: SimEngine, tmp_path: Path) -> dict[str, str]:
    """A scene with a supported, turned, labelled cube and a plain bar: its ``scene_id``."""
    scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
    cube, bar = tmp_path / "cube.stl", tmp_path / "bar.stl"
    write_stl(cube, box_triangles((0, 0, 0), (20, 20, 20)))
    write_stl(bar, box_triangles((0, 0, 0), (60, 10, 10)))
    first = engine.call(
        "import_model",
        scene,
        {
            "file": str(cube),
            "orientation": {"x": 0, "y": 0, "z": 30},
            "lock": "LOCKED_ROTATION_FREE_TRANSLATION",
        },
    )
    engine.call("import_model", scene, {"file": str(bar), "name": "Bar"})
    engine.call("auto_layout", scene, {})
    engine.call("auto_support", scene, {"models": [first["id"]], "density": 1.5})
    engine.call(
        "label_part",
        scene,
        {
            "model_id": first["id"],
            "orientation": {"x": 0, "y": 0, "z": 0},
            "position": engine.call("get_model", {**scene, "id": first["id"]}, None)["position"],
            "label": "7",
            "font_size_mm": 4,
            "depth_mm": 0.5,
        },
    )
    return scene


class TestFormFiles:
    """save-form writes our zip format; load-form reads it back into an equivalent scene."""

    def test_a_saved_scene_loads_back_equivalent(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        path = tmp_path / "job.form"
        assert engine.call("save_form_file", prepared, {"file": str(path)}) == {}
        original = engine.call("get_scene", prepared, None)
        loaded = engine.call("load_form_file", {}, {"file": str(path)})
        assert loaded["id"] != original["id"]
        assert loaded["scene_settings"] == original["scene_settings"]
        assert loaded["models"] == original["models"]
        assert loaded["material_usage"] == pytest.approx(original["material_usage"])
        assert loaded["layer_count"] == original["layer_count"]
        with engine.scenes.use(loaded["id"]) as scene:
            labelled = next(m for m in scene.models.values() if m.labels)
            assert labelled.labels[0]["label"] == "7"
            assert labelled.support["density"] == 1.5

    def test_the_file_is_a_zip_with_a_manifest_and_binary_stls(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        path = tmp_path / "job.form"
        engine.call("save_form_file", prepared, {"file": str(path)})
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            assert manifest["format"] == "preform-pipeline-simulated-form"
            for record in manifest["models"]:
                stl = archive.read(record["mesh"])
                assert len(stl) == 84 + 50 * int.from_bytes(stl[80:84], "little")

    def test_duplicates_share_one_mesh_in_the_file(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        first = engine.call("get_scene", prepared, None)["models"][0]["id"]
        engine.call("duplicate_model", {**prepared, "id": first}, {"count": 3})
        path = tmp_path / "dupes.form"
        engine.call("save_form_file", prepared, {"file": str(path)})
        with zipfile.ZipFile(path) as archive:
            meshes = [n for n in archive.namelist() if n.endswith(".stl")]
        assert len(meshes) == 2  # cube and bar, however many copies
        loaded = engine.call("load_form_file", {}, {"file": str(path)})
        assert len(loaded["models"]) == 5

    def test_saving_into_a_missing_folder_is_an_invalid_path(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        body = {"file": str(tmp_path / "no" / "such" / "job.form")}
        assert error_of(engine, "save_form_file", prepared, body).code == "INVALID_PATH"

    def test_a_zip_that_is_not_ours_is_an_invalid_form_file(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        path = tmp_path / "preform.form"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("scene.json", "{}")
        error = error_of(engine, "load_form_file", {}, {"file": str(path)})
        assert (error.status, error.code) == (400, "INVALID_FORM_FILE")

    def test_a_file_that_is_not_a_zip_is_an_invalid_form_file(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        path = tmp_path / "text.form"
        path.write_text("hello", encoding="ascii")
        assert error_of(engine, "load_form_file", {}, {"file": str(path)}).code == (
            "INVALID_FORM_FILE"
        )

    def test_a_tampered_mesh_is_refused(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        path, tampered = tmp_path / "job.form", tmp_path / "tampered.form"
        engine.call("save_form_file", prepared, {"file": str(path)})
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(tampered, "w") as target:
            for item in source.infolist():
                data = source.read(item)
                if item.filename.endswith(".stl"):
                    # Byte 100 lies in the first triangle's vertices (after the 84-byte
                    # header and its 12-byte normal).
                    data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
                target.writestr(item, data)
        assert error_of(engine, "load_form_file", {}, {"file": str(tampered)}).code == (
            "INVALID_FORM_FILE"
        )

    def test_loading_a_missing_file_is_not_found(self, engine: SimEngine, tmp_path: Path) -> None:
        body = {"file": str(tmp_path / "gone.form")}
        assert error_of(engine, "load_form_file", {}, body).code == "FILE_NOT_FOUND"


def read_png(path: Path) -> tuple[int, int, np.ndarray]:
    """Width, height and RGB pixels of an 8-bit RGB, filter-0 PNG (what the simulator writes)."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    offset, chunks = 8, {}
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.setdefault(kind, b"")
        chunks[kind] += body
        offset += 12 + length
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour) == (8, 2)
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, 1 + 3 * width)
    assert np.all(raw[:, 0] == 0)
    return width, height, raw[:, 1:].reshape(height, width, 3)


class TestScreenshots:
    """save-screenshot writes a real PNG of the scene from the requested camera."""

    def test_the_png_is_valid_and_sized_as_asked(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        path = tmp_path / "shot.png"
        assert (
            engine.call("save_screenshot", prepared, {"file": str(path), "image_size_px": 300})
            == {}
        )
        width, height, pixels = read_png(path)
        assert max(width, height) == 300
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 3  # background, platform, shades

    def test_the_full_build_volume_view_shows_more_platform_than_a_zoom(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        def model_share(view: str) -> float:
            path = tmp_path / f"{view}.png"
            body = {
                "file": str(path),
                "view_type": view,
                "pitch": 90,
                "yaw": 0,
                "image_size_px": 200,
            }
            engine.call("save_screenshot", prepared, body)
            _, _, pixels = read_png(path)
            blue = pixels[..., 2] > pixels[..., 0] + 40
            return float(blue.mean())

        assert model_share("ZOOM_ON_MODELS") > model_share("FULL_BUILD_VOLUME")

    def test_supports_rafts_and_labels_are_drawn(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
        cube = tmp_path / "cube.stl"
        write_stl(cube, box_triangles((0, 0, 0), (20, 20, 20)))
        model = engine.call("import_model", scene, {"file": str(cube)})["id"]

        def shares() -> dict[str, float]:
            path = tmp_path / "shot.png"
            engine.call("save_screenshot", scene, {"file": str(path), "image_size_px": 300})
            _, _, pixels = read_png(path)
            rgb = pixels.astype(np.float64)
            r = np.maximum(rgb[..., 0], 1.0)
            g, b = rgb[..., 1] / r, rgb[..., 2] / r
            lit = rgb[..., 0] > 60
            return {
                # Shading scales a colour, so each part is told by its channel ratios.
                "raft": float((lit & (g > 0.72) & (g < 0.88) & (b > 0.35) & (b < 0.55)).mean()),
                "support": float((lit & (g > 0.88) & (g < 1.0) & (b > 0.55) & (b < 0.75)).mean()),
                "label": float(np.all(rgb < 46, axis=2).mean()),
            }

        bare = shares()
        assert bare == {"raft": 0.0, "support": 0.0, "label": 0.0}
        engine.call("auto_support", scene, {"models": [model]})
        box = engine.call("get_model", {**scene, "id": model}, None)["bounding_box"]
        low, high = box["min_corner"], box["max_corner"]
        # On the +y face, which the default camera (yaw 45, looking towards -x -y) sees.
        side = {"x": (low["x"] + high["x"]) / 2, "y": high["y"], "z": (low["z"] + high["z"]) / 2}
        engine.call("label_part", scene, {
            "model_id": model, "orientation": {"x": 0, "y": 0, "z": 0}, "position": side,
            "label": "CASE7", "font_size_mm": 3, "depth_mm": 0.5,
        })
        dressed = shares()
        assert dressed["raft"] > 0.01 and dressed["support"] > 0.0005
        assert dressed["label"] > 0.001

    def test_files_are_written_with_the_umask_not_0600(  # POSIX file modes
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        import os

        old = os.umask(0o022)
        try:
            path = tmp_path / "shot.png"
            engine.call("save_screenshot", prepared, {"file": str(path), "image_size_px": 50})
            form = tmp_path / "job.form"
            engine.call("save_form_file", prepared, {"file": str(form)})
        finally:
            os.umask(old)
        assert path.stat().st_mode & 0o777 == 0o644
        assert form.stat().st_mode & 0o777 == 0o644

    def test_only_selected_models_are_drawn(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        ids = [m["id"] for m in engine.call("get_scene", prepared, None)["models"]]
        shares = []
        for models in (ids, ids[:1]):
            path = tmp_path / "sel.png"
            body = {
                "file": str(path),
                "models": models,
                "view_type": "FULL_PLATFORM_WIDTH",
                "pitch": 90,
                "image_size_px": 200,
            }
            engine.call("save_screenshot", prepared, body)
            _, _, pixels = read_png(path)
            shares.append(float((pixels[..., 2] > pixels[..., 0] + 40).mean()))
        assert shares[0] > shares[1] > 0

    def test_a_webp_still_is_the_png_losslessly(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        view = {"image_size_px": 80, "yaw": 30, "pitch": 40}
        engine.call("save_screenshot", prepared, {"file": str(tmp_path / "a.png"), **view})
        engine.call("save_screenshot", prepared, {"file": str(tmp_path / "a.webp"), **view})
        _, _, png = read_png(tmp_path / "a.png")
        with Image.open(tmp_path / "a.webp") as still:
            assert (still.format, getattr(still, "n_frames", 1)) == ("WEBP", 1)
            assert np.array_equal(np.asarray(still.convert("RGB")), png)

    def test_a_flyaround_is_an_animation_through_its_angles(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        fly = {"transform": [{"yaw": 0, "pitch": 30}, {"yaw": 90, "pitch": 60}], "frame_count": 3}
        path = tmp_path / "fly.webp"
        engine.call(
            "save_screenshot",
            prepared,
            {"file": str(path), "image_size_px": 80, "flyaround_transform": fly},
        )
        with Image.open(path) as animation:
            assert (animation.format, animation.n_frames) == ("WEBP", 3)
            frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(animation)]
        # The middle frame looks from halfway: yaw 45, pitch 45; frames share one canvas.
        middle = tmp_path / "middle.png"
        engine.call(
            "save_screenshot",
            prepared,
            {"file": str(middle), "image_size_px": 80, "yaw": 45, "pitch": 45},
        )
        _, _, still = read_png(middle)
        top = (frames[1].shape[0] - still.shape[0]) // 2
        left = (frames[1].shape[1] - still.shape[1]) // 2
        inner = frames[1][top : top + still.shape[0], left : left + still.shape[1]]
        assert np.array_equal(inner, still)
        assert not np.array_equal(frames[0], frames[2])

    def test_without_a_frame_count_each_angle_is_a_frame(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        angles = [{"yaw": y, "pitch": 20} for y in (0, 120, 240)]
        path = tmp_path / "fly.webp"
        body = {"file": str(path), "image_size_px": 40, "flyaround_transform": {
            "transform": angles, "ensure_constant_size": False}}
        engine.call("save_screenshot", prepared, body)
        with Image.open(path) as animation:
            assert animation.n_frames == 3

    def test_one_frame_is_a_still_of_the_first_angle(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        # Yaw and pitch 0: a still reads them as given, not as missing.
        fly = {"transform": [{"yaw": 0, "pitch": 0}, {"yaw": 90, "pitch": 60}],
               "frame_count": 1}
        engine.call("save_screenshot", prepared, {"file": str(tmp_path / "one.webp"),
                                                  "image_size_px": 40, "flyaround_transform": fly})
        engine.call("save_screenshot", prepared, {"file": str(tmp_path / "one.png"),
                                                  "image_size_px": 40, "yaw": 0, "pitch": 0})
        _, _, png = read_png(tmp_path / "one.png")
        with Image.open(tmp_path / "one.webp") as one:
            assert getattr(one, "n_frames", 1) == 1
            assert np.array_equal(np.asarray(one.convert("RGB")), png)

    def test_progress_counts_the_frames_rendered(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        seen: list[float] = []
        fly = {"transform": [{"yaw": 0, "pitch": 20}, {"yaw": 90, "pitch": 20}],
               "frame_count": 3}
        body = {"file": str(tmp_path / "p.webp"), "image_size_px": 32, "flyaround_transform": fly}
        engine.call("save_screenshot", prepared, body, seen.append)
        # Three frames of four steps: the file's writing is the last quarter.
        assert seen == [0.25, 0.5, 0.75]

    def test_crop_to_models_is_read(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        for crop in (True, False):
            engine.call("save_screenshot", prepared, {
                "file": str(tmp_path / f"{crop}.png"), "image_size_px": 40,
                "crop_to_models": crop})
        cropped, whole = read_png(tmp_path / "True.png"), read_png(tmp_path / "False.png")
        assert not np.array_equal(cropped[2], whole[2])

    def test_the_default_view_is_the_contracts(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        engine.call("save_screenshot", prepared, {"file": str(tmp_path / "d.png")})
        explicit = {"file": str(tmp_path / "e.png"), "view_type": "ZOOM_ON_MODELS", "yaw": 45,
                    "pitch": 35.264, "image_size_px": 820, "crop_to_models": True}
        engine.call("save_screenshot", prepared, explicit)
        assert np.array_equal(read_png(tmp_path / "d.png")[2], read_png(tmp_path / "e.png")[2])

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"pitch": -90.5}, "$.pitch: -90.5 is below the minimum -90"),
            ({"pitch": 90.5}, "$.pitch: 90.5 is above the maximum 90"),
            ({"image_size_px": 4097}, "$.image_size_px: 4097 is above the maximum 4096"),
        ],
    )
    def test_a_view_out_of_range_is_refused_with_its_limit(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path,
        change: dict[str, Any], message: str,
    ) -> None:
        body = {"file": str(tmp_path / "r.png"), **change}
        assert error_of(engine, "save_screenshot", prepared, body).error_message == message

    def test_another_image_format_is_refused_in_words(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        path = tmp_path / "shot.gif"
        error = error_of(engine, "save_screenshot", prepared, {"file": str(path)})
        assert error.error_message == f"$.file: '{path}' must end in .png or .webp"

    def test_a_one_pixel_screenshot_is_drawn(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        engine.call("save_screenshot", prepared,
                    {"file": str(tmp_path / "1.png"), "image_size_px": 1})
        assert max(read_png(tmp_path / "1.png")[:2]) == 1

    @pytest.mark.parametrize(
        ("file", "fly", "message"),
        [
            ("fly.png", {"transform": [{"yaw": 0, "pitch": 0}] * 2},
             "$.file: 'FOLDER/fly.png': a flyaround is an animation, saved as .webp"),
            ("fly.webp", {"transform": [{"yaw": 0, "pitch": 0}]},
             "$.flyaround_transform.transform: expected an array of at least 2 {yaw, pitch} "
             "angles"),
            ("fly.webp", {"transform": [{"yaw": 0, "pitch": 0}, {"yaw": 9}]},
             "$.flyaround_transform.transform[1].pitch: is required"),
            ("fly.webp", {"transform": [{"yaw": 0, "pitch": 0}, {"yaw": 9, "pitch": -90.5}]},
             "$.flyaround_transform.transform[1].pitch: -90.5 is below the minimum -90"),
            ("fly.webp", {"transform": [{"yaw": 0, "pitch": 0}, {"yaw": 9, "pitch": 90.5}]},
             "$.flyaround_transform.transform[1].pitch: 90.5 is above the maximum 90"),
            ("fly.webp", {"transform": [{"yaw": 0, "pitch": 0}] * 2, "frame_count": 0.5},
             "$.flyaround_transform.frame_count: 0.5 is below the minimum 1"),
            ("fly.webp", {"transform": [{"yaw": 0, "pitch": 0}] * 2, "frame_count": 121},
             "$.flyaround_transform.frame_count: 121 is above the maximum 120"),
            ("fly.webp", {"transform": [{"yaw": 0, "pitch": 0}] * 2,
                          "ensure_constant_size": "yes"},
             "$.flyaround_transform.ensure_constant_size: expected true or false, got string"),
            ("fly.webp", {"transform": [{"yaw": 0, "pitch": 0}] * 2, "speed": 2},
             "$.flyaround_transform: unexpected field speed; allowed: ensure_constant_size, "
             "frame_count, transform"),
        ],
    )
    def test_a_flyaround_the_contract_does_not_allow_is_refused_saying_what_is_wrong(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path,
        file: str, fly: dict[str, Any], message: str,
    ) -> None:
        body = {"file": str(tmp_path / file), "flyaround_transform": fly}
        error = error_of(engine, "save_screenshot", prepared, body)
        assert error.code == "INVALID_BODY"
        assert error.error_message == message.replace("FOLDER", str(tmp_path))
        assert not (tmp_path / file).exists()

    @pytest.mark.parametrize(
        "change",
        [{"file": "shot.gif"}, {"view_type": "FISHEYE"}, {"image_size_px": 0}, {"pitch": 120}],
    )
    def test_bad_options_are_invalid(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path, change: dict[str, Any]
    ) -> None:
        body = {"file": str(tmp_path / "shot.png"), **change}
        if "file" in change:
            body["file"] = str(tmp_path / change["file"])
        assert error_of(engine, "save_screenshot", prepared, body).code == "INVALID_BODY"

    def test_an_empty_scene_shows_the_platform(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
        path = tmp_path / "empty.png"
        engine.call("save_screenshot", scene, {"file": str(path), "image_size_px": 64})
        width, height, _ = read_png(path)
        assert max(width, height) == 64


class TestFpsFiles:
    """save-fps-file writes the scene settings as PreForm's schema-3 .fps."""

    def test_the_fps_file_holds_the_settings(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path
    ) -> None:
        path = tmp_path / "grey.fps"
        assert engine.call("save_fps_file", prepared, {"file": str(path)}) == {}
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["metadata"]["base_material_identifier"] == {
            "machine_type_id": FORM4["machine_type"],
            "versioned_material_code": FORM4["material_code"],
            "layer_thickness_mm": FORM4["layer_thickness_mm"],
        }
        core = document["public_fields"]["categories"][0]
        assert core["key"] == "Core_Scene"
        assert core["values"]["layer_thickness"] == {
            "layer_thickness_mm": FORM4["layer_thickness_mm"]
        }


def _device(path: Path, kind: int) -> Path | None:
    """A device node at ``path`` (``stat.S_IFCHR`` or ``S_IFBLK``), or None where this user
    may not make one (only root may)."""
    try:
        device = os.makedev(1, 3) if kind == stat.S_IFCHR else os.makedev(7, 0)
        os.mknod(path, kind | 0o600, device)
    except (OSError, AttributeError):
        return None
    return path


class TestASaveOverADevice:
    """A save to a device node is refused as a device, and the node stays."""

    @pytest.mark.parametrize("kind", [stat.S_IFCHR, stat.S_IFBLK], ids=["character", "block"])
    def test_it_is_refused_naming_a_device(
        self, engine: SimEngine, prepared: dict[str, str], tmp_path: Path, kind: int
    ) -> None:
        node = _device(tmp_path / "node.form", kind)
        if node is None:
            pytest.skip("making a device node needs root")
        error = error_of(engine, "save_form_file", prepared, {"file": str(node)})
        assert (error.status, error.code) == (400, "INVALID_PATH")
        assert error.error_message == (
            f"$.file: {str(node)!r} is a device, not a file; give the path of a file to "
            "create or replace")
        assert stat.S_IFMT(node.lstat().st_mode) == kind


class TestAMountedDrive:
    """A simulator playing a Windows machine with ``Z:`` mounted reads and writes ``Z:\\``
    paths in the folder behind it."""

    @pytest.fixture
    def share(self, tmp_path: Path) -> Iterator[Path]:
        share = tmp_path / "share"
        (share / "models").mkdir(parents=True)
        mount_drives({"Z:": share})
        try:
            yield share
        finally:
            mount_drives({})

    def test_an_import_and_a_save_use_the_drives_folder(
        self, engine: SimEngine, share: Path
    ) -> None:
        write_stl(share / "models" / "cube.stl", box_triangles((0, 0, 0), (20, 20, 20)))
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}

        model = engine.call("import_model", scene, {"file": "Z:\\models\\cube.stl"})
        engine.call("save_form_file", scene, {"file": "z:\\models\\job.form"})

        assert model["name"] == "cube"
        assert zipfile.is_zipfile(share / "models" / "job.form")

    @pytest.mark.parametrize("path", ["Y:\\models\\cube.stl", "\\\\nas\\dental\\cube.stl"],
                             ids=["drive", "share"])
    def test_a_path_on_a_drive_it_does_not_have_is_said_so(
        self, engine: SimEngine, share: Path, path: str
    ) -> None:
        # Session 44: a path map to the wrong drive was told "a Windows path on a
        # non-Windows simulator", false of a simulator playing a Windows machine.
        write_stl(share / "models" / "cube.stl", box_triangles((0, 0, 0), (20, 20, 20)))
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
        error = error_of(engine, "import_model", scene, {"file": path})
        assert (error.status, error.code) == (400, "INVALID_PATH")
        drive = PureWindowsPath(path).drive
        assert error.error_message == (
            f"$.file: {path!r} is on {drive}, which this server (a simulated Windows machine) "
            "does not have; it has Z:")
