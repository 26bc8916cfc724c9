"""``watch`` keeps its output folders from growing for ever, as ``run`` does: at its start
(``watch --once`` in a subprocess here) it removes the half-written reports and journals a
killed life of this host left, and with ``hotfolders.retention_days`` the outputs older than
that, the checkpoints of killed runs among them (session 25 found them kept for good)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from test_hotfolder_watch_command import environment

from preform_pipeline.atomicfile import default_temporary
from preform_pipeline.hotfolder.testing import (
    tetra_stl_bytes,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.store import JobState, SqliteJobStore

TIMEOUT_S = 120.0
DAY_S = 86_400.0

#: Writes the temporary a report of each of ``sys.argv[1:]`` gets in this process (one
#: line each: its path), and ends.
WRITER = (
    "import sys\n"
    "from pathlib import Path\n"
    "from preform_pipeline.atomicfile import default_temporary\n"
    "for name in sys.argv[1:]:\n"
    "    path = default_temporary(Path(name))\n"
    "    path.write_text('{\"half\": ', encoding='utf-8')\n"
    "    print(path, flush=True)\n"
)


def watch_once(tmp_path: Path, **hotfolders: object) -> subprocess.CompletedProcess[str]:
    recipe = write_recipe(tmp_path, printer=None)
    settings = write_hotfolder_settings(
        tmp_path, recipe, fleet_dir=tmp_path / "fleet", hotfolders=hotfolders or None,
        inbox={"incomplete_timeout_s": 0.2, "quiet_period_s": 0.2})
    (tmp_path / "inbox").mkdir(exist_ok=True)
    (tmp_path / "inbox" / "part.stl").write_bytes(tetra_stl_bytes(1))
    return subprocess.run(
        [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--once"],
        env=environment(), cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S,
        check=False)


def aged(path: Path, days: float, data: bytes = b"x") -> Path:
    """``path`` written with ``data``, last modified ``days`` ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - days * DAY_S
    os.utime(path, (then, then))
    return path


class TestTemporariesOfDeadWriters:
    """A report's temporary whose writer of this host is gone is removed at the start; a
    live writer's and another host's stay."""

    def test_only_the_dead_writers_go(self, tmp_path: Path) -> None:
        reports = tmp_path / "out" / "reports"
        reports.mkdir(parents=True)
        journal = tmp_path / "out" / ".checkpoints" / "run-1" / "b1" / "journal.json"
        journal.parent.mkdir(parents=True)
        # One dead writer left both (a killed life writes reports and journals alike).
        written = subprocess.run(
            [sys.executable, "-c", WRITER, str(reports / "r1.json"), str(journal)],
            env=environment(), capture_output=True, text=True, timeout=TIMEOUT_S, check=True)
        dead, dead_journal = (Path(line) for line in written.stdout.splitlines())
        live = default_temporary(reports / "r2.json")  # this test's process: running
        live.write_text("{", encoding="utf-8")
        tag = hashlib.sha256(b"another-pc").hexdigest()[:8]
        elsewhere = dead.with_name(dead.name.rsplit("-", 1)[0] + f"-{tag}.tmp")
        elsewhere.write_text("{", encoding="utf-8")
        assert dead.exists() and dead_journal.exists()

        done = watch_once(tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert not dead.exists() and not dead_journal.exists()
        assert live.exists() and elsewhere.exists()
        assert (tmp_path / "inbox" / "done" / "part.stl").exists()


class TestRetention:
    """``hotfolders.retention_days`` prunes by run's rule: old outputs and checkpoints go,
    recent ones, a person's own files and the .form a build still waits with stay."""

    def test_old_outputs_go_and_the_rest_stays(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        old_checkpoint = aged(out / ".checkpoints" / "20261001-0101-aa" / "b1"
                              / "after-auto_support.form", 40)
        old_journal = aged(old_checkpoint.with_name("journal.json"), 40)
        old_report = aged(out / "reports" / "20261001-0101-aa.json", 40)
        recent_checkpoint = aged(out / ".checkpoints" / "20261204-0101-bb" / "b2"
                                 / "after-auto_support.form", 2)
        notes = aged(out / "notes.txt", 400)
        awaiting = aged(out / "FORM-4-0" / "held-001.form", 40)
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            build = store.create_build(recipe="hot")
            for state in (JobState.PREPARING, JobState.PREPARED, JobState.AWAITING_APPROVAL):
                store.transition_build(build.id, state, "held for approval")
            store.update_build(build.id, form_path=str(awaiting))

        done = watch_once(tmp_path, retention_days=30)
        assert done.returncode == 0, done.stderr[-3000:]
        gone = (old_checkpoint, old_journal, old_report)
        assert [p for p in gone if p.exists()] == []
        assert not (out / ".checkpoints" / "20261001-0101-aa").exists()
        assert recent_checkpoint.exists() and notes.exists() and awaiting.exists()
        assert "retention: removed 3 files older than 30 days" in done.stdout
        assert (tmp_path / "inbox" / "done" / "part.stl").exists()

    def test_without_the_setting_everything_stays(self, tmp_path: Path) -> None:
        old_checkpoint = aged(tmp_path / "out" / ".checkpoints" / "r" / "b1" / "a.form", 400)
        done = watch_once(tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert old_checkpoint.exists()
        assert "retention" not in done.stdout
