"""A sidecar's ``printer:`` chooses where its case prints; an unknown name fails that case alone.

The daemon runs in a thread on simulated PreFormServer subprocesses with a declared fleet of
three Form 4s; what each print was sent to is read from the fleet folder the simulator writes.
"""

from __future__ import annotations

import json
from pathlib import Path

from structlog.testing import capture_logs

from preform_pipeline.commands._printers import printers_of_fleet
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.testing import (
    declare_fleet,
    fleet_jobs,
    pool_factory,
    running_daemon,
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.printing import FleetFolderLocator
from preform_pipeline.settings import load_settings
from preform_pipeline.store import JobState, SqliteJobStore

PRINTERS = ("Form4-Alpha", "Form4-Bravo", "Form4-Charlie")
#: case id -> the sidecar's printer (None: no sidecar, the recipe's printer).
CASES: dict[str, object] = {
    "C-NAMED": "Form4-Bravo",
    "C-LIST": ["Form4-Charlie", "Form4-Bravo"],
    "C-AUTO": "auto",
    "C-TYPO": "Form4-Bravoo",
    "C-PLAIN": None,
}
TIMEOUT_S = 60.0


class TestSidecarPrinter:
    """The sidecar's printer is the print target, checked like a recipe's."""

    def test_each_case_prints_where_its_sidecar_says(self, tmp_path: Path) -> None:
        fleet = tmp_path / "fleet"
        recipe = write_recipe(tmp_path, printer=PRINTERS[0], per_build=10,
                              extra_steps=["save_form: {}"])
        path = declare_fleet(write_hotfolder_settings(tmp_path, recipe, fleet_dir=fleet),
                             PRINTERS, sections={"dispatch": {"poll_interval_s": 0.2}})
        settings = load_settings(path, env={})
        store = SqliteJobStore(settings.store.path)
        daemon = HotFolderDaemon(settings, store, pool_factory(settings.pool),
                                 print_lookup=FleetFolderLocator(fleet),
                                 known_printers=printers_of_fleet(settings))
        inbox = tmp_path / "inbox"
        with capture_logs() as logs, running_daemon(daemon, timeout=TIMEOUT_S):
            staging = tmp_path / "staging"
            for n, (case, printer) in enumerate(CASES.items()):
                folder = staging / case
                folder.mkdir(parents=True)
                (folder / "part.stl").write_bytes(tetra_stl_bytes(n, size_mm=10.0))
                if printer is not None:
                    (folder / "part.json").write_text(json.dumps({"printer": printer}),
                                                      encoding="utf-8")
            for folder in sorted(staging.iterdir()):
                folder.rename(inbox / folder.name)
            wait_for(lambda: len(store.list_jobs()) == len(CASES) and all(
                j.state in (JobState.PRINT_SENT, JobState.FAILED)
                for j in store.list_jobs()), TIMEOUT_S, interval=0.1,
                what="every case sent or failed")

        printed = {}
        for job in fleet_jobs(fleet):
            for case in CASES:
                if job["job_name"].startswith(case):
                    printed[case] = job["printer"]
        assert printed["C-NAMED"] == "Form4-Bravo"
        assert printed["C-LIST"] in ("Form4-Charlie", "Form4-Bravo")
        assert printed["C-AUTO"] in PRINTERS
        assert printed["C-PLAIN"] == "Form4-Alpha"
        assert "C-TYPO" not in printed
        typo = next(j for j in store.list_jobs() if j.case_id == "C-TYPO")
        assert typo.state is JobState.FAILED
        assert "case C-TYPO: model part.stl: step print" in (typo.reason or "")
        assert "did you mean 'Form4-Bravo'" in (typo.reason or "")
        assert (inbox / "failed" / "C-TYPO").is_dir()
        assert [e["case_id"] for e in logs if e["event"] == "case_target_unknown"] == ["C-TYPO"]
        store.close()
