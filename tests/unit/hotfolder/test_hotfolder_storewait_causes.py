"""Whether a starting node waits for its store (hotfolder/storewait.py) when the failed
connection is not the error ``join`` raised but the one it was raised from: a join that says
what it was doing keeps the database's answer as its cause (s45-mutants: the cause chain no
test had walked). Time on the clock seam; the real server's failures are in
test_hotfolder_storewait.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import StoreError, StoreUnavailableError
from preform_pipeline.hotfolder.storewait import wait_for_store


def _failing_once(kind: str, *, waits: bool) -> tuple[Callable[[], str], list[int]]:
    """A join that fails once, saying what it was doing, from the database's ``kind`` of
    failure; then joins."""
    tries: list[int] = []

    def join() -> str:
        tries.append(len(tries) + 1)
        if len(tries) == 1:
            try:
                raise StoreUnavailableError("postgresql://db/jobs: no server answered",
                                            hint="start it", kind=kind, waits=waits)
            except StoreUnavailableError as exc:
                raise StoreError("joining the farm failed: no server answered") from exc
        return "joined"

    return join, tries


def test_an_outage_under_the_join_s_own_error_is_waited_for() -> None:
    join, tries = _failing_once("away", waits=True)

    assert wait_for_store(join, location="db", wait_s=30, clock=ManualClock()) == "joined"
    assert tries == [1, 2]


def test_a_refusal_under_the_join_s_own_error_fails_at_once() -> None:
    join, tries = _failing_once("refused", waits=False)

    with pytest.raises(StoreError, match="joining the farm failed"):
        wait_for_store(join, location="db", wait_s=30, clock=ManualClock())
    assert tries == [1]


def test_an_outage_that_outlasts_the_wait_says_how_long_it_was_waited_for() -> None:
    def join() -> str:
        raise StoreUnavailableError("postgresql://db/jobs: no server answered",
                                    hint="start it", kind="away", waits=True)

    with pytest.raises(StoreError) as raised:
        wait_for_store(join, location="db", wait_s=3, clock=ManualClock())

    assert raised.value.message == ("postgresql://db/jobs: no server answered (still "
                                    "unreachable after 3 s of waiting)")
    assert raised.value.hint is not None
    assert raised.value.hint.startswith("start the database server, or check that this node "
                                        "reaches it; store.start_wait_s (3 s)")
