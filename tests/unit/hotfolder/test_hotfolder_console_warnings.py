"""The hot folder's console says a batch's model warnings as ``run`` does.

Session 41: ``watch`` showed the reader's raw ``units_guessed`` event on stderr, naming the
file's transient ``processing/PP-.../`` path, where ``run`` says one friendly line with what
to do. Now each batch's reporter says ``warning: ...`` lines by ``run``'s rule (guesses alike
in one line), each file named where it was dropped. A real daemon pass over real folders, a
real SQLite store and real model files (the scripted runner says nothing of its own run).
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

from daemon_support import Script, make_daemon, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.executor import PlainReporter
from preform_pipeline.hotfolder.testing import write_recipe
from preform_pipeline.store import SqliteJobStore
from tests.conftest import REPO_ROOT

PARTS = REPO_ROOT / "sample_models" / "parts"
RULE = ("state them with import.units or import.units_by_path in the recipe, or `units:` in "
        "the case's sidecar")


def _watch_once(tmp_path: Path, store: SqliteJobStore, *names: str) -> tuple[list[str], list]:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    for name in names:
        shutil.copyfile(PARTS / name, inbox / name)
        os.utime(inbox / name, (1e9, 1e9))  # long since written: taken at once
    recipe = write_recipe(tmp_path, printer=None)
    recipe.write_text(recipe.read_text(encoding="utf-8").replace(  # the units left to guess
        "  units: MILLIMETERS\n", ""), encoding="utf-8")
    daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"), recipe)
    console = io.StringIO()
    daemon.reporter = daemon.worker.reporter = PlainReporter(console)
    with capture_logs() as logs:
        run_daemon_once(daemon)
    return [line for line in console.getvalue().splitlines()
            if line.startswith("warning: ")], logs


class TestUnitsGuessed:
    """A guess is one `warning:` line naming the file in the inbox; the event stays."""

    def test_one_guess_names_the_file_where_it_was_dropped(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        said, logs = _watch_once(tmp_path, store, "l_bracket.stl")
        dropped = tmp_path / "inbox" / "l_bracket.stl"
        assert len(said) == 1, said
        assert said[0].startswith(
            f"warning: {dropped}: units not stated, guessed MILLIMETERS (")
        assert said[0].endswith(f"; {RULE}")
        assert "processing" not in said[0]
        (event,) = [e for e in logs if e["event"] == "units_guessed"]
        assert event["units"] == "MILLIMETERS"  # the event keeps the working path, for the log

    def test_guesses_alike_are_one_line_as_run_says_them(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        said, _ = _watch_once(tmp_path, store, "l_bracket.stl", "cube_with_hole.stl")
        inbox = tmp_path / "inbox"
        assert said == [
            f"warning: 2 models' units not stated, guessed MILLIMETERS: "
            f"{inbox / 'cube_with_hole.stl'}, {inbox / 'l_bracket.stl'}; {RULE}"]
