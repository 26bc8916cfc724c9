"""Moves never overwrite, pick free names, and survive crossing file systems."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from preform_pipeline.hotfolder.files import (
    MAX_NAME_BYTES,
    NAME_CUT_MARK,
    fitting_rel,
    free_path,
    move_file,
    prune_empty_tree,
    remove_empty_dirs,
    write_text_atomic,
)


class TestFreePath:
    """A clash gets a numbered suffix; a note of an old file counts as a clash."""

    def test_a_free_name_is_kept(self, tmp_path: Path) -> None:
        assert free_path(tmp_path / "part.stl") == tmp_path / "part.stl"

    def test_taken_names_get_the_next_number(self, tmp_path: Path) -> None:
        (tmp_path / "part.stl").write_bytes(b"1")
        (tmp_path / "part (2).stl").write_bytes(b"2")
        assert free_path(tmp_path / "part.stl") == tmp_path / "part (3).stl"

    def test_an_orphaned_note_makes_the_name_taken(self, tmp_path: Path) -> None:
        (tmp_path / "part.stl.error.txt").write_text("old", encoding="utf-8")
        assert free_path(tmp_path / "part.stl") == tmp_path / "part (2).stl"


class TestMoveFile:
    """Atomic rename on one file system; never onto an existing file."""

    def test_the_file_moves_and_folders_are_made(self, tmp_path: Path) -> None:
        src = tmp_path / "a.stl"
        src.write_bytes(b"data")
        dst = tmp_path / "x" / "y" / "a.stl"
        move_file(src, dst)
        assert dst.read_bytes() == b"data"
        assert not src.exists()

    def test_an_existing_target_is_never_overwritten(self, tmp_path: Path) -> None:
        src, dst = tmp_path / "a.stl", tmp_path / "b.stl"
        src.write_bytes(b"new")
        dst.write_bytes(b"old")
        with pytest.raises(FileExistsError):
            move_file(src, dst)
        assert dst.read_bytes() == b"old"
        assert src.read_bytes() == b"new"

    def test_a_move_to_another_file_system_copies_then_removes(self, tmp_path: Path) -> None:
        # Linux-specific (unavoidably: it needs a second file system): /dev/shm is a tmpfs,
        # apart from the disk that holds tmp_path.
        with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
            assert os.stat(other).st_dev != os.stat(tmp_path).st_dev, "need two file systems"
            src = tmp_path / "a.stl"
            src.write_bytes(b"x" * 100_000)
            dst = Path(other) / "done" / "a.stl"
            move_file(src, dst)
            assert dst.read_bytes() == b"x" * 100_000
            assert not src.exists()
            assert [p.name for p in dst.parent.iterdir()] == ["a.stl"]  # no .partial left

    def test_a_link_crosses_file_systems_as_a_link_its_target_unread(
        self, tmp_path: Path
    ) -> None:
        # A link dropped in the inbox may point anywhere: it goes to failed/ as a link.
        with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
            assert os.stat(other).st_dev != os.stat(tmp_path).st_dev, "need two file systems"
            secret = tmp_path / "secret.txt"
            secret.write_bytes(b"not for failed/")
            os.chmod(secret, 0o000)
            link = tmp_path / "inbox" / "part.stl"
            link.parent.mkdir()
            link.symlink_to(secret)
            dst = Path(other) / "failed" / "part.stl"
            before = os.stat(secret).st_atime_ns
            move_file(link, dst)
            assert dst.is_symlink() and os.readlink(dst) == str(secret)
            assert not link.exists() and not link.is_symlink()
            assert [p.name for p in dst.parent.iterdir()] == ["part.stl"]
            assert os.stat(secret).st_atime_ns == before


class TestFolders:
    """Only empty folders are removed, and only below the stop folder."""

    def test_empty_parents_are_removed_up_to_stop(self, tmp_path: Path) -> None:
        deep = tmp_path / "processing" / "KEY" / "sub"
        deep.mkdir(parents=True)
        remove_empty_dirs(deep, tmp_path / "processing")
        assert (tmp_path / "processing").is_dir()
        assert not (tmp_path / "processing" / "KEY").exists()

    def test_a_folder_with_files_stays(self, tmp_path: Path) -> None:
        case = tmp_path / "C-1"
        (case / "empty").mkdir(parents=True)
        (case / "keep.txt").write_text("x", encoding="utf-8")
        prune_empty_tree(case)
        assert (case / "keep.txt").exists()
        assert not (case / "empty").exists()

    def test_an_emptied_case_folder_disappears(self, tmp_path: Path) -> None:
        case = tmp_path / "C-1"
        (case / "a" / "b").mkdir(parents=True)
        prune_empty_tree(case)
        assert not case.exists()


class TestWriteTextAtomic:
    """Notes are written whole."""

    def test_text_is_written_and_no_temporary_remains(self, tmp_path: Path) -> None:
        path = tmp_path / "n" / "part.stl.error.txt"
        write_text_atomic(path, "What failed: x\n")
        assert path.read_text(encoding="utf-8") == "What failed: x\n"
        assert [p.name for p in path.parent.iterdir()] == ["part.stl.error.txt"]


class TestFittingRel:
    """A path a store took before long names were refused gets parts that fit, and only
    the parts that need it are cut."""

    def test_names_that_fit_are_kept(self) -> None:
        rel = "C-1/" + "a" * (MAX_NAME_BYTES - 4) + ".stl"
        assert fitting_rel(rel) == rel

    def test_a_long_file_keeps_its_suffix_and_is_marked(self) -> None:
        cut = fitting_rel("C-1/" + "a" * 250 + ".stl")
        assert cut == "C-1/" + "a" * (MAX_NAME_BYTES - 5) + NAME_CUT_MARK + ".stl"

    def test_a_long_case_folder_is_cut_too(self) -> None:
        cut = fitting_rel("b" * 230 + "/upper.stl")
        assert cut == "b" * (MAX_NAME_BYTES - 1) + NAME_CUT_MARK + "/upper.stl"

    def test_a_letter_is_never_cut_in_two(self) -> None:
        cut = fitting_rel("ü" * 120 + ".obj")
        assert cut == "ü" * 97 + NAME_CUT_MARK + ".obj"
        assert len(cut.encode()) <= MAX_NAME_BYTES

    def test_a_dot_far_from_the_end_is_no_suffix(self) -> None:
        cut = fitting_rel("v1." + "c" * 240)
        assert cut == ("v1." + "c" * 240)[:MAX_NAME_BYTES - 1] + NAME_CUT_MARK
