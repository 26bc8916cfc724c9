"""``run`` with its output folder on a real disk that is full (a small tmpfs): the build's
reason says the disk is full and what helps, the log file's refusal is one warning, and no
file is left half-written under its own name."""

from __future__ import annotations

from pathlib import Path

from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from tests.command_line import in_a_process
from tests.small_disk import SmallDisk


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
        files = [p for p in out.rglob("*") if p.is_file()]
        assert [p.parent.name for p in files] == ["logs"]  # the log, empty or whole lines
