"""``preform-pipeline watch`` on a PostgreSQL store (store.url): real subprocess, real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from preform_pipeline.hotfolder.testing import (
    fleet_jobs,
    tetra_stl_bytes,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.store import JobState
from preform_pipeline.store.content import content_hash
from preform_pipeline.store.leases import NodeInfo
from preform_pipeline.store.pgurl import PASSWORD_FILE_ENV
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD, PgCluster

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 90.0


@pytest.fixture
def shared(pg_cluster: PgCluster, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return pg_cluster.create_database(f"watch_{request.node.name[-20:].lower()}")


def _settings(tmp_path: Path, url: str, *steps: str) -> tuple[Path, Path]:
    fleet = tmp_path / "fleet"
    path = write_hotfolder_settings(tmp_path, write_recipe(tmp_path, extra_steps=steps),
                                    fleet_dir=fleet)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["store"]["url"] = url
    path.write_text(json.dumps(data), encoding="utf-8")
    return path, fleet


def _watch_once(settings: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    secret = tmp_path / "store-password"
    secret.write_text(PG_PASSWORD + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFORM_PIPELINE_", "PG"))}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env[PASSWORD_FILE_ENV] = str(secret)
    return subprocess.run(
        [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--once"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


class TestWatchOnPostgres:
    """The daemon records into the shared store and registers as a node."""

    def test_once_prints_records_and_leaves_a_stopped_node(
        self, tmp_path: Path, shared: str
    ) -> None:
        settings, fleet = _settings(tmp_path, shared)
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        (inbox / "a.stl").write_bytes(tetra_stl_bytes(1))
        done = _watch_once(settings, tmp_path)
        assert done.returncode == 0, done.stderr
        assert PG_PASSWORD not in done.stdout + done.stderr
        assert (inbox / "done" / "a.stl").exists()
        assert len(fleet_jobs(fleet)) == 1
        with PostgresJobStore(shared, password=PG_PASSWORD) as store:
            (job,) = store.list_jobs()
            assert job.state in (JobState.PRINT_SENT, JobState.VERIFYING, JobState.FINISHED)
            (node,) = store.list_nodes()
            assert node.health() == "stopped"

    def test_a_second_node_works_beside_a_live_one_and_leaves_its_files_alone(
        self, tmp_path: Path, shared: str
    ) -> None:
        settings, fleet = _settings(tmp_path, shared)
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        (inbox / "mine.stl").write_bytes(tetra_stl_bytes(2))
        (inbox / "theirs.stl").write_bytes(tetra_stl_bytes(3))
        with PostgresJobStore(shared, password=PG_PASSWORD) as store:
            store.register_node(NodeInfo("other-pc", "other-pc", "0.1.0"))
            # The other node claimed this file first (it is about to move it).
            assert store.claim_inbox_file("other-pc", inbox / "theirs.stl",
                                          content_hash(inbox / "theirs.stl"))
        done = _watch_once(settings, tmp_path)
        assert done.returncode == 0, done.stderr
        assert (inbox / "done" / "mine.stl").exists()
        assert (inbox / "theirs.stl").exists()
        assert len(fleet_jobs(fleet)) == 1
        with PostgresJobStore(shared, password=PG_PASSWORD) as store:
            assert {n.info.id for n in store.list_nodes()} >= {"other-pc"}
            assert [j.original_name for j in store.list_jobs()] == ["mine.stl"]


def _form_sources(root: Path) -> list[str]:
    """The source file of every model in the .form files under ``root``, as the server
    recorded it from its import request."""
    found = []
    for form in root.rglob("*.form"):
        with zipfile.ZipFile(form) as archive:
            manifest = json.loads(archive.read("manifest.json"))
        found += [str(m["original_file"]) for m in manifest["models"]]
    return found


class TestLocalCopies:
    """A node imports a local copy of each shared file and removes it when settled."""

    def test_the_server_imports_the_node_s_copy_which_is_gone_after_settling(
        self, tmp_path: Path, shared: str
    ) -> None:
        settings, fleet = _settings(tmp_path, shared, "save_form")
        cache = tmp_path / "cache"
        data = json.loads(settings.read_text(encoding="utf-8"))
        data["hotfolders"]["local_copy_dir"] = str(cache)
        settings.write_text(json.dumps(data), encoding="utf-8")
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        (inbox / "a.stl").write_bytes(tetra_stl_bytes(4))
        done = _watch_once(settings, tmp_path)
        assert done.returncode == 0, done.stderr
        assert (inbox / "done" / "a.stl").exists()
        assert len(fleet_jobs(fleet)) == 1
        sources = _form_sources(tmp_path / "out")
        assert sources, "no .form recorded what the server imported"
        assert all(Path(s).is_relative_to(cache.resolve()) for s in sources), sources
        assert all(Path(s).name == "a.stl" for s in sources)
        assert [p for p in cache.rglob("*") if p.is_file()] == []
