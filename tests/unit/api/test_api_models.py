"""Results are typed frozen values that keep the server's object in ``raw``."""

from __future__ import annotations

import dataclasses

import pytest

from preform_pipeline.api import (
    Device,
    FpsSettings,
    Interferences,
    ModelInfo,
    PrintTimeEstimate,
    Scene,
    SceneSettings,
    SlsMaterialUsage,
    WebAuthTokens,
)
from preform_pipeline.api._parse import MalformedResponse


class TestRaw:
    """raw holds the whole server object but takes no part in equality or repr."""

    def test_raw_keeps_fields_the_client_does_not_type(self) -> None:
        device = Device.from_json(
            {"id": "Fuse-1", "powder_level": "HIGH", "bed_temperature_c": 170}
        )
        assert device.raw["powder_level"] == "HIGH"

    def test_raw_is_left_out_of_equality_and_repr(self) -> None:
        a = ModelInfo.from_json({"id": "m-1", "extra": 1})
        b = ModelInfo.from_json({"id": "m-1", "extra": 2})
        assert a == b
        assert "extra" not in repr(a)

    def test_results_are_frozen(self) -> None:
        scene = Scene.from_json({"id": "s"})
        with pytest.raises(dataclasses.FrozenInstanceError):
            scene.id = "t"  # type: ignore[misc]


class TestSceneShapes:
    """Both forms of scene settings and both kinds of material use are read."""

    def test_sls_scene_with_adaptive_layers(self) -> None:
        scene = Scene.from_json(
            {
                "id": "s",
                "scene_settings": {
                    "machine_type": "FS30-1-0",
                    "material_code": "FLP11B01",
                    "layer_thickness_mm": "ADAPTIVE",
                },
                "material_usage": {
                    "total_powder_ml": 1,
                    "total_powder_kg": 2,
                    "total_sintered_powder_ml": 3,
                    "total_sintered_powder_kg": 4,
                    "mass_packing_density": 0.1,
                },
            }
        )
        assert scene.scene_settings == SceneSettings("FS30-1-0", "FLP11B01", "ADAPTIVE")
        assert scene.material_usage == SlsMaterialUsage(1, 2, 3, 4, 0.1)

    def test_fps_scene_settings(self) -> None:
        scene = Scene.from_json({"id": "s", "scene_settings": {"fps_file": "C:\\a.fps"}})
        assert scene.scene_settings == FpsSettings("C:\\a.fps")

    def test_scene_lookup_by_model_id(self) -> None:
        scene = Scene.from_json({"id": "s", "models": [{"id": "m-1"}, {"id": "m-2"}]})
        assert scene.model("m-2").id == "m-2"
        with pytest.raises(KeyError):
            scene.model("m-3")

    def test_a_number_where_a_string_belongs_is_malformed(self) -> None:
        with pytest.raises(MalformedResponse, match="machine_type"):
            Scene.from_json(
                {
                    "scene_settings": {
                        "machine_type": 4,
                        "material_code": "x",
                        "layer_thickness_mm": 0.1,
                    }
                }
            )

    def test_a_boolean_is_not_a_number(self) -> None:
        with pytest.raises(MalformedResponse, match="total_print_time_s"):
            PrintTimeEstimate.from_json({"total_print_time_s": True})


class TestInterferences:
    """Interference pairs are read from a bare list or an ``interferences`` key."""

    @pytest.mark.parametrize(
        "body",
        [[["a", "b"]], {"interferences": [["a", "b"]]}],
        ids=["list", "object"],
    )
    def test_pairs(self, body: object) -> None:
        assert Interferences.from_json(body).pairs == (("a", "b"),)

    def test_an_empty_answer_means_no_interferences(self) -> None:
        assert len(Interferences.from_json(None)) == 0

    def test_a_pair_of_three_is_malformed(self) -> None:
        with pytest.raises(MalformedResponse):
            Interferences.from_json([["a", "b", "c"]])


class TestTokens:
    """Login tokens are kept but never shown."""

    def test_repr_hides_tokens(self) -> None:
        tokens = WebAuthTokens.from_json({"access_token": "AAA", "refresh_token": "RRR"})
        assert tokens.access_token == "AAA"
        assert "AAA" not in repr(tokens) and "RRR" not in repr(tokens)
