"""Where a server writes our outputs: a staging folder of this process, moved into place after.

A server saving a ``.form`` or a screenshot writes temporaries of its own naming (the
simulator: ``.<name>.<unique>.tmp``; PreFormServer's naming is not documented) and renames
them at the end. Killed mid-save, it leaves them; beside the user's files nothing could remove
them with certainty, since their names are not ours. So the server is never asked to write
beside the user's files:

- each save goes to ``<output folder>/.preform-staging/<process>/<unique>/<name>``,
  inside the output folder (so a remote server's path map covers it, and the finished file
  is on the same file system as its final name), then is placed at its rendered name or the
  first free ``name-N`` (:func:`~.outputs.place_output`) in one step, so the user sees no
  file or the whole one, and a process killed mid-save leaves no name taken;
- the save's folder is removed when the save ends, whether it succeeded, failed, or the
  server died on the way, and the process folder and ``.preform-staging`` with it when
  empty;
- ``<process>`` names the process that owns it (``<pid>-<start time in ms>-<tag>``, the tag
  a hash of the host and its instance: :class:`~preform_pipeline.liveness.ProcessIdentity` and
  :func:`~preform_pipeline.atomicfile.instance_tag`): what a killed pipeline process left is
  removed by the next run's start (:func:`sweep_staging`) once that very process has ended on
  this host. A live process's folder (another run on the same output folder), another host's
  (a shared output folder), and any name not made here are never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Final

from preform_pipeline.atomicfile import instance_tag
from preform_pipeline.errors import FileWriteError
from preform_pipeline.executor.outputs import place_output
from preform_pipeline.liveness import ProcessIdentity, this_host, this_instance
from preform_pipeline.logging import get_logger

__all__ = ["STAGING_FOLDER", "owner_of", "process_folder_name", "save_staged", "sweep_staging"]

#: The folder below the output folder where servers write; hidden, and named for us.
STAGING_FOLDER: Final = ".preform-staging"
#: A process folder's name: ``<pid>-<start time in ms>-<host tag>``.
_PROCESS_FOLDER: Final = re.compile(r"(?P<pid>[1-9][0-9]*)-(?P<ms>[0-9]+)-(?P<host>[0-9a-f]{8})")
#: Making a save's folder races with another save's removal of the empty folders above it:
#: each try either makes it or finds a parent just removed, so a few tries always do.
_MAKE_ATTEMPTS: Final = 5

log = get_logger(__name__)


def process_folder_name(process: ProcessIdentity) -> str:
    """The staging folder's name of ``process``: read back by :func:`owner_of`."""
    where = instance_tag(process.host, process.instance)
    return f"{process.pid}-{round(process.create_time * 1000)}-{where}"


def owner_of(name: str) -> ProcessIdentity | None:
    """The process of this host and instance a staging folder called ``name`` belongs to;
    None for another host's (or container's) folder or a name :func:`process_folder_name`
    does not make."""
    match = _PROCESS_FOLDER.fullmatch(name)
    if match is None or match["host"] != instance_tag():
        return None
    return ProcessIdentity(int(match["pid"]), int(match["ms"]) / 1000, this_host(),
                           instance=this_instance())


def _make_save_folder(output_root: Path) -> Path:
    """A new, empty folder for one save, below this process's staging folder."""
    folder = (output_root / STAGING_FOLDER / process_folder_name(ProcessIdentity.current())
              / uuid.uuid4().hex)
    attempts_left = _MAKE_ATTEMPTS
    while True:
        try:
            folder.mkdir(parents=True)
            return folder
        except FileNotFoundError:
            # A parent was removed between its making and this folder's: again.
            attempts_left -= 1
            if attempts_left <= 0:
                raise


def _remove_save_folder(folder: Path) -> None:
    """Remove a save's folder with whatever a server left in it, then the process folder
    and ``.preform-staging`` when nothing else is in them (another save's, another run's)."""
    shutil.rmtree(folder, ignore_errors=True)
    for parent in (folder.parent, folder.parent.parent):
        try:
            parent.rmdir()
        except OSError:
            return  # not empty (another save at work), or gone already


def save_staged(rendered: Path, output_root: Path, write: Callable[[Path], None]) -> Path:
    """Let ``write`` (a server's save) write the output rendered as ``rendered`` into a new
    folder of this process below ``output_root`` (under the same name), then place it at
    ``rendered`` or the first free ``name-N``; the path it now has. The save's folder is
    removed however it ends.

    Raises :class:`FileWriteError` when the staging folder cannot be made, or the file
    cannot be placed (the server answered but wrote nothing there); what ``write`` raises
    goes up as it is.
    """
    try:
        folder = _make_save_folder(output_root)
    except OSError as exc:
        raise FileWriteError(
            rendered, f"cannot make the folder the server saves into: {exc}",
            hint="let this user write to the output folder",
        ) from exc
    try:
        path = folder / rendered.name
        write(path)
        try:
            return place_output(path, rendered)
        except OSError as exc:
            raise _move_error(rendered, path, exc) from exc
    finally:
        _remove_save_folder(folder)


def _move_error(final: Path, written: Path, cause: OSError) -> FileWriteError:
    """Why the file the server saved could not be placed at ``final``, in a user's terms."""
    if not os.path.lexists(written):
        return FileWriteError(
            final, "the server answered that it saved the file, but the file is not there",
            hint="check the server's log, and that nothing removes files from "
            f"{STAGING_FOLDER} in the output folder",
        )
    return FileWriteError(
        final, f"cannot move the saved file into place: {cause.strerror or cause}",
        hint="check that the output's folder is a folder this user can write, on the same "
        "disk as the output folder",
    )


def sweep_staging(output_root: Path) -> tuple[Path, ...]:
    """Remove the staging folders below ``output_root`` whose process has ended (a killed
    run's, with what its server left half-written); the folders removed.

    A running process's folder (whatever run it is), another host's, or a name not made by
    :func:`process_folder_name` stays.
    """
    staging = output_root / STAGING_FOLDER
    try:
        # Sorted: the folder's own order differs between file systems and runs.
        names = sorted(entry.name for entry in staging.iterdir())
    except OSError:
        return ()  # none yet (the usual case), or unreadable: saving will say what is wrong
    removed: list[Path] = []
    for name in names:
        owner = owner_of(name)
        if owner is None or not owner.has_ended():
            continue
        folder = staging / name
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            continue  # another run's start removed it meanwhile
        except OSError as exc:
            log.warning("staging_not_swept", path=str(folder), error=str(exc))
            continue
        log.info("staging_swept", path=str(folder), pid=owner.pid)
        removed.append(folder)
    with contextlib.suppress(OSError):
        staging.rmdir()  # only when empty: a live process's folder keeps it
    return tuple(removed)
