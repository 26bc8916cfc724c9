"""The lines PreFormServer prints are written once, for the pool and the simulator alike."""

from __future__ import annotations

import re
from pathlib import Path

#: A module-level (or class-level) assignment of one of the names, typed or not.
ASSIGNED = re.compile(r"^\s*(READY_LINE|PORT_IN_USE_TEXT)\s*(:[^=]*)?=[^=]", re.MULTILINE)


class TestTheServersLinesAreWrittenOnce:
    """The lines PreFormServer prints, which the pool reads and the simulator prints alike,
    are assigned in serverlines only (session 41: each side had its own copy)."""

    def test_no_other_module_assigns_them(self) -> None:
        package = Path(__file__).resolve().parents[2] / "preform_pipeline"
        assigned = sorted(
            f"{path.relative_to(package)}: {match[1]}"
            for path in package.rglob("*.py")
            for match in ASSIGNED.finditer(path.read_text(encoding="utf-8")))
        assert assigned == ["serverlines.py: PORT_IN_USE_TEXT", "serverlines.py: READY_LINE"]
