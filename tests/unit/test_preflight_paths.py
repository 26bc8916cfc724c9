"""Start-up checks name every unusable path; the folder monitor reports a vanished inbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import ConfigError, UnusablePathError
from preform_pipeline.preflight import (
    FolderMonitor,
    PathCheck,
    check_paths,
    file_problem,
    folder_problem,
    watch_paths,
)


class TestFolders:
    """A folder to write in: present, or creatable; never a file."""

    def test_an_existing_folder_is_fine(self, tmp_path: Path) -> None:
        assert folder_problem(tmp_path) is None

    def test_a_missing_folder_with_a_usable_parent_is_fine(self, tmp_path: Path) -> None:
        assert folder_problem(tmp_path / "a" / "b") is None

    def test_a_file_is_named_as_a_file(self, tmp_path: Path) -> None:
        (tmp_path / "inbox").write_text("x")
        assert folder_problem(tmp_path / "inbox") == "is a file, not a folder"

    def test_a_parent_that_is_a_file_cannot_hold_the_folder(self, tmp_path: Path) -> None:
        (tmp_path / "f").write_text("x")
        problem = folder_problem(tmp_path / "f" / "inbox" / "failed")
        assert problem == f"cannot be created: {tmp_path / 'f'} is a file, not a folder"


class TestStoreFile:
    """The store path names a database file, never a folder."""

    def test_a_folder_is_called_a_folder(self, tmp_path: Path) -> None:
        problem = file_problem(tmp_path)
        assert problem is not None and problem.startswith("is a folder, not a file")
        assert str(tmp_path / "jobs.sqlite3") in problem

    def test_a_new_file_in_an_existing_folder_is_fine(self, tmp_path: Path) -> None:
        assert file_problem(tmp_path / "jobs.sqlite3") is None


class TestCheckPaths:
    """Every unusable path is named at once, each only once."""

    def test_every_problem_is_listed(self, tmp_path: Path) -> None:
        (tmp_path / "inbox").write_text("not a folder")
        (tmp_path / "store").mkdir()
        checks = watch_paths(
            [(tmp_path / "inbox", [tmp_path / "inbox" / "done"])],
            store=tmp_path / "store", output_root=tmp_path / "out",
        )
        with pytest.raises(UnusablePathError) as caught:
            check_paths(checks)
        roles = [(role, path) for role, path, _ in caught.value.problems]
        # The outcome folder inside the bad inbox is not reported a second time.
        assert roles == [("inbox", tmp_path / "inbox"),
                         ("job store (store.path)", tmp_path / "store")]
        assert "is a file, not a folder" in str(caught.value)

    def test_usable_paths_pass(self, tmp_path: Path) -> None:
        check_paths([PathCheck(tmp_path / "out", "folder", "output folder")])

    def test_a_home_of_no_user_is_named_by_its_role(self) -> None:
        # The callers expand their paths first; one that does not still gets the one rule.
        with pytest.raises(ConfigError) as caught:
            check_paths([PathCheck(Path("~nosuchuser38/logs"), "folder", "log folder")])
        assert caught.value.message == (
            "log folder: '~nosuchuser38/logs': no user named 'nosuchuser38' on this machine")


class TestFolderMonitor:
    """A folder that disappears is logged once as an error, and again when it is back."""

    def test_disappear_and_return(self, tmp_path: Path) -> None:
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        monitor = FolderMonitor([inbox])
        with capture_logs() as logs:
            assert monitor.check() == {}
            inbox.rmdir()
            assert inbox in monitor.check()
            assert inbox in monitor.check()
            inbox.mkdir()
            assert monitor.check() == {}
        events = [(e["event"], e["log_level"]) for e in logs]
        assert events == [("folder_unusable", "error"), ("folder_usable_again", "warning")]
