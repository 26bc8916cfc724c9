"""Output files are never overwritten: each one takes a free name, in one step.

A rendered output path that exists already (the previous run of the day, with the shipped
``{date}/{build}.form`` templates) gets a suffix, ``-2``, ``-3``..., before its extension (a
name too long for that has its stem cut: :func:`~preform_pipeline.atomicfile.fitted_name`).
A name is taken by an operation that fails when the name exists, so two builds or two
processes rendering the same path never get the same name:

- a finished file (a server's save, :mod:`.staging`) is *placed* (:func:`place_output`): a
  hard link made at the free name, so the name appears with the whole file, and nothing is
  ever left at it by a process killed on the way (an empty name claimed before the save
  outlived a killed run, and the next run took ``name-2``). Where the file system has no
  hard links (FAT, some network shares), the name is claimed empty and the file renamed over
  it at once: only a kill between those two steps can leave the empty name;
- :func:`claim_output` alone creates the free name empty (``O_CREAT | O_EXCL``).

A file that goes with another (a build's report with its ``.form``) takes the same suffix
(:func:`companion_output`), so the two still pair by name after the ``.form`` was given
``-6``. A build's files rendered beside one another (its ``.form``, screenshot and report:
one folder, one name, their suffixes apart) are its *fellows*, and a placed file never takes
a name at which a fellow's name is taken by another build's file: a ``.json`` of that name,
which the dispatcher and the dashboard read as the report beside a ``.form``, the recipe's
report of that name whatever its suffix (``{build}.txt``, ``{build}.JSON``, none), or a
screenshot or ``.form`` (one build failed or killed between its screenshot and its save, an
earlier run's). So the first of a build's files placed takes the first ``-N`` free for all of
them, and the next ones, whose names at that ``-N`` are free but for the build's own files,
take it too. Reports name the path actually written.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Final

from preform_pipeline.atomicfile import fitted_name

__all__ = [
    "MAX_OUTPUT_SUFFIX",
    "claim_output",
    "companion_output",
    "create_empty",
    "place_output",
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


def companion_output(path: Path, placed: Path) -> Path:
    """``path`` with the suffix ``placed`` was given: ``{date}/{build}.json`` is
    ``{date}/{build}-6.json`` when the build's ``.form``, rendered as
    ``{date}/{build}.form``, was placed at ``{date}/{build}-6.form``. ``path`` itself when
    ``placed`` is no name of ``path``'s stem in ``path``'s folder (a report kept elsewhere)."""
    rendered = path.with_suffix(placed.suffix)
    found = re.search(r"-([0-9]+)" + re.escape(placed.suffix) + r"$", placed.name)
    if found is None:
        return path
    n = int(found.group(1))
    # Compared whole, so a long stem cut with a hash (fitted_name) is matched as it was made.
    return _candidate(path, n) if 1 < n < MAX_OUTPUT_SUFFIX and _candidate(
        rendered, n) == placed else path


def create_empty(candidate: Path) -> None:
    """Take ``candidate`` as a new empty file; FileExistsError when it is there."""
    os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))


def claim_output(path: Path, take: Callable[[Path], None] = create_empty) -> Path:
    """``path``, or the first free ``stem-N.suffix``, taken by ``take`` (by default created
    empty: now ours); its folder is made when missing. ``take`` raises FileExistsError for a
    name that is there."""
    n = 1
    folder_made = False
    while n < MAX_OUTPUT_SUFFIX:
        candidate = _candidate(path, n)
        try:
            take(candidate)
        except FileExistsError:
            n += 1
            continue
        except (FileNotFoundError, NotADirectoryError):
            if folder_made:
                raise
            # The folder is made only when missing: it usually exists (the caller made it, or
            # an earlier build did). A folder that cannot be made raises as it always did.
            _make_folder(path.parent)
            folder_made = True
            continue
        return candidate
    raise FileExistsError(f"{path}: no free name up to -{MAX_OUTPUT_SUFFIX}")


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # a file where the folder (or one above it) should be
        raise NotADirectoryError(errno.ENOTDIR, "a file stands where a folder of the path "
                                 "should be", str(folder)) from exc


def place_output(written: Path, path: Path, *, fellows: Sequence[Path] = (),
                 ours: Collection[Path] = ()) -> Path:
    """Move the finished file ``written`` to ``path``, or the first free ``stem-N.suffix``
    (free: no file at that name, nor at a fellow's name at that ``-N``, but the build's own
    ones; module docstring); the path it now has. ``fellows``: where the build's other files
    (its report, screenshot or ``.form``) are rendered; those beside ``path`` (its name but
    the suffix) are fellows. ``ours``: the files the build has placed already. ``written``
    stays as a second name of the file where a hard link was made: the caller removes its
    folder."""
    beside = tuple(f for f in fellows if f != path and f.with_suffix(path.suffix) == path)
    return claim_output(path, functools.partial(_place, written, beside, frozenset(ours)))


#: The suffix of the report the dispatcher and the dashboard read beside a ``.form``.
_READ_REPORT_SUFFIX: Final = ".json"


def _place(written: Path, fellows: tuple[Path, ...], ours: frozenset[Path],
           candidate: Path) -> None:
    names = [companion_output(fellow, candidate) for fellow in fellows]
    if candidate.suffix != _READ_REPORT_SUFFIX:
        names.append(candidate.with_suffix(_READ_REPORT_SUFFIX))
    if any(name != candidate and name not in ours and name.exists() for name in names):
        # Another build's file has a fellow's name: this one beside it would pair with it.
        raise FileExistsError(errno.EEXIST, "the name of another build's file", str(candidate))
    try:
        os.link(written, candidate)
    except (FileExistsError, FileNotFoundError, NotADirectoryError):
        raise  # taken, or a folder (or the file itself) missing: claim_output's loop decides
    except OSError:
        # No hard links here (FAT, some network shares), or not allowed (a file another user
        # wrote, under Linux's protected_hardlinks): claim, then rename over at once.
        create_empty(candidate)
        try:
            os.replace(written, candidate)
        except BaseException:
            release_output(candidate)
            raise


def release_output(path: Path) -> None:
    """Give back a claimed name that was never written (the write failed): an empty file
    left behind would read as an output."""
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            path.unlink()
