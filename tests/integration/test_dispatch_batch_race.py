"""A batch and the dispatch loop choosing printers at the same moment never choose one printer
for two builds while another stands idle.

The daemon runs in a thread of the test process on two simulated PreFormServer subprocesses
that print to two simulated printers (real HTTP on 127.0.0.1, a real SQLite store). One case
is held for an operator's approval; approving it makes it a waiting build that the dispatch
loop sends. Another case's batch chooses a printer itself (``printer: auto``, nothing waiting
before it). The race is made certain at one explicit seam, the store the daemon is given:
its write that moves a build to ``print_sending`` (the printer is chosen; the print is not on
it yet, so the printer's own status still says it is free) waits there until the other side
has chosen too. Nothing sleeps: each hold waits on an event, bounded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.testing import (
    declare_fleet,
    fleet_jobs,
    pool_factory,
    running_daemon,
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.printing.approval import approve
from preform_pipeline.settings import Settings, load_settings
from preform_pipeline.store import Build, JobState, SqliteJobStore, extract_key

PRINTERS = ("Form4-RaceA", "Form4-RaceB")
#: Prints last minutes: a printer sent to stays busy until the test has ended.
SCALE = 1.0
TIMEOUT_S = 60.0
#: How long one side holds for the other at the seam: far longer than a loaded machine needs.
HOLD_S = 30.0


class _SendingSeam:
    """The daemon's store (a real SQLite store), with a hook on either side of each move of a
    build to ``print_sending``: the moment a printer chosen for it is about to be sent to."""

    def __init__(self, inner: SqliteJobStore) -> None:
        self.inner = inner
        self.before: Callable[[int], None] = lambda build_id: None
        self.after: Callable[[int], None] = lambda build_id: None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def transition_build(self, build_id: int, to_state: JobState, *args: Any,
                         **kwargs: Any) -> Build:
        if to_state is JobState.PRINT_SENDING:
            self.before(build_id)
        build = self.inner.transition_build(build_id, to_state, *args, **kwargs)
        if to_state is JobState.PRINT_SENDING:
            self.after(build_id)
        return build


def _settings(tmp_path: Path) -> Settings:
    held = write_recipe(tmp_path, name="held", printer="auto", per_build=1,
                        extra_steps=["save_form: {}", "screenshot: {}"], approval=True)
    direct = write_recipe(tmp_path, name="direct", printer="auto", per_build=1,
                          extra_steps=["save_form: {}"])
    path = write_hotfolder_settings(tmp_path, held, fleet_dir=tmp_path / "fleet", servers=2,
                                    hotfolders={"batching": {"window_s": 0.3}})
    data = json.loads(path.read_text(encoding="utf-8"))
    data["hotfolders"]["inboxes"].append(
        {"path": str(tmp_path / "direct"), "recipe": str(direct), "quiet_period_s": 0.5})
    path.write_text(json.dumps(data), encoding="utf-8")
    declare_fleet(path, PRINTERS, print_time_scale=SCALE,
                  sections={"dispatch": {"poll_interval_s": 0.2}})
    return load_settings(path, env={})


def _drop(inbox: Path, case: str, seed: int) -> None:
    (inbox / case).mkdir(parents=True)
    (inbox / case / "upper.stl").write_bytes(tetra_stl_bytes(seed))


def _held_build(store: SqliteJobStore) -> Build:
    wait_for(lambda: bool(store.list_builds(state=JobState.AWAITING_APPROVAL)), TIMEOUT_S,
             interval=0.05, what="the held case's build to wait for approval")
    (build,) = store.list_builds(state=JobState.AWAITING_APPROVAL)
    return build


def _printers_by_build(fleet: Path) -> dict[str, str]:
    return {str(extract_key(str(j["job_name"]))): str(j["printer"]) for j in fleet_jobs(fleet)}


@pytest.fixture
def race(tmp_path: Path) -> Iterator[tuple[_SendingSeam, HotFolderDaemon]]:
    settings = _settings(tmp_path)
    store = _SendingSeam(SqliteJobStore(settings.store.path))
    daemon = HotFolderDaemon(settings, store, pool_factory(settings.pool))  # type: ignore[arg-type]
    try:
        yield store, daemon
    finally:
        store.inner.close()


class TestABatchChoosingWhileDispatchSends:
    """Whichever side chooses first, the other takes the printer still free."""

    def test_a_waiting_build_dispatched_after_a_batch_chose_goes_to_the_other_printer(
        self, tmp_path: Path, race: tuple[_SendingSeam, HotFolderDaemon]
    ) -> None:
        store, daemon = race
        fleet = tmp_path / "fleet"
        dispatched = threading.Event()
        with capture_logs() as logs, running_daemon(daemon, timeout=TIMEOUT_S):
            _drop(tmp_path / "inbox", "C-1", 1)
            waiting = _held_build(store.inner)

            def batch_chose(build_id: int) -> None:
                if build_id == waiting.id:
                    dispatched.set()  # dispatch chose a printer for the waiting build
                elif not dispatched.is_set():
                    # The batch chose; its print is not sent. Now the build waits, and the
                    # dispatch loop chooses for it before this print reaches the printer.
                    approve(store.inner, waiting.id, "lab")
                    dispatched.wait(HOLD_S)

            store.before = batch_chose
            _drop(tmp_path / "direct", "C-2", 2)
            wait_for(lambda: len(fleet_jobs(fleet)) == 2, TIMEOUT_S, interval=0.05,
                     what="both prints")
        assert dispatched.is_set(), "the waiting build was not dispatched during the hold"
        by_build = _printers_by_build(fleet)
        direct = next(key for key in by_build if key != waiting.job_key)
        assert by_build == {direct: "Form4-RaceA", waiting.job_key: "Form4-RaceB"}, by_build
        claims = [(e["printer"], e["build"], e["by"]) for e in logs
                  if e["event"] == "printer_claimed"]
        assert claims == [("Form4-RaceA", direct, "run"),
                          ("Form4-RaceB", waiting.job_key, "dispatch")], claims
        [sent] = [e for e in logs if e["event"] == "dispatching"]
        assert (sent["job_key"], sent["printer"]) == (waiting.job_key, "Form4-RaceB")

    def test_a_batch_choosing_while_a_waiting_build_is_sent_takes_the_other_printer(
        self, tmp_path: Path, race: tuple[_SendingSeam, HotFolderDaemon]
    ) -> None:
        store, daemon = race
        fleet = tmp_path / "fleet"
        sending, chosen = threading.Event(), threading.Event()
        with capture_logs() as logs, running_daemon(daemon, timeout=TIMEOUT_S):
            _drop(tmp_path / "inbox", "C-1", 1)
            waiting = _held_build(store.inner)

            def dispatch_sending(build_id: int) -> None:
                if build_id == waiting.id:
                    # Dispatch chose and wrote print_sending; the print is not on the printer
                    # yet. The batch's build chooses now (nothing waits before it any more).
                    sending.set()
                    chosen.wait(HOLD_S)

            def batch_chose(build_id: int) -> None:
                if build_id != waiting.id:
                    chosen.set()

            store.after, store.before = dispatch_sending, batch_chose
            approve(store.inner, waiting.id, "lab")
            assert sending.wait(TIMEOUT_S), "the approved build was not dispatched"
            _drop(tmp_path / "direct", "C-2", 2)
            wait_for(lambda: len(fleet_jobs(fleet)) == 2, TIMEOUT_S, interval=0.05,
                     what="both prints")
        assert chosen.is_set(), "the batch did not choose while the waiting build was sent"
        by_build = _printers_by_build(fleet)
        direct = next(key for key in by_build if key != waiting.job_key)
        assert by_build == {waiting.job_key: "Form4-RaceA", direct: "Form4-RaceB"}, by_build
        claims = [(e["printer"], e["build"], e["by"]) for e in logs
                  if e["event"] == "printer_claimed"]
        assert claims == [("Form4-RaceA", waiting.job_key, "dispatch"),
                          ("Form4-RaceB", direct, "run")], claims
        # Each claim ends once its print was sent (in either order: both were sent at once).
        released = {(e["printer"], e["build"]) for e in logs
                    if e["event"] == "printer_released"}
        assert released == {("Form4-RaceA", waiting.job_key), ("Form4-RaceB", direct)}
