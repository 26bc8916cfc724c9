"""The simulator's "does not fit" refusal reads as English for one model and for several, and
the client still reads it: the code, the names in parentheses, and the words."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.errors import RequestRejectedError
from preform_pipeline.executor.overflow import overflow_names
from preform_pipeline.executor.steps import is_layout_overflow
from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.protocol import SimError

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}
#: Longer than the Form 4 platform's diagonal (200 x 125 mm): fits no way round.
TOO_WIDE = (250.0, 10.0, 10.0)
SMALL = (10.0, 10.0, 10.0)


def _refusal(tmp_path: Path, sizes: dict[str, tuple[float, float, float]]) -> SimError:
    engine = SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")
    scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
    for name, size in sizes.items():
        path = tmp_path / f"{name}.stl"
        write_stl(path, box_triangles((0, 0, 0), size))
        engine.call("import_model", scene, {"file": str(path), "name": name})
    with pytest.raises(SimError) as caught:
        engine.call("auto_layout", scene, {"models": "ALL"})
    assert caught.value.code == "MODELS_DO_NOT_FIT"
    return caught.value


class TestDoesNotFitWording:
    """One model "does not fit", several "do not fit"; one model in all is "1 of 1 model"."""

    @pytest.mark.parametrize(("sizes", "opening", "named"), [
        ({"wide": TOO_WIDE, "small": SMALL}, "1 of 2 models does not fit", ["wide"]),
        ({"wide": TOO_WIDE}, "1 of 1 model does not fit", ["wide"]),
        ({"wide": TOO_WIDE, "long": TOO_WIDE, "small": SMALL}, "2 of 3 models do not fit",
         ["wide", "long"]),
    ])
    def test_the_count_agrees_with_its_verb_and_the_client_still_reads_it(
        self, tmp_path: Path, sizes: dict[str, tuple[float, float, float]], opening: str,
        named: list[str],
    ) -> None:
        message = _refusal(tmp_path, sizes).error_message
        assert message.startswith(opening + " on the build platform (")
        assert message.endswith("; the scene is unchanged")
        assert overflow_names(message, list(sizes)) == named
        # Even without the code, the words alone say it is an overflow.
        assert is_layout_overflow(RequestRejectedError("layout refused",
                                                       server_message=message))
