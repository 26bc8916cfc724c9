"""Files written whole or not at all: the one rule for a temporary file renamed into place.

A writer fills a hidden temporary beside the target and renames it over the target, so a reader
sees the old file or the new one, never half of one. When anything fails on the way (making
the folder, writing, flushing, the rename itself), the temporary is removed before the error
goes up: a full disk or a folder in the target's place leaves no ``.tmp`` behind for a person
to find. An operating-system failure becomes :class:`~preform_pipeline.errors.FileWriteError`,
naming the target and saying what to check; anything else (an interrupt, text that cannot be
encoded) goes up as it is, after the same clean-up.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

from preform_pipeline.errors import WRITE_HINTS, FileWriteError, write_hint
from preform_pipeline.liveness import NO_INSTANCE, this_host, this_instance

__all__ = [
    "NAME_MAX_BYTES",
    "default_temporary",
    "fitted_name",
    "host_tag",
    "instance_tag",
    "temporary_name",
    "write_atomically",
    "writer_tag",
    "write_text_atomically",
]

#: The longest file name, in bytes, of the usual file systems (ext4, XFS, Btrfs, APFS, ZFS).
NAME_MAX_BYTES: Final = 255
#: Hex digits of the whole name's hash that stand for a cut name's end in its temporary.
_NAME_HASH_HEX: Final = 12


def host_tag(host: str | None = None) -> str:
    """A short tag of ``host`` (default: this one) for temporaries' names: a hash, not the
    name itself, since host names may be long and may hold dots."""
    return hashlib.sha256((this_host() if host is None else host).encode("utf-8")).hexdigest()[:8]


def instance_tag(host: str | None = None, instance: str | None = None) -> str:
    """A short tag of a host and its instance (default: this process's), for the names of
    files and folders that say which process made them: another container of the same host
    name numbers its processes apart (liveness.py), so what it made must not read back as
    made here. An instance not known is tagged as :data:`~preform_pipeline.liveness.NO_INSTANCE`."""
    if host is None:
        host, instance = this_host(), this_instance()
    return host_tag(f"{host}/{instance or NO_INSTANCE}")


def fitted_name(name: str, ending: str, *, leading: str = "", limit: int = NAME_MAX_BYTES) -> str:
    """``<leading><name><ending>``, or, when that is over ``limit`` bytes, the same with
    ``name`` cut to fit and ``~`` and a hash of the whole ``name`` in its end's place.

    The one rule for every name made by adding to a user's name (a temporary, a lock): it is
    the same for every process that makes it from the same name, two long names that start
    alike still get different results, and the cut falls between characters, never inside a
    UTF-8 sequence.
    """
    whole = f"{leading}{name}{ending}"
    if len(os.fsencode(whole)) <= limit:
        return whole
    end = f"~{hashlib.sha256(os.fsencode(name)).hexdigest()[:_NAME_HASH_HEX]}{ending}"
    room = limit - len(os.fsencode(leading)) - len(os.fsencode(end))
    stem = name[:room]  # a character is at least a byte
    while len(os.fsencode(stem)) > room:  # cut between characters, never inside one
        stem = stem[:-1]
    return f"{leading}{stem}{end}"


def temporary_name(name: str, suffix: str) -> str:
    """The hidden temporary's name beside a file called ``name``: ``.<name>.<suffix>``.

    A temporary is longer than its target, so a target name the file system takes (up to
    :data:`NAME_MAX_BYTES`) could not be saved through one. When the whole would be too long,
    ``name`` is cut to fit and ``~`` and a hash of the whole name stand for its end
    (:func:`fitted_name`): two long names that start alike still get different temporaries,
    and the pattern stays ``.<something>.<suffix>``, which is how a sweep knows its
    temporaries.
    """
    return fitted_name(name, f".{suffix}", leading=".")


def writer_tag() -> str:
    """``<pid>-<instance tag>``: this process in the names of the temporaries it writes
    (:func:`instance_tag`: another container of this host name numbers its pids apart, so its
    temporaries must not read back as this one's)."""
    return f"{os.getpid()}-{instance_tag()}"


def default_temporary(path: Path) -> Path:
    """The hidden temporary beside ``path`` this process writes
    (``.name.<pid>-<instance tag>.tmp``, :func:`writer_tag`): the writer is named, so a
    start-up sweep can tell one a dead process of this host and instance left (a report or
    journal cut off by a kill) from a live writer's or another host's or container's on a
    shared folder (``hotfolder.files.sweep_temporaries``). A name too long for that is cut
    (:func:`temporary_name`)."""
    return path.with_name(temporary_name(path.name, f"{writer_tag()}.tmp"))


def write_atomically(
    path: Path,
    write: Callable[[Path], None],
    *,
    temporary: Path | None = None,
    make_folder: bool = True,
) -> Path:
    """Make ``path``'s folder (unless ``make_folder`` is false: a caller that writes the same
    file often and made it once), let ``write`` fill ``temporary`` (by default
    :func:`default_temporary`), then rename it over ``path``; returns ``path``.

    Raises :class:`FileWriteError` (the path, the cause and a hint) when the operating system
    refuses any of it; the temporary is gone by then, whatever failed.
    """
    temporary = default_temporary(path) if temporary is None else temporary
    stage = "making its folder"
    try:
        if make_folder:
            path.parent.mkdir(parents=True, exist_ok=True)
        stage = "writing"
        write(temporary)
        stage = "renaming the finished file into place"
        os.replace(temporary, path)
    except BaseException as exc:
        # Removed first, whatever the failure: the user's folder keeps only whole files.
        _remove_quietly(temporary)
        if isinstance(exc, OSError) and not isinstance(exc, FileWriteError):
            raise _write_error(path, stage, exc) from exc
        raise
    return path


def write_text_atomically(
    path: Path,
    text: str,
    *,
    temporary: Path | None = None,
    newline: str | None = "",
    durable: bool = False,
    make_folder: bool = True,
) -> Path:
    """:func:`write_atomically` for UTF-8 text. ``newline=""`` writes the text's own line
    ends (``None``: the platform's, as :meth:`Path.write_text` does); ``durable`` flushes it
    to the disk before the rename (a note a crash must not lose).
    """

    def write(target: Path) -> None:
        with target.open("w", encoding="utf-8", newline=newline) as stream:
            stream.write(text)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())

    return write_atomically(path, write, temporary=temporary, make_folder=make_folder)


def _remove_quietly(temporary: Path) -> None:
    # Cannot remove it either (the folder went read-only): the write's own error is the one
    # to report; hot folders sweep what a writer leaves.
    with contextlib.suppress(OSError):
        temporary.unlink(missing_ok=True)


def _write_error(path: Path, stage: str, cause: OSError) -> FileWriteError:
    reason = cause.strerror or str(cause) or type(cause).__name__
    if isinstance(cause, IsADirectoryError) or (path.is_dir() and not path.is_symlink()):
        # os.replace onto a folder says EISDIR on Linux but EACCES or EEXIST elsewhere.
        hint = WRITE_HINTS[errno.EISDIR]
    else:  # mkdir(exist_ok=True) refusing a file in a folder's place is EEXIST: in the table
        hint = write_hint(cause)
    error = FileWriteError(path, f"{stage} failed: {reason}", hint=hint)
    error.errno = cause.errno
    error.strerror = cause.strerror
    return error
