"""Output files claim a free name: an existing file is never overwritten."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from preform_pipeline.executor.outputs import claim_output, release_output
from tests.unit.executor.executor_support import (
    FakePool,
    SimFarm,
    plan_for,
    run,
    write_box,
    write_recipe,
)


class TestClaimOutput:
    """Each claim gets its own file, numbered -2, -3... after the first."""

    def test_a_free_path_is_claimed_as_it_is(self, tmp_path: Path) -> None:
        target = tmp_path / "2026-01-02" / "PP-1.form"
        assert claim_output(target) == target and target.is_file()

    def test_a_taken_path_gets_the_next_free_suffix(self, tmp_path: Path) -> None:
        target = tmp_path / "b.form"
        target.write_bytes(b"yesterday's run")
        (tmp_path / "b-2.form").write_bytes(b"this morning's run")
        assert claim_output(target) == tmp_path / "b-3.form"
        assert target.read_bytes() == b"yesterday's run"

    def test_a_missing_folder_is_made_and_an_existing_one_reused(self, tmp_path: Path) -> None:
        first = claim_output(tmp_path / "a" / "b" / "x.form")
        second = claim_output(tmp_path / "a" / "b" / "x.form")
        assert (first.name, second.name) == ("x.form", "x-2.form")
        assert first.is_file() and second.is_file()

    def test_a_folder_name_taken_by_a_file_is_an_error_and_nothing_is_made(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "day").write_bytes(b"not a folder")
        with pytest.raises(FileExistsError):
            claim_output(tmp_path / "day" / "x.form")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["day"]

    def test_claims_racing_for_one_name_all_get_different_files(self, tmp_path: Path) -> None:
        target = tmp_path / "same.form"
        got: list[Path] = []
        lock = threading.Lock()

        def claim() -> None:
            path = claim_output(target)
            with lock:
                got.append(path)

        threads = [threading.Thread(target=claim) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(got)) == 8

    def test_a_released_claim_that_was_never_written_is_removed(self, tmp_path: Path) -> None:
        path = claim_output(tmp_path / "x.form")
        release_output(path)
        assert not path.exists()
        written = claim_output(tmp_path / "y.form")
        written.write_bytes(b"data")
        release_output(written)
        assert written.read_bytes() == b"data"


class TestSameDayRuns:
    """Two runs of one day with the shipped ``{date}/{build}.form`` template keep both files."""

    def test_the_second_run_writes_beside_the_first_and_reports_its_own_file(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        model = write_box(tmp_path / "models", "part", 20, 20, 10)
        recipe = write_recipe(tmp_path, "steps:\n  - auto_layout\n  - save_form\n")
        farm.add()
        pool = FakePool([s.url for s in farm.servers])
        first = run(plan_for(recipe, [model]), pool, tmp_path / "out").outcomes[0]
        second = run(plan_for(recipe, [model]), pool, tmp_path / "out").outcomes[0]
        [a] = [p for p in first.outputs if p.suffix == ".form"]
        [b] = [p for p in second.outputs if p.suffix == ".form"]
        assert b == a.with_name(f"{a.stem}-2.form")
        assert a.stat().st_size > 0 and b.stat().st_size > 0
