"""``plan``, ``run`` and ``watch`` read the same inbox the same way: sidecars give case ids
and fields to ``plan`` as to ``run``, and a case the hot folder refuses before batching is
refused by ``run`` (and shown so by ``plan``) with the same words, before any server work,
its files left in place, the other cases going on.

Session 37 left both: ``plan`` read no sidecars (a loose file whose sidecar gives its case id
was shown without one), and ``run`` checked only the case id up front, so a case without a
field its label engraves failed the whole build at the label step, the good cases with it.
Real subprocesses (the command line, its pool and simulator processes), real folders and
SQLite stores; the engraved texts are read from the .form files the simulator saved.
"""

from __future__ import annotations

import json
from pathlib import Path

from preform_pipeline.hotfolder.testing import write_hotfolder_settings, write_recipe
from tests.e2e.run_e2e_support import (
    cli,
    command,
    engraved,
    run_cli,
    watch_once,
    write_box,
    write_settings,
)

#: The label engraving the customer a sidecar names.
LABEL = ('label:\n      text: "{customer}"\n      font_size_mm: 3\n      depth_mm: 0.5\n'
         "      placement: {face: front, margin_mm: 1, fit: shrink}")
#: What all three commands say of case C-2, whose sidecar gives no customer.
WHY = ("case C-2: model b.stl: step label: template '{customer}': no value for field "
       "{customer}")
HELPS = "give the field a value"


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    """The recipe, and an inbox: case C-1 with its customer (the folder's sidecar), case C-2
    with none, and a loose file whose own sidecar gives its case id and customer."""
    recipe = write_recipe(tmp_path, name="engraved", printer=None,
                          extra_steps=(LABEL, "save_form"))
    inbox = tmp_path / "inbox"
    write_box(inbox / "C-1" / "a.stl", 20.0)
    (inbox / "C-1.yaml").write_text("customer: ACME\n", encoding="utf-8")
    write_box(inbox / "C-2" / "b.stl", 21.0)
    write_box(inbox / "sided.stl", 22.0)
    (inbox / "sided.yaml").write_text("case_id: C-3\ncustomer: BETA\n", encoding="utf-8")
    return recipe, inbox


class TestPlan:
    """``plan`` gives the sidecars' case ids and shows the refused case as ``run`` does."""

    def test_sidecar_case_ids_and_the_refused_case(self, tmp_path: Path) -> None:
        recipe, inbox = _setup(tmp_path)
        done = cli(tmp_path, "plan", str(recipe), str(inbox), "--format", "json",
                    "--servers", "1")
        plan = json.loads(done.stdout)
        cased = {m["path"]: m["case_id"] for b in plan["builds"] for m in b["models"]}
        # The loose file's own sidecar gives its case id (it was shown without one).
        assert cased.get(str(inbox / "sided.stl")) == "C-3"
        assert cased == {str(inbox / "C-1" / "a.stl"): "C-1", str(inbox / "sided.stl"): "C-3"}
        assert done.returncode == 1, done.stderr
        assert [(r["path"], r["reason"]) for r in plan["rejected"]] == [
            (str(inbox / "C-2" / "b.stl"), f"{inbox / 'C-2' / 'b.stl'}: {WHY}; {HELPS}")]


class TestRun:
    """``run`` refuses case C-2 before any server work; the other cases are engraved."""

    def test_the_case_is_refused_up_front_and_the_others_go_on(self, tmp_path: Path) -> None:
        recipe, inbox = _setup(tmp_path)
        settings = write_settings(tmp_path, count=1)
        run = run_cli(tmp_path, command(tmp_path, recipe, [inbox], "--settings", str(settings),
                                        "--quiet"))
        # The build failed at its label step before, and nothing was engraved.
        assert engraved(run.out) == ["ACME", "BETA"]
        assert run.returncode == 1, run.stderr[-3000:]
        assert f"rejected: {inbox / 'C-2' / 'b.stl'}: {WHY}; {HELPS}\n" in run.stderr
        assert (inbox / "C-2" / "b.stl").is_file()  # left where the user put it
        assert [r["path"] for r in run.report["rejected"]] == [str(inbox / "C-2" / "b.stl")]


class TestWatch:
    """``watch --once`` refuses the same case in the same words."""

    def test_the_note_says_the_same(self, tmp_path: Path) -> None:
        recipe, inbox = _setup(tmp_path)
        settings = write_hotfolder_settings(tmp_path, recipe, fleet_dir=tmp_path / "fleet")
        done = watch_once(settings, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        note = (inbox / "failed" / "C-2" / "b.stl.error.txt").read_text(encoding="utf-8")
        assert f"What failed: {WHY}\n" in note
        assert f"What to do: {HELPS}; then drop the case again" in note
        assert engraved(tmp_path / "out") == ["ACME", "BETA"]
