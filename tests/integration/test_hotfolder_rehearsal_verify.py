"""A rehearsal without Web API credentials: the daemon confirms its own prints from the fleet.

Simulated PreFormServer subprocesses print to two simulated printers that are busy while they
print; each job file records how its print ends on the simulator's clock (one case's print is
forced to ERROR by the fleet's ``outcomes.yaml``). The daemon has no Web API client: it
verifies through the fleet folder's prints feed, and a real webhook receiver on 127.0.0.1
hears of the failed case, the late wait, the finished prints and the print error.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.testing import (
    declare_fleet,
    pool_factory,
    running_daemon,
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
)
from preform_pipeline.printing import FleetFolderFeed, FleetFolderLocator
from preform_pipeline.settings import load_settings
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.verify.notify import Notifier
from tests.fleet_prints import end_print

PRINTERS = ("Form4-RehearsalA", "Form4-RehearsalB")
#: A 20 mm part (about 1,700 s) prints in ~3.4 s: longer than preparing one, so builds wait.
#: A print a late build waits for is ended once that build is told (the test's own doing).
SCALE = 0.002
ERROR_CASE = "C-ERR"
BAD_CASE = "C-BAD"
GOOD_CASES = ("C-1", "C-2", "C-3", "C-4")
TIMEOUT_S = 60.0


def _recipe(folder: Path) -> Path:
    path = folder / "rehearsal.yaml"
    path.write_text(
        f"""\
name: rehearsal
scene: {{machine_type: FORM-4-0, material_code: FLGPGR05, layer_thickness_mm: 0.1}}
import: {{units: MILLIMETERS, repair_behavior: IGNORE}}
steps:
  - save_form: {{}}
  - print:
      printer: [{", ".join(PRINTERS)}]
batching: {{max_models_per_build: 1, keep_cases_together: true}}
outputs: {{root: {(folder / 'out').as_posix()}}}
""",
        encoding="utf-8",
    )
    return path


def _settings(tmp_path: Path, fleet: Path) -> Path:
    path = write_hotfolder_settings(tmp_path, _recipe(tmp_path), fleet_dir=fleet, servers=2,
                                    hotfolders={"batching": {"window_s": 0.5}})
    return declare_fleet(path, PRINTERS, print_time_scale=SCALE, sections={
        "dispatch": {"notify_after_s": 0.5, "poll_interval_s": 0.2},
        "verify": {"interval_s": 0.2},
    })


def _free_a_printer_for_a_late_build(store: SqliteJobStore, received: list[dict[str, Any]],
                                     fleet: Path) -> None:
    """While a build told it waits late (its ``build_waiting`` note) still waits, end the
    print that would end first, through the fleet folder, as its printer does when it
    finishes: the wait and its note are what the test needs, not the rest of a 3.4 s print.
    A print nothing waits for (the last ones) runs out."""
    told = {n.get("job_key") for n in list(received) if n["event"] == "build_waiting"}
    if any(b.job_key in told for b in store.list_builds(state=JobState.WAITING_FOR_PRINTER)):
        with contextlib.suppress(ValueError):  # none still printing: freed on its own
            end_print(fleet)


class TestRehearsalVerification:
    """Without credentials the daemon verifies from the fleet folder and notifies."""

    def test_prints_are_confirmed_finished_or_in_error_and_notified(
        self, tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
    ) -> None:
        url, received = webhook
        fleet = tmp_path / "fleet"
        fleet.mkdir()
        (fleet / "outcomes.yaml").write_text(
            f'jobs:\n  - name: "{ERROR_CASE} *"\n    outcome: ERROR\n'
            '    message: "Resin level too low"\n', encoding="utf-8")
        settings = load_settings(_settings(tmp_path, fleet), env={})
        store = SqliteJobStore(settings.store.path)
        notifier = Notifier(webhook_url=url)

        daemon = HotFolderDaemon(settings, store, pool_factory(settings.pool),
                                 web_client=FleetFolderFeed(fleet), notifier=notifier,
                                 print_lookup=FleetFolderLocator(fleet))
        inbox = tmp_path / "inbox"
        with capture_logs() as logs:
            try:
                with running_daemon(daemon, timeout=TIMEOUT_S):
                    staging = tmp_path / "staging"
                    for n, case in enumerate((*GOOD_CASES, ERROR_CASE, BAD_CASE)):
                        folder = staging / case
                        folder.mkdir(parents=True)
                        (folder / "upper.stl").write_bytes(tetra_stl_bytes(n, size_mm=20.0))
                    (staging / BAD_CASE / "upper.json").write_text('{"prority": 1}',
                                                                   encoding="utf-8")
                    for folder in sorted(staging.iterdir()):
                        folder.rename(inbox / folder.name)

                    def ended() -> bool:
                        _free_a_printer_for_a_late_build(store, received, fleet)
                        jobs = store.list_jobs()
                        return len(jobs) == 6 and all(
                            j.state in (JobState.FINISHED, JobState.PRINT_ERROR,
                                        JobState.FAILED) for j in jobs)

                    wait_for(ended, TIMEOUT_S, interval=0.2, what="every case to end")
                    wait_for(lambda: sum(n["event"] in ("print_finished", "print_error")
                                         for n in received) >= 5, 10, what="the notifications")
            finally:
                notifier.close()

        states = {j.case_id: j.state for j in store.list_jobs()}
        assert states == {**dict.fromkeys(GOOD_CASES, JobState.FINISHED),
                          ERROR_CASE: JobState.PRINT_ERROR, BAD_CASE: JobState.FAILED}
        builds = {store.build_members(b.id)[0].case_id: b for b in store.list_builds()}
        assert builds[ERROR_CASE].verified_status == "ERROR"
        assert builds[ERROR_CASE].verified_message == "Resin level too low"
        assert {builds[c].printer for c in GOOD_CASES} == set(PRINTERS)
        events = [(n["event"], n.get("case_id")) for n in received]
        assert ("case_failed", BAD_CASE) in events
        error_notes = [n for n in received if n["event"] == "print_error"]
        assert [n["job_key"] for n in error_notes] == [builds[ERROR_CASE].job_key]
        finished_keys = {n["job_key"] for n in received if n["event"] == "print_finished"}
        assert finished_keys == {builds[c].job_key for c in GOOD_CASES}
        # Four one-case builds on two printers: some waited, and those past the limit told.
        late = {n["job_key"] for n in received if n["event"] == "build_waiting"}
        assert late and late <= {b.job_key for b in builds.values()}
        assert all(n.get("case_id") for n in received if n["event"] == "build_waiting")
        # The outcome reached each case's report, and the log says so: the report updated
        # when the print ended, or, of a print that ended before its files were settled (the
        # error at half of a print on a loaded machine), written with it at settling.
        for case in (*GOOD_CASES, ERROR_CASE):
            report = json.loads((inbox / "done" / case / "upper.stl.report.json").read_text(
                encoding="utf-8"))
            assert report["verification"]["status"] == builds[case].verified_status
        keys = {j.job_key: j.case_id for j in store.list_jobs()}
        updated = {e["case_id"] for e in logs if e["event"] == "case_report_updated"}
        settled_ended = {keys[e["job_key"]] for e in logs if e["event"] == "file_settled"
                         and e["state"] in (JobState.FINISHED.value, JobState.PRINT_ERROR.value)}
        assert updated | settled_ended == {*GOOD_CASES, ERROR_CASE}
        store.close()
