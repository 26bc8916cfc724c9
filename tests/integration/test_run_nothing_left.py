"""``run`` that finds nothing to do leaves nothing behind (docs/running.md, "From cron").

A cron job over an empty inbox ran every night and left a log file, and the folders for it,
below the recipe's folder (``recipes/output/<recipe>/logs/<run id>.jsonl``). Each test lists
every path below its folders before and after a real command line.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from preform_pipeline.store import JobState, SqliteJobStore
from tests.command_line import InProcess
from tests.command_line import in_a_process as _cli

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "engineering-grey-form4.yaml"


def _tree(folder: Path) -> set[str]:
    """Every file and folder below ``folder``, relative to it."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def _recipe_and_inbox(folder: Path) -> tuple[Path, Path]:
    """The shipped recipe (its ``outputs.root`` is relative: below its own folder) and an
    empty inbox, as a print shop sets them up."""
    (folder / "recipes").mkdir()
    recipe = folder / "recipes" / RECIPE.name
    shutil.copyfile(RECIPE, recipe)
    inbox = folder / "inbox"
    inbox.mkdir()
    return recipe, inbox


class TestAnEmptyInbox:
    """Nothing to do: the line that says so, exit 0, and no file or folder made."""

    def test_from_cron_nothing_is_written_below_the_recipe(self, tmp_path: Path) -> None:
        recipe, inbox = _recipe_and_inbox(tmp_path)
        before = _tree(tmp_path)
        done = _cli(tmp_path, "run", str(recipe), str(inbox))
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout == (
            f"nothing to do: no complete model files (.stl, .obj, .3mf) in {inbox}\n")
        assert _tree(tmp_path) == before

    def test_an_output_folder_there_keeps_what_it_held(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        recipe, inbox = _recipe_and_inbox(tmp_path)
        out = tmp_path / "out"
        (out / "reports").mkdir(parents=True)
        (out / "reports" / "earlier.json").write_text("{}", encoding="utf-8")
        before = _tree(tmp_path)
        done = in_process(tmp_path, "run", str(recipe), str(inbox), "--output", str(out),
                          "--quiet")
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
        assert _tree(tmp_path) == before

    def test_a_log_file_asked_for_is_kept(self, tmp_path: Path, in_process: InProcess) -> None:
        recipe, inbox = _recipe_and_inbox(tmp_path)
        log = tmp_path / "logs" / "nightly.jsonl"
        done = in_process(tmp_path, "run", str(recipe), str(inbox), "--output",
                          str(tmp_path / "out"), "--log-file", str(log))
        assert done.returncode == 0, done.stderr
        assert log.is_file()
        assert not (tmp_path / "out").exists()  # made for the run, taken back

    def test_a_night_that_pruned_old_outputs_keeps_its_log(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        # Removing files is something done: the run's log is where each removal is recorded.
        recipe, inbox = _recipe_and_inbox(tmp_path)
        old = tmp_path / "out" / "reports" / "run-old.json"
        old.parent.mkdir(parents=True)
        old.write_text("{}", encoding="utf-8")
        long_ago = time.time() - 10 * 86400
        os.utime(old, (long_ago, long_ago))
        settings = tmp_path / "settings.yaml"
        settings.write_text("run:\n  retention_days: 7\n", encoding="utf-8")
        done = in_process(tmp_path, "run", str(recipe), str(inbox), "--settings", str(settings),
                          "--output", str(tmp_path / "out"))
        assert done.returncode == 0, done.stderr
        assert "retention: removed 1 file older than 7 days" in done.stdout
        assert not old.exists()
        assert len(list((tmp_path / "out" / "logs").glob("*.jsonl"))) == 1

    def test_a_run_that_released_a_dead_runs_work_keeps_its_log(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        from preform_pipeline.executor.ledger import RunLedger
        from preform_pipeline.printing import PrintOwner
        from preform_pipeline.printing.testing import reaped_holder
        from preform_pipeline.store import SqliteJobStore
        from tests.unit.executor.test_executor_ledger import _model

        recipe, inbox = _recipe_and_inbox(tmp_path)
        model = shutil.copyfile(REPO_ROOT / "sample_models" / "parts" / "gear.obj",
                                tmp_path / "gear.obj")
        store = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(store) as opened:  # a run that died after its claim
            RunLedger(opened, PrintOwner(opened, []), recipe.stem, "run-dead",
                      reaped_holder()).claim([_model(model)])
        done = in_process(tmp_path, "run", str(recipe), str(inbox), "--store", str(store),
                          "--output", str(tmp_path / "out"))
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("released gear.obj: its run died before building it\n")
        assert len(list((tmp_path / "out" / "logs").glob("*.jsonl"))) == 1

    def test_a_run_that_swept_a_dead_runs_temporary_keeps_its_log(
        self, tmp_path: Path
    ) -> None:
        # Removed files are something done, as retention's: the log names each.
        from tests.integration.test_cli_refusals_said_once import _dead_writers_temporary

        recipe, inbox = _recipe_and_inbox(tmp_path)
        out = tmp_path / "out"
        dead = _dead_writers_temporary(tmp_path, out / "reports" / "20261201-0101-aa.json")
        done = _cli(tmp_path, "run", str(recipe), str(inbox), "--output", str(out), "--quiet")
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
        assert not dead.exists()
        (log_file,) = (out / "logs").iterdir()
        events = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
        assert [e["path"] for e in events if e["event"] == "temporary_swept"] == [str(dead)]


class TestARefusedRun:
    """A run refused with its ``error:`` line on stderr leaves nothing: the line is the
    record, and cron mails it (session 42 left an empty or near-empty log each try). A store
    path refused starts nothing: in the test's process; a plan refused takes and gives back
    claims held by its process id, so that run is a process of its own."""

    def test_a_store_path_of_a_user_who_is_not_there_leaves_no_output_folder(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        recipe, inbox = _recipe_and_inbox(tmp_path)
        (inbox / "gear.obj").write_bytes(
            (REPO_ROOT / "sample_models" / "parts" / "gear.obj").read_bytes())
        before = _tree(tmp_path)
        done = in_process(tmp_path, "run", str(recipe), str(inbox), "--output",
                          str(tmp_path / "out"), "--store", "~no-such-user-s43/jobs.db",
                          "--quiet")
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.startswith(
            "error: --store: '~no-such-user-s43/jobs.db': no user named 'no-such-user-s43' "
            "on this machine"), done.stderr
        assert _tree(tmp_path) == before

    def test_a_log_file_asked_for_keeps_the_refusal(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        recipe, inbox = _recipe_and_inbox(tmp_path)
        (inbox / "gear.obj").write_bytes(
            (REPO_ROOT / "sample_models" / "parts" / "gear.obj").read_bytes())
        log = tmp_path / "nightly.jsonl"
        done = in_process(tmp_path, "run", str(recipe), str(inbox), "--output",
                          str(tmp_path / "out"), "--store", "~no-such-user-s43/jobs.db",
                          "--log-file", str(log))
        assert done.returncode == 1
        assert log.is_file()
        assert not (tmp_path / "out").exists()

    def test_a_plan_the_recipe_refuses_leaves_nothing_on_each_try(self, tmp_path: Path) -> None:
        # Review of session 43: the refused run's claims stayed in processing; each later
        # try "released" them as a dead run's work (which it was not) and kept its log.
        recipe, inbox = _recipe_and_inbox(tmp_path)
        text = recipe.read_text(encoding="utf-8")
        recipe.write_text(text.replace("max_models_per_build: null", "max_models_per_build: 1")
                          .replace("on_overflow: split", "on_overflow: fail"), encoding="utf-8")
        long_ago = time.time() - 60  # whole files, not still being written
        for name in ("gear.obj", "l_bracket.stl"):
            shutil.copyfile(REPO_ROOT / "sample_models" / "parts" / name, inbox / name)
            os.utime(inbox / name, (long_ago, long_ago))
        store = tmp_path / "jobs.sqlite3"
        argv = ("run", str(recipe), str(inbox), "--output", str(tmp_path / "out"),
                "--store", str(store))
        before = _tree(tmp_path)
        for _ in range(2):
            done = _cli(tmp_path, *argv)
            assert done.returncode == 1 and done.stdout == "", done.stdout + done.stderr
            assert "batching.on_overflow: fail" in done.stderr.splitlines()[0]
            assert _tree(tmp_path) - {store.name} == before
        with SqliteJobStore(store) as opened:
            jobs = opened.list_jobs()
        assert [j.state for j in jobs] == [JobState.FAILED] * 4
        assert all("batching.on_overflow: fail" in j.reason for j in jobs)


class TestALogFileThatCannotBeWritten:
    """A log file whose folder cannot be used refuses the run before its work, as an output
    folder that cannot is: its ``error:`` line, and nothing left (the review of session 43:
    the output folder made for the run stayed, and a folder the check cannot judge was a
    crash report)."""

    @pytest.mark.parametrize(("named_by", "fix"), [
        ("--log-file", "fix --log-file (or the folder itself)"),
        ("logging.file", "fix logging.file in the settings (or the folder itself)"),
    ])
    def test_a_folder_that_is_a_file_leaves_no_output_folder(
        self, tmp_path: Path, in_process: InProcess, named_by: str, fix: str
    ) -> None:
        # The hint names what was given (before session 43's loose ends, both at once).
        recipe, inbox = _recipe_and_inbox(tmp_path)
        blocker = tmp_path / "blocker"
        blocker.write_text("", encoding="utf-8")
        settings = tmp_path / "settings.yaml"
        settings.write_text(f"logging:\n  file: {blocker / 'run.jsonl'}\n", encoding="utf-8")
        log = (["--log-file", str(blocker / "run.jsonl")] if named_by == "--log-file"
               else ["--settings", str(settings)])
        before = _tree(tmp_path)
        done = in_process(tmp_path, "run", str(recipe), str(inbox), "--output",
                          str(tmp_path / "out"), *log)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith(
            f"error: log file's folder {blocker}: is a file, not a folder ({fix})\n"), (
            done.stderr)
        assert _tree(tmp_path) == before

    @pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
    def test_a_folder_below_proc_is_refused_not_a_crash(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        # /proc grants root write access and still refuses a new folder: the check passes.
        recipe, inbox = _recipe_and_inbox(tmp_path)
        before = _tree(tmp_path)
        done = in_process(tmp_path, "run", str(recipe), str(inbox), "--output",
                          str(tmp_path / "out"), "--log-file", "/proc/no-such-pp/run.jsonl")
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("error: log file's folder /proc/no-such-pp: "), (
            done.stderr)
        assert _tree(tmp_path) == before

    def test_a_file_named_logs_in_the_output_folder_is_said_not_a_crash(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        recipe, inbox = _recipe_and_inbox(tmp_path)
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "logs").write_text("", encoding="utf-8")
        before = _tree(tmp_path)
        done = in_process(tmp_path, "run", str(recipe), str(inbox), "--output",
                          str(tmp_path / "out"))
        assert done.returncode == 1, done.stderr
        # No --log-file was given: the hint named it as the thing to fix (review rv43-litter).
        assert done.stderr.startswith(
            f"error: log file's folder {tmp_path / 'out' / 'logs'}: is a file, not a folder "
            "(the run keeps its log in the output folder's logs folder: move away what stands "
            "at that name or let this user write there, or give --log-file)\n"), done.stderr
        assert _tree(tmp_path) == before


class TestARunWhoseOnlyWorkIsALeftBuildItCannotSend:
    """A run over an empty inbox whose only work is a build an earlier run left waiting,
    which it cannot send (no saved .form): exit 1, and its last line says that build was not
    sent and why, not "nothing to run, 0 of 0 builds succeeded"."""

    def test_the_exit_line_says_what_happened(self, tmp_path: Path) -> None:
        from tests.integration.test_cli_stdout_escaped import run_after_a_left_build

        build, done = run_after_a_left_build(tmp_path, "Form4-Lab")
        assert done.returncode == 1, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            [job] = store.build_members(build.id)
        why = (f"build {build.job_key} waits for a printer but has no saved .form (cancel "
               f"its job (`preform-pipeline jobs --store {tmp_path}/jobs.sqlite3 cancel "
               f"{job.job_key}`): the next run over its file prepares it again)")
        # Said once (the pass tries again until its wait ends), and not as still waiting.
        assert [x for x in lines if " not sent to " in x] == [
            f"{build.job_key} not sent to Form4-Lab: {why}"], done.stdout
        assert not any(" still waits for a printer" in x for x in lines), done.stdout
        said = f"exit 1: 1 build left waiting by an earlier run not sent ({build.job_key}: {why}), "
        assert lines[-1] == said + "no new builds", done.stdout
        # Cron's run (--quiet): stdout empty, the one line on stderr says it all.
        again = _cli(tmp_path, "run", str(RECIPE), str(tmp_path / "inbox"), "--quiet",
                     "--store", str(tmp_path / "jobs.sqlite3"),
                     "--settings", str(tmp_path / "settings.yaml"),
                     "--output", str(tmp_path / "out"))
        assert (again.returncode, again.stdout) == (1, ""), again.stdout + again.stderr
        assert again.stderr.splitlines()[-1] == said + "no new builds", again.stderr


class TestARunWithItsOwnBuildAndALeftBuildItCannotSend:
    """A send that failed fails the run even when its own build succeeded: with ``--quiet``
    cron saw nothing of it (exit 0, the "not sent" line on stdout only)."""

    def test_the_exit_status_and_line_say_the_send_failed(self, tmp_path: Path) -> None:
        from tests.integration.test_cli_stdout_escaped import MODEL, run_after_a_left_build

        build, done = run_after_a_left_build(tmp_path, "Form4-Lab", models=[MODEL])

        assert done.returncode == 1, done.stdout + done.stderr
        last = done.stdout.splitlines()[-1]
        assert last.startswith(
            f"exit 1: 1 build left waiting by an earlier run not sent ({build.job_key}: build "
            f"{build.job_key} waits for a printer but has no saved .form"), done.stdout
        assert last.endswith(", 1 of 1 build succeeded"), done.stdout


class TestALeftBuildWithoutAFormIsPreparedAgainAsItsHintSays:
    """A build a dead run left waiting without its saved .form can never be sent: its hint
    names the command that frees its file (``jobs retry`` refuses a waiting job), and, that
    command run, the next run over the file prepares and prints it, and sends nothing left."""

    def test_following_the_hint_prints_the_file_once(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        from tests.integration.test_run_retried_job import a_runs_job_of_an_inbox_file

        inbox, path, job = a_runs_job_of_an_inbox_file(tmp_path)
        with SqliteJobStore(path) as store:  # what a run that died left of this very file
            build = store.create_build(recipe=RECIPE.stem, job_ids=[job.id])
            for state in (JobState.PREPARING, JobState.PREPARED):
                store.transition_build(build.id, state, "an earlier run")
            store.transition_build(build.id, JobState.WAITING_FOR_PRINTER, "no printer free",
                                   print_target={"names": ["Form4-Lab"]})
        settings = tmp_path / "settings.yaml"
        settings.write_text("servers: {count: 1}\ndispatch: {run_wait_s: 0.1}\n",
                            encoding="utf-8")
        argv = ("run", str(RECIPE), str(inbox), "--store", str(path), "--settings",
                str(settings), "--output", str(tmp_path / "out"))

        first = _cli(tmp_path, *argv)
        assert first.returncode == 1, first.stdout + first.stderr
        cancel = f"preform-pipeline jobs --store {path} cancel {job.job_key}"
        assert f"(cancel its job (`{cancel}`): the next run over its file prepares it " \
            "again)" in first.stdout, first.stdout
        # The hint's command, as typed: it starts nothing, so in this process; the runs
        # around it start servers and stay processes of their own.
        said = in_process(tmp_path, *cancel.split()[1:])
        assert said.returncode == 0, said.stdout + said.stderr

        second = _cli(tmp_path, *argv)
        assert second.returncode == 0, second.stdout + second.stderr
        assert " not sent to " not in second.stdout, second.stdout
        assert second.stdout.splitlines()[-1] == "exit 0: 1 of 1 build succeeded"
        with SqliteJobStore(path) as store:
            [printed] = store.list_jobs(state=JobState.PRINT_SENT)
            assert build.id != printed.build_id  # prepared again, in a build of its own
            assert store.list_builds(state=JobState.WAITING_FOR_PRINTER) == ()
