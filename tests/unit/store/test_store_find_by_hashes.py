"""``find_by_hashes``: the jobs of many file digests in one read, on SQLite and PostgreSQL
(the superseded check of a page of failed jobs asked once per digest before)."""

from __future__ import annotations

import pytest

from preform_pipeline.store import JobState, JobStore, sqlcore

S = JobState


def _jobs(store: JobStore) -> list[int]:
    """Jobs of digests a, b, c, a again (failed), and one without a digest; their ids."""
    made = []
    for digest in ("a", "b", "c", "a", None):
        job = store.create_job(recipe="grey", source_path=f"/models/{digest}.stl",
                               content_hash=digest, state=S.PROCESSING)
        made.append(job.id)
    store.transition(made[3], S.FAILED, "its run died")
    return made


class TestFindByHashes:
    """Every job of any of the digests asked, in creation order, optionally in some states."""

    def test_the_jobs_of_the_digests_asked_in_creation_order(self, store: JobStore) -> None:
        a1, b, _, a2, _ = _jobs(store)
        assert [j.id for j in store.find_by_hashes(["b", "a", "a"])] == [a1, b, a2]

    def test_a_state_filter_keeps_only_those_states(self, store: JobStore) -> None:
        a1, _, _, a2, _ = _jobs(store)
        assert [j.id for j in store.find_by_hashes({"a"}, state=S.FAILED)] == [a2]
        assert [j.id for j in store.find_by_hashes({"a"}, state={S.PROCESSING})] == [a1]

    def test_nothing_asked_reads_nothing(self, store: JobStore) -> None:
        _jobs(store)
        assert store.find_by_hashes(()) == ()
        assert store.find_by_hashes({"zzz"}) == ()

    def test_many_digests_are_asked_in_parts_and_come_back_in_one_order(
        self, store: JobStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Below each database's limit on a statement's parameters: two digests a statement
        # here, so three statements, whose rows must still come back in creation order.
        monkeypatch.setattr(sqlcore, "HISTORIES_PER_STATEMENT", 2)
        a1, b, c, a2, _ = _jobs(store)
        assert [j.id for j in store.find_by_hashes(["c", "b", "a", "x", "y"])] == [a1, b, c, a2]
