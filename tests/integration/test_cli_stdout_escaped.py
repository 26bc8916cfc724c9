"""Names that reach stdout, and argparse's own usage errors, shown with their hidden characters
written out (``wording.visible``), as stderr already shows them.

A file or folder name can hold a terminal's escape sequences (ESC ``[2J`` clears the screen,
ESC ``]0;...BEL`` retitles the window). Each test types such a name where a user would and
reads what the command printed: real ``python -m preform_pipeline`` processes where only a
process shows it (argparse writes to the process's own streams), the command line in the
test's process for the rest (``tests/command_line.py``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from preform_pipeline import cli
from preform_pipeline.store import Build, JobState, SqliteJobStore
from tests.command_line import InProcess
from tests.command_line import in_a_process as _cli

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "engineering-grey-form4.yaml"
MODEL = REPO_ROOT / "sample_models" / "parts" / "gear.obj"

#: A name that clears the screen and retitles the terminal, and one that reverses the text.
HOSTILE = "r\x1b]0;owned\x07\x1b[2Jx\u202e"
SHOWN = "r\\x1b]0;owned\\x07\\x1b[2Jx\\u202e"


def _obeyed(text: str) -> set[str]:
    """The characters of ``text`` a terminal would obey rather than show."""
    return {"\x1b", "\x07", "\u202e"} & set(text)


def _a_line_starts(text: str, start: str) -> bool:
    return any(line.startswith(start) for line in text.splitlines())


def _unnamed_recipe(folder: Path) -> Path:
    """The shipped recipe without its ``name:``, in a file named :data:`HOSTILE`: the recipe's
    name is then its file's, and so is every build's (``{recipe}-001``)."""
    path = folder / f"{HOSTILE}.yaml"
    text = RECIPE.read_text(encoding="utf-8")
    path.write_text("".join(line for line in text.splitlines(keepends=True)
                            if not line.startswith("name:")), encoding="utf-8")
    return path


class TestValidate:
    """``validate``'s lines on stdout name the file as escapes."""

    def test_a_problem_and_the_summary_line(self, tmp_path: Path, in_process: InProcess) -> None:
        recipe = tmp_path / f"{HOSTILE}.yaml"
        recipe.write_text(RECIPE.read_text(encoding="utf-8").replace(
            "layer_thickness_mm: 0.1", "layer_thickness_mm: fine"), encoding="utf-8")
        done = in_process(tmp_path, "validate", str(recipe))
        assert done.returncode == 1
        lines = done.stdout.splitlines()
        assert len(lines) == 2, done.stdout
        assert lines[0].startswith(f"{tmp_path}/{SHOWN}.yaml:") and "layer_thickness_mm" in lines[0]
        assert lines[1].startswith(f"{tmp_path}/{SHOWN}.yaml: 1 problem (checked against ")
        assert not _obeyed(done.stdout + done.stderr), done.stdout


class TestJobsWithoutAStore:
    """``jobs``' answer for a store that is not there names the typed path as escapes."""

    def test_the_no_job_store_line(self, tmp_path: Path) -> None:
        store = tmp_path / f"{HOSTILE}.db"
        done = _cli(tmp_path, "jobs", "--store", str(store))
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"no jobs (no job store at {tmp_path}/{SHOWN}.db yet")
        assert not _obeyed(done.stdout + done.stderr), done.stdout
        assert not store.exists()  # asked, not made


class TestVerifyWithoutAStore:
    """``verify``'s answer for a store that is not there names the typed path as escapes."""

    def test_the_no_job_store_line(self, tmp_path: Path, in_process: InProcess) -> None:
        done = in_process(tmp_path, "verify", "--store", str(tmp_path / f"{HOSTILE}.db"))
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(
            f"no job store at {tmp_path}/{SHOWN}.db: nothing to verify"), done.stdout
        assert not _obeyed(done.stdout + done.stderr), done.stdout


class TestJobsWaiting:
    """``jobs waiting`` names a printer as escapes, its columns measured as shown."""

    def test_a_printer_so_named(self, tmp_path: Path, in_process: InProcess) -> None:
        from tests.unit.store.conftest import build_in_state

        path = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(path) as store:
            waiting = build_in_state(store, JobState.PREPARED, jobs=1)
            store.transition_build(waiting.id, JobState.WAITING_FOR_PRINTER, "no printer free",
                                   print_target={"names": [HOSTILE]})
        done = in_process(tmp_path, "jobs", "--store", str(path), "waiting")
        assert done.returncode == 0, done.stderr
        header, row, count = done.stdout.splitlines()
        assert SHOWN in row and not _obeyed(done.stdout), done.stdout
        # The JOBS column starts where its header does: each cell measured as shown.
        assert row.rindex(" ") + 1 == header.index("JOBS"), done.stdout
        assert count == "1 build waiting for a printer"


class TestPlan:
    """``plan``'s summary, its tables' titles and its Mermaid name the recipe as escapes."""

    def test_the_terminals_summary_and_titles(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("COLUMNS", "1000")  # no title folds, however long tmp_path

        class Terminal(io.StringIO):
            def isatty(self) -> bool:
                return True

        model = tmp_path / "[b]gear[i].obj"  # rich's markup, to be shown as it is
        shutil.copyfile(MODEL, model)
        out, err = Terminal(), io.StringIO()
        code = cli.run(["plan", str(_unnamed_recipe(tmp_path)), str(model), "--servers", "1"],
                       out, err)
        assert code == 0, err.getvalue()
        shown = out.getvalue()
        assert f"recipe {SHOWN} ({tmp_path}/{SHOWN}.yaml) on Form 4" in shown, shown
        assert f"build 1: {SHOWN}-001 - fill " in shown, shown  # the table's title
        assert f"\u2502 {tmp_path}/[b]gear[i].obj \u2502" in shown, shown  # the model's cell
        # rich's own styles start with ESC [ and a digit; nothing else may.
        assert "\x1b]" not in shown and "\x1b[2J" not in shown and "\u202e" not in shown

    def test_the_mermaid_comments(self, tmp_path: Path, in_process: InProcess) -> None:
        done = in_process(tmp_path, "plan", str(_unnamed_recipe(tmp_path)), str(MODEL),
                          "--servers", "1", "--format", "mermaid")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"%% build 1: {SHOWN}-001 (1 model)\nflowchart TD\n")
        assert not _obeyed(done.stdout + done.stderr), done.stdout


class TestUsageErrors:
    """argparse's refusals echo what was typed: through the same escapes, exit 2 kept."""

    def test_an_unknown_option_in_a_process(self, tmp_path: Path) -> None:
        done = _cli(tmp_path, "jobs", f"--{HOSTILE}")
        assert done.returncode == 2
        assert done.stdout == ""
        assert done.stderr.startswith("usage: preform-pipeline jobs [-h]"), done.stderr
        assert done.stderr.endswith(
            f"preform-pipeline jobs: error: unrecognized arguments: --{SHOWN}\n")
        assert not _obeyed(done.stderr), done.stderr

    def test_they_are_written_to_the_streams_given(self) -> None:
        # An ambiguous prefix, an unknown command: each said on the stream cli.run was given
        # (argparse writes to sys.stderr itself), escaped, with the usage line.
        for argv, said in (
            (["jobs", f"--st{HOSTILE}"], f"unrecognized arguments: --st{SHOWN}"),
            ([f"jo{HOSTILE}"], f"invalid choice: 'jo{SHOWN}'"),
        ):
            out, err = io.StringIO(), io.StringIO()
            assert cli.run(argv, out, err) == 2
            assert out.getvalue() == ""
            assert err.getvalue().startswith("usage: preform-pipeline"), err.getvalue()
            assert said in err.getvalue(), err.getvalue()
            assert not _obeyed(err.getvalue()), err.getvalue()

    def test_help_is_written_to_the_stdout_given(self) -> None:
        out, err = io.StringIO(), io.StringIO()
        assert cli.run(["jobs", "--help"], out, err) == 0
        assert out.getvalue().startswith("usage: preform-pipeline jobs [-h]")
        assert err.getvalue() == ""


class TestRun:
    """``run``'s own lines and its progress lines name folders and builds as escapes."""

    def test_a_run_of_a_recipe_and_a_folder_so_named(self, tmp_path: Path) -> None:
        out = tmp_path / f"o{HOSTILE}"
        done = _cli(tmp_path, "run", str(_unnamed_recipe(tmp_path)), str(MODEL), "--dry-run",
                    "--output", str(out))
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert any(line.startswith("run ") and line.endswith(f": output in {tmp_path}/o{SHOWN}")
                   for line in lines), done.stdout
        assert f"[{SHOWN}-001] step 1/11 create_scene" in lines, done.stdout  # the reporter's
        assert not _obeyed(done.stdout + done.stderr), done.stdout
        assert out.is_dir()  # the folder as it was named

    def test_nothing_to_do_names_the_folder(self, tmp_path: Path, in_process: InProcess) -> None:
        empty = tmp_path / HOSTILE
        empty.mkdir()
        done = in_process(tmp_path, "run", str(RECIPE), str(empty), "--dry-run",
                          "--output", str(tmp_path / "out"))
        assert done.returncode == 0, done.stderr
        assert done.stdout == (
            f"nothing to do: no complete model files (.stl, .obj, .3mf) in {tmp_path}/{SHOWN}\n")


class TestRunsWarnings:
    """``run``'s warnings before it starts (the queue login, a ``--simulator-arg`` no server
    gets) name the recipe and the typed flag as escapes."""

    def test_the_queue_login_and_the_simulator_arg_warnings(self, tmp_path: Path) -> None:
        recipe = _unnamed_recipe(tmp_path)  # the recipe's name, so its warning's, is HOSTILE
        text = recipe.read_text(encoding="utf-8")
        assert "printer: Form4-CapableClam" in text
        recipe.write_text(text.replace("printer: Form4-CapableClam",
                                       "fleet_group: SimulatedQueue-Form4"), encoding="utf-8")
        # Two servers configured, one build: server-2 is not started, its flag reaches nothing.
        done = _cli(tmp_path, "run", str(recipe), str(MODEL), "--dry-run", "--servers", "2",
                    "--output", str(tmp_path / "out"),
                    "--simulator-arg", f"server-2:--latency={HOSTILE}")
        assert done.returncode == 0, done.stderr
        warnings = [line for line in done.stdout.splitlines() if line.startswith("warning: ")]
        assert warnings[-2:] == [  # after the model's units guessed
            f"warning: {SHOWN}: its print step sends to Fleet Control queue "
            "'SimulatedQueue-Form4', and no dashboard_login is configured: the servers are not "
            "logged in to the Dashboard, so the queue refuses the print; set dashboard_login in "
            "the settings (docs/dispatch.md)",
            f"warning: --simulator-arg server-2:--latency={SHOWN} reaches no server: this run "
            "starts only server-1 (one per build), not server-2",
        ], done.stdout
        assert not _obeyed(done.stdout + done.stderr), done.stdout


class TestRunsLedgerLines:
    """What ``run`` says of the store's earlier work (a dead run's claim released, a model
    skipped as in flight) names each model file as escapes."""

    def test_a_released_claim_and_a_skipped_model(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        from preform_pipeline.executor.ledger import RunLedger
        from preform_pipeline.printing import PrintOwner, SendHolder
        from preform_pipeline.printing.testing import reaped_holder
        from tests.unit.executor.test_executor_ledger import _model

        elsewhere, inbox = tmp_path / "elsewhere", tmp_path / "inbox"
        elsewhere.mkdir()
        inbox.mkdir()
        died = shutil.copyfile(MODEL, elsewhere / f"{HOSTILE}.obj")
        going = inbox / f"{HOSTILE}2.obj"
        going.write_text(MODEL.read_text(encoding="utf-8") + "# another part\n",
                         encoding="utf-8")
        os.utime(going, (1e9, 1e9))  # copied long ago: no quiet period to wait out
        path = tmp_path / "jobs.sqlite3"
        # A run that died after its claim, before its build; a run still going (a process
        # alive throughout) that claimed the inbox's model.
        going_on = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            with SqliteJobStore(path) as store:
                owner = PrintOwner(store, [])
                RunLedger(store, owner, "r", "run-dead", reaped_holder()).claim([_model(died)])
                alive = SendHolder.local("run", going_on.pid, 0.0)
                RunLedger(store, owner, RECIPE.stem, "run-alive", alive).claim([_model(going)])
            done = in_process(tmp_path, "run", str(RECIPE), str(inbox), "--store", str(path),
                              "--output", str(tmp_path / "out"))
        finally:
            going_on.kill()
            going_on.wait(timeout=10)
        assert done.returncode == 0, done.stderr
        assert f"released {SHOWN}.obj: its run died before building it\n" in done.stdout
        assert _a_line_starts(done.stdout, f"skipped {SHOWN}2.obj: being prepared or printed "
                                           "as job "), done.stdout
        assert not _obeyed(done.stdout + done.stderr), done.stdout


class TestVerifysReport:
    """``verify``'s table names each print's job as escapes, its columns measured as shown."""

    def test_a_job_so_named(self, tmp_path: Path) -> None:
        from tests.integration.test_verify_command import _dashboard, _verify, sent_print

        with _dashboard(tmp_path, "--time-scale", "0") as dash:  # "bad *" ends in an error
            with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
                sent_print(store, tmp_path / "fleet", f"bad {HOSTILE}")
            done = _verify(tmp_path, dash)
        assert done.returncode == 0, done.stderr
        header, row, total = done.stdout.splitlines()
        # The print's name as the simulated printer kept it (ESC and BEL made spaces there;
        # the right-to-left override kept), shown as escapes.
        assert " [2Jx\\u202e PP-" in row and not _obeyed(done.stdout), done.stdout
        # The MESSAGE column starts where its header does: each cell measured as shown.
        assert row.index("Resin level too low") == header.index("MESSAGE"), done.stdout
        assert total.startswith("1 print checked: 1 print_error"), done.stdout


def run_after_a_left_build(
    folder: Path, printer: str, *, models: Sequence[Path] = ()
) -> tuple[Build, subprocess.CompletedProcess[str]]:
    """A real ``run`` over an inbox of ``models`` (none: empty) after an earlier run left a
    build waiting for ``printer`` without its saved .form (so it cannot be sent); the build
    and the run."""
    from preform_pipeline.executor.ledger import RUN_FIELD
    from preform_pipeline.printing import SendHolder

    path = folder / "jobs.sqlite3"
    with SqliteJobStore(path) as store:
        job = store.create_job(
            recipe=RECIPE.stem, source_path=str(MODEL), state=JobState.PROCESSING,
            fields={RUN_FIELD: SendHolder.local("run", os.getpid(), 0.0).to_json()})
        build = store.create_build(recipe=RECIPE.stem, job_ids=[job.id])
        for state in (JobState.PREPARING, JobState.PREPARED):
            store.transition_build(build.id, state, "an earlier run")
        store.transition_build(build.id, JobState.WAITING_FOR_PRINTER, "no printer free",
                               print_target={"names": [printer]})
    settings = folder / "settings.yaml"
    settings.write_text("servers: {count: 1}\ndispatch: {run_wait_s: 0.1}\n",
                        encoding="utf-8")
    empty = folder / "inbox"
    empty.mkdir()
    for model in models:
        shutil.copyfile(model, empty / model.name)
        os.utime(empty / model.name, (1e9, 1e9))  # complete: no longer being written
    return build, _cli(folder, "run", str(RECIPE), str(empty), "--store", str(path),
                       "--settings", str(settings), "--output", str(folder / "out"))


class TestRunsDispatchLines:
    """A build an earlier run left waiting for a printer so named: ``run``'s dispatch lines
    name the printer as escapes."""

    def test_the_waiting_lines(self, tmp_path: Path) -> None:
        build, done = run_after_a_left_build(tmp_path, HOSTILE)
        # Its send fails (the build has no saved .form here): exit 1, and a line that says so.
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"waiting since an earlier run: {build.job_key} for {SHOWN}\n" in done.stdout
        assert _a_line_starts(done.stdout, f"{build.job_key} not sent to {SHOWN}: "), done.stdout
        assert not _obeyed(done.stdout + done.stderr), done.stdout


class TestRunsRetentionLine:
    """The line saying what retention removed names the output folder as escapes."""

    def test_an_output_folder_so_named(self, tmp_path: Path, in_process: InProcess) -> None:
        out = tmp_path / f"o{HOSTILE}"
        old = out / "reports" / "run-old.json"
        old.parent.mkdir(parents=True)
        old.write_text("{}", encoding="utf-8")
        os.utime(old, (1e9, 1e9))
        settings = tmp_path / "settings.yaml"
        settings.write_text("run:\n  retention_days: 7\n", encoding="utf-8")
        (tmp_path / "inbox").mkdir()
        done = in_process(tmp_path, "run", str(RECIPE), str(tmp_path / "inbox"), "--dry-run",
                          "--settings", str(settings), "--output", str(out))
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0] == (
            f"retention: removed 1 file older than 7 days (0.0 MB) from {tmp_path}/o{SHOWN}: "
            "reports/run-old.json"), done.stdout
        assert not _obeyed(done.stdout + done.stderr), done.stdout


class TestRunsServersLine:
    """``servers started: ...`` names a remote server (its name is the settings') as
    escapes."""

    def test_a_remote_server_so_named(self, tmp_path: Path, in_process: InProcess) -> None:
        from preform_pipeline.simulator.testing import start_simulator

        settings = tmp_path / "settings.json"
        with start_simulator() as remote:  # a server on another machine, as far as run knows
            settings.write_text(json.dumps({"remotes": [{"url": remote.url, "name": HOSTILE}]}),
                                encoding="utf-8")
            done = in_process(tmp_path, "run", str(RECIPE), str(MODEL), "--dry-run",
                              "--settings", str(settings), "--output", str(tmp_path / "out"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"servers started: {SHOWN} (REMOTE, {remote.url})" in done.stdout.splitlines()
        assert not _obeyed(done.stdout + done.stderr), done.stdout
