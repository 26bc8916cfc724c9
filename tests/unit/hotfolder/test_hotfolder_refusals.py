"""What the hot folder never opens: links out of the inbox, linked folders, pipes; and names
the store cannot record, set aside with a note."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from preform_pipeline.hotfolder.files import ERROR_SUFFIX, SetAside, set_aside_unstorable
from preform_pipeline.hotfolder.stability import drop_refusal, entry_refusal


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


class TestLinks:
    """Links out of the inbox are refused unless allowed; links inside are fine."""

    def test_a_link_out_is_refused_naming_its_target(self, tmp_path: Path, inbox: Path) -> None:
        target = tmp_path / "secret.stl"
        target.write_bytes(b"x")
        (inbox / "a.stl").symlink_to(target)
        refusal = drop_refusal(inbox / "a.stl", inbox, follow_symlinks=False)
        assert refusal is not None and str(target) in refusal.reason
        assert "follow_symlinks" in refusal.todo

    def test_a_link_out_is_taken_when_allowed(self, tmp_path: Path, inbox: Path) -> None:
        (tmp_path / "ok.stl").write_bytes(b"x")
        (inbox / "a.stl").symlink_to(tmp_path / "ok.stl")
        assert drop_refusal(inbox / "a.stl", inbox, follow_symlinks=True) is None

    def test_a_link_inside_the_inbox_is_fine(self, inbox: Path) -> None:
        (inbox / "real.stl").write_bytes(b"x")
        (inbox / "a.stl").symlink_to(inbox / "real.stl")
        assert entry_refusal(inbox / "a.stl", inbox, follow_symlinks=False) is None

    def test_a_case_folder_linking_to_itself_is_refused_whole(self, inbox: Path) -> None:
        case = inbox / "case"
        case.mkdir()
        (case / "part.stl").write_bytes(b"x")
        (case / "loop").symlink_to(case)
        refusal = drop_refusal(case, inbox, follow_symlinks=True)
        assert refusal is not None and refusal.is_case
        assert set(refusal.paths) == {case / "part.stl", case / "loop"}


class TestPipes:
    """A named pipe is refused without being opened (POSIX-only: Windows has no mkfifo)."""

    def test_a_pipe_is_refused(self, inbox: Path) -> None:
        os.mkfifo(inbox / "p.stl")
        refusal = drop_refusal(inbox / "p.stl", inbox, follow_symlinks=False)
        assert refusal is not None and "not a regular file" in refusal.reason


class TestUnstorableNames:
    """A name that is not UTF-8 goes to failed/ with a note; other names stay."""

    def test_set_aside(self, inbox: Path) -> None:
        odd = inbox / os.fsdecode(b"caf\xe9.stl")
        odd.write_bytes(b"data")
        failed = inbox / "failed"
        assert set_aside_unstorable(odd, inbox, failed) is SetAside.MOVED
        moved = failed / odd.name
        assert moved.read_bytes() == b"data"
        note = (failed / (odd.name + ERROR_SUFFIX)).read_text(encoding="utf-8")
        assert "not valid UTF-8" in note and "rename it" in note

    def test_a_case_folder_keeps_its_good_files(self, inbox: Path) -> None:
        case = inbox / "case"
        case.mkdir()
        (case / "good.stl").write_bytes(b"g")
        (case / os.fsdecode(b"bad\xff.stl")).write_bytes(b"b")
        assert set_aside_unstorable(case, inbox, inbox / "failed") is SetAside.KEPT
        assert (case / "good.stl").exists()
        assert (inbox / "failed" / "case" / os.fsdecode(b"bad\xff.stl")).exists()


class TestImpostorsAreNotWaitedFor:
    """A PNG named .stl is taken after the quiet period, not after the incomplete timeout."""

    def test_png_named_stl_gets_the_quiet_period(self, inbox: Path) -> None:
        from preform_pipeline.clock import ManualClock
        from preform_pipeline.hotfolder.stability import StabilityTracker, Verdict

        clock = ManualClock()
        tracker = StabilityTracker(clock, quiet_period_s=1.0, incomplete_timeout_s=600.0)
        path = inbox / "photo.stl"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(500))
        assert tracker.check(path).verdict is Verdict.WAIT
        clock.advance(2.0)
        assert tracker.check(path).verdict is Verdict.COMPLETE
