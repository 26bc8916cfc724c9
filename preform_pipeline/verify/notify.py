"""Notifications when a print ends or something fails: a webhook, a command, or both.

:class:`Notifier` hands every notification to a background thread and returns at once, so
a slow or dead webhook never holds up preparing, printing or verifying. Each channel is tried
up to ``max_attempts`` times with exponential backoff (``backoff_s``, doubled each time, at
most ``max_backoff_s``); a notification that still fails is logged (``notify_failed`` per
attempt, ``notify_gave_up`` at the end) and dropped.

- **Webhook**: ``POST <webhook_url>`` with the notification as a JSON body. Any 2xx answer
  counts as delivered. httpx, with a ``transport=`` seam for tests.
- **Command**: the command runs without a shell (a list of arguments, or a string split like a
  shell would), the notification as JSON on its standard input, with a timeout. Exit status 0
  counts as delivered.

A caller that must know (to record a notification as sent, so a restart does not send it
again) passes ``on_delivered``: called from the delivery thread once every channel delivered
it, never when one gave up.

Webhook URLs often hold a secret (a token in the query, or in the path as Slack's do), so logs
show only the scheme and host (:func:`redact_url`); commands are logged by their program name.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Final

import httpx

from preform_pipeline import __version__
from preform_pipeline.backoff import backoff
from preform_pipeline.logging import get_logger, redact_url
from preform_pipeline.settings.verify import NotificationSettings, split_command

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT_S",
    "DEFAULT_COMMAND_TIMEOUT_S",
    "DEFAULT_NOTIFY_ATTEMPTS",
    "DEFAULT_NOTIFY_BACKOFF_MAX_S",
    "DEFAULT_NOTIFY_BACKOFF_S",
    "DEFAULT_NOTIFY_QUEUE_SIZE",
    "DEFAULT_WEBHOOK_TIMEOUT_S",
    "NOTIFICATION_EVENTS",
    "Notification",
    "Notifier",
    "make_notifier",
    "notification_for_status",
]

log = get_logger(__name__)

#: Tries per channel and notification (the first included).
DEFAULT_NOTIFY_ATTEMPTS: Final = 5
#: Wait before the second try; doubled before each further one, up to the maximum. Five tries
#: span about a minute: enough for a webhook service that restarts.
DEFAULT_NOTIFY_BACKOFF_S: Final = 2.0
DEFAULT_NOTIFY_BACKOFF_MAX_S: Final = 60.0
DEFAULT_WEBHOOK_TIMEOUT_S: Final = 10.0
DEFAULT_COMMAND_TIMEOUT_S: Final = 30.0
#: Notifications waiting to be delivered; beyond it the oldest is dropped (and logged), so a
#: dead webhook never grows memory without bound.
DEFAULT_NOTIFY_QUEUE_SIZE: Final = 1000
#: How long :meth:`Notifier.close` waits for queued notifications by default.
DEFAULT_CLOSE_TIMEOUT_S: Final = 5.0

#: Events a notification can carry.
NOTIFICATION_EVENTS: Final[frozenset[str]] = frozenset(
    {
        "print_finished",
        "print_aborted",
        "print_error",
        "print_unverified",
        "build_failed",
        "print_unconfirmed",
        "verification_failed",
        # The hot folder's own events (no Web API needed): a case in failed/, a prepared
        # build waiting longer than the limit for a free printer.
        "case_failed",
        "build_waiting",
    }
)

_STOP: Final = object()


@dataclass(frozen=True)
class Notification:
    """One thing worth telling someone about: a print's end, or a failure."""

    event: str
    job_key: str | None = None
    name: str | None = None
    status: str | None = None
    message: str | None = None
    printer: str | None = None
    print_job_id: str | None = None
    recipe: str | None = None
    run_id: str | None = None
    case_id: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def __post_init__(self) -> None:
        if self.event not in NOTIFICATION_EVENTS:
            known = ", ".join(sorted(NOTIFICATION_EVENTS))
            raise ValueError(f"unknown notification event {self.event!r}; known: {known}")

    def as_json(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "job_key": self.job_key,
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "printer": self.printer,
            "print_job_id": self.print_job_id,
            "recipe": self.recipe,
            "run_id": self.run_id,
            "case_id": self.case_id,
            "at": self.at.isoformat(),
            "source": f"preform-pipeline {__version__}",
        }


#: A queued notification and who to tell once it was delivered.
_Queued = tuple[Notification, Callable[[], None] | None]


class Notifier:
    """Delivers notifications in the background (module docstring); ``notify`` never blocks.

    Use as a context manager or call :meth:`close`, which waits a little for queued
    notifications; waits between attempts are cut short by ``close``.
    """

    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        command: str | Sequence[str] | None = None,
        transport: httpx.BaseTransport | None = None,
        max_attempts: int = DEFAULT_NOTIFY_ATTEMPTS,
        backoff_s: float = DEFAULT_NOTIFY_BACKOFF_S,
        max_backoff_s: float = DEFAULT_NOTIFY_BACKOFF_MAX_S,
        webhook_timeout_s: float = DEFAULT_WEBHOOK_TIMEOUT_S,
        command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
        queue_size: int = DEFAULT_NOTIFY_QUEUE_SIZE,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self.webhook_url = webhook_url or None
        self.command = split_command(command) if command else ()
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.command_timeout_s = command_timeout_s
        self._http: httpx.Client | None = None
        if self.webhook_url is not None:
            self._http = httpx.Client(
                transport=transport,
                timeout=webhook_timeout_s,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": f"preform-pipeline/{__version__}",
                },
                follow_redirects=False,
            )
        self._queue: queue.Queue[_Queued | object] = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._idle = threading.Condition()
        self._busy = 0
        self._thread: threading.Thread | None = None
        #: Delivery counts, for reports and tests: ``sent`` and ``failed`` per channel.
        self.delivered: dict[str, int] = {"webhook": 0, "command": 0}
        self.failed: dict[str, int] = {"webhook": 0, "command": 0}

    def __repr__(self) -> str:
        hook = redact_url(self.webhook_url) if self.webhook_url else None
        program = self.command[0] if self.command else None
        return f"Notifier(webhook={hook!r}, command={program!r})"

    @property
    def enabled(self) -> bool:
        return self.webhook_url is not None or bool(self.command)

    # -- sending ------------------------------------------------------------------------------

    def notify(
        self, notification: Notification, *, on_delivered: Callable[[], None] | None = None
    ) -> None:
        """Queue ``notification`` for delivery and return at once (module docstring)."""
        if not self.enabled or self._closing.is_set():
            return
        self._start()
        with self._idle:
            self._busy += 1
        while True:
            try:
                self._queue.put_nowait((notification, on_delivered))
                return
            except queue.Full:
                try:
                    dropped = self._queue.get_nowait()
                except queue.Empty:
                    continue
                with self._idle:
                    self._busy -= 1
                if isinstance(dropped, tuple):
                    gone: Notification = dropped[0]
                    log.warning("notify_dropped", notification=gone.event,
                                job_key=gone.job_key, reason="queue full")

    def flush(self, timeout: float) -> bool:
        """Wait until every queued notification was delivered or given up; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout=timeout)

    def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT_S) -> None:
        """Give queued notifications up to ``timeout`` seconds, then stop the thread."""
        if self._thread is not None:
            self.flush(timeout)
        self._closing.set()
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=max(timeout, 0.1))
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the delivery thread ------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._idle:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="notifier", daemon=True
                )
                self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, tuple)
            notification, on_delivered = item
            try:
                if self._deliver(notification) and on_delivered is not None:
                    on_delivered()
            except Exception:  # a bug here must not kill the thread and strand the queue
                log.exception("notify_internal_error", notification=notification.event)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def _deliver(self, notification: Notification) -> bool:
        """Every channel, each with its retries; whether all of them delivered it."""
        body = json.dumps(notification.as_json()).encode("utf-8")
        channels: list[tuple[str, Any]] = []
        if self.webhook_url is not None:
            channels.append(("webhook", self._post))
        if self.command:
            channels.append(("command", self._run))
        delivered = [self._with_retries(channel, send, body, notification)
                     for channel, send in channels]
        return all(delivered)

    def _with_retries(
        self, channel: str, send: Any, body: bytes, notification: Notification
    ) -> bool:
        for attempt in range(1, self.max_attempts + 1):
            delay = backoff(attempt - 1, self.backoff_s, self.max_backoff_s)
            error = send(body)
            if error is None:
                self.delivered[channel] += 1
                log.debug("notify_sent", channel=channel, notification=notification.event,
                          attempt=attempt, target=self._target(channel))
                return True
            last = attempt == self.max_attempts
            log.warning(
                "notify_failed",
                channel=channel,
                notification=notification.event,
                job_key=notification.job_key,
                attempt=attempt,
                max_attempts=self.max_attempts,
                error=error,
                target=self._target(channel),
                retry_in_s=None if last else round(delay, 3),
            )
            if last or self._closing.wait(delay):
                break
        self.failed[channel] += 1
        log.error("notify_gave_up", channel=channel, notification=notification.event,
                  job_key=notification.job_key, target=self._target(channel))
        return False

    def _target(self, channel: str) -> str:
        if channel == "webhook" and self.webhook_url is not None:
            return redact_url(self.webhook_url)
        return self.command[0] if self.command else ""

    def _post(self, body: bytes) -> str | None:
        assert self._http is not None and self.webhook_url is not None
        try:
            response = self._http.post(self.webhook_url, content=body)
        except httpx.HTTPError as exc:
            # The exception text may quote the URL (and its token): only its class is logged.
            return f"{type(exc).__name__}"
        if response.status_code // 100 != 2:
            return f"HTTP {response.status_code}"
        return None

    def _run(self, body: bytes) -> str | None:
        try:
            done = subprocess.run(
                list(self.command),
                input=body,
                capture_output=True,
                timeout=self.command_timeout_s,
                shell=False,
                check=False,
            )
        except FileNotFoundError:
            return f"command not found: {self.command[0]}"
        except subprocess.TimeoutExpired:
            return f"no exit within {self.command_timeout_s:g} s"
        except OSError as exc:
            return f"cannot run {self.command[0]}: {exc.strerror or exc}"
        if done.returncode != 0:
            tail = done.stderr.decode("utf-8", "replace").strip()[-300:]
            return f"exit status {done.returncode}" + (f": {tail}" if tail else "")
        return None


def notification_for_status(status: str, **fields: Any) -> Notification:
    """A print-ended notification for a verified status (``FINISHED``, ``ERROR``...)."""
    event = {
        "FINISHED": "print_finished",
        "ABORTED": "print_aborted",
        "ERROR": "print_error",
        "UNVERIFIED": "print_unverified",
    }[status]
    return Notification(event=event, status=status, **fields)


def make_notifier(settings: NotificationSettings, **options: Any) -> Notifier | None:
    """A :class:`Notifier` for the configured channels, or None when none is configured."""
    if not settings.enabled:
        return None
    return Notifier(webhook_url=settings.webhook_url, command=settings.command or None, **options)
