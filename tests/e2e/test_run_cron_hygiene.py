"""``preform-pipeline run`` from cron: quiet when well, only complete files, no silent skips.

Real subprocesses: the command line, its pool and simulator processes; the job store is the
test's own default store (see ``conftest``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from run_e2e_support import (
    RunOutcome,
    command,
    fleet_jobs,
    full_steps,
    run_cli,
    write_recipe,
    write_settings,
)

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.meshops import box_triangles

STEPS = """\
steps:
  - save_form
  - print:
      printer: SimulatedForm4-1
"""


def _box(path: Path, size: float = 20.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_stl(path, box_triangles((0.0, 0.0, 0.0), (size, size, size)))
    return path


def _quiet_run_with_a_cad_file(tmp_path: Path) -> list[str]:
    """A quiet run's command over an inbox of one model and a STEP file it rejects."""
    inbox = tmp_path / "inbox"
    _box(inbox / "a.stl")
    (inbox / "bracket.step").write_text("ISO-10303-21;\n", encoding="utf-8")
    recipe = write_recipe(tmp_path, STEPS)
    settings = write_settings(tmp_path, count=1)
    return command(tmp_path, recipe, [inbox], "--settings", str(settings), "--quiet")


class TestQuiet:
    """``--quiet`` prints nothing on success (two good runs: ``TestGoodRuns``), and only the
    errors on failure."""

    def test_an_output_folder_inside_the_models_folder_is_not_taken_for_models(
        self, tmp_path: Path
    ) -> None:
        # Session 30: the run rejected its own log file ("not a model file") and exited 1;
        # the next run rejected its .form and screenshot files as well.
        inbox = tmp_path / "inbox"
        _box(inbox / "a.stl")
        recipe = write_recipe(tmp_path, STEPS)
        settings = write_settings(tmp_path, count=1)
        argv = command(tmp_path, recipe, [inbox], "--settings", str(settings), "--quiet",
                       "--output", str(inbox / "out"))
        for _ in range(2):  # the second finds the first's outputs, and a model printed
            run = run_cli(tmp_path, argv)
            assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
        assert list((inbox / "out" / "logs").glob("*.jsonl"))
        assert len(fleet_jobs(tmp_path)) == 1

    def test_a_bad_run_prints_only_its_errors_and_its_rejection_is_not_news_the_next_run(
        self, tmp_path: Path
    ) -> None:
        argv = _quiet_run_with_a_cad_file(tmp_path)
        run = run_cli(tmp_path, argv)
        assert run.returncode == 1
        assert run.stdout == ""
        lines = run.stderr.splitlines()
        assert any("bracket.step" in line and ".step is a CAD file, not a mesh" in line
                   for line in lines), run.stderr
        assert lines[-1].startswith("exit 1: 1 model rejected")
        # The good model was still printed, and the report lists the rejection.
        assert len(fleet_jobs(tmp_path)) == 1
        assert [Path(r["path"]).name for r in run.report["rejected"]] == ["bracket.step"]

        # A file rejected once is nothing new on the next run: silent, and nothing kept.
        after_first = _files(run.out)
        second = run_cli(tmp_path, argv)
        assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
        assert _files(second.out) == after_first


class TestEmptyFolder:
    """An empty folder is not an error."""

    def test_it_exits_0_with_nothing_to_do(self, tmp_path: Path) -> None:
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        recipe = write_recipe(tmp_path, full_steps(2))
        run = run_cli(tmp_path, command(tmp_path, recipe, [inbox]))
        assert run.returncode == 0, run.stderr[-3000:]
        assert "nothing to do" in run.stdout
        quiet = run_cli(tmp_path, command(tmp_path, recipe, [inbox], "--quiet"))
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")

    def test_a_night_with_nothing_new_still_prunes_old_outputs(self, tmp_path: Path) -> None:
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        old = tmp_path / "out" / "reports" / "run-old.json"
        old.parent.mkdir(parents=True)
        old.write_text("{}", encoding="utf-8")
        long_ago = time.time() - 10 * 86400
        os.utime(old, (long_ago, long_ago))
        recent = old.with_name("run-recent.json")
        recent.write_text("{}", encoding="utf-8")
        settings = write_settings(tmp_path, count=1)
        with settings.open("a", encoding="utf-8") as handle:
            handle.write("run:\n  retention_days: 7\n")
        recipe = write_recipe(tmp_path, STEPS)
        run = run_cli(tmp_path, command(tmp_path, recipe, [inbox], "--settings", str(settings)))
        assert run.returncode == 0, run.stderr[-3000:]
        assert "retention: removed 1 file older than 7 days" in run.stdout
        assert "reports/run-old.json" in run.stdout
        assert not old.exists() and recent.exists()


class TestFileBeingWritten:
    """A file still being written is left with a message, and the next run takes it."""

    def test_a_half_copied_stl_waits_for_the_next_run(self, tmp_path: Path) -> None:
        inbox = tmp_path / "inbox"
        _box(inbox / "done.stl")
        whole = _box(tmp_path / "source" / "late.stl", 30.0).read_bytes()
        # A copy in progress: the header promises 12 triangles, half the bytes are there.
        (inbox / "late.stl").write_bytes(whole[: len(whole) // 2])
        recipe = write_recipe(tmp_path, STEPS)
        settings = write_settings(tmp_path, count=1)
        argv = command(tmp_path, recipe, [inbox], "--settings", str(settings))

        first = run_cli(tmp_path, argv)
        assert first.returncode == 0, first.stderr[-3000:]
        waiting = [line for line in first.stdout.splitlines() if "late.stl" in line]
        assert waiting and waiting[0].startswith("not taken yet:"), first.stdout
        assert "next run" in waiting[0]
        assert [Path(b["source_files"][0]).name for b in first.builds()] == ["done.stl"]

        (inbox / "late.stl").write_bytes(whole)
        second = run_cli(tmp_path, argv)
        assert second.returncode == 0, second.stderr[-3000:]
        assert [Path(f).name for b in second.builds() for f in b["source_files"]] == [
            "late.stl"
        ]
        assert len(fleet_jobs(tmp_path)) == 2

    def test_a_case_folder_is_not_split_over_two_runs(self, tmp_path: Path) -> None:
        # Session 30: the complete upper arch was printed alone while the lower one was still
        # being copied, and the next run printed the lower one alone.
        inbox = tmp_path / "inbox"
        upper = _box(inbox / "C-1042" / "upper.stl")
        whole = _box(tmp_path / "source" / "lower.stl", 30.0).read_bytes()
        lower = inbox / "C-1042" / "lower.stl"
        lower.write_bytes(whole[: len(whole) // 2])
        recipe = write_recipe(tmp_path, STEPS)
        settings = write_settings(tmp_path, count=1)
        argv = command(tmp_path, recipe, [inbox], "--settings", str(settings))

        first = run_cli(tmp_path, argv)
        assert first.returncode == 0, first.stderr[-3000:]
        assert (f"not taken yet: {upper}: its case folder C-1042 waits for lower.stl, still "
                "being written; the next run takes it") in first.stdout
        assert first.report.get("builds", []) == [] and fleet_jobs(tmp_path) == []

        lower.write_bytes(whole)
        second = run_cli(tmp_path, argv)
        assert second.returncode == 0, second.stderr[-3000:]
        assert [sorted(Path(f).name for f in b["source_files"]) for b in second.builds()] == [
            ["lower.stl", "upper.stl"]
        ]
        assert len(fleet_jobs(tmp_path)) == 1

    def test_an_obj_waits_for_its_quiet_period(self, tmp_path: Path) -> None:
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        source = Path(__file__).resolve().parents[2] / "sample_models" / "parts"
        obj = next(iter(sorted(source.glob("*.obj"))))
        copied = Path(shutil.copy(obj, inbox / obj.name))
        now = time.time()
        os.utime(copied, (now, now))
        recipe = write_recipe(tmp_path, STEPS)
        settings = write_settings(tmp_path, count=1)
        with settings.open("a", encoding="utf-8") as handle:
            handle.write("run:\n  quiet_period_s: 600\n")  # far longer than the run's start
        run = run_cli(tmp_path, command(tmp_path, recipe, [inbox], "--dry-run",
                                        "--settings", str(settings)))
        assert run.returncode == 0, run.stderr[-3000:]
        assert f"not taken yet: {copied}" in run.stdout
        assert "nothing to do" in run.stdout

    def test_an_obj_dated_ahead_of_the_clock_is_said_so_not_just_changed(
        self, tmp_path: Path
    ) -> None:
        # Session 42: a file whose time is ahead (the clock set back, a share's server clock
        # ahead) was "changed 0.0 s ago" on every run until this clock caught up.
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        source = Path(__file__).resolve().parents[2] / "sample_models" / "parts"
        obj = next(iter(sorted(source.glob("*.obj"))))
        copied = Path(shutil.copy(obj, inbox / obj.name))
        ahead = time.time() + 3600
        os.utime(copied, (ahead, ahead))
        recipe = write_recipe(tmp_path, STEPS)
        settings = write_settings(tmp_path, count=1)
        run = run_cli(tmp_path, command(tmp_path, recipe, [inbox], "--dry-run",
                                        "--settings", str(settings)))
        assert run.returncode == 0, run.stderr[-3000:]
        [line] = [line for line in run.stdout.splitlines() if obj.name in line]
        assert line.startswith(f"not taken yet: {copied}: its modification time is 3")
        assert "s ahead of this machine's clock" in line and "changed" not in line
        # The wait is counted from the moment the run looked: an hour and 5 s less however
        # long the run took to start (seconds on a loaded machine), never more.
        said = re.search(r"until it is 5 s old by this clock, (\d+) s from now", line)
        assert said is not None, line
        assert ahead + 5 - time.time() - 1 <= int(said[1]) <= 3605


class TestGoodRuns:
    """A good run from cron prints nothing, and keeps its build report beside its ``.form``
    whatever ran before that day."""

    def test_each_prints_nothing_and_a_second_of_the_day_keeps_the_first_runs_report(
        self, tmp_path: Path
    ) -> None:
        # Session 42: build names start at -001 every run, so every run from cron rendered
        # {date}/e2e-001.json and wrote it over the last run's report, while its .form went
        # to e2e-001-2.form: the first run's report was lost, and the one beside the second
        # .form (the one the dashboard and the dispatcher read) was never written. The two
        # runs of the day are also what `--quiet` is for: each prints nothing at all.
        inbox = tmp_path / "inbox"
        recipe = write_recipe(tmp_path, STEPS)
        settings = write_settings(tmp_path, count=1)
        argv = command(tmp_path, recipe, [inbox], "--settings", str(settings), "--quiet")
        runs = []
        for printed, name in enumerate(("first.stl", "second.stl"), start=1):
            _box(inbox / name, 20.0 if name == "first.stl" else 25.0)
            run = run_cli(tmp_path, argv)
            assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
            assert len(fleet_jobs(tmp_path)) == printed
            runs.append(run)

        for run in runs:
            [build] = run.builds()
            [form] = [Path(p) for p in build["outputs"] if p.endswith(".form")]
            beside = json.loads(form.with_suffix(".json").read_text(encoding="utf-8"))
            assert (beside["run_id"], beside["source_files"]) == (
                run.report["run_id"], build["source_files"])
        assert len(list(tmp_path.joinpath("out").rglob("e2e-001*.json"))) == 2


class TestCheckpoints:
    """A run's checkpoints serve its own retries only: a run whose builds all succeeded
    leaves none of them behind."""

    def test_a_succeeded_run_leaves_no_checkpoint_folder(self, tmp_path: Path) -> None:
        # Session 42: every run with builds left `.checkpoints/<run id>/` (a journal per
        # build) below the output folder, a folder more on every run from cron.
        inbox = tmp_path / "inbox"
        _box(inbox / "a.stl")
        recipe = write_recipe(tmp_path, "steps:\n  - auto_support\n" + STEPS[len("steps:\n"):])
        settings = write_settings(tmp_path, count=1)
        run = run_cli(tmp_path, command(tmp_path, recipe, [inbox], "--settings", str(settings),
                                        "--quiet"))
        assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
        assert [e["after_step"] for e in run.events_named("checkpoint_saved")] == [
            "auto_support"]
        assert list((run.out / ".checkpoints").iterdir()) == []


def _files(folder: Path) -> set[str]:
    """Every file below ``folder``, relative to it."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _printed_once(tmp_path: Path, *extra: str) -> tuple[Path, list[str], RunOutcome]:
    """An inbox whose ``a.stl`` a first run from cron (``--quiet``) printed, in silence: the
    inbox, the command line (without ``--quiet``) and that first run."""
    inbox = tmp_path / "inbox"
    _box(inbox / "a.stl")
    recipe = write_recipe(tmp_path, STEPS)
    settings = write_settings(tmp_path, count=1)
    argv = command(tmp_path, recipe, [inbox], "--settings", str(settings), *extra)
    first = run_cli(tmp_path, [*argv, "--quiet"])
    assert (first.returncode, first.stdout, first.stderr) == (0, "", "")
    return inbox, argv, first


def _record_of(run: RunOutcome) -> set[str]:
    """The report (JSON and CSV) and the log a run is to keep below its output folder."""
    run_id = run.report["run_id"]
    return {f"reports/{run_id}.json", f"reports/{run_id}.csv", f"logs/{run_id}.jsonl"}


class TestARunThatDidNothing:
    """A run that prepared, sent, released, rejected and removed nothing new leaves no report
    and no log; a run that did something keeps both (docs/running.md, "From cron"). A file
    rejected once is nothing new: after the bad run of ``TestQuiet``."""

    def test_a_repeat_leaves_nothing_says_so_keeps_a_log_asked_for_and_records_a_new_model(
        self, tmp_path: Path
    ) -> None:
        # Session 43: a cron line every 5 minutes over an inbox it does not empty wrote two
        # reports and a log each time (~860 files a day) saying that nothing happened. One
        # printed inbox serves every repeat below (each a run of its own, as cron's are): a
        # first print is a pool and a simulator started, the repeats start none.
        inbox, argv, first = _printed_once(tmp_path)
        after_first = _files(first.out)
        assert _record_of(first) <= after_first

        repeat = run_cli(tmp_path, [*argv, "--quiet"])
        assert (repeat.returncode, repeat.stdout, repeat.stderr) == (0, "", "")
        assert _files(repeat.out) == after_first

        # A log file asked for is written, and the run says that no report was kept.
        asked = tmp_path / "looks.jsonl"
        looked = run_cli(tmp_path, [*argv, "--log-file", str(asked)])
        assert looked.returncode == 0, looked.stderr[-3000:]
        assert _files(looked.out) == after_first
        lines = looked.stdout.splitlines()
        assert lines[-2:] == [f"nothing new: no report kept; log: {asked}",
                              "exit 0: nothing to run, 0 of 0 builds succeeded"]
        assert not any(line.startswith(("report: ", "output: ")) for line in lines)
        events = [json.loads(line) for line in asked.read_text(encoding="utf-8").splitlines()]
        assert [e["path"] for e in events if e["event"] == "model_skipped"] == [
            str(inbox / "a.stl")]

        own = run_cli(tmp_path, argv)  # its own log: none kept, and it says so
        assert own.returncode == 0 and _files(own.out) == after_first
        assert own.stdout.splitlines()[-2] == (
            "nothing new: no report or log kept (a run that does nothing leaves nothing)")

        _box(inbox / "b.stl", 25.0)
        new = run_cli(tmp_path, [*argv, "--quiet"])
        assert (new.returncode, new.stdout, new.stderr) == (0, "", "")
        assert _record_of(new) <= _files(new.out) - after_first
        assert [Path(f).name for b in new.builds() for f in b["source_files"]] == ["b.stl"]


class TestAStoreThatForgot:
    """A deleted job store does not make the next run print the whole folder again."""

    def test_a_run_after_the_store_was_deleted_prints_nothing_and_says_why(
        self, tmp_path: Path, own_data_folder: Path
    ) -> None:
        # Session 42: with the store deleted, the next run from cron printed every model of
        # the inbox again, and --quiet said nothing of it.
        _, argv, first = _printed_once(tmp_path, "--quiet")
        [store] = list(own_data_folder.rglob("*jobs.sqlite3"))
        store.unlink()

        after_first = _files(first.out)
        refused = run_cli(tmp_path, argv)
        assert refused.returncode == 1 and refused.stdout == ""
        error, nothing = refused.stderr.splitlines()
        assert error.startswith(f"error: the job store {store} holds no job of this recipe, "
                                f"but run {first.report['run_id']} printed into ")
        assert "run once with --reprint" in error
        assert nothing.endswith(": nothing was run")
        # Said on stderr, so no log of its own is kept (session 43: one more a try).
        assert _files(refused.out) == after_first
        asked = tmp_path / "refused.jsonl"
        assert run_cli(tmp_path, [*argv, "--log-file", str(asked)]).returncode == 1
        [event] = [e for e in map(json.loads, asked.read_text(encoding="utf-8").splitlines())
                   if e["event"] == "store_forgot_prints"]
        assert event["job_keys"] == [first.builds()[0]["job_key"]]
        assert len(fleet_jobs(tmp_path)) == 1

        again = run_cli(tmp_path, [*argv, "--reprint"])
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
        assert len(fleet_jobs(tmp_path)) == 2
        after = run_cli(tmp_path, argv)  # the new store knows the folder now
        assert (after.returncode, after.stdout, after.stderr) == (0, "", "")
        assert len(fleet_jobs(tmp_path)) == 2

    def test_after_the_printed_models_were_moved_out_a_new_model_is_printed(
        self, tmp_path: Path, own_data_folder: Path
    ) -> None:
        # Review of session 42: the refusal's advice (move the printed models out, run once
        # with --reprint) left the new store empty, as that run had nothing to do: every
        # later run from cron, the next model dropped in included, was refused by the same
        # old report, and the lab printed nothing until someone ran --reprint again.
        inbox = tmp_path / "inbox"
        printed = _box(inbox / "a.stl")
        recipe = write_recipe(tmp_path, STEPS)
        settings = write_settings(tmp_path, count=1)
        argv = command(tmp_path, recipe, [inbox], "--settings", str(settings), "--quiet")
        assert run_cli(tmp_path, argv).returncode == 0
        [store] = list(own_data_folder.rglob("*jobs.sqlite3"))
        store.unlink()
        assert run_cli(tmp_path, argv).returncode == 1
        printed.rename(tmp_path / printed.name)
        _box(inbox / "b.stl", 25.0)

        after = run_cli(tmp_path, argv)
        assert (after.returncode, after.stdout, after.stderr) == (0, "", "")
        [build] = after.builds()
        assert [Path(p).name for p in build["source_files"]] == ["b.stl"]
