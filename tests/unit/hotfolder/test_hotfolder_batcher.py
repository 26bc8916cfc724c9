"""Batching: window, full platforms, cutoff, min-fill holds, priority, cases kept whole."""

from __future__ import annotations

from datetime import datetime, time, timezone

from preform_pipeline.clock import ManualClock
from preform_pipeline.hotfolder.batcher import Batcher, BatchItem
from preform_pipeline.settings.hotfolder import BatchingSettings


def item(key: int, clock: ManualClock, *, models: int = 1, priority: int = 0,
         recipe: str = "r") -> BatchItem:
    ids = tuple(range(key * 100, key * 100 + models))
    return BatchItem(f"i{key}", recipe, ids, clock.monotonic(), priority)


class TestWindow:
    """Files arriving within the window go together; a lone file waits at most the window."""

    def test_nothing_is_due_before_the_window_ends(self) -> None:
        clock = ManualClock()
        batcher = Batcher(BatchingSettings(window_s=10, max_models=50), clock)
        batcher.add(item(1, clock))
        clock.advance(4)
        batcher.add(item(2, clock))
        assert batcher.due() == []
        assert batcher.next_due_in() == 6
        clock.advance(6)
        (batch,) = batcher.due()
        assert batch.reason == "window"
        assert [i.key for i in batch.items] == ["i1", "i2"]
        assert batcher.pending_items == 0
        assert batcher.next_due_in() is None

    def test_recipes_are_batched_apart(self) -> None:
        clock = ManualClock()
        batcher = Batcher(BatchingSettings(window_s=1), clock)
        batcher.add(item(1, clock, recipe="a"))
        batcher.add(item(2, clock, recipe="b"))
        clock.advance(1)
        assert sorted(b.recipe for b in batcher.due()) == ["a", "b"]


class TestFull:
    """A full batch goes at once, highest priority first; cases stay whole."""

    def test_max_models_releases_without_waiting(self) -> None:
        clock = ManualClock()
        batcher = Batcher(BatchingSettings(window_s=100, max_models=3), clock)
        for key in range(4):
            batcher.add(item(key, clock, priority=1 if key == 3 else 0))
        (batch,) = batcher.due()
        assert batch.reason == "full"
        assert [i.key for i in batch.items] == ["i3", "i0", "i1"]
        assert batcher.pending_items == 1

    def test_full_releases_only_full_batches(self) -> None:
        clock = ManualClock()
        batcher = Batcher(BatchingSettings(window_s=1, max_models=2), clock)
        for key in range(3):
            batcher.add(item(key, clock))
        clock.advance(5)  # the window passed too, but full() leaves the rest
        assert [len(b.job_ids) for b in batcher.full()] == [2]
        assert batcher.pending_items == 1

    def test_a_case_is_never_split_between_batches(self) -> None:
        clock = ManualClock()
        batcher = Batcher(BatchingSettings(window_s=1, max_models=4), clock)
        batcher.add(item(1, clock, models=3))
        batcher.add(item(2, clock, models=3))
        batches = batcher.due()
        assert [len(b.job_ids) for b in batches] == [3]
        clock.advance(1)
        assert [len(b.job_ids) for b in batcher.due()] == [3]

    def test_a_case_larger_than_max_models_goes_alone(self) -> None:
        clock = ManualClock()
        batcher = Batcher(BatchingSettings(window_s=1, max_models=2), clock)
        batcher.add(item(1, clock, models=5))
        (batch,) = batcher.due()
        assert len(batch.job_ids) == 5


class TestPriority:
    """Priority items lead their batch, and priority batches come out first."""

    def test_batches_are_ordered_by_priority(self) -> None:
        clock = ManualClock()
        batcher = Batcher(BatchingSettings(window_s=1), clock)
        batcher.add(item(1, clock, recipe="low"))
        batcher.add(item(2, clock, recipe="high", priority=9))
        clock.advance(1)
        assert [b.recipe for b in batcher.due()] == ["high", "low"]


class TestHold:
    """Items held for min_fill wait for company, or for max_hold_s."""

    def test_held_items_go_with_the_next_batch(self) -> None:
        clock = ManualClock()
        batcher = Batcher(BatchingSettings(window_s=1, max_hold_s=100), clock)
        batcher.add(item(1, clock))
        clock.advance(1)
        (first,) = batcher.due()
        batcher.hold(first.items)
        clock.advance(5)
        assert batcher.due() == []  # held alone: not released by the window again
        batcher.add(item(2, clock))
        clock.advance(1)
        (batch,) = batcher.due()
        assert {i.key for i in batch.items} == {"i1", "i2"}
        assert not batch.forced

    def test_held_items_are_forced_out_after_max_hold(self) -> None:
        clock = ManualClock()
        batcher = Batcher(BatchingSettings(window_s=1, max_hold_s=30), clock)
        batcher.add(item(1, clock))
        clock.advance(1)
        batcher.hold(batcher.due()[0].items)
        assert batcher.next_due_in() == 29
        clock.advance(29)
        (batch,) = batcher.due()
        assert batch.reason == "held" and batch.forced


class TestCutoff:
    """With a cutoff time, items wait for it and then all go, forced."""

    def test_items_wait_for_the_cutoff(self) -> None:
        # 12:00 UTC; the cutoff is given in local time, so build it from the local clock.
        clock = ManualClock(wall=datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc))
        local_noon = clock.now().astimezone()
        cutoff = (local_noon.hour + 1) % 24
        batcher = Batcher(
            BatchingSettings(window_s=1, max_models=50, cutoff_time=time(cutoff, 0),
                             max_hold_s=10 * 3600),
            clock,
        )
        batcher.add(item(1, clock))
        clock.advance(600)
        assert batcher.due() == []
        assert batcher.next_due_in() == 3000
        clock.advance(3000)
        (batch,) = batcher.due()
        assert batch.reason == "cutoff" and batch.forced

    def test_full_batches_do_not_wait_for_the_cutoff(self) -> None:
        clock = ManualClock()
        cutoff = (clock.now().astimezone().hour + 2) % 24
        batcher = Batcher(
            BatchingSettings(max_models=2, cutoff_time=time(cutoff, 0), max_hold_s=36000),
            clock,
        )
        batcher.add(item(1, clock))
        batcher.add(item(2, clock))
        assert [b.reason for b in batcher.due()] == ["full"]


class TestFlush:
    """Flush releases everything now, in max_models chunks."""

    def test_flush_empties_the_batcher(self) -> None:
        clock = ManualClock()
        batcher = Batcher(BatchingSettings(window_s=100, max_models=2), clock)
        for key in range(5):
            batcher.add(item(key, clock))
        batches = batcher.flush()
        assert [len(b.job_ids) for b in batches] == [2, 2, 1]
        assert all(b.reason == "flush" and b.forced for b in batches)
        assert batcher.pending_items == 0

    def test_adding_a_key_twice_keeps_one(self) -> None:
        clock = ManualClock()
        batcher = Batcher(BatchingSettings(), clock)
        batcher.add(item(1, clock))
        batcher.add(item(1, clock))
        assert batcher.pending_items == 1
