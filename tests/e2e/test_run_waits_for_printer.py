"""``run`` with ``printer: auto`` and no free printer: it waits, then leaves the build waiting.

Real subprocesses: the command line, its pool and simulator processes. The declared fleet is
one Form 4 that is busy while it prints (``simulator.print_time_scale``), so the second of two
one-model builds finds it busy. Within ``dispatch.run_wait_s`` the run waits and sends it;
past that the prepared build waits in the job store and the next run sends it once, from its
saved .form. Where a test's point is what is sent after the wait, not the wait itself, the
test ends the print (:func:`~tests.fleet_prints.end_print`, as the printer finishing it) rather
than sleeping through it.
"""

from __future__ import annotations

import itertools
import json
import queue
import re
import signal
import subprocess
import time
from pathlib import Path

from run_e2e_support import command, environment, fleet_jobs, run_cli, write_recipe

from preform_pipeline.geometry import write_stl
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.testing import pool_factory, running_daemon, wait_for
from preform_pipeline.printing import FleetFolderLocator
from preform_pipeline.settings import load_settings
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.store import Build, JobState, SqliteJobStore
from tests.e2e.test_run_sigint import WAIT_S, _lines
from tests.fleet_prints import end_print

PRINTER = "Form4-Only"
STEPS = """\
steps:
  - save_form
  - print:
      printer: auto
batching:
  max_models_per_build: 1
"""


def _settings(
    folder: Path, *, scale: float, run_wait_s: float, file_log_level: str | None = None
) -> Path:
    path = folder / "settings.json"
    path.write_text(json.dumps({
        **({"logging": {"level": file_log_level}} if file_log_level else {}),
        "servers": {"count": 2, "base_port": 0, "startup_timeout_s": 30, "stop_timeout_s": 2,
                    "health_interval_s": 0, "recycle_after_builds": 0,
                    "extra_args": ["--fleet-dir", str(folder / "fleet")]},
        "store": {"path": str(folder / "jobs.db")},
        "hotfolders": {"inboxes": [{"path": str(folder / "hot"),
                                    "recipe": str(folder / "recipe.yaml")}]},
        "simulator": {"print_time_scale": scale, "fleet": [
            {"name": PRINTER, "machine_type": "FORM-4-0", "material": "FLGPGR05"}]},
        "dispatch": {"run_wait_s": run_wait_s, "poll_interval_s": 0.2},
    }), encoding="utf-8")
    return path


def _run_ending_the_print_once_it_reads_printers(
    folder: Path, argv: list[str]
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]]]:
    """``argv`` run with a log file; the printer's print ended (:func:`end_print`) once the
    run's first read of the printers (``GET /devices/``, its pass over the builds earlier
    runs left waiting) is in that log. The finished run, and its log's events."""
    asked = folder / "ends-the-print.jsonl"

    def events() -> list[dict[str, object]]:
        text = asked.read_text(encoding="utf-8") if asked.is_file() else ""
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

    out, err = folder / "ends-the-print.out", folder / "ends-the-print.err"
    with out.open("w", encoding="utf-8") as stdout, err.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen([*argv, "--log-file", str(asked)], stdout=stdout,
                                   stderr=stderr, env=environment(), cwd=folder)
        try:
            wait_for(lambda: process.poll() is not None
                     or any(e.get("path") == "/devices/" for e in events()),
                     WAIT_S, what="the run's first read of the printers")
            assert end_print(folder / "fleet") == PRINTER
            process.wait(timeout=WAIT_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    done = subprocess.CompletedProcess(argv, process.returncode,
                                       out.read_text(encoding="utf-8"),
                                       err.read_text(encoding="utf-8"))
    return done, events()


def _models(folder: Path) -> Path:
    inbox = folder / "inbox"
    for name in ("a", "b"):
        (inbox).mkdir(parents=True, exist_ok=True)
        write_stl(inbox / f"{name}.stl", box_triangles((0.0, 0.0, 0.0), (20.0, 20.0, 20.0)))
    return inbox


def _assert_report_names_the_print(waiting: Build, job_id: str) -> None:
    """The build's report beside its .form says where and as what job it printed, and the
    print among its steps, as a build printed at once has them."""
    assert waiting.form_path is not None
    report = json.loads(waiting.form_path.with_suffix(".json").read_text(encoding="utf-8"))
    assert report["job_key"] == waiting.job_key
    assert (report["printer"], report["job_id"]) == (PRINTER, job_id)
    assert report["steps_done"] == ["create_scene", "import_models", "save_form", "print"]


def _one_left_waiting(
    folder: Path, *, scale: float, run_wait_s: float
) -> tuple[list[str], Path, Build]:
    """A first run of two models whose second build, past ``run_wait_s``, is left waiting
    in the store; the run's command line, its inbox and the waiting build."""
    inbox = _models(folder)
    settings = _settings(folder, scale=scale, run_wait_s=run_wait_s)
    argv = command(folder, write_recipe(folder, STEPS), [inbox], "--settings", str(settings),
                   "--store", str(folder / "jobs.db"))
    first = run_cli(folder, argv)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    with SqliteJobStore(folder / "jobs.db") as store:
        [waiting] = store.list_builds(state=JobState.WAITING_FOR_PRINTER)
    return argv, inbox, waiting


class TestRunWaitsForAPrinter:
    """No free printer never fails a case: the run waits, or the store does."""

    def test_the_second_build_waits_and_goes_out_when_the_printer_is_free(
        self, tmp_path: Path
    ) -> None:
        recipe = write_recipe(tmp_path, STEPS)
        settings = _settings(tmp_path, scale=0.002, run_wait_s=60)  # a print takes ~3.4 s
        run = run_cli(tmp_path, command(tmp_path, recipe, [_models(tmp_path)], "--settings",
                                        str(settings), "--store", str(tmp_path / "jobs.db")))
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "no free printer; waiting up to 1 min for any ready FORM-4-0 FLGPGR05 " \
            "printer (auto)" in run.stdout
        jobs = fleet_jobs(tmp_path)
        assert [j["printer"] for j in jobs] == [PRINTER, PRINTER]
        spans = sorted((j["started_at"], j["ends_at"]) for j in jobs)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
        assert len(run.events_named("printer_wait_started")) == 1
        assert [e["printer"] for e in run.events_named("printer_wait_ended")] == [PRINTER]

    def test_past_the_bound_the_build_waits_in_the_store_and_the_next_run_sends_it(
        self, tmp_path: Path
    ) -> None:
        recipe = write_recipe(tmp_path, STEPS)
        store_path = tmp_path / "jobs.db"
        inbox = _models(tmp_path)
        # A print takes ~70 s: the printer is busy still when the next run's pass begins.
        settings = _settings(tmp_path, scale=0.04, run_wait_s=0.5)
        argv = command(tmp_path, recipe, [inbox], "--settings", str(settings),
                       "--store", str(store_path))
        first = run_cli(tmp_path, argv)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert "its saved .form waits in the job store" in first.stdout
        assert len(first.events_named("printer_wait_bound_passed")) == 1
        assert len(fleet_jobs(tmp_path)) == 1
        with SqliteJobStore(store_path) as store:
            [waiting] = store.list_builds(state=JobState.WAITING_FOR_PRINTER)
            assert waiting.form_path is not None and waiting.form_path.is_file()
        # The JSON report says it as the console does: that build waits, one was sent, and
        # its tally is the exit line's count.
        assert [(b["job_key"], b["waiting"], b["held"]) for b in first.builds()
                if b["waiting"] or b["held"]] == [(waiting.job_key, True, False)]
        assert first.report["tally"] == {"builds": 2, "succeeded": 1, "held": 0,
                                         "waiting": 1, "failed": 0, "print_unconfirmed": 0,
                                         "cancelled": 0, "split": 0,
                                         "print_failed": 0}
        assert first.report["counts"] == {"succeeded": 2}
        assert first.stdout.splitlines()[-1] == (
            "exit 0: 1 of 2 builds succeeded, 1 waiting for a free printer")

        # The next run's pass finds the printer busy and waits (within its bound) for it:
        # the print is ended once the pass's first read of the printers is in its log (the
        # api_request debug events), not slept through; the pass then sends the build from
        # its saved .form. A pass that did not wait would leave it waiting (review rv46).
        _settings(tmp_path, scale=0.04, run_wait_s=60, file_log_level="DEBUG")
        second, log = _run_ending_the_print_once_it_reads_printers(tmp_path, argv)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert f"waiting since an earlier run: {waiting.job_key}" in second.stdout
        assert f"sent {waiting.job_key} to {PRINTER} from its saved .form" in second.stdout
        reads = [e["event"] for e in log if e["event"] == "dispatching"
                 or e.get("path") == "/devices/"]
        assert reads.index("dispatching") >= 2, reads  # busy at the first read: it waited
        # Both models were taken by the first run: said once, with both counted (whether
        # each reads as printed or still in flight depends on when its print is sent).
        assert "skipped 2 of 2 models (" in second.stdout
        jobs = fleet_jobs(tmp_path)
        assert [j["printer"] for j in jobs] == [PRINTER, PRINTER]
        assert sum(waiting.job_key in j["job_name"] for j in jobs) == 1
        with SqliteJobStore(store_path) as store:
            build = store.get_build(waiting.id)
            history = [t.to_state for t in store.build_history(build.id)]
        assert build.state is JobState.PRINT_SENT
        assert history.count(JobState.PREPARING) == 1, history
        # Its report beside the .form, written before it waited, names the print now.
        (sent,) = (j for j in jobs if waiting.job_key in j["job_name"])
        _assert_report_names_the_print(waiting, sent["job_id"])

        third = run_cli(tmp_path, argv)  # nothing waits any more: nothing is sent again
        assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
        assert len(fleet_jobs(tmp_path)) == 2

    def test_watch_on_the_same_store_sends_a_build_a_run_left_waiting(
        self, tmp_path: Path
    ) -> None:
        recipe = write_recipe(tmp_path, STEPS)
        store_path = tmp_path / "jobs.db"
        settings = _settings(tmp_path, scale=0.004, run_wait_s=0.5)
        first = run_cli(tmp_path, command(tmp_path, recipe, [_models(tmp_path)], "--settings",
                                          str(settings), "--store", str(store_path)))
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        with SqliteJobStore(store_path) as store:
            [waiting] = store.list_builds(state=JobState.WAITING_FOR_PRINTER)
        # The printer finishes its print now: watch sending a run's waiting build is what is
        # tested here (its dispatch loop waiting for a printer is test_dispatch_daemon's).
        assert end_print(tmp_path / "fleet") == PRINTER

        loaded = load_settings(settings, env={})
        store = SqliteJobStore(store_path)

        daemon = HotFolderDaemon(loaded, store, pool_factory(loaded.pool),
                                 print_lookup=FleetFolderLocator(tmp_path / "fleet"))
        with running_daemon(daemon):
            wait_for(lambda: store.get_build(waiting.id).state is not
                     JobState.WAITING_FOR_PRINTER, 60, interval=0.2,
                     what="the waiting build to be sent by watch")
        build = store.get_build(waiting.id)
        history = [t.to_state for t in store.build_history(build.id)]
        store.close()
        assert build.state is JobState.PRINT_SENT, build.state
        assert history.count(JobState.PREPARING) == 1, history
        jobs = fleet_jobs(tmp_path)
        assert sum(waiting.job_key in j["job_name"] for j in jobs) == 1 and len(jobs) == 2
        (sent,) = (j for j in jobs if waiting.job_key in j["job_name"])
        _assert_report_names_the_print(waiting, sent["job_id"])

    def test_a_build_still_waiting_after_the_next_runs_bound_is_named_in_a_counted_line(
        self, tmp_path: Path
    ) -> None:
        # A print takes ~70 s: the printer stays busy through both runs.
        argv, _, waiting = _one_left_waiting(tmp_path, scale=0.04, run_wait_s=0.5)

        asked = tmp_path / "second.jsonl"
        second = run_cli(tmp_path, [*argv, "--log-file", str(asked)])
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert (f"1 build still waits for a printer: {waiting.job_key} (the next run or "
                "watch sends it)") in second.stdout
        events = [json.loads(line) for line in asked.read_text(encoding="utf-8").splitlines()]
        assert [e["still_waiting"] for e in events if e["event"] == "left_waiting_pass"] == [1]
        assert len(fleet_jobs(tmp_path)) == 1
        # A build that still waits is no news (the store holds it): no report of this run.
        assert second.report == {}


class TestARunWhoseOnlyWorkIsALeftBuildItSends:
    """A run over an emptied inbox whose only work is a build an earlier run left waiting:
    it says it sent it, and to which printer, and exits 0 (cron mails nothing)."""

    def test_it_says_what_it_sent_and_exits_0(self, tmp_path: Path) -> None:
        # A print takes ~7 s, ended by the test once the run left the build waiting.
        argv, inbox, waiting = _one_left_waiting(tmp_path, scale=0.004, run_wait_s=0.1)
        for model in inbox.iterdir():  # taken from the inbox, as a print shop does
            model.unlink()
        # The printer finishes its print: what the run says of the build it sends is tested
        # here, not how long it waits for the printer.
        assert end_print(tmp_path / "fleet") == PRINTER

        _settings(tmp_path, scale=0.002, run_wait_s=60)
        second = run_cli(tmp_path, argv)

        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        lines = second.stdout.splitlines()
        assert f"sent {waiting.job_key} to {PRINTER} from its saved .form" in lines
        assert any(line.startswith("servers started: ") for line in lines), second.stdout
        # Its server was started for the send: not "nothing to prepare, no server started".
        assert [line for line in lines if "to prepare" in line] == [
            f"run {second.report['run_id']}: nothing new to prepare"], second.stdout
        assert lines[-1] == (f"exit 0: 1 build left waiting by an earlier run sent "
                             f"({waiting.job_key} to {PRINTER}), no new builds")
        assert second.report["ok"] is True
        assert sum(waiting.job_key in j["job_name"] for j in fleet_jobs(tmp_path)) == 1


class TestARunStoppedInItsSends:
    """A run stopped (SIGTERM) while it sends what earlier runs left waiting, after one build
    went out, keeps its log: the send is in it (review of session 43: the pass is counted as
    begun before it runs, so an interrupt midway keeps the record; nothing tested it)."""

    def test_its_log_keeps_the_build_it_sent(self, tmp_path: Path) -> None:
        inbox = _models(tmp_path)
        write_stl(inbox / "c.stl", box_triangles((0.0, 0.0, 0.0), (20.0, 20.0, 20.0)))
        settings = _settings(tmp_path, scale=0.04, run_wait_s=0.5)  # a print takes ~70 s
        argv = command(tmp_path, write_recipe(tmp_path, STEPS), [inbox], "--settings",
                       str(settings), "--store", str(tmp_path / "jobs.db"))
        first = run_cli(tmp_path, argv)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        for model in inbox.iterdir():
            model.unlink()
        assert end_print(tmp_path / "fleet") == PRINTER  # one of the two waiting can go out
        _settings(tmp_path, scale=0.04, run_wait_s=60)  # the other waits: the pass goes on
        logs = tmp_path / "out" / "logs"
        before = set(logs.iterdir())

        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, encoding="utf-8", env=environment(),
                                   cwd=tmp_path)
        lines: queue.Queue[str | None] = queue.Queue()
        _lines(process.stdout, lines)
        _lines(process.stderr, queue.Queue())  # read, so a full pipe never holds the run
        try:
            deadline = time.monotonic() + WAIT_S
            seen: list[str] = []
            while not seen or not seen[-1].startswith("sent "):
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                assert line is not None, f"the run ended early: {seen}"
                seen.append(line)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=WAIT_S) == 143
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        [log] = set(logs.iterdir()) - before
        events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        sent = [e["job_key"] for e in events
                if e["event"] == "build_transition" and e["to_state"] == "print_sent"]
        assert [f"sent {key} to {PRINTER} from its saved .form" for key in sent] == [seen[-1]]


class TestItsLinesNameTheBuildAsEscapes:
    """The waiting lines name the build, whose name is its recipe's (here its file's), as
    escapes."""

    def test_a_recipe_file_so_named(self, tmp_path: Path) -> None:
        from tests.integration.test_cli_stdout_escaped import HOSTILE, SHOWN

        written = write_recipe(tmp_path, STEPS)
        recipe = written.with_name(f"{HOSTILE}.yaml")  # no name: the file's is the builds'
        recipe.write_text("".join(line for line in written.read_text(encoding="utf-8")
                                  .splitlines(keepends=True) if not line.startswith("name:")),
                          encoding="utf-8")
        settings = _settings(tmp_path, scale=0.004, run_wait_s=0.5)  # a print takes ~7 s
        run = run_cli(tmp_path, command(tmp_path, recipe, [_models(tmp_path)], "--settings",
                                        str(settings), "--store", str(tmp_path / "jobs.db")))
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        waiting = [line for line in run.stdout.splitlines() if "no free printer" in line]
        assert len(waiting) == 2, run.stdout
        assert re.fullmatch(rf"{re.escape(SHOWN)}-00\d: no free printer; waiting up to .+",
                            waiting[0]), waiting
        assert re.fullmatch(rf"{re.escape(SHOWN)}-00\d: still no free printer after .+",
                            waiting[1]), waiting
        assert not {"\x1b", "\x07", "\u202e"} & set(run.stdout), run.stdout
