"""``preform-pipeline watch`` on a PostgreSQL store (store.url): real subprocess, real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from preform_pipeline.hotfolder.testing import (
    fleet_jobs,
    tetra_stl_bytes,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.servers.process import SIMULATOR_MODULE
from preform_pipeline.store import Build, Job, JobState
from preform_pipeline.store.content import content_hash
from preform_pipeline.store.leases import NodeInfo
from preform_pipeline.store.pgurl import PASSWORD_FILE_ENV
from preform_pipeline.store.postgres import PostgresJobStore
from tests.multinode_farm import DaemonFarm, FarmTiming, printed_models, wait_until
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


@pytest.fixture
def farm(shared: str, tmp_path: Path) -> Iterator[DaemonFarm]:
    """One real daemon (``node-1``) on the shared store, started by the test. Its requests may
    take 15 s: a bound below ``auto_support``'s time (2 s was, at time scale 1, where it takes
    ~4.5 s) timed each first try out and restarted the server, ~4 s of every lost-lease test
    spent on a hang it does not test. Time scale 0.5: at 1.0 the lost-lease test spent ~7 s
    preparing its file a second time at full length (that test freezes the build's server
    until the node has found its lease lost: no step's length is raced)."""
    made = DaemonFarm(tmp_path, shared, FarmTiming(lease_s=3.0, request_timeout_s=15.0,
                                                   time_scale=0.5, per_build=1, window_s=1.0))
    try:
        yield made
    finally:
        made.stop_all()
        made.close()


def _job_named(farm: DaemonFarm, name: str) -> Job | None:
    return next((j for j in farm.store.list_jobs() if j.original_name == name), None)


def _in_processing(farm: DaemonFarm, name: str) -> bool:
    """Whether the file named ``name`` has arrived in processing/. The store records the
    job's place there before the file is moved in (a crash between the two is finished at the
    next start), so the record alone does not say the file is there yet: a test that changed
    it then wrote into a path the move was about to fill."""
    job = _job_named(farm, name)
    return job is not None and "processing" in job.source_path.parts and (
        job.source_path.is_file())


#: Models in a batch: the test's files and the one it drops to fill the batch.
_BATCH = 3


def _batches_of_three(farm: DaemonFarm) -> None:
    """Batches released only once full (three models; a window of 60 s never ends one
    first), so a test changes a taken file and then drops the file that fills its batch:
    the batch goes at once, with no time to guess (a 4-s window was waited out before, ~8 s
    of the two tests, and was a guess a loaded machine could outrun). The simulator at time
    scale 0.1: no step's length matters here (each print took ~1 s at 0.5)."""
    farm.timing.window_s = 60.0
    farm.timing.per_build = _BATCH
    farm.timing.time_scale = 0.1


class TestAChangedSharedFile:
    """A file whose content changed after it was taken fails alone, with its reason."""

    def test_its_copy_is_refused_and_the_other_file_prints(self, farm: DaemonFarm) -> None:
        _batches_of_three(farm)
        farm.start("node-1")
        good, bad = farm.drop(2)

        wait_until(f"{bad} taken into processing/", lambda: _in_processing(farm, bad), TIMEOUT_S)
        job = _job_named(farm, bad)
        assert job is not None
        job.source_path.write_bytes(tetra_stl_bytes(999))  # changed on the share
        (filler,) = farm.drop(_BATCH - 2, first=2)  # the batch is full: it goes
        wait_until("the three files settled", lambda: len(farm.settled()) == _BATCH, TIMEOUT_S)
        assert (farm.inbox / "done" / good).exists()
        assert (farm.inbox / "failed" / bad).read_bytes() == tetra_stl_bytes(999)
        failed = _job_named(farm, bad)
        assert failed is not None and failed.state is JobState.FAILED
        assert "content changed" in (failed.reason or "")
        assert [e["job_key"] for e in farm.events("local_copy_failed")] == [failed.job_key]
        assert printed_models(farm) == {good: 1, filler: 1}


    def test_a_case_with_a_changed_file_fails_whole(self, farm: DaemonFarm) -> None:
        _batches_of_three(farm)
        staging = farm.root / "case-staging" / "case7"
        staging.mkdir(parents=True)
        for seed, name in ((11, "upper.stl"), (12, "lower.stl")):
            (staging / name).write_bytes(tetra_stl_bytes(seed))
        farm.start("node-1")
        staging.rename(farm.inbox / "case7")

        wait_until("the case taken into processing/",
                   lambda: _in_processing(farm, "lower.stl"), TIMEOUT_S)
        job = _job_named(farm, "lower.stl")
        assert job is not None
        job.source_path.write_bytes(tetra_stl_bytes(999))
        (filler,) = farm.drop(_BATCH - 2)  # the batch is full: it goes
        wait_until("the case and the loose file settled",
                   lambda: len(farm.settled()) == _BATCH, TIMEOUT_S)
        states = {j.original_name: (j.state, j.reason or "") for j in farm.store.list_jobs()}
        assert states["lower.stl"][0] is JobState.FAILED
        assert "content changed" in states["lower.stl"][1]
        assert states["upper.stl"][0] is JobState.FAILED
        assert "another file of the case" in states["upper.stl"][1]
        assert printed_models(farm) == {filler: 1}  # nothing of the case


def _servers_of(farm: DaemonFarm, node: str) -> list[psutil.Process]:
    """The simulated servers of ``node``'s pool (its daemon's simulator children)."""
    return [child for child in psutil.Process(farm.procs[node].pid).children(recursive=True)
            if SIMULATOR_MODULE in child.cmdline()]


class TestALostLease:
    """A node that finds a build's lease lost stops it before its next server request."""

    def test_the_build_stops_at_once_and_its_work_is_done_again_under_a_new_claim(
        self, farm: DaemonFarm, shared: str
    ) -> None:
        write_recipe(farm.root, per_build=1,
                     extra_steps=["auto_orient", "auto_support", "save_form"])
        # A request waits out the server's freeze below: no timeout (and restart) meanwhile.
        farm.timing.request_timeout_s = TIMEOUT_S
        farm.start("node-1")
        (name,) = farm.drop(1)
        found: list[Build] = []

        def preparing() -> bool:
            builds = farm.owned_in("node-1", JobState.PREPARING)
            found[:] = builds
            return bool(builds) and any(e.get("build") == builds[0].job_key
                                        for e in farm.events("step_started"))
        wait_until("a build preparing on node-1", preparing, TIMEOUT_S)
        build = found[0]
        # Its server frozen mid-build until the node has found the lease lost: the step in
        # flight waits, so a step of the build is still to come however slowly this machine
        # lets the node's renewal run (unfrozen, the build's last steps raced it: ~2.8 s at
        # time scale 0.5 against the test's poll, its UPDATE and a renewal pass under load).
        (server,) = _servers_of(farm, "node-1")
        server.suspend()
        try:
            assert not [e for e in farm.events("step_started") if e.get("build")
                        == build.job_key and e.get("step") == "print"], "caught too late"
            with psycopg.connect(shared, password=PG_PASSWORD, autocommit=True) as conn:
                conn.execute("UPDATE builds SET lease_until = now() - interval '1 second' "
                             "WHERE id = %s", (build.id,))
            wait_until("node-1 found its lease lost", lambda: any(
                e.get("build_id") == build.id for e in farm.events("node_lost_build")),
                TIMEOUT_S)
        finally:
            server.resume()
        wait_until("the build stopped", lambda: any(
            e.get("build") == build.job_key for e in farm.events("build_stopped")), TIMEOUT_S)
        wait_until(f"{name} settled", lambda: farm.settled()[name] == 1, TIMEOUT_S)

        events = farm.events("step_started", "build_stopped", "node_lost_build")
        stopped_at = next(i for i, e in enumerate(events) if e["event"] == "build_stopped"
                          and e.get("build") == build.job_key)
        assert "lost its lease" in events[stopped_at]["reason"]
        assert any(e["event"] == "node_lost_build" and e["build_id"] == build.id
                   for e in events[:stopped_at])
        # No request for the build after it stopped: no step of it started again.
        assert not [e for e in events[stopped_at:] if e["event"] == "step_started"
                    and e.get("build") == build.job_key]
        assert not [p for p in farm.prints() if build.job_key in str(p.get("job_name"))]
        # Its server went back to the pool: the one server prepared the file again.
        assert (farm.inbox / "done" / name).exists()
        assert len(farm.prints()) == 1
