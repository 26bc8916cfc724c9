"""``LeftWaiting.reasons``: what a run's exit line says of the builds earlier runs left
waiting, when they were all it had to do (the unsent case runs end to end in
``tests/integration/test_run_nothing_left.py``)."""

from __future__ import annotations

from preform_pipeline.dispatch.leftover import LeftWaiting


class TestReasons:
    """Each outcome counted, in the order the pass met them; nothing for an empty pass."""

    def test_sent_not_sent_and_still_waiting(self) -> None:
        left = LeftWaiting((("PP-A", "Form4-A"), ("PP-B", "Form4-B")), ("PP-C",),
                           (("PP-D", "no saved .form"),))
        assert left.reasons() == [
            "2 builds left waiting by an earlier run sent (PP-A to Form4-A, PP-B to Form4-B)",
            "1 build left waiting by an earlier run not sent (PP-D: no saved .form)",
            "1 build left waiting by an earlier run still waits for a printer",
        ]

    def test_two_not_sent_each_with_why(self) -> None:
        left = LeftWaiting((), ("PP-C", "PP-E"), (("PP-D", "a"), ("PP-F", "b")))
        assert left.reasons() == [
            "2 builds left waiting by an earlier run not sent (PP-D: a; PP-F: b)",
            "2 builds left waiting by an earlier run still wait for a printer",
        ]

    def test_an_empty_pass_says_nothing(self) -> None:
        assert LeftWaiting((), ()).reasons() == []


class TestFailed:
    """Only a send that failed fails the run: a build sent, or still waiting for a printer
    (the next run or watch sends it), is no failure."""

    def test_a_send_that_failed_is_a_failure(self) -> None:
        assert LeftWaiting((), (), (("PP-D", "no saved .form"),)).failed

    def test_sent_and_still_waiting_are_not(self) -> None:
        assert not LeftWaiting((("PP-A", "Form4-A"),), ("PP-C",)).failed
