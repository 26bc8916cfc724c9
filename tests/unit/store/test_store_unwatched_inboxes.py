"""``unwatched``: a retried job whose inbox no running farm node watches says what it waits
for; nodes record the inboxes they watch (real stores)."""

from __future__ import annotations

import html
import io
import json
from contextlib import closing
from pathlib import Path

import pytest

from preform_pipeline import cli
from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, JobPlace
from preform_pipeline.hotfolder.whereabouts import unwatched
from preform_pipeline.settings.web import WebUser, hash_secret
from preform_pipeline.store import Job, JobState, JobStore
from preform_pipeline.store.leases import NodeInfo
from preform_pipeline.store.pgurl import PASSWORD_ENV
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD
from tests.unit.web.conftest import VIEWER_SECRET, logged_in, serving

S = JobState


def _retried(store: JobStore, inbox: Path, name: str = "upper.stl") -> Job:
    """A job taken from ``inbox``, failed into failed/ and retried (queued, not in the inbox)."""
    place = JobPlace(inbox, name, previous=inbox / "processing" / name, moved=True)
    job = store.create_job(recipe="hot", source_path=inbox / "failed" / name, state=S.QUEUED,
                           fields={HOTFOLDER_FIELD: place.to_json()})
    store.transition(job.id, S.FAILED, "refused")
    return store.transition(job.id, S.QUEUED, "retried by user")


def _node(store: PostgresJobStore, name: str, *inboxes: Path) -> None:
    store.register_node(NodeInfo(id=name, host=name, version="0.1.0",
                                 inboxes=tuple(str(i) for i in inboxes)))


class TestUnwatched:
    """Said for a retried job only when no live node lists its inbox."""

    def test_said_until_a_node_watching_its_inbox_runs_and_after_it_stopped(
        self, pg_store: PostgresJobStore
    ) -> None:
        a, b = Path("/lab/inbox-a"), Path("/lab/inbox-b")
        job = _retried(pg_store, a)
        said = {job.id: f"waits for a hot folder watching {a}: no running node watches it "
                        "(`nodes` lists them)"}
        assert unwatched(pg_store, [job]) == said  # no node at all
        _node(pg_store, "pc-b", b)
        assert unwatched(pg_store, [job]) == said  # a node, of another inbox
        _node(pg_store, "pc-a", a)
        assert [n.info.inboxes for n in pg_store.list_nodes()] == [(str(a),), (str(b),)]
        assert unwatched(pg_store, [job]) == {}
        pg_store.node_stopped("pc-a")
        assert unwatched(pg_store, [job]) == said

    def test_nothing_is_said_while_a_node_that_records_no_inboxes_runs(
        self, pg_store: PostgresJobStore, pg_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A node registered before schema version 9 (no inboxes recorded) still running
        beside the migrated store takes any retried job back: it is not waiting for nobody."""
        monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)
        job = _retried(pg_store, Path("/lab/inbox-a"))
        _node(pg_store, "pc-b", Path("/lab/inbox-b"))
        _node(pg_store, "pc-old")
        assert unwatched(pg_store, [job]) == {}
        assert "waits for" not in _jobs("--store", pg_url)
        pg_store.node_stopped("pc-old")
        assert list(unwatched(pg_store, [job])) == [job.id]
        assert "waits for a hot folder watching /lab/inbox-a" in _jobs("--store", pg_url)

    def test_read_within_a_page_s_one_state_of_the_store(
        self, pg_store: PostgresJobStore, pg_url: str
    ) -> None:
        """History reads it inside ``snapshot``: the nodes are read in the page's read
        transaction, which goes on (a transaction of their own there committed the page's,
        and its later reads saw what was written since)."""
        inbox = Path("/lab/inbox-a")
        job = _retried(pg_store, inbox)
        _node(pg_store, "pc-a", inbox)
        with PostgresJobStore(pg_url, password=PG_PASSWORD) as other, pg_store.snapshot():
            assert pg_store.list_jobs() == (job,)
            assert unwatched(pg_store, [job]) == {}
            other.create_job(recipe="hot", source_path=inbox / "lower.stl")
            assert pg_store.list_jobs() == (job,)
        assert len(pg_store.list_jobs()) == 2

    def test_a_job_being_taken_from_its_inbox_is_not_a_retried_one(
        self, pg_store: PostgresJobStore
    ) -> None:
        inbox = Path("/lab/inbox-a")
        taking = pg_store.create_job(
            recipe="hot", source_path=inbox / "upper.stl", state=S.QUEUED,
            fields={HOTFOLDER_FIELD: JobPlace(inbox, "upper.stl").to_json()})
        assert unwatched(pg_store, [taking]) == {}

    def test_a_store_of_one_daemon_says_nothing(self, store: JobStore) -> None:
        """SQLite: the daemon alone on it takes every retried job back."""
        job = _retried(store, Path("/lab/inbox-a"))
        if isinstance(store, PostgresJobStore):
            assert unwatched(store, [job]) != {}  # the same job on a farm's store
        else:
            assert unwatched(store, [job]) == {}


class TestTheDashboardSaysIt:
    """The queue shows what such a job waits for, before its reason, as ``jobs`` does."""

    def test_the_queue_row_says_it_waits_for_a_node_watching_its_inbox(
        self, pg_store: PostgresJobStore, tmp_path: Path
    ) -> None:
        inbox = Path("/lab/inbox-a")
        _retried(pg_store, inbox)
        users = (WebUser("victor", "viewer", hash_secret(VIEWER_SECRET)),)
        with serving(pg_store, tmp_path, users) as served:
            client, _ = logged_in(served, "victor", VIEWER_SECRET)
            with closing(client):
                page = html.unescape(client.get("/").text)
        assert (f"waits for a hot folder watching {inbox}: no running node watches it "
                "(`nodes` lists them): retried by user") in page


class TestJobsJsonCarriesIt:
    """``jobs --format json`` and ``jobs show --format json`` carry the words as ``waits``:
    a script reads what the text says (null on SQLite, whose one daemon takes it back)."""

    def test_each_job_has_waits(
        self, store: JobStore, store_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)
        farm = isinstance(store, PostgresJobStore)
        where = pg_url if farm else str(store_path)
        inbox = Path("/lab/inbox-a")
        job = _retried(store, inbox)
        said = (f"waits for a hot folder watching {inbox}: no running node watches it "
                "(`nodes` lists them)") if farm else None

        def waits() -> list[object]:
            listed = json.loads(_jobs("--store", where, "--format", "json"))["jobs"]
            shown = json.loads(_jobs("show", job.job_key, "--store", where, "--format", "json"))
            return [*(j["waits"] for j in listed), shown["job"]["waits"]]

        assert waits() == [said, said]
        if farm:
            assert isinstance(store, PostgresJobStore)
            _node(store, "pc-a", inbox)  # a node watching its inbox runs: nothing to say
            assert waits() == [None, None]


def _jobs(*argv: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["jobs", *argv], out, err) == 0, err.getvalue()
    return out.getvalue()
