"""A sidecar's YAML syntax error is placed as a recipe's is, ``file:line:col: $: ...``, in
every place a person reads it: ``run``'s and ``plan``'s rejections, ``watch``'s note in
``failed/`` and the dashboard's Failed cases page.

Session 37 left it: a sidecar said ``line 2 column 1: not valid YAML: ...`` inside its
message, where a recipe and a settings file said ``recipe.yaml:2:1: $: YAML syntax error``,
and editors and terminals open the second form at the line. Real subprocesses, real folders,
a real SQLite store and the dashboard over real HTTP.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from preform_pipeline.hotfolder.testing import write_hotfolder_settings, write_recipe
from preform_pipeline.settings.web import WebSettings, WebUser, hash_secret
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.web import WebServer
from tests.e2e.run_e2e_support import (
    cli,
    command,
    run_cli,
    watch_once,
    write_box,
    write_settings,
)

SECRET = "viewer-secret-for-sidecars"
#: A case folder's sidecar whose flow list is never closed: PyYAML finds out at line 2.
BROKEN = "case_id: [C-7\npriority: 1\n"
#: What each place must say of it, after the sidecar's path.
PLACED = (r"C-7\.yaml:2:9: \$: YAML syntax error: while parsing a flow sequence expected "
          r"',' or '\]', but got ':'")


def _inbox(tmp_path: Path) -> Path:
    """An inbox holding case folder C-7, whose sidecar beside it is :data:`BROKEN`."""
    inbox = tmp_path / "inbox"
    (inbox / "C-7").mkdir(parents=True)
    write_box(inbox / "C-7" / "arch.stl", 20.0)
    (inbox / "C-7.yaml").write_text(BROKEN, encoding="utf-8")
    return inbox


class TestRun:
    """``run`` rejects the case with the sidecar's mistake at file:line:col."""

    def test_the_rejection_places_the_mistake(self, tmp_path: Path) -> None:
        inbox = _inbox(tmp_path)
        recipe = write_recipe(tmp_path, printer=None)
        run = run_cli(tmp_path, command(tmp_path, recipe, [inbox], "--settings",
                                        str(write_settings(tmp_path, count=1)), "--dry-run",
                                        "--quiet"))
        assert run.returncode == 1, run.stderr[-3000:]
        assert re.search(r"rejected: .*arch\.stl: .*" + PLACED, run.stderr), run.stderr
        assert "line 2 column 9" not in run.stderr
        assert (inbox / "C-7.yaml").read_text(encoding="utf-8") == BROKEN  # left in place


class TestPlan:
    """``plan`` reads the sidecars as ``run`` does, and shows the case rejected alike."""

    def test_the_rejection_places_the_mistake(self, tmp_path: Path) -> None:
        inbox = _inbox(tmp_path)
        done = cli(tmp_path, "plan", str(write_recipe(tmp_path, printer=None)), str(inbox),
                   "--servers", "1")
        assert done.returncode == 1, done.stderr
        assert re.search(r"rejected:\n  .*arch\.stl: .*" + PLACED, done.stdout), done.stdout


class TestWatchAndTheDashboard:
    """``watch --once`` fails the case with the mistake placed in its note, and the
    dashboard's Failed cases page shows the same words."""

    def test_the_note_and_the_page_place_the_mistake(self, tmp_path: Path) -> None:
        inbox = _inbox(tmp_path)
        recipe = write_recipe(tmp_path, printer=None)
        settings = write_hotfolder_settings(tmp_path, recipe, fleet_dir=tmp_path / "fleet")
        done = watch_once(settings, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        notes = list((inbox / "failed").rglob("*.error.txt"))
        assert len(notes) == 1, done.stdout
        note = notes[0].read_text(encoding="utf-8")
        assert re.search(r"What failed: .*" + PLACED, note), note
        store = SqliteJobStore(tmp_path / "jobs.sqlite3", create=False)
        server = WebServer(store, WebSettings(port=0, users=(
            WebUser("victor", "viewer", hash_secret(SECRET)),)))
        server.start()
        try:
            page = httpx.get(server.url + "/failed",
                             headers={"Authorization": f"Bearer victor:{SECRET}"})
        finally:
            server.stop()
            store.close()
        row = re.search(r'<tr data-case="C-7">(.*?)</tr>', page.text, re.S)
        assert row, page.text
        assert re.search(PLACED.replace("'", "&#39;"), row.group(1)), row.group(1)
