"""Batching: which taken files are prepared together, and when.

Files are taken one by one, but platforms are filled with many models, so taken items (a
file, or a whole case) wait in a queue per recipe until one of these releases them:

``full``
    the queue holds ``max_models`` models: they go at once (highest priority first).
``window``
    ``window_s`` seconds passed since the oldest waiting item arrived: files dropped
    together are prepared together, and a lone file waits at most the window.
``cutoff``
    with ``cutoff_time`` set, the window does not apply: items wait for the next cutoff
    (a time of day, local time) and everything that arrived before it goes then (a day's
    work printed overnight). Full batches still go at once.
``held``
    an item held back for ``min_fill`` (its build filled too little of the platform, see
    :meth:`Batcher.hold`) waits for more models; after ``max_hold_s`` it goes anyway.
``flush``
    :meth:`Batcher.flush` (``watch --once``) releases everything now.

An item given back with a ``not_before`` (its batch was abandoned while the job store was
away: :mod:`.batchrest`) rests until then, by every rule above, ``flush`` too: only then is it
queued, and its window has passed.

Within a batch, items are ordered by priority (higher first), then arrival; a case is never
split between batches. Batches of several recipes come out highest priority first. Batches
released by ``cutoff``, ``held`` and ``flush`` are *forced*: min_fill no longer holds them.

The batcher is pure bookkeeping with an injected clock; the daemon calls it from one thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Final, Literal

from preform_pipeline.clock import Clock
from preform_pipeline.settings.hotfolder import BatchingSettings

__all__ = [
    "Batch",
    "BatchItem",
    "Batcher",
    "ReleaseReason",
    "last_cutoff",
]

ReleaseReason = Literal["full", "window", "cutoff", "held", "flush"]
_FORCED: Final = frozenset({"cutoff", "held", "flush"})


@dataclass(frozen=True)
class BatchItem:
    """A taken file or case: its jobs stay together. ``arrived`` is on the monotonic clock."""

    key: str
    recipe: str
    job_ids: tuple[int, ...]
    arrived: float
    priority: int = 0
    case_id: str | None = None
    #: Monotonic time before which the item is not batched (0: at once).
    not_before: float = 0.0

    @property
    def model_count(self) -> int:
        return len(self.job_ids)


@dataclass(frozen=True)
class Batch:
    """Items of one recipe released together."""

    recipe: str
    items: tuple[BatchItem, ...]
    reason: ReleaseReason

    @property
    def forced(self) -> bool:
        """True when min_fill no longer applies (cutoff passed, held too long, flush)."""
        return self.reason in _FORCED

    @property
    def job_ids(self) -> tuple[int, ...]:
        return tuple(i for item in self.items for i in item.job_ids)

    @property
    def priority(self) -> int:
        return max((item.priority for item in self.items), default=0)


def last_cutoff(now: datetime, at: time) -> datetime:
    """The most recent moment at time of day ``at`` (local time) not after ``now``."""
    local = now.astimezone()
    today = local.replace(hour=at.hour, minute=at.minute, second=at.second, microsecond=0)
    return today if today <= local else today - timedelta(days=1)


@dataclass
class _Queue:
    fresh: list[BatchItem] = field(default_factory=list)
    held: list[BatchItem] = field(default_factory=list)

    def all(self) -> list[BatchItem]:
        return sorted(self.fresh + self.held, key=lambda i: (-i.priority, i.arrived, i.key))

    def models(self) -> int:
        return sum(i.model_count for i in self.fresh) + sum(i.model_count for i in self.held)

    def remove(self, items: Iterable[BatchItem]) -> None:
        gone = {i.key for i in items}
        self.fresh = [i for i in self.fresh if i.key not in gone]
        self.held = [i for i in self.held if i.key not in gone]


class Batcher:
    """Queues taken items per recipe and releases batches by the rules in the module doc."""

    def __init__(self, settings: BatchingSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self._queues: dict[str, _Queue] = {}
        self._keys: set[str] = set()
        #: Items resting until their ``not_before``, queued by :meth:`_wake_rested`.
        self._resting: list[BatchItem] = []

    # -- adding -------------------------------------------------------------------------------

    def add(self, item: BatchItem) -> None:
        """Queue a newly taken item; adding a key twice is ignored."""
        if item.key in self._keys:
            return
        self._keys.add(item.key)
        if item.not_before > self.clock.monotonic():
            self._resting.append(item)
            return
        self._queues.setdefault(item.recipe, _Queue()).fresh.append(item)

    def _wake_rested(self) -> None:
        """Queue the resting items whose time came."""
        now = self.clock.monotonic()
        for item in [i for i in self._resting if i.not_before <= now]:
            self._resting.remove(item)
            self._queues.setdefault(item.recipe, _Queue()).fresh.append(item)

    def hold(self, items: Sequence[BatchItem]) -> None:
        """Put released items back to wait for more models (min_fill); they keep their
        arrival time, so max_hold_s counts from when they were taken."""
        for item in items:
            self._keys.add(item.key)
            queue = self._queues.setdefault(item.recipe, _Queue())
            queue.remove([item])
            queue.held.append(item)

    def discard(self, keys: Iterable[str]) -> None:
        """Forget items (their jobs were cancelled meanwhile)."""
        gone = set(keys)
        for queue in self._queues.values():
            queue.fresh = [i for i in queue.fresh if i.key not in gone]
            queue.held = [i for i in queue.held if i.key not in gone]
        self._resting = [i for i in self._resting if i.key not in gone]
        self._keys -= gone

    # -- looking ------------------------------------------------------------------------------

    @property
    def pending_items(self) -> int:
        return len(self._resting) + sum(len(q.fresh) + len(q.held)
                                        for q in self._queues.values())

    def _cutoff_age(self) -> float | None:
        """Seconds since the most recent cutoff, or None without a cutoff."""
        cutoff = self.settings.cutoff_time
        if cutoff is None:
            return None
        now = self.clock.now()
        moment = last_cutoff(now, cutoff)
        return (now.astimezone() - moment).total_seconds()

    def next_due_in(self) -> float | None:
        """Seconds until :meth:`due` may release something (0: now), None when nothing waits."""
        self._wake_rested()
        now = self.clock.monotonic()
        best: float | None = None

        def consider(value: float) -> None:
            nonlocal best
            best = value if best is None else min(best, value)

        for item in self._resting:
            consider(item.not_before - now)

        cutoff_age = self._cutoff_age()
        for queue in self._queues.values():
            if not queue.fresh and not queue.held:
                continue
            if queue.models() >= self.settings.max_models and queue.fresh:
                consider(0.0)
            if queue.held:
                oldest = min(i.arrived for i in queue.held)
                consider(oldest + self.settings.max_hold_s - now)
            if queue.fresh:
                oldest = min(i.arrived for i in queue.fresh)
                if cutoff_age is None:
                    consider(oldest + self.settings.window_s - now)
                else:
                    consider(86400.0 - cutoff_age)
                    consider(oldest + self.settings.max_hold_s - now)
        return None if best is None else max(0.0, best)

    # -- releasing ----------------------------------------------------------------------------

    def _chunks(self, items: list[BatchItem]) -> list[list[BatchItem]]:
        """Items in priority order cut into batches of at most max_models (cases whole)."""
        chunks: list[list[BatchItem]] = []
        rest = list(items)
        limit = self.settings.max_models
        while rest:
            chunk: list[BatchItem] = []
            count = 0
            left: list[BatchItem] = []
            for item in rest:
                if not chunk or count + item.model_count <= limit:
                    chunk.append(item)
                    count += item.model_count
                else:
                    left.append(item)
            chunks.append(chunk)
            rest = left
        return chunks

    def _release(self, recipe: str, items: list[BatchItem], reason: ReleaseReason) -> Batch:
        queue = self._queues[recipe]
        queue.remove(items)
        self._keys -= {i.key for i in items}
        return Batch(recipe, tuple(items), reason)

    def due(self) -> list[Batch]:
        """Batches to prepare now (see the module docstring), highest priority first."""
        self._wake_rested()
        now = self.clock.monotonic()
        cutoff_age = self._cutoff_age()
        limit = self.settings.max_models
        batches: list[Batch] = []
        for recipe, queue in list(self._queues.items()):
            if not queue.fresh and not queue.held:
                continue
            everything = queue.all()
            reason: ReleaseReason | None = None
            if cutoff_age is not None:
                # Items that arrived before the most recent cutoff go now.
                before = [i for i in everything if now - i.arrived > cutoff_age]
                if before:
                    for chunk in self._chunks(before):
                        batches.append(self._release(recipe, chunk, "cutoff"))
                    everything = queue.all()
            elif queue.fresh and now - min(i.arrived for i in queue.fresh) >= (
                self.settings.window_s
            ):
                reason = "window"
            if reason is None and queue.held and (
                now - min(i.arrived for i in queue.held) >= self.settings.max_hold_s
            ):
                reason = "held"
            if reason is None and cutoff_age is not None and queue.fresh and (
                now - min(i.arrived for i in queue.fresh) >= self.settings.max_hold_s
            ):
                reason = "held"
            if reason is not None and everything:
                for chunk in self._chunks(everything):
                    batches.append(self._release(recipe, chunk, reason))
                continue
            # Full platforms never wait, in any mode.
            while queue.fresh and queue.models() >= limit:
                batches.append(self._release(recipe, self._chunks(queue.all())[0], "full"))
        batches.sort(key=lambda b: (-b.priority, min(i.arrived for i in b.items)))
        return batches

    def full(self) -> list[Batch]:
        """Only the batches that are full now (``max_models``): what may go while files of a
        burst are still being taken, without splitting the burst by the window."""
        self._wake_rested()
        batches: list[Batch] = []
        limit = self.settings.max_models
        for recipe, queue in list(self._queues.items()):
            while queue.fresh and queue.models() >= limit:
                batches.append(self._release(recipe, self._chunks(queue.all())[0], "full"))
        batches.sort(key=lambda b: (-b.priority, min(i.arrived for i in b.items)))
        return batches

    def flush(self) -> list[Batch]:
        """Everything now (``--once``, shutdown of a test) but what rests."""
        self._wake_rested()
        batches: list[Batch] = []
        for recipe, queue in list(self._queues.items()):
            items = queue.all()
            for chunk in self._chunks(items):
                batches.append(self._release(recipe, chunk, "flush"))
        batches.sort(key=lambda b: (-b.priority, min(i.arrived for i in b.items)))
        return batches
