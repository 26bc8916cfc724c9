"""The dashboard's page of a build that ``preform-pipeline run`` prepared: its screenshot.

Real parts: the command line as a subprocess (its pool and simulator processes), the run's
job store (``--store``, a SQLite file in the test's folder), and the dashboard served by
uvicorn on 127.0.0.1 over that store, read over HTTP as a script reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from run_e2e_support import command, full_steps, run_cli, write_recipe, write_settings

from preform_pipeline.settings.web import WebSettings, WebUser, hash_secret
from preform_pipeline.store import Build, JobState, SqliteJobStore
from preform_pipeline.web import WebServer

SECRET = "viewer-secret-0425"
AUTH = {"Authorization": f"Bearer wall:{SECRET}"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The full steps without the print: a build saved, screenshotted, and left for a person.
SAVED_ONLY = full_steps(2).split("  - print:")[0] + "batching:\n  max_models_per_build: 2\n"


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.sqlite3"


def _run(tmp_path: Path, store_path: Path, steps: str, models: list[Path]) -> None:
    recipe = write_recipe(tmp_path, steps)
    settings = write_settings(tmp_path, count=1)
    run = run_cli(tmp_path, command(tmp_path, recipe, models, "--settings", str(settings),
                                    "--store", str(store_path), "--quiet"))
    assert run.returncode == 0, run.stderr[-3000:]


Serve = Callable[[], tuple[str, SqliteJobStore]]


@pytest.fixture
def dashboard(store_path: Path) -> Iterator[Serve]:
    """Starts the dashboard over the run's store, once the run has written it."""
    stores: list[SqliteJobStore] = []
    servers: list[WebServer] = []

    def serve() -> tuple[str, SqliteJobStore]:
        store = SqliteJobStore(store_path)
        stores.append(store)
        server = WebServer(store, WebSettings(port=0, users=(
            WebUser("wall", "viewer", hash_secret(SECRET)),)))
        server.start()
        servers.append(server)
        return server.url, store

    yield serve
    for server in servers:
        server.stop()
    for store in stores:
        store.close()


def _only_build(store: SqliteJobStore, state: JobState) -> Build:
    builds = store.list_builds()
    assert [b.state for b in builds] == [state]
    return builds[0]


class TestBuildPageAfterRun:
    """A build that ``run`` printed, or saved without printing, shows the screenshot it saved."""

    def test_a_printed_build_shows_its_screenshot_and_names_its_form(
        self, tmp_path: Path, sample_models_dir: Path, store_path: Path, dashboard: Serve
    ) -> None:
        models = sorted((sample_models_dir / "batch").glob("*.stl"))[:2]
        _run(tmp_path, store_path, full_steps(2), models)
        url, store = dashboard()
        build = _only_build(store, JobState.PRINT_SENT)
        saved = sorted((tmp_path / "out").rglob("*.form"))
        assert len(saved) == 1

        page = httpx.get(f"{url}/builds/{build.id}", headers=AUTH)
        assert page.status_code == 200
        assert f'<img src="/builds/{build.id}/screenshot"' in page.text
        assert "No screenshot was saved" not in page.text
        assert str(saved[0]) in page.text
        image = httpx.get(f"{url}/builds/{build.id}/screenshot", headers=AUTH)
        assert image.status_code == 200
        assert image.content.startswith(PNG_SIGNATURE)
        assert image.content == saved[0].with_suffix(".png").read_bytes()

    def test_a_build_saved_without_printing_shows_its_screenshot(
        self, tmp_path: Path, sample_models_dir: Path, store_path: Path, dashboard: Serve
    ) -> None:
        models = sorted((sample_models_dir / "batch").glob("*.stl"))[:2]
        _run(tmp_path, store_path, SAVED_ONLY, models)
        url, store = dashboard()
        build = _only_build(store, JobState.DONE)

        image = httpx.get(f"{url}/builds/{build.id}/screenshot", headers=AUTH)
        assert image.status_code == 200
        assert image.content.startswith(PNG_SIGNATURE)
