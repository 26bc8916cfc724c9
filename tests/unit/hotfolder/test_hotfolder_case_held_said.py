"""A case held as it is taken is said on the console in one line a person can act on
(daemon ``_say_held``): which case, why (its bad files, in the words of each file's note:
plan/held.py ``why_held``), where its files are now and what helps. Until session 40
``watch --once`` said only ``stopped after 0 batches``. The real daemon in-process, real
folders and a real SQLite store; the runner is scripted (nothing of the case is run)."""

from __future__ import annotations

import os
from pathlib import Path

from daemon_support import Script, make_daemon, names, run_daemon_once

from preform_pipeline.hotfolder.files import ERROR_SUFFIX
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from preform_pipeline.store import SqliteJobStore


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
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"), recipe)
            said: list[str] = []
            daemon.notice = said.append
            run_daemon_once(daemon)
        failed = tmp_path / "inbox" / "failed"
        assert names(failed) == sorted(f"C-9/{n}{s}" for n in ("lower.step", "upper.stl")
                                       for s in ("", ERROR_SUFFIX))
        held = [line for line in said if "is held" in line]
        assert held == [
            f"{case} is held (lower.step cannot be prepared, and a case prints whole or not "
            f"at all): its files are in {failed / 'C-9'}, each with a note saying why; fix or "
            "replace the file named (as said of it), or take it out of the case; then the "
            "whole case goes on: move the case folder back into the inbox"]
        assert daemon.batches_run == 0
