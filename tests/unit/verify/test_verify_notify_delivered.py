"""A caller told when its notification is out: once every channel delivered it, never when
one gave up (the hot folder records a failed case's notice as sent only then)."""

from __future__ import annotations

import sys
import threading
from typing import Any

import httpx

from preform_pipeline.verify import Notification, Notifier

HOOK = "https://hooks.example.com/services/T000/B000/s3cr3tpath"
FAST: dict[str, Any] = {"backoff_s": 0.01, "max_backoff_s": 0.04}
WAIT_S = 10.0


def _note() -> Notification:
    return Notification(event="case_failed", job_key="PP-4K7QX0M2ZD", case_id="C-1",
                        message="label refused")


def _answering(*statuses: int) -> httpx.MockTransport:
    answers = iter(statuses)
    return httpx.MockTransport(lambda _request: httpx.Response(next(answers)))


class TestOnDelivered:
    """``on_delivered`` runs after a delivery, after retries too, and not after giving up."""

    def test_it_runs_once_the_webhook_took_it_after_a_retry(self) -> None:
        done = threading.Event()
        with Notifier(webhook_url=HOOK, transport=_answering(503, 204), **FAST) as notifier:
            notifier.notify(_note(), on_delivered=done.set)
            assert notifier.flush(WAIT_S)
        assert done.is_set()

    def test_it_does_not_run_when_the_webhook_never_took_it(self) -> None:
        done = threading.Event()
        with Notifier(webhook_url=HOOK, transport=_answering(503, 503), max_attempts=2,
                      **FAST) as notifier:
            notifier.notify(_note(), on_delivered=done.set)
            assert notifier.flush(WAIT_S)
        assert not done.is_set()

    def test_with_two_channels_both_must_deliver(self) -> None:
        done = threading.Event()
        failing = [sys.executable, "-c", "import sys; sys.exit(3)"]
        with Notifier(webhook_url=HOOK, command=failing, transport=_answering(204),
                      max_attempts=1, **FAST) as notifier:
            notifier.notify(_note(), on_delivered=done.set)
            assert notifier.flush(WAIT_S)
        assert notifier.delivered["webhook"] == 1 and notifier.failed["command"] == 1
        assert not done.is_set()
