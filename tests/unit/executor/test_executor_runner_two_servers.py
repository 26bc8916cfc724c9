"""The order on two servers: the rule for several servers, not the one for a single server
(which would move the roomiest build, however long, to the very end)."""

from __future__ import annotations

from test_executor_run_order import _build

from preform_pipeline.executor.runner import run_order


class TestTwoServers:
    """Two servers are several: the final build is chosen among the later rounds (or, in one
    round, among the builds not much longer than average), and keeps its place."""

    def test_the_final_build_leads_the_last_round(self) -> None:
        # b1 is the longest and the roomiest: a single server would end with it.
        builds = [_build(1, 20, 0.2), _build(2, 10, 0.5), _build(3, 8, 0.6)]
        order, final = run_order(builds, servers=2)
        assert [b.name for b in order] == ["b1", "b2", "b3"] and final == "b3"

    def test_one_round_of_two_keeps_its_order(self) -> None:
        builds = [_build(1, 20, 0.2), _build(2, 10, 0.5)]
        order, final = run_order(builds, servers=2)
        # b1's work (24) is over 1.25 times the average (19): too long to wait for; b2 is final.
        assert [b.name for b in order] == ["b1", "b2"] and final == "b2"
