"""The daemon's dispatch loop keeps the printer claim of the waiting build it sends alive
through every phase of the send (a real daemon on a real SQLite store whose clock is a manual
one, the real sender, an in-process simulator serving the Local API; each phase's time passes
on the clock at a seam inside it, as in ``tests/unit/dispatch/test_dispatch_sender_claims.py``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import RunnerSavingForms, Script, make_daemon

from preform_pipeline.clock import ManualClock
from preform_pipeline.hotfolder.testing import wait_for, write_recipe
from preform_pipeline.settings.dispatch import DispatchSettings
from preform_pipeline.simulator.fleet import FLEET_FORMAT
from preform_pipeline.store import SqliteJobStore
from tests.unit.dispatch.test_dispatch_sender_claims import (
    _PhasesTakeTime,
    _printed,
    _Rival,
    _saved_form,
    _SlowPool,
    _waiting,
)
from tests.unit.executor.executor_support import SimFarm

PRINTER = "Bench-A"
WAIT_S = 30.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[SqliteJobStore]:
    with SqliteJobStore(tmp_path / "jobs.sqlite3", clock=clock) as opened:
        yield opened


@pytest.fixture
def rival(store: SqliteJobStore) -> _Rival:
    """Another holder (a ``run`` beside the daemon) trying to claim the one printer."""
    rival = _Rival(store)
    rival.printer = PRINTER
    return rival


@pytest.fixture
def farm(tmp_path: Path, clock: ManualClock, rival: _Rival) -> Iterator[SimFarm]:
    """One in-process simulator with one free Form 4 with Grey resin; the load and the print
    each take a phase's time on the clock, and another holder tries to claim the printer."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "printers.json").write_text(json.dumps({
        "format": FLEET_FORMAT, "version": 1, "groups": [], "printers": [
            {"serial": PRINTER, "machine_type_id": "FORM-4-0", "product_name": "Form 4",
             "ip_address": "192.0.2.40", "material_code": "FLGPGR05",
             "ready_to_print_now": True}],
    }), encoding="utf-8")
    simulators = SimFarm(tmp_path)
    simulators.add(_PhasesTakeTime(clock, rival))
    yield simulators
    simulators.close()


class TestTheDaemonsDispatchLoop:
    """No other holder gets the printer while the daemon sends a waiting build to it."""

    def test_the_claim_holds_through_the_server_wait_the_load_and_the_print(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock, farm: SimFarm,
        rival: _Rival,
    ) -> None:
        url = farm.servers[0].url
        build = _waiting(store, _saved_form(url, tmp_path, "left"), "left", by_run=True)
        pool = _SlowPool([url], clock, rival)
        daemon = make_daemon(tmp_path, store, Script(fleet_dir=farm.fleet_dir),
                             write_recipe(tmp_path, printer="auto"), runner=RunnerSavingForms,
                             pool=lambda: pool, dispatch=DispatchSettings(poll_interval_s=0.1))
        running = threading.Thread(target=daemon.run, name="daemon", daemon=True)
        running.start()
        try:
            wait_for(lambda: bool(_printed(farm)), WAIT_S, what="the waiting build sent")
        finally:
            daemon.stop()
            running.join(WAIT_S)
        assert _printed(farm) == {build.job_key: PRINTER}
        assert rival.tries == [(phase, PRINTER, False)
                               for phase in ("server_wait", "load_form_file", "print")]
        pool.close()
