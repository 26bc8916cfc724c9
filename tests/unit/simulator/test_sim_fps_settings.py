"""PreForm print-settings files (.fps, schema 3) over real HTTP to the real engine.

Formlabs' ``speedrun.py`` saves a scene's settings, changes exposures, wiping and the layer
height in the JSON, puts each variation back with ``{"fps_file": path}`` and compares the
estimated print times; these tests do the same as a user would, and check the estimate by the
rule docs/simulator-engine.md gives: per layer, the largest exposure over the irradiance, plus
the post-exposure cure wait, plus the family's mechanics (7 s less its defaults' light and
wait: 5 s for the Form 4 family).
"""

from __future__ import annotations

import copy
import json
import math
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sim_server_support import WAIT_S

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.server import SimulatorServer
from tests.openapi_contract import local_api_contract

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}
FORM3 = {"machine_type": "FORM-3-1", "material_code": "FLGPGR04", "layer_thickness_mm": 0.1}
FUSE = {"machine_type": "FS30-1-0", "material_code": "FLP12G01", "layer_thickness_mm": 0.11}
FORM4_KNOBS = "Material_Form_4_Family_Print"
#: The 20 mm cube at 0.1 mm: 200 layers, 300 s before the first.
LAYERS = 200
PREPRINT_S = 300.0
#: Form 4 family mechanics: 7 s less the defaults' 12.8 mJ/cm^2 / 16 mW/cm^2 and 1.2 s wait.
MECHANICS_S = 5.0


class Client:
    """A user's session with the simulator: one scene holding a 20 mm cube."""

    def __init__(self, http: httpx.Client, folder: Path, settings: dict[str, Any]) -> None:
        self.http = http
        self.folder = folder
        cube = folder / "cube.stl"
        write_stl(cube, box_triangles((0.0, 0.0, 0.0), (20.0, 20.0, 20.0)))
        self.scene = self.ok(http.post("/scene/", json=settings))["id"]
        self.ok(self.post("import-model/", {"file": str(cube)}))

    @staticmethod
    def ok(response: httpx.Response) -> Any:
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, operation: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(f"/scene/{self.scene}/{operation}", json=body)

    def saved_fps(self, name: str = "base.fps") -> dict[str, Any]:
        path = self.folder / name
        self.ok(self.post("save-fps-file/", {"file": str(path)}))
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return document

    def put_fps(self, document: dict[str, Any], name: str = "variation.fps") -> httpx.Response:
        path = self.folder / name
        path.write_text(json.dumps(document, indent=4), encoding="utf-8")
        return self.http.put(f"/scene/{self.scene}/", json={"fps_file": str(path)})

    def estimate(self) -> dict[str, float]:
        answer: dict[str, float] = self.ok(self.post("estimate-print-time/"))
        return answer

    def settings(self) -> dict[str, Any]:
        scene = self.ok(self.http.get(f"/scene/{self.scene}/"))
        settings: dict[str, Any] = scene["scene_settings"]
        return settings


def category(document: dict[str, Any], key: str) -> dict[str, Any]:
    """The ``values`` of a category, found by key as Formlabs' scripts find it."""
    for item in document["public_fields"]["categories"]:
        if item["key"] == key:
            values: dict[str, Any] = item["values"]
            return values
    raise AssertionError(f"no category {key!r}")


def reduce_exposure(document: dict[str, Any], fraction: float) -> dict[str, Any]:
    """What speedrun's exposure variation does to the Form 4 knobs."""
    changed = copy.deepcopy(document)
    knobs = category(changed, FORM4_KNOBS)
    model = knobs["model_fill_exposure_mJpcm2"]
    knobs["model_fill_exposure_mJpcm2"] = round(model * (1 - fraction), 1)
    for overhang in knobs["overhang_fill_exposures"]:
        overhang["exposure_mJpcm2"] = round(overhang["exposure_mJpcm2"] * (1 - fraction), 1)
    for key in ("perimeter_fill_exposure_mJpcm2", "supports_fill_exposure_mJpcm2",
                "top_surface_exposure_mJpcm2"):
        knobs[key] = knobs["model_fill_exposure_mJpcm2"]
    knobs["irradiance_mWpcm2"] = 16
    knobs["post_expose_cure_wait_s"] = 0
    return changed


def with_thickness(document: dict[str, Any], thickness: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    category(changed, "Core_Scene")["layer_thickness"]["layer_thickness_mm"] = thickness
    return changed


@pytest.fixture
def http(engine_server: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine_server.url, timeout=WAIT_S) as client:
        yield client


@pytest.fixture
def user(http: httpx.Client, tmp_path: Path) -> Client:
    return Client(http, tmp_path, FORM4)


class TestSaveFpsWritesPreFormsSchema:
    """save-fps-file writes PreForm's schema-3 document, with the machine family's knobs."""

    def test_a_form4_scene_saves_its_base_material_core_scene_and_form4_knobs(
        self, user: Client
    ) -> None:
        document = user.saved_fps()
        metadata = document["metadata"]
        assert re.fullmatch(r"\{[0-9a-f-]{36}\}", metadata["id"])
        assert metadata["schema_version"] == 3
        assert metadata["base_material_identifier"] == {
            "machine_type_id": "FORM-4-0", "versioned_material_code": "FLGPGR05",
            "layer_thickness_mm": 0.1,
        }
        core = category(document, "Core_Scene")
        assert core["layer_thickness"] == {"layer_thickness_mm": 0.1}
        assert [core[f"{a}_correction_factor"] for a in "xyz"] == [1.0, 1.0, 1.0]
        knobs = category(document, FORM4_KNOBS)
        assert knobs["wipe_behavior_pattern"] == [{"wipe_behavior": 1}]
        assert knobs["irradiance_mWpcm2"] == 16.0
        assert knobs["post_expose_cure_wait_s"] == 1.2
        exposures = [knobs[k] for k in ("model_fill_exposure_mJpcm2",
                                        "perimeter_fill_exposure_mJpcm2",
                                        "supports_fill_exposure_mJpcm2",
                                        "top_surface_exposure_mJpcm2")]
        exposures += [o["exposure_mJpcm2"] for o in knobs["overhang_fill_exposures"]]
        assert max(exposures) == 12.8

    def test_the_same_settings_save_the_same_id_and_other_settings_another(
        self, http: httpx.Client, tmp_path: Path
    ) -> None:
        ids = []
        for number, change in enumerate(
            [{}, {}, {"machine_type": "FORM-4L-0"}, {"material_code": "FLGPBK05"},
             {"layer_thickness_mm": 0.05}]
        ):
            saved = Client(http, tmp_path, {**FORM4, **change}).saved_fps(f"{number}.fps")
            ids.append(saved["metadata"]["id"])
        assert ids[0] == ids[1]
        assert len(set(ids)) == 4

    def test_the_setting_is_named_by_its_material_and_thickness(
        self, http: httpx.Client, tmp_path: Path
    ) -> None:
        assert Client(http, tmp_path, FORM4).saved_fps()["metadata"]["name"] == (
            "FLGPGR05 0.100mm"
        )
        adaptive = Client(http, tmp_path, {**FORM4, "layer_thickness_mm": "ADAPTIVE"})
        document = adaptive.saved_fps("adaptive.fps")
        assert document["metadata"]["name"] == "FLGPGR05 Adaptive"
        assert document["metadata"]["base_material_identifier"]["layer_thickness_mm"] == (
            "ADAPTIVE"
        )
        assert category(document, "Core_Scene")["layer_thickness"] == {
            "layer_thickness_mm": "ADAPTIVE"
        }
        # Put back, it is the same setting, priced at the adaptive average of 0.1 mm.
        assert adaptive.put_fps(document).status_code == 200
        assert adaptive.settings()["layer_thickness_mm"] == "ADAPTIVE"
        assert adaptive.estimate()["printing_time_s"] == pytest.approx(LAYERS * 7.0)

    def test_a_scene_that_names_its_custom_setting_saves_that_id(
        self, http: httpx.Client, tmp_path: Path
    ) -> None:
        named = Client(http, tmp_path, {**FORM4, "custom_print_setting_id": "{my-grey}"})
        assert named.saved_fps()["metadata"]["id"] == "{my-grey}"

    def test_a_file_that_cannot_be_written_is_a_write_failure(self, user: Client) -> None:
        # A name longer than the file system's 255 bytes: the temporary beside it is cut to
        # fit and written, the rename onto the name fails (a 240-byte name, the temporary's
        # failure before session 29, now saves: test_sim_hostile_requests.py).
        name = "n" * 296 + ".fps"
        before = sorted(user.folder.iterdir())
        answer = user.post("save-fps-file/", {"file": str(user.folder / name)})
        assert refused(answer, "FILE_WRITE_FAILED").startswith(
            f"cannot write {user.folder / name}: "
        )
        assert sorted(user.folder.iterdir()) == before  # its temporary removed

    def test_a_form3_scene_has_its_own_family_and_an_sls_scene_none(
        self, http: httpx.Client, tmp_path: Path
    ) -> None:
        form3 = Client(http, tmp_path, FORM3).saved_fps("form3.fps")
        keys = [c["key"] for c in form3["public_fields"]["categories"]]
        assert keys == ["Core_Scene", "Material_Form_3_Family_Print"]
        fuse = Client(http, tmp_path, FUSE).saved_fps("fuse.fps")
        assert [c["key"] for c in fuse["public_fields"]["categories"]] == ["Core_Scene"]


class TestAVariationIsPricedByItsKnobs:
    """A variation put back with fps_file changes the estimate by the rule, as speedrun sees."""

    def test_the_saved_settings_put_back_cost_what_the_catalogue_setting_costs(
        self, user: Client
    ) -> None:
        base = user.estimate()
        assert base["printing_time_s"] == pytest.approx(LAYERS * 7.0)
        assert user.put_fps(user.saved_fps()).status_code == 200
        assert user.estimate() == pytest.approx(base)

    def test_reduced_exposure_shortens_each_layer_by_its_light_and_wait(
        self, user: Client
    ) -> None:
        base = user.estimate()["total_print_time_s"]
        variation = reduce_exposure(user.saved_fps(), 0.2)
        assert user.put_fps(variation).status_code == 200
        answer = user.estimate()
        # 20% less: the largest exposure 12.8 -> 10.2 mJ/cm^2 at 16 mW/cm^2, no wait.
        per_layer = 10.2 / 16 + 0.0 + MECHANICS_S
        assert answer["printing_time_s"] == pytest.approx(LAYERS * per_layer)
        assert answer["total_print_time_s"] == pytest.approx(PREPRINT_S + LAYERS * per_layer)
        decrease = 100 * (base - answer["total_print_time_s"]) / base
        assert decrease == pytest.approx(100 * LAYERS * (7.0 - per_layer) / (PREPRINT_S + 1400))

    def test_a_lower_irradiance_lengthens_each_layer(self, user: Client) -> None:
        variation = user.saved_fps()
        category(variation, FORM4_KNOBS)["irradiance_mWpcm2"] = 8
        assert user.put_fps(variation).status_code == 200
        per_layer = 12.8 / 8 + 1.2 + MECHANICS_S
        assert user.estimate()["printing_time_s"] == pytest.approx(LAYERS * per_layer)

    def test_an_overhang_exposure_above_the_others_sets_the_light(self, user: Client) -> None:
        variation = user.saved_fps()
        category(variation, FORM4_KNOBS)["overhang_fill_exposures"] = [
            {"exposure_mJpcm2": 0.5}, {"exposure_mJpcm2": 24.0}
        ]
        assert user.put_fps(variation).status_code == 200
        per_layer = 24.0 / 16 + 1.2 + MECHANICS_S
        assert user.estimate()["printing_time_s"] == pytest.approx(LAYERS * per_layer)

    @pytest.mark.parametrize(
        "key", ["model_fill_exposure_mJpcm2", "perimeter_fill_exposure_mJpcm2",
                "supports_fill_exposure_mJpcm2", "top_surface_exposure_mJpcm2"]
    )
    def test_each_exposure_counts_when_it_is_the_largest(self, user: Client, key: str) -> None:
        variation = user.saved_fps()
        category(variation, FORM4_KNOBS)[key] = 32.0
        assert user.put_fps(variation).status_code == 200
        per_layer = 32.0 / 16 + 1.2 + MECHANICS_S
        assert user.estimate()["printing_time_s"] == pytest.approx(LAYERS * per_layer)

    def test_a_thicker_custom_layer_prints_fewer_layers_and_is_taken_as_written(
        self, user: Client
    ) -> None:
        document = user.saved_fps()
        assert user.put_fps(with_thickness(document, 0.15)).status_code == 200
        layers = math.ceil(20 / 0.15)
        settings = user.settings()
        assert settings == {
            **FORM4, "layer_thickness_mm": 0.15, "print_setting": "DEFAULT",
            "custom_print_setting_id": document["metadata"]["id"],
        }
        scene = user.ok(user.http.get(f"/scene/{user.scene}/"))
        assert scene["layer_count"] == layers
        assert user.estimate()["printing_time_s"] == pytest.approx(layers * 7.0)

    def test_changing_the_wiping_alone_leaves_the_estimate(self, user: Client) -> None:
        base = user.estimate()
        variation = user.saved_fps()
        category(variation, FORM4_KNOBS)["wipe_behavior_pattern"] = [{"wipe_behavior": 0}]
        assert user.put_fps(variation).status_code == 200
        assert user.estimate() == pytest.approx(base)
        # ... but it is kept: saved again, the file says what was put.
        again = category(user.saved_fps("again.fps"), FORM4_KNOBS)
        assert again["wipe_behavior_pattern"] == [{"wipe_behavior": 0}]

    @pytest.mark.parametrize(
        ("kept", "per_layer"),
        [
            ({"post_expose_cure_wait_s": 0}, 12.8 / 16 + 0.0 + MECHANICS_S),
            ({"irradiance_mWpcm2": 8}, 12.8 / 8 + 1.2 + MECHANICS_S),
        ],
    )
    def test_knobs_left_out_take_the_familys_defaults(
        self, user: Client, tmp_path: Path, kept: dict[str, float], per_layer: float
    ) -> None:
        variation = user.saved_fps()
        knobs = category(variation, FORM4_KNOBS)
        defaults = dict(knobs)
        knobs.clear()
        knobs.update(kept)
        assert user.put_fps(variation).status_code == 200
        assert user.estimate()["printing_time_s"] == pytest.approx(LAYERS * per_layer)
        # A print records the knobs it was priced with: the defaults, but for those kept.
        job_id = user.ok(
            user.post("print/", {"printer": "SimulatedForm4-1", "job_name": "defaults"})
        )["job_id"]
        job = json.loads((tmp_path / "fleet" / "jobs" / f"{job_id}.json").read_text("utf-8"))
        recorded = job["custom_print_setting"]["knobs"]
        assert recorded == {**defaults, **kept}
        assert recorded["wipe_behavior_pattern"] == [{"wipe_behavior": 1}]

    def test_a_file_without_the_familys_category_prints_with_its_defaults(
        self, user: Client
    ) -> None:
        base = user.estimate()
        variation = user.saved_fps()
        categories = variation["public_fields"]["categories"]
        categories[:] = [c for c in categories if c["key"] != FORM4_KNOBS]
        assert user.put_fps(variation).status_code == 200
        assert user.estimate() == pytest.approx(base)

    def test_the_settings_put_back_are_saved_as_they_were_written(self, user: Client) -> None:
        variation = reduce_exposure(with_thickness(user.saved_fps(), 0.12), 0.3)
        variation["metadata"]["name"] += "_mine"
        category(variation, FORM4_KNOBS)["a_knob_the_simulator_does_not_know"] = [1, 2]
        category(variation, "Core_Scene")["X_correction_factor"] = "not ours"
        assert user.put_fps(variation).status_code == 200
        assert user.saved_fps("again.fps") == variation


class TestCustomSettingsTravelWithTheScene:
    """A .form and a print keep a scene's custom print setting."""

    def test_a_saved_form_loads_with_its_custom_setting(self, user: Client) -> None:
        variation = reduce_exposure(with_thickness(user.saved_fps(), 0.15), 0.1)
        assert user.put_fps(variation).status_code == 200
        settings, estimate = user.settings(), user.estimate()
        form = user.folder / "variation.form"
        user.ok(user.post("save-form/", {"file": str(form)}))
        loaded = user.ok(user.http.post("/load-form/", json={"file": str(form)}))
        assert loaded["scene_settings"] == settings
        user.scene = loaded["id"]
        assert user.estimate() == pytest.approx(estimate)
        assert user.saved_fps("from-form.fps") == variation

    def test_a_print_records_the_custom_setting_and_its_estimate(
        self, user: Client, tmp_path: Path
    ) -> None:
        variation = reduce_exposure(with_thickness(user.saved_fps(), 0.15), 0.3)
        assert user.put_fps(variation).status_code == 200
        estimate = user.estimate()["total_print_time_s"]
        job_id = user.ok(
            user.post("print/", {"printer": "SimulatedForm4-1", "job_name": "fast"})
        )["job_id"]
        job = json.loads((tmp_path / "fleet" / "jobs" / f"{job_id}.json").read_text("utf-8"))
        assert job["scene_settings"]["layer_thickness_mm"] == 0.15
        assert job["scene_settings"]["custom_print_setting_id"] == variation["metadata"]["id"]
        assert job["layer_count"] == math.ceil(20 / 0.15)
        assert job["estimated_print_time_s"] == pytest.approx(estimate)
        knobs = category(variation, FORM4_KNOBS)
        assert job["custom_print_setting"] == {
            "id": variation["metadata"]["id"],
            "name": "FLGPGR05 0.100mm",
            "base_layer_thickness_mm": 0.1,
            "knobs": {**knobs, "irradiance_mWpcm2": 16.0, "post_expose_cure_wait_s": 0.0},
        }

    def test_a_print_of_a_catalogue_setting_records_no_custom_one(
        self, user: Client, tmp_path: Path
    ) -> None:
        job_id = user.ok(
            user.post("print/", {"printer": "SimulatedForm4-1", "job_name": "plain"})
        )["job_id"]
        job = json.loads((tmp_path / "fleet" / "jobs" / f"{job_id}.json").read_text("utf-8"))
        assert job["custom_print_setting"] is None

    def test_an_sls_print_setting_has_no_knobs(self, http: httpx.Client, tmp_path: Path) -> None:
        fuse = Client(http, tmp_path, FUSE)
        document = fuse.saved_fps("fuse.fps")
        del document["metadata"]["name"]  # a name is not required
        assert fuse.put_fps(document).status_code == 200
        job_id = fuse.ok(
            fuse.post("print/", {"printer": "SimulatedFuse1-1", "job_name": "powder"})
        )["job_id"]
        job = json.loads((tmp_path / "fleet" / "jobs" / f"{job_id}.json").read_text("utf-8"))
        assert job["custom_print_setting"] == {
            "id": document["metadata"]["id"], "name": "",
            "base_layer_thickness_mm": 0.11, "knobs": None,
        }


class TestTheSimulatorsOlderFiles:
    """.fps files the simulator wrote before schema 3 are read as they were."""

    @staticmethod
    def older(**settings: Any) -> dict[str, Any]:
        return {"format": "preform-pipeline-simulated-fps", "version": 1,
                "scene_settings": {**FORM4, "material_code": "FLGPBK05",
                                   "layer_thickness_mm": 0.05, **settings}}

    def test_an_older_file_gives_its_settings(self, user: Client) -> None:
        older = self.older(print_setting="DEFAULT", custom_print_setting_id="mine-1")
        assert user.put_fps(older).status_code == 200
        assert user.settings() == older["scene_settings"]
        assert user.estimate()["printing_time_s"] == pytest.approx(400 * 7.0)

    def test_an_older_file_without_a_print_setting_has_the_default(self, user: Client) -> None:
        assert user.put_fps(self.older()).status_code == 200
        assert user.settings() == {**self.older()["scene_settings"], "print_setting": "DEFAULT"}

    def test_an_older_file_with_an_unknown_print_setting_is_refused(self, user: Client) -> None:
        answer = user.put_fps(self.older(print_setting="FAST"))
        assert "print_setting 'FAST' is not offered" in refused(answer, "UNKNOWN_PRINT_SETTING")

    def test_a_bad_value_in_an_older_file_is_named_with_the_file(self, user: Client) -> None:
        answer = user.put_fps(self.older(layer_thickness_mm=-1), "old.fps")
        assert refused(answer, "INVALID_FPS_FILE") == (
            f"{user.folder / 'old.fps'}: fps.scene_settings.layer_thickness_mm: "
            "-1 must be greater than 0"
        )


class TestSettingsTheCatalogueDoesNotOffer:
    """Settings from a file or a body that the catalogue lacks are refused with the choices."""

    @pytest.mark.parametrize(
        ("change", "code", "message"),
        [
            ({"machine_type": "FORM-9"}, "UNKNOWN_MACHINE_TYPE",
             "unknown machine_type 'FORM-9'; valid: FORM-4-0, FORM-4B-0, FORM-4L-0, FORM-3-1, "
             "FORM-3-0, FORM-3L-0, FS30-1-0"),
            ({"material_code": "FLNOPE01"}, "UNKNOWN_MATERIAL",
             "material 'FLNOPE01' is not available on Form 4; valid: FLGPGR05, FLGPBK05, "
             "FLGPWH05, FLGPCL05, FLTO2K02, FLDUCL22, FLFRGR01, FLRG1011, FLPMBE01, FLDMGR01"),
            ({"layer_thickness_mm": 0.3}, "UNSUPPORTED_LAYER_THICKNESS",
             "Grey V5 on Form 4 cannot print at layer_thickness_mm=0.3; valid: 0.025, 0.05, "
             "0.1, 0.2, ADAPTIVE"),
            ({"print_setting": "FAST"}, "UNKNOWN_PRINT_SETTING",
             "print_setting 'FAST' is not offered for Grey V5; valid: DEFAULT"),
        ],
    )
    def test_a_manual_body_is_told_the_choices(
        self, http: httpx.Client, change: dict[str, Any], code: str, message: str
    ) -> None:
        assert refused(http.post("/scene/", json={**FORM4, **change}), code) == message

    def test_an_fps_whose_base_setting_is_not_offered_is_told_the_choices(
        self, user: Client
    ) -> None:
        document = user.saved_fps()
        document["metadata"]["base_material_identifier"]["layer_thickness_mm"] = 0.3
        assert refused(user.put_fps(document), "UNSUPPORTED_LAYER_THICKNESS") == (
            "the print setting's base material, Grey V5 on Form 4, has no setting at "
            "layer_thickness_mm=0.3 ($.metadata.base_material_identifier.layer_thickness_mm); "
            "valid: 0.025, 0.05, 0.1, 0.2, ADAPTIVE"
        )


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to the saved document: ``value`` at ``path`` (dots, and [i] for list items);
    a value of ``_DROP`` removes the key."""

    def change(document: dict[str, Any]) -> None:
        parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
        target: Any = document
        for part in parts[:-1]:
            target = target[int(part[1:-1])] if part.startswith("[") else target[part]
        last = parts[-1]
        key: Any = int(last[1:-1]) if last.startswith("[") else last
        if value is _DROP:
            del target[key]
        else:
            target[key] = value

    return change


_DROP = object()
_KNOBS = "public_fields.categories[1].values"
_CORE = "public_fields.categories[0].values"


class TestAMalformedFpsIsRefused:
    """A malformed .fps is a 400 ErrorModel saying what is wrong and where; nothing changes."""

    @pytest.mark.parametrize(
        ("where", "value", "code", "message"),
        [
            (f"{_KNOBS}.model_fill_exposure_mJpcm2", "8", "INVALID_FPS_FILE",
             f"$.{_KNOBS}.model_fill_exposure_mJpcm2: expected a number, got string"),
            (f"{_KNOBS}.overhang_fill_exposures[0].exposure_mJpcm2", _DROP, "INVALID_FPS_FILE",
             f"$.{_KNOBS}.overhang_fill_exposures[0].exposure_mJpcm2: is required"),
            (f"{_KNOBS}.overhang_fill_exposures", {"exposure_mJpcm2": 1}, "INVALID_FPS_FILE",
             f"$.{_KNOBS}.overhang_fill_exposures: expected an array of objects"),
            (f"{_KNOBS}.overhang_fill_exposures[0].exposure_mJpcm2", 0, "INVALID_FPS_FILE",
             f"$.{_KNOBS}.overhang_fill_exposures[0].exposure_mJpcm2: 0 must be greater than 0"),
            ("public_fields.categories[0].values", _DROP, "INVALID_FPS_FILE",
             "$.public_fields.categories[0].values: is required"),
            ("public_fields.categories[1].values", _DROP, "INVALID_FPS_FILE",
             "$.public_fields.categories[1].values: is required"),
            ("metadata.base_material_identifier", _DROP, "INVALID_FPS_FILE",
             "$.metadata.base_material_identifier: is required"),
            (f"{_KNOBS}.irradiance_mWpcm2", 0, "INVALID_FPS_FILE",
             f"$.{_KNOBS}.irradiance_mWpcm2: 0 must be greater than 0"),
            (f"{_KNOBS}.supports_fill_exposure_mJpcm2", -1, "INVALID_FPS_FILE",
             f"$.{_KNOBS}.supports_fill_exposure_mJpcm2: -1 must be greater than 0"),
            (f"{_KNOBS}.post_expose_cure_wait_s", -0.5, "INVALID_FPS_FILE",
             f"$.{_KNOBS}.post_expose_cure_wait_s: -0.5 is below the minimum 0"),
            (f"{_KNOBS}.wipe_behavior_pattern[0].wipe_behavior", 0.5, "INVALID_FPS_FILE",
             f"$.{_KNOBS}.wipe_behavior_pattern[0].wipe_behavior: expected an integer, got 0.5"),
            (f"{_KNOBS}.wipe_behavior_pattern[0]", {}, "INVALID_FPS_FILE",
             f"$.{_KNOBS}.wipe_behavior_pattern[0].wipe_behavior: is required"),
            (f"{_CORE}.layer_thickness.layer_thickness_mm", 5, "INVALID_FPS_FILE",
             f"$.{_CORE}.layer_thickness.layer_thickness_mm: 5 is above the maximum 0.5"),
            (f"{_CORE}.layer_thickness.layer_thickness_mm", 0.001, "INVALID_FPS_FILE",
             f"$.{_CORE}.layer_thickness.layer_thickness_mm: 0.001 is below the minimum 0.01"),
            (f"{_CORE}.layer_thickness.layer_thickness_mm", 0, "INVALID_FPS_FILE",
             f"$.{_CORE}.layer_thickness.layer_thickness_mm: 0 is below the minimum 0.01"),
            (f"{_CORE}.layer_thickness", _DROP, "INVALID_FPS_FILE",
             f"$.{_CORE}.layer_thickness: is required"),
            (f"{_CORE}.x_correction_factor", 0, "INVALID_FPS_FILE",
             f"$.{_CORE}.x_correction_factor: 0 must be greater than 0"),
            ("public_fields.categories[0].key", "Core_Scenery", "INVALID_FPS_FILE",
             "$.public_fields.categories: no 'Core_Scene' category"),
            ("public_fields.categories[0].key", FORM4_KNOBS, "INVALID_FPS_FILE",
             f"$.public_fields.categories[1].key: '{FORM4_KNOBS}' appears twice"),
            ("public_fields.categories[1].values", [], "INVALID_FPS_FILE",
             "$.public_fields.categories[1].values: expected a JSON object, got array"),
            ("public_fields.categories", {}, "INVALID_FPS_FILE",
             "$.public_fields.categories: expected an array of objects"),
            ("public_fields", _DROP, "INVALID_FPS_FILE", "$.public_fields: is required"),
            ("metadata.schema_version", 2, "INVALID_FPS_FILE",
             "$.metadata.schema_version: 2 is not supported; the simulator reads schema 3"),
            ("metadata.id", 7, "INVALID_FPS_FILE", "$.metadata.id: expected a string, got number"),
            ("metadata.base_material_identifier.layer_thickness_mm", -0.1, "INVALID_FPS_FILE",
             "$.metadata.base_material_identifier.layer_thickness_mm: -0.1 must be greater than 0"),
            ("metadata.base_material_identifier.versioned_material_code", "FLNOPE01",
             "UNKNOWN_MATERIAL", "material 'FLNOPE01' is not available on Form 4"),
            ("metadata.base_material_identifier.machine_type_id", "FORM-9-0",
             "UNKNOWN_MACHINE_TYPE", "unknown machine_type 'FORM-9-0'"),
            ("metadata.base_material_identifier.layer_thickness_mm", 0.15,
             "UNSUPPORTED_LAYER_THICKNESS",
             "has no setting at layer_thickness_mm=0.15 "
             "($.metadata.base_material_identifier.layer_thickness_mm)"),
        ],
    )
    def test_a_bad_value_is_named_by_its_path(
        self, user: Client, where: str, value: Any, code: str, message: str
    ) -> None:
        before = user.settings()
        document = user.saved_fps()
        _set(where, value)(document)
        assert refused(user.put_fps(document), code).count(message) == 1
        assert user.settings() == before

    def test_the_whole_message_names_the_file_and_the_path(self, user: Client) -> None:
        document = user.saved_fps()
        category(document, FORM4_KNOBS)["irradiance_mWpcm2"] = -16
        answer = user.put_fps(document, "dim.fps")
        assert refused(answer, "INVALID_FPS_FILE") == (
            f"{user.folder / 'dim.fps'}: $.{_KNOBS}.irradiance_mWpcm2: -16 must be greater than 0"
        )

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ('{"metadata": {', "not a readable .fps (Expecting property name enclosed in double "
             "quotes: line 1 column 15 (char 14)); the simulator reads PreForm's schema-3 print "
             "settings and the .fps files it wrote"),
            ("[" * 100_000, "not a readable .fps"),
            ('{"public_fields": {}}', "not a print-settings file (no $.metadata, and not the "
             "simulator's own format)"),
            ("[1, 2]", "not a print-settings file"),
        ],
    )
    def test_a_file_that_is_no_print_settings_is_refused(
        self, user: Client, text: str, message: str
    ) -> None:
        path = user.folder / "odd.fps"
        path.write_text(text, encoding="utf-8")
        answer = user.http.put(f"/scene/{user.scene}/", json={"fps_file": str(path)})
        assert message in refused(answer, "INVALID_FPS_FILE")

    @pytest.mark.parametrize(
        ("size", "message"),
        [
            (16 * 1024 * 1024 + 1, "16777217 bytes, more than a print-settings file's 16777216"),
            (16 * 1024 * 1024, "Expecting value: line 1 column 1"),  # read, and not JSON
        ],
    )
    def test_a_file_too_large_for_print_settings_is_not_read(
        self, user: Client, size: int, message: str
    ) -> None:
        path = user.folder / "huge.fps"
        with path.open("wb") as handle:  # sparse: its size without its bytes
            handle.truncate(size)
        answer = user.http.post("/scene/", json={"fps_file": str(path)})
        assert message in refused(answer, "INVALID_FPS_FILE")

    @pytest.mark.parametrize(
        ("damage", "message"),
        [
            (_set("metadata.schema_version", 9), "$.metadata.schema_version: 9"),
            (_set("metadata", _DROP), "$.metadata: is required"),
        ],
    )
    def test_a_form_whose_print_settings_were_damaged_is_refused(
        self, user: Client, damage: Callable[[dict[str, Any]], None], message: str
    ) -> None:
        assert user.put_fps(user.saved_fps()).status_code == 200
        form = user.folder / "job.form"
        user.ok(user.post("save-form/", {"file": str(form)}))
        damaged = user.folder / "damaged.form"
        with zipfile.ZipFile(form) as source, zipfile.ZipFile(damaged, "w") as target:
            for item in source.infolist():
                data = source.read(item)
                if item.filename == "manifest.json":
                    manifest = json.loads(data)
                    damage(manifest["scene"]["print_settings_fps"])
                    data = json.dumps(manifest).encode("utf-8")
                target.writestr(item, data)
        answer = user.http.post("/load-form/", json={"file": str(damaged)})
        assert f"its print settings are invalid: {message}" in refused(answer, "INVALID_FORM_FILE")


def refused(response: httpx.Response, code: str) -> str:
    """The message of a 400 ErrorModel answer with ``code``."""
    assert response.status_code == 400, response.text
    body = response.json()
    contract = local_api_contract()
    contract.assert_valid(body, contract.component("ErrorModel"), "400")
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message
