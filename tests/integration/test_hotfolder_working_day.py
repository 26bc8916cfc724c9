"""A working day of the hot folder: thirty cases in, each printed and verified or failed alone.

The daemon runs in a thread of the test process on simulated PreFormServer subprocesses that
write every accepted print into a fleet folder. The fleet is four Form 4 printers, each busy
for a print's estimated time times ``SCALE`` (the simulator's clock), so prepared builds wait
in ``waiting_for_printer`` and go out as printers free up (``printer: auto``). The Dashboard
simulator (in this process, real HTTP on 127.0.0.1, on the same time scale) serves the Web API
from that folder, and the daemon verifies its own prints through it. A real HTTP server on
127.0.0.1 receives the webhook notifications.
"""

from __future__ import annotations

import itertools
import json
import struct
from dataclasses import replace
from pathlib import Path
from typing import Any

from preform_pipeline.cloud import Credentials
from preform_pipeline.cloud.factory import make_web_client
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.testing import (
    declare_fleet,
    fleet_jobs,
    pool_factory,
    running_daemon,
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
)
from preform_pipeline.printing import FleetFolderLocator
from preform_pipeline.settings import CloudSettings, VerifySettings, load_settings
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, dashboard_server
from preform_pipeline.store import (
    DEFAULT_MAX_JOB_NAME_LENGTH,
    JobState,
    SqliteJobStore,
    extract_key,
)
from preform_pipeline.verify.notify import Notifier

SECRET = "working-day-secret"
PRINTERS = tuple(f"Form4-Day{n}" for n in range(1, 5))
#: Real seconds per simulated second of printing: a 20 mm part (about 1,700 s) takes ~5 s,
#: longer than preparing a build even on a loaded machine, so builds do wait.
SCALE = 0.003
#: A build waiting longer than this notifies (once), and keeps waiting.
NOTIFY_AFTER_S = 1.0
CASES = 30
PER_BUILD = 3
TIMEOUT_S = 90.0
LONG_CASE = "C-" + "0123456789" * 6
BAD_SIDECAR_CASE = "C-BADSIDECAR"
THIN_CASE = "C-THIN"


def _recipe(folder: Path) -> Path:
    path = folder / "day.yaml"
    path.write_text(
        f"""\
name: day
scene: {{machine_type: FORM-4-0, material_code: FLGPGR05, layer_thickness_mm: 0.1}}
import: {{units: MILLIMETERS, repair_behavior: IGNORE}}
steps:
  - hollow: {{wall_thickness_mm: 0.5}}
  - add_drain_holes:
      diameter_mm: 3.0
      placement: {{face: back, count: 1, inset_mm: 2}}
  - label:
      text: "{{case_id}}"
      font_size_mm: 2
      depth_mm: 0.4
      placement: {{face: front, margin_mm: 0.5, fit: fail}}
  - save_form: {{}}
  - print:
      printer: auto
batching: {{max_models_per_build: {PER_BUILD}, keep_cases_together: true}}
outputs: {{root: {(folder / 'out').as_posix()}}}
""",
        encoding="utf-8",
    )
    return path


def _slab_stl(width: float, depth: float, height: float) -> bytes:
    """A closed box ``width`` x ``depth`` x ``height`` mm (twelve triangles)."""
    x, y, z = width, depth, height
    v = [(0, 0, 0), (x, 0, 0), (x, y, 0), (0, y, 0), (0, 0, z), (x, 0, z), (x, y, z), (0, y, z)]
    faces = [(0, 2, 1), (0, 3, 2), (4, 5, 6), (4, 6, 7), (0, 1, 5), (0, 5, 4),
             (1, 2, 6), (1, 6, 5), (2, 3, 7), (2, 7, 6), (3, 0, 4), (3, 4, 7)]
    body = bytearray()
    for face in faces:
        body += struct.pack("<3f", 0.0, 0.0, 0.0)
        for index in face:
            body += struct.pack("<3f", *v[index])
        body += b"\x00\x00"
    return b"slab".ljust(80, b" ") + struct.pack("<I", len(faces)) + bytes(body)


def _stage_cases(staging: Path) -> list[Path]:
    """Thirty case folders: 27 good, one bad sidecar, one label too long, one too thin."""
    folders: list[Path] = []
    for n in range(CASES - 3):
        folder = staging / f"C-{n + 1:03d}"
        folder.mkdir(parents=True)
        (folder / "upper.stl").write_bytes(tetra_stl_bytes(n, size_mm=20.0))
        folders.append(folder)
    bad = staging / BAD_SIDECAR_CASE
    bad.mkdir()
    (bad / "upper.stl").write_bytes(tetra_stl_bytes(900, size_mm=20.0))
    (bad / "upper.json").write_text('{"priorty": 3}', encoding="utf-8")
    long = staging / "long-case"
    long.mkdir()
    (long / "upper.stl").write_bytes(tetra_stl_bytes(901, size_mm=20.0))
    (long / "upper.json").write_text(json.dumps({"case_id": LONG_CASE}), encoding="utf-8")
    thin = staging / THIN_CASE
    thin.mkdir()
    (thin / "plate.stl").write_bytes(_slab_stl(20.0, 20.0, 1.0))
    return [*folders, bad, long, thin]


def _waits(store: SqliteJobStore, build_id: int) -> float | None:
    """How long a build waited for a printer (None: it never waited)."""
    history = store.build_history(build_id)
    for n, step in enumerate(history):
        if step.to_state is JobState.WAITING_FOR_PRINTER:
            later = history[n + 1].at if n + 1 < len(history) else step.at
            return (later - step.at).total_seconds()
    return None


class TestWorkingDay:
    """Thirty cases: three fail alone with their own reasons, the rest print and verify."""

    def test_each_case_prints_and_verifies_or_fails_alone(
        self, tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
    ) -> None:
        url, received = webhook
        fleet = tmp_path / "fleet"
        path = write_hotfolder_settings(
            tmp_path, _recipe(tmp_path), fleet_dir=fleet, servers=2,
            hotfolders={"batching": {"window_s": 1.0, "max_models": 50}},
        )
        declare_fleet(path, PRINTERS, print_time_scale=SCALE, sections={
            "dispatch": {"notify_after_s": NOTIFY_AFTER_S, "poll_interval_s": 0.2}})
        settings = load_settings(path, env={})
        settings = replace(settings, verify=VerifySettings(interval_s=0.2,
                                                           requests_per_hour=1500))
        credentials = Credentials(TEST_CLIENT_ID, SECRET)
        store = SqliteJobStore(settings.store.path)
        inbox = tmp_path / "inbox"
        with dashboard_server(fleet, credentials=credentials, time_scale=SCALE) as dashboard:
            client = make_web_client(CloudSettings(base_url=dashboard.url), credentials)
            notifier = Notifier(webhook_url=url)
            daemon = HotFolderDaemon(settings, store, pool_factory(settings.pool),
                                     web_client=client, notifier=notifier,
                                     print_lookup=FleetFolderLocator(fleet))
            try:
                with running_daemon(daemon, timeout=TIMEOUT_S):
                    for folder in _stage_cases(tmp_path / "staging"):
                        folder.rename(inbox / folder.name)

                    def verified() -> bool:
                        jobs = store.list_jobs()
                        return len(jobs) >= CASES and all(
                            j.state in (JobState.FINISHED, JobState.FAILED) for j in jobs
                        )

                    wait_for(verified, TIMEOUT_S, interval=0.2, what="every case to end")
                    wait_for(lambda: sum(1 for n in received if n["event"] == "print_finished")
                             >= len(store.list_builds(state=JobState.FINISHED)),
                             10, what="the print notifications")
            finally:
                notifier.close()
            dashboard.check()

        jobs = store.list_jobs()
        failed = {j.case_id or j.original_name: j for j in jobs if j.state is JobState.FAILED}
        finished = [j for j in jobs if j.state is JobState.FINISHED]
        assert set(failed) == {BAD_SIDECAR_CASE, LONG_CASE, THIN_CASE}
        assert len(finished) == CASES - 3
        # Each failed case carries its own reason, naming its own model and step.
        notes = {
            name: j.source_path.with_name(j.source_path.name + ".error.txt")
            for name, j in failed.items()
        }
        assert all(n.is_file() and (inbox / "failed") in n.parents for n in notes.values())
        assert "priorty" in failed[BAD_SIDECAR_CASE].reason
        assert f"case {LONG_CASE}: model upper.stl: step label" in failed[LONG_CASE].reason
        assert f"case {THIN_CASE}: model plate.stl: step add_drain_holes" in (
            failed[THIN_CASE].reason
        )
        for name, note in notes.items():
            others = set(failed) - {name}
            assert not any(other in note.read_text(encoding="utf-8") for other in others)
        # Every print was verified FINISHED, and each case's report says so.
        builds = store.list_builds()
        printed = [b for b in builds if b.print_job_id is not None]
        assert printed and all(b.state is JobState.FINISHED for b in printed)
        for job in finished:
            report = json.loads(job.source_path.with_name(
                job.source_path.name + ".report.json").read_text(encoding="utf-8"))
            assert report["state"] == "finished"
            assert report["verification"]["status"] == "FINISHED"
        # The prints went out across the fleet as printers freed up: several printers were
        # used, builds waited for one, and no printer ever took two prints at once.
        sent = fleet_jobs(fleet)
        used = {j["printer"] for j in sent}
        assert used <= set(PRINTERS) and len(used) > 1, used
        waits = {b.job_key: _waits(store, b.id) for b in printed}
        waited = {k for k, w in waits.items() if w is not None}
        assert waited, "no build waited for a printer"
        for printer in used:
            spans = sorted((j["started_at"], j["ends_at"]) for j in sent
                           if j["printer"] == printer)
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), (printer, spans)
        # A build that waited past the limit notified once; one that did not wait, never.
        late = [n["job_key"] for n in received if n["event"] == "build_waiting"]
        assert len(late) == len(set(late)) and set(late) <= waited, (late, waits)
        assert {k for k, w in waits.items() if w is not None and w >= NOTIFY_AFTER_S + 1.0} <= (
            set(late)), (late, waits)
        # The webhook heard of each failed case once, and of each finished print.
        case_failed = sorted(n["case_id"] or "" for n in received if n["event"] == "case_failed")
        assert case_failed == sorted([BAD_SIDECAR_CASE, LONG_CASE, THIN_CASE]), case_failed
        finished_keys = {n["job_key"] for n in received if n["event"] == "print_finished"}
        assert finished_keys == {b.job_key for b in printed}
        # Each print's job name starts with whole case ids and ends with its key.
        assert len(sent) == len(printed)
        names = {extract_key(j["job_name"]): j["job_name"] for j in sent}
        assert set(names) == {b.job_key for b in printed}
        for name in names.values():
            first = name.split("+")[0].split(" ")[0]
            assert first in {j.case_id for j in finished}, name
            assert len(name) <= DEFAULT_MAX_JOB_NAME_LENGTH
        store.close()
