"""A case with a part that cannot be prepared is held whole, by ``run`` and ``watch`` alike,
and goes on whole once the part is fixed, nothing of it printed twice.

Session 38 left a case split by the kind of its bad file: ``C-1042/lower.stl`` corrupt (or
too large for the platform) was rejected alone and ``upper.stl`` printed without it.
Real subprocesses (the command line, its pool of simulator processes), real folders, SQLite
stores; what printed is read from the simulated fleet's jobs. The ``jobs`` commands that look
at the store afterwards run in the test's process (:class:`~tests.command_line.InProcess`):
what they show is tested here, not a process's start.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from preform_pipeline.hotfolder.files import HELD_TODO
from preform_pipeline.hotfolder.testing import write_hotfolder_settings, write_recipe
from preform_pipeline.plan.held import HELD_HINT
from tests.command_line import InProcess
from tests.e2e.run_e2e_support import (
    command,
    fleet_jobs,
    printed_name,
    run_cli,
    watch_once,
    write_box,
    write_settings,
)

#: What every file of a held case C-1 is told, but its bad one.
HELD = "held with its case C-1: lower.stl cannot be prepared, and a case prints whole or not at all"
CORRUPT = "this is a text file that is not an STL (an ASCII STL starts with 'solid')"


def _inbox(tmp_path: Path) -> Path:
    """Case C-1 with a corrupt lower arch, case C-2 with a lower arch too large for the
    platform, and a good loose file."""
    inbox = tmp_path / "inbox"
    write_box(inbox / "C-1" / "upper.stl", 20.0)
    (inbox / "C-1" / "lower.stl").write_bytes(b"an export cut short\n")
    write_box(inbox / "C-2" / "upper.stl", 21.0)
    write_box(inbox / "C-2" / "lower.stl", 400.0)
    write_box(inbox / "loose.stl", 22.0)
    _settled(inbox)
    return inbox


def _settled(folder: Path) -> None:
    """Every file below ``folder`` last written a minute ago: complete by any rule (a
    corrupt file has no format that says it is whole, so it waits for a quiet period)."""
    old = os.stat(folder).st_mtime - 60
    for path in folder.rglob("*"):
        os.utime(path, (old, old))


def _printed(tmp_path: Path) -> list[str]:
    """The case ids each print holds (its name says them), ``loose`` for a print of loose
    files only (named by its build or job key)."""
    names = [printed_name(job) for job in fleet_jobs(tmp_path)]
    return sorted(name if name.startswith("C-") else "loose" for name in names)


class TestRun:
    """``run`` rejects the held cases (exit 1), moves nothing, says them once, and takes the
    case whole once its bad part is fixed."""

    def test_held_said_once_then_taken_whole(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        inbox = _inbox(tmp_path)
        # A part whose name is not UTF-8 (only POSIX names can be bytes): its notice
        # crashed the run (exit 70) before session 39; now it holds its case, said once.
        named = os.name == "posix"
        if named:
            write_box(inbox / "C-3" / "upper.stl", 23.0)
            write_box(inbox / "C-3" / os.fsdecode(b"lower-\xe9.stl"), 24.0)
            _settled(inbox)
        recipe = write_recipe(tmp_path, name="hot", extra_steps=("save_form",))
        settings = write_settings(tmp_path, count=1)
        argv = command(tmp_path, recipe, [inbox], "--settings", str(settings),
                       "--store", str(tmp_path / "jobs.sqlite3"))
        first = run_cli(tmp_path, argv)
        assert first.returncode == 1, first.stderr[-3000:]
        assert f"  {inbox / 'C-1' / 'upper.stl'}: {HELD}; {HELD_HINT}\n" in first.stdout
        assert f"  {inbox / 'C-1' / 'lower.stl'}: {CORRUPT}" in first.stdout
        assert (f"  {inbox / 'C-2' / 'upper.stl'}: held with its case C-2: lower.stl cannot "
                "be prepared") in first.stdout
        assert not named or (f"  {inbox / 'C-3' / 'upper.stl'}: held with its case C-3: "
                             "lower-\\xe9.stl cannot be prepared") in first.stdout
        assert _printed(tmp_path) == ["loose"]  # nothing of any case
        assert len(first.report["rejected"]) == (6 if named else 4)
        jobs = in_process(tmp_path, "jobs", "list", "--store", str(tmp_path / "jobs.sqlite3"))
        assert jobs.returncode == 0, jobs.stderr  # a listing, empty of cases, not an error
        assert "C-" not in jobs.stdout, jobs.stdout  # no job made
        assert (inbox / "C-1" / "upper.stl").is_file()  # nothing moved

        again = run_cli(tmp_path, [*argv, "--quiet"])  # cron's next night: said once
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")

        write_box(inbox / "C-1" / "lower.stl", 19.0)  # re-exported
        _settled(inbox)
        fixed = run_cli(tmp_path, argv)
        # C-2 and C-3, unchanged, are passed over as said; C-1 goes on whole.
        assert fixed.returncode == 0, fixed.stderr[-3000:]
        assert fixed.report["rejected"] == []
        assert _printed(tmp_path) == ["C-1", "loose"]  # whole, on one build; loose once


class TestWatch:
    """``watch --once`` sends the held case to failed/ whole, every file with its note, and
    prints it whole when the fixed case folder is dropped again."""

    def test_failed_whole_then_dropped_again(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        inbox = _inbox(tmp_path)
        # A part whose name is not UTF-8 is set aside at first sight (no job can record
        # it): the rest of its case printed without it before session 39.
        named = os.name == "posix"  # only POSIX names can be bytes
        if named:
            write_box(inbox / "C-3" / "upper.stl", 23.0)
            write_box(inbox / "C-3" / os.fsdecode(b"lower-\xe9.stl"), 24.0)
            _settled(inbox)
        recipe = write_recipe(tmp_path, name="hot", extra_steps=("save_form",))
        settings = write_hotfolder_settings(tmp_path, recipe, fleet_dir=tmp_path / "fleet")
        done = watch_once(settings, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        failed = inbox / "failed"
        held = (failed / "C-1" / "upper.stl.error.txt").read_text(encoding="utf-8")
        assert held.startswith(f"What failed: {HELD}\n")
        assert f"What to do: {HELD_TODO}\n" in held
        bad = (failed / "C-1" / "lower.stl.error.txt").read_text(encoding="utf-8")
        # No model in it: the hot folder's advice alone, not the reader's hint before it too.
        assert bad.splitlines()[0] == f"What failed: C-1/lower.stl: {CORRUPT}"
        assert ("What to do: it holds no model to fix: drop the model's own file instead, and "
                "keep this one out of the inbox\n") in bad
        assert (failed / "C-2" / "upper.stl.error.txt").read_text(encoding="utf-8").startswith(
            "What failed: held with its case C-2: lower.stl cannot be prepared")
        assert f"{failed / 'C-1' / 'upper.stl'}: {HELD}; {HELD_TODO}" in done.stdout
        assert not named or (failed / "C-3" / "upper.stl.error.txt").read_text(
            encoding="utf-8").startswith("What failed: held with its case C-3: lower-\\xe9.stl "
                                         "cannot be prepared")
        assert _printed(tmp_path) == ["loose"]
        jobs = in_process(tmp_path, "jobs", "show", "C-1", "--settings", str(settings))
        assert HELD in jobs.stdout, jobs.stdout

        # The lab re-exports the lower arch and moves the case folder back.
        shutil.move(failed / "C-1", inbox / "C-1")
        write_box(inbox / "C-1" / "lower.stl", 19.0)
        _settled(inbox / "C-1")
        again = watch_once(settings, tmp_path)
        assert again.returncode == 0, again.stderr[-3000:]
        assert _printed(tmp_path) == ["C-1", "loose"]  # whole, on one build; loose once
        assert sorted(p.name for p in (inbox / "done" / "C-1").iterdir()) == [
            "lower.stl", "lower.stl.report.json", "upper.stl", "upper.stl.report.json"]
