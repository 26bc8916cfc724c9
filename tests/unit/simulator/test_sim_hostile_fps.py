"""Hostile print-settings files and numbers over real HTTP to the real engine (session 31).

Session 31's sweep of PreForm ``.fps`` files found two ways to a wrong answer: an integer too
large for a float (JSON's ``1`` and 400 zeros, in a ``.fps`` or in any request body) was a 500
``OverflowError``, and knobs that make a layer take 1e303 s of light, or an infinity, were
taken, so the print-time estimate answered ``1.28e+303`` or ``Infinity``, which is not JSON.
"""

from __future__ import annotations

import copy
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sim_server_support import WAIT_S

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.formfile import load_form, save_form
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.protocol import SimError
from preform_pipeline.simulator.scene import Scene, SceneSettings
from preform_pipeline.simulator.server import SimulatorServer
from tests.hostile_corpus import damaged

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}
KNOBS = "Material_Form_4_Family_Print"
#: An integer JSON reads exactly and a float cannot hold (well under Python's 4,300 digits).
BEYOND_FLOAT = 10**400


class Session:
    """A user's scene on the simulator, holding a 10 mm cube, and its settings saved."""

    def __init__(self, http: httpx.Client, folder: Path) -> None:
        self.http = http
        self.folder = folder
        self.cube = folder / "cube.stl"
        write_stl(self.cube, box_triangles((0.0, 0.0, 0.0), (10.0, 10.0, 10.0)))
        self.scene = self.ok(http.post("/scene/", json=FORM4))["id"]
        self.model = self.ok(self.post("import-model/", {"file": str(self.cube)}))["id"]
        saved = folder / "base.fps"
        self.ok(self.post("save-fps-file/", {"file": str(saved)}))
        self.document: dict[str, Any] = json.loads(saved.read_text(encoding="utf-8"))

    @staticmethod
    def ok(response: httpx.Response) -> Any:
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, operation: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(f"/scene/{self.scene}/{operation}", json=body)

    def with_knob(self, key: str, value: Any) -> dict[str, Any]:
        """The saved settings with one Form 4 knob changed, as a user edits the file."""
        changed = copy.deepcopy(self.document)
        for item in changed["public_fields"]["categories"]:
            if item["key"] == KNOBS:
                item["values"][key] = value
        return changed

    def put_fps(self, document: dict[str, Any]) -> httpx.Response:
        path = self.folder / "variation.fps"
        path.write_text(json.dumps(document), encoding="utf-8")
        return self.http.put(f"/scene/{self.scene}/", json={"fps_file": str(path)})


@pytest.fixture
def session(engine_server: SimulatorServer, tmp_path: Path) -> Iterator[Session]:
    with httpx.Client(base_url=engine_server.url, timeout=WAIT_S) as http:
        yield Session(http, tmp_path)


def refused(response: httpx.Response, code: str) -> str:
    """The message of a 400 error answer with ``code`` (its ErrorModel shape is checked by
    the contract tests of test_sim_hostile_requests.py; not here, so that these run where the
    official specs are absent, as in a mutation run's copy of the project)."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


class TestNumbersBeyondAFloat:
    """An integer too large for a float is refused by its field, never a server failure."""

    @pytest.mark.parametrize("number", [BEYOND_FLOAT, float("nan"), float("inf")],
                             ids=["beyond-a-float", "NaN", "Infinity"])
    def test_a_layer_thickness_that_is_not_finite_is_refused(
        self, session: Session, number: float
    ) -> None:
        # Python's JSON writes NaN and Infinity as bare words, which the simulator reads.
        body = json.dumps({**FORM4, "layer_thickness_mm": number})
        answer = session.http.post("/scene/", content=body,
                                   headers={"Content-Type": "application/json"})
        assert refused(answer, "INVALID_BODY") == "$.layer_thickness_mm: must be a finite number"

    def test_a_scale_and_a_position_beyond_a_float_are_not_finite(self, session: Session) -> None:
        imported = session.post("import-model/", {"file": str(session.cube),
                                                  "scale": BEYOND_FLOAT})
        assert refused(imported, "INVALID_BODY") == "$.scale: must be a finite number"
        moved = session.http.post(f"/scene/{session.scene}/models/{session.model}/",
                                  json={"position": {"x": BEYOND_FLOAT, "y": 0, "z": 0}})
        assert refused(moved, "INVALID_BODY") == "$.position.x: must be a finite number"

    @pytest.mark.parametrize(("orientation", "said"), [
        ({"z_direction": [0, 0, BEYOND_FLOAT], "x_direction": [1, 0, 0]},
         "$.orientation.z_direction[2]: must be a finite number"),
        # A matrix's element by its row and column (session 32; "linear.row[1]" before).
        ({"linear": [[1, 0, 0], [0, BEYOND_FLOAT, 0], [0, 0, 1]]},
         "$.orientation.linear[1][1]: must be a finite number"),
        ({"linear": [[1, 0, 0], [0, 1, 0], [0, 0, "1"]]},
         "$.orientation.linear[2][2]: expected a number, got '1'"),
        ({"linear": [[1, 0, 0], [0, 1], [0, 0, 1]]},
         "$.orientation.linear[1]: expected an array of 3 numbers"),
    ], ids=["direction", "matrix-element", "matrix-text", "matrix-short-row"])
    def test_an_orientation_beyond_a_float_names_its_element(
        self, session: Session, orientation: dict[str, Any], said: str
    ) -> None:
        moved = session.http.post(f"/scene/{session.scene}/models/{session.model}/",
                                  json={"orientation": orientation})
        assert refused(moved, "INVALID_BODY") == said

    def test_an_exposure_beyond_a_float_in_a_print_settings_file_names_the_knob(
        self, session: Session
    ) -> None:
        answer = session.put_fps(session.with_knob("model_fill_exposure_mJpcm2", BEYOND_FLOAT))
        assert refused(answer, "INVALID_FPS_FILE") == (
            f"{session.folder / 'variation.fps'}: $.public_fields.categories[1].values."
            "model_fill_exposure_mJpcm2: must be a finite number")


class TestOrientationVectors:
    """A direction is an array of three numbers; anything else is refused by its element."""

    @pytest.mark.parametrize(("z_direction", "said"), [
        ([0, 1], "$.orientation.z_direction: expected an array of 3 numbers"),
        ({"x": 0, "y": 0, "z": 1}, "$.orientation.z_direction: expected an array of 3 numbers"),
        ([0, "1", 0], "$.orientation.z_direction[1]: expected a number, got '1'"),
        ([0, 0, True], "$.orientation.z_direction[2]: expected a number, got True"),
    ], ids=["two-numbers", "an-object", "a-string", "a-boolean"])
    def test_a_direction_that_is_not_three_numbers(
        self, session: Session, z_direction: Any, said: str
    ) -> None:
        moved = session.http.post(
            f"/scene/{session.scene}/models/{session.model}/",
            json={"orientation": {"z_direction": z_direction, "x_direction": [1, 0, 0]}})
        assert refused(moved, "INVALID_BODY") == said

    def test_upright_directions_are_taken(self, session: Session) -> None:
        moved = session.http.post(
            f"/scene/{session.scene}/models/{session.model}/",
            json={"orientation": {"z_direction": [0, 0, 1], "x_direction": [1, 0, 0]}})
        assert moved.status_code == 200, moved.text
        model = session.http.get(f"/scene/{session.scene}/").json()["models"][0]
        assert model["orientation"] == {"x": 0.0, "y": 0.0, "z": 0.0}


class TestKnobsNoPrintSettingHas:
    """Knobs giving a layer more than an hour of light and wait are refused; an hour is not."""

    @pytest.mark.parametrize(
        ("key", "value", "taken"),
        [("irradiance_mWpcm2", 1e-300, "1.28e+301 s"),
         ("model_fill_exposure_mJpcm2", 1e308, "6.25e+306 s"),
         ("post_expose_cure_wait_s", 1e308, "1e+308 s"),
         ("post_expose_cure_wait_s", 3600.0, "3.6e+03 s")],
        ids=["irradiance-near-zero", "exposure-1e308", "wait-1e308", "an-hour-and-the-light"],
    )
    def test_the_file_is_refused_with_what_a_layer_would_take(
        self, session: Session, key: str, value: float, taken: str
    ) -> None:
        answer = session.put_fps(session.with_knob(key, value))
        message = refused(answer, "INVALID_FPS_FILE")
        assert message.startswith(f"{session.folder / 'variation.fps'}: "
                                  "$.public_fields.categories[1].values: a layer would take "
                                  f"{taken} of light and cure wait (largest exposure ")
        assert message.endswith("; a print setting gives a layer at most 3600 s")
        settings = session.http.get(f"/scene/{session.scene}/").json()["scene_settings"]
        assert settings.get("custom_print_setting_id") is None  # the scene kept its own

    def test_a_layer_of_an_hour_of_light_and_wait_is_taken_and_priced_in_json(
        self, session: Session
    ) -> None:
        # 12.8 mJ/cm2 at 16 mW/cm2 is 0.8 s of light; with 3599.2 s of wait, an hour.
        taken = session.put_fps(session.with_knob("post_expose_cure_wait_s", 3599.2))
        assert taken.status_code == 200, taken.text
        answer = session.post("estimate-print-time/", {})
        assert answer.status_code == 200, answer.text
        estimate = json.loads(answer.text, parse_constant=_no_constant)
        assert estimate["printing_time_s"] > 100 * 3600  # 100 layers of a 10 mm cube


def _no_constant(name: str) -> float:
    raise AssertionError(f"the answer holds {name}, which is not JSON")


class TestTheSimulatorsOwnForm:
    """Every .form the simulator saves, it loads (session 32): its manifest is bounded by its
    size, which save-form keeps to, not by how well it compresses."""

    def test_a_scene_with_a_ten_megabyte_settings_id_comes_back(self, session: Session) -> None:
        huge = copy.deepcopy(session.document)
        huge["metadata"]["id"] = "{" + "a" * 10_000_000 + "}"
        session.ok(session.put_fps(huge))
        form = session.folder / "huge.form"
        session.ok(session.post("save-form/", {"file": str(form)}))
        loaded = session.ok(session.http.post("/load-form/", json={"file": str(form)}))
        assert [m["id"] for m in loaded["models"]] == [session.model]
        saved = session.folder / "again.fps"
        again = session.http.post(f"/scene/{loaded['id']}/save-fps-file/",
                                  json={"file": str(saved)})
        session.ok(again)
        assert json.loads(saved.read_text(encoding="utf-8"))["metadata"]["id"] == \
            huge["metadata"]["id"]

    def test_a_manifest_over_the_bound_is_not_saved_and_not_loaded(self, tmp_path: Path) -> None:
        scene = Scene(id="s", settings=SceneSettings("FORM-4-0", "FLGPGR05", 0.1))
        small = tmp_path / "small.form"
        save_form(scene, small)
        with pytest.raises(SimError) as refused_save:
            save_form(scene, tmp_path / "big.form", max_manifest_bytes=100)
        assert refused_save.value.status == 400
        assert "the scene's manifest would be" in refused_save.value.error_message
        assert "over the 100 a .form's manifest may hold" in refused_save.value.error_message
        assert not (tmp_path / "big.form").exists()
        with pytest.raises(SimError) as refused_load:
            load_form(small, "t", max_manifest_bytes=100)
        assert "manifest.json is unreadable" in refused_load.value.error_message

    @pytest.mark.parametrize("member", ["manifest.json", "meshes/m1.stl"])
    def test_a_damaged_member_is_a_400_that_names_it(self, session: Session, member: str
                                                      ) -> None:
        # Session 44: zlib's error reached the client as a 500 INTERNAL_ERROR.
        form = session.folder / "saved.form"
        session.ok(session.post("save-form/", {"file": str(form)}))
        with zipfile.ZipFile(form) as archive:
            member = next(n for n in archive.namelist() if n.startswith(member.split("/")[0]))
        form.write_bytes(damaged(form.read_bytes(), member))
        answer = session.http.post("/load-form/", json={"file": str(form)})
        message = refused(answer, "INVALID_FORM_FILE")
        assert f"{member} cannot be unpacked: the package is damaged (" in message
