"""`plan` as a user runs it (a subprocess) on model files a tool of theirs may write: the
console shows the plan and the reasons, nothing of Python's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import RECIPES

TIMEOUT_S = 120.0
TETRA_OBJ = b"v 0 0 0\nv 10 0 0\nv 0 10 0\nv 0 0 10\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"


def plan(*models: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "preform_pipeline", "plan",
         str(RECIPES / "engineering-grey-form4.yaml"), *map(str, models)],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )


class TestOddButReadable:
    """An OBJ that starts with a UTF-8 byte order mark is planned like any other."""

    def test_a_byte_order_mark_before_the_first_vertex(self, tmp_path: Path) -> None:
        model = tmp_path / "notepad.obj"
        model.write_bytes(b"\xef\xbb\xbf" + TETRA_OBJ)
        done = plan(model)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 model in 1 build, 0 rejected" in done.stdout


class TestCoordinatesBeyondSinglePrecision:
    """A coordinate too large for a float is refused in words, with no numpy warning."""

    def test_ascii_stl_and_obj(self, tmp_path: Path) -> None:
        stl = tmp_path / "far.stl"
        stl.write_text("solid far\n facet normal 0 0 1\n  outer loop\n   vertex 1e39 0 0\n"
                       "   vertex 1 0 0\n   vertex 0 1 0\n  endloop\n endfacet\nendsolid far\n",
                       encoding="ascii")
        obj = tmp_path / "far.obj"
        obj.write_bytes(TETRA_OBJ.replace(b"v 10 0 0", b"v 1e39 0 0"))
        done = plan(stl, obj)
        assert done.returncode == 1
        assert "far.stl: triangle 1 of 1 has a NaN or infinite coordinate (1 such triangle)" \
            in done.stdout
        assert "far.obj: triangle 1 of 4 has a NaN or infinite coordinate (3 such triangles)" \
            in done.stdout
        assert done.stderr == ""
