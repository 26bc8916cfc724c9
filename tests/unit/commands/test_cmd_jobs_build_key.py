"""``jobs show`` of a build's key: the key the daemon's console, the dashboard and ``verify``
name (found in session 36's trial, where it answered "no job with key")."""

from __future__ import annotations

import io
import json
from pathlib import Path

from preform_pipeline.cli import run
from preform_pipeline.store import JobState, SqliteJobStore


def _jobs(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["jobs", *argv], out, err)
    return code, out.getvalue(), err.getvalue()


def _build_of_two_cases(path: Path) -> tuple[str, list[int]]:
    """A real SQLite store with one build holding case C-1's and case C-2's jobs."""
    with SqliteJobStore(path) as store:
        jobs = [store.create_job(recipe="crowns", source_path=path.parent / f"{case}.stl",
                                 case_id=case, state=JobState.PROCESSING)
                for case in ("C-1", "C-2")]
        build = store.create_build(recipe="crowns", job_ids=[j.id for j in jobs])
        assert build.job_key not in {j.job_key for j in jobs}  # a key of its own
        return build.job_key, [j.id for j in jobs]


class TestABuildKey:
    """A build's key names every job of the build; a key nothing has is still refused."""

    def test_show_lists_every_job_of_the_build(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        key, ids = _build_of_two_cases(path)
        code, out, err = _jobs("show", key.lower(), "--store", str(path), "--format", "json")
        assert code == 0, err
        shown = json.loads(out)["jobs"]
        assert [j["job"]["id"] for j in shown] == ids
        assert {j["build"]["job_key"] for j in shown} == {key}
        code, out, err = _jobs("show", key, "--store", str(path))
        assert code == 0, err
        assert [line.split()[:2] for line in out.splitlines() if line.startswith("job ")] == [
            ["job", str(i)] for i in ids]

    def test_a_key_of_no_job_and_no_build_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        _build_of_two_cases(path)
        code, out, err = _jobs("show", "PP-0000000000", "--store", str(path))
        assert (code, out) == (1, "")
        assert err.startswith("error: no job with key PP-0000000000")
