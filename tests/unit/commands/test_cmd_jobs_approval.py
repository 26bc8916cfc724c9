"""``jobs approve`` and ``jobs reject``: a held build decided from the command line."""

from __future__ import annotations

import getpass
import io
from pathlib import Path

from preform_pipeline.cli import run
from preform_pipeline.store import JobState, SqliteJobStore
from tests.unit.web.conftest import held_build


def _jobs(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["jobs", *argv], out, err)
    return code, out.getvalue(), err.getvalue()


class TestJobsApproval:
    """Approve by build key, reject by case id; anything not held is refused."""

    def test_approve_by_key_and_reject_by_case_name_the_user(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(path) as store:
            first = store.get_build(held_build(store, tmp_path, "C-1"))
            second = held_build(store, tmp_path, "C-2")
        code, out, _ = _jobs("approve", first.job_key, "--store", str(path))
        assert code == 0 and f"build {first.job_key} approved" in out
        code, out, _ = _jobs("reject", "case:C-2", "--reason", "wrong shade", "--store",
                             str(path))
        assert code == 0 and "rejected: failed" in out
        with SqliteJobStore(path, create=False) as store:
            assert store.get_build(first.id).state is JobState.WAITING_FOR_PRINTER
            assert store.build_history(second)[-1].reason == (
                f"rejected by {getpass.getuser()} (cli): wrong shade")

    def test_a_build_not_held_is_refused_and_left_alone(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(path) as store:
            build = store.get_build(held_build(store, tmp_path, "C-1"))
        assert _jobs("approve", build.job_key, "--store", str(path))[0] == 0
        code, _, err = _jobs("approve", build.job_key, "--store", str(path))
        assert code == 1 and "no build awaiting approval" in err
