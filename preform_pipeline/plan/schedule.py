"""Start orders for builds on several servers: a near-best split of the work, kept by dispatch.

The runner hands builds out in one sequence, each to whichever server frees first. Longest
first is good when there are many rounds, but with few builds per server it can put the
last build on top of a full round (13 similar builds on 4 servers: the thirteenth runs alone
after three rounds, while one server running the four smallest and the others three each
ends a build's time earlier). Here the estimated work is split into one queue per server
(:func:`balanced_queues`: exact branch and bound within a node budget, longest-first
otherwise), and the queues are woven into one start sequence by replaying the dispatch with
the estimates (:func:`start_sequence`). When the estimates hold, the dispatch runs the
queues as planned; when they do not, it is still a list schedule, which never leaves a
server idle while a build waits.

Functions take the builds' estimated work as plain numbers, indexed by position. They live
in plan/ (session 24) because the planner splits the same estimates when it balances builds
over servers (:mod:`preform_pipeline.plan.balance`); the runner imports them from here.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from typing import Final

__all__ = [
    "DEFAULT_NODE_LIMIT",
    "balanced_queues",
    "dispatch_ends",
    "dispatch_makespan",
    "expected_makespan",
    "start_sequence",
]

#: Search nodes :func:`balanced_queues` may visit (about 10 ms of CPU), so a run of hundreds
#: of builds pays nothing noticeable; past it the best split found so far stands.
DEFAULT_NODE_LIMIT: Final = 5_000
#: Exchanges :func:`balanced_queues` makes after its search, each the best of all pairs.
_EVEN_OUT_ROUNDS: Final = 50
#: Pair checks :func:`balanced_queues` may spend evening out loads after its search: with
#: the node limit, run_order took 1-7 ms of CPU for 13-28 builds and 15-44 ms for 300 on
#: 2-16 servers (session 18, load 9).
_EVEN_OUT_CHECKS: Final = 50_000
#: Samples and spread of :func:`expected_makespan`: real build times differ from estimates
#: by about a tenth (session 18 measured 9-17% on the bench sets, on one simulated server).
_SAMPLES: Final = 24
_SPREAD: Final = 0.12
_SEED: Final = 18
# Relative slack under which two loads count as equal (estimates are sums of floats).
_EPSILON: Final = 1e-9


def dispatch_ends(durations: Sequence[float], servers: int) -> list[tuple[int, float, float]]:
    """Replay dispatch: builds start in the given order, each on the server that frees first.

    Returns, per build in the given order, ``(server, start, end)``. Servers that free at
    the same moment are taken by number, which does not change any start or end time.
    """
    free = [(0.0, server) for server in range(max(1, servers))]
    runs: list[tuple[int, float, float]] = []
    for duration in durations:
        start, server = heapq.heappop(free)
        end = start + duration
        runs.append((server, start, end))
        heapq.heappush(free, (end, server))
    return runs


def dispatch_makespan(durations: Sequence[float], servers: int) -> float:
    """When the last build ends under :func:`dispatch_ends`."""
    return max((end for _, _, end in dispatch_ends(durations, servers)), default=0.0)


def expected_makespan(works: Sequence[float], sequence: Sequence[int], servers: int) -> float:
    """The mean :func:`dispatch_makespan` of builds started in ``sequence`` (positions into
    ``works``) when each takes its estimate times a random factor around 1.

    The factors are drawn per build from a fixed seed, so two sequences of the same builds
    are compared under the same times, and the result is the same on every call.
    """
    rng = random.Random(_SEED)
    total = 0.0
    for _ in range(_SAMPLES):
        factors = [rng.lognormvariate(0.0, _SPREAD) for _ in works]
        total += dispatch_makespan([works[i] * factors[i] for i in sequence], servers)
    return total / _SAMPLES


def balanced_queues(
    works: Sequence[float], servers: int, node_limit: int = DEFAULT_NODE_LIMIT
) -> list[list[int]]:
    """Split build positions into ``servers`` queues whose largest total work is least.

    Longest-first placement gives the first answer; an exact branch and bound (largest
    first, servers of equal load tried once) improves it until it is provably best or
    ``node_limit`` nodes are spent. Deterministic: the same works give the same queues.
    Each queue lists its builds longest first (equal works by position).
    """
    count = max(1, servers)
    items = sorted(range(len(works)), key=lambda i: (-works[i], i))
    loads = [0.0] * count
    best = [0] * len(items)
    for slot, item in enumerate(items):
        server = loads.index(min(loads))
        best[slot] = server
        loads[server] += works[item]
    best_span = max(loads)
    total = sum(works)
    # No split beats the mean load, the longest build, or the smallest builds that one
    # server must run when there are more builds than servers.
    per_server = -(-len(items) // count)
    smallest = sorted(works)[:per_server] if len(items) > count else []
    floor = max(total / count, max(works, default=0.0), sum(smallest))
    loads = [0.0] * count
    chosen = [0] * len(items)
    nodes = 0

    def place(slot: int) -> bool:
        """Search below ``slot``; False once the budget is spent or the floor is reached."""
        nonlocal best_span, best, nodes
        nodes += 1
        if nodes > node_limit:
            return False
        if slot == len(items):
            span = max(loads)
            if span < best_span * (1 - _EPSILON):
                best_span, best = span, list(chosen)
            return best_span > floor * (1 + _EPSILON)
        work = works[items[slot]]
        tried: set[float] = set()
        for server in range(count):
            load = loads[server]
            if load in tried or load + work >= best_span * (1 - _EPSILON):
                continue  # an equal load is the same choice; a full one cannot improve
            tried.add(load)
            loads[server] = load + work
            chosen[slot] = server
            going = place(slot + 1)
            loads[server] = load
            if not going:
                return False
        return True

    if best_span > floor * (1 + _EPSILON):
        place(0)
    queues: list[list[int]] = [[] for _ in range(count)]
    for slot, item in enumerate(items):
        queues[best[slot]].append(item)
    _even_out(works, queues)
    for queue in queues:
        queue.sort(key=lambda i: (-works[i], i))
    return queues


def _even_out(works: Sequence[float], queues: list[list[int]]) -> None:
    """Exchange builds between queues while that makes the loads more even (their sum of
    squares smaller) without making the longest queue longer.

    The search only minds the longest queue; among splits of the same makespan, one with a
    queue just under it would end late as soon as its builds took a little longer than
    estimated.
    """
    loads = [sum(works[i] for i in q) for q in queues]
    checks = 0
    for _ in range(_EVEN_OUT_ROUNDS):
        span = max(loads)
        best: tuple[float, int, int, int, int] | None = None
        for a in range(len(queues)):
            for b in range(len(queues)):
                if loads[a] <= loads[b]:
                    continue
                checks += len(queues[a]) * (len(queues[b]) + 1)
                if checks > _EVEN_OUT_CHECKS:
                    return  # many builds: longest first has evened them out already
                for x in queues[a]:
                    for y in [*queues[b], -1]:  # -1: move x without taking one back
                        delta = works[x] - (works[y] if y >= 0 else 0.0)
                        if not 0.0 < delta < loads[a] - loads[b]:
                            continue  # no more even, or the two would change places
                        if loads[b] + delta > span:
                            continue
                        # The sum of squares falls by 2 * delta * (gap - delta).
                        gain = delta * (loads[a] - loads[b] - delta)
                        if gain > span * span * _EPSILON and (best is None or gain > best[0]):
                            best = (gain, a, b, x, y)
        if best is None:
            return
        _, a, b, x, y = best
        queues[a].remove(x)
        queues[b].append(x)
        loads[a] -= works[x]
        loads[b] += works[x]
        if y >= 0:
            queues[b].remove(y)
            queues[a].append(y)
            loads[a] += works[y]
            loads[b] -= works[y]


def start_sequence(works: Sequence[float], queues: Sequence[Sequence[int]]) -> list[int]:
    """One start sequence that, dispatched by :func:`dispatch_ends` with these works, runs
    each queue on a server of its own, in the queue's order.

    Every queue's first build starts at once (longest queue head first); after that, the
    next build in the sequence is the next one of whichever queue's server frees first by
    the estimates (ties by queue number).
    """
    live = [list(queue) for queue in queues if queue]
    heads = sorted(range(len(live)), key=lambda q: (-works[live[q][0]], q))
    sequence: list[int] = []
    free: list[tuple[float, int]] = []
    for q in heads:
        item = live[q].pop(0)
        sequence.append(item)
        heapq.heappush(free, (works[item], q))
    while free:
        now, q = heapq.heappop(free)
        if live[q]:
            item = live[q].pop(0)
            sequence.append(item)
            heapq.heappush(free, (now + works[item], q))
    return sequence
