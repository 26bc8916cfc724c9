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
same folder: its holds are found by its inode under any name in the inbox (the notice's key
keeps the name it had when its part was set aside), and it stays held (session 43; until
then it printed without the part set aside).

A hold ends with its case (session 41). Taken, the case went to failed/ whole. Emptied (every
part of it set aside, the folder quiet for the settle window), it is in failed/ whole too:
the daemon forgets its holds and removes the folder, so files put there later are a new case.
Gone from the inbox, its holds are forgotten at the second daemon scan that finds it gone
(:func:`forget_holds_of_gone`): a folder deleted and made again may get the old inode back
(ext4 reuses them), and would be held by them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
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
    store.note_notice(_prefix(root) + os.fsencode(part.relative_to(root)).hex(), str(inode))


def held_parts(store: JobStore, root: Path, inode: int, *, inbox: Path) -> tuple[Path, ...]:
    """The parts set aside from case folder ``root`` of ``inbox`` while it was this folder
    (``inode``), under this name or another it had in the inbox, as named in it now."""
    return _parts(root, _keys_of(store, inbox, inode))


def forget_holds(store: JobStore, root: Path, *, inbox: Path,
                 inode: int | None) -> tuple[Path, ...]:
    """Forget every hold of case folder ``root`` (taken: held to failed/, or gone on; or
    emptied), and those it had under another name in ``inbox`` when it was this folder
    (``inode``, None: not known); the parts it held, as named in it."""
    keys = list(store.notice_keys(_prefix(root)))
    if inode is not None:
        keys += [key for key in _keys_of(store, inbox, inode) if key not in keys]
    if keys:
        store.forget_notices(keys)
    return _parts(root, keys)


def _keys_of(store: JobStore, inbox: Path, inode: int) -> list[str]:
    """The hold notices of the case folders of ``inbox`` that were the folder ``inode``."""
    return [key for key in store.notice_keys(_prefix(inbox))
            if store.notice_about(key) == str(inode)]


def forget_holds_of_gone(
    store: JobStore, inbox: Path, inode_of: Callable[[Path], int | None],
    gone_before: Collection[str] = frozenset(), *, there: Collection[int] = frozenset(),
) -> tuple[dict[Path, tuple[Path, ...]], frozenset[str]]:
    """Forget the holds of the case folders below ``inbox`` that are not there any more as
    the folder they held: removed, or another folder under the name (``inode_of`` a folder
    now: None when it is gone; it raises :class:`OSError` when that cannot be told now), and
    not renamed in the inbox either (``there``: the inodes of its case folders now).

    A hold is forgotten only when it was found gone at the look before too (its key in
    ``gone_before``): a share unmounted for a moment (its empty mount point in its place), or
    a farm node that does not see yet a folder another node held, shows a held folder gone
    once; forgotten then, its rest would print without the part set aside. A folder that
    cannot be looked at now (a passing error, a permission) is not gone at all. Returns the
    parts forgotten, by folder, and the keys found gone this once (for the next look)."""
    inodes: dict[Path, int | OSError | None] = {}
    gone: dict[Path, list[str]] = {}
    for key in store.notice_keys(f"{HOLD_NOTICE} {inbox}{os.sep}"):
        root = Path(key[len(HOLD_NOTICE) + 1:].rpartition(os.sep)[0])
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
        held = store.notice_about(key)
        if inode is not None and held == str(inode):
            continue  # its folder, under the name it had
        if held is not None and held.isdigit() and int(held) in there:
            continue  # renamed in the inbox: the same folder under another name
        gone.setdefault(root, []).append(key)
    now = {key for keys in gone.values() for key in keys}
    forget = {root: [key for key in keys if key in gone_before] for root, keys in gone.items()}
    forget = {root: keys for root, keys in forget.items() if keys}
    if forget:
        store.forget_notices([key for keys in forget.values() for key in keys])
    return ({root: _parts(root, keys) for root, keys in forget.items()},
            frozenset(now.difference(gone_before)))


def _parts(root: Path, keys: Sequence[str]) -> tuple[Path, ...]:
    """The parts the hold notices ``keys`` name, below ``root`` (the name their folder has
    now: a key keeps the one it had when its part was set aside)."""
    return tuple(root / os.fsdecode(bytes.fromhex(key.rpartition(os.sep)[2])) for key in keys)
