"""Option dataclasses send only what was set, in the contract's names, and refuse bad values."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from preform_pipeline.api import (
    UNSET,
    AutoLayoutOptions,
    AutoOrientOptions,
    AutoSupportOptions,
    CameraAngle,
    DirectionVectors,
    DrainHole,
    DrainHoleOptions,
    EulerAngles,
    FlyaroundTransform,
    HollowOptions,
    ImportOptions,
    LabelOptions,
    Lock,
    PackAndCageOptions,
    Position,
    PrintOptions,
    RaftType,
    ScanToModelOptions,
    ScreenshotOptions,
    TransformMatrix,
    UnsetType,
    WorkspaceMode,
)

ORIGIN = Position(0, 0, 0)
FLAT = EulerAngles(0, 0, 0)


class TestUnset:
    """UNSET is one falsy marker, distinct from None, that survives copies and pickling."""

    def test_unset_is_a_singleton_distinct_from_none(self) -> None:
        assert UNSET is UnsetType()
        assert UNSET is not None
        assert not UNSET
        assert repr(UNSET) == "UNSET"

    def test_unset_survives_copy_and_pickle(self) -> None:
        assert copy.deepcopy(UNSET) is UNSET
        assert pickle.loads(pickle.dumps(UNSET)) is UNSET

    def test_dataclasses_replace_keeps_unset_fields_unset(self) -> None:
        options = dataclasses.replace(AutoSupportOptions(density=1.0), only_minima=True)
        assert options.to_body() == {"density": 1.0, "only_minima": True}


class TestBodies:
    """to_body() leaves unset fields out and spells values as the contract does."""

    def test_no_options_means_an_empty_body(self) -> None:
        assert AutoSupportOptions().to_body() == {}
        assert ImportOptions().to_body() == {}

    def test_falsy_values_that_were_set_are_sent(self) -> None:
        body = AutoSupportOptions(density=0, only_minima=False).to_body()
        assert body == {"density": 0, "only_minima": False}

    def test_every_auto_support_option_is_sent_under_its_contract_name(self) -> None:
        options = AutoSupportOptions(
            models=["a", "b"],
            density=1.1,
            slope_multiplier=0.9,
            only_minima=False,
            raft_type="FULL_RAFT",
            raft_label_enabled=True,
            breakaway_structure_enabled=True,
            touchpoint_size_mm=0.5,
            internal_supports_enabled=False,
            raft_thickness_mm=2.0,
            height_above_raft_mm=5.0,
            z_compression_correction_mm=0.1,
            early_layer_merge_mm=0.3,
        )
        body = options.to_body()
        assert body["models"] == ["a", "b"]
        assert body["raft_type"] == "FULL_RAFT"
        assert len(body) == 13

    def test_orientations_of_each_kind(self) -> None:
        assert EulerAngles(1, 2, 3).to_body() == {"x": 1, "y": 2, "z": 3}
        matrix = TransformMatrix(((1, 0, 0), (0, 1, 0), (0, 0, 1)))
        assert matrix.to_body() == {"linear": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}
        vectors = DirectionVectors((0, 0, 1), (1, 0, 0))
        assert vectors.to_body() == {"z_direction": [0, 0, 1], "x_direction": [1, 0, 0]}

    def test_pack_and_cage_nests_the_packing_type_and_defaults_to_all_models(self) -> None:
        body = PackAndCageOptions(packing_type="PACK_NONE", bar_thickness_mm=1.5).to_body()
        assert body == {
            "models": "ALL",
            "packing_type": {"packing_type": "PACK_NONE"},
            "bar_thickness_mm": 1.5,
        }

    def test_screenshot_flyaround(self) -> None:
        options = ScreenshotOptions(
            flyaround_transform=FlyaroundTransform(
                [CameraAngle(0, 30), CameraAngle(180, 30)], frame_count=24
            )
        )
        assert options.to_body() == {
            "flyaround_transform": {
                "transform": [{"yaw": 0, "pitch": 30}, {"yaw": 180, "pitch": 30}],
                "frame_count": 24,
            }
        }

    def test_options_are_frozen(self) -> None:
        options = HollowOptions(wall_thickness_mm=2)
        with pytest.raises(dataclasses.FrozenInstanceError):
            options.wall_thickness_mm = 3  # type: ignore[misc]


class TestEnums:
    """Enum fields accept members or their spelled-out strings, and nothing else."""

    def test_strings_become_members(self) -> None:
        options = ImportOptions(lock="FULLY_LOCKED")
        assert options.lock is Lock.FULLY_LOCKED
        assert AutoSupportOptions(raft_type=RaftType.MINI_RAFTS_ON_BP).to_body() == {
            "raft_type": "MINI_RAFTS_ON_BP"
        }

    def test_an_unknown_value_lists_the_allowed_ones(self) -> None:
        with pytest.raises(ValueError, match="raft_type must be one of FULL_RAFT, MINI_RAFT"):
            AutoSupportOptions(raft_type="NO_RAFT")  # type: ignore[arg-type]


class TestValidation:
    """Values the contract forbids fail when the options are built, naming the field."""

    @pytest.mark.parametrize(
        ("build", "message"),
        [
            (lambda: AutoSupportOptions(density=-1), "density must be >= 0"),
            (lambda: HollowOptions(wall_thickness_mm=0.05), "wall_thickness_mm must be >= 0.1"),
            (lambda: HollowOptions(accuracy=1.5), "accuracy must be <= 1"),
            (lambda: PackAndCageOptions(bar_width_mm=0.5), "bar_width_mm must be >= 1"),
            (lambda: LabelOptions("m", "X", ORIGIN, FLAT, 25, 1), "font_size_mm must be <= 20"),
            (lambda: LabelOptions("m", "X", ORIGIN, FLAT, 5, 0.1), "depth_mm must be >= 0.2"),
            (lambda: PrintOptions("p", "j", find_printer_timeout_seconds=-1), ">= 0"),
            (lambda: PrintOptions("", "j"), "printer must not be empty"),
            (lambda: AutoOrientOptions(tilt=5), "tilt only applies with mode=DENTAL"),
            (lambda: AutoLayoutOptions(models="m-1"), 'must be "ALL" or a list'),
            (lambda: AutoLayoutOptions(models=["m-1", ""]), "non-empty model id"),
            (lambda: ImportOptions(scale=0), "scale must be > 0"),
            (lambda: AutoSupportOptions(density="dense"), "density must be a number"),
            (
                lambda: ScanToModelOptions(cutoff_height_mm=3, wall_thickness_mm=1),
                "wall_thickness_mm only apply with hollow=True",
            ),
            (
                lambda: DrainHole(ORIGIN, FLAT, 2, 3.0, True, max_search_distance=4),
                'max_search_distance only applies with depth_mm="AUTO"',
            ),
            (lambda: DrainHoleOptions("m", []), "at least one DrainHole"),
            (lambda: FlyaroundTransform([CameraAngle(0, 0)]), "at least 2 camera angles"),
            (lambda: TransformMatrix(((1, 0, 0), (0, 1, 0))), "exactly 3 rows"),
        ],
    )
    def test_is_refused(self, build: Any, message: str) -> None:
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            build()

    def test_dental_orient_with_tilt_is_accepted(self) -> None:
        body = AutoOrientOptions(mode=WorkspaceMode.DENTAL, tilt=10).to_body()
        assert body == {"mode": "DENTAL", "tilt": 10}

    def test_hollow_scan_options_are_accepted_with_hollow(self) -> None:
        options = ScanToModelOptions(cutoff_height_mm=3, hollow=True, drain_hole_max_count=2)
        assert options.to_body() == {
            "cutoff_height_mm": 3,
            "hollow": True,
            "drain_hole_max_count": 2,
        }

    def test_a_model_list_is_kept_as_a_tuple(self) -> None:
        options = HollowOptions(models=["m-1", "m-2"])
        assert options.models == ("m-1", "m-2")
        assert hash(options) == hash(HollowOptions(models=("m-1", "m-2")))
