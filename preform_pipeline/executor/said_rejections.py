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
touched: it stays where the user put it. A path named that is not there is said once too
(a cron job naming a folder not mounted tonight), and again once something is there.

A model the planner refused (too big for the platform) was read, so a run would claim it as
a job before planning, and fail that job with the refusal: a new ``failed`` job every night.
:func:`pass_over_said` looks first: a model whose notice is about the file as it is now is
planned alone, and when the planner refuses it for the reason said, it is not claimed; its
rejection goes on to :func:`split_said` with the others, which passes it over. Changed,
replaced, or refused for another reason (the recipe changed), it is claimed as any model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from preform_pipeline.errors import PipelineError
from preform_pipeline.logging import get_logger
from preform_pipeline.plan.rejection import Rejection
from preform_pipeline.recipes.model import Recipe
from preform_pipeline.store import JobStore
from preform_pipeline.wording import counted, name_text, visible

if TYPE_CHECKING:
    from preform_pipeline.plan.builds import ModelInfo

__all__ = ["REJECTED_NOTICE", "SAID_ONCE", "pass_over_said", "passed_over_lines", "split_said"]

#: The notices' key prefix in the store (one notice per recipe and file).
REJECTED_NOTICE: Final = "rejected"
#: Marks a notice key that holds a path's bytes (in hex), not its text (:func:`_key`).
_BYTES: Final = "bytes:"
#: Begins what a notice is about when the path named was not there: said once as well (a
#: cron job naming a folder not mounted tonight), and said again once something is there.
_ABSENT: Final = "absent "
#: Said once, after a run's new rejections.
SAID_ONCE: Final = ("each rejected file is said once: later runs pass over it until it is "
                    "changed or replaced")

_log = get_logger(__name__)


def _prefix(recipe: str) -> str:
    return f"{REJECTED_NOTICE} [{recipe}] "


def _key(recipe: str, path: os.PathLike[str] | str) -> str:
    """The notice's key: the file's absolute path, or for a name that is not UTF-8 text
    (possible on Linux and macOS: ``run`` rejects such a model, and the store keeps text
    only) :data:`_BYTES` and its bytes in hex, which :func:`_path_of` reads back. A text
    path never starts so (an absolute path starts with a separator or a drive)."""
    absolute = os.fsencode(os.path.abspath(path))
    try:
        return _prefix(recipe) + absolute.decode("utf-8")
    except UnicodeDecodeError:
        return _prefix(recipe) + _BYTES + absolute.hex()


def _path_of(key: str, prefix: str) -> str | bytes:
    """The file a notice's ``key`` (of ``prefix``) is about (:func:`_key`)."""
    rest = key[len(prefix):]
    return bytes.fromhex(rest[len(_BYTES):]) if rest.startswith(_BYTES) else rest


def _file_now(path: os.PathLike[str] | str) -> str | None:
    """The file as it is now (size and time), as a notice is about it; None when it cannot be
    looked at."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return f"{info.st_size} {info.st_mtime_ns}"


def _about(rejection: Rejection) -> str | None:
    """What the notice is about: the file as it is now (or :data:`_ABSENT`), and why it was
    rejected; None when the file is there but cannot be looked at (then it is said, as
    before)."""
    if not os.path.lexists(rejection.path):
        return name_text(f"{_ABSENT}{rejection.reason}")
    now = _file_now(rejection.path)
    # (A name that is not UTF-8 in the reason is kept with its bytes escaped.)
    return None if now is None else name_text(f"{now} {rejection.reason}")


def pass_over_said(
    store: JobStore, recipe: Recipe, models: Sequence[ModelInfo]
) -> tuple[list[ModelInfo], list[Rejection]]:
    """``models`` as (those to claim, the rejections of those an earlier run rejected, as
    they are now and for the reason the planner gives now). Only reads the store: the
    rejections are passed over (and recorded) by :func:`split_said`, as any other."""
    take: list[ModelInfo] = []
    passed: list[Rejection] = []
    # One read of the recipe's notices for the night, then one per model said about: nearly
    # every model of a night never was rejected.
    noticed = frozenset(store.notice_keys(_prefix(recipe.name)))
    for model in models:
        key = _key(recipe.name, model.path)
        said = store.notice_about(key) if key in noticed else None
        now = _file_now(model.path)
        # Planned alone only when the file is as it was said about: nearly every model
        # of a night never was rejected, and a changed one is looked at again anyway.
        same = None if said is None or now is None or not said.startswith(f"{now} ") else (
            _refused_again(recipe, model, said))
        if same is None:
            take.append(model)
        else:
            passed.append(same)
    if passed:
        _log.info("rejected_models_not_claimed", recipe=recipe.name,
                  paths=[str(r.path) for r in passed])
    return take, passed


def _refused_again(recipe: Recipe, model: ModelInfo, said: str) -> Rejection | None:
    """The planner's refusal of ``model`` alone, when it is the one ``said``; else None."""
    # The planner (and numpy) only for a file said about before: a cron repeat whose files
    # were all printed asks none, and its start stays light (test_cli_start_imports).
    from preform_pipeline.plan.builds import plan_builds

    try:
        refused = plan_builds(recipe, [model]).rejected
    except PipelineError:
        return None  # the whole plan's error: claimed, and said by the plan as ever
    return next((r for r in refused if _about(r) == said), None)


def split_said(
    store: JobStore, recipe: str, rejected: Sequence[Rejection]
) -> tuple[tuple[Rejection, ...], tuple[Rejection, ...]]:
    """``rejected`` as (those to say now, those an earlier run said about the file as it is);
    the first are recorded as said."""
    prefix = _prefix(recipe)
    gone = [key for key in store.notice_keys(prefix)
            if _changed_presence(store, key, os.path.lexists(_path_of(key, prefix)))]
    if gone:  # removed since (or there since): a file put back at that name is said again
        store.forget_notices(gone)
    fresh: list[Rejection] = []
    said: list[Rejection] = []
    for rejection in rejected:
        about = _about(rejection)
        if about is None or store.note_notice(_key(recipe, rejection.path), about):
            fresh.append(rejection)
        else:
            said.append(rejection)
    if said:
        _log.info("rejections_passed_over", recipe=recipe,
                  paths=[str(r.path) for r in said])
    return tuple(fresh), tuple(said)


def _changed_presence(store: JobStore, key: str, there: bool) -> bool:
    """Whether the notice ``key`` was about a file that is gone now, or about a path that
    was absent and is there now."""
    about = store.notice_about(key)
    return about is not None and about.startswith(_ABSENT) == there


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
