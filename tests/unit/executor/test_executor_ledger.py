"""A run recorded in the job store: claims by content, overlapping runs, dead runs' work."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from preform_pipeline.commands.jobs import RETRY_REASON
from preform_pipeline.executor.ledger import RUN_FIELD, RunLedger
from preform_pipeline.plan.builds import ModelInfo
from preform_pipeline.printing import FleetFolderLocator, PrintOwner, SendHolder
from preform_pipeline.printing.testing import reaped_holder
from preform_pipeline.store import Job, JobState, SqliteJobStore, content_hash
from tests.instances import other_instance


def _model(path: Path) -> ModelInfo:
    return ModelInfo(path=path, name=path.stem, size_mm=(10, 10, 10), footprint_mm=(10, 10),
                     volume_mm3=1000.0, support_estimate_mm3=0.0, triangle_count=12)





def _ledger(store: SqliteJobStore, me: SendHolder, *, reprint: bool = False) -> RunLedger:
    owner = PrintOwner(store, [FleetFolderLocator(Path(store.path).parent / "fleet")])
    return RunLedger(store, owner, "recipe", "run-1", me, reprint=reprint)


def _me() -> SendHolder:
    return SendHolder.local("run", os.getpid(), 0.0)


class TestPrintedBefore:
    """Which named files a run may leave unread: those whose content a job already holds."""

    def test_a_printed_file_is_found_and_a_missing_or_unreadable_one_left_to_the_reading(
        self, store: SqliteJobStore, models: list[ModelInfo], tmp_path: Path
    ) -> None:
        _ledger(store, _me()).claim([models[0]])
        folder = tmp_path / "a-folder.stl"
        folder.mkdir()
        named = [models[0].path, tmp_path / "nothere.stl", folder, models[1].path]
        found = _ledger(store, _me()).printed_before(named)
        assert list(found) == [models[0].path]


class TestClaims:
    """A model is taken once by content; a repeat skips it and says why."""

    def test_a_repeat_over_the_same_inputs_skips_what_is_in_flight(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        taken, skipped = _ledger(store, _me()).claim(models)
        assert (len(taken), skipped) == (4, [])
        again, skipped = _ledger(store, _me()).claim(models)
        assert again == []
        assert [s.path for s in skipped] == [m.path for m in models]
        assert "being prepared or printed" in skipped[0].describe()

    def test_reprint_takes_them_anyway(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        _ledger(store, _me()).claim(models)
        taken, skipped = _ledger(store, _me(), reprint=True).claim(models)
        assert (len(taken), skipped) == (4, [])

    def test_a_copy_under_another_name_is_the_same_model(
        self, store: SqliteJobStore, models: list[ModelInfo], tmp_path: Path
    ) -> None:
        copy = tmp_path / "copy.stl"
        copy.write_bytes(models[0].path.read_bytes())
        _ledger(store, _me()).claim([models[0]])
        taken, skipped = _ledger(store, _me()).claim([_model(copy)])
        assert taken == []
        assert [s.path for s in skipped] == [copy]

    def test_copies_named_in_one_run_are_all_taken(
        self, store: SqliteJobStore, models: list[ModelInfo], tmp_path: Path
    ) -> None:
        copy = tmp_path / "copy.stl"
        copy.write_bytes(models[0].path.read_bytes())
        taken, skipped = _ledger(store, _me()).claim([models[0], _model(copy)])
        assert ([m.path for m in taken], skipped) == ([models[0].path, copy], [])

    def test_a_job_names_its_file_absolute_and_its_case(
        self, store: SqliteJobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A run given ``inbox/...`` stored that relative path, which ``jobs show`` from
        another folder called "not there now", and no case id (session 36's trial)."""
        (tmp_path / "inbox" / "C-1").mkdir(parents=True)
        (tmp_path / "inbox" / "C-1" / "upper.stl").write_bytes(b"upper")
        (tmp_path / "inbox" / "lone.stl").write_bytes(b"lone")
        monkeypatch.chdir(tmp_path)
        upper = replace(_model(Path("inbox/C-1/upper.stl")), case_id="C-1")
        lone = _model(Path("inbox/lone.stl"))
        taken, _ = _ledger(store, _me()).claim([upper, lone])
        assert taken == [upper, lone]  # the run's own paths, as given
        jobs = sorted(store.list_jobs(), key=lambda j: j.id)
        assert [(Path(j.source_path), j.case_id) for j in jobs] == [
            (tmp_path / "inbox" / "C-1" / "upper.stl", "C-1"),
            (tmp_path / "inbox" / "lone.stl", None)]

    def test_two_overlapping_runs_never_take_the_same_model(
        self, tmp_path: Path, models: list[ModelInfo]
    ) -> None:
        path = tmp_path / "jobs.db"
        SqliteJobStore(path).close()
        results: list[list[ModelInfo]] = []
        start = threading.Barrier(4)

        def one_run() -> None:
            with SqliteJobStore(path) as own:  # its own connection, as another process has
                start.wait(timeout=10)
                taken, _ = _ledger(own, _me()).claim(models)
                results.append(taken)

        threads = [threading.Thread(target=one_run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        claimed = [m.path for taken in results for m in taken]
        assert sorted(claimed) == sorted(m.path for m in models)


class TestDeadRuns:
    """What a run that died left is released or resolved by the next run."""

    def test_unsent_work_of_a_dead_run_is_released_and_taken_again(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        dead = _ledger(store, reaped_holder())
        dead.claim(models[:2])
        build = store.create_build(recipe="recipe", job_ids=[
            j.id for j in store.list_jobs(state=JobState.PROCESSING)])
        fresh = _ledger(store, _me())
        lines = fresh.recover()
        assert store.get_build(build.id).state is JobState.FAILED
        assert lines and "died" in lines[0]
        again, skipped = fresh.claim(models[:2])
        assert (len(again), skipped) == (2, [])

    def test_models_a_dead_run_claimed_but_never_built_are_taken_again(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        # Killed while planning: its claims are in the store, its builds never were.
        _ledger(store, reaped_holder()).claim(models[:2])
        fresh = _ledger(store, _me())
        lines = fresh.recover()
        again, skipped = fresh.claim(models[:2])
        assert (len(again), skipped) == (2, [])
        assert lines == [f"released {m.path.name}: its run died before building it"
                         for m in models[:2]]

    def test_claims_of_a_run_in_another_container_are_left_alone(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        # Same host name, and a pid that here ran and ended: in its own pid namespace that
        # run may be planning still; released, its models would be taken and built twice.
        other = replace(reaped_holder(), instance=other_instance())
        _ledger(store, other).claim(models[:2])
        assert _ledger(store, _me()).recover() == []
        assert [j.state for j in store.list_jobs()] == [JobState.PROCESSING] * 2

    def test_claims_of_a_run_before_this_machine_restarted_are_released(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        # A store on this machine's disk: this host name in an earlier boot is this machine
        # before a power cut, whose run is over (the print owner's rule, not a stricter one).
        _ledger(store, replace(reaped_holder(), instance=other_instance(boot=True))).claim(
            models[:1])
        assert _ledger(store, _me()).recover() == [
            f"released {models[0].path.name}: its run died before building it"]

    def test_work_of_a_live_run_is_left_alone(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        _ledger(store, _me()).claim(models[:1])
        build = store.create_build(recipe="recipe", job_ids=[
            j.id for j in store.list_jobs(state=JobState.PROCESSING)])
        assert _ledger(store, _me()).recover() == []
        assert store.get_build(build.id).state is JobState.PROCESSING


def _failed_then_retried(store: SqliteJobStore, model: ModelInfo) -> Job:
    """A run's job for ``model`` that failed and that a person queued again (`jobs retry`)."""
    _ledger(store, _me()).claim([model])
    (job,) = store.list_jobs(state=JobState.PROCESSING)
    store.transition(job.id, JobState.FAILED, "the server refused it")
    return store.transition(job.id, JobState.QUEUED, RETRY_REASON, expect=JobState.FAILED)


class TestARunsJobQueuedAgain:
    """Nothing but a run prepares a run's job: the next run over its file takes it back."""

    def test_the_next_run_takes_it_as_it_is(
        self, store: SqliteJobStore, models: list[ModelInfo], tmp_path: Path
    ) -> None:
        retried = _failed_then_retried(store, models[0])
        moved = tmp_path / "moved.stl"  # the same content, found elsewhere this time
        moved.write_bytes(models[0].path.read_bytes())
        later = SendHolder.local("run", os.getpid(), 1.0)
        taken, skipped = _ledger(store, later).claim([_model(moved), models[1]])
        assert ([m.path for m in taken], skipped) == ([moved, models[1].path], [])
        again = store.get_job(retried.id)  # its key and history kept, not a new job
        assert (again.state, again.source_path) == (JobState.PROCESSING, moved)
        assert SendHolder.from_json(again.fields[RUN_FIELD]) == later
        assert len(store.list_jobs()) == 2
        assert [t.to_state for t in store.history(retried.id)][-2:] == [
            JobState.QUEUED, JobState.PROCESSING]

    def test_a_hot_folders_job_queued_again_is_left_to_the_hot_folder(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        job = store.create_job(recipe="recipe", source_path=models[0].path,
                               content_hash=content_hash(models[0].path))
        store.transition(job.id, JobState.QUEUED, RETRY_REASON)
        taken, skipped = _ledger(store, _me()).claim(models[:1])
        assert (taken, [s.other.id for s in skipped]) == ([], [job.id])
        assert store.get_job(job.id).state is JobState.QUEUED

    def test_two_runs_at_once_take_it_once(
        self, tmp_path: Path, models: list[ModelInfo]
    ) -> None:
        path = tmp_path / "jobs.db"
        with SqliteJobStore(path) as store:
            retried = _failed_then_retried(store, models[0])
        results: list[list[ModelInfo]] = []
        start = threading.Barrier(4)

        def one_run() -> None:
            with SqliteJobStore(path) as own:  # its own connection, as another process has
                start.wait(timeout=10)
                results.append(_ledger(own, _me()).claim(models[:1])[0])

        threads = [threading.Thread(target=one_run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(len(taken) for taken in results) == [0, 0, 0, 1]
        with SqliteJobStore(path) as store:
            assert [j.id for j in store.list_jobs()] == [retried.id]
