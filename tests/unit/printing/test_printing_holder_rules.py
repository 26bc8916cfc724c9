"""Who held a send, as the store keeps it, and when that holder is certainly over."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest

from preform_pipeline.liveness import this_instance
from preform_pipeline.printing import SendHolder, holder_gone
from preform_pipeline.printing.testing import reaped_holder


@dataclass(frozen=True)
class _Server:
    """A pool's leased server, as the print owner sees it."""

    name: str
    url: str
    remote: bool
    pid: int | None


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


class TestTheHolderOfASend:
    """The holder is the local process (pid, start, host) or the remote server's address."""

    def test_a_local_server_is_held_by_its_process_on_this_host(
        self, child: subprocess.Popen[bytes]
    ) -> None:
        holder = SendHolder.of_server(_Server("server-2", "http://127.0.0.1:1", False, child.pid),
                                      45.0)
        assert holder is not None
        assert (holder.server, holder.pid, holder.request_timeout_s, holder.remote) == (
            "server-2", child.pid, 45.0, False)
        assert holder.create_time == pytest.approx(psutil.Process(child.pid).create_time())
        assert holder.host == socket.gethostname()
        assert holder.describe() == f"server server-2 (pid {child.pid})"

    def test_a_remote_server_is_held_by_its_address(self) -> None:
        holder = SendHolder.of_server(_Server("server-1", "http://10.0.0.5:44388", True, None),
                                      20.0)
        assert holder == SendHolder("http://10.0.0.5:44388", 20.0, remote=True)
        assert holder.describe() == "remote server http://10.0.0.5:44388"

    def test_a_remotes_password_is_not_kept(self) -> None:
        # The store kept the url whole, and a message said it (review, rv45-loose).
        holder = SendHolder.of_server(
            _Server("printhost", "http://olivia:hunter2@10.0.0.5:44388", True, None), 20.0)
        assert holder == SendHolder("http://olivia:[redacted]@10.0.0.5:44388", 20.0,
                                    remote=True)

    def test_a_local_server_without_a_process_id_has_no_holder(self) -> None:
        assert SendHolder.of_server(_Server("s", "http://127.0.0.1:1", False, None), 5.0) is None

    @pytest.mark.parametrize("holder", [
        SendHolder("http://10.0.0.5:44388", 20.0, remote=True),
        SendHolder("server-1", 12.5, pid=4242, create_time=1_700_000_000.25, host="lab-pc"),
        SendHolder("server-1", 12.5, pid=4242, create_time=None, host=""),
    ], ids=["remote", "local", "local-unknown-start"])
    def test_the_store_gives_back_the_holder_it_was_given(self, holder: SendHolder) -> None:
        assert SendHolder.from_json(holder.to_json()) == holder

    @pytest.mark.parametrize("data", [None, {}, {"server": "s"}, {"request_timeout_s": "soon"},
                                      {"request_timeout_s": 1.0, "pid": "x"}])
    def test_an_unreadable_record_is_no_holder(self, data: dict[str, Any] | None) -> None:
        assert SendHolder.from_json(data) is None

    def test_missing_fields_read_as_an_unnamed_local_holder(self) -> None:
        assert SendHolder.from_json({"request_timeout_s": 3}) == SendHolder("", 3.0)


class TestWhenTheHolderIsGone:
    """Only a process of this host with that pid and start time, now over, is gone."""

    def test_a_recorded_process_without_a_start_time_is_never_gone(self) -> None:
        dead = reaped_holder()
        assert holder_gone(SendHolder(dead.server, 1.0, pid=dead.pid, host=dead.host)) is False

    def test_a_remote_holder_is_never_gone_even_with_a_pid(self) -> None:
        dead = reaped_holder()
        assert holder_gone(SendHolder(dead.server, 1.0, dead.pid, dead.create_time, dead.host,
                                      remote=True)) is False

    def test_a_process_of_another_host_is_never_gone_from_here(self) -> None:
        dead = reaped_holder()
        assert holder_gone(SendHolder(dead.server, 1.0, dead.pid, dead.create_time,
                                      "another-host")) is False

    def test_a_process_of_this_host_named_explicitly_is_gone(self) -> None:
        dead = reaped_holder()
        assert dead.host == socket.gethostname()
        assert holder_gone(dead) is True

    def test_a_pid_now_running_another_program_counts_as_gone(
        self, child: subprocess.Popen[bytes]
    ) -> None:
        other_start = psutil.Process().create_time()  # this test process started earlier
        holder = SendHolder("s", 1.0, child.pid, other_start, socket.gethostname(),
                            instance=this_instance())
        assert holder_gone(holder) is True

    def test_a_killed_server_not_yet_reaped_is_gone(self) -> None:
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            holder = SendHolder.local("zombie", process.pid, 1.0)
            process.kill()  # not waited for: the process stays a zombie
            _wait_until_zombie(process.pid)
            assert holder_gone(holder) is True
        finally:
            process.kill()
            process.wait(timeout=10)

    def test_a_live_server_is_not_gone(self, child: subprocess.Popen[bytes]) -> None:
        assert holder_gone(SendHolder.local("alive", child.pid, 1.0)) is False


def _wait_until_zombie(pid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} did not become a zombie in {timeout_s} s")
        time.sleep(0.01)  # polling the process table: there is no event to wait on
