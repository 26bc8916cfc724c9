"""The README's first command, as a newcomer types it on a clean home folder.

A real subprocess of ``python -m preform_pipeline`` on the embedded simulator, with no settings
from the environment and a home folder of the test's own; a run that stops before it starts a
server runs in the test's process, with the same environment (``tests/command_line.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from preform_pipeline.plan.held import HELD_HINT
from tests.command_line import InProcess
from tests.e2e.run_e2e_support import write_recipe
from tests.recipe_texts import PRINT_ONLY

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 180.0
#: The README's first command, after the install: ``run`` with these arguments.
README_RUN = (
    "recipes/engineering-grey-form4.yaml", "sample_models/parts", "sample_models/batch",
)


def _readme_run(home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFORM_PIPELINE_", "XDG_"))}
    env["HOME"] = str(home)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    argv = [str(REPO_ROOT / a) for a in README_RUN]
    return subprocess.run(
        [sys.executable, "-m", "preform_pipeline", "run", *argv,
         "--output", str(home / "out" / "demo")],
        cwd=home, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


class TestTheReadmesFirstRun:
    """The shipped recipe on the shipped sample models runs clean: every part labelled."""

    def test_all_thirty_models_print_with_their_labels_and_no_warning(
        self, tmp_path: Path
    ) -> None:
        done = _readme_run(tmp_path)
        assert done.returncode == 0, done.stderr
        assert "exit 0: 2 of 2 builds succeeded" in done.stdout
        assert "skipped" not in done.stdout, done.stdout
        # 28 units guessed alike: one line (each was a long line of its own), each in the
        # report.
        guessed = [line for line in done.stdout.splitlines() if "units not stated" in line]
        assert len(guessed) == 1 and guessed[0].startswith(
            "warning: 28 models' units not stated, guessed MILLIMETERS: "), guessed
        assert guessed[0].endswith(", … (+23, see report); state them with import.units or "
                                   "import.units_by_path in the recipe, or `units:` in the "
                                   "case's sidecar")
        (report,) = (tmp_path / "out" / "demo" / "reports").glob("*.json")
        assert sum("units not stated, guessed" in w
                   for w in json.loads(report.read_text(encoding="utf-8"))["warnings"]) == 28
        logs = (tmp_path / "out" / "demo" / "logs").glob("*.jsonl")
        events = [json.loads(line) for log in logs
                  for line in log.read_text(encoding="utf-8").splitlines()]
        assert [e for e in events if e["event"] == "label_skipped"] == []
        assert sum(e["event"] == "job_claimed" for e in events) == 30
        assert "label_skipped" not in report.read_text(encoding="utf-8")


class TestWhereARunsFilesWent:
    """Without ``--output`` a run's files go below the recipe's folder (its relative
    ``outputs.root``), wherever it was started: the last lines say that folder, absolute,
    and the rule."""

    def test_the_last_lines_name_the_folder_beside_the_recipe(self, tmp_path: Path) -> None:
        # The shipped recipe, its name and outputs as shipped; its steps only save the .form:
        # orient, label, supports, layout, checks and screenshot are the README run's
        # subject, and cost this run about 0.5 s of CPU without reaching where the files
        # went (review rv49).
        recipe = tmp_path / "recipes" / "grey.yaml"
        recipe.parent.mkdir()
        shipped = yaml.safe_load((REPO_ROOT / README_RUN[0]).read_text(encoding="utf-8"))
        shipped["steps"] = ["save_form"]
        recipe.write_text(yaml.safe_dump(shipped, sort_keys=False), encoding="utf-8")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PREFORM_PIPELINE_", "XDG_"))}
        env["HOME"] = str(tmp_path)
        env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        done = subprocess.run(
            [sys.executable, "-m", "preform_pipeline", "run", "recipes/grey.yaml",
             str(REPO_ROOT / "sample_models" / "parts" / "l_bracket.stl"), "--dry-run"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
            check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        folder = tmp_path / "recipes" / "output" / "engineering-grey-form4"
        assert (f"output: {folder} (the recipe's outputs.root, relative to the recipe's "
                "folder; --output DIR puts it elsewhere)") in done.stdout.splitlines()[-5:]
        assert list(folder.glob("*/engineering-grey-form4-001.form"))


class TestACaseFolderNamedOnTheCommandLine:
    """``run recipe.yaml C-1042/`` on a folder a case sidecar marks takes it as one case, as
    the hot folder does: while one of its models is still being written, none is taken."""

    def _case(self, home: Path) -> Path:
        case = home / "C-1042"
        case.mkdir()
        whole = (REPO_ROOT / "sample_models" / "batch" / "part_01.stl").read_bytes()
        (case / "upper.stl").write_bytes(whole)
        # Half of a binary STL: its size does not match its triangle count yet.
        (case / "lower.stl").write_bytes(whole[: len(whole) // 2])
        return case

    def _run(self, home: Path, *models: str) -> subprocess.CompletedProcess[str]:
        """A dry run over ``models`` that starts a server. Its recipe saves and prints, no
        more: what is taken, held or rejected is the plan's, whatever the steps, and the
        shipped recipe's label, supports and screenshot cost its simulator about 0.9 s of CPU
        a build (session 49)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PREFORM_PIPELINE_", "XDG_"))}
        env["HOME"] = str(home)
        env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        recipe = write_recipe(home, PRINT_ONLY)
        return subprocess.run(
            [sys.executable, "-m", "preform_pipeline", "run", str(recipe),
             *models, "--dry-run", "--output", str(home / "out")],
            cwd=home, env=env, capture_output=True, text=True,
            timeout=TIMEOUT_S, check=False)

    @pytest.mark.parametrize("sidecar", ["C-1042/C-1042.yaml", "C-1042.yaml"])
    def test_a_marked_case_folder_waits_whole(
        self, tmp_path: Path, sidecar: str, in_process: InProcess, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Nothing to do: the run stops before it starts a server, so in the test's process
        # (tests/command_line.py), with the processes' environment.
        self._case(tmp_path)
        (tmp_path / sidecar).write_text("customer: ACME\n", encoding="utf-8")
        for name in [k for k in os.environ if k.startswith("XDG_")]:
            monkeypatch.delenv(name)
        done = in_process(tmp_path, "run", str(REPO_ROOT / README_RUN[0]), "C-1042/",
                          "--dry-run", "--output", str(tmp_path / "out"),
                          env_extra={"HOME": str(tmp_path)})
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[:3] == [
            "not taken yet: C-1042/lower.stl: still being written (the STL is incomplete, "
            f"{(tmp_path / 'C-1042' / 'lower.stl').stat().st_size} bytes so far); the next run "
            "takes it",
            "not taken yet: C-1042/upper.stl: its case folder C-1042 waits for lower.stl, "
            "still being written; the next run takes it",
            "nothing to do: no complete model files (.stl, .obj, .3mf) in C-1042",
        ]

    def test_an_unmarked_folder_is_still_an_inbox_of_files(self, tmp_path: Path) -> None:
        self._case(tmp_path)
        done = self._run(tmp_path, "C-1042/")
        assert done.returncode == 0, done.stderr
        assert "not taken yet: C-1042/lower.stl: still being written" in done.stdout
        assert "waits for" not in done.stdout
        assert "exit 0: 1 of 1 build succeeded" in done.stdout

    def test_a_broken_sidecar_rejects_its_whole_case_and_no_file_beside_it(
        self, tmp_path: Path
    ) -> None:
        inbox = tmp_path / "in"
        batch = REPO_ROOT / "sample_models" / "batch"
        for rel, part in [("C-9/upper.stl", 1), ("C-9/lower.stl", 2), ("C-8/upper.stl", 3),
                          ("alone.stl", 4), ("bad.stl", 5)]:
            (inbox / rel).parent.mkdir(parents=True, exist_ok=True)
            (inbox / rel).write_bytes((batch / f"part_{part:02d}.stl").read_bytes())
        for rel in ("C-9/lower.yaml", "bad.yaml"):
            (inbox / rel).write_text("priorty: 1\n", encoding="utf-8")
        done = self._run(tmp_path, "in")
        assert done.returncode == 1, done.stderr
        why = ("in/C-9/lower.stl: in/C-9/lower.yaml:1:1: $.priorty: unknown field 'priorty'; "
               "known fields: ")
        # Each said once, without a size never read ("(?)") or its path again (session 33).
        rejected = [line.strip().split(": ", 1) for line in done.stdout.splitlines()
                    if line.startswith("  in/")]
        assert [path for path, _ in rejected] == [
            "in/C-9/lower.stl", "in/bad.stl", "in/C-9/upper.stl"]
        assert rejected[0][1].startswith(why.removeprefix("in/C-9/lower.stl: "))
        assert rejected[2][1] == (f"held with its case C-9: lower.stl cannot be prepared, and "
                                  f"a case prints whole or not at all; {HELD_HINT}")
        assert "2 models on 1 simulated server" in done.stdout  # C-8's and alone.stl
        assert "exit 1: 3 models rejected, 1 of 1 build succeeded" in done.stdout

    def test_a_case_folders_subfolder_is_part_of_its_case(self, tmp_path: Path) -> None:
        # Session 31 left it: `run` made `C-7/scans/` a case `scans` of its own, where the
        # hot folder gives its files the dropped folder's case id, sidecar and fate.
        inbox = tmp_path / "in"
        batch = REPO_ROOT / "sample_models" / "batch"
        for rel, part in [("C-7/upper.stl", 1), ("C-7/scans/lower.stl", 2),
                          ("C-6/upper.stl", 3), ("C-6/scans/lower.stl", 4)]:
            (inbox / rel).parent.mkdir(parents=True, exist_ok=True)
            (inbox / rel).write_bytes((batch / f"part_{part:02d}.stl").read_bytes())
        (inbox / "C-7.yaml").write_text("case_id: P-77\n", encoding="utf-8")
        (inbox / "C-6" / "scans" / "lower.yaml").write_text("priorty: 1\n", encoding="utf-8")
        done = self._run(tmp_path, "in")
        assert done.returncode == 1, done.stderr
        assert ("  in/C-6/scans/lower.stl: in/C-6/scans/lower.yaml:1:1: $.priorty: "
                "unknown field 'priorty'") in done.stdout
        assert ("  in/C-6/upper.stl: held with its case C-6: lower.stl cannot be prepared, "
                "and a case prints whole or not at all") in done.stdout
        [report] = (tmp_path / "out" / "reports").glob("*.json")
        [build] = json.loads(report.read_text(encoding="utf-8"))["builds"]
        assert build["case_ids"] == ["P-77"]
        assert sorted(build["models"]) == ["lower.stl", "upper.stl"]
