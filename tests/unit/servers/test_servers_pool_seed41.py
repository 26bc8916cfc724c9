"""Session 23, seed 41: how long a pool's ``wait_for`` waits for a state (a real stand-in
server program configured, never started: the wait needs no process)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from preform_pipeline.servers import ServerState, ServerStatus
from tests.unit.servers.test_servers_pool_local import _standin_pool

SHORT_S = 0.3  # under a second: the wait must still last all of it


class TestWaitingForAState:
    """``wait_for`` waits its whole timeout, a short one too, and returns the state it was
    waiting for as soon as a look sees it."""

    def test_a_state_that_never_comes_times_out_no_sooner_than_asked(
        self, tmp_path: Path
    ) -> None:
        pool = _standin_pool(tmp_path)
        try:
            began = time.monotonic()
            with pytest.raises(TimeoutError) as caught:
                pool.wait_for(lambda s: s[0].state is ServerState.RETIRED, SHORT_S)
            waited = time.monotonic() - began
        finally:
            pool.close()
        assert waited >= SHORT_S
        assert str(caught.value).startswith("pool did not reach the expected state: ")

    def test_a_state_first_seen_on_the_second_look_is_returned(self, tmp_path: Path) -> None:
        looks: list[tuple[ServerStatus, ...]] = []

        def seen_on_the_second_look(statuses: tuple[ServerStatus, ...]) -> bool:
            looks.append(statuses)
            return len(looks) == 2

        pool = _standin_pool(tmp_path)
        try:
            returned = pool.wait_for(seen_on_the_second_look, SHORT_S * 2)
        finally:
            pool.close()
        assert len(looks) == 2
        assert returned == looks[1]
        assert (returned[0].name, returned[0].state) == ("server-1", ServerState.STARTING)
