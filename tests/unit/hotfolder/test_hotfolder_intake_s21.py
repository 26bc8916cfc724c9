"""Session 21: a sidecar that cannot be read, and the jobs a ``run`` claimed in the hot
folder's store (jobs the hot folder never placed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from daemon_support import Script, make_daemon, run_daemon_once

from preform_pipeline.executor.ledger import RunLedger
from preform_pipeline.hotfolder import Drop, Intake
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
from preform_pipeline.plan.builds import ModelInfo
from preform_pipeline.printing import FleetFolderLocator, PrintOwner, SendHolder
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Job, JobState, SqliteJobStore

#: Reading this file fails with an I/O error for every user, root included (its first page is
#: never mapped), which a file's permissions cannot do for root, who runs the suite here.
UNREADABLE_ON_LINUX = Path("/proc/self/mem")


def _dropped(inbox: InboxSettings, name: str) -> Drop:
    model = inbox.path / name
    model.write_bytes(tetra_stl_bytes(0))
    return Drop(inbox, model, "r", False, models=(model,), reasons={model: "stable for 2 s"})


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="needs a file no user can read: /proc/self/mem is Linux's")
class TestASidecarThatCannotBeRead:
    """A sidecar the file system will not read fails the drop with a note that says what to
    check, not a bare "cannot be read"."""

    def test_the_note_names_the_error_and_what_to_check(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _dropped(inbox, "a.stl")
        sidecar = inbox.path / "a.json"
        sidecar.symlink_to(UNREADABLE_ON_LINUX)
        (job,) = Intake(store, [inbox]).take(drop).rejected
        failed = inbox.folder("failed")
        assert (failed / "a.stl.error.txt").read_text(encoding="utf-8") == (
            f"What failed: bad sidecar: {failed / 'a.json'}: cannot be read: Input/output "
            "error\n"
            "Where: taking the file from the inbox\n"
            f"File: {inbox.path / 'a.stl'}\n"
            f"Job: {job.job_key} (see: preform-pipeline jobs show {job.job_key})\n"
            "What to do: fix the sidecar (check its permissions, or write it again), then "
            "drop the file and its sidecar into the inbox again\n")
        assert (failed / "a.json").is_symlink()
        assert store.history(job.id)[-1].reason == (
            f"bad sidecar: {failed / 'a.json'}: cannot be read: Input/output error")


def _claimed_by_a_run(store: SqliteJobStore, tmp_path: Path) -> Job:
    """A model a ``run`` of this very process (alive) claimed in the store, not yet planned."""
    model = tmp_path / "models" / "arch.stl"
    model.parent.mkdir()
    model.write_bytes(tetra_stl_bytes(7))
    owner = PrintOwner(store, [FleetFolderLocator(tmp_path / "fleet")])
    ledger = RunLedger(store, owner, "hot", "run-1", SendHolder.local("run", os.getpid(), 0.0))
    info = ModelInfo(path=model, name="arch", size_mm=(2, 2, 2), footprint_mm=(2, 2),
                     volume_mm3=8.0, support_estimate_mm3=0.0, triangle_count=4)
    assert ledger.claim([info]) == ([info], [])
    (job,) = store.list_jobs()
    return job


class TestARunsWorkInTheHotFoldersStore:
    """``run`` and ``watch`` share one store: a daemon's start leaves a running ``run``'s
    claims and builds to it, neither printing its models nor taking its builds apart."""

    def test_a_model_the_run_claimed_and_still_plans_is_not_printed_by_the_daemon(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        job = _claimed_by_a_run(store, tmp_path)
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        assert fleet_jobs(tmp_path / "fleet") == []
        assert [(t.to_state, t.reason) for t in store.history(job.id)] == [
            (JobState.PROCESSING, "taken by run run-1")]
        assert store.get_job(job.id).source_path == job.source_path
        assert job.source_path.is_file()

    def test_a_build_the_run_prepares_is_not_taken_apart_by_the_daemon(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        job = _claimed_by_a_run(store, tmp_path)
        build = store.create_build(recipe="hot", job_ids=[job.id], reason="planned by run run-1")
        store.transition_build(build.id, JobState.PREPARING, "sent to the server pool")
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        assert fleet_jobs(tmp_path / "fleet") == []
        assert [(t.to_state, t.reason) for t in store.build_history(build.id)] == [
            (JobState.PROCESSING, "planned by run run-1"),
            (JobState.PREPARING, "sent to the server pool")]
        assert store.get_job(job.id).state is JobState.PREPARING
