"""Structured logging: structlog set up once, context bound per run/build/step, secrets redacted.

Log events are dictionaries first; the console renderer and the JSON-lines file renderer are
two views of the same event, and tests assert on the dictionaries (``structlog.testing``).
An event reaches the stdlib handlers of the ``preform_pipeline`` logger as one record whose
``msg`` is the event dict (handler levels and filters apply); a plain stdlib logger's records
pass through the same processors on their way out.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import urllib.parse
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

import structlog
import structlog.tracebacks
from structlog.testing import capture_logs
from structlog.typing import ExcInfo

from .clock import SYSTEM_CLOCK, Clock
from .diskspace import ROOM_LOOK_EVERY_S, disk_is_full, room_retry_in
from .errors import write_hint
from .wording import visible

__all__ = [
    "REDACTED",
    "SECRET_KEY_PATTERN",
    "capture_logs",
    "DEFAULT_LIBRARY_LOG_LEVEL",
    "MOVED_LOOK_S",
    "configure_logging",
    "declare_context_keys",
    "dropped",
    "get_logger",
    "hide_secrets",
    "redact_secrets",
    "redact_url",
]

REDACTED = "[redacted]"

#: Keys whose values never reach a log, whatever their nesting depth.
SECRET_KEY_PATTERN = re.compile(
    r"(secret|password|passwd|token|authorization|api[_-]?key|credential)", re.IGNORECASE
)

# Bearer tokens and basic-auth credentials embedded in free text (an error message quoting a
# header, a URL with user:password@, its user named or not: ``http://:hunter2@host``, a token
# given as the password of no user), and an HTTP URL's user alone (``http://TOKEN@host``):
# sent as basic auth with an empty password (urlauth.py), it is how a token is given to a
# proxy, and no rule can tell a token from a name, so it is hidden whole. A PostgreSQL URL's
# user alone is a role, its password given apart (store.password_file): it stays shown.
# A `"` that closes a field (one followed by `,` `:` `;` `}` `]` `)` or `>`) ends a user and
# a password: a URL followed directly by one and then an address (a JSON text's or an HTML
# tag's next field: ``"http://host:8080","to":"bob@lab.com"``) hid the words between (session
# 47). Any other `"`, and every `,`, may be part of a login (httpx sends ``olivia:hun"ter2``
# and ``to,ken`` as they are): hidden (review rv47-loose: session 47 ended a user at each `,`
# and `"` and a password at each `"`, which showed ``http://to,ken@host``,
# ``http://ol,ivia:hunter2@host`` and ``http://olivia:hun"ter2@host`` whole). So
# ``http://host,bob@lab.com`` is hidden too: erring toward hiding.
_OPEN_QUOTE = r'"(?![,:;}\])>])'
_INLINE_SECRET = re.compile(
    r"(?i)(?P<bearer>bearer\s+)[A-Za-z0-9._~+/=-]+"
    rf'|(?P<login>://(?:[^/\s:@"]|{_OPEN_QUOTE})*:)(?:[^@\s/"]|{_OPEN_QUOTE})+@'
    rf'|(?P<http>\bhttps?://)(?:[^/?#\s:@"]|{_OPEN_QUOTE})+@'
)


def hide_secrets(text: str) -> str:
    """``text`` with the secrets the log never shows taken out: a bearer token, a URL's
    password (``http://olivia:[redacted]@printhost:44388``), an HTTP URL's user alone
    (``http://[redacted]@printhost:44388``). For a line a command prints itself, by the rule
    of the log's events."""
    return _scrub_text(text)


def _hidden(match: re.Match[str]) -> str:
    if match["bearer"]:
        return match["bearer"] + REDACTED
    return (match["login"] or match["http"]) + REDACTED + "@"


def _scrub_text(text: str) -> str:
    return _INLINE_SECRET.sub(_hidden, text)


#: Values that can hold no secret: returned as they are without further type checks (every
#: log event's values pass through here, most of them numbers and short strings).
_PLAIN_TYPES = frozenset({int, float, bool, type(None)})

#: Short texts already scrubbed, and keys already judged: a build's events repeat the same
#: run id, build, server and step names, and the same few keys, in every event. Bounded:
#: emptied when full (a dict's get and set are atomic, so threads may share it).
_SCRUBBED: dict[str, str] = {}
_SECRET_KEYS: dict[str, bool] = {}
_CACHE_LIMIT = 4096
_CACHED_TEXT_CHARS = 200


def _scrub_new(text: str) -> str:
    """``text`` scrubbed, kept for next time when it is short."""
    scrubbed = _scrub_text(text)
    if len(text) <= _CACHED_TEXT_CHARS:
        if len(_SCRUBBED) >= _CACHE_LIMIT:
            _SCRUBBED.clear()
        _SCRUBBED[text] = scrubbed
    return scrubbed


def _judge_key(key: str) -> bool:
    """Whether ``key``'s value is a secret (``event`` never is), kept for next time."""
    secret = key != "event" and bool(SECRET_KEY_PATTERN.search(key))
    if len(_SECRET_KEYS) >= _CACHE_LIMIT:
        _SECRET_KEYS.clear()
    _SECRET_KEYS[key] = secret
    return secret


def _scrub(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return _SCRUBBED.get(value) or _scrub_new(value)
    if kind in _PLAIN_TYPES:
        return value
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and SECRET_KEY_PATTERN.search(k) else _scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(v) for v in value)
    if isinstance(value, str):
        return _scrub_text(value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace secret-looking keys' values and inline credentials."""
    # Every event passes here: the known keys and short texts are looked up, not searched.
    secret_keys, scrubbed = _SECRET_KEYS, _SCRUBBED
    for key, value in event_dict.items():
        # Only existing keys are assigned: the dict does not change size while iterated.
        secret = secret_keys.get(key)
        if secret is None:
            secret = _judge_key(key)
        if secret:
            event_dict[key] = REDACTED
        elif type(value) is str:
            event_dict[key] = scrubbed.get(value) or _scrub_new(value)
        elif type(value) not in _PLAIN_TYPES:
            event_dict[key] = _scrub(value)
    return event_dict


def redact_url(url: str) -> str:
    """``https://hooks.example.com/[redacted]``: scheme and host only, never path or query
    (a webhook URL's path is its secret)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "[unparseable URL]"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address: without its brackets a port could not follow
    try:
        port = parts.port
    except ValueError:
        # What urlsplit takes for the port is not one: a password holding "/" ends the
        # authority early (``u:secret/x@host``), leaving "user:secret" as host and port; its
        # error quotes the password, and argparse turned it into "invalid value: '<url>'".
        port = None
    if port is not None:
        host += f":{port}"
    rest = "/[redacted]" if (parts.path.strip("/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{host}{rest}"


class _ConsoleRenderer(structlog.dev.ConsoleRenderer):
    """structlog's console lines, but a value with spaces is quoted, not repr()'d: a Windows
    path (``C:\\parts\\a b.stl``) must read as the user wrote it, not with doubled
    backslashes. Control characters are shown as escapes (:func:`visible`): a dropped
    file's name reaches these lines, and must neither break them nor steer the terminal."""

    def _repr(self, val: Any) -> str:
        if not isinstance(val, str):
            return super()._repr(val)
        shown = visible(val)
        if set(shown) & {" ", "=", '"', "'"}:
            return '"' + shown.replace('"', '\\"') + '"'
        return shown


def _console_exception(sio: TextIO, exc_info: ExcInfo) -> None:
    """An exception on the console is its type and message, scrubbed, never a traceback: the
    people who read the console are not helped by one, and structlog's default (rich's
    traceback, when rich is installed) prints each frame's local variables, secrets among
    them. The JSON log keeps the frames."""
    text = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
    sio.write("\n" + _scrub_text(text) + "\n(the JSON log, when one is set, has where it happened)")


#: The JSON log's exceptions: type, message and frames (file, line, function), without the
#: frames' local variables, which structlog adds by default and no redaction could vet.
_EXCEPTION_DICTS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False))


def _json_exception(logger: Any, method: str,
                    event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The event's exception as dicts (:data:`_EXCEPTION_DICTS`), its messages scrubbed like
    every other value (the redaction ran before the exception was rendered)."""
    rendered = _EXCEPTION_DICTS(logger, method, event_dict)
    if "exception" in rendered:
        rendered["exception"] = _scrub(rendered["exception"])
    return rendered


#: One encoder for every JSON line: ``json.dumps(event, default=str)`` builds a new encoder
#: per call when given ``default``; the lines are the same.
_JSON_ENCODER = json.JSONEncoder(default=str)


def _render_json(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> str:
    """The event as one JSON line (what ``JSONRenderer(default=str)`` writes)."""
    return _JSON_ENCODER.encode(event_dict)


#: structlog's method names and their stdlib levels.
_LEVELS: Final[Mapping[str, int]] = {
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "exception": logging.ERROR,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "notset": logging.NOTSET,
}
_NO_FILE = "(unknown file)"
_NO_FUNCTION = "(unknown function)"


#: What a LogRecord's ``relativeCreated`` counts from: when the logging module was loaded
#: (kept in a private name of the stdlib; this process's first use if that ever goes).
_LOGGING_STARTED: Final[float] = float(getattr(logging, "_startTime", time.time()))
#: The file and module names LogRecord derives from ``_NO_FILE`` for every record.
_NO_FILE_NAME: Final = os.path.basename(_NO_FILE)
_NO_MODULE: Final = os.path.splitext(_NO_FILE_NAME)[0]


class _EventRecord(logging.LogRecord):
    """A structlog event on its way to the stdlib handlers: ``msg`` is the event dict,
    ``method`` the logger method it was logged with.

    It has every attribute a LogRecord has, with the values LogRecord would give a record
    with no caller (computed as Python 3.11's LogRecord does; ``taskName`` from 3.12 on),
    set here without LogRecord's work on those constants (the file and module names are
    derived once): a record is made for every event, most of them in a
    build's thread just woken from a wait, where each line of code costs several times its
    warm cost.
    """

    method: str

    def __init__(self, name: str, level: int, event_dict: MutableMapping[str, Any],
                 method: str) -> None:
        created = time.time()
        self.name = name
        self.msg = event_dict
        self.args = ()
        self.levelname = logging.getLevelName(level)
        self.levelno = level
        self.pathname = _NO_FILE
        self.filename = _NO_FILE_NAME
        self.module = _NO_MODULE
        self.exc_info = None
        self.exc_text = None
        self.stack_info = None
        self.lineno = 0
        self.funcName = _NO_FUNCTION
        self.created = created
        self.msecs = int((created - int(created)) * 1000) + 0.0
        self.relativeCreated = (created - _LOGGING_STARTED) * 1000
        if logging.logThreads:
            self.thread: int | None = threading.get_ident()
            self.threadName: str | None = threading.current_thread().name
        else:
            self.thread = self.threadName = None
        self.processName: str | None = None
        if logging.logMultiprocessing:
            self.processName = "MainProcess"
            multiprocessing = sys.modules.get("multiprocessing")
            if multiprocessing is not None:
                # As LogRecord: while multiprocessing is still loading, keep the default.
                with contextlib.suppress(Exception):
                    self.processName = multiprocessing.current_process().name
        self.process: int | None = os.getpid() if logging.logProcesses else None
        if sys.version_info >= (3, 12):
            self.taskName = _task_name()
        self.method = method


def _task_name() -> str | None:
    """The asyncio task's name, as LogRecord records it from Python 3.12 on."""
    if not getattr(logging, "logAsyncioTasks", True):
        return None
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    try:
        task = asyncio.current_task()
    except Exception:  # no running loop in this thread: no task
        return None
    return task.get_name() if task is not None else None


def _hand_over(logger: logging.Logger, method: str, event_dict: MutableMapping[str, Any]) -> None:
    """Give the event to the stdlib logger's handlers as one record (see :func:`_to_handlers`).

    ``Logger.handle`` only checks ``disabled`` and the logger's filters before it walks the
    handlers: a logger with neither (every logger of the package, unless a person adds a
    filter) has the handlers walked directly, two calls fewer per event.
    """
    record = _EventRecord(logger.name, _LEVELS[method], event_dict, method)
    if logger.disabled or logger.filters:
        logger.handle(record)
    else:
        logger.callHandlers(record)


#: The second the last timestamp fell in (seconds since the epoch) and its text up to the
#: seconds (``2026-12-07T22:40:18``): a build's events come a few in each second, and only
#: the microseconds differ between them. One tuple, replaced whole: threads may share it.
_LAST_SECOND: tuple[int, str] = (-1, "")


def _utc_text(ns: int) -> str:
    """``ns`` (nanoseconds since the epoch) as ISO 8601 UTC with a ``Z``, to the microsecond
    (cut, not rounded): what structlog's ``TimeStamper(fmt="iso", utc=True)`` writes, which
    leaves the fraction out when it is zero, as ``datetime.isoformat`` does. The date and
    time of day are formatted once a second (:data:`_LAST_SECOND`), not for every event."""
    global _LAST_SECOND
    second, micro = divmod(ns // 1000, 1_000_000)
    last = _LAST_SECOND
    if last[0] != second:  # another second, forward or back (the clock set): formatted anew
        last = _LAST_SECOND = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{last[1]}.{micro:06d}Z" if micro else f"{last[1]}Z"


def _utc_now_text() -> str:
    """Now, as :func:`_utc_text` writes it."""
    return _utc_text(time.time_ns())


def _stamp(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """The event's ``timestamp`` (:func:`_utc_now_text`), in one call instead of three."""
    event_dict["timestamp"] = _utc_now_text()
    return event_dict


def _to_handlers(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog's last processor: hand the event to the stdlib logger's handlers as one record.

    What ``wrap_for_formatter`` and the logger's ``info()`` did, less what no handler here
    reads: the caller lookup (a walk up the stack past structlog's frames) and the formatter's
    copy of the record. The level was checked by ``filter_by_level`` first; the logger's own
    filters and its handlers' levels and filters apply as before.
    """
    _hand_over(logger, method, event_dict)
    raise structlog.DropEvent


class _EventFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's ProcessorFormatter, with a short way for the events of :func:`_to_handlers`:
    their dict (copied: renderers pop keys) goes through the renderers directly. Records of
    plain stdlib loggers take the formatter's own way (``foreign_pre_chain`` first)."""

    def __init__(self, renderers: Sequence[Any], shared: Sequence[Any]) -> None:
        super().__init__(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
            foreign_pre_chain=shared,
        )
        self._renderers = tuple(renderers)

    def format(self, record: logging.LogRecord) -> str:
        if type(record) is not _EventRecord:
            return super().format(record)
        event: Any = dict(record.msg)  # type: ignore[arg-type]
        for render in self._renderers:
            event = render(None, record.method, event)
        return str(event)


def declare_context_keys(*keys: str) -> None:
    """Create the context variables behind these ``bind_contextvars`` keys now.

    structlog creates a key's ``ContextVar`` on the key's first bind, with no lock: two threads
    binding a new key at once each create one and the later replaces the earlier in structlog's
    table, so the first thread's value never reaches an event and its ``reset_contextvars``
    fails ("created by a different ContextVar"): a build failed that way on its first step.
    A module whose threads bind keys declares them when it is imported (once, under the import
    lock), which leaves every later bind a plain ``set``. Nothing stays bound here."""
    structlog.contextvars.reset_contextvars(
        **structlog.contextvars.bind_contextvars(**dict.fromkeys(keys))
    )


#: The processors :func:`configure_logging` shares between structlog and the formatters, in
#: their order: while the chain is made of exactly these, a module logger runs them inline
#: (:meth:`_ModuleLogger._event`).
_STANDARD_SHARED: Final[tuple[Any, ...]] = (
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    redact_secrets,
    _stamp,
)
#: The names ``bind_contextvars`` gives its context variables begin with this.
_CONTEXT_PREFIX: Final = structlog.contextvars.STRUCTLOG_KEY_PREFIX
_CONTEXT_PREFIX_LEN: Final = len(_CONTEXT_PREFIX)
#: ``add_log_level``'s level name for each logger method (``warn`` and ``exception`` are
#: aliases; the others are their own names).
_LEVEL_NAMES: Final[Mapping[str, str]] = {
    method: structlog.processors.add_log_level(None, method, {})["level"] for method in _LEVELS
}


class _Chain:
    """The structlog configuration :func:`configure_logging` made last, as it was made.

    While structlog's configuration is still exactly this one (the same objects, the
    processor list holding the same processors), a module logger runs the event through
    ``shared`` and hands it over itself: what structlog's bound logger does, less its layers
    (two proxy calls, a context copy, the processor loop and the ``DropEvent`` that ends
    it). The event, its key order and its lines are the same either way. ``capture_logs``
    swaps the list's contents, and any other ``structlog.configure`` the objects, so events
    then take structlog's own way, as before.
    """

    __slots__ = ("context", "factory", "processors", "shared", "snapshot", "standard", "wrapper")

    def __init__(
        self,
        processors: list[Any],
        shared: tuple[Any, ...],
        factory: Any,
        config: Mapping[str, Any],
    ) -> None:
        self.processors = processors
        self.snapshot = list(processors)
        self.shared = shared
        #: The shared processors are configure_logging's own (run inline, see above).
        self.standard = shared == _STANDARD_SHARED
        self.factory = factory
        self.wrapper = config["wrapper_class"]
        self.context = config["context_class"]

    def current(self, config: Mapping[str, Any]) -> bool:
        """Whether structlog's configuration ``config`` is still this one."""
        processors = config["processors"]
        return (
            processors is self.processors
            and processors == self.snapshot
            and config["logger_factory"] is self.factory
            and config["wrapper_class"] is self.wrapper
            and config["context_class"] is self.context
        )


#: Set by :func:`configure_logging`; None until then.
_CHAIN: _Chain | None = None


class _JsonEventFormatter(_EventFormatter):
    """The JSON lines' formatter: an event without ``exc_info`` gives the exception renderer
    nothing to do and the encoder changes nothing, so it is encoded as it is, uncopied."""

    def format(self, record: logging.LogRecord) -> str:
        if type(record) is _EventRecord and "exc_info" not in record.msg:
            return _JSON_ENCODER.encode(record.msg)
        return super().format(record)


#: How often the JSON log's handler looks whether its file was moved away (rotated).
MOVED_LOOK_S: Final = 1.0


class _JsonLinesHandler(logging.FileHandler):
    """The JSON log's file handler, with a short way for the events of :func:`_to_handlers`.

    Such an event, when the handler has no filter, its own formatter and an open file, is
    encoded as :class:`_JsonEventFormatter` encodes it, written with the handler's
    terminator and flushed under the handler's lock: what ``Handler.handle``,
    ``FileHandler.emit``, ``StreamHandler.emit`` and ``flush`` do, in one call instead of
    about a dozen. Anything else (a plain stdlib record, an exception to render, a filter,
    another formatter, a file not open yet or closed) takes the stdlib's way.

    A file that cannot grow (a full disk) never stops the program, nor floods the console
    with a traceback per event: the first refused write is said once there (the warning
    ``log_file_unwritable``: the file, why, what helps), the events meanwhile are left out,
    and the first one written again is preceded by the warning ``log_file_resumed`` with
    how many were left out. The file keeps whole lines only: the piece of a line a full
    disk cut off is removed, so every line of the file stays JSON.

    A refused file is looked at and tried again on ``clock``, not at every event (the hot
    folder's rule for its files waiting for room, :mod:`.diskspace`): first 2 s after the
    refusal; a disk still full is looked at again a second later, and so on, so room made
    is taken up within about a second; a try refused again (a used-up quota no free-space
    figure shows, a line larger than the room left) waits 4, 8 ... at most 60 s before the
    next. A disk that stays full costs an event neither a write nor a look at the disk.

    A file moved away or removed (logrotate's way: rename, then a new file) is seen within
    :data:`MOVED_LOOK_S` on ``clock`` and the path opened again, so a service's log can be
    rotated while it runs. Before session 48 the handler wrote on into the moved file until
    the process ended, and nothing bounded a log the docs named. A path that cannot be
    opened again (its folder removed, no permission) is a refused write like the rest
    (:meth:`emit`).
    """

    def __init__(self, filename: Path, *, encoding: str, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(filename, encoding=encoding)
        self.clock = clock
        #: Events left out since the file last took one (0: it is being written).
        self.lost = 0
        #: The errno of the write that started the present gap.
        self._refusal = 0
        #: Writes refused since an event was last written: each doubles the wait before the
        #: next try (:meth:`_refused`).
        self._refusals = 0
        #: The monotonic time before which the file is neither looked at nor tried again.
        self._not_before = 0.0
        #: Set while this handler's own warning goes to the other handlers.
        self._announcing = False
        #: The monotonic time of the next look whether the file was moved away.
        self._next_move_look = 0.0

    def handle(self, record: logging.LogRecord) -> Any:
        with self.lock:  # type: ignore[union-attr]  # made in Handler.__init__
            if self._announcing:
                return False  # our own word on the file that refused: not written into it
            self._follow_move()
            if not self.lost:
                return self._handle(record)
            if not self._resume():
                self.lost += 1  # still refused: this event is left out too
                return True
            written = self._handle(record)
            if not self.lost:
                # Not at the resumed line: a disk with room for it but not for the events
                # (a line larger than what is left) would restart the wait at its shortest.
                self._refusals = 0
            return written

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)  # a bug of ours (a value JSON cannot take): said
            return
        self._drop_stream()
        self.lost += 1
        if self.lost == 1:
            self._refusal = error.errno or 0
            self._refused()
            self._announce("log_file_unwritable", path=self.baseFilename,
                           error=error.strerror or str(error), hint=write_hint(error),
                           effect="its events are left out until it can be written again")

    def _handle(self, record: logging.LogRecord) -> Any:
        """:meth:`handle`'s work once the file takes events; called under the lock."""
        if (
            type(record) is not _EventRecord
            or self.filters
            or type(self.formatter) is not _JsonEventFormatter
            or "exc_info" in record.msg
            or self.stream is None
        ):
            return super().handle(record)
        try:
            # Encoded inside the try, as a formatter's work is: a value JSON cannot take (a
            # key that is not a text) is reported, never raised at the caller.
            line = _JSON_ENCODER.encode(record.msg) + self.terminator
            stream = self.stream
            stream.write(line)
            stream.flush()
        except RecursionError:  # as StreamHandler.emit: never swallowed
            raise
        except Exception:
            self.handleError(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """``FileHandler.emit`` (the stdlib's way, above), with the opening of the path in
        the handler's error path: after :meth:`_follow_move` let a rotated file go, a path
        that cannot be made again (its folder removed, no permission, a full disk) is a
        refused write like any other (``log_file_unwritable``, the events counted, tried
        again on the clock), never an ``OSError`` raised at the line that logged."""
        if self.stream is None:
            try:
                self.stream = self._open()
            except OSError:
                self.handleError(record)
                return
        logging.StreamHandler.emit(self, record)

    def _follow_move(self) -> None:
        """Close the file if its path now names another file or none (it was rotated), at
        most once per :data:`MOVED_LOOK_S`: a look costs two system calls, too many for
        every event. The next event opens the path again (:meth:`emit`: a path that
        cannot be opened is said as a refused write)."""
        now = self.clock.monotonic()
        if self.stream is None or now < self._next_move_look:
            return
        self._next_move_look = now + MOVED_LOOK_S
        try:
            opened = os.fstat(self.stream.fileno())
        except (OSError, ValueError):
            return  # no file of ours under the stream (a test's buffer): nothing to follow
        try:
            named = os.stat(self.baseFilename)
        except FileNotFoundError:
            pass  # removed, or renamed with nothing created in its place yet
        except OSError:
            return  # the folder cannot be looked at now: the open file still takes lines
        else:
            if (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino):
                return
        stream, self.stream = self.stream, None
        with contextlib.suppress(OSError):
            stream.close()

    def _drop_stream(self) -> None:
        """Close the file without writing what its buffer holds, and cut the piece of a line
        the refused write left at its end; the next event opens it again."""
        stream, self.stream = self.stream, None  # reopened by the next emit
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()  # the flush fails again, and the buffer goes with the file
        with contextlib.suppress(OSError):
            _cut_to_whole_lines(Path(self.baseFilename))

    def _refused(self) -> None:
        """A write to the file was refused: the next look or try waits longer each time
        (the class docstring)."""
        self._not_before = self.clock.monotonic() + room_retry_in(self._refusals)
        self._refusals += 1

    def _resume(self) -> bool:
        """Once its wait is over, try the file again with the line that says where its gap
        is: written, the console is told too and the file takes events again; refused, it
        stays left out and waits (longer, if the write was refused).

        A full disk is tried again only once it is no longer full (:mod:`.diskspace`): the
        bytes a cut line gave back would take the next line or two, and the file would go
        on and off, said each time."""
        if self.clock.monotonic() < self._not_before:
            return False
        if self._refusal == errno.ENOSPC and disk_is_full(Path(self.baseFilename).parent):
            self._not_before = self.clock.monotonic() + ROOM_LOOK_EVERY_S  # no refusal
            return False
        line = _JSON_ENCODER.encode({
            "path": self.baseFilename, "events_left_out": self.lost,
            "event": "log_file_resumed", "level": "warning", "timestamp": _utc_now_text(),
        })
        try:
            if self.stream is None:
                self.stream = self._open()
            self.stream.write(line + self.terminator)
            self.stream.flush()
        except OSError:
            self._drop_stream()
            self._refused()
            return False
        lost, self.lost = self.lost, 0
        self._announce("log_file_resumed", path=self.baseFilename, events_left_out=lost)
        return True

    def _announce(self, event: str, **values: Any) -> None:
        """A warning to every handler but this one: the console says it on stderr. Said
        outside the context bound where the write failed: it is no build's warning, for a
        build's summary to collect and the console to leave out."""
        self._announcing = True
        try:
            contextvars.Context().run(get_logger(__name__).warning, event, **values)
        finally:
            self._announcing = False


#: How far back from its end a log file is searched for the last whole line's end.
_TAIL_BYTES: Final = 1 << 20


def _cut_to_whole_lines(path: Path) -> None:
    """Remove what follows the last line end of ``path``: the start of a line a full disk
    cut off. Shortening a file needs no free space."""
    with open(path, "r+b") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return  # whole (as every time after the first cut of a gap): nothing read
        start = max(0, size - _TAIL_BYTES)
        file.seek(start)
        tail = file.read()
        end = tail.rfind(b"\n")
        if end < 0 and start > 0:
            return  # a line longer than the tail: not ours to guess at
        file.truncate(start + end + 1)


def configure_logging(
    *,
    level: str = "INFO",
    json_file: Path | None = None,
    console: TextIO | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Set up structlog: readable lines on ``console`` (stderr), JSON lines in ``json_file``
    (a refused one tried again on ``clock``: :class:`_JsonLinesHandler`)."""
    stream = console if console is not None else sys.stderr
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        redact_secrets,
        # After the redaction: a timestamp holds no secret, and each one is a new text that
        # would be searched and then crowd the cache of scrubbed texts (the key order of
        # the event, and so of its lines, is the same either way).
        _stamp,
    ]
    handlers: list[logging.Handler] = []
    console_handler = logging.StreamHandler(stream)
    console_handler.setFormatter(
        _EventFormatter([_ConsoleRenderer(colors=False, exception_formatter=_console_exception)],
                        shared)
    )
    handlers.append(console_handler)
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = _JsonLinesHandler(json_file, encoding="utf-8", clock=clock)
        file_handler.setFormatter(
            _JsonEventFormatter([_json_exception, _render_json], shared)
        )
        handlers.append(file_handler)
    root = logging.getLogger("preform_pipeline")
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(numeric)
    root.propagate = False
    # Drop events below the level before any processor runs: debug events on hot paths
    # (one per HTTP request) would otherwise cost the runner CPU only to be discarded.
    processors: list[Any] = [structlog.stdlib.filter_by_level, *shared, _to_handlers]
    factory = structlog.stdlib.LoggerFactory()
    structlog.configure(
        processors=processors,
        logger_factory=factory,
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    global _CHAIN
    _CHAIN = _Chain(processors, tuple(shared), factory, structlog.get_config())


#: The stdlib loggers :func:`dropped` asks, by name (``logging.getLogger`` takes the module
#: lock each time; a logger, once made, stays the same object).
_STDLIB_LOGGERS: dict[str, logging.Logger] = {}


def dropped(name: str, level: int) -> bool:
    """Whether an event at ``level`` from the logger ``name`` would be dropped before any
    other processor runs (the level filter :func:`configure_logging` puts first).

    A hot path (one debug event per HTTP request) asks first and skips building an event
    nobody will see. False whenever structlog is set up some other way: ``capture_logs`` in
    tests sees every event, as before.
    """
    config = structlog.get_config()
    processors = config["processors"]
    if not (
        processors
        and processors[0] is structlog.stdlib.filter_by_level
        and isinstance(config["logger_factory"], structlog.stdlib.LoggerFactory)
    ):
        return False
    logger = _STDLIB_LOGGERS.get(name)
    if logger is None:
        logger = _STDLIB_LOGGERS[name] = logging.getLogger(name)
    return not logger.isEnabledFor(level)


class _ModuleLogger:
    """What :func:`get_logger` returns: structlog's lazy logger, assembled once per
    configuration instead of once per event.

    structlog's proxy builds a new bound logger (and looks the stdlib logger up) for every
    event, so that a logger made at import time follows a later ``structlog.configure``
    (``capture_logs`` in tests, :func:`configure_logging`). This one keeps the logger it
    built while the configuration is the same objects (``capture_logs`` changes the
    processor list in place, which the kept logger shares), and builds a new one when it is
    not. Bound loggers are immutable: ``bind()`` and the like return new ones.
    """

    __slots__ = (
        "_built", "_context", "_factory", "_initial", "_name", "_processors", "_proxy",
        "_stdlib", "_wrapper",
    )

    def __init__(self, name: str, initial: dict[str, Any]) -> None:
        self._name = name
        self._initial = dict(initial)
        self._stdlib: logging.Logger | None = None
        self._proxy: Any = structlog.get_logger(name, **initial)
        self._built: Any = None
        self._processors: Any = None
        self._factory: Any = None
        self._wrapper: Any = None
        self._context: Any = None

    def _logger(self) -> Any:
        config = structlog.get_config()
        built = self._built
        if (
            built is None
            or config["processors"] is not self._processors
            or config["logger_factory"] is not self._factory
            or config["wrapper_class"] is not self._wrapper
            or config["context_class"] is not self._context
        ):
            built = self._proxy.bind()
            self._built = built
            self._processors = config["processors"]
            self._factory = config["logger_factory"]
            self._wrapper = config["wrapper_class"]
            self._context = config["context_class"]
        return built

    def _event(self, method: str, event: str | None, args: tuple[Any, ...],
               kw: dict[str, Any]) -> Any:
        """Log ``event`` the short way when :func:`configure_logging`'s chain is in place
        (:class:`_Chain`), else through structlog's bound logger."""
        chain = _CHAIN
        if chain is None or args or not chain.current(structlog.get_config()):
            return getattr(self._logger(), method)(event, *args, **kw)
        logger = self._stdlib
        if logger is None:
            logger = self._stdlib = logging.getLogger(self._name)
        # filter_by_level, the chain's first processor.
        if not logger.isEnabledFor(_LEVELS[method]):
            return None
        event_dict: Any = {**self._initial, **kw}
        if event is not None:
            event_dict["event"] = event
        if chain.standard:
            # The standard processors' work, in their order, without a call each: a build
            # logs about fifteen events, most right after a wait for the server, where
            # every call costs several times its warm cost. merge_contextvars:
            context = contextvars.copy_context()
            for variable in context:
                name = variable.name
                if name.startswith(_CONTEXT_PREFIX):
                    value = context[variable]
                    if value is not Ellipsis:
                        event_dict.setdefault(name[_CONTEXT_PREFIX_LEN:], value)
            # add_log_level, redact_secrets and _stamp:
            event_dict["level"] = _LEVEL_NAMES[method]
            event_dict = redact_secrets(logger, method, event_dict)
            event_dict["timestamp"] = _utc_now_text()
        else:
            try:
                for processor in chain.shared:
                    event_dict = processor(logger, method, event_dict)
            except structlog.DropEvent:
                return None
        _hand_over(logger, method, event_dict)
        return None

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._event("debug", event, args, kw)

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._event("info", event, args, kw)

    def warning(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._event("warning", event, args, kw)

    def error(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        return self._event("error", event, args, kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger(), name)

    def __repr__(self) -> str:
        return f"<_ModuleLogger {self._proxy!r}>"


#: Where events go when nobody configured logging (the package used as a library).
DEFAULT_LIBRARY_LOG_LEVEL = "WARNING"


def get_logger(name: str, **initial: Any) -> Any:
    """A structlog logger for a module; ``initial`` values are bound to every event.

    Used as a library with structlog left unconfigured, the package would otherwise print every
    debug event on stdout (structlog's default); route them through stdlib logging to stderr
    at WARNING instead. An application that configures structlog itself keeps its setup.
    """
    if not structlog.is_configured():
        configure_logging(level=DEFAULT_LIBRARY_LOG_LEVEL)
    return _ModuleLogger(name, initial)
