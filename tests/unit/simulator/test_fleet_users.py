"""One fleet folder, one fleet at a time: a simulator whose fleet differs from a live one's
on the same folder (a default run beside a rehearsal with a declared fleet, or the reverse)
is refused before it touches the printers, saying who uses the folder and what helps; the
same fleet shares it; a member killed (kill -9, in this pid namespace or another) no longer
counts (in-process engines, real child processes, real files)."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.liveness import this_host
from preform_pipeline.logging import capture_logs
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.fleet import DEFAULT_PRINTERS
from preform_pipeline.simulator.fleetusers import FleetInUseError
from tests.instances import child_environment, in_new_pid_namespace, program_pid

BENCH = {"serial": "Bench-A", "machine_type_id": "FORM-4-0", "product_name": "Form 4",
         "ip_address": "192.0.2.71", "material_code": "FLGPGR05"}
OTHER = {**BENCH, "serial": "Bench-B"}
#: A child that runs a simulator engine on a fleet folder (with the declared printers given as
#: JSON, or "-" for none), says READY, and waits for its input to close.
MEMBER = """
import json, sys
from pathlib import Path
from preform_pipeline.simulator.engine import SimEngine
declared = None if sys.argv[2] == "-" else json.loads(sys.argv[2])
engine = SimEngine(fleet_dir=Path(sys.argv[1]), declared_printers=declared)
print("READY", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    return tmp_path / "fleet"


def _serials(fleet_dir: Path) -> list[str]:
    data = json.loads((fleet_dir / "printers.json").read_text(encoding="utf-8"))
    return [p["serial"] for p in data["printers"]]


class TestTwoFleetsAtOnce:
    """The later start of another fleet is refused; the earlier one's printers stay."""

    def test_a_default_start_beside_a_live_rehearsal_is_refused(self, fleet_dir: Path) -> None:
        rehearsal = SimEngine(fleet_dir=fleet_dir, declared_printers=[BENCH])
        with pytest.raises(FleetInUseError) as caught:
            SimEngine(fleet_dir=fleet_dir)
        assert caught.value.message == (
            f"fleet folder {fleet_dir} is in use by a simulator with another fleet (pid "
            f"{os.getpid()} on {this_host()}: declared printers Bench-A; this one: the "
            "folder's own printers); one folder holds one fleet at a time")
        assert caught.value.hint == (
            "let that one end first, or give this one a fleet folder of its own: "
            "--fleet-dir, or for a pool another XDG_DATA_HOME")
        assert _serials(fleet_dir) == ["Bench-A"]
        assert rehearsal.fleet.is_declared()
        rehearsal.close()
        default = SimEngine(fleet_dir=fleet_dir)  # once it ended: the default comes back
        assert default.fleet.printers() == list(DEFAULT_PRINTERS)

    def test_a_rehearsal_beside_a_live_default_run_is_refused(self, fleet_dir: Path) -> None:
        default = SimEngine(fleet_dir=fleet_dir)
        with pytest.raises(FleetInUseError, match=r"\(pid \d+ on .*: the folder's own "
                           r"printers; this one: declared printers Bench-A\)"):
            SimEngine(fleet_dir=fleet_dir, declared_printers=[BENCH])
        assert _serials(fleet_dir) == [p.serial for p in DEFAULT_PRINTERS]
        default.close()

    def test_another_declared_fleet_is_refused_and_the_same_one_shares(
        self, fleet_dir: Path
    ) -> None:
        # A pool's servers (and one it restarts) declare the same fleet: they share the folder.
        first = SimEngine(fleet_dir=fleet_dir, declared_printers=[BENCH, OTHER])
        second = SimEngine(fleet_dir=fleet_dir, declared_printers=[OTHER, BENCH])
        with pytest.raises(FleetInUseError, match="this one: declared printers Bench-A\\)"):
            SimEngine(fleet_dir=fleet_dir, declared_printers=[BENCH])
        assert sorted(_serials(fleet_dir)) == ["Bench-A", "Bench-B"]
        for engine in (first, second):
            engine.close()

    def test_a_declared_printer_that_differs_in_anything_is_another_fleet(
        self, fleet_dir: Path
    ) -> None:
        first = SimEngine(fleet_dir=fleet_dir, declared_printers=[BENCH])
        with pytest.raises(FleetInUseError):
            SimEngine(fleet_dir=fleet_dir,
                      declared_printers=[{**BENCH, "material_code": "FLGPCL05"}])
        first.close()

    def test_one_of_two_members_of_one_process_leaving_keeps_the_others_hold(
        self, fleet_dir: Path
    ) -> None:
        # Engines made one after another in one process (a long-running host, tests) are two
        # members: the first leaving must not take the second's record with it.
        first = SimEngine(fleet_dir=fleet_dir, declared_printers=[BENCH])
        second = SimEngine(fleet_dir=fleet_dir, declared_printers=[BENCH])
        assert len(list((fleet_dir / "users").glob("*.json"))) == 2
        first.close()
        with pytest.raises(FleetInUseError):
            SimEngine(fleet_dir=fleet_dir)
        assert _serials(fleet_dir) == ["Bench-A"]
        second.close()

    def test_leaving_removes_the_record(self, fleet_dir: Path) -> None:
        engine = SimEngine(fleet_dir=fleet_dir)
        assert len(list((fleet_dir / "users").glob("*.json"))) == 1
        engine.close()
        engine.close()  # twice: nothing more
        assert list((fleet_dir / "users").glob("*.json")) == []


def _member(fleet_dir: Path, prefix: list[str],
            declared: str) -> subprocess.Popen[str]:
    child = subprocess.Popen([*prefix, sys.executable, "-c", MEMBER, str(fleet_dir), declared],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=child_environment())
    assert child.stdout is not None and child.stdout.readline().strip() == "READY"
    return child


def _where() -> Iterator[list[str]]:
    yield []
    yield in_new_pid_namespace() or ["-"]


class TestAMemberKilled:
    """A rehearsal's simulator killed (kill -9: nothing released) no longer holds the folder,
    seen from this pid namespace whether it ran here or in another container."""

    @pytest.mark.timeout(60)
    @pytest.mark.parametrize("prefix", list(_where()), ids=["this-namespace", "container"])
    def test_refused_while_it_runs_then_the_default_comes_back(
        self, fleet_dir: Path, prefix: list[str]
    ) -> None:
        if prefix == ["-"]:
            pytest.skip("this system does not let a test make a pid namespace (unshare)")
        child = _member(fleet_dir, prefix, json.dumps([BENCH]))
        try:
            with pytest.raises(FleetInUseError, match="declared printers Bench-A"):
                SimEngine(fleet_dir=fleet_dir)
            os.kill(program_pid(child.pid), signal.SIGKILL)
            assert child.wait(30) != 0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(30)
        with capture_logs() as logs:
            default = SimEngine(fleet_dir=fleet_dir)
        assert [e["event"] for e in logs if e["event"].startswith("fleet_")] == [
            "fleet_member_gone", "fleet_joined", "fleet_default_restored"]
        assert default.fleet.printers() == list(DEFAULT_PRINTERS)
        default.close()


class TestAnEngineNeverClosed:
    """An engine of a longer-lived process that is dropped without close leaves the folder
    when it is collected (its record and its descriptor do not pile up)."""

    def test_collected_it_leaves(self, fleet_dir: Path) -> None:
        engine = SimEngine(fleet_dir=fleet_dir, declared_printers=[BENCH])
        assert len(list((fleet_dir / "users").glob("*.json"))) == 1
        del engine
        gc.collect()
        assert list((fleet_dir / "users").glob("*.json")) == []
        SimEngine(fleet_dir=fleet_dir).close()  # another fleet may start now
