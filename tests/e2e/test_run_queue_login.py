"""``preform-pipeline run`` to a Fleet Control queue: without a Dashboard login it says so first.

Real subprocesses: the command line, its pool and simulator processes (the default simulated
fleet, whose queues refuse a print from a server nobody logged in).
"""

from __future__ import annotations

from pathlib import Path

from run_e2e_support import command, fleet_jobs, run_cli, write_recipe, write_settings

QUEUE = "SimulatedQueue-Form4"
STEPS = f"""\
steps:
  - save_form
  - print:
      fleet_group: {QUEUE}
"""
WARNING = (f"warning: e2e: its print step sends to Fleet Control queue '{QUEUE}', and no "
           "dashboard_login is configured: the servers are not logged in to the Dashboard, "
           "so the queue refuses the print; set dashboard_login in the settings "
           "(docs/dispatch.md)")


class TestAQueuePrintWithoutALogin:
    """The missing login is named before anything runs; with one, nothing is said."""

    def test_the_run_warns_first_and_the_queue_refuses_the_print(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        recipe = write_recipe(tmp_path, STEPS)
        settings = write_settings(tmp_path, count=1)
        run = run_cli(tmp_path, command(tmp_path, recipe, [sample_models_dir / "parts" /
                                                           "gear.obj"], "--settings",
                                        str(settings)))
        assert run.returncode == 1
        lines = run.stdout.splitlines()
        assert WARNING in lines
        assert lines.index(WARNING) < next(i for i, line in enumerate(lines)
                                           if line.startswith("servers started"))
        assert "NOT_LOGGED_IN" in run.builds()[0]["reason"]
        assert run.builds()[0]["reason"].endswith(
            "(the server is not logged in to the Dashboard: set dashboard_login in the "
            "settings (docs/dispatch.md))")
        assert fleet_jobs(tmp_path) == []

    def test_with_a_login_nothing_is_said_and_the_queue_takes_the_print(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        recipe = write_recipe(tmp_path, STEPS)
        settings = write_settings(tmp_path, count=1)
        (tmp_path / "dashboard-password").write_text("pw-0425\n", encoding="utf-8")
        with settings.open("a", encoding="utf-8") as out:
            out.write("dashboard_login:\n  username: lab@example.com\n"
                      "  password_file: dashboard-password\n")
        run = run_cli(tmp_path, command(tmp_path, recipe, [sample_models_dir / "parts" /
                                                           "gear.obj"], "--settings",
                                        str(settings)))
        assert run.returncode == 0, run.stderr[-3000:]
        assert "dashboard_login" not in run.stdout + run.stderr
        assert len(fleet_jobs(tmp_path)) == 1
