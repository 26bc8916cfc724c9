"""``preform-pipeline run`` repeated over the same inputs (from cron): nothing prints twice.

Real subprocesses: the command line, its pool, simulator processes sharing a fleet folder in
the test's folder, and the job store in the test's own user data folder (the default store's
folder: a simulated run records into the rehearsal store beside it).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from run_e2e_support import command, fleet_jobs, run_cli, write_recipe, write_settings

from preform_pipeline.settings import default_store_path
from preform_pipeline.settings.store import REHEARSAL_STORE_FILENAME
from preform_pipeline.store import JobState, SqliteJobStore
from tests.recipe_texts import PRINT_ONLY


def _outputs_of_an_earlier_version(day: Path) -> tuple[Path, Path, Path]:
    """An empty ``.form``, an empty file of another kind and a whole ``.form`` in ``day``,
    an hour old: what a save killed by an earlier version left, and files beside it."""
    day.mkdir(parents=True)
    empty, note, whole = day / "e2e-001.form", day / "notes.txt", day / "e2e-002.form"
    empty.touch()
    note.touch()
    whole.write_bytes(b"PK")
    an_hour_ago = time.time() - 3600.0
    for path in (empty, note, whole):
        os.utime(path, (an_hour_ago, an_hour_ago))
    return empty, note, whole


class TestRepeatedRuns:
    """A second run skips what the first printed and says so; --reprint prints it again. An
    empty output file an earlier version left is kept, and said by the first run only."""

    def test_a_repeat_skips_printed_models_says_an_old_empty_output_once_reprint_overrides(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        models = sorted((sample_models_dir / "batch").glob("*.stl"))[:4]
        # Only what a repeat is about: builds that print. The whole job's steps made each of
        # its runs several times as long, and under load the test came near the suite's 120 s
        # a test (session 30: 21-37 s); no assertion here reads what they make.
        recipe = write_recipe(tmp_path, PRINT_ONLY)
        settings = write_settings(tmp_path, count=1)
        argv = command(tmp_path, recipe, models, "--settings", str(settings))
        # An empty output file, as a save killed by an earlier version left one (session 34):
        # nothing proves it ours, so it is kept, and listed once in a run's closing lines.
        # The first run and its repeat here are that scenario too.
        empty, note, whole = _outputs_of_an_earlier_version(tmp_path / "out" / "2024-05-01")

        first = run_cli(tmp_path, argv)
        assert first.returncode == 0, first.stderr[-3000:]
        said = [line for line in first.stdout.splitlines() if "empty output file" in line]
        assert said == [
            f"1 empty output file in {tmp_path / 'out'}, as a save killed by an earlier "
            "version left them; not removed (nothing shows they are not yours), said once: "
            "delete them if they are not yours: 2024-05-01/e2e-001.form"]
        assert [e["paths"] for e in first.events_named("empty_outputs_listed")] == [
            [str(empty)]]
        assert (empty.exists(), note.exists(), whole.read_bytes()) == (True, True, b"PK")
        printed = len(fleet_jobs(tmp_path))
        assert printed == 2
        # A rehearsal's prints are kept apart: a later real run must not skip these models.
        assert not default_store_path().exists()
        with SqliteJobStore(default_store_path().with_name(REHEARSAL_STORE_FILENAME)) as store:
            jobs = store.list_jobs()
            assert sorted(j.original_name for j in jobs) == sorted(m.name for m in models)
            assert {j.state for j in jobs} == {JobState.PRINT_SENT}
            assert len(store.list_builds(state=JobState.PRINT_SENT)) == 2

        # Each skip in the log asked for (a run that did nothing keeps no log of its own).
        asked = tmp_path / "second.jsonl"
        second = run_cli(tmp_path, [*argv, "--log-file", str(asked)])
        assert second.returncode == 0, second.stderr[-3000:]
        assert "empty output file" not in second.stdout  # said once
        assert empty.exists()
        # One line for them all (session 31: the README's command again said 30 alike),
        # each in the log.
        assert [line for line in second.stdout.splitlines() if "skipped" in line] == [
            "skipped 4 of 4 models (4 already printed); --reprint prints them again, "
            "-v lists each"]
        events = [json.loads(line) for line in asked.read_text(encoding="utf-8").splitlines()]
        assert sorted(e["path"] for e in events if e["event"] == "model_skipped") == sorted(
            str(m) for m in models)
        assert len(fleet_jobs(tmp_path)) == printed
        # Nothing to prepare starts no server, and the run says so (session 32: "0 models on
        # 1 simulated server" and SIMULATED, with no server started).
        assert "servers started" not in second.stdout
        assert "nothing to prepare, no server started" in second.stdout
        assert "simulated server" not in second.stdout
        assert "SIMULATED" not in second.stdout
        # Each fact once (session 34: the closing "finished" line came twice, around an
        # empty summary, and "0 builds, output in" before "nothing to prepare").
        lines = second.stdout.splitlines()
        assert [line for line in lines if lines.count(line) > 1] == []
        assert [line for line in lines if " finished in " in line] == [
            next(line for line in lines if line.startswith("run ") and "finished" in line)]
        assert not any(line.endswith(" 0 builds, output in") or ": 0 builds, output in " in line
                       for line in lines)
        assert lines[-1].startswith("exit 0: ")
        # Nothing new, no report (session 43; session 35's "ok": false beside exit 0 went
        # with it): the newest report is still the first run's, which printed.
        assert second.report == {} and first.report["ok"] is True

        each = run_cli(tmp_path, [*argv, "-v"])
        assert each.returncode == 0, each.stderr[-3000:]
        skipped = sorted(line.split(":")[0].removeprefix("skipped ")
                         for line in each.stdout.splitlines() if line.startswith("skipped "))
        assert skipped == sorted(m.name for m in models)
        assert "already printed" in each.stdout
        assert len(fleet_jobs(tmp_path)) == printed

        again = run_cli(tmp_path, [*argv, "--reprint"])
        assert again.returncode == 0, again.stderr[-3000:]
        assert "skipped" not in again.stdout
        assert len(fleet_jobs(tmp_path)) == 2 * printed
