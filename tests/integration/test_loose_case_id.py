"""A loose model file has no case id, in ``run`` and in ``watch`` alike: a case is a folder.

Session 36's newcomer trial: ``run`` over an inbox gave a file lying loose in it (not in a
case folder) the inbox's own name as its case id, so a recipe engraving ``{case_id}``
engraved "inbox" on the part, a wrong part for a dental lab; ``watch`` failed the same file,
saying only "no value for field {case_id}; give the field a value". Now both refuse it where
the recipe needs a case id, with the same reason and what helps, keep the file, and engrave
the case folder's name (or a sidecar's ``case_id``) on the others.

Real subprocesses (the command line, its pool and simulator processes), real folders and
SQLite stores; the engraved text is read from the .form files the simulator saved.
"""

from __future__ import annotations

from pathlib import Path

from preform_pipeline.hotfolder.testing import write_hotfolder_settings, write_recipe
from tests.e2e.run_e2e_support import (
    command,
    engraved,
    run_cli,
    watch_once,
    write_box,
    write_settings,
)

#: The label engraving each model's case id, on its front.
LABEL = ('label:\n      text: "{case_id}"\n      font_size_mm: 3\n      depth_mm: 0.5\n'
         "      placement: {face: front, margin_mm: 1, fit: shrink}")

#: What both commands say of the loose file, and what helps.
WHY = ("model loose.stl: step label: the label text needs {case_id}, and loose.stl has none: "
       "it is not in a case folder, and no sidecar gives it one")
HELPS = ("put it in a folder named by its case id (C-1042/loose.stl; `run` takes the folder "
         "above it), or give it a sidecar with case_id, or take {case_id} out of the label "
         "text")


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    """The recipe, and an inbox holding a loose file, a case folder, and a loose file whose
    own sidecar gives its case id."""
    recipe = write_recipe(tmp_path, name="engraved", printer=None,
                          extra_steps=(LABEL, "save_form"))
    inbox = tmp_path / "inbox"
    write_box(inbox / "loose.stl", 20.0)
    write_box(inbox / "C-1042" / "lower.stl", 21.0)
    write_box(inbox / "sided.stl", 22.0)
    (inbox / "sided.yaml").write_text("case_id: C-2000\n", encoding="utf-8")
    return recipe, inbox


class TestRun:
    """``run`` over an inbox refuses its loose file as a rejection; its cases go on."""

    def test_the_loose_file_is_rejected_and_no_folder_name_isengraved(
        self, tmp_path: Path
    ) -> None:
        recipe, inbox = _setup(tmp_path)
        settings = write_settings(tmp_path, count=1)
        run = run_cli(tmp_path, command(tmp_path, recipe, [inbox], "--settings", str(settings),
                                        "--quiet"))
        # The old code engraved "inbox" on loose.stl; the case's and the sidecar's ids stay.
        assert engraved(run.out) == ["C-1042", "C-2000"]
        assert run.returncode == 1, run.stderr[-3000:]
        assert run.stdout == ""
        assert f"rejected: {inbox / 'loose.stl'}: {WHY}; {HELPS}\n" in run.stderr
        assert (inbox / "loose.stl").is_file()  # kept where the user put it
        assert [r["path"] for r in run.report["rejected"]] == [str(inbox / "loose.stl")]


class TestWatch:
    """``watch --once`` refuses the same file the same way: to failed/, with its note."""

    def test_the_loose_file_fails_with_the_same_reason_and_the_cases_areengraved(
        self, tmp_path: Path
    ) -> None:
        recipe, inbox = _setup(tmp_path)
        settings = write_hotfolder_settings(tmp_path, recipe, fleet_dir=tmp_path / "fleet")
        done = watch_once(settings, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        failed = inbox / "failed"
        assert (f"rejected 1 model:\n  {failed / 'loose.stl'}: {WHY}; {HELPS}; then drop the "
                "case again (its other cases were not affected)\n") in done.stdout
        note = (failed / "loose.stl.error.txt").read_text(encoding="utf-8")
        assert f"What failed: {WHY}\n" in note
        assert f"What to do: {HELPS}; then drop" in note
        assert (failed / "loose.stl").is_file()
        assert (inbox / "done" / "C-1042" / "lower.stl").is_file()
        assert (inbox / "done" / "sided.stl").is_file()
        assert engraved(tmp_path / "out") == ["C-1042", "C-2000"]
