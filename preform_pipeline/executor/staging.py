"""Where a server writes our outputs: a short staging folder per save, placed after.

A server saving a ``.form`` or a screenshot writes temporaries of its own naming (the
simulator: ``.<name>.<unique>.tmp``; PreFormServer's naming is not documented) and renames
them at the end. Killed mid-save, it leaves them; beside the user's files nothing could remove
them with certainty, since their names are not ours. So the server is never asked to write
beside the user's files:

- each save goes to ``<output folder>/.preform-staging/<save>/<name>``, ``<save>`` 8 hex
  digits: inside the output folder (so a remote server's path map covers it, and the
  finished file is on the same file system as its final name), and short, since a Windows
  server takes paths of at most 259 characters (the client refuses a longer one before
  sending: :mod:`preform_pipeline.api.paths`). The finished file is then placed at its
  rendered name or the first free ``name-N`` (:func:`~.outputs.place_output`) in one step,
  so the user sees no file or the whole one, and a process killed mid-save takes no name;
- the save's owner is named beside its folder by an empty file
  ``<save>.<pid>-<start time in ms>-<tag>`` (:func:`process_folder_name`, the tag a hash of
  the host and its instance: :class:`~preform_pipeline.liveness.ProcessIdentity` and
  :func:`~preform_pipeline.atomicfile.instance_tag`), made before the folder and removed after
  it, so every folder of ours has its owner named whenever it exists, and the name is made
  whole in one step (a file's name, not a content half written);
- the save's folder and its owner's file are removed when the save ends, whether it
  succeeded, failed, or the server died on the way, and ``.preform-staging`` when empty:
  after each save, or, for a run's saves (``keep_staging``), when the run ends
  (:func:`remove_empty_staging`), so that a run makes it once, not once a build (a new
  folder is among the dearest things a build asks of the file system);
- what a killed pipeline process left is removed by the next run's or daemon's start
  (:func:`sweep_staging`) once that very process has ended on this host. A live process's
  save (another run on the same output folder), another host's or container's (a shared
  output folder), and any name not made here are never touched. The per-process folders of
  the first version (``<pid>-<start time in ms>-<tag>/<32 hex>/<name>``) are swept alike.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Final

from preform_pipeline.atomicfile import instance_tag
from preform_pipeline.errors import FileWriteError, refused_by_a_full_disk, write_hint
from preform_pipeline.executor.outputs import create_empty, place_output
from preform_pipeline.liveness import ProcessIdentity, this_host, this_instance
from preform_pipeline.logging import get_logger
from preform_pipeline.outputfolders import STAGING_FOLDER

__all__ = [
    "owner_of", "process_folder_name", "remove_empty_staging", "save_staged", "sweep_staging",
]

#: A process's name: ``<pid>-<start time in ms>-<host and instance tag>``; the name of a
#: session 31 process folder, and the end of a save's owner file.
_PROCESS: Final = re.compile(r"(?P<pid>[1-9][0-9]*)-(?P<ms>[0-9]+)-(?P<host>[0-9a-f]{8})")
#: A save's owner file: ``<save folder>.<process>``.
_OWNER_FILE: Final = re.compile(r"(?P<save>[0-9a-f]{8})\.(?P<process>.+)")
#: Hex digits of a save folder's name: taken by making the folder, so a name another save
#: has is only tried again under another.
_SAVE_NAME_HEX: Final = 8
#: Making a save's folder races with another save's removal of ``.preform-staging`` when
#: empty: each try either makes it or finds it just removed, so a few tries always do.
_MAKE_ATTEMPTS: Final = 5

log = get_logger(__name__)


def process_folder_name(process: ProcessIdentity) -> str:
    """``process`` in the names of staging's files: read back by :func:`owner_of`."""
    where = instance_tag(process.host, process.instance)
    return f"{process.pid}-{round(process.create_time * 1000)}-{where}"


def owner_of(name: str) -> ProcessIdentity | None:
    """The process of this host and instance ``name`` (:func:`process_folder_name`) names;
    None for another host's (or container's) process or a name not made by it."""
    match = _PROCESS.fullmatch(name)
    if match is None or match["host"] != instance_tag():
        return None
    return ProcessIdentity(int(match["pid"]), int(match["ms"]) / 1000, this_host(),
                           instance=this_instance())


def _make_save_folder(output_root: Path) -> tuple[Path, Path]:
    """A new, empty folder for one save below ``.preform-staging``, and its owner file."""
    staging = output_root / STAGING_FOLDER
    me = process_folder_name(ProcessIdentity.current())
    attempts_left = _MAKE_ATTEMPTS
    # Made only once the owner file's making finds it missing: a run's saves after its
    # first find it there, and asking for it each time was a refused mkdir, its exception
    # and a stat per save.
    make_staging = False
    while True:
        folder = staging / uuid.uuid4().hex[:_SAVE_NAME_HEX]
        owner = staging / f"{folder.name}.{me}"
        try:
            if make_staging:
                staging.mkdir(parents=True, exist_ok=True)
            create_empty(owner)
            try:
                folder.mkdir()
            except BaseException:
                with contextlib.suppress(OSError):
                    owner.unlink()
                raise
            return folder, owner
        except FileNotFoundError:
            if not make_staging:
                make_staging = True  # not there yet: made on the next try, not counted
                continue
            # .preform-staging removed by another save's clean-up between its making and
            # this folder's: again, under a new name.
            attempts_left -= 1
            if attempts_left <= 0:
                raise
        except FileExistsError:
            attempts_left -= 1  # the name taken by another save: again, under a new name
            if attempts_left <= 0:
                raise
        except NotADirectoryError as exc:
            # A file where .preform-staging (or a folder above it) goes: said of that path,
            # not of the owner file's, a name of ours the user never sees.
            raise NotADirectoryError(exc.errno, exc.strerror, str(staging)) from exc


def _remove_save(folder: Path, owners: tuple[Path, ...]) -> bool:
    """Remove a save's folder with whatever a server left in it, then its owner files (in
    that order: an owner file names the folder's process while the folder exists); False
    when the folder was gone already. Raises OSError when the folder cannot be removed (its
    owner files are then kept)."""
    try:
        shutil.rmtree(folder)
        found = True
    except FileNotFoundError:
        found = False  # removed meanwhile, or a save cut before its folder was made
    for owner in owners:
        with contextlib.suppress(FileNotFoundError):
            owner.unlink()
    return found


def remove_empty_staging(output_root: Path) -> None:
    """Remove ``.preform-staging`` below ``output_root`` when it is empty: another save at
    work (of this run or another) keeps it, and so does a folder that is not there."""
    with contextlib.suppress(OSError):
        (output_root / STAGING_FOLDER).rmdir()


def save_staged(rendered: Path, output_root: Path, write: Callable[[Path], None], *,
                fellows: Sequence[Path] = (), ours: Collection[Path] = (),
                keep_staging: bool = False) -> Path:
    """Let ``write`` (a server's save) write the output rendered as ``rendered`` into a new
    save folder below ``output_root`` (under the same name), then place it at ``rendered``
    or the first free ``name-N`` (``fellows``: where the build's other files are rendered,
    ``ours``: those it has placed; a name at which a fellow's is another build's is not
    free, :func:`~.outputs.place_output`); the path it now has. The save's folder is removed
    however it ends, and ``.preform-staging`` when that leaves it empty, unless
    ``keep_staging``: then the caller removes it when its saves are over
    (:func:`remove_empty_staging`).

    Raises :class:`FileWriteError` when the staging folder cannot be made, or the file
    cannot be placed (the server answered but wrote nothing there); what ``write`` raises
    goes up as it is.
    """
    try:
        folder, owner = _make_save_folder(output_root)
    except OSError as exc:
        remove_empty_staging(output_root)  # only when empty, as after a save
        # A file where .preform-staging goes is moved away, not a permission to give.
        otherwise = (write_hint(exc) if exc.errno == errno.ENOTDIR
                     else "let this user write to the output folder")
        raise _refused(rendered, f"cannot make the folder the server saves into: {exc}", exc,
                       otherwise=otherwise) from exc
    try:
        path = folder / rendered.name
        write(path)
        try:
            return place_output(path, rendered, fellows=fellows, ours=ours)
        except OSError as exc:
            raise _move_error(rendered, path, exc) from exc
    finally:
        with contextlib.suppress(OSError):  # gone already (removed by hand), or refused:
            _remove_save(folder, (owner,))  # the error of the save itself is the one to say
        if not keep_staging:
            remove_empty_staging(output_root)


def _move_error(final: Path, written: Path, cause: OSError) -> FileWriteError:
    """Why the file the server saved could not be placed at ``final``, in a user's terms."""
    if not os.path.lexists(written):
        return FileWriteError(
            final, "the server answered that it saved the file, but the file is not there",
            hint="check the server's log, and that nothing removes files from "
            f"{STAGING_FOLDER} in the output folder",
        )
    # Placing needs a new name in the output's folder (a hard link, or a claimed empty
    # file), which a disk full to its last block or file refuses.
    return _refused(
        final, f"cannot move the saved file into place: {cause.strerror or cause}", cause,
        otherwise="check that the output's folder is a folder this user can write, on the "
        "same disk as the output folder",
    )


def _refused(path: Path, what: str, cause: OSError, *, otherwise: str) -> FileWriteError:
    """``what`` went wrong writing ``path``, refused with ``cause`` (its errno carried). A
    refusal for want of room says so: the space, not the folder or its permissions, is what
    a person fixes, told by the errno as every writer tells it; any other says ``otherwise``."""
    error = FileWriteError(
        path, what, hint=write_hint(cause) if refused_by_a_full_disk(cause) else otherwise)
    error.errno = cause.errno
    return error


def _ended_saves(staging: Path, names: list[str]) -> Iterator[tuple[Path, tuple[Path, ...], int]]:
    """The saves below ``staging`` (listed as ``names``) whose every owner has ended here:
    each save's folder, its owner files and its owner's pid. A save folder named by an owner
    that runs, of another host or container, or by no owner file at all, is not among them."""
    owners: dict[str, list[tuple[Path, ProcessIdentity | None]]] = {}
    for name in names:
        if (match := _OWNER_FILE.fullmatch(name)) is not None:
            owners.setdefault(match["save"], []).append(
                (staging / name, owner_of(match["process"])))
        elif (first := owner_of(name)) is not None and first.has_ended():
            yield staging / name, (), first.pid  # a process folder of the first version
    for save, marks in sorted(owners.items()):
        ended = [o for _, o in marks if o is not None and o.has_ended()]
        if len(ended) == len(marks):
            yield staging / save, tuple(path for path, _ in marks), ended[0].pid


def sweep_staging(output_root: Path) -> tuple[Path, ...]:
    """Remove the saves below ``output_root`` whose process has ended (a killed run's, with
    what its server left half-written); the save folders removed.

    A running process's save (whatever run it is), another host's or container's, or a name
    not made here stays.
    """
    staging = output_root / STAGING_FOLDER
    try:
        # Sorted: the folder's own order differs between file systems and runs.
        names = sorted(entry.name for entry in staging.iterdir())
    except OSError:
        return ()  # none yet (the usual case), or unreadable: saving will say what is wrong
    removed: list[Path] = []
    for folder, owners, pid in _ended_saves(staging, names):
        try:
            found = _remove_save(folder, owners)
        except OSError as exc:
            log.warning("staging_not_swept", path=str(folder), error=str(exc))
            continue
        if not found and not owners:
            continue  # another run's start removed it meanwhile
        log.info("staging_swept", path=str(folder), pid=pid)
        removed.append(folder)
    remove_empty_staging(output_root)  # a live process's save keeps it
    return tuple(removed)
