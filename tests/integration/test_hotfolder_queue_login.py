"""``preform-pipeline watch`` whose recipe prints to a Fleet Control queue without a Dashboard
login: it says so as it starts, before any case is prepared and refused.

Real subprocess of the daemon (``--once``) with its pool and simulator processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from preform_pipeline.hotfolder.testing import (
    tetra_stl_bytes,
    write_hotfolder_settings,
    write_recipe,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0


def _watch_once(settings: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--once"],
        env=env, cwd=settings.parent, capture_output=True, text=True, timeout=TIMEOUT_S,
        check=False,
    )


class TestAQueueRecipeWithoutALogin:
    """The start names the recipe, its queue and the missing setting; a login silences it."""

    def test_the_start_says_the_queue_will_refuse_the_prints(self, tmp_path: Path) -> None:
        recipe = write_recipe(tmp_path, name="crowns", printer=None,
                              extra_steps=("print: {fleet_group: SimulatedQueue-Form4}",))
        (tmp_path / "inbox").mkdir()
        (tmp_path / "inbox" / "crown.stl").write_bytes(tetra_stl_bytes(0))
        done = _watch_once(write_hotfolder_settings(tmp_path, recipe))
        assert done.returncode == 0, done.stderr
        assert ("warning: crowns: its print step sends to Fleet Control queue "
                "'SimulatedQueue-Form4', and no dashboard_login is configured") in done.stderr
        # The case refused all the same says what to set, not the server's "POST /login/".
        note = (tmp_path / "inbox" / "failed" / "crown.stl.error.txt").read_text(
            encoding="utf-8").splitlines()
        assert note[0].startswith("What failed: print refused: NOT_LOGGED_IN: ")
        assert note[0].endswith("(the server is not logged in to the Dashboard: set "
                                "dashboard_login in the settings (docs/dispatch.md))")
        assert note[-1].startswith("What to do: read the reason above: fix what it names "
                                   "(the model, the recipe or the settings), then ")

    def test_with_a_login_configured_nothing_is_said(self, tmp_path: Path) -> None:
        recipe = write_recipe(tmp_path, name="crowns", printer=None,
                              extra_steps=("print: {fleet_group: SimulatedQueue-Form4}",))
        (tmp_path / "inbox").mkdir()
        settings = write_hotfolder_settings(tmp_path, recipe)
        (tmp_path / "dashboard-password").write_text("pw-0425\n", encoding="utf-8")
        # The settings are JSON, a YAML flow mapping: one more key at the end.
        text = settings.read_text(encoding="utf-8").rstrip().removesuffix("}")
        settings.write_text(text + ', "dashboard_login": {"username": "lab@example.com", '
                            '"password_file": "dashboard-password"}}\n', encoding="utf-8")
        done = _watch_once(settings)
        assert done.returncode == 0, done.stderr
        assert "dashboard_login" not in done.stdout + done.stderr
