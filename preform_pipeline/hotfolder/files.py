"""Moving files between the inbox and the outcome folders: atomic, never overwriting.

* :func:`move_file` renames with ``os.replace`` (atomic on one file system: the file is either
  here or there, never half in both). Across file systems (an outcome folder configured on
  another disk) it copies to a hidden temporary name beside the target, flushes it to disk,
  renames it into place, and only then removes the source: a crash leaves the source intact
  and at most a hidden ``.partial`` file behind, or (cut between the rename and the removal)
  the source and its whole copy, which the hot folder's intake finishes by removing the
  source once the two are found identical. A symbolic link crosses as a link (its
  target is never read), a named pipe as a pipe (never opened: a refused drop holding one
  goes to failed/); a socket or device does not cross (an error, the source kept).
* :func:`free_path` picks a name that is not taken: ``part.stl``, ``part (2).stl``, ...; a name
  counts as taken when the file or one of its notes (``.error.txt``, ``.report.json``) exists,
  so a new file never inherits an old file's note (a note a cut-short settle of the same
  job left behind does not count).
* :func:`write_text_atomic` writes notes and reports (temporary file, then rename).
* Both temporaries name their writer: ``.<name>.<pid>-<tag>.partial`` (a copy across
  disks) and ``.<name>.<pid>-<tag>.tmp`` (a note), the tag being a short hash of the host
  name and its instance (boot and pid namespace: :func:`~preform_pipeline.atomicfile.writer_tag`),
  so another container of this host name, whose pids are other processes, never reads as
  this one. A writer that fails removes its own; one killed mid-write (a crash, a power
  cut) cannot, so the daemon's start runs :func:`sweep_temporaries` over its folders: it
  removes the temporaries of this host and instance whose process is gone, never a running
  process's, and never another host's or container's (on a shared folder only that one can
  tell). A temporary named before the tag said the instance (its tag hashes the host name
  alone) is judged by its pid, as it was then.

* :func:`set_aside_unstorable` moves files whose names are not valid UTF-8 (possible on POSIX,
  where names are bytes) straight to ``failed/`` with a note: the job store records paths as
  text and cannot hold such a name, so they never become jobs. One that cannot be moved
  (removed meanwhile, a folder that cannot cross to another disk, a full disk) stays where
  it is, its note withdrawn, and a warning names it, the error and what helps.

* :func:`overlong_name` finds a name too long for the notes and temporaries derived from it
  (:data:`MAX_NAME_BYTES`); the daemon leaves such a drop in the inbox and says so.
  :func:`fitting_rel` is the shorter name a job taken before that rule settles under.

Nothing here deletes a user's file: the only removals are a source after its copy is safely
in place, empty folders the daemon itself emptied, and temporaries its own dead processes
left.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import itertools
import json
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final, Literal

import psutil

from preform_pipeline.atomicfile import (
    host_tag,
    instance_tag,
    temporary_name,
    write_text_atomically,
    writer_tag,
)
from preform_pipeline.logging import get_logger
from preform_pipeline.plan.held import HELD_HINT
from preform_pipeline.settings import Settings, default_store_path
from preform_pipeline.settings.store import JOBS_COMMAND
from preform_pipeline.store import Job
from preform_pipeline.store.opening import is_shared_store
from preform_pipeline.textfiles import read_small_text
from preform_pipeline.wording import is_text_path, name_text, visible

__all__ = [
    "ERROR_SUFFIX",
    "HELD_TODO",
    "JOBS_COMMAND",
    "JOB_REPORT_FORMAT",
    "MAX_NAME_BYTES",
    "NAME_CUT_MARK",
    "NOTE_SUFFIXES",
    "REPORT_SUFFIX",
    "SetAside",
    "empty_tree_shape",
    "error_note",
    "fitting_rel",
    "free_path",
    "is_own_note",
    "jobs_command",
    "move_file",
    "overlong_name",
    "prune_empty_tree",
    "remove_empty_dirs",
    "set_aside_unstorable",
    "sweep_temporaries",
    "taken_names",
    "temporary_path",
    "withdraw_note",
    "write_note",
    "write_text_atomic",
]

log = get_logger(__name__)

#: What helps with a file held with its case (:mod:`preform_pipeline.plan.held`), in the hot
#: folder, where the whole case went to failed/.
HELD_TODO: Final = (f"{HELD_HINT}: move the case folder from failed/ back into the inbox "
                    "(this note goes by itself)")
#: ``part.stl.error.txt`` beside a failed ``part.stl``: what went wrong and what to do.
ERROR_SUFFIX: Final = ".error.txt"
#: ``part.stl.report.json`` beside a done ``part.stl``.
REPORT_SUFFIX: Final = ".report.json"
NOTE_SUFFIXES: Final = (ERROR_SUFFIX, REPORT_SUFFIX)
#: The ``format`` of a job's ``.report.json`` (written by the outcomes module).
JOB_REPORT_FORMAT: Final = "preform-pipeline-hotfolder-job"
#: How every ``.error.txt`` this module writes begins (:func:`error_note`).
_NOTE_START: Final = "What failed: "
#: The fields every job report has (``outcomes.Outcomes._report_text``).
_REPORT_KEYS: Final = ("format", "job_key", "recipe", "state", "file")
#: More than any job report is long: a bigger file is not one (and is not read whole).
_MAX_REPORT_BYTES: Final = 1 << 20
# Windows reports a rename across volumes as ERROR_NOT_SAME_DEVICE.
_WINDOWS_NOT_SAME_DEVICE: Final = 17
_MAX_SUFFIX: Final = 100_000
#: A temporary this module writes (module docstring): name, writer's pid, tag, kind.
_TEMPORARY: Final = re.compile(
    r"^\.(?P<name>.+)\.(?P<pid>\d+)-(?P<tag>[0-9a-f]{8})\.(?P<kind>partial|tmp)$"
)


def _present(path: Path) -> bool:
    """Whether ``path`` is there: a file, a folder, or a link (a dangling one too)."""
    return path.exists() or path.is_symlink()


def _taken(path: Path) -> bool:
    if _present(path):
        return True
    return any(path.with_name(path.name + s).exists() for s in NOTE_SUFFIXES)


def free_path(target: Path, *, ours: Callable[[Path], bool] | None = None) -> Path:
    """``target``, or ``stem (N)suffix`` with the smallest N >= 2 whose name is free.

    ``ours(name)``: a name whose file is absent but whose notes say they are the caller's
    own (left by a settle cut short) counts as free for the caller.
    """
    def free(candidate: Path) -> bool:
        if not _taken(candidate):
            return True
        return ours is not None and not _present(candidate) and ours(candidate)

    for candidate in _names(target):
        if free(candidate):
            return candidate
    raise FileExistsError(f"{target}: no free name up to ({_MAX_SUFFIX})")


def taken_names(target: Path) -> Iterator[Path]:
    """The names :func:`free_path` passed over for ``target``, in its order: ``target``,
    ``stem (2)suffix``, ... while the file or one of its notes is there. A file a settle moved
    to ``failed/`` is at one of them (a note there names its job)."""
    return itertools.takewhile(_taken, _names(target))


def _names(target: Path) -> Iterator[Path]:
    yield target
    stem, suffix = target.stem, target.suffix
    if target.name.startswith(".") and target.suffix == target.name:
        stem, suffix = target.name, ""
    for n in range(2, _MAX_SUFFIX):
        yield target.with_name(f"{stem} ({n}){suffix}")


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); Windows has no directory handles to flush."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _cross_device(exc: OSError) -> bool:
    return exc.errno == errno.EXDEV or getattr(exc, "winerror", None) == _WINDOWS_NOT_SAME_DEVICE


def temporary_path(path: Path, kind: Literal["partial", "tmp"]) -> Path:
    """The hidden temporary beside ``path`` that this process writes before the rename
    (named as :func:`~preform_pipeline.atomicfile.default_temporary` names a report's, a
    name too long for that cut the same way)."""
    return path.with_name(temporary_name(path.name, f"{writer_tag()}.{kind}"))


def sweep_temporaries(folders: Iterable[Path]) -> tuple[Path, ...]:
    """Remove, below each of ``folders``, the temporaries of this host and instance whose
    writer process is gone (cut off mid-move or mid-note); the paths removed.

    A temporary of a running process (whatever process has that pid now: a reused pid keeps
    it too), of another host or container, or not named by this module, stays. One named
    before names said the instance (tagged by the host name alone) is judged as then.
    """
    mine = (instance_tag(), host_tag())
    removed: list[Path] = []
    for folder in folders:
        for parent, _, files in os.walk(folder):  # symbolic links to folders not followed
            for name in files:
                match = _TEMPORARY.match(name)
                if match is None or match["tag"] not in mine:
                    continue
                pid = int(match["pid"])
                if pid == os.getpid() or psutil.pid_exists(pid):
                    continue
                path = Path(parent) / name
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    log.warning("temporary_not_swept", path=str(path), error=str(exc))
                    continue
                log.info("temporary_swept", path=str(path), pid=pid, kind=match["kind"])
                removed.append(path)
    return tuple(removed)


def _copy_then_remove(src: Path, dst: Path) -> None:
    if src.is_symlink():
        _relink(src, dst)
        return
    mode = os.lstat(src).st_mode
    if stat.S_ISFIFO(mode):
        # A pipe dropped in the inbox is refused and set aside, never read: opening it to
        # copy would wait for a writer that may never come, and the daemon with it.
        def make_pipe(temporary: Path) -> None:
            os.mkfifo(temporary)
            shutil.copystat(src, temporary)  # mode and times; copystat never opens it

        _written_then_remove(src, dst, make_pipe)
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory: a folder is not copied to "
                                "another disk", str(src))
    if not stat.S_ISREG(mode):
        # A socket or device has no content to copy (a device's may never end).
        raise OSError(errno.EOPNOTSUPP, "not a regular file, so it cannot be copied to "
                      "another disk", str(src))

    def copy(temporary: Path) -> None:
        with src.open("rb") as reader, temporary.open("wb") as writer:
            shutil.copyfileobj(reader, writer, 1024 * 1024)
            writer.flush()
            os.fsync(writer.fileno())
        shutil.copystat(src, temporary)

    _written_then_remove(src, dst, copy)


def _relink(src: Path, dst: Path) -> None:
    """A link crosses file systems as a link: its target is never read (a link out of the
    inbox may point anywhere), the same target written beside ``dst``, then renamed."""
    _written_then_remove(src, dst, lambda temporary: temporary.symlink_to(os.readlink(src)))


def _written_then_remove(src: Path, dst: Path, write: Callable[[Path], None]) -> None:
    """``write`` the hidden temporary beside ``dst``, rename it into place (never over a file
    or link that appeared meanwhile), then remove ``src``: a cut leaves ``src`` whole and at
    most a temporary that the start-up sweep removes; one after the rename leaves ``src``
    and its whole copy at ``dst`` (the intake removes ``src`` when it finds them equal)."""
    temporary = temporary_path(dst, "partial")
    try:
        write(temporary)
        if _present(dst):
            raise FileExistsError(errno.EEXIST, "target appeared meanwhile", str(dst))
        os.replace(temporary, dst)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_dir(dst.parent)
    src.unlink()


def move_file(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst`` (whose folder is created); see the module docstring.

    ``dst`` must not exist (pick it with :func:`free_path`): FileExistsError otherwise, so a
    race never overwrites a file.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        raise FileExistsError(errno.EEXIST, "will not overwrite", str(dst))
    try:
        # No directory flush after the rename: the store names the destination first, so a
        # rename lost in a power cut is simply done again on the next start.
        os.replace(src, dst)
    except OSError as exc:
        if not _cross_device(exc):
            raise
        _copy_then_remove(src, dst)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (temporary file, flush, rename); a failure leaves
    no half note and no temporary behind and raises FileWriteError (an OSError too)."""
    # The temporary carries this host's tag, so a daemon's start-up sweep can tell a dead
    # writer's leftover from a live one's.
    write_text_atomically(
        path, text, temporary=temporary_path(path, "tmp"), newline="\n", durable=True
    )


def write_note(note: Path, text: str, *, within: Path) -> tuple[Path, ...]:
    """Write ``note`` (a ``.error.txt`` or ``.report.json``) whole, with
    :func:`write_text_atomic`; the folders below ``within`` made for it, deepest first.

    A write that fails removes those folders again before its error goes up: a full disk
    must not leave an empty ``failed/<case>/`` a person has to wonder about. Folders that were
    there before stay, empty or not: they may be the user's.
    """
    made: list[Path] = []
    current = note.parent
    while current != within and current.is_relative_to(within) and not current.exists():
        made.append(current)
        current = current.parent
    try:
        write_text_atomic(note, text)
    except BaseException:
        remove_made_folders(made)
        raise
    return tuple(made)


def withdraw_note(note: Path, made: Sequence[Path]) -> None:
    """Remove ``note`` and those of the folders ``made`` for it (:func:`write_note`) that it
    leaves empty: a note whose file went elsewhere leaves nothing behind."""
    note.unlink(missing_ok=True)
    remove_made_folders(made)


def remove_made_folders(made: Sequence[Path]) -> None:
    """Remove the folders of ``made`` (deepest first) while they are empty; the first one that
    is not (another writer put its file there meanwhile) and all above it stay."""
    for folder in made:
        try:
            folder.rmdir()
        except OSError:
            return


def remove_empty_dirs(folder: Path, stop: Path) -> None:
    """Remove ``folder`` and its parents while they are empty, up to (not including) ``stop``."""
    try:
        folder.relative_to(stop)
    except ValueError:
        return
    current = folder
    while current != stop:
        try:
            current.rmdir()
        except OSError:
            return  # not empty (or gone, or not ours to remove): stop here
        current = current.parent


def prune_empty_tree(root: Path) -> None:
    """Remove empty folders below ``root`` (deepest first), then ``root`` if empty too.

    Only folders are removed, and only empty ones: a dropped case folder whose files were all
    taken leaves nothing behind in the inbox.
    """
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):  # not empty: keep it
            folder.rmdir()
    with contextlib.suppress(OSError):
        root.rmdir()


def empty_tree_shape(root: Path) -> tuple[tuple[str, int, int], ...] | None:
    """The folders of a tree that holds nothing else: ``(path relative to root's parent, 0,
    mtime in ns)`` each, root first; None when any entry below ``root`` is not a folder (a
    hidden or temporary file counts: a copy may be under way) or ``root`` is not a folder.

    A folder's mtime changes whenever an entry is made or removed in it, so two equal shapes
    some time apart mean nobody touched the tree in between.
    """
    shape: list[tuple[str, int, int]] = []
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            info = os.lstat(folder)
            entries = list(os.scandir(folder))
        except OSError:
            return None
        if not stat.S_ISDIR(info.st_mode):
            return None
        shape.append((folder.relative_to(root.parent).as_posix(), 0, info.st_mtime_ns))
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                return None
            pending.append(Path(entry.path))
    return tuple(sorted(shape))


#: The longest name (in bytes) of a file or folder the hot folder takes. A name gets up to 42
#: bytes more on its way (``.<name>.report.json.<pid>-<host tag>.tmp`` while its report is
#: written, `` (N)`` for a free name), and file systems allow 255: a longer name would get
#: as far as its first note, then fail the whole batch, at every start.
MAX_NAME_BYTES: Final = 200


def overlong_name(root: Path) -> Path | None:
    """The first entry at or below ``root`` whose name is over :data:`MAX_NAME_BYTES`."""
    entries = [root]
    if root.is_dir() and not root.is_symlink():
        entries += sorted(root.rglob("*"))
    return next((p for p in entries if len(os.fsencode(p.name)) > MAX_NAME_BYTES), None)


#: Marks a name :func:`fitting_rel` cut: what follows it is the kept suffix.
NAME_CUT_MARK: Final = "~"


def fitting_rel(rel: str) -> str:
    """``rel`` (a "/"-separated path below an inbox) with every part over
    :data:`MAX_NAME_BYTES` cut to fit: the stem shortened at a letter's boundary and ended
    with :data:`NAME_CUT_MARK`, the suffix kept. Such names are no longer taken (the drop waits
    in the inbox); a job a store took before that settles under this name, where its notes fit.
    """
    parts = []
    for part in rel.split("/"):
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            stem, suffix = os.path.splitext(part)
            if len(os.fsencode(suffix)) > MAX_NAME_BYTES // 2:  # not a suffix: a long tail
                stem, suffix = part, ""
            room = MAX_NAME_BYTES - len(os.fsencode(suffix + NAME_CUT_MARK))
            kept = os.fsencode(stem)[:room].decode("utf-8", "ignore")
            part = kept + NAME_CUT_MARK + suffix
        parts.append(part)
    return "/".join(parts)


class SetAside(enum.Enum):
    """What :func:`set_aside_unstorable` did with the root it was given."""

    #: The root's own name is fine: judge it (names below it that were not are dealt with).
    KEPT = "kept"
    #: The root went to ``failed/`` beside its note: nothing is left to judge.
    MOVED = "moved"
    #: The root could not be moved (or was gone): it stays where it was, with no note, and an
    #: event says why; the daemon's next rescan finds it again and tries once more.
    LEFT = "left"


#: What a user can do about a name that cannot be set aside (the event carries the error).
_LEFT_HINT: Final = (
    "it stays in the inbox and is tried again at the next rescan; rename it (letters, "
    "digits, - and _ are safe), or make the failed/ folder writable with free space"
)


def set_aside_unstorable(
    root: Path, inbox: Path, failed: Path, *, before: Callable[[Path], bool] | None = None
) -> SetAside:
    """Move every entry at or below ``root`` whose name is not UTF-8 into ``failed``.

    Each one keeps its place relative to the inbox and gets an ``.error.txt`` note. One that
    cannot be moved stays where it is without a note (see :func:`_set_aside`), and the others
    are still set aside. Each one below a case folder ``root`` is first given to ``before``
    (as it is named in it), which records that it holds the rest of its case
    (:mod:`.caseholds`); one ``before`` says False of (not recorded) stays, and is set aside
    at a later look.
    """
    if is_text_path(root):  # the store keeps paths as text
        if root.is_symlink() or not root.is_dir():
            return SetAside.KEPT
        bad = [p for p in root.rglob("*") if not is_text_path(p.relative_to(inbox))]
        for path in sorted(bad, key=lambda p: len(p.parts)):
            if _present(path) and (before is None or before(path)):
                _set_aside(path, inbox, failed)
        return SetAside.KEPT
    return SetAside.MOVED if _set_aside(root, inbox, failed) else SetAside.LEFT


def _set_aside(path: Path, inbox: Path, failed: Path) -> bool:
    """Note first, then the move; True when ``path`` is in ``failed`` beside its note.

    The note goes first so that a move is never left without its explanation. When the move
    fails (the file removed meanwhile, a folder that cannot cross to another disk, a full
    disk) the note is withdrawn: a note in failed/ must not name a file that is not there.
    A note a crash left between the two names the same file in the same words, so its name
    counts as free, and the next try makes it true.
    """
    shown = name_text(path)
    note = error_note(
        what=f"the name {name_text(path.name)!r} is not valid UTF-8 text, so the job store "
        "cannot record it",
        where="taking the file from the inbox",
        todo="rename it (letters, digits, - and _ are safe) and drop it again",
        file=shown,
    )

    def left_by_a_crash(candidate: Path) -> bool:
        try:
            return _note_of(candidate).read_text(encoding="utf-8") == note
        except (OSError, UnicodeDecodeError):
            return False

    target = free_path(failed / path.relative_to(inbox), ours=left_by_a_crash)
    written = _note_of(target)
    try:
        made = write_note(written, note, within=failed)
    except OSError as exc:
        log.warning("unstorable_not_set_aside", path=shown, target=name_text(target),
                    error=str(exc), hint=_LEFT_HINT)
        return False
    try:
        move_file(path, target)
    except OSError as exc:
        if _present(target):
            # Copied across disks, only the source's removal failed: the note is true of
            # the copy in failed/, and the source is set aside again (beside it) next time.
            log.warning("unstorable_source_not_removed", path=shown, target=name_text(target),
                        error=str(exc), hint=_LEFT_HINT)
            return False
        _withdraw(written, made)
        if not _present(path):
            log.info("unstorable_gone", path=shown, error=str(exc))
            return False
        log.warning("unstorable_not_set_aside", path=shown, target=name_text(target),
                    error=str(exc), hint=_LEFT_HINT)
        return False
    return True


def _note_of(target: Path) -> Path:
    return target.with_name(target.name + ERROR_SUFFIX)


def _withdraw(note: Path, made: Sequence[Path]) -> None:
    try:
        withdraw_note(note, made)
    except OSError as exc:
        # Rare (the note's folder turned read-only between two calls); say so, loudly.
        log.error("note_not_withdrawn", note=name_text(note), error=str(exc),
                  hint=f"remove {name_text(note)} by hand: its file was not set aside")


def jobs_command(settings: Settings, location: Path | str | None = None) -> str:
    """The ``jobs`` command that reaches the store of ``settings``, for notes and hints to name.

    A note's command must work as printed. ``jobs`` alone opens the default store, so a
    store of the settings' own (``store.path``, as a lab's settings mostly have) is named
    with ``--store``, and a shared one (``store.url``) with ``--settings``: its URL is not
    copied into files people read.

    ``location`` is the store a command line chose instead (``--store``, or a rehearsal's
    store beside the default one): a file is named as above; a URL typed there is in no
    settings file, so the command shows where it goes (``--store URL``) without copying it.
    """
    store = settings.store
    path = store.path
    if location is not None and str(location) != str(store.location):
        if is_shared_store(str(location)):
            return f"{JOBS_COMMAND} --store URL"
        path = Path(location)
    elif store.url:
        if settings.source is not None:
            return f"{JOBS_COMMAND} --settings {_quoted(str(settings.source))}"
        return JOBS_COMMAND  # the URL came from the environment, which `jobs` reads too
    if path == default_store_path():
        return JOBS_COMMAND
    return f"{JOBS_COMMAND} --store {_quoted(str(path))}"


def _quoted(text: str) -> str:
    """``text`` as one argument on a command line (a path with spaces, on any system)."""
    return f'"{text}"' if any(c.isspace() for c in text) else text


def error_note(
    *,
    what: str,
    where: str,
    todo: str,
    file: str,
    job: Job | None = None,
    details: Sequence[str] = (),
    jobs: str = JOBS_COMMAND,
) -> str:
    """The text of ``<name>.error.txt``: what failed, where, what to do (``jobs``: the
    command that reaches the job's store, :func:`jobs_command`).

    One line each: a control character inside a value (a file named with a newline, a
    carriage return or a terminal's escape sequence, which POSIX allows) is written as its
    escape (``\\n``, ``\\x1b``: :func:`~preform_pipeline.wording.visible`), so every line
    still starts with its label and a note shown in a terminal cannot steer it.
    """
    lines = [
        f"What failed: {visible(what)}",
        f"Where: {visible(where)}",
        f"File: {visible(file)}",
    ]
    if job is not None:
        lines.append(f"Job: {job.job_key} (see: {jobs} show {job.job_key})")
    lines.extend(visible(d) for d in details)
    lines.append(f"What to do: {visible(todo)}")
    return "\n".join(lines) + "\n"


def is_own_note(path: Path) -> bool:
    """Whether ``path`` is a note this hot folder wrote beside a file in done/ or failed/: a
    regular file named ``<name>.error.txt`` whose text begins as :func:`error_note`'s does,
    or ``<name>.report.json`` holding a job report (its format, and the fields every one
    has). Such a note dropped back into an inbox with its case is not a drop. A link, a
    pipe, an unreadable file, or one of those names with other content is not ours."""
    if not path.name.endswith((ERROR_SUFFIX, REPORT_SUFFIX)):
        return False
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):  # a link is not ours, wherever it points
            return False
        # Opened without blocking and checked again once open: a file swapped for a pipe
        # after the look above must not hold the scan up.
        text = read_small_text(path, max_bytes=_MAX_REPORT_BYTES)
        if path.name.endswith(ERROR_SUFFIX):
            return text.startswith(_NOTE_START)
        data = json.loads(text)
    # (UnicodeDecodeError and JSONDecodeError are ValueErrors; the decoder recurses per level
    # of nesting, so a file of a million "[" raised RecursionError and ended the daemon)
    except (OSError, ValueError, RecursionError):
        return False
    return (isinstance(data, dict) and data.get("format") == JOB_REPORT_FORMAT
            and all(key in data for key in _REPORT_KEYS))

