"""A node's local copies of dropped files removed while a server imports them (another
process cleaning the cache folder): each copy is made again and imported, and the build's
cases go on; a copy that cannot be made again (the shared file changed since it was taken)
fails that build with the copy's own reason. The real executor on an in-process simulator,
the daemon's own local copies; read in the inbox's folders, the store and the log."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import Script, ScriptedRunner, drop, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.executor import Reporter, Runner, RunOptions, RunResult
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from preform_pipeline.plan.builds import Plan
from preform_pipeline.store import JobState, SqliteJobStore
from tests.unit.executor.executor_support import FakePool, ScriptedFaults, SimFarm


class _RealRunner(ScriptedRunner):
    """The executor itself (:class:`Runner`) on the pool the daemon hands it."""

    def __init__(self, script: Script, plan: Plan, options: RunOptions,
                 reporter: Reporter) -> None:
        super().__init__(script, plan, options, reporter)
        self.runner: Runner | None = None

    def run(self) -> RunResult:
        self.runner = Runner(self.plan, self.pool, options=self.options, reporter=self.reporter)
        return self.runner.run()

    def cancel(self) -> None:
        if self.runner is not None:
            self.runner.cancel()


class _CopiesRemovedAtTheFirstImport(ScriptedFaults):
    """The server's request seam: as the first import request arrives, before the server
    reads the file it names, the node's cache folder is emptied (the copy being imported
    and the one imported next); with ``change_shared``, the shared ``b.stl`` in
    processing/ is changed at that moment too."""

    def __init__(self, cache: Path, processing: Path) -> None:
        super().__init__()
        self.cache = cache
        self.processing = processing
        self.change_shared = False
        self.removed: list[str] = []

    def on_request(self, method: str, path: str) -> None:
        if method != "POST" or not path.endswith("/import-model/") or self.removed:
            return
        for copy in sorted(self.cache.glob("*/*.stl")):
            shutil.rmtree(copy.parent)
            self.removed.append(copy.name)
        if self.change_shared:
            (shared,) = self.processing.glob("*/b.stl")
            shared.write_bytes(tetra_stl_bytes(99))


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[SimFarm, _CopiesRemovedAtTheFirstImport]]:
    farm = SimFarm(tmp_path / "sim")
    faults = _CopiesRemovedAtTheFirstImport(tmp_path / "copies",
                                          tmp_path / "inbox" / "processing")
    farm.add(faults)
    yield farm, faults
    farm.close()


def _run(tmp_path: Path, store: SqliteJobStore, farm: SimFarm) -> None:
    pool = FakePool([farm.servers[0].url])
    run_daemon_once(make_daemon(
        tmp_path, store, Script(fleet_dir=farm.fleet_dir), write_recipe(tmp_path, printer=None),
        runner=_RealRunner, pool=lambda: pool,
        hot={"local_copies": True, "local_copy_dir": tmp_path / "copies"}))


class TestACopyRemovedWhileTheServerImportsIt:
    """The copy is made again from the shared file and imported: both cases are prepared
    in their one build, and both files settle in done/."""

    def test_both_cases_are_prepared_and_settle_in_done(
        self, tmp_path: Path, store: SqliteJobStore,
        simulator: tuple[SimFarm, _CopiesRemovedAtTheFirstImport],
    ) -> None:
        farm, faults = simulator
        drop(tmp_path, "a.stl", tetra_stl_bytes(1))
        drop(tmp_path, "b.stl", tetra_stl_bytes(2))
        with capture_logs() as logs:
            _run(tmp_path, store, farm)
        assert sorted(faults.removed) == ["a.stl", "b.stl"]  # the fault did happen
        (build,) = store.list_builds()
        assert (build.state, build.reason) == (JobState.DONE, "prepared")
        assert {j.source_path.name: j.state for j in store.list_jobs()} == {
            "a.stl": JobState.DONE, "b.stl": JobState.DONE}
        assert names(tmp_path / "inbox" / "failed") == []
        assert "b.stl" in names(tmp_path / "inbox" / "done")
        # The copy under import is asked for again after the server's refusal; the other
        # is made again before its own import.
        (gone,) = [e for e in logs if e["event"] == "import_copy_gone"]
        remade = [Path(e["source"]).name for e in logs if e["event"] == "local_copy_remade"]
        assert sorted(remade) == ["a.stl", "b.stl"]
        assert "FILE_NOT_FOUND" in gone["error"] or "no file" in gone["error"]
        assert names(tmp_path / "copies") == []  # released after the batch, as always


class TestACopyThatCannotBeMadeAgain:
    """The shared file changed after it was taken: its copy is not made again from other
    content, and the build fails with the copy's reason, not the server's FILE_NOT_FOUND."""

    def test_the_build_fails_saying_the_file_changed(
        self, tmp_path: Path, store: SqliteJobStore,
        simulator: tuple[SimFarm, _CopiesRemovedAtTheFirstImport],
    ) -> None:
        farm, faults = simulator
        drop(tmp_path, "a.stl", tetra_stl_bytes(1))
        drop(tmp_path, "b.stl", tetra_stl_bytes(2))
        faults.change_shared = True
        with capture_logs() as logs:
            _run(tmp_path, store, farm)
        assert sorted(faults.removed) == ["a.stl", "b.stl"]
        (build,) = store.list_builds()
        assert build.state is JobState.FAILED
        assert "its content changed after it was taken" in str(build.reason)
        assert "FILE_NOT_FOUND" not in str(build.reason)
        remade = [Path(e["source"]).name for e in logs if e["event"] == "local_copy_remade"]
        assert remade == ["a.stl"]  # b.stl's copy is not made of the changed content
        assert names(tmp_path / "copies") == []
