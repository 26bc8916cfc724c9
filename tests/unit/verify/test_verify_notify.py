"""Notifications: webhook and command, retried with backoff, never blocking, never leaking."""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from preform_pipeline.logging import redact_url
from preform_pipeline.settings.verify import split_command
from preform_pipeline.verify import Notification, Notifier

HOOK = "https://hooks.example.com/services/T000/B000/s3cr3tpath?token=hunter2"
FAST: dict[str, Any] = {"backoff_s": 0.01, "max_backoff_s": 0.04}


def _note(**fields: object) -> Notification:
    values: dict[str, object] = {"event": "print_error", "job_key": "PP-4K7QX0M2ZD",
                                 "status": "ERROR", "message": "Resin level too low"}
    values.update(fields)
    return Notification(**values)  # type: ignore[arg-type]


class TestWebhook:
    """A webhook gets the notification as a JSON POST; failures are retried, then given up."""

    def test_the_notification_is_posted_as_json(self) -> None:
        received: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            received.append(request)
            return httpx.Response(204)

        with Notifier(webhook_url=HOOK, transport=httpx.MockTransport(answer)) as notifier:
            notifier.notify(_note())
            assert notifier.flush(5)
        [request] = received
        body = json.loads(request.content)
        assert request.method == "POST" and str(request.url) == HOOK
        assert request.headers["content-type"] == "application/json"
        assert (body["event"], body["job_key"], body["message"]) == (
            "print_error", "PP-4K7QX0M2ZD", "Resin level too low"
        )

    def test_failures_are_retried_with_growing_waits_until_one_succeeds(self) -> None:
        times: list[float] = []

        def answer(request: httpx.Request) -> httpx.Response:
            times.append(time.monotonic())
            return httpx.Response(503 if len(times) < 3 else 200)

        with Notifier(webhook_url=HOOK, transport=httpx.MockTransport(answer), **FAST) as n:
            n.notify(_note())
            assert n.flush(5)
            assert (n.delivered["webhook"], n.failed["webhook"]) == (1, 0)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(times) == 3 and gaps[0] >= 0.01 and gaps[1] >= 0.02

    def test_giving_up_logs_each_attempt_without_the_urls_secrets(self) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError(f"cannot connect to {request.url}")

        with capture_logs() as logs, Notifier(
            webhook_url=HOOK, transport=httpx.MockTransport(answer), max_attempts=3, **FAST
        ) as notifier:
            notifier.notify(_note())
            assert notifier.flush(5)
            assert notifier.failed["webhook"] == 1
        failed = [e for e in logs if e["event"] == "notify_failed"]
        assert [e["attempt"] for e in failed] == [1, 2, 3]
        assert any(e["event"] == "notify_gave_up" for e in logs)
        text = repr(logs) + repr(notifier)
        for secret in ("hunter2", "s3cr3tpath", "T000"):
            assert secret not in text
        assert failed[0]["target"] == "https://hooks.example.com/[redacted]"

    def test_notify_returns_at_once_while_the_webhook_hangs(self) -> None:
        release = threading.Event()

        def answer(request: httpx.Request) -> httpx.Response:
            release.wait(10)
            return httpx.Response(200)

        notifier = Notifier(webhook_url=HOOK, transport=httpx.MockTransport(answer))
        started = time.monotonic()
        for _ in range(20):
            notifier.notify(_note())
        assert time.monotonic() - started < 0.5
        assert not notifier.flush(0.05)
        release.set()
        assert notifier.flush(5)
        notifier.close()
        assert notifier.delivered["webhook"] == 20


class TestCommand:
    """A command runs without a shell, with the notification as JSON on its stdin."""

    def test_the_command_reads_the_json_on_stdin(self, tmp_path: Path) -> None:
        out = tmp_path / "got.json"
        script = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.stdin.read())"
        with Notifier(command=[sys.executable, "-c", script, str(out)]) as notifier:
            notifier.notify(_note(event="print_finished", status="FINISHED", message=None))
            assert notifier.flush(10)
        assert json.loads(out.read_text())["event"] == "print_finished"

    def test_a_failing_command_is_retried_and_its_error_logged(self, tmp_path: Path) -> None:
        script = "import sys; sys.stderr.write('no route to pager'); sys.exit(3)"
        with capture_logs() as logs, Notifier(
            command=[sys.executable, "-c", script], max_attempts=2, **FAST
        ) as notifier:
            notifier.notify(_note())
            assert notifier.flush(10)
        errors = [e["error"] for e in logs if e["event"] == "notify_failed"]
        assert errors == ["exit status 3: no route to pager"] * 2

    def test_a_missing_program_is_reported(self) -> None:
        with capture_logs() as logs, Notifier(
            command=["preform-pipeline-no-such-program"], max_attempts=1
        ) as notifier:
            notifier.notify(_note())
            assert notifier.flush(5)
        [failed] = [e for e in logs if e["event"] == "notify_failed"]
        assert failed["error"] == "command not found: preform-pipeline-no-such-program"

    def test_a_string_command_is_split_like_a_shell_would_not_run_by_one(self) -> None:
        assert split_command("notify --to 'lab team'") == ("notify", "--to", "lab team")


class TestNotifications:
    """Notification values and URL redaction."""

    def test_an_unknown_event_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown notification event"):
            Notification(event="print_exploded")

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            (HOOK, "https://hooks.example.com/[redacted]"),
            ("https://user:pw@example.com:8443/", "https://example.com:8443"),
            ("http://example.com", "http://example.com"),
            # A password holding "/" ends the authority at it: "user:secret" is read as a
            # host and a port that is no number, whose ValueError quoted the password.
            ("pgsql://pipeline:s3cret/x@db.lab/jobs", "pgsql://pipeline/[redacted]"),
            # An IPv6 host keeps its brackets, or its port could not be told from it.
            ("http://[::1]:44388/hook", "http://[::1]:44388/[redacted]"),
            ("https://token@[fe80::1%25eth0]", "https://[fe80::1%25eth0]"),
        ],
    )
    def test_urls_are_shown_by_scheme_and_host_only(self, url: str, shown: str) -> None:
        assert redact_url(url) == shown

    def test_a_full_queue_drops_the_oldest_notification(self) -> None:
        release = threading.Event()

        def answer(request: httpx.Request) -> httpx.Response:
            release.wait(10)
            return httpx.Response(200)

        with capture_logs() as logs:
            notifier = Notifier(webhook_url=HOOK, transport=httpx.MockTransport(answer),
                                queue_size=2)
            for n in range(6):
                notifier.notify(_note(job_key=f"PP-{n:010d}"))
            release.set()
            assert notifier.flush(5)
            notifier.close()
        assert any(e["event"] == "notify_dropped" for e in logs)
        assert notifier.delivered["webhook"] < 6
