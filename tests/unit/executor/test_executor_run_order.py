"""The order a run starts its builds in, and which build takes carried models last."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from preform_pipeline.executor.runner import run_order
from preform_pipeline.plan.builds import BuildPlan, ModelInfo
from preform_pipeline.plan.graph import StepGraph


def _model(name: str) -> ModelInfo:
    return ModelInfo(
        path=Path("models") / f"{name}.stl", name=name, size_mm=(10.0, 10.0, 10.0),
        footprint_mm=(10.0, 10.0), volume_mm3=1000.0, support_estimate_mm3=0.0,
        triangle_count=12,
    )


def _build(index: int, models: int, fill: float) -> BuildPlan:
    return BuildPlan(
        index=index, name=f"b{index}",
        models=tuple(_model(f"b{index}-{n}") for n in range(models)),
        placements=(), fill_ratio=fill, estimated_volume_ml=0.0, graph=StepGraph(nodes=()),
    )


class TestRunOrder:
    """Longest builds start first; a roomy build of the later rounds is the final build."""

    def test_longest_first_and_the_roomiest_later_build_is_final(self) -> None:
        builds = [_build(1, 16, 0.63), _build(2, 46, 0.39), _build(3, 30, 0.45),
                  _build(4, 35, 0.41), _build(5, 19, 0.50), _build(6, 23, 0.49),
                  _build(7, 31, 0.46)]
        order, final = run_order(builds, servers=4)
        assert [b.name for b in order] == ["b2", "b4", "b7", "b3", "b6", "b5", "b1"]
        # The first round (b2 b4 b7 b3) is out; of b6 b5 b1, b6 has the most room.
        assert final == "b6"

    def test_one_server_ends_with_the_roomiest_build(self) -> None:
        builds = [_build(1, 5, 0.5), _build(2, 9, 0.3), _build(3, 7, 0.4)]
        order, final = run_order(builds, servers=1)
        assert [b.name for b in order] == ["b3", "b1", "b2"] and final == "b2"

    def test_one_round_takes_the_roomiest_build_not_much_longer_than_average(self) -> None:
        builds = [_build(1, 40, 0.1), _build(2, 10, 0.5), _build(3, 12, 0.6)]
        order, final = run_order(builds, servers=4)
        assert [b.name for b in order] == ["b1", "b3", "b2"] and final == "b2"

    def test_a_single_build_has_no_final_build(self) -> None:
        order, final = run_order([_build(1, 3, 0.2)], servers=4)
        assert [b.name for b in order] == ["b1"] and final is None

    def test_the_final_build_starts_first_of_the_last_round(self) -> None:
        # 13 similar builds on 4 servers: rounds of 4, 4, 4 and 1. Started in the second
        # round, the roomy b7 would hold its server through the third round, waiting.
        builds = [_build(i, 6 if i < 5 else 5, 0.6) for i in range(1, 14)]
        builds[6] = _build(7, 5, 0.4)
        order, final = run_order(builds, servers=4)
        assert final == "b7"
        assert order[-1].name == "b7"
        assert len(order) == 13 and {b.name for b in order} == {b.name for b in builds}

    def test_a_short_final_build_follows_the_longest_build_when_that_ends_sooner(self) -> None:
        builds = [_build(i, 10 - i, 0.6) for i in range(1, 8)]
        builds[6] = _build(7, 3, 0.3)
        order, final = run_order(builds, servers=4)
        # Works 13 12 11 10 | 9 8 7. Leading the last round, b7 (the roomiest) went to b4's
        # server, b5 to b3's and b6 to b2's: the run ended at 20 units. Now b5 follows b4,
        # b6 b3 and b7 b2: 19. b7 still starts with the last round, last of all.
        assert final == "b7"
        assert [b.name for b in order] == ["b1", "b2", "b3", "b4", "b5", "b6", "b7"]

    def test_the_final_build_may_be_as_long_as_the_limit_set_by_every_build(self) -> None:
        # Works 10 10 10 5 5 on 2 servers: the average of all five is 8, so the limit is
        # 1.25 x 8 = 10 and b3 (10, the roomiest of the later builds) is not too long. The
        # later builds alone average 6.7: held to that, b3 would be.
        builds = [_build(1, 6, 0.6), _build(2, 6, 0.6), _build(3, 6, 0.1),
                  _build(4, 1, 0.5), _build(5, 1, 0.5)]
        builds = [replace(b, models=tuple(replace(m, triangle_count=0) for m in b.models))
                  for b in builds]
        _, final = run_order(builds, servers=2)
        assert final == "b3"

    def test_a_split_that_ends_no_earlier_than_longest_first_is_not_taken(self) -> None:
        # Works 8 14 13 10 10 14 on 3 servers (no triangles: whole units); b4 is final.
        # Longest first, b2 b6 b3 | b4 b5 b1, ends at 24 (b5 on b2's server). The split
        # b2+b4, b6+b1, b3+b5 ends at 24 too, with b4 last (b2 b6 b3 b5 b4 b1): an equal
        # estimate keeps longest first, whose last round is short, even where the split
        # would end earlier on average when builds take more or less than estimated.
        builds = [_build(1, 4, 0.96), _build(2, 10, 0.5), _build(3, 9, 0.38),
                  _build(4, 6, 0.2), _build(5, 6, 0.66), _build(6, 10, 0.98)]
        builds = [replace(b, models=tuple(replace(m, triangle_count=0) for m in b.models))
                  for b in builds]
        order, final = run_order(builds, servers=3)
        assert final == "b4"
        assert [b.name for b in order] == ["b2", "b6", "b3", "b4", "b5", "b1"]
