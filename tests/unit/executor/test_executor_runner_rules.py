"""The runner's rules that need no server: where a retry goes and what it is told, how a
build that does not fit is halved, and how case ids make a job name."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from executor_support import WAIT_S, FakeLease, FakePool

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import LeaseTimeoutError
from preform_pipeline.executor import Runner, RunOptions, split_build
from preform_pipeline.executor.runner import JOB_NAME_ROOM, _fit_cases
from preform_pipeline.plan.builds import BuildPlan, ModelInfo, Plan
from preform_pipeline.plan.graph import compile_graph
from preform_pipeline.recipes.model import Recipe
from preform_pipeline.servers.pool import ServerState
from tests.unit.plan.planning_factories import make_model, make_recipe

RECIPE = make_recipe()


class _Lease(FakeLease):
    """A lease given back as the real pool takes it: ``healthy=False`` sends the server to
    its health check before anyone else gets it; ``builds`` count towards recycling."""

    pool: _Pool

    def release(self, healthy: bool = True, builds: int = 1) -> None:
        if not self.released:
            self.pool.served[self.server.name] += builds
        super().release(healthy, builds)
        if not healthy:
            self.pool.set_state(self.server.name, ServerState.CHECKING)


class _Pool(FakePool):
    """The fake pool, with a server's state set as the real pool's health checks set it,
    and the builds each server served."""

    def __init__(self, count: int) -> None:
        super().__init__([f"http://127.0.0.1:{9000 + i}" for i in range(count)])
        self.served = {name: 0 for name in self._slots}

    def lease(self, timeout: float | None = None) -> _Lease:
        try:
            lease = super().lease(timeout)
        except TimeoutError:
            # what the real pool raises when no server became free in time
            raise LeaseTimeoutError(f"no server became free within {timeout} s") from None
        return _Lease(self, lease.server)

    def set_state(self, name: str, state: ServerState, *, remote: bool = False) -> None:
        with self._cond:
            self._slots[name].update(state=state, remote=remote)
            self._cond.notify_all()


def _runner(pool: FakePool, tmp_path: Path, **options: object) -> Runner:
    return Runner(Plan(recipe=RECIPE, builds=()), pool,
                  options=RunOptions(output_root=tmp_path, **options))  # type: ignore[arg-type]


class TestRetryDestination:
    """A retry says where it will run: another server, or the one that failed it."""

    @pytest.mark.parametrize(("others", "said"), [
        (ServerState.IDLE, "on another server"),
        (ServerState.LEASED, "on another server"),
        (ServerState.RESTARTING, "on another server"),
        (ServerState.RETIRED, "on server-1"),
    ])
    def test_another_server_in_service_takes_it(
        self, tmp_path: Path, others: ServerState, said: str
    ) -> None:
        pool = _Pool(3)
        pool.set_state("server-2", ServerState.RETIRED)
        pool.set_state("server-3", others)
        assert _runner(pool, tmp_path).retry_destination({"server-1"}) == said

    @pytest.mark.parametrize(("state", "remote", "said"), [
        (ServerState.RESTARTING, False, "on server-2 after restart"),
        (ServerState.STARTING, False, "on server-2 after restart"),
        (ServerState.CHECKING, False, "on server-2 after restart"),
        (ServerState.IDLE, False, "on server-2"),
        # Session 46: a remote is never restarted; it is waited for until it answers.
        (ServerState.RESTARTING, True, "on server-2 when it answers again"),
        (ServerState.CHECKING, True, "on server-2 when it answers again"),
        (ServerState.IDLE, True, "on server-2"),
    ])
    def test_the_failed_server_alone_takes_it_back(
        self, tmp_path: Path, state: ServerState, remote: bool, said: str
    ) -> None:
        pool = _Pool(2)
        pool.set_state("server-1", ServerState.RETIRED)
        pool.set_state("server-2", state, remote=remote)
        assert _runner(pool, tmp_path).retry_destination({"server-2"}) == said

    def test_with_every_server_retired_it_waits_for_one_to_come_back(
        self, tmp_path: Path
    ) -> None:
        pool = _Pool(2)
        for name in ("server-1", "server-2"):
            pool.set_state(name, ServerState.RETIRED)
        assert _runner(pool, tmp_path).retry_destination({"server-1"}) == (
            "when a server is back")


class TestLeaseAvoiding:
    """The retry's lease goes to a server that did not fail the build, while one is left."""

    def test_the_failed_server_is_given_back_until_another_is_free(
        self, tmp_path: Path
    ) -> None:
        pool = _Pool(2)
        busy = pool.lease(WAIT_S)  # server-1: another build holds it
        assert busy.server.name == "server-1"
        got: list[FakeLease] = []
        thread = threading.Thread(
            target=lambda: got.append(_runner(pool, tmp_path).lease_avoiding({"server-2"})))
        thread.start()
        pool.wait_for(lambda statuses: pool.leases.count("server-2") >= 1, WAIT_S)
        busy.release()
        thread.join(WAIT_S)
        assert not thread.is_alive()
        assert got[0].server.name == "server-1"
        # server-2 was handed out and given back untouched: not sent to a health check,
        # and no build counted towards its recycling
        assert {s.name: s.state for s in pool.status()}["server-2"] is ServerState.IDLE
        assert pool.served["server-2"] == 0

    def test_a_server_that_did_not_fail_is_taken_at_once(self, tmp_path: Path) -> None:
        pool = _Pool(2)
        lease = _runner(pool, tmp_path).lease_avoiding({"server-9"})
        assert lease.server.name == "server-1" and pool.leases == ["server-1"]

    def test_with_every_other_server_retired_the_failed_one_is_used(
        self, tmp_path: Path
    ) -> None:
        pool = _Pool(3)
        pool.set_state("server-2", ServerState.RETIRED)
        pool.set_state("server-3", ServerState.RETIRED)
        lease = _runner(pool, tmp_path).lease_avoiding({"server-1"})
        assert lease.server.name == "server-1"

    def test_a_retired_server_stops_the_wait_for_it(self, tmp_path: Path) -> None:
        pool = _Pool(2)
        busy = pool.lease(WAIT_S)
        got: list[FakeLease] = []
        thread = threading.Thread(
            target=lambda: got.append(_runner(pool, tmp_path).lease_avoiding({"server-2"})))
        thread.start()
        pool.wait_for(lambda statuses: pool.leases.count("server-2") >= 1, WAIT_S)
        pool.set_state("server-1", ServerState.RETIRED)  # the busy one will not come back
        thread.join(WAIT_S)
        assert not thread.is_alive()
        assert got[0].server.name == "server-2"
        del busy


def _case_models(*cases: str | None) -> tuple[ModelInfo, ...]:
    return tuple(make_model(f"m{i}", case=c, volume=1000.0 * (i + 1))
                 for i, c in enumerate(cases))


def _plan_of(models: tuple[ModelInfo, ...], volume_ml: float = 21.0) -> BuildPlan:
    return BuildPlan(index=3, name="r-003", models=models, placements=(), fill_ratio=0.9,
                     estimated_volume_ml=volume_ml, graph=compile_graph(RECIPE, models))


def _cut(recipe: Recipe, *cases: str | None) -> int:
    first, _ = split_build(recipe, _plan_of(_case_models(*cases)), 7)
    return len(first.models)


class TestSplitBuild:
    """A halved build makes two new builds, cut at the case boundary nearest the middle."""

    def test_the_halves_are_named_numbered_and_share_the_resin_by_volume(self) -> None:
        models = _case_models(None, None, None, None, None, None)
        first, second = split_build(RECIPE, _plan_of(models), 7)
        assert (first.name, first.index, first.models) == ("r-003.1", 7, models[:3])
        assert (second.name, second.index, second.models) == ("r-003.2", 8, models[3:])
        assert (first.placements, first.fill_ratio) == ((), 0.0)
        # volumes 1..6 (x1000 mm3) of 21 ml: the first half holds 6 of them
        assert first.estimated_volume_ml == pytest.approx(6.0)
        assert second.estimated_volume_ml == pytest.approx(15.0)
        assert first.graph == compile_graph(RECIPE, models[:3])
        assert second.graph == compile_graph(RECIPE, models[3:])

    def test_an_odd_build_gives_the_second_half_the_extra_model(self) -> None:
        assert _cut(RECIPE, None, None, None, None, None) == 2

    def test_cases_stay_together_at_the_boundary_nearest_the_middle(self) -> None:
        together = make_recipe(keep_cases_together=True)
        assert _cut(together, "A", "A", "A", "B", "C", "C") == 3
        assert _cut(together, "A", "B", "B", "B", "B", "B", "C", "C") == 6
        # two boundaries equally near the middle: the earlier one
        assert _cut(together, "A", "B", "B", "C") == 1
        # files without a case are their own boundary
        assert _cut(together, "A", "A", "A", None, None, None) == 3
        assert _cut(together, "A", "A", None, None) == 2

    def test_one_case_or_no_keeping_together_cuts_in_the_middle(self) -> None:
        together = make_recipe(keep_cases_together=True)
        assert _cut(together, "A", "A", "A", "A", "A", "A") == 3
        assert _cut(make_recipe(keep_cases_together=False), "A", "A", "A", "B", "C", "C") == 3

    def test_a_single_model_cannot_be_halved(self) -> None:
        with pytest.raises(ValueError) as caught:
            split_build(RECIPE, _plan_of(_case_models(None)), 2)
        assert str(caught.value) == "a build of one model cannot be split"

    def test_case_boundaries_count_only_when_cases_are_kept_together(self) -> None:
        assert _cut(make_recipe(keep_cases_together=True), "A", "B", "B", "B", "B", "B") == 1
        assert _cut(make_recipe(keep_cases_together=False), "A", "B", "B", "B", "B", "B") == 3

    def test_tiny_models_share_their_resin_too(self) -> None:
        models = tuple(make_model(f"m{i}", volume=0.25) for i in range(2))
        first, second = split_build(RECIPE, _plan_of(models, volume_ml=0.5), 2)
        assert first.estimated_volume_ml == pytest.approx(0.25)
        assert second.estimated_volume_ml == pytest.approx(0.25)

    def test_models_without_volume_carry_no_resin(self) -> None:
        models = tuple(make_model(f"m{i}", volume=0.0) for i in range(2))
        first, second = split_build(RECIPE, _plan_of(models, volume_ml=0.0), 2)
        assert (first.estimated_volume_ml, second.estimated_volume_ml) == (0.0, 0.0)


class TestJobNameCases:
    """Case ids in a job name are whole, counted when they do not fit, never cut."""

    def test_ids_that_fill_the_room_exactly_are_all_named(self) -> None:
        cases = ["A" * 10, "B" * 10]
        assert _fit_cases(cases, 21) == "A" * 10 + "+" + "B" * 10
        assert _fit_cases(cases, 20) == "A" * 10 + "+1 more"

    def test_the_count_of_the_rest_fits_in_the_room(self) -> None:
        cases = ["C-1", "C-2", "C-3", "C-4", "C-5"]  # 19 characters joined
        assert _fit_cases(cases, 19) == "+".join(cases)
        assert _fit_cases(cases, 18) == "C-1+C-2+C-3+2 more"
        assert _fit_cases(cases, 17) == "C-1+C-2+3 more"
        assert _fit_cases(cases, 14) == "C-1+C-2+3 more"
        assert _fit_cases(cases, 13) == "C-1+4 more"

    def test_the_counts_own_width_is_reserved(self) -> None:
        ten = [f"C-{n}" for n in range(1, 11)]
        # "C-1+C-2" and "+8 more" fill 14 characters exactly
        assert _fit_cases(ten, 14) == "C-1+C-2+8 more"
        twelve = [f"C-{n}" for n in range(1, 13)]
        # "+10 more" after "C-1+C-2" would make 15
        assert _fit_cases(twelve, 14) == "C-1+11 more"

    def test_one_id_longer_than_the_room_is_kept_whole_with_the_count(self) -> None:
        long = "CASE-" + "9" * 80
        assert _fit_cases([long, "C-2", "C-3"], JOB_NAME_ROOM) == f"{long}+2 more"
        assert _fit_cases([long], JOB_NAME_ROOM) == long


class TestLeaseTimeout:
    """A retry waits for another server only as long as the lease timeout allows."""

    def test_with_every_server_busy_the_lease_gives_up_at_the_timeout(
        self, tmp_path: Path
    ) -> None:
        pool = _Pool(1)
        busy = pool.lease(WAIT_S)
        # The run's clock stands still: the timeout the pool is given is the whole 0.1 s.
        runner = Runner(Plan(recipe=RECIPE, builds=()), pool,
                        options=RunOptions(output_root=tmp_path, lease_timeout_s=0.1),
                        clock=ManualClock())
        errors: list[BaseException] = []

        def lease() -> None:
            try:
                runner.lease_avoiding({"server-9"})
            except LeaseTimeoutError as exc:
                errors.append(exc)

        started = time.monotonic()
        thread = threading.Thread(target=lease)
        thread.start()
        thread.join(WAIT_S / 4)
        waited = time.monotonic() - started
        busy.release()  # lets a runner that is still waiting finish
        thread.join(WAIT_S)
        # The pool was given the whole 0.1 s (its error says so) and waited it out; how much
        # longer the thread took to end is the machine's load, not the runner's (a 0.9 s
        # ceiling here was within reach of a loaded machine).
        (error,) = errors
        given = re.fullmatch(r"no server became free within ([0-9.]+) s", str(error))
        assert given is not None and float(given[1]) == pytest.approx(0.1)
        assert waited >= 0.1

    def test_once_the_lease_timeout_is_spent_the_failed_server_is_used(
        self, tmp_path: Path
    ) -> None:
        pool = _Pool(2)
        busy = pool.lease(WAIT_S)  # server-1 stays busy until the end of the test
        runner = _runner(pool, tmp_path, lease_timeout_s=0.3)
        got: list[FakeLease] = []
        started = time.monotonic()
        thread = threading.Thread(target=lambda: got.append(runner.lease_avoiding({"server-2"})))
        thread.start()
        thread.join(WAIT_S / 2)
        waited = time.monotonic() - started
        busy.release()  # lets a runner that is still waiting finish
        thread.join(WAIT_S)
        assert waited < WAIT_S / 2, "the retry outwaited its lease timeout"
        assert waited >= 0.3
        assert got[0].server.name == "server-2"
        # it waited for server-1 instead of leasing server-2 again and again
        assert pool.leases.count("server-2") <= 3
