"""Completeness: format rules for STL and 3MF, a quiet period for the rest, an injected clock."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.hotfolder.stability import (
    StabilityTracker,
    Verdict,
    is_ignored_name,
)
from preform_pipeline.hotfolder.testing import tetra_stl_bytes

QUIET = 5.0
STALL = 60.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def tracker(clock: ManualClock) -> StabilityTracker:
    return StabilityTracker(clock, quiet_period_s=QUIET, incomplete_timeout_s=STALL)


def threemf_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("3D/3dmodel.model", "<model/>")
    return buffer.getvalue()


class TestBinaryStl:
    """A binary STL is complete exactly when its size is 84 + 50 x its triangle count."""

    def test_a_partly_written_file_waits(self, tmp_path: Path, tracker: StabilityTracker) -> None:
        data = tetra_stl_bytes(copies=3)
        path = tmp_path / "part.stl"
        for cut in (90, 84 + 50 * 5 + 7, len(data) - 1):
            path.write_bytes(data[:cut])
            check = tracker.check(path)
            assert check.verdict is Verdict.WAIT
            assert not check.settling

    def test_the_whole_file_is_taken_at_once(
        self, tmp_path: Path, tracker: StabilityTracker
    ) -> None:
        path = tmp_path / "part.stl"
        path.write_bytes(tetra_stl_bytes(copies=3))
        check = tracker.check(path)
        assert check.verdict is Verdict.COMPLETE
        assert "84 + 50 x 12 triangles" in check.reason

    def test_a_header_only_file_needs_the_quiet_period(
        self, tmp_path: Path, tracker: StabilityTracker, clock: ManualClock
    ) -> None:
        path = tmp_path / "part.stl"
        path.write_bytes(tetra_stl_bytes()[:80] + b"\x00\x00\x00\x00")
        assert tracker.check(path).verdict is Verdict.WAIT
        clock.advance(QUIET)
        assert tracker.check(path).verdict is Verdict.COMPLETE

    def test_a_file_that_never_completes_is_stalled_after_the_timeout(
        self, tmp_path: Path, tracker: StabilityTracker, clock: ManualClock
    ) -> None:
        path = tmp_path / "part.stl"
        path.write_bytes(tetra_stl_bytes(copies=2)[:150])
        tracker.check(path)
        clock.advance(STALL - 1)
        assert tracker.check(path).verdict is Verdict.WAIT
        clock.advance(1)
        check = tracker.check(path)
        assert check.verdict is Verdict.STALLED
        assert check.takeable
        assert "150 bytes" in check.reason


class TestAsciiStl:
    """An ASCII STL is complete when its last line ends the solid."""

    def test_endsolid_completes_it(self, tmp_path: Path, tracker: StabilityTracker) -> None:
        path = tmp_path / "part.stl"
        body = "solid a\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n" \
               "vertex 0 1 0\nendloop\nendfacet\n"
        path.write_text(body, encoding="ascii")
        assert tracker.check(path).verdict is Verdict.WAIT
        path.write_text(body + "endsolid a\n", encoding="ascii")
        check = tracker.check(path)
        assert check.verdict is Verdict.COMPLETE
        assert "endsolid" in check.reason


class TestThreeMf:
    """A 3MF is complete when its zip directory is intact."""

    def test_a_truncated_zip_waits_and_the_whole_one_is_taken(
        self, tmp_path: Path, tracker: StabilityTracker
    ) -> None:
        data = threemf_bytes()
        path = tmp_path / "part.3mf"
        path.write_bytes(data[: len(data) - 10])
        assert tracker.check(path).verdict is Verdict.WAIT
        path.write_bytes(data)
        assert tracker.check(path).verdict is Verdict.COMPLETE


class TestQuietPeriod:
    """Files without a format rule are taken after size and mtime stay put for the period."""

    def test_an_obj_is_taken_only_after_the_quiet_period(
        self, tmp_path: Path, tracker: StabilityTracker, clock: ManualClock
    ) -> None:
        path = tmp_path / "part.obj"
        path.write_text("v 0 0 0\n", encoding="ascii")
        first = tracker.check(path)
        assert first.verdict is Verdict.WAIT and first.settling
        clock.advance(QUIET - 0.1)
        assert tracker.check(path).verdict is Verdict.WAIT
        clock.advance(0.1)
        assert tracker.check(path).verdict is Verdict.COMPLETE

    def test_a_change_restarts_the_quiet_period(
        self, tmp_path: Path, tracker: StabilityTracker, clock: ManualClock
    ) -> None:
        path = tmp_path / "part.obj"
        path.write_text("v 0 0 0\n", encoding="ascii")
        tracker.check(path)
        clock.advance(QUIET - 1)
        path.write_text("v 0 0 0\nv 1 0 0\n", encoding="ascii")
        assert tracker.check(path).verdict is Verdict.WAIT
        clock.advance(QUIET - 1)
        assert tracker.check(path).verdict is Verdict.WAIT
        clock.advance(1)
        assert tracker.check(path).verdict is Verdict.COMPLETE


class TestPollingConfirmation:
    """In polling mode a complete STL must also look the same twice in a row."""

    def test_the_second_identical_look_takes_it(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        tracker = StabilityTracker(clock, quiet_period_s=QUIET, incomplete_timeout_s=STALL,
                                   confirm_unchanged=True)
        path = tmp_path / "part.stl"
        path.write_bytes(tetra_stl_bytes())
        first = tracker.check(path)
        assert first.verdict is Verdict.WAIT and first.settling
        clock.advance(2)
        assert tracker.check(path).verdict is Verdict.COMPLETE


class TestIgnoredAndGone:
    """Temporary and hidden files are never taken; vanished files say so."""

    @pytest.mark.parametrize(
        "name", [".hidden.stl", "part.stl.tmp", "part.stl.part", "part.stl~", "~lock.stl",
                 "copy.crdownload"],
    )
    def test_temporary_names_are_ignored(self, name: str) -> None:
        assert is_ignored_name(name)

    @pytest.mark.parametrize("name", ["part.stl", "C-1042", "upper.3mf", "a.json"])
    def test_ordinary_names_are_not(self, name: str) -> None:
        assert not is_ignored_name(name)

    def test_a_temporary_file_gets_the_ignore_verdict(
        self, tmp_path: Path, tracker: StabilityTracker
    ) -> None:
        path = tmp_path / "part.stl.part"
        path.write_bytes(tetra_stl_bytes())
        assert tracker.check(path).verdict is Verdict.IGNORE

    def test_a_vanished_file_is_gone(self, tmp_path: Path, tracker: StabilityTracker) -> None:
        path = tmp_path / "part.obj"
        path.write_text("v 0 0 0\n", encoding="ascii")
        tracker.check(path)
        path.unlink()
        assert tracker.check(path).verdict is Verdict.GONE
        assert len(tracker) == 0
