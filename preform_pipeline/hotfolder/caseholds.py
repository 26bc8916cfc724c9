"""The parts of a case folder set aside before the case was taken, kept in the job store.

A part whose name is not UTF-8 is set aside to failed/ at first sight (no job can record its
name: :func:`~preform_pipeline.hotfolder.files.set_aside_unstorable`), often while the rest of
its case folder is still being copied in. It holds its case (plan/held.py: a case prints
whole or not at all), but the case is taken later: maybe after the daemon that set the part
aside stopped, or by another node of a farm watching the same inbox. So the hold is written
to the shared job store before the part moves (store first, then move, as every move of the
hot folder), one notice per part, and whoever takes the case reads it there
(:func:`held_parts`), then forgets it once the case went to failed/ (:func:`forget_holds`):
the case moved back with the part renamed goes on whole.

A hold belongs to the very folder, not its name: each notice records the folder's inode
(:class:`~preform_pipeline.hotfolder.intake.CaseFolder`'s test: a shared disk has another
device number on each machine). A folder removed from the inbox and made again under the
same name is another case: the old folder's holds are forgotten when it is taken, not
applied. A folder renamed inside its inbox (a technician's ``C12`` to ``C12-smith``) is the
same folder: its holds are found under any name in the inbox (the notice's key keeps the
name it had when its part was set aside), and it stays held (session 43; until then it
printed without the part set aside). Its inode alone does not show that: ext4 gives a
removed folder's inode to the next folder made, so a new case made after a held one was
removed was held by the removed one's part (the review of session 43). A rename keeps what
the folder holds, a new folder does not: each notice also records the folder's files as
they were (inode and modification time; refreshed at each daemon scan that finds the folder
under its name), and a folder under another name is the held one only when it has its
inode and one of those files, unchanged. Under its own name the inode is enough, as before
(a case being copied in, its badly named part first, has no other file yet).

A hold ends with its case (session 41). Taken, the case went to failed/ whole. Emptied (every
part of it set aside, the folder quiet for the settle window), it is in failed/ whole too:
the daemon forgets its holds and removes the folder, so files put there later are a new case.
Gone from the inbox, its holds are forgotten at the second daemon scan that finds it gone
(:func:`forget_holds_of_gone`): a folder deleted and made again may get the old inode back
(ext4 reuses them), and would be held by them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from preform_pipeline.logging import get_logger
from preform_pipeline.store import JobStore

__all__ = ["HOLD_NOTICE", "forget_holds", "forget_holds_of_gone", "held_parts", "remember_hold"]

log = get_logger(__name__)

#: The notices' key prefix: ``case held by <case folder>/<the part's name as hex bytes>``.
HOLD_NOTICE: Final = "case held by"


def _prefix(root: Path) -> str:
    # The separator ends the folder's part: C-1's holds are not C-10's.
    return f"{HOLD_NOTICE} {root}{os.sep}"


def remember_hold(store: JobStore, root: Path, inode: int, part: Path) -> None:
    """``part`` (below case folder ``root``, whose inode is ``inode``) holds that case. Its
    name is kept as bytes in hex: it is not text. Raises
    :class:`~preform_pipeline.errors.StoreError` (the part is then not set aside yet)."""
    held = _Held(inode, _files_in(root, but=part))
    store.note_notice(_prefix(root) + os.fsencode(part.relative_to(root)).hex(), held.text())


def held_parts(store: JobStore, root: Path, inode: int, *, inbox: Path) -> tuple[Path, ...]:
    """The parts set aside from case folder ``root`` of ``inbox`` while it was this folder
    (``inode``), under this name or another it had in the inbox (:func:`_is_the_folder`), as
    named in it now."""
    files: frozenset[tuple[int, int]] | None = None
    keys = []
    for key in store.notice_keys(_prefix(inbox)):
        held = _Held.of(store.notice_about(key))
        if held is None or held.inode != inode:
            continue
        if _root_of(key) != root and files is None:
            files = _files_in(root)
        if _is_the_folder(held, _root_of(key), root, inode, files):
            keys.append(key)
    return _parts(root, keys)


def forget_holds(store: JobStore, root: Path, *, inbox: Path,
                 inode: int | None) -> tuple[Path, ...]:
    """Forget every hold of case folder ``root`` (taken: held to failed/, or gone on; or
    emptied), and those of ``inbox`` with its inode (``inode``; None: not known): of this
    folder under a name it had, or of a folder gone whose inode it got, forgotten either way
    (the files are gone from it by now: they cannot tell which); the parts, as named in it."""
    keys = list(store.notice_keys(_prefix(root)))
    if inode is not None:
        keys += [key for key in store.notice_keys(_prefix(inbox)) if key not in keys
                 and (held := _Held.of(store.notice_about(key))) is not None
                 and held.inode == inode]
    if keys:
        store.forget_notices(keys)
    return _parts(root, keys)


@dataclass(frozen=True)
class _Held:
    """What a hold notice records of its case folder: its ``inode``, and its ``files`` as
    they were, ``(inode, st_mtime_ns)`` each, which a rename keeps and a new folder that got
    the inode back has not. A notice written before session 43's review has no files."""

    inode: int
    files: frozenset[tuple[int, int]] = frozenset()

    def text(self) -> str:
        return " ".join([str(self.inode), *(f"{ino}:{ns}" for ino, ns in sorted(self.files))])

    @classmethod
    def of(cls, about: str | None) -> _Held | None:
        """The notice's value read; None when it is none of ours."""
        first, *rest = (about or "").split()
        try:
            return cls(int(first), frozenset(
                (int(ino), int(ns)) for ino, _, ns in (f.partition(":") for f in rest)))
        except ValueError:
            return None


def _is_the_folder(held: _Held, root: Path, folder: Path, inode: int | None,
                   files: frozenset[tuple[int, int]] | None) -> bool:
    """Whether ``folder`` (``inode`` and ``files`` now; files None: not read, as it is at
    ``root``) is the case folder ``root`` whose hold is ``held``: under its own name, its
    inode; under another (renamed), its inode and one of its files unchanged."""
    if inode != held.inode:
        return False
    return folder == root or bool(held.files & (files or frozenset()))


def _files_in(folder: Path, *, but: Path | None = None) -> frozenset[tuple[int, int]]:
    """``(inode, st_mtime_ns)`` of the files below ``folder`` now (``but`` that one), as
    :class:`_Held` records them; a file gone meanwhile is left out."""
    files: set[tuple[int, int]] = set()
    for top, _, names in os.walk(folder):
        for name in names:
            path = Path(top, name)
            if path == but:
                continue
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                files.add((info.st_ino, info.st_mtime_ns))
    return frozenset(files)


def _root_of(key: str) -> Path:
    """The case folder a hold notice's key names (as it was named then)."""
    return Path(key[len(HOLD_NOTICE) + 1:].rpartition(os.sep)[0])


def forget_holds_of_gone(
    store: JobStore, inbox: Path, inode_of: Callable[[Path], int | None],
    gone_before: Collection[str] = frozenset(), *, there: Mapping[int, Path] | None = None,
) -> tuple[dict[Path, tuple[Path, ...]], frozenset[str]]:
    """Forget the holds of the case folders below ``inbox`` that are not there any more as
    the folder they held: removed, or another folder under the name (``inode_of`` a folder
    now: None when it is gone; it raises :class:`OSError` when that cannot be told now), and
    not renamed in the inbox either (``there``: its case folders now, by inode; a folder
    that got a removed one's inode back is not it: :func:`_is_the_folder`). A held folder
    found under its name has its files noted anew (what came since the hold, and is kept by
    a later rename).

    A hold is forgotten only when it was found gone at the look before too (its key in
    ``gone_before``): a share unmounted for a moment (its empty mount point in its place), or
    a farm node that does not see yet a folder another node held, shows a held folder gone
    once; forgotten then, its rest would print without the part set aside. A folder that
    cannot be looked at now (a passing error, a permission) is not gone at all. Returns the
    parts forgotten, by folder, and the keys found gone this once (for the next look)."""
    inodes: dict[Path, int | OSError | None] = {}
    files: dict[Path, frozenset[tuple[int, int]]] = {}
    gone: dict[Path, list[str]] = {}

    def files_of(folder: Path) -> frozenset[tuple[int, int]]:
        if folder not in files:
            files[folder] = _files_in(folder)
        return files[folder]

    for key in store.notice_keys(f"{HOLD_NOTICE} {inbox}{os.sep}"):
        root = _root_of(key)
        if root not in inodes:
            try:
                inodes[root] = inode_of(root)
            except OSError as exc:
                inodes[root] = exc
                log.warning("case_holds_kept", root=str(root), error=str(exc),
                            reason="its folder could not be looked at: not gone")
        inode = inodes[root]
        if isinstance(inode, OSError):
            continue
        held = _Held.of(store.notice_about(key))  # (None: unreadable, of no folder)
        if held is not None and _is_the_folder(held, root, root, inode, None):
            now = files_of(root)
            if now and now != held.files:  # its rest came since: a rename keeps it
                store.note_notice(key, _Held(held.inode, now).text())
            continue  # its folder, under the name it had
        renamed = (there or {}).get(held.inode) if held is not None else None
        if held is not None and renamed is not None and _is_the_folder(
                held, root, renamed, held.inode, files_of(renamed)):
            continue  # renamed in the inbox: the same folder under another name
        gone.setdefault(root, []).append(key)
    found = {key for keys in gone.values() for key in keys}
    forget = {root: [key for key in keys if key in gone_before] for root, keys in gone.items()}
    forget = {root: keys for root, keys in forget.items() if keys}
    if forget:
        store.forget_notices([key for keys in forget.values() for key in keys])
    return ({root: _parts(root, keys) for root, keys in forget.items()},
            frozenset(found.difference(gone_before)))


def _parts(root: Path, keys: Sequence[str]) -> tuple[Path, ...]:
    """The parts the hold notices ``keys`` name, below ``root`` (the name their folder has
    now: a key keeps the one it had when its part was set aside)."""
    return tuple(root / os.fsdecode(bytes.fromhex(key.rpartition(os.sep)[2])) for key in keys)
