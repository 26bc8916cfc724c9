"""``run`` through a remote server's path map that does not lead where the files are: the
build's reason says what the server answered and which map to check (session 44's trial).

A real simulator process plays the Windows print host with ``Z:`` mounted on the test's share
(``--drive``), as docs/simulator.md rehearses a remote setup; a real ``run`` process is given
a settings file whose path map sends the share somewhere that host does not have it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.simulator.startup import LISTENING_PATTERN, READY_LINE
from tests.command_line import in_a_process

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = REPO_ROOT / "sample_models" / "parts" / "cube_with_hole.stl"
NAME = MODEL.name
RUN_LIMIT_S = 60.0
RECIPE = """\
name: mapped
scene: {machine_type: FORM-4-0, material_code: FLGPGR05, layer_thickness_mm: 0.1}
import: {units: MILLIMETERS}
steps: [auto_layout, save_form]
"""


@pytest.fixture(scope="module")
def share(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("share")
    (folder / NAME).write_bytes(MODEL.read_bytes())
    (folder / "recipe.yaml").write_text(RECIPE, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def printhost(share: Path) -> Iterator[str]:
    """The URL of a simulator playing a Windows machine that has the share as ``Z:``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "preform_pipeline.simulator", "--port", "0",
         f"--drive=Z:={share}", "--log-level=WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert process.stdout is not None
        port = None
        for line in process.stdout:  # the start-up lines end with READY FOR INPUT
            found = LISTENING_PATTERN.search(line)
            port = int(found.group(1)) if found else port
            if READY_LINE in line:
                break
        assert port is not None, f"the simulator did not start (exit {process.poll()})"
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def _failed_reason(tmp_path: Path, share: Path, url: str, server_folder: str) -> str:
    """``run`` with the share mapped to ``server_folder``: its one build's failure reason,
    from the log's ``build_failed`` event."""
    settings = tmp_path / "settings.yaml"
    settings.write_text(json.dumps({
        "servers": {"count": 0, "remote_wait_s": 0},
        "remotes": [{"url": url, "name": "printhost", "path_map": {str(share): server_folder}}],
    }), encoding="utf-8")
    out = share / f"out-{tmp_path.name}"
    log = tmp_path / "run.jsonl"
    done = in_a_process(tmp_path, "run", str(share / "recipe.yaml"), str(share / NAME),
                        "--settings", str(settings), "--output", str(out),
                        "--store", str(tmp_path / "jobs.sqlite3"), "--log-file", str(log),
                        env_extra={"HOME": str(tmp_path)}, timeout=RUN_LIMIT_S)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    (failed,) = [e for e in events if e.get("event") == "build_failed"]
    return str(failed["reason"])


class TestAPathMapThatMissesTheFiles:
    """The server's refusal of a mapped path names the map to check."""

    def test_a_map_to_the_wrong_folder_names_the_map(
        self, tmp_path: Path, share: Path, printhost: str
    ) -> None:
        reason = _failed_reason(tmp_path, share, printhost, "Z:\\models")
        assert reason == (
            "importModel refused: FILE_NOT_FOUND: $.file: no file at "
            f"'Z:\\\\models\\\\{NAME}' (server printhost is sent paths through its "
            f"path_map: check that it sees {share} as Z:\\models)")

    def test_a_map_to_a_drive_the_host_lacks_names_the_drive_and_the_map(
        self, tmp_path: Path, share: Path, printhost: str
    ) -> None:
        reason = _failed_reason(tmp_path, share, printhost, "Y:\\")
        assert reason == (
            f"importModel refused: INVALID_PATH: $.file: 'Y:\\\\{NAME}' is on Y:, which this "
            "server (a simulated Windows machine) does not have; it has Z: (server printhost "
            f"is sent paths through its path_map: check that it sees {share} as Y:\\)")
