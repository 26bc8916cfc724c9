"""Ports: probe upward from the base port and move on when a server reports its port taken."""

from __future__ import annotations

import socket

import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import PortInUseError, ServerProcessError
from preform_pipeline.servers.ports import PortAllocator, port_is_free, start_on_free_port


def _free_block(length: int) -> int:
    """A base port with ``length`` free ports above it (found by probing; best effort)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = sock.getsockname()[1]
        if base + length < 65535 and all(port_is_free(base + i) for i in range(length)):
            return base
    raise AssertionError("no block of free ports found")


class TestProbe:
    """The probe tells a listening port from a free one."""

    def test_a_held_port_is_not_free(self, held_port: int) -> None:
        assert not port_is_free(held_port)

    def test_a_released_port_is_free(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        assert port_is_free(port)


class TestAllocator:
    """The allocator hands out distinct ports, skipping taken ones."""

    def test_ports_count_up_from_the_base_and_are_never_handed_out_twice(self) -> None:
        base = _free_block(3)
        allocator = PortAllocator(base, 3)
        assert [allocator.acquire() for _ in range(3)] == [base, base + 1, base + 2]
        with pytest.raises(PortInUseError, match="no free port"):
            allocator.acquire()

    def test_a_released_port_can_be_handed_out_again(self) -> None:
        base = _free_block(1)
        allocator = PortAllocator(base, 1)
        port = allocator.acquire()
        allocator.release(port)
        assert allocator.acquire() == port

    def test_a_port_someone_listens_on_is_skipped(self, held_port: int) -> None:
        allocator = PortAllocator(held_port, 5)
        assert allocator.acquire() != held_port

    def test_base_port_zero_lets_the_system_choose_distinct_ports(self) -> None:
        allocator = PortAllocator(0, 5)
        ports = {allocator.acquire() for _ in range(4)}
        assert len(ports) == 4
        assert all(port > 0 for port in ports)


class TestStartOnFreePort:
    """A server that says its port is taken is started again on the next port."""

    def test_moves_on_after_port_in_use_and_never_retries_that_port(self) -> None:
        base = _free_block(3)
        allocator = PortAllocator(base, 3, probe=lambda port: True)
        tried: list[int] = []

        def start(port: int) -> int:
            tried.append(port)
            if port == base:
                raise PortInUseError(f"port {port} is already in use")
            return port

        with capture_logs() as logs:
            assert start_on_free_port(start, allocator, name="server-1") == base + 1
        assert tried == [base, base + 1]
        assert {"event": "server_port_in_use", "server": "server-1", "port": base,
                "log_level": "info"} in logs
        assert allocator.reserved == {base + 1}
        allocator.release(base + 1)
        assert allocator.acquire() == base + 1  # the port reported in use stays skipped

    def test_other_failures_release_the_port_and_propagate(self) -> None:
        allocator = PortAllocator(_free_block(1), 1)

        def start(port: int) -> int:
            raise ServerProcessError("exited during start-up", exit_code=1)

        with pytest.raises(ServerProcessError):
            start_on_free_port(start, allocator)
        assert allocator.reserved == frozenset()

    def test_gives_up_with_port_in_use_when_every_port_is_taken(self) -> None:
        allocator = PortAllocator(_free_block(2), 2, probe=lambda port: True)

        def start(port: int) -> int:
            raise PortInUseError(f"port {port} is already in use")

        with pytest.raises(PortInUseError):
            start_on_free_port(start, allocator)
