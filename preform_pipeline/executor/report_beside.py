"""Which file beside a build's ``.form`` is its report, for whoever reads it after the run:
the dispatcher, which notes a waiting build's print in it, and the dashboard.

The recipe's ``outputs.report`` may have any suffix (``{build}.json``, ``.JSON``, ``.txt``,
none); rendered beside the ``.form`` it takes the ``.form``'s name but the suffix
(:mod:`.outputs`), and what it holds is JSON whatever its suffix. The store keeps no report
path and the recipe may have changed since the build was prepared, so the report is found by
what it holds: a file of the ``.form``'s name, any suffix, holding a JSON object whose
``job_key`` is the build's (or none: a run without a store) and that says it is a build
report (``format``; every build report has said so): a user's own file of that name, a
``.json`` too, is never taken for one, and never written into. ``.json`` names are looked at
first, the exact one first. Only regular files are opened (a named pipe of that name would
block the reader), and a file whose first bytes are not a JSON object's (a screenshot, a
``.form`` of hundreds of MB) is not read further.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

__all__ = ["BUILD_REPORT_FORMAT", "report_beside"]

#: The ``format`` a build's report says it has.
BUILD_REPORT_FORMAT: Final = "preform-pipeline-run-report-build"

#: A build's report is a few kilobytes; a file of its name far larger (a screenshot, a
#: model) is not read whole to find that out.
_LARGEST_REPORT_BYTES: Final = 4 * 1024 * 1024


def report_beside(
    form: Path, job_key: str, unreadable: Callable[[Path, str], None] | None = None
) -> tuple[Path, dict[str, Any]] | None:
    """The report beside ``form`` of the build ``job_key`` and what it holds, or None when
    there is none (module docstring). ``unreadable`` is told of a ``.json`` of that name that
    cannot be read or is not JSON (a file of another suffix may be anything)."""
    try:
        names = [p for p in form.parent.iterdir() if p.stem == form.stem and p != form]
    except OSError:
        return None
    names.sort(key=lambda p: (p.suffix != ".json", p.suffix.lower() != ".json", p.name))
    for path in names:
        named_json = path.suffix.lower() == ".json"
        try:
            data = _read(path)
        except (OSError, ValueError) as exc:
            if named_json and unreadable is not None:
                unreadable(path, str(exc))
            continue
        if (isinstance(data, dict) and data.get("job_key") in (None, job_key)
                and data.get("format") == BUILD_REPORT_FORMAT):
            return path, data
    return None


#: How much of a file is read first to see whether it begins as a JSON object does.
_HEAD_BYTES: Final = 64


def _read(path: Path) -> object:
    """What the file at ``path`` holds as JSON; OSError or ValueError when it holds no JSON
    object (UnicodeDecodeError too; an image, a model: only its first bytes are read, as it
    does not begin with ``{``), None when it is no regular file or too large to be a report."""
    # O_NONBLOCK: opening a named pipe no one writes would wait for ever; it is no report.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return None
        head = file.read(_HEAD_BYTES)
        if not head.lstrip().startswith(b"{"):
            raise ValueError("it does not begin as a JSON object does")
        text = head + file.read(_LARGEST_REPORT_BYTES + 1 - len(head))
    if len(text) > _LARGEST_REPORT_BYTES:
        return None
    return json.loads(text.decode("utf-8"))
