"""A retried job goes back to the farm node that watches its inbox: two real ``watch``
daemons on one real PostgreSQL store, each watching an inbox of its own."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.cli import run
from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, JobPlace
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.store import Job, JobState
from preform_pipeline.store.pgurl import PASSWORD_ENV
from tests.multinode_farm import DaemonFarm, FarmTiming, wait_until
from tests.pg_cluster import PG_PASSWORD, PgCluster

S = JobState
TIMEOUT_S = 90.0


@pytest.fixture
def farm(pg_cluster: PgCluster, tmp_path: Path) -> Iterator[DaemonFarm]:
    """Nodes ``node-1`` and ``node-2``, each watching its own inbox, started by the test."""
    url = pg_cluster.create_database("farm_retry_inboxes")
    # What is tested is which node takes a job back, not how long its printing takes: the
    # simulators' realistic prices at a twentieth (a job's ~10 s of preparing and sending
    # at full scale was most of this test's time, twice over).
    timing = FarmTiming(lease_s=3.0, request_timeout_s=2.0, time_scale=0.05, per_build=1,
                        window_s=0.5)
    with DaemonFarm(tmp_path, url, timing, own_inboxes=True) as made:
        yield made


def _failed(farm: DaemonFarm, node: str, number: int) -> Job:
    """A job the hot folder of ``node`` took from its inbox and failed into failed/, its file
    there (as a failure leaves it, waiting for a retry)."""
    inbox = farm.inbox_of(node)
    name = f"m{number:04d}.stl"
    failed = inbox / "failed" / name
    failed.parent.mkdir(parents=True, exist_ok=True)
    failed.write_bytes(tetra_stl_bytes(number))
    place = JobPlace(inbox, name, previous=inbox / "processing" / name, moved=True)
    job = farm.store.create_job(recipe="hot", source_path=failed, state=S.QUEUED,
                                fields={HOTFOLDER_FIELD: place.to_json()})
    return farm.store.transition(job.id, S.FAILED, "the printer refused it")


def _jobs_says(farm: DaemonFarm, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)
    out, err = io.StringIO(), io.StringIO()
    assert run(["jobs", *args, "--store", farm.url], out, err) == 0, err.getvalue()
    return out.getvalue()


class TestARetriedJobGoesToTheNodeWatchingItsInbox:
    """A node takes back only the retried jobs of the inboxes it watches; one whose inbox no
    running node watches waits, and ``jobs`` says for what."""

    def test_each_node_takes_its_own_and_the_other_waits_said(
        self, farm: DaemonFarm, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        theirs, own = _failed(farm, "node-1", 1), _failed(farm, "node-2", 2)
        farm.start("node-2")
        wait_until("node-2 registered", lambda: any(
            n.info.id == "node-2" for n in farm.store.list_nodes()), TIMEOUT_S)
        for job in (theirs, own):  # retried together: one maintenance pass sees both
            farm.store.transition(job.id, S.QUEUED, "retried by user", expect=S.FAILED)
        # node-2's own job is taken back and printed: passes of its loop went by since.
        wait_until("node-2's job printed", lambda: farm.store.get_job(own.id).state
                   in (S.PRINT_SENT, S.DONE), TIMEOUT_S)
        assert farm.store.get_job(theirs.id).state is S.QUEUED  # left for its node
        assert [e["job_key"] for e in farm.events("job_requeued", node="node-2")] == [
            own.job_key]
        listed = _jobs_says(farm, monkeypatch, "--state", "queued")
        assert (f"waits for a hot folder watching {farm.inbox_of('node-1')}: no running node "
                "watches it (`nodes` lists them): retried by user") in listed
        shown = _jobs_says(farm, monkeypatch, "show", theirs.job_key)
        assert f"  waits for a hot folder watching {farm.inbox_of('node-1')}" in shown

        farm.start("node-1")
        wait_until("node-1's job printed", lambda: farm.store.get_job(theirs.id).state
                   in (S.PRINT_SENT, S.DONE), TIMEOUT_S)
        assert [e["job_key"] for e in farm.events("job_requeued", node="node-1")] == [
            theirs.job_key]
        done = farm.inbox_of("node-1") / "done" / theirs.original_name
        wait_until("its file in its inbox's done/", done.exists, TIMEOUT_S)
        assert "waits for a hot folder" not in _jobs_says(farm, monkeypatch)
