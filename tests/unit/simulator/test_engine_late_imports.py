"""The engine reaches READY FOR INPUT without numpy and the mesh code, which come with the
first operation that needs them; a broken install still fails the start loudly, because each
module imported late is found (not imported) as the engine is built."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from preform_pipeline.errors import ServerProcessError
from preform_pipeline.simulator.cli import EXIT_FAILURE
from preform_pipeline.simulator.engine import LATE_IMPORTS
from preform_pipeline.simulator.testing import launch_simulator
from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "preform_pipeline"
TIMEOUT_S = 60.0


def imported_in_functions(source: Path) -> set[str]:
    """The modules a file's functions import, relative names made absolute."""
    names: set[str] = set()
    for function in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if not isinstance(function, ast.FunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
            elif isinstance(node, ast.ImportFrom) and node.module:  # from .layout import ...
                names.add(f"preform_pipeline.simulator.{node.module}")
            elif isinstance(node, ast.ImportFrom):  # from . import estimates
                names.update(f"preform_pipeline.simulator.{a.name}" for a in node.names)
    return names


class TestTheModulesImportedLate:
    @pytest.mark.parametrize("name", ["engine.py", "scene.py", "bodies.py", "printing.py"])
    def test_each_one_a_function_imports_is_looked_for_at_the_start(self, name: str) -> None:
        late = imported_in_functions(PACKAGE / "simulator" / name)
        # numpy is among them in each: the file's functions were read.
        assert "numpy" in late or "preform_pipeline.simulator.estimates" in late
        assert late - set(LATE_IMPORTS) == set()


class TestABrokenInstall:
    def test_a_missing_one_fails_the_start_before_ready(self, tmp_path: Path) -> None:
        """A copy of the package without ``contact.py`` (the interference check's shadow
        grid): the simulator refuses to start, rather than answer 500 to the first
        interference check of a pool that took it for whole."""
        shutil.copytree(PACKAGE, tmp_path / "preform_pipeline",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (tmp_path / "preform_pipeline" / "simulator" / "contact.py").unlink()
        log = tmp_path / "simulator.jsonl"
        # Started in the copy's folder: `python -m` puts it first on the path.
        with (launch_simulator("--log-file", str(log), cwd=tmp_path) as sim,
              pytest.raises(ServerProcessError) as ended):
            sim.wait_ready(TIMEOUT_S)
        assert ended.value.exit_code == EXIT_FAILURE
        events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        (failed,) = [e for e in events if e["event"] == "start_failed"]
        assert failed["reason"] == "cannot load the simulator engine"
        assert failed["error"] == (
            "the simulator's engine needs preform_pipeline.simulator.contact, which cannot be "
            "found: reinstall preform-pipeline (pip install preform-pipeline)")
