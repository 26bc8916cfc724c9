"""Two verifies of one store that meet the same rate-limit hold at once say it once.

``first_to_say_held`` reads the notice, then takes it in one write transaction: two cron
verifies on two nodes in the same second can both read it before either writes, and then only
the notice's end (what it is about) tells them apart. Both are held by the one stored hold, so
the end is the same moment, read a fraction of a second apart; said to the whole second
(rv49-verify: ``now`` plus the wait rounded up, then cut to the second, gave two ends a
second apart, and both said it). A real SQLite store, opened twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from preform_pipeline.store import SqliteJobStore
from preform_pipeline.verify.service import first_to_say_held

ACCOUNT = "web-api:https://api.formlabs.com:lab"
#: The hold both verifies meet, in the store: half a second past a whole second.
T0 = datetime(2026, 12, 8, 2, 0, 0, tzinfo=timezone.utc)
HOLD_ENDS = T0 + timedelta(seconds=3600.5)


class _ReadBeforeTheOtherWrote(SqliteJobStore):
    """The second node's store: its read of the notice came before the first node wrote."""

    def notice_about(self, key: str) -> str | None:
        return None


def _held_at(store: SqliteJobStore, seconds: float) -> bool:
    now = T0 + timedelta(seconds=seconds)
    return first_to_say_held(store, ACCOUNT, (HOLD_ENDS - now).total_seconds(), now=now)


class TestTwoVerifiesAtOnce:

    def test_one_says_the_wait(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(path) as first, _ReadBeforeTheOtherWrote(path) as second:
            said = [_held_at(first, 0.3), _held_at(second, 0.9)]
        assert said == [True, False]
