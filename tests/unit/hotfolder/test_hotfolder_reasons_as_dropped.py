"""Every failure reason that quotes a file names it as it was dropped, never by its working
path under processing/ (a folder gone once the file is settled): a build failing on the
server, a case dropped by the runner, a batch stopped by a bug; in the job store, the build
and the note beside the file in failed/."""

from __future__ import annotations

import threading
from pathlib import Path

from daemon_support import Script, ScriptedRunner, make_daemon, run_daemon_once

from preform_pipeline.executor import RunResult
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from preform_pipeline.plan.builds import BuildPlan
from preform_pipeline.store import JobState, SqliteJobStore


def _drop_cases(tmp_path: Path) -> None:
    """Case C-1 (upper and lower) and case C-2 (upper), each a case folder in the inbox."""
    for n, (case, name) in enumerate((("C-1", "upper"), ("C-1", "lower"), ("C-2", "upper"))):
        folder = tmp_path / "inbox" / case
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.stl").write_bytes(tetra_stl_bytes(n))


def _note(tmp_path: Path, rel: str) -> str:
    return (tmp_path / "inbox" / "failed" / f"{rel}.error.txt").read_text(encoding="utf-8")


class TestABuildFailedOnTheServer:
    """The server's reason quotes the model it could not read by the path it was given."""

    def test_every_case_of_the_build_names_the_file_as_dropped(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _drop_cases(tmp_path)
        quoted: list[str] = []

        def fail(build: BuildPlan) -> str:
            model = next(m for m in build.models if m.case_id == "C-1"
                         and m.path.name == "lower.stl")
            quoted.append(f"{model.case_id}/{model.path.name}")
            return f"step import_models: the server could not read {model.path}: no triangles"

        script = Script(fleet_dir=tmp_path / "fleet", fail=fail)
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        assert quoted == ["C-1/lower.stl"]
        reason = "step import_models: the server could not read C-1/lower.stl: no triangles"
        (build,) = store.list_builds()
        assert build.state is JobState.FAILED and build.reason == reason
        jobs = store.list_jobs()
        assert [(j.state, j.reason) for j in jobs] == [(JobState.FAILED, reason)] * 3
        for rel in ("C-1/upper.stl", "C-1/lower.stl", "C-2/upper.stl"):
            # The note still has the run's outcome: the server it failed on.
            assert _note(tmp_path, rel).startswith(
                f"What failed: {reason}\nWhere: preparing build {build.job_key} on server-1\n"
            ), rel


class TestACaseDroppedByTheRunner:
    """A model a per-model step failed on leaves its build with a reason naming it."""

    def test_the_dropped_case_names_its_file_as_dropped(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _drop_cases(tmp_path)

        def drop(build: BuildPlan) -> list[tuple[Path, str]]:
            return [(m.path, f"case C-2: model {m.path}: step label: LABEL_FAILED")
                    for m in build.models if m.case_id == "C-2"]

        script = Script(fleet_dir=tmp_path / "fleet", drop=drop)
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        reason = "case C-2: model C-2/upper.stl: step label: LABEL_FAILED"
        (dropped,) = [j for j in store.list_jobs() if j.case_id == "C-2"]
        assert dropped.state is JobState.FAILED and dropped.reason == reason
        assert _note(tmp_path, "C-2/upper.stl").startswith(f"What failed: {reason}\n")


class _RunnerThatCannotOpen(ScriptedRunner):
    """An error nobody foresaw, quoting the first model's working path, as an OSError does."""

    def run(self) -> RunResult:
        path = self.plan.builds[0].models[0].path
        raise FileNotFoundError(2, "No such file or directory", str(path))


class TestABatchStoppedByABug:
    """The error's text quotes a working path: the reason names the file by its name (one
    reason for the batch's jobs, written without reading them: the store may be away)."""

    def test_the_crash_reason_names_the_file_by_its_name(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        folder = tmp_path / "inbox" / "C-9"
        folder.mkdir(parents=True)
        (folder / "upper.stl").write_bytes(tetra_stl_bytes(1))
        script = Script(fleet_dir=tmp_path / "fleet")
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                             runner=_RunnerThatCannotOpen)
        once = threading.Thread(target=daemon.run, kwargs={"once": True}, daemon=True)
        once.start()
        once.join(60)
        assert not once.is_alive(), "the once-run never ended"
        reason = ("an internal error stopped its batch (FileNotFoundError: [Errno 2] No such "
                  "file or directory: 'upper.stl')")
        (job,) = store.list_jobs()
        assert job.state is JobState.FAILED and job.reason == reason
        assert _note(tmp_path, "C-9/upper.stl").startswith(f"What failed: {reason}\n")
