"""``preform-pipeline run`` when servers fail: killed, hung, crash-looping.

The faults are the simulator's own flags (``--exit-during``, ``--hang``,
``--exit-after-requests``), given to one server of the pool with ``--simulator-arg
server-1:...``; the others stay healthy.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from run_e2e_support import (
    command,
    fleet_jobs,
    full_steps,
    printed_name,
    run_cli,
    write_recipe,
    write_settings,
)


def parts(sample_models_dir: Path, count: int = 6) -> list[Path]:
    return sorted((sample_models_dir / "batch").glob("*.stl"))[:count]


class TestServerKilledDuringAutoSupport:
    """A server that dies during auto-support loses its build to another server, once."""

    def test_the_build_completes_elsewhere_and_is_printed_exactly_once(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        recipe = write_recipe(tmp_path, full_steps(3))
        settings = write_settings(tmp_path, count=2)
        run = run_cli(
            tmp_path,
            command(
                tmp_path, recipe, parts(sample_models_dir), "--settings", str(settings),
                simulator_args=["server-1:--exit-during=auto_support"],
            ),
        )
        assert run.returncode == 0, run.stderr[-3000:]
        builds = run.builds()
        assert len(builds) == 2 and all(b["status"] == "succeeded" for b in builds)
        moved = [b for b in builds if b["attempts"] > 1]
        assert moved, "no build ran into the killed server"
        for build in moved:
            first, *rest = build["attempt_details"]
            assert first["server"] == "server-1"
            assert first["error_type"] == "ServerUnreachableError"
            assert rest[-1]["server"] == "server-2" and rest[-1]["error"] is None
        jobs = fleet_jobs(tmp_path)
        assert Counter(printed_name(j) for j in jobs) == {f"e2e-{b['build']}": 1 for b in builds}
        # The pool heard of the failure and scheduled server-1's restart.
        reported = run.events_named("server_failure_reported")
        assert {e["server"] for e in reported} == {"server-1"}
        restarts = run.events_named("server_restart_scheduled")
        assert restarts and {e["server"] for e in restarts} == {"server-1"}


class TestHungOperation:
    """An operation that never finishes hits the step deadline and the build moves on."""

    def test_the_deadline_passes_and_the_build_is_retried_elsewhere(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        recipe = write_recipe(tmp_path, full_steps(3))
        settings = write_settings(tmp_path, count=2)
        run = run_cli(
            tmp_path,
            command(
                tmp_path, recipe, parts(sample_models_dir), "--settings", str(settings),
                "--step-timeout", "3",
                simulator_args=["server-1:--hang=auto_support"],
            ),
        )
        assert run.returncode == 0, run.stderr[-3000:]
        builds = run.builds()
        assert all(b["status"] == "succeeded" for b in builds)
        hung = [b for b in builds if b["attempts"] > 1]
        assert hung
        for build in hung:
            first, *rest = build["attempt_details"]
            assert (first["server"], first["error_type"]) == ("server-1", "ServerTimeoutError")
            assert "deadline" in first["error"]
            assert rest[-1]["server"] == "server-2"
        assert len(fleet_jobs(tmp_path)) == len(builds)


class TestCrashLoopingServer:
    """A server that keeps dying is retired; the run completes on the others."""

    def test_the_crash_looper_is_retired_and_every_build_succeeds(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        # One model per build: eight builds, so the restarted server is leased again.
        recipe = write_recipe(tmp_path, full_steps(1))
        settings = write_settings(tmp_path, count=2, max_restarts=1)
        run = run_cli(
            tmp_path,
            command(
                tmp_path, recipe, parts(sample_models_dir, 8), "--settings", str(settings),
                simulator_args=["server-1:--exit-after-requests=4"],
            ),
        )
        assert run.returncode == 0, run.stderr[-3000:]
        retired = run.events_named("server_retired")
        assert [e["server"] for e in retired] == ["server-1"]
        builds = run.builds()
        assert len(builds) == 8 and all(b["status"] == "succeeded" for b in builds)
        assert {b["server"] for b in builds} == {"server-2"}
        assert sum(b["attempts"] - 1 for b in builds) == 2  # each crash moved a build
        assert len(fleet_jobs(tmp_path)) == 8
