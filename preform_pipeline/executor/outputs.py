"""Output files are never overwritten: each one claims a free name before it is written.

A rendered output path that exists already (the previous run of the day, with the shipped
``{date}/{build}.form`` templates) gets a suffix, ``-2``, ``-3``..., before its extension (a
name too long for that has its stem cut: :func:`~preform_pipeline.atomicfile.fitted_name`).
The name is claimed by creating the file exclusively (``O_CREAT | O_EXCL``), so two builds or
two processes rendering the same path never get the same name; the server then writes into
the claimed file, and reports name the path actually written.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

from preform_pipeline.atomicfile import fitted_name

__all__ = [
    "MAX_OUTPUT_SUFFIX",
    "claim_output",
    "release_output",
]

#: Beyond this many files of one name something is wrong (a template without any variable
#: part in a loop); fail instead of searching for ever.
MAX_OUTPUT_SUFFIX: Final = 10_000


def _candidate(path: Path, n: int) -> Path:
    if n == 1:
        return path
    # A name near the file systems' 255 bytes has no room for "-N": its stem is cut, with a
    # hash of the whole stem, by the rule every name made from a user's name follows.
    return path.with_name(fitted_name(path.stem, f"-{n}{path.suffix}"))


def claim_output(path: Path) -> Path:
    """``path``, or the first free ``stem-N.suffix``, created empty and now ours (its folder
    too, when missing)."""
    n = 1
    folder_made = False
    while n < MAX_OUTPUT_SUFFIX:
        candidate = _candidate(path, n)
        try:
            fd = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            n += 1
            continue
        except (FileNotFoundError, NotADirectoryError):
            if folder_made:
                raise
            # The folder is made only when missing: it usually exists (the caller made it, or
            # an earlier build did). A folder that cannot be made raises as it always did.
            path.parent.mkdir(parents=True, exist_ok=True)
            folder_made = True
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"{path}: no free name up to -{MAX_OUTPUT_SUFFIX}")


def release_output(path: Path) -> None:
    """Give back a claimed name that was never written (the write failed): an empty file
    left behind would read as an output."""
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            path.unlink()
