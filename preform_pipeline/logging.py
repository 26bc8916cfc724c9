"""Structured logging: structlog set up once, context bound per run/build/step, secrets redacted.

Log events are dictionaries first; the console renderer and the JSON-lines file renderer are
two views of the same event, and tests assert on the dictionaries (``structlog.testing``).
"""

from __future__ import annotations

import logging
import re
import sys
import urllib.parse
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog
from structlog.testing import capture_logs

__all__ = [
    "REDACTED",
    "SECRET_KEY_PATTERN",
    "capture_logs",
    "DEFAULT_LIBRARY_LOG_LEVEL",
    "configure_logging",
    "dropped",
    "get_logger",
    "redact_secrets",
    "redact_url",
]

REDACTED = "[redacted]"

#: Keys whose values never reach a log, whatever their nesting depth.
SECRET_KEY_PATTERN = re.compile(
    r"(secret|password|passwd|token|authorization|api[_-]?key|credential)", re.IGNORECASE
)

# Bearer tokens and basic-auth credentials embedded in free text (an error message quoting a
# header, a URL with user:password@).
_INLINE_SECRET = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+|(://[^/\s:@]+:)[^@\s/]+(@)")


def _scrub_text(text: str) -> str:
    return _INLINE_SECRET.sub(
        lambda m: (m.group(1) + REDACTED) if m.group(1) else (m.group(2) + REDACTED + m.group(3)),
        text,
    )


#: Values that can hold no secret: returned as they are without further type checks (every
#: log event's values pass through here, most of them numbers and short strings).
_PLAIN_TYPES = frozenset({int, float, bool, type(None)})


def _scrub(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return _scrub_text(value)
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
    for key in list(event_dict):
        value = event_dict[key]
        if key != "event" and SECRET_KEY_PATTERN.search(key):
            event_dict[key] = REDACTED
        else:
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
    if parts.port is not None:
        host += f":{parts.port}"
    rest = "/[redacted]" if (parts.path.strip("/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{host}{rest}"


class _ConsoleRenderer(structlog.dev.ConsoleRenderer):
    """structlog's console lines, but a value with spaces is quoted, not repr()'d: a Windows
    path (``C:\\parts\\a b.stl``) must read as the user wrote it, not with doubled
    backslashes."""

    def _repr(self, val: Any) -> str:
        if isinstance(val, str) and set(val) & {" ", "\t", "=", "\r", "\n", '"', "'"}:
            return '"' + val.replace('"', '\\"').replace("\n", " ") + '"'
        return super()._repr(val)


def configure_logging(
    *,
    level: str = "INFO",
    json_file: Path | None = None,
    console: TextIO | None = None,
) -> None:
    """Set up structlog: readable lines on ``console`` (stderr), JSON lines in ``json_file``."""
    stream = console if console is not None else sys.stderr
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    handlers: list[logging.Handler] = []
    console_handler = logging.StreamHandler(stream)
    console_handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _ConsoleRenderer(colors=False),
            ],
            foreign_pre_chain=shared,
        )
    )
    handlers.append(console_handler)
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(json_file, encoding="utf-8")
        file_handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.dict_tracebacks,
                    structlog.processors.JSONRenderer(default=str),
                ],
                foreign_pre_chain=shared,
            )
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
    structlog.configure(
        # Drop events below the level before any processor runs: debug events on hot paths
        # (one per HTTP request) would otherwise cost the runner CPU only to be discarded.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def dropped(name: str, level: int) -> bool:
    """Whether an event at ``level`` from the logger ``name`` would be dropped before any
    other processor runs (the level filter :func:`configure_logging` puts first).

    A hot path (one debug event per HTTP request) asks first and skips building an event
    nobody will see. False whenever structlog is set up some other way: ``capture_logs`` in
    tests sees every event, as before.
    """
    config = structlog.get_config()
    processors = config["processors"]
    return (
        bool(processors)
        and processors[0] is structlog.stdlib.filter_by_level
        and isinstance(config["logger_factory"], structlog.stdlib.LoggerFactory)
        and not logging.getLogger(name).isEnabledFor(level)
    )


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
    return structlog.get_logger(name, **initial)
