"""Balancing planned builds over several servers: the same builds, work split evenly.

The nester (:mod:`preform_pipeline.plan.nesting`) makes as few builds as the platforms
allow; it does not mind how much work each holds. On several servers the run ends when the
busiest server's queue of builds ends, so builds of very unequal work cost wall time no
start order can win back: mixed200's 7 builds (18 to 54 model imports of work) split into 4
queues of at best 62 against a mean of 57. Many groupings give the same number of builds,
and a build of small parts often has room. :func:`balance_groups` moves units (a model, or
the models of a case kept together) out of builds of the longest queue into builds of
shorter queues while that makes the longest queue shorter and the build that takes them
still fits one platform by the planner's own test, which the caller supplies.

- **Never more builds**: a unit only moves into an existing build, and a build is never
  emptied; the number of builds stays the same.
- **Queues**: the builds' estimated work (:func:`build_work`) is split into one queue per
  server by :func:`preform_pipeline.plan.schedule.balanced_queues`, the split the runner
  makes too, again after every move.
- **Order of tries**: a unit of a build in the longest queue goes to the least loaded queue
  whose end it does not push past the longest's, into its roomiest build (least hull
  area), smallest unit (hull area) first, ties by position: the same input gives the same
  plan. After each move the queues are split again.
- **Budget in checks**: a check is one call of the caller's fit test (the build that takes
  a unit, then the build it leaves, which must still take one platform as it is laid out
  again); the search stops when ``budget`` checks are spent, never on the clock, so a plan
  does not depend on the load of the machine that made it. A build that could not take a unit
  is not offered one of as large a hull or larger until it changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from preform_pipeline.plan.schedule import balanced_queues

if TYPE_CHECKING:
    from preform_pipeline.plan.builds import BuildPlan, ModelInfo

__all__ = [
    "BUILD_WORK_MODELS",
    "DEFAULT_BALANCE_CHECKS",
    "Balanced",
    "balance_groups",
    "build_work",
    "model_work",
]

#: A build's fixed requests (scene, orient, support, layout, saves) cost about as much
#: server time as this many model imports: the weight of a build in the start order.
BUILD_WORK_MODELS: Final = 4.0
#: Fit checks :func:`balance_groups` may spend. A check costs 20-90 ms of CPU on builds of
#: 15-50 bench parts (session 24): mixed200 reaches its even split in about a dozen.
DEFAULT_BALANCE_CHECKS: Final = 16
# Relative slack under which two loads count as equal (estimates are sums of floats).
_EPSILON: Final = 1e-9


def model_work(model: ModelInfo) -> float:
    """A model's share of its build's server time, in model imports: more for heavier
    meshes."""
    return 1.0 + model.triangle_count / 100_000


def build_work(build: BuildPlan) -> float:
    """Server time a build takes, roughly, in model imports: per model, more for heavier
    meshes, plus the build's fixed requests (what the start order balances)."""
    return _work_of(model_work(m) for m in build.models)


def _work_of(model_works: Iterable[float]) -> float:
    """A build's work from its models' (:func:`build_work`'s rule)."""
    return BUILD_WORK_MODELS + sum(model_works)


@dataclass(frozen=True)
class Balanced:
    """The groups after balancing, and what it took.

    ``groups`` lists model indices per build, in the builds' order, each sorted; ``moved``
    the units moved (model indices), in the order they moved; ``checks`` the fit checks
    spent; ``span_before`` and ``span_after`` the longest queue's estimated work.
    """

    groups: tuple[tuple[int, ...], ...]
    moved: tuple[tuple[int, ...], ...]
    checks: int
    span_before: float
    span_after: float


def _queues(groups: Sequence[Sequence[int]], works: Sequence[float],
            servers: int) -> tuple[list[list[int]], list[float]]:
    loads = [_work_of(works[i] for i in g) for g in groups]
    queues = balanced_queues(loads, servers)
    return queues, [sum(loads[b] for b in q) for q in queues]


def balance_groups(
    groups: Sequence[Sequence[int]],
    units: Sequence[Sequence[int]],
    works: Sequence[float],
    servers: int,
    fits: Callable[[Sequence[int]], bool],
    *,
    hulls: Sequence[float],
    budget: int = DEFAULT_BALANCE_CHECKS,
) -> Balanced:
    """Move units between ``groups`` so their work splits evenly over ``servers`` queues.

    ``groups``: model indices per build; ``units``: model indices that must share a build
    (every index in exactly one); ``works``: each model's work (:func:`model_work`);
    ``fits(indices)``: whether those models share one platform, by the planner's test (each
    call is one check of ``budget``); ``hulls``: each model's hull area (the roomiest build
    and the smallest units are tried first). See the module docstring.
    """
    current = [sorted(g) for g in groups]
    unit_of = {i: u for u, members in enumerate(units) for i in members}
    unit_work = [sum(works[i] for i in members) for members in units]
    unit_hull = [sum(hulls[i] for i in members) for members in units]
    queues, loads = _queues(current, works, servers)
    span_before = max(loads)  # balanced_queues gives one queue at least
    moved: list[tuple[int, ...]] = []
    checks = 0
    # Per build, since it last changed: the smallest unit hull it could not take.
    refused: dict[int, float] = {}
    # One server, or one build, has no other queue to give to: the loop ends at once.
    while True:
        longest = max(range(len(queues)), key=lambda q: (loads[q], -q))
        span = loads[longest]
        room = [sum(hulls[i] for i in g) for g in current]
        # Into the least loaded queue first, its roomiest build, from the fullest donor.
        pairs = sorted(
            (loads[q], room[r], -room[d], d, r, q)
            for d in queues[longest]
            for q, queue in enumerate(queues) if loads[q] < span * (1 - _EPSILON)
            for r in queue
        )
        step: tuple[int, int, list[int]] | None = None
        for load, _, _, donor, receiver, _ in pairs:
            offered = _offered(current[donor], unit_of, unit_work, unit_hull, (span - load) / 2)
            limit = refused.get(receiver, math.inf)
            offered = [u for u in offered if unit_hull[u] < limit]
            # The most work first, then half as many units, down to one; each a check.
            while offered and step is None and checks + 2 <= budget:
                taking = sorted([*current[receiver], *(i for u in offered for i in units[u])])
                checks += 1
                if fits(taking):
                    # The build left behind is laid out again: it must still take a platform.
                    gone = set(offered)
                    left = [i for i in current[donor] if unit_of[i] not in gone]
                    checks += 1
                    if fits(left):
                        current[receiver], current[donor] = taking, left
                        step = (donor, receiver, offered)
                    break
                if len(offered) == 1:
                    refused[receiver] = unit_hull[offered[0]]
                offered = offered[: len(offered) // 2]
            if step is not None:
                break
        if step is None:
            break
        donor, receiver, offered = step
        for changed in (donor, receiver):
            refused.pop(changed, None)
        moved.extend(tuple(units[u]) for u in offered)
        queues, loads = _queues(current, works, servers)
    return Balanced(
        groups=tuple(tuple(g) for g in current),
        moved=tuple(moved),
        checks=checks,
        span_before=span_before,
        span_after=max(loads),
    )


def _offered(
    members: Sequence[int],
    unit_of: Mapping[int, int],
    unit_work: Sequence[float],
    unit_hull: Sequence[float],
    target: float,
) -> list[int]:
    """The units of a build to offer another: smallest hull first (ties by position), as
    many as keep their work within ``target`` (half the gap between the two queues, so the
    pair ends no less even than it was), and never all of them (a build is never emptied)."""
    own = sorted(dict.fromkeys(unit_of[i] for i in members), key=lambda u: (unit_hull[u], u))
    offered: list[int] = []
    work = 0.0
    for u in own[:-1]:
        if work + unit_work[u] > target:
            break
        offered.append(u)
        work += unit_work[u]
    return offered
