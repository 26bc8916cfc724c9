"""A send's holder names its instance (boot and pid namespace), and is judged gone only where
that instance's pids can be checked: never by a pid that here may name another container's
process (which would settle a print another container's server may still deliver as not
printed, and print it twice).

The other container is real where the system allows it (a child in a new pid namespace made
by ``unshare``, recording its own holder); elsewhere the holders name another namespace or
boot (tests/instances.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.liveness import ProcessIdentity, sees_every_process, this_host, this_instance
from preform_pipeline.printing import (
    Evidence,
    FleetFolderLocator,
    PrintOwner,
    SendHolder,
    holder_gone,
)
from preform_pipeline.printing.testing import reaped_holder
from preform_pipeline.store import JobState, SqliteJobStore
from tests.instances import (
    child_environment,
    in_new_pid_namespace,
    other_instance,
    ours_running,
    quiet_moment,
)

TIMEOUT_S = 5.0
#: Where the system names instances; elsewhere the host name alone tells (liveness.py), and a
#: holder that names none is judged by its host.
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"),
                           reason="instances are named on Linux only")

#: A server in another container: records its own holder (as the pool does), then runs until
#: its stdin closes.
_CONTAINER_SERVER = (
    "import json, os, sys\n"
    "from preform_pipeline.printing.holder import SendHolder\n"
    "print(json.dumps(SendHolder.local('server-1', os.getpid(), 5.0).to_json()), flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture
def container_holder() -> Iterator[SendHolder]:
    """The holder a live server in another pid namespace of this host recorded."""
    prefix = in_new_pid_namespace()
    if prefix is None:
        pytest.skip("this system does not let a test make a pid namespace (unshare)")
    child = subprocess.Popen([*prefix, sys.executable, "-c", _CONTAINER_SERVER],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=child_environment())
    try:
        assert child.stdout is not None
        holder = SendHolder.from_json(_json(child.stdout.readline()))
        assert holder is not None
        yield holder
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(30)


def _json(line: str) -> dict[str, Any]:
    data = json.loads(line)
    assert isinstance(data, dict)
    return data


def _sending(store: SqliteJobStore, holder: SendHolder) -> int:
    """A build whose send ``holder`` began, interrupted before any answer."""
    job = store.create_job(recipe="r", source_path="m.stl", state=JobState.PROCESSING)
    build = store.create_build(recipe="r", job_ids=[job.id])
    for state in (JobState.PREPARING, JobState.PREPARED):
        store.transition_build(build.id, state, "test")
    PrintOwner(store).begin(build.id, f"r-{build.job_key}", "Form4-1", holder)
    return build.id


def _resolved_after_grace(tmp_path: Path, holder: SendHolder) -> tuple[Evidence, str, JobState]:
    """Resolve an interrupted send of ``holder`` in a SQLite store, the grace period over and
    the fleet folder showing nothing: the evidence, its reason, the build's state after."""
    clock = ManualClock()
    with SqliteJobStore(tmp_path / "jobs.sqlite3", clock=clock) as store:
        build_id = _sending(store, holder)
        owner = PrintOwner(store, [FleetFolderLocator(tmp_path / "fleet", report_delay_s=1.0)],
                           clock=clock)
        clock.advance(TIMEOUT_S + 2.0)
        answer = owner.resolve(store.get_build(build_id))
        assert answer.build is not None
        return answer.evidence, answer.reason, answer.build.state


class TestTheHolderNamesItsInstance:
    """A local holder records this process's instance; the store gives it back."""

    def test_a_local_holder_names_this_instance(self) -> None:
        holder = reaped_holder(TIMEOUT_S)
        assert (holder.host, holder.instance) == (this_host(), this_instance())
        assert holder.to_json()["instance"] == this_instance()
        assert SendHolder.from_json(holder.to_json()) == holder

    def test_a_holder_of_an_earlier_version_reads_as_naming_none(self) -> None:
        old = {"server": "server-1", "request_timeout_s": 5.0, "pid": 4242,
               "create_time": 1_700_000_000.25, "host": this_host(), "remote": False}
        holder = SendHolder.from_json(old)
        assert holder is not None and holder.instance is None
        assert holder.to_json() == old  # written back as it was read

    @pytest.mark.parametrize("instance", ["", 7, ["boot/1"]])
    def test_a_holder_naming_no_readable_instance_is_no_holder(self, instance: object) -> None:
        data = {**reaped_holder(TIMEOUT_S).to_json(), "instance": instance}
        assert SendHolder.from_json(data) is None


class TestAnotherContainersHolder:
    """A holder of another pid namespace of this host name is never gone from here."""

    @pytest.mark.timeout(60)
    def test_a_live_server_in_another_container_is_not_gone(
        self, container_holder: SendHolder, tmp_path: Path
    ) -> None:
        # Its pid (1, its namespace's first) here names another process, started at another
        # time: judged by host name and pid, that server would be "gone" while it runs.
        assert container_holder.host == this_host()
        assert container_holder.instance not in (None, this_instance())
        assert holder_gone(container_holder) is False
        assert holder_gone(container_holder, store_on_this_machine=True) is False
        evidence, reason, state = _resolved_after_grace(tmp_path, container_holder)
        assert (evidence, state) == (Evidence.UNKNOWN, JobState.UNVERIFIED)
        assert reason == (f"server server-1 (pid {container_holder.pid}, in another container "
                          "or boot of this host name) may still be sending it")

    @pytest.mark.parametrize("on_this_machine", [False, True], ids=["shared", "local"])
    def test_a_dead_pid_of_another_namespace_is_not_gone(self, on_this_machine: bool) -> None:
        # Same host name, same pid and start time as a process that ended here: still
        # another container's pid, which may run there.
        holder = replace(reaped_holder(TIMEOUT_S), instance=other_instance())
        assert holder_gone(holder, store_on_this_machine=on_this_machine) is False


class TestThisInstancesHolder:
    """The same instance's process is judged by its pid and start time, as before."""

    @pytest.mark.parametrize("on_this_machine", [False, True], ids=["shared", "local"])
    def test_its_dead_process_is_gone(self, on_this_machine: bool) -> None:
        assert holder_gone(reaped_holder(TIMEOUT_S),
                           store_on_this_machine=on_this_machine) is True

    def test_an_interrupted_send_of_its_dead_server_is_proven_not_printed(
        self, tmp_path: Path
    ) -> None:
        evidence, reason, state = _resolved_after_grace(tmp_path, reaped_holder(TIMEOUT_S))
        assert (evidence, state) == (Evidence.ABSENT, JobState.PREPARED)
        assert reason.startswith("server reaped-server (pid ")
        assert ") is gone and nothing in " in reason


class TestAnEarlierBootsHolder:
    """This host name in another boot: in a store on this machine's disk, this machine before
    it restarted (gone); in a store shared by machines, maybe another machine (never gone)."""

    def test_in_a_store_on_this_machine_it_is_gone(self, tmp_path: Path) -> None:
        holder = replace(reaped_holder(TIMEOUT_S), instance=other_instance(boot=True))
        assert holder_gone(holder, store_on_this_machine=True) is True
        evidence, _, state = _resolved_after_grace(tmp_path, holder)
        assert (evidence, state) == (Evidence.ABSENT, JobState.PREPARED)

    def test_in_a_shared_store_it_is_not_gone(self) -> None:
        holder = replace(reaped_holder(TIMEOUT_S), instance=other_instance(boot=True))
        assert holder_gone(holder) is False


class TestAHolderOfAnEarlierVersion:
    """Recorded without its instance: its pid may be another container's, so in a shared store
    it is never proven gone; in a store on this machine's disk it is gone when it started
    before this machine booted, or when no process that may be ours started at its moment
    runs anywhere on this machine (session 34); otherwise a person is told why."""

    @LINUX
    def test_its_dead_process_is_not_gone_in_a_shared_store(self) -> None:
        holder = replace(reaped_holder(TIMEOUT_S), instance=None, create_time=quiet_moment())
        assert holder_gone(holder) is False

    @pytest.mark.skipif(not sees_every_process(), reason="needs the machine's own pid namespace")
    def test_its_dead_process_is_gone_in_a_store_on_this_machine_and_the_send_settled(
        self, tmp_path: Path
    ) -> None:
        holder = replace(reaped_holder(TIMEOUT_S), instance=None, create_time=quiet_moment())
        assert holder_gone(holder, store_on_this_machine=True) is True
        evidence, _, state = _resolved_after_grace(tmp_path, holder)
        assert (evidence, state) == (Evidence.ABSENT, JobState.PREPARED)

    def test_one_that_started_before_this_boot_is_gone_only_in_a_store_on_this_machine(
        self, tmp_path: Path
    ) -> None:
        # A power cut, then the upgrade: no process of this machine can be that old.
        holder = replace(reaped_holder(TIMEOUT_S), instance=None,
                         create_time=psutil.boot_time() - 3600.0)
        assert holder_gone(holder) is False
        assert holder_gone(holder, store_on_this_machine=True) is True
        evidence, _, state = _resolved_after_grace(tmp_path, holder)
        assert (evidence, state) == (Evidence.ABSENT, JobState.PREPARED)

    @LINUX
    @pytest.mark.timeout(60)
    def test_its_interrupted_send_is_left_to_a_person(self, tmp_path: Path) -> None:
        # A server of ours that started at the holder's moment runs: perhaps that very server,
        # in another container (pid 1 there).
        with ours_running() as server:
            alike = ProcessIdentity.of_running(server.pid)
            assert alike is not None
            holder = replace(reaped_holder(TIMEOUT_S), instance=None, pid=1,
                             create_time=alike.create_time)
            assert holder_gone(holder, store_on_this_machine=True) is False
            evidence, reason, state = _resolved_after_grace(tmp_path, holder)
        assert (evidence, state) == (Evidence.UNKNOWN, JobState.UNVERIFIED)
        assert reason == (f"server reaped-server (pid {holder.pid}, recorded by an earlier "
                          "version that did not name its container) may still be sending it")


class TestAnotherHostsHolder:
    """Another host's process is never judged here, and a person is told whose it is."""

    def test_it_is_not_gone_and_its_host_is_named(self) -> None:
        holder = replace(reaped_holder(TIMEOUT_S), host="lab-pc-2")
        assert holder_gone(holder, store_on_this_machine=True) is False
        assert holder.describe() == f"server reaped-server (pid {holder.pid} on lab-pc-2)"


class TestAnUnplacedHolder:
    """A holder recorded without its host (or its pid) says nothing of whose its pid is, and
    is never gone."""

    @pytest.mark.parametrize("holder", [
        SendHolder("server-1", TIMEOUT_S, pid=4242),
        SendHolder("server-1", TIMEOUT_S, host=this_host(), instance=this_instance()),
    ], ids=["no-host", "no-pid"])
    def test_it_is_described_plainly(self, holder: SendHolder) -> None:
        assert holder.describe() == f"server server-1 (pid {holder.pid})"
        assert holder_gone(holder, store_on_this_machine=True) is False
