"""The split's search keeps to its node budget, and the split does not depend on the unit."""

from __future__ import annotations

import copy
import random

import pytest
from test_executor_schedule import ARCHES64, _build

from preform_pipeline.executor.runner import build_work
from preform_pipeline.plan.schedule import _even_out, balanced_queues

# Eight builds on three servers: longest first ends at 25, and at 24 after the exchanges that
# even it out; the best split ends at 23 (the total is 67). The search, largest build first,
# trying one of several servers of equal load, pruning a server that would reach the best
# span found so far and keeping the first split of each span, reaches 23 at its 29th node.
WORKS = [12.0, 6.0, 9.0, 3.0, 10.0, 12.0, 8.0, 7.0]
NODES_NEEDED = 29


def _longest(works: list[float], queues: list[list[int]]) -> float:
    return max(sum(works[i] for i in queue) for queue in queues)


def _arches64_works() -> list[float]:
    return [build_work(_build(index, *build)) for index, build in enumerate(ARCHES64, start=1)]


class TestTheNodeBudget:
    """The search stops after the nodes it was given, and wastes none before the best split."""

    def test_the_nodes_the_search_needs_find_the_best_split(self) -> None:
        queues = balanced_queues(WORKS, servers=3, node_limit=NODES_NEEDED)
        assert _longest(WORKS, queues) == 23.0
        assert sorted(i for q in queues for i in q) == list(range(len(WORKS)))

    def test_one_node_fewer_ends_later(self) -> None:
        queues = balanced_queues(WORKS, servers=3, node_limit=NODES_NEEDED - 1)
        assert _longest(WORKS, queues) == 24.0
        assert _longest(WORKS, balanced_queues(WORKS, servers=3, node_limit=0)) == 24.0


class TestUnits:
    """Estimates in any unit split the same way: every threshold is relative to the work."""

    def test_the_same_builds_in_a_far_smaller_or_larger_unit_split_the_same(self) -> None:
        # Powers of two scale a float exactly, so any difference is the code's, not rounding.
        # arches64 on four servers needs exchanges after the search (the evening out).
        works = _arches64_works()
        queues = balanced_queues(works, servers=4)
        for scale in (2.0**-20, 2.0**20):
            assert balanced_queues([w * scale for w in works], servers=4) == queues, scale



def _two_long_queues(second: int) -> tuple[list[float], list[list[int]]]:
    """200 builds of about 2 units, a little heavier than ``second`` builds on the other
    queue: ten of about 2 units, the rest about 3.3. Only swaps of near-equal builds even
    them out, and each round of exchanges checks 200 x (``second`` + 1) pairs."""
    rng = random.Random(25)
    first = [2.0 + rng.uniform(-0.05, 0.05) for _ in range(200)]
    small = [2.0 + rng.uniform(-0.05, 0.05) for _ in range(10)]
    large = [3.3 + rng.uniform(-0.05, 0.05) for _ in range(second - 10)]
    gap = rng.uniform(0.05, 0.4)
    scale = (sum(first) - gap - sum(small)) / sum(large)
    works = first + small + [w * scale for w in large]
    return works, [list(range(200)), list(range(200, 200 + second))]


def _moved(before: list[list[int]], after: list[list[int]]) -> int:
    return sum(len(set(new) - set(old)) for old, new in zip(before, after, strict=True))


class TestTheEvenOutBudget:
    """Evening out stops before a round would pass its 50,000 pair checks, even if unfinished."""

    # Many builds: longest first has evened them out already (the budget's reason).

    @pytest.mark.parametrize(
        ("second", "swaps"),
        [(124, 2), (125, 1)],  # 200 x 125 = 25,000 checks a round; 200 x 126 = 25,200
    )
    def test_the_rounds_that_fit_in_the_budget_are_made(self, second: int, swaps: int) -> None:
        works, queues = _two_long_queues(second)
        evened = copy.deepcopy(queues)
        _even_out(works, evened)
        assert [len(q) for q in evened] == [200, second]
        assert _moved(queues, evened) == 2 * swaps
        again = copy.deepcopy(evened)
        _even_out(works, again)  # a new call has a new budget, and goes on
        assert _moved(evened, again) > 0
