"""Claimed output files: made in new folders, with ordinary file permissions, and a clear
error when no free name is left."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.executor import outputs
from preform_pipeline.executor.outputs import claim_output, release_output


@pytest.fixture
def umask() -> Iterator[int]:
    """The process umask, known for the test (022, as on most systems) and restored after."""
    previous = os.umask(0o022)
    yield 0o022
    os.umask(previous)


class TestClaimedFiles:
    """A claimed output is an ordinary file in the folder its template names."""

    def test_missing_folders_of_any_depth_are_made(self, tmp_path: Path) -> None:
        target = tmp_path / "out" / "2026-01-02" / "case-7" / "PP-1.form"
        assert claim_output(target) == target
        assert target.is_file() and target.stat().st_size == 0

    def test_a_claimed_file_is_readable_by_all_and_executable_by_none(
        self, tmp_path: Path, umask: int
    ) -> None:
        path = claim_output(tmp_path / "PP-1.form")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644 & ~umask

    def test_no_free_name_left_is_an_error_naming_the_path_and_the_limit(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(outputs, "MAX_OUTPUT_SUFFIX", 3)
        target = tmp_path / "b.form"
        assert [claim_output(target).name for _ in range(2)] == ["b.form", "b-2.form"]
        with pytest.raises(FileExistsError) as caught:
            claim_output(target)
        assert str(caught.value) == f"{target}: no free name up to -3"


class TestRelease:
    """Releasing gives back an unwritten claim and never fails the build."""

    def test_a_claim_already_gone_is_released_quietly(self, tmp_path: Path) -> None:
        path = claim_output(tmp_path / "x.form")
        path.unlink()
        release_output(path)
        assert not path.exists()
