"""The lines PreFormServer prints are written once, for the pool and the simulator alike."""

from __future__ import annotations

import ast
from pathlib import Path


class TestTheServersLinesAreWrittenOnce:
    """The lines PreFormServer prints, which the pool reads and the simulator prints alike,
    are assigned in serverlines only (session 41: each side had its own copy)."""

    def test_no_other_module_assigns_them(self) -> None:
        package = Path(__file__).resolve().parents[2] / "preform_pipeline"
        assigned = sorted(
            f"{path.relative_to(package)}: {name}"
            for path in package.rglob("*.py")
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.AnnAssign | ast.Assign)
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name)
            and (name := target.id) in {"READY_LINE", "PORT_IN_USE_TEXT"})
        assert assigned == ["serverlines.py: PORT_IN_USE_TEXT", "serverlines.py: READY_LINE"]
