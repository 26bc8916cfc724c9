"""What the command line says, said once and true: defects a newcomer met in session 25.

As a user types the commands, with no settings from the environment and the test's own data
folder (so its default store): real subprocesses of ``python -m preform_pipeline`` for the
runs and one refusal of each kind (a known error, a usage error), and the command line in
the test's process for the other refusals, which end before anything starts
(``tests/command_line.py``).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from preform_pipeline.settings.store import REHEARSAL_STORE_FILENAME
from tests.command_line import InProcess
from tests.command_line import in_a_process as _cli

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "engineering-grey-form4.yaml"
#: Units not stated, and only the millimetre reading fits: guessed, with a warning.
GUESSED = REPO_ROOT / "sample_models" / "parts" / "gear.obj"


class TestARehearsalNamesItsStore:
    """A simulated run into the rehearsal store names the ``jobs`` command that shows it."""

    def test_the_closing_line_names_a_command_that_lists_the_runs_jobs(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        done = _cli(tmp_path, "run", str(RECIPE), str(GUESSED), "--output", str(tmp_path / "o"))
        assert done.returncode == 0, done.stderr
        (line,) = [s for s in done.stdout.splitlines() if REHEARSAL_STORE_FILENAME in s]
        command = line.split("(`", 1)[1].split("`", 1)[0]
        assert command.startswith("preform-pipeline jobs --store ")
        assert command.endswith(REHEARSAL_STORE_FILENAME)
        # The listing, and the repeat that takes no model, start no server: in this process.
        listed = in_process(tmp_path, *command.split()[1:])
        assert listed.returncode == 0, listed.stderr
        assert "gear.obj" in listed.stdout and listed.stdout.rstrip().endswith("1 job")
        # The repeat takes no model: it says where the skipped models' jobs are, not that it
        # recorded any.
        again = in_process(tmp_path, "run", str(RECIPE), str(GUESSED),
                           "--output", str(tmp_path / "o"))
        assert again.returncode == 0, again.stderr
        (line,) = [s for s in again.stdout.splitlines() if REHEARSAL_STORE_FILENAME in s]
        assert line == (f"no new job recorded: these models' earlier jobs are in the rehearsal "
                        f"store {command.split()[-1]} (`{command}` shows them)")

    def test_a_run_that_took_no_model_says_it_recorded_nothing(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        """A missing folder was said to have its "jobs recorded in the rehearsal store"."""
        done = in_process(tmp_path, "run", str(RECIPE), str(tmp_path / "nothere"),
                          "--output", str(tmp_path / "o"))
        assert done.returncode == 1, done.stderr
        said = [s for s in done.stdout.splitlines() if "rehearsal store" in s]
        assert said == ["no job recorded in the rehearsal store: every model was rejected "
                        "before it became a job"]


class TestAGuessOfUnitsIsSaidOnce:
    """``run`` says each guessed unit in one warning line; the log file keeps the event."""

    def test_one_warning_line_and_no_log_line_on_the_console(self, tmp_path: Path) -> None:
        log = tmp_path / "run.jsonl"
        done = _cli(tmp_path, "run", str(RECIPE), str(GUESSED), "--dry-run",
                    "--output", str(tmp_path / "out"), "--log-file", str(log))
        assert done.returncode == 0, done.stderr
        warnings = [line for line in done.stdout.splitlines() if "units not stated" in line]
        assert warnings == [line for line in warnings if line.startswith("warning: gear.obj: ")]
        assert len(warnings) == 1
        assert "units_guessed" not in done.stderr
        events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        guessed = [e for e in events if e["event"] == "units_guessed"]
        assert [(e["path"], e["units"]) for e in guessed] == [(str(GUESSED), "MILLIMETERS")]


class TestAnUnreadableModelIsSaidOnce:
    """``run`` says an unreadable model in its ``rejected`` line only; a repeat passes over it."""

    def test_no_reader_warning_on_the_console_first_or_on_a_repeat(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        """The reader's ``model_unreadable`` warning said the file again on stderr, also on
        every repeat that passed over it (found in session 36's trial)."""
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        bad = inbox / "bad.stl"
        # Ends its solid, so it is complete (taken at once), but a facet has two vertices.
        bad.write_text("solid bad\n facet normal 0 0 1\n  outer loop\n   vertex 0 0 0\n"
                       "   vertex 1 0 0\n  endloop\n endfacet\nendsolid bad\n",
                       encoding="utf-8")
        log = tmp_path / "run.jsonl"
        out = str(tmp_path / "out")
        first = _cli(tmp_path, "run", str(RECIPE), "inbox", "--output", out,
                     "--log-file", str(log))
        assert first.returncode == 1, first.stderr
        assert [s for s in first.stdout.splitlines() if "bad.stl" in s] == [
            f"  {bad.relative_to(tmp_path)}: line 2: malformed facet (expected 'facet normal "
            "x y z', 'outer loop', three 'vertex x y z' lines, 'endloop', 'endfacet') (the "
            "ASCII STL is damaged; export it again, preferably as binary STL)"]
        assert "bad.stl" not in first.stderr
        events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        assert [e["path"] for e in events if e["event"] == "model_unreadable"] == [
            str(bad.relative_to(tmp_path))]
        # The repeat reads no model and starts no server: in this process, whose standard
        # streams are captured at their descriptors (a warning written anywhere is seen).
        again = in_process(tmp_path, "run", str(RECIPE), "inbox", "--output", out)
        assert again.returncode == 0, again.stderr
        assert [s for s in again.stdout.splitlines() if "bad.stl" in s] == [
            f"passed over 1 file rejected by an earlier run and unchanged since: "
            f"{bad.relative_to(tmp_path)} (-v says why; a changed file is looked at again)"]
        assert again.stderr == ""


class TestASettingsValueError:
    """A value YAML cannot build is not called a syntax error; a syntax error still is."""

    # One command line a test (see TestWhatIsNotAJobStore).
    def test_the_hint_fits_a_value_error(self, tmp_path: Path, in_process: InProcess) -> None:
        value = tmp_path / "value.yaml"
        value.write_text("servers:\n  count: 2024-02-30\n", encoding="utf-8")
        bad_value = in_process(tmp_path, "jobs", "--settings", str(value))
        assert bad_value.returncode == 1
        assert bad_value.stderr.splitlines()[1] == (
            f"{value}:2:10: $: '2024-02-30' cannot be read as a date (day is out of range for "
            "month); quote it if it is meant as text (correct the value there; "
            "docs/settings.md shows what each setting takes)")
        assert "YAML syntax" not in bad_value.stderr

    def test_the_hint_fits_a_syntax_error(self, tmp_path: Path, in_process: InProcess) -> None:
        syntax = tmp_path / "syntax.yaml"
        syntax.write_text("servers:\n  count: [1\n", encoding="utf-8")
        bad_syntax = in_process(tmp_path, "jobs", "--settings", str(syntax))
        assert bad_syntax.returncode == 1
        assert bad_syntax.stderr.rstrip().endswith(
            "(fix the YAML syntax there; docs/settings.md shows the format)")


class TestWhatIsNotAJobStore:
    """A device, a pipe or a folder named as the store is said to be no store, and why."""

    # One command line a test in a real process (each start imports most of the package,
    # about 1.3 s of CPU, which a loaded machine stretched to up to 68 s, session 30), the
    # device's in the test's process.
    @pytest.mark.parametrize("kind", ["device", "pipe"])
    def test_a_device_or_a_pipe_is_not_a_regular_file(
        self, tmp_path: Path, in_process: InProcess, kind: str
    ) -> None:
        store = os.devnull
        if kind == "pipe":  # POSIX-specific: a named pipe
            store = str(tmp_path / "pipe")
            os.mkfifo(store)
        # The pipe in a real process: a store that opened it would wait in open() for a
        # writer, which no signal in the test's process breaks; a process is killed at its
        # time limit.
        done = (in_process if kind == "device" else _cli)(tmp_path, "jobs", "--store", store)
        assert done.returncode == 1, done.stderr
        assert done.stderr == (
            f"error: {store}: is not a job store: not a regular file (a device, pipe or "
            "socket) (name the job store's file (--store, store.path or "
            "PREFORM_PIPELINE_STORE_PATH))\n")

    def test_a_folder_is_not_a_store(self, tmp_path: Path) -> None:
        folder = tmp_path / "stores"
        folder.mkdir()
        done = _cli(tmp_path, "jobs", "--store", str(folder), "show", "3")
        assert done.returncode == 1
        assert done.stderr == (
            f"error: {folder}: is a folder, not a job store (name the store's file itself "
            "(--store, store.path or PREFORM_PIPELINE_STORE_PATH), e.g. "
            f"{folder / 'jobs.sqlite3'})\n")
        assert list(folder.iterdir()) == []


class TestTooManyArgumentsToASubcommand:
    """An extra argument is refused with the usage of the subcommand typed, not the top's."""

    def test_jobs_retry_with_two_jobs_shows_its_own_usage(self, tmp_path: Path) -> None:
        done = _cli(tmp_path, "jobs", "retry", "A", "B")
        assert done.returncode == 2
        lines = done.stderr.splitlines()
        assert lines[0].startswith("usage: preform-pipeline jobs retry ")
        assert lines[-1] == "preform-pipeline jobs retry: error: unrecognized arguments: B"

    def test_plan_with_an_unknown_option_shows_plans_usage(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        done = in_process(tmp_path, "plan", str(RECIPE), str(GUESSED), "--bogus")
        assert done.returncode == 2
        assert done.stderr.startswith("usage: preform-pipeline plan ")
        assert done.stderr.endswith("preform-pipeline plan: error: unrecognized arguments: "
                                    "--bogus\n")


class TestAnUnreachableServer:
    """``validate --server`` to a server that is not there says so once, with what helps."""

    def test_one_note_and_no_log_warnings(self, tmp_path: Path, in_process: InProcess) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        done = in_process(tmp_path, "validate", "--server", url, "--server-timeout", "2",
                          str(RECIPE))
        assert done.returncode == 0, done.stderr
        (line,) = done.stderr.splitlines()
        assert line.startswith(f"note: using the shipped catalogue (server {url} not usable: ")
        assert line.endswith("; machines and materials were not checked against that server "
                             "(check that PreFormServer or the simulator runs at that address, "
                             "or leave out --server)")


    def test_plan_says_the_print_targets_were_checked_against_something_else(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        done = in_process(tmp_path, "plan", str(RECIPE), str(GUESSED), "--server", url)
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines() == [
            f"note: {url} did not answer with its devices; print targets were checked "
            "against the default simulated fleet (check that PreFormServer or the simulator "
            "runs at that address, or leave out --server)"]


class TestAnOutputFolderThatCannotBeMade:
    """An output folder the system refuses to make is an unusable path, named; no crash."""

    def test_a_name_too_long_for_the_file_system(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        output = tmp_path / ("o" * 300)
        done = in_process(tmp_path, "run", str(RECIPE), str(GUESSED), "--output", str(output))
        assert done.returncode == 1, done.stderr
        assert "unexpected failure" not in done.stderr
        # The console shortens a message this long and names the file holding all of it.
        full = Path(done.stderr.rsplit("(full message in ", 1)[1].rstrip().removesuffix(")"))
        assert full.read_text(encoding="utf-8").strip() == (
            f"output folder {output}: cannot be used (File name too long) (choose another "
            "--output (or fix the folder itself))")

    def test_a_folder_on_a_pseudo_file_system(self, tmp_path: Path, in_process: InProcess) -> None:
        # Linux-specific (/proc). As root, os.access grants /proc and the mkdir is refused all
        # the same; as another user the check refuses it first: the same error either way.
        done = in_process(tmp_path, "run", str(RECIPE), str(GUESSED), "--output", "/proc/pp-output")
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("error: output folder /proc/pp-output: cannot be created")
        assert "unexpected failure" not in done.stderr


class TestAMissingFpsFile:
    """``validate`` and ``plan`` report a scene's missing ``fps_file`` at its line."""

    def test_it_is_a_problem_at_its_line_and_column(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        recipe = tmp_path / "fps.yaml"
        recipe.write_text("scene:\n  machine_type: FORM-4-0\n  fps_file: grey.fps\n"
                          "steps:\n  - auto_orient\n", encoding="utf-8")
        problem = (f"{recipe}:3:13: $.scene.fps_file: file not found: {tmp_path / 'grey.fps'} "
                   "(a relative path starts in the folder of the recipe that names it)")
        validated = in_process(tmp_path, "validate", str(recipe))
        planned = in_process(tmp_path, "plan", str(recipe), str(GUESSED))
        assert (validated.returncode, planned.returncode) == (1, 1)
        assert validated.stdout.splitlines()[0] == problem
        assert planned.stderr.splitlines()[0] == problem
        (tmp_path / "grey.fps").write_text("{}\n", encoding="utf-8")
        assert in_process(tmp_path, "validate", str(recipe)).returncode == 0


class TestAStoreUrlOnTheCommandLine:
    """``run --store URL`` and ``verify --store URL`` go to that database, never to a file
    named after the URL (a Path folds its ``//``)."""

    def test_an_unreachable_database_is_said_and_no_file_is_made(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            url = f"postgresql://pp@127.0.0.1:{sock.getsockname()[1]}/jobs"
        ran = in_process(tmp_path, "run", str(RECIPE), str(GUESSED), "--store", url,
                         "--output", str(tmp_path / "out"))
        verified = in_process(tmp_path, "verify", "--store", url)
        for done in (ran, verified):
            assert done.returncode == 1, done.stdout
            assert done.stderr.startswith(
                f"error: {url}: cannot reach the PostgreSQL job store while connecting: ")
        assert "nothing was run" in ran.stderr
        # Nor the output folder made for the refused run, nor a log in it (session 43).
        assert list(tmp_path.iterdir()) == []


class TestATimeoutThatIsNoTime:
    """A timeout of 0 s or less is refused as a usage error naming the option, no crash."""

    @pytest.mark.parametrize("seconds", ["-5", "0", "nan", "abc"])
    def test_run_step_timeout_and_validate_server_timeout(
        self, tmp_path: Path, in_process: InProcess, seconds: str
    ) -> None:
        for argv, command in (
            (("run", str(RECIPE), str(GUESSED), "--dry-run", "--output", str(tmp_path / "o"),
              "--step-timeout", seconds), "run"),
            (("validate", "--server", "http://127.0.0.1:9", "--server-timeout", seconds,
              str(RECIPE)), "validate"),
        ):
            done = in_process(tmp_path, *argv)
            assert done.returncode == 2, done.stderr
            option = "--step-timeout" if command == "run" else "--server-timeout"
            assert done.stderr.splitlines()[-1].startswith(
                f"preform-pipeline {command}: error: argument {option}: '{seconds}' ")
        assert not (tmp_path / "o").exists()


class TestAPortOutOfRange:
    """``serve --port`` beyond 65535 (or below 0) is a usage error: no thread's traceback,
    no question whether the port is taken."""

    @pytest.mark.parametrize("port", ["70000", "-1"])
    def test_it_is_refused_before_anything_starts(
        self, tmp_path: Path, in_process: InProcess, port: str
    ) -> None:
        settings = tmp_path / "settings.yaml"
        settings.write_text(f"store: {{path: {tmp_path / 'jobs.sqlite3'}}}\n", encoding="utf-8")
        done = in_process(tmp_path, "serve", str(settings), "--port", port)
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines()[-1] == (
            f"preform-pipeline serve: error: argument --port: {port} is not a port: ports go "
            "from 1 to 65535 (0: any free port)")
        assert "Traceback" not in done.stderr


class TestNoAttempts:
    """``run --max-attempts 0`` is refused as ``--servers 0`` is, not quietly read as 1."""

    def test_zero_attempts_are_refused_before_anything_runs(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        done = in_process(tmp_path, "run", str(RECIPE), str(GUESSED), "--max-attempts", "0",
                          "--output", str(tmp_path / "o"))
        assert done.returncode == 1
        assert done.stderr == "error: --max-attempts must be 1 or more\n"
        assert done.stdout == ""
        assert not (tmp_path / "o").exists()


class TestARecipeWhereSettingsBelong:
    """A recipe named where a settings file belongs is said to be a recipe, once."""

    def test_watch_says_it_is_a_recipe(self, tmp_path: Path, in_process: InProcess) -> None:
        done = in_process(tmp_path, "watch", str(RECIPE), "--once")
        assert done.returncode == 1
        assert done.stderr.splitlines()[1:] == [
            f"{RECIPE}:3:1: $: has `steps:`: this is a recipe, not a settings file (name a "
            "settings file here; its hotfolders: inboxes name their recipes "
            "(docs/settings.md); `preform-pipeline validate RECIPE` checks a recipe)"]
