"""Printer claims of processes in another pid namespace of this host (another container with
the same host name) are judged by their lease, never by a pid that here names another process;
a dead holder of our own namespace is taken over at once (real child processes, one of them
in a new pid namespace made by ``unshare``, a real SQLite store on the system clock).

Linux-specific: the other namespace needs ``unshare`` and the right to use it; where it is
not allowed, that test is skipped and says why (the store's rules are also tested with labels
naming another namespace, tests/unit/store/test_store_printer_claims.py).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil
import pytest
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.testing import wait_for
from preform_pipeline.liveness import ProcessIdentity, this_instance
from preform_pipeline.store import SqliteJobStore
from tests.instances import child_environment, in_new_pid_namespace

CHILD = Path(__file__).resolve().parent / "claim_and_hold_child.py"
PRINTER = "Form4-A"
#: The child's claim lease: long enough for the checks while it runs out, short for a test.
LEASE_S = 4.0
WATCH = "pc-1:200:watch"


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
            child.wait(30)


def _hold(store: Path, build: str, started: list[subprocess.Popen[str]],
          prefix: Sequence[str] = ()) -> tuple[subprocess.Popen[str], str]:
    """Start a child that claims the printer for ``build``; it and its holder."""
    child = subprocess.Popen(
        [*prefix, sys.executable, str(CHILD), str(store), PRINTER, build, str(LEASE_S)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_environment())
    started.append(child)
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.startswith("HOLDER "), line
    return child, line.split()[1]


def _end(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.close()
    assert child.wait(30) == 0


def _claim(store: SqliteJobStore) -> bool:
    return store.claim_printer(PRINTER, holder=WATCH, build="PP-WATCH", lease_s=60.0)


class TestAHolderInAnotherPidNamespace:
    """Its pid names another process here: its claim holds while it may run, then runs out."""

    @pytest.mark.timeout(120)
    def test_its_claim_is_not_taken_over_and_ends_with_its_lease(
        self, tmp_path: Path, holders: list[subprocess.Popen[str]]
    ) -> None:
        prefix = in_new_pid_namespace()
        if prefix is None:
            pytest.skip("this system does not let a test make a pid namespace (unshare)")
        path = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(path) as store:
            child, holder = _hold(path, "PP-THERE", holders, prefix)
            there = ProcessIdentity.from_label(holder.rpartition(":")[0])
            assert there is not None and there.host == ProcessIdentity.current().host
            assert there.instance != this_instance()
            # Its pid is a live process of ours too, another one (started at another time).
            assert psutil.pid_exists(there.pid)
            assert abs(psutil.Process(there.pid).create_time() - there.create_time) > 0.05
            with capture_logs() as logs:
                assert store.printers_claimed(other_than=WATCH) == {PRINTER}
                assert not _claim(store)
                _end(child)  # gone without releasing: nothing here can know it
                assert store.printers_claimed(other_than=WATCH) == {PRINTER}
                assert not _claim(store)
                wait_for(lambda: _claim(store), 3 * LEASE_S, interval=0.1,
                         what="the claim's lease to run out")
            assert [e["event"] for e in logs] == []  # run out, never taken over


class TestADeadHolderOfOurPidNamespace:
    """Its pid ended here: its claim is taken over at once, and said."""

    @pytest.mark.timeout(120)
    def test_its_claim_is_taken_over_at_once(
        self, tmp_path: Path, holders: list[subprocess.Popen[str]]
    ) -> None:
        path = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(path) as store:
            child, holder = _hold(path, "PP-HERE", holders)
            assert not _claim(store)
            _end(child)
            with capture_logs() as logs:
                assert _claim(store)  # at once, long before its lease ends
        assert [(e["event"], e["dead_holder"]) for e in logs] == [
            ("printer_claim_taken_over", holder)]
