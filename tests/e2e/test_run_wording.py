"""``preform-pipeline run`` of one model in one build reads in the singular, start to end."""

from __future__ import annotations

from pathlib import Path

from run_e2e_support import command, run_cli, write_recipe, write_settings


class TestARunOfOne:
    """Every count a user reads about a run of one build with one model is singular."""

    def test_the_console_says_1_build_1_model_and_1_server(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        recipe = write_recipe(tmp_path, "steps:\n  - save_form\n")
        settings = write_settings(tmp_path, count=1)
        argv = command(
            tmp_path, recipe, [sample_models_dir / "parts" / "gear.obj"],
            "--dry-run", "--settings", str(settings),
        )
        done = run_cli(tmp_path, argv)
        assert done.returncode == 0, done.stderr[-3000:]
        lines = done.stdout.splitlines()
        run_id = done.report["run_id"]
        assert f"run {run_id}: output in {done.out}" in lines
        # Each fact once: the build count is the reporter's line, not the output line's too.
        assert [line for line in lines if line.startswith(f"run {run_id}: 1 build")] == [
            f"run {run_id}: 1 build, 1 model on 1 simulated server"]
        assert f"output: {done.out}" in lines[-5:]  # --output: no rule to explain
        assert f"run {run_id}: 1 build, 1 model on 1 simulated server" in lines
        assert any(line.endswith("(1/1 build done)") for line in lines)
        assert any(line.endswith(": 1 of 1 build succeeded") for line in lines)
        assert "    1 model, on server-1, 1 attempt" in lines
        assert lines[-1] == "exit 0: 1 of 1 build succeeded"
        for wrong in ("1 builds", "1 models", "1 servers", "1 attempts"):
            assert wrong not in done.stdout
