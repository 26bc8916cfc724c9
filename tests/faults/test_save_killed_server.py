"""A PreFormServer killed while it saves a ``.form``: nothing of its save stays for the user.

The run is the real command line; its server a real simulator process, SIGKILLed the moment
its half-written temporary of the build's ``.form`` appears anywhere below the output folder
(the simulator writes ``.<name>.<unique>.tmp`` and renames it when done). Session 30 found
such a temporary left beside ``e2e-001.form`` for good; the server now writes into the run's
staging folder (``.preform-staging``), which the run removes.

The server's first save stops half written until it is killed (``held_save_engine.py``, the
simulator's seam for a stand-in engine), so the kill lands mid-save on any machine. Until
session 39 the save was made slow instead, by 480,000 triangles written twice (about 10 s of
CPU), and a loaded machine could still finish it between two looks.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import psutil
import pytest

from preform_pipeline.geometry.stl import write_stl
from preform_pipeline.outputfolders import STAGING_FOLDER
from preform_pipeline.servers.process import SIMULATOR_MODULE
from preform_pipeline.simulator.meshops import box_triangles
from tests.e2e.run_e2e_support import (
    RUN_TIMEOUT_S,
    environment,
    fleet_jobs,
    printed_name,
    run_cli,
    write_recipe,
    write_settings,
)
from tests.faults.held_save_engine import HOLD_ENV
from tests.staging_support import Saver

#: The simulator's temporary of the build's form: ``.e2e-001.form.<32 hex>.tmp``.
FORM_TEMPORARY = re.compile(r"\.e2e-001\.form\.[0-9a-f]{32}\.tmp")
#: The servers' engine: their first save of a form is held half written.
HELD_SAVE = "--simulator-arg=--engine=tests.faults.held_save_engine:HeldSaveEngine"
#: Between two looks for the held save's temporary (it stays until the kill).
LOOK_S = 0.02

RECIPE = """\
steps:
  - auto_layout
  - save_form
  - print:
      printer: SimulatedForm4-1
      job_name: "{recipe}-{build}"
"""


def simulators_of(run: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return [child for child in psutil.Process(run.pid).children(recursive=True)
            if SIMULATOR_MODULE in " ".join(child.cmdline())]


def kill_when_form_half_written(run: subprocess.Popen[bytes], out: Path) -> Path | None:
    """Poll ``out`` until the server's temporary of the form appears, SIGKILL the server
    then and return the temporary's path; None when the run ended first."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline and run.poll() is None:
        for folder, _, files in os.walk(out):
            for name in files:
                if FORM_TEMPORARY.fullmatch(name):
                    for server in simulators_of(run):
                        server.send_signal(signal.SIGKILL)
                    return Path(folder) / name
        time.sleep(LOOK_S)
    return None


def everything_below(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


class TestServerKilledMidSave:
    """The server dies with the form half written; the run tries again and prints once,
    and the output folder holds the form, the reports and the log, nothing else."""

    def test_no_debris_is_left_and_the_form_is_whole(self, tmp_path: Path) -> None:
        model = tmp_path / "part.stl"
        write_stl(model, box_triangles((0.0, 0.0, 0.0), (10.0, 10.0, 10.0)))
        recipe = write_recipe(tmp_path, RECIPE)
        settings = write_settings(tmp_path, count=1)
        out = tmp_path / "out"
        argv = [
            sys.executable, "-m", "preform_pipeline", "run", str(recipe), str(model),
            "--settings", str(settings), "--output", str(out),
            f"--simulator-arg=--fleet-dir={tmp_path / 'fleet'}", HELD_SAVE,
        ]
        env = {**environment(), HOLD_ENV: str(tmp_path / "save-held")}
        with (tmp_path / "stdout.txt").open("wb") as stdout, \
                (tmp_path / "stderr.txt").open("wb") as stderr:
            run = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env, cwd=tmp_path)
            try:
                half = kill_when_form_half_written(run, out)
                returncode = run.wait(RUN_TIMEOUT_S)
            finally:
                if run.poll() is None:
                    run.kill()
                    run.wait(RUN_TIMEOUT_S)
        errors = (tmp_path / "stderr.txt").read_text(encoding="utf-8")
        assert half is not None, "the run ended before its held save's temporary was seen"
        assert returncode == 0, errors[-3000:]
        assert "Traceback" not in errors
        date = {p.parent.name for p in out.glob("*/e2e-001.form")}
        assert len(date) == 1, everything_below(out)
        (day,) = date
        form = out / day / "e2e-001.form"
        assert zipfile.is_zipfile(form)
        # The form and its report, the run's report and log; nothing else (no temporary, no
        # staging folder).
        left = [p for p in everything_below(out) if not p.startswith(("reports/", "logs/"))]
        assert left == [day, f"{day}/e2e-001.form", f"{day}/e2e-001.json", "logs", "reports"]
        assert not [p for p in everything_below(out) if p.endswith(".tmp")]
        assert not half.exists()
        assert STAGING_FOLDER in half.relative_to(out).parts  # where the server wrote it
        (build,) = json.loads(next((out / "reports").glob("*.json")).read_text())["builds"]
        assert build["status"] == "succeeded" and build["attempts"] == 2
        assert Counter(printed_name(j) for j in fleet_jobs(tmp_path)) == {"e2e-e2e-001": 1}


class TestNextRunStart:
    """A run killed mid-save left its staging folder; the next run's start removes it, and
    never another live run's folder or the user's own files."""

    @pytest.fixture
    def savers(self) -> list[Saver]:
        return []

    def test_a_killed_run_s_folder_goes_a_live_one_s_stays(
        self, tmp_path: Path, savers: list[Saver]
    ) -> None:
        out = tmp_path / "out"
        out.mkdir()
        killed = Saver(out)
        savers.append(killed)
        try:
            live = Saver(out, "2026-12-06/e2e-002.form")
            savers.append(live)
            killed.kill()
            (out / "notes.txt").write_text("the user's", encoding="utf-8")
            (out / "2026-12-06").mkdir(exist_ok=True)  # a killed save has taken no name here
            (out / "2026-12-06" / ".draft.form.tmp").write_bytes(b"the user's too")
            # A small model: this run's save needs no time of its own (the savers stand for
            # the runs caught mid-save); 40,000 tetrahedra made it a 30 s test.
            model = tmp_path / "part.stl"
            write_stl(model, box_triangles((0.0, 0.0, 0.0), (10.0, 10.0, 10.0)))
            recipe = write_recipe(tmp_path, "steps:\n  - auto_layout\n  - save_form\n")
            run = run_cli(tmp_path, [
                sys.executable, "-m", "preform_pipeline", "run", str(recipe), str(model),
                "--settings", str(write_settings(tmp_path, count=1)), "--output", str(out),
                f"--simulator-arg=--fleet-dir={tmp_path / 'fleet'}",
            ])
            assert run.returncode == 0, run.stderr[-3000:]
            assert not killed.folder.exists()
            assert live.temporary.is_file()
            assert (out / "notes.txt").read_text(encoding="utf-8") == "the user's"
            assert (out / "2026-12-06" / ".draft.form.tmp").read_bytes() == b"the user's too"
            swept = run.events_named("staging_swept")
            assert [(e["path"], e["pid"]) for e in swept] == [
                (str(killed.folder), killed.process.pid)
            ]
            # The live run's save is all that is staged: this run's own went with its save.
            assert sorted(p.name for p in (out / STAGING_FOLDER).iterdir()) == [
                live.folder.name, live.owner.name]
        finally:
            for saver in savers:
                saver.stop()
