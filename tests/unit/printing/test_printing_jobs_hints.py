"""What the print owner and the approval tell a person names the ``jobs`` command it was given:
the one that reaches the store the run, daemon or ``jobs`` invocation used."""

from __future__ import annotations

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.dispatch.sender import FormSender
from preform_pipeline.errors import PipelineError
from preform_pipeline.printing import PrintOwner
from preform_pipeline.printing.approval import approve, hold_for_approval, reject
from preform_pipeline.store import Build, JobState, SqliteJobStore
from tests.unit.executor.executor_support import FakePool
from tests.unit.store.conftest import build_in_state

#: What ``files.jobs_command`` gives for a store of the settings' own.
JOBS = 'preform-pipeline jobs --store "/srv/lab share/jobs.sqlite3"'
TARGET = {"names": ["Bench-B"], "auto": False, "machine_type": "FORM-4-0",
          "material": "FLGPGR05"}


def _sending(store: SqliteJobStore, printer: str = "Form4-3") -> Build:
    build = build_in_state(store, JobState.PREPARED, jobs=1)
    return PrintOwner(store).begin(build.id, f"r {build.job_key}", printer, None)


class TestTheOwnerNamesItsStore:
    """An unsettled send's reason and a refused settling name the owner's ``jobs`` command."""

    def test_an_unsettled_send_says_how_to_resolve_it_in_this_store(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        build = _sending(store)
        clock.advance(3600)
        PrintOwner(store, clock=clock, jobs=JOBS).resolve(build)
        reason = store.build_history(build.id)[-1].reason
        assert reason.endswith(f"then `{JOBS} resolve {build.job_key} --printed` or "
                               "`--not-printed`")

    def test_a_build_in_no_doubt_is_refused_with_its_history_in_this_store(
        self, store: SqliteJobStore
    ) -> None:
        build = build_in_state(store, JobState.PREPARED, jobs=1)
        with pytest.raises(PipelineError, match="only an unverified") as caught:
            PrintOwner(store, jobs=JOBS).settle_by_person(build, printed=True)
        assert caught.value.hint == f"see `{JOBS} show {build.job_key}`"


class TestTheApprovalNamesItsStore:
    """A second decision on a held build points at its history in the store decided in."""

    @pytest.mark.parametrize("decide", ["approve", "reject"])
    def test_a_second_decision_names_this_stores_show(
        self, store: SqliteJobStore, decide: str
    ) -> None:
        prepared = build_in_state(store, JobState.PREPARED)
        held = hold_for_approval(store, prepared.id, TARGET, job_name="crowns", priority=3,
                                 describe="Bench-B")
        approve(store, held.id, "alice", jobs=JOBS)
        with pytest.raises(PipelineError) as caught:
            if decide == "approve":
                approve(store, held.id, "bob", jobs=JOBS)
            else:
                reject(store, held.id, "bob", "too late", jobs=JOBS)
        assert caught.value.hint == ("someone decided already, or it was cancelled; reload the "
                                     f"page or see `{JOBS} show {held.job_key}`")


class TestTheSenderNamesItsStore:
    """A waiting build without its saved .form names the commands that prepare its jobs
    again in this store."""

    def test_a_waiting_build_without_a_form_names_this_stores_commands(
        self, store: SqliteJobStore
    ) -> None:
        build = build_in_state(store, JobState.WAITING_FOR_PRINTER, jobs=1)
        assert build.form_path is None
        pool = FakePool([])
        try:
            sender = FormSender(pool, PrintOwner(store, jobs=JOBS), request_timeout_s=5.0)
            with pytest.raises(PipelineError, match=r"has no saved \.form") as caught:
                sender(build, "Form4-A")
        finally:
            pool.close()
        [job] = store.build_members(build.id)
        assert caught.value.hint == (
            f"cancel its job, then queue it again (`{JOBS} cancel {job.job_key}`; then "
            f"`{JOBS} retry {job.job_key}`): the hot folder prepares it again")
        assert store.get_build(build.id).state is JobState.WAITING_FOR_PRINTER
