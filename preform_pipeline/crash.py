"""What a user sees when a command fails: a short true line, never a traceback.

* :func:`shorten` cuts a message to a readable length (a 10,000-character label inside a
  reason must not become a 10 KB line), saying how much was cut; the middle goes, at the
  edges of words and whole fields where it can, so the start (what failed) and the end (the
  last cause, the hint's end) stay and no path is cut in half unless it is longer than the
  part kept on its side of the cut;
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
    """``line`` in at most ``limit`` characters: its start and its end, the middle cut out at
    the edges of words, so a path is kept whole or left out (session 42's cut took
    ``authenti`` of "authentication" and half a host's field). Whole ``; ``-separated fields
    go first (a store's tries, a hint's clauses); a word that fills the whole room (a
    10,000-character label) is cut where it must be.

    However small ``limit`` is, the line shown is no longer: a shorter marker stands for the
    middle when the whole one leaves less than a few words' room (:data:`_CUTS`), and under
    the shortest's length only the line's start is shown (session 45: a limit under 30 gave
    the 29-character marker alone, and one under 90 kept the start only, cut inside a word).
    Callers use the default limit today; the promise holds for any."""
    if len(line) <= limit:
        return line
    fitting = [(cut, limit - len(cut.format(len(line)))) for cut in _CUTS]
    fitting = [(cut, room) for cut, room in fitting if room >= 0]
    if not fitting:
        return line[:limit]  # no marker fits: nothing to say the cut with
    # The longest marker that leaves room for a few words, else the one leaving the most.
    cut, room = next(((c, r) for c, r in fitting if r >= _LEAST_ROOM), fitting[-1])
    # A word is cut inside only when it is longer than the whole room (a 10,000-character
    # label): one that would fit is left out whole, its room given to the other end.
    end = _head_end(line, room * 3 // 4)
    if 0 < _word_at(line, end) <= room:
        end = max(line.rfind(" ", 0, end), 0)
    head = line[:end].rstrip()
    start = _tail_start(line, room - len(head))
    if 0 < _word_at(line, start) <= room:
        found = line.find(" ", start)
        start = len(line) if found < 0 else found + 1
    tail = line[start:].lstrip()
    return (head + cut.format(len(line) - len(head) - len(tail)) + tail).strip()


def _word_at(line: str, at: int) -> int:
    """The length of the word a cut at ``at`` falls inside, 0 when it falls between words."""
    if at <= 0 or at >= len(line) or line[at - 1] == " " or line[at] == " ":
        return 0
    found = line.find(" ", at)
    return (len(line) if found < 0 else found) - line.rfind(" ", 0, at) - 1


#: What stands for the cut middle of a line, the longest that fits: how much was cut, then
#: that something was.
_CUTS: Final = (" [... {} characters cut ...] ", " [{} cut] ", "...")
#: The room a marker should leave the line's words: a shorter one is said rather than less.
_LEAST_ROOM: Final = 12
#: Where a field of a message ends, and how much of the room the cut may give up to cut
#: there: "; " between a store's tries and a hint's clauses, then ", " and ": " within one.
_FIELD_ENDS: Final = (("; ", 3), (", ", 4), (": ", 4))


def _head_end(line: str, room: int) -> int:
    """Where the kept start of ``line`` ends, at most ``room``: after a field's end or before
    a hint's "(" near the room's end (:data:`_FIELD_ENDS`), else at a space in its last two
    thirds (a long path before the cut is left out whole), else at ``room`` itself."""
    for end, share in (_FIELD_ENDS[0], (" (", 3), *_FIELD_ENDS[1:]):
        found = line.rfind(end, room - room // share, room + 1)
        if found > 0:
            return found + 1  # the field's own ";" or "," is kept; a hint's "(" is not
    found = line.rfind(" ", room // 3, room + 1)
    return found if found > 0 else room


def _tail_start(line: str, room: int) -> int:
    """Where the kept end of ``line`` starts, keeping at most ``room`` characters: at a
    field's start (or a hint's "(") near the room's start, else at the first word that
    starts in its first two thirds, else ``room`` from the end."""
    first = len(line) - room
    for end, share in (*_FIELD_ENDS, (" (", 3)):
        found = line.find(end, first - 1, first + room // share)
        if found >= first - 1:
            return found + 1
    found = line.find(" ", first - 1, len(line) - room // 3)
    return found + 1 if found >= first - 1 else first


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
