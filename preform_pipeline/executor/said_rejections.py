"""Files a ``run`` rejected, said once: a cron job over an inbox does not mail the same
rejection every night.

A run that rejects a file (a ``.step``, a mesh it cannot read, a model too big for the
platform) says so, makes its exit status 1, and records in the store that it said it
(``note_notice``: the recipe and the file's absolute path, about the file's size, time and
the reason). A later run that rejects the same file, unchanged, for the same reason passes
over it: not in its rejections, its report or its exit status; one line says what it passed
over (``-v``: each with why), and ``--quiet`` says nothing. A file changed or replaced (its
size or time), or rejected for another reason, is said again; so is one removed and put back
(a run forgets the notices of its recipe's files that are gone). The file itself is never
touched: it stays where the user put it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Final

from preform_pipeline.logging import get_logger
from preform_pipeline.plan.builds import Rejection
from preform_pipeline.store import JobStore
from preform_pipeline.wording import counted, visible

__all__ = ["REJECTED_NOTICE", "SAID_ONCE", "passed_over_lines", "split_said"]

#: The notices' key prefix in the store (one notice per recipe and file).
REJECTED_NOTICE: Final = "rejected"
#: Said once, after a run's new rejections.
SAID_ONCE: Final = ("each rejected file is said once: later runs pass over it until it is "
                    "changed or replaced")

_log = get_logger(__name__)


def _prefix(recipe: str) -> str:
    return f"{REJECTED_NOTICE} [{recipe}] "


def _about(rejection: Rejection) -> str | None:
    """What the notice is about: the file as it is now, and why it was rejected; None when
    the file cannot be looked at (then it is said, as before)."""
    try:
        info = os.stat(rejection.path)
    except OSError:
        return None
    return f"{info.st_size} {info.st_mtime_ns} {rejection.reason}"


def split_said(
    store: JobStore, recipe: str, rejected: Sequence[Rejection]
) -> tuple[tuple[Rejection, ...], tuple[Rejection, ...]]:
    """``rejected`` as (those to say now, those an earlier run said about the file as it is);
    the first are recorded as said."""
    prefix = _prefix(recipe)
    gone = [key for key in store.notice_keys(prefix)
            if not os.path.lexists(key[len(prefix):])]
    if gone:  # removed since: a file put back at that name is said again
        store.forget_notices(gone)
    fresh: list[Rejection] = []
    said: list[Rejection] = []
    for rejection in rejected:
        about = _about(rejection)
        key = prefix + os.path.abspath(rejection.path)
        if about is None or store.note_notice(key, about):
            fresh.append(rejection)
        else:
            said.append(rejection)
    if said:
        _log.info("rejections_passed_over", recipe=recipe,
                  paths=[str(r.path) for r in said])
    return tuple(fresh), tuple(said)


def passed_over_lines(said: Sequence[Rejection], *, verbose: bool) -> list[str]:
    """What a run says of the files it passed over: one line, or (``verbose``) one each with
    why. Names are shown as escapes."""
    if not said:
        return []
    if verbose:
        return [visible(f"passed over {r.path}: rejected by an earlier run, unchanged since: "
                        f"{r.reason.removeprefix(f'{r.path}: ')}") for r in said]
    names = ", ".join(str(r.path) for r in said)
    return [visible(f"passed over {counted(len(said), 'file')} rejected by an earlier run and "
                    f"unchanged since: {names} (-v says why; a changed file is looked at "
                    "again)")]
