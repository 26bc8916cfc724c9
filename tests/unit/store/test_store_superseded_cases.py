"""A case exported again after a rejection (store/superseded.py), on SQLite and PostgreSQL:
a failed member is put right by a later job of its recipe, case and member that printed,
whatever the new content (session 47's dental trial: C-2001 printed, still listed failed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.store import Job, JobState, JobStore
from preform_pipeline.store.fields import HOTFOLDER_FIELD
from preform_pipeline.store.superseded import case_member, superseded
from tests.build_steps import printing_steps

S = JobState
INBOX = Path("/lab/inbox")


def _case_job(store: JobStore, state: JobState, *, digest: str, member: str = "upper.stl",
              case: str = "C-2001", recipe: str = "dental", inbox: Path = INBOX,
              run_path: Path | None = None) -> Job:
    """A job the hot folder took from ``inbox/<case>/<member>`` (or, with ``run_path``, one
    ``run`` took from that path) that ended in ``state``: FAILED (its build rejected), or
    printing (VERIFYING), or sent only (PRINT_SENT), or DONE."""
    place = {"inbox": str(inbox), "rel": f"{case}/{member}", "case": {"rel": case}}
    job = store.create_job(
        recipe=recipe, source_path=run_path or inbox / "processing" / case / member,
        content_hash=digest, case_id=case, state=S.PROCESSING,
        fields={} if run_path else {HOTFOLDER_FIELD: place})
    if state is S.FAILED:
        return store.transition(job.id, S.FAILED, "rejected by manager (web): margin")
    build = store.create_build(recipe=recipe, job_ids=[job.id])
    for step in (S.PREPARING, S.PREPARED, *printing_steps(state), state):
        store.transition_build(build.id, step, "test")
    return store.get_job(job.id)


class TestACaseExportedAgain:
    """The same case id and member, the same recipe, printed later: put right."""

    @pytest.mark.parametrize("printed", [S.VERIFYING, S.DONE])
    def test_a_rejected_member_is_superseded_by_its_new_export_printed(
        self, store: JobStore, printed: JobState
    ) -> None:
        rejected = _case_job(store, S.FAILED, digest="old-upper")
        again = _case_job(store, printed, digest="new-upper")
        assert superseded(store, [rejected]) == {rejected.id: again}

    def test_each_member_by_its_own_new_export(self, store: JobStore) -> None:
        upper = _case_job(store, S.FAILED, digest="u1")
        lower = _case_job(store, S.FAILED, digest="l1", member="lower.stl")
        new_upper = _case_job(store, S.VERIFYING, digest="u2")
        assert superseded(store, [upper, lower]) == {upper.id: new_upper}

    def test_a_member_is_its_path_in_the_case_not_its_name(self, store: JobStore) -> None:
        upper = _case_job(store, S.FAILED, digest="u1", member="scan/arch.stl")
        other = _case_job(store, S.VERIFYING, digest="u2", member="model/arch.stl")
        assert (case_member(upper), case_member(other)) == ("scan/arch.stl", "model/arch.stl")
        assert superseded(store, [upper]) == {}

    def test_another_recipe_puts_nothing_right(self, store: JobStore) -> None:
        rejected = _case_job(store, S.FAILED, digest="u1")
        _case_job(store, S.VERIFYING, digest="u2", recipe="splint")
        assert superseded(store, [rejected]) == {}

    def test_another_case_s_member_of_that_name_puts_nothing_right(
        self, store: JobStore
    ) -> None:
        # Both cases asked at once: each failure by its own case's print only.
        mine = _case_job(store, S.FAILED, digest="u1")
        theirs = _case_job(store, S.FAILED, digest="t1", case="C-2002")
        their_print = _case_job(store, S.VERIFYING, digest="t2", case="C-2002")
        assert superseded(store, [mine, theirs]) == {theirs.id: their_print}

    def test_a_new_export_that_failed_too_puts_nothing_right(self, store: JobStore) -> None:
        rejected = _case_job(store, S.FAILED, digest="u1")
        again = _case_job(store, S.FAILED, digest="u2")
        assert superseded(store, [rejected, again]) == {}

    def test_a_failure_after_the_new_print_is_not_superseded(self, store: JobStore) -> None:
        rejected = _case_job(store, S.FAILED, digest="u1")
        printed = _case_job(store, S.VERIFYING, digest="u2")
        later = _case_job(store, S.FAILED, digest="u3")
        assert superseded(store, [rejected, later]) == {rejected.id: printed}

    def test_an_earlier_print_of_the_case_does_not_hide_its_failure(
        self, store: JobStore
    ) -> None:
        _case_job(store, S.VERIFYING, digest="u1")
        rejected = _case_job(store, S.FAILED, digest="u2")
        assert superseded(store, [rejected]) == {}

    @pytest.mark.parametrize("rerun_first", [False, True], ids=["export-first", "rerun-first"])
    def test_of_a_print_of_its_content_and_one_of_its_case_the_earlier_is_named(
        self, store: JobStore, rerun_first: bool
    ) -> None:
        # Both rules find a later print: the case's new export and a `run` of the very file
        # it failed with. The note names the first that put it right, whichever rule found
        # it (review rv48-mutants: with only the export first, a note naming the case's
        # print whenever there is one, `named[-1]`, passed).
        rejected = _case_job(store, S.FAILED, digest="u1")

        def rerun() -> Job:
            return _case_job(store, S.VERIFYING, digest="u1",
                             run_path=Path("/cases/elsewhere/C-2001/upper.stl"))

        def new_export() -> Job:
            return _case_job(store, S.VERIFYING, digest="u2")

        first, second = (rerun(), new_export()) if rerun_first else (new_export(), rerun())
        assert first.id < second.id
        assert superseded(store, [rejected]) == {rejected.id: first}

    def test_a_job_retried_and_printed_since_it_was_read_is_not_its_own_superseder(
        self, store: JobStore
    ) -> None:
        # A page read the job failed; an operator retried it and it printed before the page
        # asked which failures are put right: no job is put right by itself.
        read_failed = _case_job(store, S.FAILED, digest="u1")
        store.transition(read_failed.id, S.QUEUED, "retried by ada (web)")
        store.transition(read_failed.id, S.PROCESSING, "test")
        build = store.create_build(recipe="dental", job_ids=[read_failed.id])
        for step in (S.PREPARING, S.PREPARED, S.PRINT_SENDING, S.PRINT_SENT):
            store.transition_build(build.id, step, "test")
        assert store.get_job(read_failed.id).state is S.PRINT_SENT
        assert superseded(store, [read_failed]) == {}


class TestWhichCaseAndMember:
    """The case is the hot folder's (its inbox) or the run's; the member its path there."""

    def test_the_same_case_id_dropped_in_another_inbox_puts_nothing_right(
        self, store: JobStore
    ) -> None:
        # Two clinics' hot folders, one recipe, case ids each clinic numbers its own way.
        rejected = _case_job(store, S.FAILED, digest="u1")
        _case_job(store, S.VERIFYING, digest="u2", inbox=Path("/lab/other-clinic"))
        assert superseded(store, [rejected]) == {}

    def test_a_loose_file_s_member_is_its_path_in_the_inbox_wherever_it_went(
        self, store: JobStore
    ) -> None:
        # Its sidecar gives the case id; the failed file went to failed/, the new one to done/.
        rejected, again = (
            store.create_job(recipe="dental", source_path=INBOX / folder / "upper.stl",
                             content_hash=digest, case_id="C-7", state=S.PROCESSING,
                             fields={HOTFOLDER_FIELD: {"inbox": str(INBOX), "rel": "upper.stl",
                                                       "case": None}})
            for folder, digest in (("failed", "u1"), ("done", "u2")))
        store.transition(rejected.id, S.FAILED, "rejected by manager (web): margin")
        build = store.create_build(recipe="dental", job_ids=[again.id])
        for step in (S.PREPARING, S.PREPARED, S.DONE):
            store.transition_build(build.id, step, "test")
        assert case_member(rejected) == "upper.stl"
        assert superseded(store, [store.get_job(rejected.id)]) == {
            rejected.id: store.get_job(again.id)}

    def test_a_run_s_two_files_of_one_name_in_a_case_are_two_members(
        self, store: JobStore
    ) -> None:
        # A case split over two builds: the second build failed, the first printed.
        scan = _case_job(store, S.FAILED, digest="s1",
                         run_path=Path("/cases/C-2001/scan/arch.stl"))
        _case_job(store, S.VERIFYING, digest="m1", run_path=Path("/cases/C-2001/model/arch.stl"))
        assert superseded(store, [scan]) == {}

    def test_a_run_s_member_exported_again_to_its_path_is_put_right(
        self, store: JobStore
    ) -> None:
        path = Path("/cases/C-2001/upper.stl")
        rejected = _case_job(store, S.FAILED, digest="u1", run_path=path)
        again = _case_job(store, S.VERIFYING, digest="u2", run_path=path)
        assert case_member(rejected) == str(path)
        assert superseded(store, [rejected]) == {rejected.id: again}

    def test_a_record_whose_file_is_not_in_its_case_folder_is_read_by_its_inbox_path(
        self, store: JobStore
    ) -> None:
        # A record written by hand or by another version: read, not refused, so the jobs
        # page that asks shows it.
        odd = store.create_job(
            recipe="dental", source_path=INBOX / "failed" / "upper.stl", content_hash="u1",
            case_id="C-7", state=S.PROCESSING,
            fields={HOTFOLDER_FIELD: {"inbox": str(INBOX), "rel": "loose/upper.stl",
                                      "case": {"rel": "C-7"}}})
        odd = store.transition(odd.id, S.FAILED, "rejected by manager (web): margin")
        assert case_member(odd) == "loose/upper.stl"
        assert superseded(store, [odd]) == {}

    def test_a_record_whose_inbox_is_no_text_is_read_as_of_no_inbox(
        self, store: JobStore
    ) -> None:
        # Another hand-written record: its case is put right as a `run`'s would be, and
        # the page that asks is not refused.
        place = {"inbox": ["/lab/inbox"], "rel": "C-7/upper.stl", "case": {"rel": "C-7"}}
        odd, again = (
            store.create_job(recipe="dental", source_path=INBOX / "C-7" / "upper.stl",
                             content_hash=digest, case_id="C-7", state=S.PROCESSING,
                             fields={HOTFOLDER_FIELD: place})
            for digest in ("u1", "u2"))
        store.transition(odd.id, S.FAILED, "rejected by manager (web): margin")
        build = store.create_build(recipe="dental", job_ids=[again.id])
        for step in (S.PREPARING, S.PREPARED, S.DONE):
            store.transition_build(build.id, step, "test")
        assert superseded(store, [store.get_job(odd.id)]) == {odd.id: store.get_job(again.id)}


class TestFindByCases:
    """Every job of any of the cases asked, in creation order, optionally in some states."""

    def test_the_jobs_of_the_cases_asked_in_creation_order(self, store: JobStore) -> None:
        a = _case_job(store, S.FAILED, digest="a", case="C-1")
        b = _case_job(store, S.VERIFYING, digest="b", case="C-2")
        _case_job(store, S.FAILED, digest="c", case="C-3")
        a2 = _case_job(store, S.DONE, digest="d", case="C-1")
        assert [j.id for j in store.find_by_cases(["C-2", "C-1", "C-1"])] == [a.id, b.id, a2.id]
        assert [j.id for j in store.find_by_cases({"C-1"}, state={S.DONE})] == [a2.id]
        assert store.find_by_cases(()) == ()
