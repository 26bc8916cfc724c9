"""What a user sees when a command fails: a short true line, never a traceback.

* :func:`shorten` cuts a message to a readable length (a 10,000-character label inside a
  reason must not become a 10 KB line), saying how much was cut;
* :func:`write_crash_report` saves the full text of an unexpected failure (the traceback, the
  command line, the version) to a file and returns its path, so the one line printed can
  point at it and a bug report can attach it.

The crash folder is ``$PREFORM_PIPELINE_CRASH_DIR`` when set, else ``crash-reports`` in the
user's data folder (beside the default job store), see :func:`crash_dir`.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Final

__all__ = [
    "CRASH_DIR_ENV",
    "DEFAULT_MESSAGE_CHARS",
    "crash_dir",
    "shorten",
    "write_crash_report",
    "write_full_message",
]

#: Environment variable naming the folder crash reports are written to.
CRASH_DIR_ENV: Final = "PREFORM_PIPELINE_CRASH_DIR"
#: A message longer than this is cut: about eight lines of a terminal.
DEFAULT_MESSAGE_CHARS: Final = 600
_CRASH_FOLDER_NAME: Final = "crash-reports"


def shorten(text: str, limit: int = DEFAULT_MESSAGE_CHARS) -> str:
    """``text`` if short enough, else its head and tail with the count of characters cut."""
    if len(text) <= limit:
        return text
    tail = max(limit // 5, 20)
    head = max(limit - tail - 40, 20)
    cut = len(text) - head - tail
    return f"{text[:head]} [... {cut} characters cut ...] {text[-tail:]}"


def crash_dir(data_dir: Path | None, env: Mapping[str, str] = os.environ) -> Path:
    """Where crash reports go: ``$PREFORM_PIPELINE_CRASH_DIR``, else below ``data_dir`` (the
    user's data folder), else the temporary folder."""
    if env.get(CRASH_DIR_ENV):
        return Path(env[CRASH_DIR_ENV]).expanduser()
    if data_dir is not None:
        return data_dir / _CRASH_FOLDER_NAME
    return Path(tempfile.gettempdir()) / "preform-pipeline" / _CRASH_FOLDER_NAME


def _write(prefix: str, text: str, folder: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{prefix}-{stamp}-{os.getpid()}.txt"
    for target in (folder, Path(tempfile.gettempdir())):
        try:
            target.mkdir(parents=True, exist_ok=True)
            path = target / name
            path.write_text(text, encoding="utf-8", errors="replace")
            return path
        except OSError:
            continue
    raise OSError("no folder for the crash report is writable")


def write_crash_report(exc: BaseException, argv: Sequence[str], folder: Path) -> Path:
    """Write the traceback of ``exc`` with the command line and versions; returns the file."""
    from preform_pipeline import __version__

    lines = [
        f"preform-pipeline {__version__} crashed",
        f"time: {datetime.now(timezone.utc).isoformat()}",
        f"command: preform-pipeline {' '.join(argv)}",
        f"python: {sys.version.split()[0]} on {platform.platform()}",
        "",
        *traceback.format_exception(type(exc), exc, exc.__traceback__),
    ]
    return _write("crash", "\n".join(line.rstrip("\n") for line in lines) + "\n", folder)


def write_full_message(text: str, folder: Path) -> Path:
    """Keep the whole of a message that was cut for the terminal; returns the file."""
    return _write("message", text + "\n", folder)
