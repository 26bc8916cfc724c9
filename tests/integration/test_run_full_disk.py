"""``run`` with its output folder on a real disk that is full (a small tmpfs), or that fills
during the build: the build's reason says the disk is full and what helps, the log file's
refusal is one warning, no traceback, and no file is left half-written under its own name."""

from __future__ import annotations

import re
from pathlib import Path

from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from tests.command_line import in_a_process
from tests.small_disk import SmallDisk, mounted_small_disk


class TestTheOutputDiskFull:
    """The server cannot save the build's .form: the build fails saying why and what helps."""

    def test_the_reason_says_the_disk_is_full_and_nothing_half_written_is_left(
        self, small_disk: SmallDisk, tmp_path: Path
    ) -> None:
        model = tmp_path / "part.stl"
        model.write_bytes(tetra_stl_bytes(0))
        out = small_disk.root / "out"
        small_disk.fill()

        recipe = write_recipe(tmp_path, printer=None, extra_steps=["save_form"])
        done = in_a_process(tmp_path, "run", str(recipe), str(model), "--output", str(out))

        assert done.returncode == 1, done.stderr
        (failed,) = [line for line in done.stdout.splitlines() if " failed on " in line]
        assert failed.endswith(
            f"(the output folder {out}: the disk is full: free some space on it, then try "
            "again) (1/1 build done)")
        # The run's log file is on that disk too: said once, no traceback.
        assert done.stderr.count("log_file_unwritable") == 1
        assert "Traceback" not in done.stderr and "Logging error" not in done.stderr
        assert done.stderr.splitlines()[-1].startswith(f"error: {out}/reports/")
        # At most the log, of whole lines: one not a byte reached is not left (session 42:
        # each try on the full disk left an empty log file behind).
        files = [p for p in out.rglob("*") if p.is_file()]
        assert [p.parent.name for p in files] in ([], ["logs"])
        assert [p for p in files if p.stat().st_size == 0] == []


class TestTheOutputDiskFillsDuringTheBuild:
    """The server saved the .form, and placing it (a write of the run's own) is refused for
    want of room: the build fails saying the disk is full and what helps, naming the file;
    the run ends with its one exit line, no traceback, the model as it was, nothing of the
    save left on the disk."""

    def test_the_refused_placing_says_the_disk_is_full(self, tmp_path: Path) -> None:
        model = tmp_path / "part.stl"
        model.write_bytes(tetra_stl_bytes(0))
        before = model.read_bytes()
        recipe = write_recipe(tmp_path, printer=None, extra_steps=["save_form"])
        # A disk of 8 files: its root, the run's log and its folder, the day's folder, the
        # save's staging folders and owner file and the server's .form use them all, so the
        # .form's name in the day's folder (a hard link: a file on tmpfs) is refused.
        with mounted_small_disk(tmp_path / "out", inodes=8) as disk:
            out = disk.root
            done = in_a_process(tmp_path, "run", str(recipe), str(model), "--output", str(out))

            assert done.returncode == 1, done.stderr
            assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
            (failed,) = [line for line in done.stdout.splitlines() if " failed on " in line]
            assert re.fullmatch(
                rf"\[hot-001\] failed on server-1 in [0-9.]+ s: {re.escape(str(out))}/[^/]+/"
                r"hot-001\.form: cannot move the saved file into place: No space left on "
                r"device \(the disk is full: free some space on it, then try again\) "
                r"\(1/1 build done\)", failed), failed
            assert done.stdout.splitlines()[-1] == (
                "exit 1: 1 build failed, 0 of 1 build succeeded")
            assert model.read_bytes() == before
            assert not [p for p in out.rglob("*") if p.suffix == ".form"]
            assert not (out / ".preform-staging").exists()
