"""The lease rules in detail: node records and health, which build a claim picks, claimed
creation, the loss messages, a build's holder and who settles its files (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import LeaseLostError, StoreError
from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, JobPlace
from preform_pipeline.store import Job, JobState
from preform_pipeline.store.leases import Lease, NodeInfo, NodeStatus
from preform_pipeline.store.postgres import PostgresJobStore
from tests.unit.store.conftest import cut_off_stores

S = JobState
_LOST = "its lease ran out or another node took it over"


def _node(name: str, **changes: object) -> NodeInfo:
    values: dict[str, object] = {"id": name, "host": f"{name}.farm.local", "version": "0.1.0",
                                 "pid": 100, "printers": ("Form4-A",),
                                 "machine_types": ("FORM-4-0",)}
    values.update(changes)
    return NodeInfo(**values)  # type: ignore[arg-type]


def _events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


def _build(store: PostgresJobStore, *, recipe: str = "dental", tag: str = "m",
           count: int = 1) -> tuple[int, list[Job]]:
    jobs = [store.create_job(recipe=recipe, source_path=f"/nas/processing/{tag}{i}.stl",
                             content_hash=f"sha256:{tag}{i}", state=S.PROCESSING)
            for i in range(count)]
    return store.create_build(recipe=recipe, job_ids=[j.id for j in jobs]).id, jobs


class TestNodeHealth:
    """A node is silent only once its last beat is more than a lease old."""

    def _status(self, age_s: float, *, stopped: bool = False) -> NodeStatus:
        moment = datetime(2024, 5, 1, tzinfo=timezone.utc)
        return NodeStatus(info=_node("pc-1"), started_at=moment, heartbeat_at=moment,
                          heartbeat_age_s=age_s, stopped=stopped, held_builds=())

    def test_a_beat_exactly_one_lease_old_is_still_alive(self) -> None:
        assert self._status(60.0).health() == "alive"
        assert self._status(60.5).health() == "silent"
        assert self._status(10.0).health(lease_s=10.0) == "alive"
        assert self._status(10.5).health(lease_s=10.0) == "silent"

    def test_a_stopped_node_is_stopped_whatever_its_beat(self) -> None:
        assert self._status(0.0, stopped=True).health() == "stopped"
        assert self._status(500.0, stopped=True).health() == "stopped"


class TestNodeRecords:
    """Registering records what a node says; a restart records it anew; an unknown node is
    refused by name."""

    def test_a_restart_records_the_new_details_and_logs_them(
        self, pg_store: PostgresJobStore
    ) -> None:
        pg_store.register_node(_node("pc-1"))
        # Its previous life stopped: one still beating on another host is refused (session
        # 42, test_store_node_ids.py).
        pg_store.node_stopped("pc-1")
        with capture_logs() as logs:
            pg_store.register_node(_node("pc-1", host="new.farm.local", version="0.2.0", pid=7,
                                         printers=("Form4-B", "Form4-C"),
                                         machine_types=("FORM-4-0", "FORM-4L-0")))
        (status,) = pg_store.list_nodes()
        assert status.info == _node("pc-1", host="new.farm.local", version="0.2.0", pid=7,
                                    printers=("Form4-B", "Form4-C"),
                                    machine_types=("FORM-4-0", "FORM-4L-0"))
        assert 0.0 <= status.heartbeat_age_s < 60.0
        assert status.started_at <= status.heartbeat_at
        assert status.stopped is False
        assert _events(logs, "node_registered") == [
            {"event": "node_registered", "log_level": "info", "node": "pc-1",
             "host": "new.farm.local", "version": "0.2.0"}]

    def test_a_stop_is_logged_and_shown(self, pg_store: PostgresJobStore) -> None:
        pg_store.register_node(_node("pc-1"))
        with capture_logs() as logs:
            pg_store.node_stopped("pc-1")
        assert _events(logs, "node_stopped") == [
            {"event": "node_stopped", "log_level": "info", "node": "pc-1"}]
        (status,) = pg_store.list_nodes()
        assert status.stopped is True and status.health() == "stopped"

    def test_a_beat_from_an_unknown_node_is_refused_by_name(
        self, pg_store: PostgresJobStore, pg_url: str
    ) -> None:
        with pytest.raises(StoreError) as caught:
            pg_store.heartbeat("ghost")
        assert str(caught.value).startswith(f"{pg_url}: no node 'ghost' is registered (")
        assert caught.value.hint == "a node registers when its daemon starts"
        assert pg_store.list_nodes() == ()


class TestWhichBuildAClaimTakes:
    """A claim takes the oldest free build of the node's recipes, never an excluded one."""

    def test_the_oldest_build_is_claimed_first_and_logged(
        self, pg_store: PostgresJobStore
    ) -> None:
        first, _ = _build(pg_store, tag="a")
        second, _ = _build(pg_store, tag="b")
        pg_store.register_node(_node("pc-1"))
        with capture_logs() as logs:
            lease = pg_store.claim_build("pc-1", lease_s=120)
        assert lease is not None and lease.build_id == first
        assert lease.state is S.PROCESSING and lease.until > datetime.now(timezone.utc)
        assert _events(logs, "build_claimed") == [
            {"event": "build_claimed", "log_level": "info", "build_id": first, "node": "pc-1",
             "epoch": 1, "state": "processing", "previous_owner": None}]
        again = pg_store.claim_build("pc-1")
        assert again is not None and again.build_id == second

    def test_only_the_given_recipes_are_claimed(self, pg_store: PostgresJobStore) -> None:
        _build(pg_store, recipe="dental", tag="a")
        ortho, _ = _build(pg_store, recipe="ortho", tag="b")
        pg_store.register_node(_node("pc-1"))
        lease = pg_store.claim_build("pc-1", recipes=["ortho", "splint"])
        assert lease is not None and lease.build_id == ortho
        assert pg_store.claim_build("pc-1", recipes=["ortho"]) is None

    def test_excluded_builds_are_skipped(self, pg_store: PostgresJobStore) -> None:
        first, _ = _build(pg_store, tag="a")
        second, _ = _build(pg_store, tag="b")
        pg_store.register_node(_node("pc-1"))
        lease = pg_store.claim_build("pc-1", exclude=[first])
        assert lease is not None and lease.build_id == second
        assert pg_store.claim_build("pc-1", exclude=[first]) is None

    def test_only_the_given_states_are_claimed(self, pg_store: PostgresJobStore) -> None:
        build, _ = _build(pg_store)
        pg_store.register_node(_node("pc-1"))
        assert pg_store.claim_build("pc-1", states=[S.PREPARED]) is None
        lease = pg_store.claim_build("pc-1", states=[S.PREPARED, S.PROCESSING])
        assert lease is not None and lease.build_id == build


class TestClaimedCreation:
    """A build created claimed belongs to its node at once; a bad request creates nothing."""

    def test_a_created_build_is_held_by_its_node_and_logged(
        self, pg_store: PostgresJobStore
    ) -> None:
        pg_store.register_node(_node("pc-1"))
        pg_store.register_node(_node("pc-2"))
        jobs = [pg_store.create_job(recipe="dental", source_path=f"/nas/m{i}.stl",
                                    state=S.PROCESSING) for i in range(2)]
        with capture_logs() as logs:
            build, lease = pg_store.create_claimed_build(
                "pc-1", recipe="dental", job_ids=[j.id for j in jobs], lease_s=120,
                server="127.0.0.1:7001", reason="batched by pc-1")
        assert (lease.build_id, lease.owner, lease.epoch, lease.state) == (
            build.id, "pc-1", 1, S.PROCESSING)
        assert build.server == "127.0.0.1:7001"
        assert pg_store.build_history(build.id)[0].reason == "batched by pc-1"
        assert pg_store.claim_build("pc-2") is None
        assert _events(logs, "build_created") == [
            {"event": "build_created", "log_level": "info", "build_id": build.id,
             "job_key": build.job_key, "recipe": "dental", "jobs": [j.id for j in jobs],
             "node": "pc-1", "epoch": 1}]

    def test_a_job_listed_twice_or_an_unknown_node_creates_nothing(
        self, pg_store: PostgresJobStore, pg_url: str
    ) -> None:
        pg_store.register_node(_node("pc-1"))
        job = pg_store.create_job(recipe="dental", source_path="/nas/m.stl",
                                  state=S.PROCESSING)
        with pytest.raises(StoreError) as twice:
            pg_store.create_claimed_build("pc-1", recipe="dental", job_ids=[job.id, job.id])
        assert str(twice.value) == f"a build lists a job twice: [{job.id}, {job.id}]"
        with pytest.raises(StoreError) as ghost:
            pg_store.create_claimed_build("ghost", recipe="dental", job_ids=[job.id])
        assert str(ghost.value).startswith(f"{pg_url}: no node 'ghost' is registered")
        assert pg_store.list_builds() == ()
        assert pg_store.get_job(job.id).build_id is None


class TestLosingALease:
    """A lost lease says which build, node and epoch, and why; the loss is logged."""

    def test_a_move_on_a_lease_that_ran_out_says_so(self, pg_store: PostgresJobStore) -> None:
        build, _ = _build(pg_store)
        pg_store.register_node(_node("pc-1"))
        lease = pg_store.claim_build("pc-1", lease_s=0.0)
        assert lease is not None
        with capture_logs() as logs, pytest.raises(LeaseLostError) as caught:
            pg_store.update_build_fenced(lease, server="127.0.0.1:7001")
        assert str(caught.value).startswith(
            f"build {build}: node pc-1 no longer holds it (epoch 1): {_LOST} (")
        assert (caught.value.build_id, caught.value.owner, caught.value.epoch) == (
            build, "pc-1", 1)
        assert _events(logs, "lease_lost") == [
            {"event": "lease_lost", "log_level": "warning", "build_id": build,
             "node": "pc-1", "epoch": 1, "why": _LOST}]
        with pytest.raises(LeaseLostError) as renewing:
            pg_store.renew(lease)
        assert str(renewing.value).startswith(
            f"build {build}: node pc-1 no longer holds it (epoch 1): {_LOST} (")

    def test_a_renewal_keeps_owner_epoch_and_state(self, pg_store: PostgresJobStore) -> None:
        build, _ = _build(pg_store)
        pg_store.register_node(_node("pc-1"))
        lease = pg_store.claim_build("pc-1", lease_s=30)
        assert lease is not None
        renewed = pg_store.renew(lease, lease_s=3600)
        assert (renewed.build_id, renewed.owner, renewed.epoch, renewed.state) == (
            build, "pc-1", 1, S.PROCESSING)
        assert (renewed.until - lease.until).total_seconds() > 3000


def _claimed_files(store: PostgresJobStore, count: int) -> tuple[int, list[Job]]:
    """Nodes pc-1 and pc-2, and a build of ``count`` jobs whose inbox files pc-1 claimed."""
    store.register_node(_node("pc-1"))
    store.register_node(_node("pc-2"))
    jobs = []
    for i in range(count):
        place = JobPlace(Path("/nas/inbox"), f"m{i}.stl")  # where it was dropped and claimed
        jobs.append(store.create_job(recipe="dental", source_path=f"/nas/processing/m{i}.stl",
                                     content_hash=f"sha256:m{i}", state=S.PROCESSING,
                                     fields={HOTFOLDER_FIELD: place.to_json()}))
        assert store.claim_inbox_file("pc-1", f"/nas/inbox/m{i}.stl", f"sha256:m{i}")
    return store.create_build(recipe="dental", job_ids=[j.id for j in jobs]).id, jobs


class TestHolderAndSettling:
    """Whether a build is busy, and which node may settle its files."""

    def test_a_build_is_busy_while_held_or_just_moved(self, pg_store: PostgresJobStore) -> None:
        build, _ = _build(pg_store)
        pg_store.register_node(_node("pc-1"))
        # The store's manual clock stamps the move in May 2024: within ten years of now().
        assert pg_store.build_busy(build, grace_s=10 * 365 * 86400.0) is True
        assert pg_store.build_busy(build, grace_s=0) is False
        lease = pg_store.claim_build("pc-1", lease_s=600)
        assert lease is not None
        assert pg_store.build_busy(build, grace_s=0) is True
        assert pg_store.release(lease) is True
        assert pg_store.build_busy(build, grace_s=0) is False
        assert pg_store.build_busy(build + 1000, grace_s=10 * 365 * 86400.0) is False

    def test_the_grace_left_is_counted_only_for_a_build_no_node_holds(
        self, pg_store: PostgresJobStore
    ) -> None:
        build, _ = _build(pg_store)
        pg_store.register_node(_node("pc-1"))
        ten_years = 10 * 365 * 86400.0
        # Moved in May 2024 (the manual clock): the grace left is ten years less that age.
        left = pg_store.grace_left(build, grace_s=ten_years)
        age_s = (datetime.now(timezone.utc) - datetime(2024, 5, 1, tzinfo=timezone.utc))
        assert left is not None
        assert abs(left - (ten_years - age_s.total_seconds())) < 3 * 86400
        assert pg_store.grace_left(build, grace_s=0) is None  # long settled
        lease = pg_store.claim_build("pc-1", lease_s=600)
        assert lease is not None
        assert pg_store.grace_left(build, grace_s=ten_years) is None  # held: not by time
        assert pg_store.release(lease) is True
        assert pg_store.grace_left(build, grace_s=ten_years) is not None
        assert pg_store.grace_left(build + 1000, grace_s=ten_years) is None

    def test_the_claimant_settles_and_a_gone_claimants_files_pass_to_another(
        self, pg_store: PostgresJobStore
    ) -> None:
        build, _ = _claimed_files(pg_store, 2)
        assert pg_store.may_settle("pc-1", build) is True
        assert pg_store.may_settle("pc-2", build, lease_s=600) is False
        assert {c[2] for c in pg_store.inbox_claims()} == {"pc-1"}
        pg_store.node_stopped("pc-1")
        assert pg_store.may_settle("pc-2", build, lease_s=600) is True
        assert {c[2] for c in pg_store.inbox_claims()} == {"pc-2"}
        assert pg_store.may_settle("pc-1", build) is False

    def test_adopted_jobs_move_their_claims_and_only_theirs(
        self, pg_store: PostgresJobStore
    ) -> None:
        _, jobs = _claimed_files(pg_store, 3)
        pg_store.adopt_jobs("pc-2", [jobs[0].id, jobs[2].id])
        assert sorted(pg_store.inbox_claims()) == sorted(
            (f"/nas/inbox/{j.source_path.name}", str(j.content_hash),
             "pc-2" if j is not jobs[1] else "pc-1") for j in jobs)

    def test_an_inbox_claim_is_logged_taken_or_not(self, pg_store: PostgresJobStore) -> None:
        pg_store.register_node(_node("pc-1"))
        pg_store.register_node(_node("pc-2"))
        with capture_logs() as logs:
            pg_store.claim_inbox_file("pc-1", "//nas/inbox/a.stl", "h1")
            pg_store.claim_inbox_file("pc-2", "//nas/inbox/a.stl", "h1", lease_s=600)
        assert _events(logs, "inbox_file_claim") == [
            {"event": "inbox_file_claim", "log_level": "info", "node": "pc-1",
             "source_path": "//nas/inbox/a.stl", "taken": True},
            {"event": "inbox_file_claim", "log_level": "info", "node": "pc-2",
             "source_path": "//nas/inbox/a.stl", "taken": False}]

    def test_orphans_adopted_are_logged(self, pg_store: PostgresJobStore) -> None:
        pg_store.register_node(_node("pc-1"))
        place = JobPlace(Path("/nas/inbox"), "x.stl")  # where it was dropped
        job = pg_store.create_job(recipe="dental", source_path="/nas/inbox/x.stl",
                                  content_hash="sha256:x", state=S.QUEUED,
                                  fields={HOTFOLDER_FIELD: place.to_json()})
        pg_store.claim_inbox_file("pc-1", "/nas/inbox/x.stl", "sha256:x")
        with capture_logs() as logs:
            assert pg_store.adopt_orphan_jobs("pc-1", own=True) == (job.id,)
        assert _events(logs, "orphan_jobs_adopted") == [
            {"event": "orphan_jobs_adopted", "log_level": "info", "node": "pc-1",
             "jobs": [job.id]}]
        with capture_logs() as quiet:
            assert pg_store.adopt_orphan_jobs("pc-1") == ()
        assert _events(quiet, "orphan_jobs_adopted") == []


#: Each lease operation, and the action its StoreError names when the database is away.
_OPERATIONS: dict[str, tuple[Callable[[PostgresJobStore, Lease], object], str]] = {
    "register": (lambda s, _: s.register_node(_node("pc-1")), "registering node pc-1"),
    "heartbeat": (lambda s, _: s.heartbeat("pc-1"), "heartbeat of node pc-1"),
    "stop": (lambda s, _: s.node_stopped("pc-1"), "stopping node pc-1"),
    "list": (lambda s, _: s.list_nodes(), "listing nodes"),
    "claim": (lambda s, _: s.claim_build("pc-1"), "claiming a build for node pc-1"),
    "renew": (lambda s, lease: s.renew(lease), "renewing the lease on build {build}"),
    "release": (lambda s, lease: s.release(lease), "releasing build {build}"),
    "orphans": (lambda s, _: s.adopt_orphan_jobs("pc-1"), "adopting orphaned jobs for node pc-1"),
    "orphan list": (lambda s, _: s.orphan_jobs("pc-1"), "listing orphaned jobs for node pc-1"),
    "hand back": (lambda s, _: s.hand_back_jobs("pc-1", [1]), "handing back jobs of node pc-1"),
    "busy": (lambda s, lease: s.build_busy(lease.build_id, grace_s=0),
             "reading the holder of build {build}"),
    "grace": (lambda s, lease: s.grace_left(lease.build_id, grace_s=0),
              "reading the last move of build {build}"),
    "settle": (lambda s, lease: s.may_settle("pc-1", lease.build_id),
               "taking the files of build {build}"),
    "inbox": (lambda s, _: s.claim_inbox_file("pc-1", "/nas/a.stl", "h1"),
              "claiming an inbox file"),
    "adopt": (lambda s, _: s.adopt_jobs("pc-1", [1]), "adopting jobs for node pc-1"),
    "claims": (lambda s, _: s.inbox_claims(), "listing inbox claims"),
}


class TestDatabaseAway:
    """Every lease operation on a lost connection fails with a StoreError naming its action;
    the next call connects again."""

    @pytest.mark.parametrize("operation", sorted(_OPERATIONS))
    def test_the_error_names_the_action(
        self, pg_store: PostgresJobStore, pg_url: str, operation: str
    ) -> None:
        build, _ = _build(pg_store)
        pg_store.register_node(_node("pc-1"))
        lease = pg_store.claim_build("pc-1", lease_s=600)
        assert lease is not None
        call, action = _OPERATIONS[operation]
        cut_off_stores(pg_url)
        with pytest.raises(StoreError) as caught:
            call(pg_store, lease)
        assert str(caught.value).startswith(
            f"{pg_url}: cannot reach the PostgreSQL job store while "
            f"{action.format(build=build)}: ")
        call(pg_store, lease)
