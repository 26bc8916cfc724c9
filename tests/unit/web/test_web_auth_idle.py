"""A browser's session ends after 12 hours without a request, on the dashboard's clock.

The gate reads the project's clock seam (``preform_pipeline.clock``), so the 12 hours are
walked on a manual clock here rather than patched away.
"""

from __future__ import annotations

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.settings.web import WebUser
from preform_pipeline.web.auth import SESSION_COOKIE, SESSION_TTL_S, Gate
from tests.unit.web.conftest import OPERATOR_SECRET


@pytest.fixture
def gate_and_clock(users: tuple[WebUser, ...]) -> tuple[Gate, ManualClock, str]:
    clock = ManualClock()
    gate = Gate(users, clock)
    logged = gate.login("olivia", OPERATOR_SECRET)
    assert logged is not None
    return gate, clock, logged[0]


def _as_browser(gate: Gate, sid: str) -> tuple[str | None, bool]:
    access = gate.authenticate({}, {SESSION_COOKIE: sid})
    return (access.user.name if access.user else None), access.ended


class TestASessionsIdleTime:
    def test_a_session_used_twice_a_day_lives_on(
        self, gate_and_clock: tuple[Gate, ManualClock, str]
    ) -> None:
        gate, clock, sid = gate_and_clock
        for _ in range(6):  # three days, a request every 11 hours
            clock.advance(11 * 3600)
            assert _as_browser(gate, sid) == ("olivia", False)

    def test_twelve_hours_idle_is_still_in_and_a_second_more_is_ended(
        self, gate_and_clock: tuple[Gate, ManualClock, str]
    ) -> None:
        gate, clock, sid = gate_and_clock
        clock.advance(SESSION_TTL_S)
        assert _as_browser(gate, sid) == ("olivia", False)
        clock.advance(SESSION_TTL_S + 1)
        assert _as_browser(gate, sid) == (None, True)
        # Ended for good: a later request with the same cookie is not let back in.
        assert _as_browser(gate, sid) == (None, True)
