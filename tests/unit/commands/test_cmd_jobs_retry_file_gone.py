"""What ``jobs retry`` checks before it queues (``retry_check``, the dashboard's Retry's too):
a hot-folder job's file, so none is queued that cannot run; and a failure a later job printed,
refused as the dashboard refuses it, in the same words (``--force`` queues it); a case
exported again after a rejection and printed included (session 47)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.cli import run
from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, CaseFolder, JobPlace
from preform_pipeline.store import Job, JobState, SqliteJobStore
from preform_pipeline.store.fields import RUN_FIELD
from preform_pipeline.store.superseded import WHY_SUPERSEDED
from tests.build_steps import printing_steps
from tests.unit.web.conftest import ended_job, failed_print

S = JobState


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteJobStore]:
    opened = SqliteJobStore(tmp_path / "jobs.sqlite3")
    yield opened
    opened.close()


def _failed(store: SqliteJobStore, inbox: Path, name: str = "upper.stl") -> Job:
    """A job the hot folder took from ``inbox/C-1/name`` and failed into failed/; the inbox
    is a folder here, as on the machine that runs the hot folder."""
    inbox.mkdir(parents=True, exist_ok=True)
    place = JobPlace(inbox, f"C-1/{name}", previous=inbox / "processing" / name, moved=True)
    job = store.create_job(recipe="dental", source_path=inbox / "failed" / "C-1" / name,
                           case_id="C-1", state=S.QUEUED,
                           fields={HOTFOLDER_FIELD: place.to_json()})
    return store.transition(job.id, S.FAILED, "could not be read")


def _file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"solid x\nendsolid x\n")
    return path


def _retry(store: SqliteJobStore, what: str, *options: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["jobs", "retry", what, *options, "--store", str(store.path)], out, err)
    return code, out.getvalue(), err.getvalue()


class TestRetryWithoutItsFile:
    """A retry whose file is gone is refused, saying where to put it; with it, it is queued."""

    def test_a_file_gone_is_refused_naming_where_it_goes_back(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        inbox = tmp_path / "inbox"
        job = _failed(store, inbox)
        code, out, err = _retry(store, str(job.id))
        assert (code, out) == (1, "")
        assert err == (
            f"error: job {job.id} ({job.job_key}) was not queued again: its file "
            f"{job.source_path}: not there now (moved or removed since); put it back at "
            f"{job.source_path} and retry, or drop it into the hot folder again ({inbox}) "
            "as a new job\n")
        assert store.get_job(job.id).state is S.FAILED  # nothing queued that cannot run

    def test_put_back_where_the_error_said_it_is_queued(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        job = _failed(store, tmp_path / "inbox")
        assert _retry(store, str(job.id))[0] == 1
        _file(job.source_path)
        code, out, err = _retry(store, str(job.id))
        assert (code, err) == (0, "")
        assert "queued again (was failed)" in out
        assert store.get_job(job.id).state is S.QUEUED

    def test_a_file_put_back_into_the_inbox_is_left_to_the_hot_folder(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        inbox = tmp_path / "inbox"
        job = _failed(store, inbox)
        dropped = _file(inbox / "C-1" / "upper.stl")
        code, _, err = _retry(store, str(job.id))
        assert code == 1
        assert f"put back into the inbox as {dropped}, not taken yet; the hot folder takes " \
               "it as a new job" in err
        assert store.get_job(job.id).state is S.FAILED

    def test_a_case_retries_the_jobs_whose_files_are_there_and_names_the_others(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        inbox = tmp_path / "inbox"
        there, gone = _failed(store, inbox, "upper.stl"), _failed(store, inbox, "lower.stl")
        _file(there.source_path)
        code, out, err = _retry(store, "C-1")
        assert code == 1
        assert out == (f"job {there.id} ({there.job_key}) queued again (was failed); the hot "
                       "folder picks it up\n")
        assert err.count("error: ") == 1 and f"job {gone.id} ({gone.job_key})" in err
        assert (store.get_job(there.id).state, store.get_job(gone.id).state) == (
            S.QUEUED, S.FAILED)


def _unseen(store: SqliteJobStore, tmp_path: Path) -> Job:
    """A job the hot folder of another machine took: its inbox (a mount there) is no folder
    here, as on a node of a shared store that does not mount the hot folder."""
    job = _failed(store, tmp_path / "elsewhere" / "inbox")
    (tmp_path / "elsewhere").rename(tmp_path / "unmounted")
    return job


class TestRetryFromAMachineThatDoesNotSeeTheInbox:
    """Where the hot folder's inbox is not seen, the file cannot be judged: not called gone,
    the retry runs and says what happens next (the daemon that sees it takes it, or fails it
    "its file is gone")."""

    def test_the_retry_is_queued_and_says_the_file_was_not_looked_for(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        job = _unseen(store, tmp_path)
        code, out, err = _retry(store, str(job.id))
        assert code == 0 and "queued again (was failed)" in out
        inbox = tmp_path / "elsewhere" / "inbox"
        assert err == (
            f"note: job {job.id} ({job.job_key}): its hot folder's inbox {inbox} is not seen "
            "from this machine, so its file was not looked for here; the hot folder watching "
            f"that inbox takes it again, or fails it \"its file is gone\" if it is not at "
            f"{job.source_path}\n")
        assert store.get_job(job.id).state is S.QUEUED

    def test_jobs_show_says_unseen_not_gone(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        job = _unseen(store, tmp_path)
        out, err = io.StringIO(), io.StringIO()
        assert run(["jobs", "show", str(job.id), "--store", str(store.path)], out, err) == 0
        inbox = tmp_path / "elsewhere" / "inbox"
        assert (f"{job.source_path}: not seen from this machine (its hot folder's inbox "
                f"{inbox} is not here)") in out.getvalue()
        assert "moved or removed" not in out.getvalue()
        out = io.StringIO()
        run(["jobs", "show", str(job.id), "--store", str(store.path), "--format", "json"],
            out, err)
        file = json.loads(out.getvalue())["file_now"]
        assert (file["status"], file["now_at"]) == ("unseen", str(inbox))


class TestRetryOfASupersededFailure:
    """The rule the dashboard's Retry follows (``retry_check``), said the same way."""

    def test_refused_naming_the_later_job_and_the_explicit_way(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        killed = ended_job(store, tmp_path, "K-1", S.FAILED)
        later = ended_job(store, tmp_path, "K-2", S.DONE)
        code, out, err = _retry(store, str(killed.id))
        assert (code, out) == (1, "")
        assert err == (
            f"error: job {killed.id} ({killed.job_key}) was not queued again: {WHY_SUPERSEDED}"
            f" (superseded by job {later.id} ({later.job_key}, done)); there is nothing to "
            f"retry; to print it once more anyway: preform-pipeline jobs --store {store.path} "
            f"retry --force {killed.job_key}\n")
        assert store.get_job(killed.id).state is S.FAILED  # not printed a second time

    def test_force_queues_it(self, store: SqliteJobStore, tmp_path: Path) -> None:
        killed = ended_job(store, tmp_path, "K-1", S.FAILED)
        ended_job(store, tmp_path, "K-2", S.DONE)
        code, out, err = _retry(store, killed.job_key, "--force")
        assert (code, err) == (0, "")
        assert out.startswith(f"job {killed.id} ({killed.job_key}) queued again (was failed)")
        assert store.get_job(killed.id).state is S.QUEUED

    def test_a_case_retries_its_other_failure_and_refuses_the_superseded_one(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        put_right = ended_job(store, tmp_path, "M-1", S.FAILED, digest="m-a")
        other = ended_job(store, tmp_path, "M-1", S.FAILED, digest="m-b")
        ended_job(store, tmp_path, "P-1", S.DONE, digest="m-a")
        code, out, err = _retry(store, "case:M-1")
        assert code == 1  # one of the case's jobs was refused, as `jobs retry CASE` says
        assert f"job {put_right.id} ({put_right.job_key}) was not queued again" in err
        assert f"job {other.id} ({other.job_key}) queued again" in out
        assert (store.get_job(put_right.id).state, store.get_job(other.id).state) == (
            S.FAILED, S.QUEUED)


def _exported_twice(store: SqliteJobStore, inbox: Path, second: JobState) -> tuple[Job, Job]:
    """``inbox/C-2001/upper.stl`` taken by the hot folder, its build rejected; then the case
    exported again (new content, the same member) and taken, ending in ``second``
    (VERIFYING: printing, or FAILED)."""
    jobs = []
    for digest, state in (("first-export", S.FAILED), ("second-export", second)):
        place = JobPlace(inbox, "C-2001/upper.stl", case=CaseFolder("C-2001", 1, 2))
        job = store.create_job(
            recipe="dental", source_path=inbox / "processing" / "C-2001" / "upper.stl",
            content_hash=digest, case_id="C-2001", state=S.PROCESSING,
            fields={HOTFOLDER_FIELD: place.to_json()})
        if state is S.FAILED:
            jobs.append(store.transition(job.id, S.FAILED, "rejected by manager (web): close"))
            continue
        build = store.create_build(recipe="dental", job_ids=[job.id])
        for step in (S.PREPARING, S.PREPARED, *printing_steps(second), second):
            store.transition_build(build.id, step, "test")
        jobs.append(store.get_job(job.id))
    return jobs[0], jobs[1]


def _listed(store: SqliteJobStore) -> tuple[list[str], str]:
    """The ids `jobs list` shows, and its last line."""
    out, err = io.StringIO(), io.StringIO()
    assert run(["jobs", "list", "--store", str(store.path)], out, err) == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    return sorted(line.split()[0] for line in lines[1:] if " PP-" in line), lines[-1]


class TestACaseExportedAgain:
    """Session 47's dental trial: C-2001's rejected member, exported again with new content
    and printed, was still listed failed and could be retried into a second print."""

    def test_jobs_does_not_list_it_and_says_why(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        _, printed = _exported_twice(store, tmp_path / "inbox", S.VERIFYING)
        assert _listed(store) == ([str(printed.id)], f"1 failed job not listed: "
                                  f"{WHY_SUPERSEDED} (--state failed lists them)")

    def test_jobs_retry_refuses_it_naming_the_new_print(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        rejected, printed = _exported_twice(store, tmp_path / "inbox", S.VERIFYING)
        code, out, err = _retry(store, rejected.job_key)
        assert (code, out) == (1, "")
        assert err.startswith(
            f"error: job {rejected.id} ({rejected.job_key}) was not queued again: "
            f"{WHY_SUPERSEDED} (superseded by job {printed.id} ({printed.job_key}, "
            "verifying)); there is nothing to retry")
        assert store.get_job(rejected.id).state is S.FAILED

    def test_a_new_export_that_failed_too_leaves_both_listed(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        first, second = _exported_twice(store, tmp_path / "inbox", S.FAILED)
        assert _listed(store) == (sorted([str(first.id), str(second.id)]), "2 jobs")


class TestAFailedPrintTheNextRunPrinted:
    """A print the printer reported failed, whose file the next cron ``run`` printed again, is
    counted with the failures put right, and the line names the state that lists it (session
    48's trial: every such print stayed listed, each retry a job no run took)."""

    def test_jobs_does_not_list_it_and_names_its_state(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        failed_print(store, tmp_path, "P-1")
        printed = ended_job(store, tmp_path, "P-2", S.VERIFYING)
        assert _listed(store) == ([str(printed.id)], f"1 failed job not listed: "
                                  f"{WHY_SUPERSEDED} (--state print_error lists them)")

    def test_jobs_lists_it_while_the_reprint_is_only_sent(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        failed = failed_print(store, tmp_path, "P-1")
        sent = ended_job(store, tmp_path, "P-2", S.PRINT_SENT)
        assert _listed(store) == (sorted([str(failed.id), str(sent.id)]), "2 jobs")


class TestARunsFailedPrintTakenAgain:
    """The retry of a run's failed print whose file a later run took again (its reprint
    waiting for a printer, say) is refused, naming that job: a run's claim finds the later job
    first, so the retry stayed queued for good (session 48's trial)."""

    def _run_job(self, store: SqliteJobStore, tmp_path: Path, *states: JobState) -> Job:
        job = store.create_job(recipe="grey", source_path=tmp_path / "part_10.stl",
                               content_hash="h10", state=S.PROCESSING,
                               fields={RUN_FIELD: {"pid": 7}})
        build = store.create_build(recipe="grey", job_ids=[job.id])
        for state in states:
            store.transition_build(build.id, state, "test")
        return store.get_job(job.id)

    def test_it_is_refused_while_the_later_job_stands_and_queued_once_that_failed(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        failed = self._run_job(store, tmp_path, S.PREPARING, S.PREPARED, S.PRINT_SENDING,
                               S.PRINT_SENT, S.PRINT_ERROR)
        again = self._run_job(store, tmp_path, S.PREPARING, S.PREPARED, S.WAITING_FOR_PRINTER)
        code, out, err = _retry(store, str(failed.id), "--force")
        assert (code, out) == (1, "")
        assert err == (
            f"error: job {failed.id} ({failed.job_key}) was not queued again: a later run took "
            f"the same file again as job {again.id} ({again.job_key}, waiting_for_printer), "
            "and a run takes the file as that job while it stands, so this retry would never "
            "run; if that print fails, the next run prints the file again\n")
        assert store.get_job(failed.id).state is S.PRINT_ERROR
        assert again.build_id is not None
        for state in (S.PRINT_SENDING, S.PRINT_SENT, S.PRINT_ERROR):
            store.transition_build(again.build_id, state, "test")
        assert _retry(store, str(failed.id))[0] == 0
        assert store.get_job(failed.id).state is S.QUEUED

    def test_an_earlier_print_of_the_file_does_not_hold_it(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        # A print that finished, then a --reprint of it that failed: the claim finds the
        # retried job first (the newest), so its retry runs.
        self._run_job(store, tmp_path, S.PREPARING, S.PREPARED, S.DONE)
        failed = self._run_job(store, tmp_path, S.PREPARING, S.PREPARED, S.PRINT_SENDING,
                               S.PRINT_SENT, S.PRINT_ERROR)
        assert _retry(store, str(failed.id))[0] == 0
        assert store.get_job(failed.id).state is S.QUEUED

    def test_forced_after_a_later_print_it_names_the_run_s_own_way(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        # --force skips the superseded check, but a run would never take the retried job
        # while the later print holds the file: the run's own way is --reprint.
        failed = self._run_job(store, tmp_path, S.PREPARING, S.PREPARED, S.PRINT_SENDING,
                               S.PRINT_SENT, S.PRINT_ERROR)
        self._run_job(store, tmp_path, S.PREPARING, S.PREPARED, S.DONE)
        code, _, err = _retry(store, str(failed.id), "--force")
        assert code == 1
        assert err.endswith("so this retry would never run; to print it once more anyway, run "
                            "its recipe over the file with --reprint\n")
        assert store.get_job(failed.id).state is S.PRINT_ERROR



class TestARunsJobQueuedAgainShown:
    """``jobs show`` says what a run's job queued again waits for as the queue page does: the
    next ``run`` over its file, not the hot folder's "to be taken into processing/", which a
    run's job never enters (rv49-verify: the page said it, ``jobs show`` still did not)."""

    def test_jobs_show_says_the_next_run_prepares_it(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        job = store.create_job(recipe="grey", source_path=tmp_path / "part_11.stl",
                               content_hash="h11", state=S.PROCESSING,
                               fields={RUN_FIELD: {"pid": 7}})
        store.transition(job.id, S.FAILED, "its run died before printing it")
        assert _retry(store, str(job.id))[0] == 0
        out, err = io.StringIO(), io.StringIO()
        assert run(["jobs", "show", str(job.id), "--store", str(store.path)], out, err) == 0
        meaning = out.getvalue().splitlines()[1].strip()
        assert meaning == ("queued again; the next `run` over its file prepares it (a run's "
                           "job: no hot folder takes it)")
