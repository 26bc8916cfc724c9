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

from preform_pipeline.userpath import expand_user

__all__ = [
    "CRASH_DIR_ENV",
    "DEFAULT_LINE_CHARS",
    "DEFAULT_MESSAGE_LINES",
    "crash_dir",
    "shorten",
    "write_crash_report",
    "write_full_message",
]

#: Environment variable naming the folder crash reports are written to.
CRASH_DIR_ENV: Final = "PREFORM_PIPELINE_CRASH_DIR"
#: A message line longer than this is cut: about three lines of a terminal.
DEFAULT_LINE_CHARS: Final = 300
#: A message with more lines than this shows the first ones only.
DEFAULT_MESSAGE_LINES: Final = 40
_CRASH_FOLDER_NAME: Final = "crash-reports"


def _cut_line(line: str, limit: int) -> str:
    if len(line) <= limit:
        return line
    tail = max(limit // 5, 20)
    head = max(limit - tail - 40, 20)
    return f"{line[:head]} [... {len(line) - head - tail} characters cut ...] {line[-tail:]}"


def shorten(
    text: str, limit: int = DEFAULT_LINE_CHARS, max_lines: int = DEFAULT_MESSAGE_LINES
) -> str:
    """``text`` with each line cut to ``limit`` characters and at most ``max_lines`` lines,
    saying how much was cut; unchanged when it is short enough."""
    lines = text.splitlines() or [text]
    shown = [_cut_line(line, limit) for line in lines[:max_lines]]
    if len(lines) > max_lines:
        shown.append(f"[... {len(lines) - max_lines} more lines ...]")
    return "\n".join(shown)


def crash_dir(data_dir: Path | None, env: Mapping[str, str] = os.environ) -> Path:
    """Where crash reports go: ``$PREFORM_PIPELINE_CRASH_DIR``, else below ``data_dir`` (the
    user's data folder), else the temporary folder."""
    if env.get(CRASH_DIR_ENV):
        return expand_user(env[CRASH_DIR_ENV], source=f"environment variable {CRASH_DIR_ENV}")
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
