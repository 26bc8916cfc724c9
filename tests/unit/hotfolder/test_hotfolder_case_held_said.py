"""A case held as it is taken is said on the console in one line a person can act on
(daemon ``_say_held``): which case, why (its bad files, in the words of each file's note:
plan/held.py ``why_held``), where its files are now and what helps. Until session 40
``watch --once`` said only ``stopped after 0 batches``; until session 41 it said nothing of
a loose file refused so (its note and the ``case_held`` event did). The real daemon
in-process, real folders and a real SQLite store; the runner is scripted (nothing of the
case is run)."""

from __future__ import annotations

import os
from pathlib import Path

from daemon_support import Script, make_daemon, names, run_daemon_once

from preform_pipeline.geometry.bounded import DEFAULT_MAX_MODEL_FILE_BYTES, TOO_LARGE_HINT
from preform_pipeline.hotfolder.files import ERROR_SUFFIX
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from preform_pipeline.store import SqliteJobStore


def _said_by_a_pass(tmp_path: Path, recipe: Path) -> list[str]:
    """The lines one pass of the daemon over ``tmp_path/inbox`` said (``watch --once``
    prints each); it batched nothing."""
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
        daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"), recipe)
        said: list[str] = []
        daemon.notice = said.append
        run_daemon_once(daemon)
    assert daemon.batches_run == 0
    return said


class TestAHeldCaseIsSaidOnce:
    """One line, naming the case folder, the file that held it, failed/ and what helps."""

    def test_a_part_that_cannot_be_prepared(self, tmp_path: Path) -> None:
        recipe = write_recipe(tmp_path, printer=None)
        case = tmp_path / "inbox" / "C-9"
        case.mkdir(parents=True)
        (case / "upper.stl").write_bytes(tetra_stl_bytes(1))
        (case / "lower.step").write_bytes(b"ISO-10303-21;")
        for part in case.iterdir():
            os.utime(part, (1e9, 1e9))  # long since written: taken at once
        said = _said_by_a_pass(tmp_path, recipe)
        failed = tmp_path / "inbox" / "failed"
        assert names(failed) == sorted(f"C-9/{n}{s}" for n in ("lower.step", "upper.stl")
                                       for s in ("", ERROR_SUFFIX))
        held = [line for line in said if "is held" in line]
        assert held == [
            f"{case} is held (lower.step cannot be prepared, and a case prints whole or not "
            f"at all): its files are in {failed / 'C-9'}, each with a note saying why; fix or "
            "replace the file named (as said of it), or take it out of the case; then the "
            "whole case goes on: move the case folder back into the inbox"]

    def test_a_loose_file_that_cannot_be_prepared(self, tmp_path: Path) -> None:
        """A file dropped straight into the inbox is a case of its own: its line says its own
        reason and what helps (its note's words), and where it is now."""
        recipe = write_recipe(tmp_path, printer=None)
        big = tmp_path / "inbox" / "big.stl"
        big.parent.mkdir(parents=True)
        triangles = 11_000_000  # a complete binary STL by its size, over the limit
        assert 84 + 50 * triangles > DEFAULT_MAX_MODEL_FILE_BYTES
        with big.open("wb") as handle:  # sparse: no disk, refused by its size unread
            handle.write(bytes(80) + triangles.to_bytes(4, "little"))
            handle.truncate(84 + 50 * triangles)
        os.utime(big, (1e9, 1e9))
        said = _said_by_a_pass(tmp_path, recipe)
        failed = tmp_path / "inbox" / "failed"
        assert names(failed) == ["big.stl", f"big.stl{ERROR_SUFFIX}"]
        assert [line for line in said if "big.stl" in line] == [
            f"{big} cannot be prepared (big.stl: file is 524.5 MiB, over the 512.0 MiB limit "
            f"for model files): it is in {failed / 'big.stl'}, with a note saying why; "
            f"{TOO_LARGE_HINT}, then drop it again"]
