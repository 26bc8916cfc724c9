"""A case is taken whole or not at all: the one rule (``plan/held.py``), and ``run``'s and
``plan``'s path to it (:func:`take_sources`) over real files in real folders.

Session 38 left a case split by the kind of its bad file: a corrupt or degenerate model, one
too large for the platform, or a ``.step`` beside the good ones was rejected alone and the
rest of the case went on to print without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from planning_factories import make_model, make_recipe

from preform_pipeline.commands._sources import take_sources
from preform_pipeline.hotfolder.testing import write_recipe
from preform_pipeline.plan import builds
from preform_pipeline.plan.builds import plan_builds, refused_alone
from preform_pipeline.plan.held import HELD_HINT, CaseOf, Held, held_with_cases, hold_cases
from preform_pipeline.plan.nesting import NestedBin, Outline, nest
from preform_pipeline.plan.parts import is_part
from preform_pipeline.recipes import load_recipe
from preform_pipeline.settings.run import RunSettings
from tests.e2e.run_e2e_support import write_box

AS_THEY_ARE = RunSettings(quiet_period_s=0.0, incomplete_timeout_s=0.0)
HELD = "held with its case {case}: {bad} cannot be prepared, and a case prints whole or not at all"


class TestTheRule:
    """:func:`held_with_cases` holds every other file of a case with a bad file."""

    def test_the_rest_of_a_case_is_held_and_other_cases_are_not(self) -> None:
        one, two = CaseOf("k1", "C-1"), CaseOf("k2", "C-2")
        a, b, c, d, loose = (Path(n) for n in ("C-1/a.stl", "C-1/b.stl", "C-1/c.stl",
                                                "C-2/d.stl", "loose.stl"))
        held = held_with_cases({a: one, b: one, c: one, d: two, loose: None}, [b, loose])
        assert held == (Held(a, "C-1", (b,)), Held(c, "C-1", (b,)))
        assert held[0].reason == HELD.format(case="C-1", bad="b.stl")

    def test_every_bad_file_of_the_case_is_named(self) -> None:
        case = CaseOf("k", "C-1")
        a, b, c = Path("a.stl"), Path("b.step"), Path("c.stl")
        [held] = held_with_cases({a: case, b: case, c: case}, iter([c, b]))
        assert held.reason == ("held with its case C-1: c.stl, b.step each cannot be "
                               "prepared, and a case prints whole or not at all")

    def test_what_is_a_part(self) -> None:
        parts = ["a.stl", "b.OBJ", "c.3mf", "d.step", "e.ply", "f.form", "g.zip"]
        others = ["rx.pdf", "photo.jpg", "readme.txt", "lower.yaml", "notes"]
        assert [is_part(Path(n)) for n in parts] == [True] * len(parts)
        assert [is_part(Path(n)) for n in others] == [False] * len(others)

    def test_every_model_file_the_readers_take_is_a_part(self) -> None:
        from preform_pipeline.geometry import SUPPORTED_SUFFIXES

        assert all(is_part(Path(f"model{suffix}")) for suffix in SUPPORTED_SUFFIXES)


def _inbox(tmp_path: Path) -> Path:
    """Cases each with a good file and a bad one of a kind; C-5 with paperwork only; loose
    files good and bad."""
    inbox = tmp_path / "inbox"
    for case in ("C-1", "C-2", "C-3", "C-4", "C-5"):
        write_box(inbox / case / "upper.stl", 10.0)
    (inbox / "C-1" / "lower.stl").write_bytes(b"not a model at all\n")     # corrupt
    write_box(inbox / "C-2" / "lower.stl", 400.0)                          # platform
    (inbox / "C-3" / "lower.step").write_text("ISO-10303-21;\n")           # unsupported
    (inbox / "C-4" / "lower.stl").write_text(                              # degenerate
        "solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 0 0 0\n"
        "vertex 0 0 0\nendloop\nendfacet\nendsolid x\n")
    write_box(inbox / "C-5" / "lower.stl", 11.0)
    (inbox / "C-5" / "rx.pdf").write_bytes(b"%PDF-1.4\n")                  # no part
    write_box(inbox / "good.stl", 12.0)
    (inbox / "bad.stl").write_bytes(b"not a model either\n")
    return inbox


class TestTakeSources:
    """``run`` and ``plan`` hold a case with a bad part whole, whatever the kind."""

    def test_each_bad_part_holds_its_case(self, tmp_path: Path) -> None:
        inbox = _inbox(tmp_path)
        recipe = load_recipe(write_recipe(tmp_path, printer=None, extra_steps=("save_form",)))
        taken = take_sources([inbox], recipe, rules=AS_THEY_ARE,
                             started_at=datetime(2026, 12, 6))
        assert sorted(m.path.relative_to(inbox).as_posix() for m in taken.models) == [
            "C-5/lower.stl", "C-5/upper.stl", "good.stl"]
        reasons = {r.path.relative_to(inbox).as_posix(): r.reason.removeprefix(f"{r.path}: ")
                   for r in taken.rejected}
        for case, bad in [("C-1", "lower.stl"), ("C-2", "lower.stl"), ("C-3", "lower.step"),
                          ("C-4", "lower.stl")]:
            assert reasons.pop(f"{case}/upper.stl") == (
                f"{HELD.format(case=case, bad=bad)}; {HELD_HINT}")
            assert not reasons.pop(f"{case}/{bad}").startswith("held")  # its own reason
        assert reasons.pop("C-5/rx.pdf").startswith(".pdf is not a model file")
        assert list(reasons) == ["bad.stl"]  # a loose file holds nothing else


class TestAskedOfEachPartAlone:
    """:func:`refused_alone` says what the planner refuses of a part alone, by the planner's
    own test, without nesting the case: the plan nests it once."""

    def test_a_footprint_that_fits_no_platform_is_refused_as_the_plan_refuses_it(self) -> None:
        recipe = make_recipe(margin_mm=0.0)  # (auto_support: a raft border grows each part)
        models = [make_model("big", (198.0, 123.0, 10.0), case="C-1"),
                  make_model("small", case="C-1")]
        alone = refused_alone(recipe, models)
        assert [r.path.name for r in alone] == ["big.stl"]
        assert [r.reason for r in alone] == [r.reason for r in plan_builds(recipe, models).rejected]
        assert "footprint with raft border and spacing does not fit" in alone[0].reason

    def test_a_case_is_nested_once_from_its_hold_to_its_plan(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        recipe = make_recipe()
        models = [make_model(f"arch-{n}", (60.0, 50.0, 20.0), case="C-1") for n in range(4)]
        nested: list[tuple[int, bool, int]] = []  # (models, searched, platforms)

        def counted(outlines: Sequence[Outline], *args: Any, **kwargs: Any) -> list[NestedBin]:
            platforms = nest(outlines, *args, **kwargs)
            nested.append((len(outlines), kwargs.get("search", True), len(platforms)))
            return platforms

        monkeypatch.setattr(builds, "nest", counted)
        case = CaseOf("C-1", "C-1")
        kept, held = hold_cases(recipe, models, dict.fromkeys((m.path for m in models), case), [])
        assert (len(kept), held) == (4, ())
        plan = plan_builds(recipe, kept)
        assert [len(b.models) for b in plan.builds] == [4]
        # Each part alone (no platforms), then the plan's search, once.
        assert nested == [(4, False, 0), (4, True, 1)]
