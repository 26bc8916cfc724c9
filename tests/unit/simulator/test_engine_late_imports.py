"""The engine reaches READY FOR INPUT without numpy and the mesh code, which come with the
first operation that needs them; a broken install still fails the start loudly, because each
module imported late is found (not imported) as the engine is built."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from preform_pipeline.errors import ServerProcessError
from preform_pipeline.simulator.cli import EXIT_FAILURE
from preform_pipeline.simulator.engine import LATE_IMPORTS
from preform_pipeline.simulator.testing import launch_simulator
from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "preform_pipeline"
TIMEOUT_S = 60.0

#: Run in a fresh interpreter: what a start imports (the simulator's command and its engine,
#: built), then each of LATE_IMPORTS as an operation would; prints the modules those brought.
BROUGHT_BY_LATE_IMPORTS = """
import importlib, json, sys
from pathlib import Path
import preform_pipeline.simulator.cli
from preform_pipeline.simulator.engine import LATE_IMPORTS, SimEngine
folder = Path(sys.argv[1])
SimEngine(work_dir=folder / "work", fleet_dir=folder / "fleet")
started = set(sys.modules)
for name in LATE_IMPORTS:
    importlib.import_module(name)
print(json.dumps(sorted(set(sys.modules) - started)))
"""

#: Run in a fresh interpreter: a simulator with the realistic latency profile spent on a fake
#: clock, sent two scene creations (the first one imports numpy); prints each wait (its
#: seconds, and whether numpy was imported by then) and each exchange's modelled time.
TWO_SCENES_PRICED = """
import json, sys
from pathlib import Path
import httpx
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.latency import latency_profile
from preform_pipeline.simulator.server import SimulatorServer
folder = Path(sys.argv[1])
now, waits = [0.0], []
def wait(seconds):
    waits.append([seconds, "numpy" in sys.modules])
    now[0] += seconds
    return False
engine = SimEngine(work_dir=folder / "work", fleet_dir=folder / "fleet")
scene = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}
with (SimulatorServer(engine, port=0, latency=latency_profile("realistic"), clock=lambda: now[0],
                      wait=wait, poll_interval=0.005) as server,
      httpx.Client(base_url=server.url, timeout=60.0) as client):
    before = "numpy" in sys.modules
    for _ in range(2):
        client.post("/scene/", json=scene).raise_for_status()
    server.check()
    spent = [e.elapsed_s for e in server.exchanges]
print(json.dumps({"before": before, "waits": waits, "spent": spent}))
"""


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

    def test_what_they_import_in_turn_is_looked_for_too(self, tmp_path: Path) -> None:
        """Every module of the package (and every top-level package beyond the standard
        library) that importing them brings after a start is in the list: one left off (as
        ``outline_pack``, which ``layout`` imports, was) would let a broken install say READY
        and answer 500 to its first layout."""
        done = subprocess.run(
            [sys.executable, "-c", BROUGHT_BY_LATE_IMPORTS, str(tmp_path)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT_S, check=True)
        brought = set(json.loads(done.stdout.splitlines()[-1]))
        assert "numpy" in brought  # the start had not imported it: the list was imported
        unlisted = {
            name for name in brought - set(LATE_IMPORTS)
            if name.startswith("preform_pipeline.")
            or name.partition(".")[0] not in {*sys.stdlib_module_names, *LATE_IMPORTS}
        }
        assert unlisted == set()


class TestTheFirstImportIsNotPriced:
    """The modelled latency of a simulator's first operation leaves its imports out."""

    def test_the_latency_is_spent_before_the_import_and_costs_the_same(
        self, tmp_path: Path
    ) -> None:
        """The server prices an operation and spends that price before the engine runs it:
        the first scene's creation imports numpy after its modelled latency, which is what the
        second creation's is."""
        done = subprocess.run(
            [sys.executable, "-c", TWO_SCENES_PRICED, str(tmp_path)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT_S, check=True)
        priced = json.loads(done.stdout.splitlines()[-1])
        assert priced["before"] is False
        # Each operation's price is spent in two halves (fault injection between them).
        assert [imported for _, imported in priced["waits"]] == [False, False, True, True]
        first, second = priced["spent"]
        assert first == second == pytest.approx(sum(s for s, _ in priced["waits"]) / 2)
        assert first > 0


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
