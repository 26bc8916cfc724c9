"""What ``preform-pipeline watch`` says of a batch that goes nowhere, as a user sees it: a real
``watch --once`` process over an inbox, a settings file and a recipe whose names hold a
terminal's escape sequences."""

from __future__ import annotations

import os
from pathlib import Path

from preform_pipeline.hotfolder.files import MAX_NAME_BYTES
from preform_pipeline.hotfolder.testing import (
    tetra_stl_bytes,
    write_hotfolder_settings,
    write_recipe,
)
from tests.command_line import in_a_process

#: A name that clears the screen and retitles the terminal, and one that reverses the text.
HOSTILE = "in\x1b]0;owned\x07\x1b[2Jbox\u202e"
SHOWN = "in\\x1b]0;owned\\x07\\x1b[2Jbox\\u202e"


class TestABatchThatCannotBePlanned:
    """Each of its files is said on stdout, where the other outcomes are, escaped."""

    def test_watch_once_says_each_file_where_it_is_and_what_helps(self, tmp_path: Path) -> None:
        recipe = write_recipe(tmp_path, per_build=1)
        recipe.write_text(recipe.read_text(encoding="utf-8").replace(
            "  keep_cases_together: true\n", "  keep_cases_together: true\n  on_overflow: fail\n"),
            encoding="utf-8")
        inbox = tmp_path / HOSTILE
        settings = write_hotfolder_settings(
            tmp_path, recipe, inbox={"path": str(inbox)},
            hotfolders={"output_root": str(tmp_path / f"o{HOSTILE}")})
        inbox.mkdir()
        for seed, name in enumerate(("a.stl", "b.stl")):
            (inbox / name).write_bytes(tetra_stl_bytes(seed))
            os.utime(inbox / name, (1e9, 1e9))  # long since written: taken at once
        # Its name a byte too long: left in the inbox, said by the daemon's notice.
        long = f"\x1b[2J{'n' * (MAX_NAME_BYTES - 4)}.stl"
        (inbox / long).write_bytes(tetra_stl_bytes(3))
        done = in_a_process(tmp_path, "watch", str(settings), "--once")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert f"watching {tmp_path}/{SHOWN} (once)" in lines, done.stdout
        assert any(line.startswith(f"output: {tmp_path}/o{SHOWN}") for line in lines)
        start = lines.index("rejected 2 models:")
        for line, name in zip(lines[start + 1:start + 3], ("a.stl", "b.stl"), strict=True):
            assert line.startswith(f"  {tmp_path}/{SHOWN}/failed/{name}: planning failed: ")
            assert line.endswith("; fix the recipe or send fewer models at once, then retry")
        assert (f"{tmp_path}/{SHOWN}/\\x1b[2J{'n' * (MAX_NAME_BYTES - 4)}.stl stays in the inbox: "
                f"its name is {MAX_NAME_BYTES + 4} bytes") in done.stdout
        assert lines[-1] == "stopped after 1 batch"
        assert not {"\x1b", "\x07", "\u202e"} & set(done.stdout + done.stderr), done.stdout
        assert sorted(p.name for p in (inbox / "failed").iterdir()) == [
            "a.stl", "a.stl.error.txt", "b.stl", "b.stl.error.txt"]


class TestUnitsGuessed:
    """A guess is said once, on stdout, as `run` says it: not as the reader's raw event."""

    def test_watch_once_says_one_warning_naming_the_file_in_the_inbox(
        self, tmp_path: Path
    ) -> None:
        # Session 41: `[warning ] units_guessed path=.../inbox/processing/PP-.../l_bracket.stl`
        # on stderr, where `run` says one line with what to do.
        recipe = write_recipe(tmp_path)
        recipe.write_text(recipe.read_text(encoding="utf-8").replace(
            "  units: MILLIMETERS\n", ""), encoding="utf-8")
        inbox = tmp_path / "inbox"
        settings = write_hotfolder_settings(tmp_path, recipe, inbox={"path": str(inbox)})
        inbox.mkdir()
        part = Path(__file__).resolve().parents[2] / "sample_models" / "parts" / "l_bracket.stl"
        (inbox / "l_bracket.stl").write_bytes(part.read_bytes())
        os.utime(inbox / "l_bracket.stl", (1e9, 1e9))  # long since written: taken at once
        done = in_a_process(tmp_path, "watch", str(settings), "--once")
        assert done.returncode == 0, done.stderr
        said = [line for line in done.stdout.splitlines() if "units not stated" in line]
        assert len(said) == 1 and said[0].startswith(
            f"warning: {inbox / 'l_bracket.stl'}: units not stated, guessed MILLIMETERS ("), said
        assert "units_guessed" not in done.stderr, done.stderr
