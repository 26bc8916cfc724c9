"""``approval_line``: the console's line for each way an operator's decision takes effect
(a real SQLite store, the decisions made as the dashboard and ``jobs`` make them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.hotfolder.decisions import approval_line
from preform_pipeline.logging import capture_logs
from preform_pipeline.printing.approval import approve, hold_for_approval, reject
from preform_pipeline.store import Build, JobState, SqliteJobStore

S = JobState


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteJobStore]:
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as opened:
        yield opened


def _prepared(store: SqliteJobStore, tmp: Path) -> Build:
    job = store.create_job(recipe="crowns", source_path=tmp / "C-1.stl", case_id="C-1",
                           state=S.PROCESSING)
    build = store.create_build(recipe="crowns", job_ids=[job.id])
    store.transition_build(build.id, S.PREPARING, "on a server")
    return store.transition_build(build.id, S.PREPARED, "prepared",
                                  form_path=tmp / f"{build.job_key}.form")


def _held(store: SqliteJobStore, tmp: Path) -> Build:
    build = _prepared(store, tmp)
    return hold_for_approval(store, build.id, {"names": ["Form4-A"]}, job_name="C-1",
                             priority=0, describe="Form4-A")


class TestApprovalLine:
    """One line and one event for each decision that took effect; none otherwise."""

    def test_an_approved_build_refused_by_its_printer(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        build = approve(store, _held(store, tmp_path).id, "olivia (web)")
        store.transition_build(build.id, S.PRINT_SENDING, "sending", printer="Form4-A")
        refused = store.transition_build(build.id, S.FAILED, "Form4-A refused it: no tank")
        with capture_logs() as logs:
            line = approval_line(refused)
        assert line == (f"[{build.job_key}] approved by olivia (web), not sent: Form4-A "
                        "refused it: no tank")
        assert [(e["event"], e["job_key"], e["by"]) for e in logs] == [
            ("approved_build_refused", build.job_key, "olivia (web)")]

    def test_a_rejected_build(self, store: SqliteJobStore, tmp_path: Path) -> None:
        build = reject(store, _held(store, tmp_path).id, "bob (cli)", "margin cut")
        with capture_logs() as logs:
            assert approval_line(build) == (
                f"[{build.job_key}] rejected by bob (cli): margin cut; its files go to "
                "failed/")
        assert [e["event"] for e in logs] == ["rejected_build_settled"]

    def test_nothing_for_a_build_nobody_decided_on_or_not_yet_sent(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        prepared = _prepared(store, tmp_path)
        approved = approve(store, _held(store, tmp_path).id, "olivia")
        with capture_logs() as logs:
            assert approval_line(prepared) is None
            assert approval_line(approved) is None  # waiting for its printer
        assert logs == []
