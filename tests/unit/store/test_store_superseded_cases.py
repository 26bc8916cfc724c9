"""A case exported again after a rejection (store/superseded.py), on SQLite and PostgreSQL:
a failed member is put right by a later job of its recipe, case and member that printed,
whatever the new content (session 47's dental trial: C-2001 printed, still listed failed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.store import Job, JobState, JobStore
from preform_pipeline.store.fields import HOTFOLDER_FIELD
from preform_pipeline.store.superseded import case_member, superseded

S = JobState
INBOX = Path("/lab/inbox")


def _case_job(store: JobStore, state: JobState, *, digest: str, member: str = "upper.stl",
              case: str = "C-2001", recipe: str = "dental") -> Job:
    """A job the hot folder took from ``inbox/<case>/<member>`` that ended in ``state``:
    FAILED (its build rejected), or printed (PRINT_SENT), or DONE."""
    place = {"inbox": str(INBOX), "rel": f"{case}/{member}", "case": {"rel": case}}
    job = store.create_job(recipe=recipe, source_path=INBOX / "processing" / case / member,
                           content_hash=digest, case_id=case, state=S.PROCESSING,
                           fields={HOTFOLDER_FIELD: place})
    if state is S.FAILED:
        return store.transition(job.id, S.FAILED, "rejected by manager (web): margin")
    build = store.create_build(recipe=recipe, job_ids=[job.id])
    sending = (S.PRINT_SENDING,) if state is S.PRINT_SENT else ()
    for step in (S.PREPARING, S.PREPARED, *sending, state):
        store.transition_build(build.id, step, "test")
    return store.get_job(job.id)


class TestACaseExportedAgain:
    """The same case id and member, the same recipe, printed later: put right."""

    @pytest.mark.parametrize("printed", [S.PRINT_SENT, S.DONE])
    def test_a_rejected_member_is_superseded_by_its_new_export_printed(
        self, store: JobStore, printed: JobState
    ) -> None:
        rejected = _case_job(store, S.FAILED, digest="old-upper")
        again = _case_job(store, printed, digest="new-upper")
        assert superseded(store, [rejected]) == {rejected.id: again}

    def test_each_member_by_its_own_new_export(self, store: JobStore) -> None:
        upper = _case_job(store, S.FAILED, digest="u1")
        lower = _case_job(store, S.FAILED, digest="l1", member="lower.stl")
        new_upper = _case_job(store, S.PRINT_SENT, digest="u2")
        assert superseded(store, [upper, lower]) == {upper.id: new_upper}

    def test_a_member_is_its_path_in_the_case_not_its_name(self, store: JobStore) -> None:
        upper = _case_job(store, S.FAILED, digest="u1", member="scan/arch.stl")
        other = _case_job(store, S.PRINT_SENT, digest="u2", member="model/arch.stl")
        assert (case_member(upper), case_member(other)) == ("scan/arch.stl", "model/arch.stl")
        assert superseded(store, [upper]) == {}

    def test_another_recipe_puts_nothing_right(self, store: JobStore) -> None:
        rejected = _case_job(store, S.FAILED, digest="u1")
        _case_job(store, S.PRINT_SENT, digest="u2", recipe="splint")
        assert superseded(store, [rejected]) == {}

    def test_another_case_s_member_of_that_name_puts_nothing_right(
        self, store: JobStore
    ) -> None:
        # Both cases asked at once: each failure by its own case's print only.
        mine = _case_job(store, S.FAILED, digest="u1")
        theirs = _case_job(store, S.FAILED, digest="t1", case="C-2002")
        their_print = _case_job(store, S.PRINT_SENT, digest="t2", case="C-2002")
        assert superseded(store, [mine, theirs]) == {theirs.id: their_print}

    def test_a_new_export_that_failed_too_puts_nothing_right(self, store: JobStore) -> None:
        rejected = _case_job(store, S.FAILED, digest="u1")
        again = _case_job(store, S.FAILED, digest="u2")
        assert superseded(store, [rejected, again]) == {}

    def test_a_failure_after_the_new_print_is_not_superseded(self, store: JobStore) -> None:
        rejected = _case_job(store, S.FAILED, digest="u1")
        printed = _case_job(store, S.PRINT_SENT, digest="u2")
        later = _case_job(store, S.FAILED, digest="u3")
        assert superseded(store, [rejected, later]) == {rejected.id: printed}

    def test_an_earlier_print_of_the_case_does_not_hide_its_failure(
        self, store: JobStore
    ) -> None:
        _case_job(store, S.PRINT_SENT, digest="u1")
        rejected = _case_job(store, S.FAILED, digest="u2")
        assert superseded(store, [rejected]) == {}


class TestFindByCases:
    """Every job of any of the cases asked, in creation order, optionally in some states."""

    def test_the_jobs_of_the_cases_asked_in_creation_order(self, store: JobStore) -> None:
        a = _case_job(store, S.FAILED, digest="a", case="C-1")
        b = _case_job(store, S.PRINT_SENT, digest="b", case="C-2")
        _case_job(store, S.FAILED, digest="c", case="C-3")
        a2 = _case_job(store, S.DONE, digest="d", case="C-1")
        assert [j.id for j in store.find_by_cases(["C-2", "C-1", "C-1"])] == [a.id, b.id, a2.id]
        assert [j.id for j in store.find_by_cases({"C-1"}, state={S.DONE})] == [a2.id]
        assert store.find_by_cases(()) == ()
