"""The JSON log's timestamps: UTC to the microsecond, as structlog's ISO stamper wrote them,
with the date and time of day formatted once a second."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from preform_pipeline import logging as pp_logging
from preform_pipeline.logging import _utc_text, get_logger

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _as_datetime_writes_it(ns: int) -> str:
    """``ns`` written by ``datetime.isoformat`` (the stamper's way), cut to microseconds."""
    moment = EPOCH + timedelta(microseconds=ns // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def _ns(text: str) -> int:
    """Nanoseconds since the epoch of an ISO 8601 UTC text with a ``Z``."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def _written_with_a_switch(ns: int, other: tuple[int, str], before_line: int) -> tuple[str, int]:
    """:func:`_utc_text` of ``ns`` with ``other`` kept as the last second just before its
    ``before_line``-th line runs, as another thread switched in there would; the text and
    how many lines ran."""
    code = _utc_text.__code__
    lines = 0

    def other_thread(frame: FrameType, event: str, _arg: Any) -> Any:
        nonlocal lines
        if frame.f_code is not code:
            return None
        if event == "line":
            lines += 1
            if lines == before_line:
                pp_logging._LAST_SECOND = other
        return other_thread

    previous = sys.gettrace()
    sys.settrace(other_thread)
    try:
        text = _utc_text(ns)
    finally:
        sys.settrace(previous)
    return text, lines


class TestTimestamps:
    def test_each_instant_is_written_as_datetime_writes_it_in_whatever_order_they_come(
        self,
    ) -> None:
        second = 1_796_679_618 * 10**9  # 2026-12-07T21:40:18Z
        instants = [
            second + 123_456_789,       # a second's first event: its text made
            second + 123_457_999,       # the same second: its text kept
            second + 999_999_999,       # its last microsecond
            second + 10**9,             # the next second, at its very start: no fraction
            second + 10**9 + 1_000,     # one microsecond later
            second + 5_000,             # the clock set back into the second before
            second - 86_400 * 10**9,    # a day before: the date changes too
            second + 86_400 * 10**9 - 1,
            0,                          # the epoch itself
        ]

        assert [_utc_text(ns) for ns in instants] == [
            _as_datetime_writes_it(ns) for ns in instants
        ]
        assert _utc_text(second + 10**9) == "2026-12-07T21:40:19Z"
        assert _utc_text(second + 5_000) == "2026-12-07T21:40:18.000005Z"

    @pytest.mark.parametrize("kept", [(1_796_679_617, "2026-12-07T21:40:17"), None],
                             ids=["another second kept", "this second kept"])
    def test_another_thread_keeping_another_second_between_any_two_steps_changes_no_text(
        self, kept: tuple[int, str] | None
    ) -> None:
        # Two threads logging across a second's boundary: the other thread keeps its second's
        # text just before one line of this call runs (a thread may be switched out between
        # any two), tried before each line in turn. The text written is still this
        # instant's: the kept tuple is read once, its second and text together.
        ns = 1_796_679_618 * 10**9 + 123_456_789
        other = (1_796_679_619, "2026-12-07T21:40:19")
        texts: list[str] = []
        for switch_before in range(1, 20):
            if kept is None:
                _utc_text(ns - 1000)  # this very second's text kept when the call starts
            else:
                pp_logging._LAST_SECOND = kept
            text, lines = _written_with_a_switch(ns, other, switch_before)
            texts.append(text)
            if lines < switch_before:
                break  # every line tried
        assert len(texts) >= 4
        assert set(texts) == {"2026-12-07T21:40:18.123456Z"} == {_as_datetime_writes_it(ns)}

    def test_an_events_timestamp_is_when_it_was_logged(self, log_file: Path) -> None:
        before = datetime.now(timezone.utc)
        get_logger("preform_pipeline.executor.runner").info("step_started", step="auto_layout")
        after = datetime.now(timezone.utc)

        (line,) = log_file.read_text(encoding="utf-8").splitlines()
        stamp = json.loads(line)["timestamp"]
        assert stamp.endswith("Z")
        moment = EPOCH + timedelta(microseconds=_ns(stamp) // 1000)
        assert before - timedelta(microseconds=1) <= moment <= after
