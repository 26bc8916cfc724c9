"""The dashboard's malformed requests and uvicorn's warnings, paced (web/badrequests.py), on the
clock seam: what is said of a request with no peer or no reason, each peer on its own, and a
table of peers that stays bounded; the server-level tests are in test_web_hostile_requests.py
(s45-mutants: the rules those could not reach)."""

from __future__ import annotations

import logging

import h11
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.web.badrequests import (
    MAX_PEERS,
    SAY_EVERY_S,
    BadRequests,
    Pacer,
    SaidAsEvent,
    bad_request_reason,
)


class TestTheReason:
    def test_no_error_is_a_malformed_request(self) -> None:
        assert bad_request_reason(None) == "malformed request"

    def test_an_error_that_is_only_the_bytes_it_quotes_is_a_malformed_request(self) -> None:
        assert bad_request_reason(h11.RemoteProtocolError("b'\\x16\\x03\\x01secret'")) \
            == "malformed request"


class TestEachPeer:
    def test_a_request_with_no_peer_is_said_as_from_an_unknown_one(self) -> None:
        with capture_logs() as logs:
            BadRequests(ManualClock()).say(None, b"\x00", None)

        assert [(e["event"], e["client"], e["port"]) for e in logs] == [
            ("web_bad_request", "unknown", 0)]

    def test_is_paced_on_its_own(self) -> None:
        bad = BadRequests(ManualClock())

        with capture_logs() as logs:
            for peer in (("192.0.2.1", 50000), ("192.0.2.2", 50001), ("192.0.2.1", 50002)):
                bad.say(peer, b"\x16\x03\x01", None)

        assert [e["client"] for e in logs] == ["192.0.2.1", "192.0.2.2"]

    def test_is_said_again_after_the_pace_it_was_given(self) -> None:
        clock = ManualClock()
        bad = BadRequests(clock, every_s=1.0)

        with capture_logs() as logs:
            for _ in range(2):
                bad.say(("192.0.2.1", 50000), b"\x00", None)
            clock.advance(1.0)
            bad.say(("192.0.2.1", 50000), b"\x00", None)

        assert [(e.get("unsaid"), e.get("unsaid_within_s")) for e in logs] == [
            (None, None), (1, 1.0)]


class TestTheTableOfPeers:
    def test_full_forgets_the_quiet_ones_first(self) -> None:
        clock = ManualClock()
        pacer = Pacer(clock)
        pacer.admit("quiet")
        clock.advance(SAY_EVERY_S)
        for n in range(MAX_PEERS - 1):  # the table is full now
            assert pacer.admit(f"peer-{n}") == 0
        clock.advance(1.0)

        assert pacer.admit("newcomer") == 0
        # "quiet", said over a minute ago, made the room; the others are remembered still.
        assert pacer.admit("peer-0") is None

    def test_full_of_peers_said_just_now_forgets_the_longest_known(self) -> None:
        clock = ManualClock()
        pacer = Pacer(clock)
        for n in range(MAX_PEERS):
            pacer.admit(f"peer-{n}")

        assert pacer.admit("newcomer") == 0
        assert pacer.admit("peer-0") == 0  # forgotten, so said again
        assert pacer.admit("peer-2") is None  # remembered: still paced


    def test_full_forgets_the_one_said_longest_ago_not_the_one_known_first(self) -> None:
        clock = ManualClock()
        pacer = Pacer(clock)
        pacer.admit("first")
        clock.advance(SAY_EVERY_S / 2)
        pacer.admit("second")
        clock.advance(SAY_EVERY_S / 2)
        assert pacer.admit("first") == 0  # said again: now the latest said
        for n in range(MAX_PEERS - 2):  # the table is full now, no one in it quiet
            pacer.admit(f"peer-{n}")

        assert pacer.admit("newcomer") == 0
        assert pacer.admit("first") is None  # remembered: still paced
        assert pacer.admit("second") == 0  # forgotten, so said again


class TestUvicornsWarnings:
    def test_a_line_is_said_once_a_minute_with_the_ones_left_unsaid(self) -> None:
        clock = ManualClock()
        said_as_event = SaidAsEvent(clock)
        record = logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1,
                                   "Unsupported upgrade request.", None, None)

        with capture_logs() as logs:
            kept = [said_as_event.filter(record) for _ in range(3)]
            clock.advance(SAY_EVERY_S)
            kept.append(said_as_event.filter(record))

        assert kept == [False] * 4
        assert [(e["event"], e.get("unsaid")) for e in logs] == [
            ("web_server_warning", None), ("web_server_warning", 2)]
