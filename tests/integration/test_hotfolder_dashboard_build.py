"""The dashboard's page of a build the hot folder prepared: the screenshot it saved.

Real parts: ``preform-pipeline watch --once`` as a subprocess (its pool and simulator
processes), its job store (a SQLite file in the test's folder), and the dashboard served by
uvicorn on 127.0.0.1 over that store, read over HTTP as a script reads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from preform_pipeline.hotfolder.testing import (
    fleet_jobs,
    tetra_stl_bytes,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.settings.web import WebSettings, WebUser, hash_secret
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.web import WebServer

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0
SECRET = "viewer-secret-0425"
AUTH = {"Authorization": f"Bearer wall:{SECRET}"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _watch_once(tmp_path: Path, *extra: str) -> Path:
    """Drops one model, runs ``watch --once`` on it; returns the job store's path."""
    recipe = write_recipe(tmp_path, extra_steps=("save_form", "screenshot"))
    settings = write_hotfolder_settings(tmp_path, recipe, fleet_dir=tmp_path / "fleet")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.stl").write_bytes(tetra_stl_bytes(1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--once", *extra],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (inbox / "done" / "a.stl").exists()
    return tmp_path / "jobs.sqlite3"


def _screenshot(store_path: Path, state: JobState) -> httpx.Response:
    """The screenshot the dashboard serves for the store's one build, in ``state``."""
    with SqliteJobStore(store_path) as store:
        builds = store.list_builds()
        assert [b.state for b in builds] == [state]
        server = WebServer(store, WebSettings(port=0, users=(
            WebUser("wall", "viewer", hash_secret(SECRET)),)))
        server.start()
        try:
            page = httpx.get(f"{server.url}/builds/{builds[0].id}", headers=AUTH)
            assert "No screenshot was saved" not in page.text
            # The recipe's scene, though the build never waited with a print target.
            assert "<dt>Machine</dt><dd>FORM-4-0</dd>" in page.text
            assert "<dt>Material</dt><dd>FLGPGR05" in page.text
            return httpx.get(f"{server.url}/builds/{builds[0].id}/screenshot", headers=AUTH)
        finally:
            server.stop()


class TestBuildPageAfterWatch:
    """A build the hot folder printed, or prepared in a dry run, shows its screenshot."""

    def test_a_printed_build_shows_its_screenshot(self, tmp_path: Path) -> None:
        store_path = _watch_once(tmp_path)
        assert len(fleet_jobs(tmp_path / "fleet")) == 1
        image = _screenshot(store_path, JobState.PRINT_SENT)
        assert image.status_code == 200
        assert image.content.startswith(PNG_SIGNATURE)

    def test_a_build_prepared_in_a_dry_run_shows_its_screenshot(self, tmp_path: Path) -> None:
        store_path = _watch_once(tmp_path, "--dry-run")
        assert fleet_jobs(tmp_path / "fleet") == []
        image = _screenshot(store_path, JobState.DONE)
        assert image.status_code == 200
        assert image.content.startswith(PNG_SIGNATURE)
