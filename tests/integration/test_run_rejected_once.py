"""A file ``run`` rejects in a cron inbox is said once (docs/running.md, "From cron").

Session 35: a ``.step`` in the inbox was "rejected" on stderr, exit 1, every night until
someone removed it, so cron mailed the same rejection nightly. The command line runs in the
test's process on a real SQLite store; the inbox's files are never moved or removed by it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.command_line import InProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "engineering-grey-form4.yaml"
SAID_ONCE = ("each rejected file is said once: later runs pass over it until it is changed or "
             "replaced")
#: Long done being written: the runs take it at once.
OLD = (1e9, 1e9)


class TestARejectedFileInACronInbox:
    """Rejected once with what helps, exit 1; then passed over in silence (exit 0), listed
    on request; said again when changed, or removed and put back; never touched."""

    def test_it_is_said_once_until_it_changes(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        step = inbox / "part.step"
        step.write_bytes(b"ISO-10303-21;\nHEADER;\nENDSEC;\n")
        os.utime(step, OLD)

        def night(*extra: str) -> subprocess.CompletedProcess[str]:
            return in_process(tmp_path, "run", str(RECIPE), "inbox", "--store", "jobs.sqlite3",
                              "--output", "out", *extra)

        rejected = ("rejected: inbox/part.step: .step is a CAD file, not a mesh (preform-pipeline "
                    "prepares .stl, .obj and .3mf); export the part from the CAD software as "
                    "STL, OBJ or 3MF, and give that file instead")
        first = night("--quiet")
        assert (first.returncode, first.stdout) == (1, ""), first.stderr
        assert first.stderr.splitlines() == [
            rejected, SAID_ONCE,
            "exit 1: 1 model rejected, nothing to run, 0 of 0 builds succeeded"]

        second = night("--quiet")  # nothing for cron to mail
        assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
        asked = night()
        assert asked.returncode == 0, asked.stdout + asked.stderr
        assert asked.stdout.splitlines()[0] == (
            "passed over 1 file rejected by an earlier run and unchanged since: "
            "inbox/part.step (-v says why; a changed file is looked at again)")
        told = night("-v")
        assert told.stdout.splitlines()[0] == (
            "passed over inbox/part.step: rejected by an earlier run, unchanged since: .step "
            "is a CAD file, not a mesh (preform-pipeline prepares .stl, .obj and .3mf); export "
            "the part from the CAD software as STL, OBJ or 3MF, and give that file instead")

        step.write_bytes(b"ISO-10303-21;\nHEADER;\nFILE_NAME('v2');\nENDSEC;\n")  # replaced
        os.utime(step, OLD)
        again = night("--quiet")
        assert (again.returncode, again.stderr.splitlines()[:1]) == (1, [rejected])

        data = step.read_bytes()
        step.unlink()  # taken away; then put back as it was, time and all
        assert night("--quiet").returncode == 0
        step.write_bytes(data)
        os.utime(step, OLD)
        back = night("--quiet")
        assert (back.returncode, back.stderr.splitlines()[:1]) == (1, [rejected])
        assert step.read_bytes() == data  # nothing lost: the file stays where it was put

    def test_a_model_too_big_is_said_once_and_its_jobs_end_failed(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        from preform_pipeline.geometry import write_stl
        from preform_pipeline.simulator.meshops import box_triangles
        from preform_pipeline.store import JobState, SqliteJobStore

        inbox = tmp_path / "inbox"
        inbox.mkdir()
        big = inbox / "big.stl"  # a planner's refusal, not a reader's: it was read
        write_stl(big, box_triangles((0.0, 0.0, 0.0), (900.0, 900.0, 900.0)))
        os.utime(big, OLD)
        argv = ("run", str(RECIPE), "inbox", "--store", "jobs.sqlite3", "--output", "out")

        first = in_process(tmp_path, *argv, "--quiet")
        assert first.returncode == 1, first.stderr
        assert first.stderr.splitlines()[0].startswith("rejected: "), first.stderr
        second = in_process(tmp_path, *argv, "--quiet")
        assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
        third = in_process(tmp_path, *argv)
        assert third.returncode == 0, third.stdout + third.stderr
        # Its job of each night failed with the refusal: none left claimed, for a later
        # run to release ("its run died before building it").
        assert third.stdout.splitlines()[0].startswith("passed over 1 file "), third.stdout
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            assert {j.state for j in store.list_jobs()} == {JobState.FAILED}

    def test_a_run_that_only_passed_over_does_not_say_the_folder_holds_no_model(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        # Review of session 36: after "passed over 1 file ...: inbox/big.stl", the run said
        # "no complete model files (.stl, .obj, .3mf) in inbox" of a folder holding an .stl.
        from preform_pipeline.geometry import write_stl
        from preform_pipeline.simulator.meshops import box_triangles

        inbox = tmp_path / "inbox"
        inbox.mkdir()
        big = inbox / "big.stl"
        write_stl(big, box_triangles((0.0, 0.0, 0.0), (900.0, 900.0, 900.0)))
        os.utime(big, OLD)
        argv = ("run", str(RECIPE), "inbox", "--store", "jobs.sqlite3", "--output", "out")

        assert in_process(tmp_path, *argv, "--quiet").returncode == 1
        again = in_process(tmp_path, *argv)
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.splitlines()[-1] == (
            "nothing to do: no complete model files (.stl, .obj, .3mf) in inbox but those "
            "passed over"), again.stdout

    def test_a_path_not_found_is_said_once_and_again_when_something_was_there(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        # Session 41: "each rejected file is said once", and every cron run said it again.
        argv = ("run", str(RECIPE), "mounted/inbox", "--store", "jobs.sqlite3", "--output",
                "out", "--quiet")
        missing = "rejected: mounted/inbox: file not found (check the path)"
        first = in_process(tmp_path, *argv)
        assert (first.returncode, first.stderr.splitlines()[:2]) == (1, [missing, SAID_ONCE])
        second = in_process(tmp_path, *argv)  # not mounted tonight either: nothing to mail
        assert (second.returncode, second.stdout, second.stderr) == (0, "", "")

        inbox = tmp_path / "mounted" / "inbox"
        inbox.mkdir(parents=True)  # there for a night, then gone again: said again
        assert in_process(tmp_path, *argv).returncode == 0
        inbox.rmdir()
        gone = in_process(tmp_path, *argv)
        assert (gone.returncode, gone.stderr.splitlines()[:1]) == (1, [missing])


class TestARefusedModelMakesOneJob:
    """A model the planner refuses, unchanged, makes its failed job once: the nights after
    pass over it without a job; a changed file, or a new reason, is looked at again."""

    def test_three_nights_make_one_job_until_the_file_or_the_reason_changes(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        # Session 36's own record: said once, but a new failed job every night.
        from preform_pipeline.geometry import write_stl
        from preform_pipeline.simulator.meshops import box_triangles
        from preform_pipeline.store import JobState, SqliteJobStore

        recipe = tmp_path / "recipe.yaml"  # a copy: its margin changes below
        recipe.write_text(RECIPE.read_text(encoding="utf-8"), encoding="utf-8")
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        wide = inbox / "wide.stl"  # fits the 200 mm platform, not inside its 5 mm margin
        write_stl(wide, box_triangles((0.0, 0.0, 0.0), (195.0, 10.0, 10.0)))
        os.utime(wide, OLD)
        argv = ("run", str(recipe), "inbox", "--store", "jobs.sqlite3", "--output", "out")

        def jobs() -> list[JobState]:
            with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
                return [j.state for j in store.list_jobs()]

        first = in_process(tmp_path, *argv, "--quiet")
        assert first.returncode == 1, first.stderr
        assert "5 mm margin" in first.stderr.splitlines()[0], first.stderr
        assert jobs() == [JobState.FAILED]
        for n, extra in enumerate(("--quiet", "--reprint"), 2):  # no new job
            night = in_process(tmp_path, *argv, extra, "--log-file", f"night{n}.jsonl")
            assert night.returncode == 0, night.stdout + night.stderr
            assert jobs() == [JobState.FAILED], extra
            logged = [json.loads(line) for line in (tmp_path / f"night{n}.jsonl").read_text(
                encoding="utf-8").splitlines()]
            assert [(e["recipe"], e["paths"]) for e in logged
                    if e["event"] == "rejected_models_not_claimed"] == [
                ("engineering-grey-form4", ["inbox/wide.stl"])], extra
        quiet = in_process(tmp_path, *argv, "--quiet")
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
        assert len(jobs()) == 1

        # The reason changed (a smaller margin): looked at again as now, said, a job.
        recipe.write_text(recipe.read_text(encoding="utf-8").replace(
            "  margin_mm: 5\n", "  margin_mm: 4\n"), encoding="utf-8")
        again = in_process(tmp_path, *argv, "--quiet")
        assert again.returncode == 1, again.stdout + again.stderr
        assert "4 mm margin" in again.stderr.splitlines()[0], again.stderr
        assert jobs() == [JobState.FAILED] * 2
        assert in_process(tmp_path, *argv, "--quiet").returncode == 0
        assert len(jobs()) == 2

        # The file replaced: looked at again.
        write_stl(wide, box_triangles((0.0, 0.0, 0.0), (196.0, 10.0, 10.0)))
        os.utime(wide, OLD)
        replaced = in_process(tmp_path, *argv, "--quiet")
        assert replaced.returncode == 1, replaced.stdout + replaced.stderr
        assert jobs() == [JobState.FAILED] * 3
        assert wide.exists()  # never touched
