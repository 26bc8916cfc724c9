"""A split recorded while another writer moves the same build: the ledger's moves are
compare-and-set, so the other writer's state stands (a real SQLite store; the only seam lets
the other writer's move land in the gap between the ledger's read and its write)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.errors import StoreConflictError
from preform_pipeline.executor.ledger import RunLedger
from preform_pipeline.plan.builds import BuildPlan, ModelInfo, Plan
from preform_pipeline.plan.graph import compile_graph
from preform_pipeline.printing import FleetFolderLocator, PrintOwner, SendHolder
from preform_pipeline.store import Build, JobState, SqliteJobStore
from tests.unit.plan.planning_factories import make_recipe

RECIPE = make_recipe()


class OvertakingStore:
    """The store seam: the ledger's first move of a build to ``when`` lets ``overtake`` run
    first, as another writer's move of the same build would in that gap."""

    def __init__(self, inner: SqliteJobStore, when: JobState,
                 overtake: Callable[[int], object]) -> None:
        self.inner = inner
        self.when = when
        self.overtake: Callable[[int], object] | None = overtake

    def transition_build(self, build_id: int, to_state: JobState, reason: str,
                         **kw: Any) -> Build:
        overtake = self.overtake
        if to_state is self.when and overtake is not None:
            self.overtake = None
            overtake(build_id)
        return self.inner.transition_build(build_id, to_state, reason, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _build(name: str, models: list[ModelInfo]) -> BuildPlan:
    return BuildPlan(index=1, name=name, models=tuple(models), placements=(), fill_ratio=0.5,
                     estimated_volume_ml=1.0, graph=compile_graph(RECIPE, models))


def _split_with(store: SqliteJobStore, models: list[ModelInfo], seam: OvertakingStore,
                parent_state: JobState) -> int:
    """Record build r-001 of ``models`` in ``parent_state`` and split it through ``seam``;
    the split must be refused. Returns the parent's store id."""
    owner = PrintOwner(store, [FleetFolderLocator(Path(store.path).parent / "fleet")])
    ledger = RunLedger(seam, owner, "recipe", "run-1",
                       SendHolder.local("run", os.getpid(), 0.0))
    taken, _ = ledger.claim(models)
    whole = _build("r-001", taken)
    ledger.record(Plan(recipe=RECIPE, builds=(whole,)))
    parent_id = ledger.build_ids["r-001"]
    if parent_state is not JobState.PROCESSING:
        store.transition_build(parent_id, parent_state, "step 1")
    with pytest.raises(StoreConflictError):
        ledger.on_split(whole, (_build("r-001.1", taken[:2]), _build("r-001.2", taken[2:])))
    return parent_id


class TestASplitOvertaken:
    """A build another writer moved while the split was being recorded keeps that move."""

    def test_a_build_prepared_meanwhile_is_not_taken_back_and_cancelled(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        seam = OvertakingStore(store, JobState.PROCESSING, lambda build_id: store.transition_build(
            build_id, JobState.PREPARED, "prepared by another worker"))
        parent_id = _split_with(store, models, seam, JobState.PREPARING)
        parent = store.get_build(parent_id)
        assert (parent.state, parent.reason) == (JobState.PREPARED, "prepared by another worker")

    def test_a_build_taken_up_meanwhile_is_not_cancelled(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        seam = OvertakingStore(store, JobState.CANCELLED, lambda build_id: store.transition_build(
            build_id, JobState.PREPARING, "taken up by another worker"))
        parent_id = _split_with(store, models, seam, JobState.PROCESSING)
        parent = store.get_build(parent_id)
        assert (parent.state, parent.reason) == (JobState.PREPARING, "taken up by another worker")
