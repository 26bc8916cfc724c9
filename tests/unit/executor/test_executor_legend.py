"""The screenshot step's PNG names its build and numbers every model, next to the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from executor_support import FakePool, SimFarm, plan_for, run, write_box, write_recipe
from PIL import Image

from preform_pipeline.legend import MARK_COLOUR, CameraView, ModelMark, add_legend

STEPS = """\
steps:
  - auto_orient
  - auto_support
  - auto_layout
  - save_form
  - screenshot
"""

Mask = npt.NDArray[np.bool_]
#: A screenshot's pixels (rows, columns, RGB as int16) and the first row of its legend strip.
Shot = tuple[npt.NDArray[np.int16], int]


def _components(mask: Mask) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (row0, col0, row1, col1) of the 4-connected regions of ``mask``."""
    seen = np.zeros_like(mask)
    boxes: list[tuple[int, int, int, int]] = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        stack, rows, cols = [start], [], []
        seen[start] = True
        while stack:
            r, c = stack.pop()
            rows.append(r)
            cols.append(c)
            for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                inside = 0 <= nr < mask.shape[0] and 0 <= nc < mask.shape[1]
                if inside and mask[nr, nc] and not seen[nr, nc]:
                    seen[nr, nc] = True
                    stack.append((nr, nc))
        if len(rows) > 20:  # a disc, not a stray anti-aliased pixel
            boxes.append((min(rows), min(cols), max(rows), max(cols)))
    return boxes


def _screenshot(tmp_path: Path, farm: SimFarm, recipe: Path, models: list[Path]) -> Shot:
    """The build's PNG, run on a simulator, as signed pixels, and the row its legend strip
    starts at (the strip is pure white; the simulator's background is a light grey)."""
    farm.add()
    result = run(plan_for(recipe, models), FakePool([s.url for s in farm.servers]),
                 tmp_path / "out")
    assert result.ok, result.outcomes[0].reason
    png = next(p for p in result.outcomes[0].outputs if p.suffix == ".png")
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB")).astype(np.int16)
    white = np.all(pixels[:, :4] == 255, axis=(1, 2))
    return pixels, int(np.flatnonzero(~white)[-1]) + 1


class TestScreenshotLegend:
    """Marks on the models and a legend strip with the build, the date and every model."""

    def test_every_model_is_numbered_on_the_image_and_in_the_strip(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        case = tmp_path / "models" / "case-42"
        sizes = ((30, 20, 10), (15, 15, 25), (20, 10, 8), (12, 12, 40), (25, 25, 5), (10, 30, 15))
        for i, size in enumerate(sizes):
            write_box(case, f"part_{i}", *size)
        pixels, strip_top = _screenshot(tmp_path, farm, write_recipe(tmp_path, STEPS), [case])
        assert pixels.shape[0] - strip_top > 40, "no legend strip below the image"
        shot, strip = pixels[:strip_top], pixels[strip_top:]

        orange = np.all(np.abs(pixels - np.array(MARK_COLOUR)) < 40, axis=2)
        on_image = _components(orange[:strip_top])
        in_strip = _components(orange[strip_top:])
        assert len(on_image) == len(sizes)
        assert len(in_strip) == len(sizes)
        # Title and names: dark text in the strip, above and beside the discs.
        dark = np.all(strip < 80, axis=2)
        assert dark.sum() > 200
        first_disc_row = min(box[0] for box in in_strip)
        assert dark[:first_disc_row].any(), "no title line above the entries"

        # Each mark sits on its model (a box's top face, blue): its rim touches model pixels
        # all round, so a mark off by a model's width would fail.
        model = (shot[..., 2] - shot[..., 0] > 60) & (shot[..., 2] > 100)
        for r0, c0, r1, c1 in on_image:
            rows, cols = slice(max(0, r0 - 3), r1 + 4), slice(max(0, c0 - 3), c1 + 4)
            ring = model[rows, cols]
            assert ring[:4].any() and ring[-4:].any() and ring[:, :4].any() and \
                ring[:, -4:].any(), f"the mark at row {r0}, column {c0} is not on a model"


class TestTheShippedDentalRecipesScreenshot:
    """The shipped dental recipes' screenshot is what an operator approves a build from: each
    case's model carries its number on the picture, as the legend below it names them."""

    def test_each_dental_model_is_numbered_on_the_picture(
        self, tmp_path: Path, farm: SimFarm, repo_root: Path, sample_models_dir: Path
    ) -> None:
        # Session 47's trial: the base dental recipe's FULL_PLATFORM_WIDTH view gets the
        # legend strip only (marks need the cropped ZOOM_ON_MODELS view, docs/running.md), so
        # the manager saw "1 C-2007 / upper.stl, 2 C-2008 / upper.stl" and no number on
        # either arch.
        cases = []
        for case, arch in (("C-2007", "arch_upper.stl"), ("C-2008", "arch_lower.stl")):
            folder = tmp_path / "models" / case
            folder.mkdir(parents=True)
            (folder / "upper.stl").write_bytes((sample_models_dir / "dental" / arch).read_bytes())
            cases.append(folder)
        recipe = tmp_path / "dental.yaml"
        recipe.write_text(
            (repo_root / "recipes" / "base" / "dental-form4.yaml").read_text(encoding="utf-8")
            .replace("root: output/{recipe}", f"root: {tmp_path / 'out'}"), encoding="utf-8")
        pixels, strip_top = _screenshot(tmp_path, farm, recipe, cases)
        orange = np.all(np.abs(pixels - np.array(MARK_COLOUR)) < 40, axis=2)
        assert len(_components(orange[strip_top:])) == 2  # the legend's entries
        assert len(_components(orange[:strip_top])) == 2  # and a number on each arch


class TestALegendOnALongName:
    """A screenshot whose name fills the file system's 255 bytes still gets its legend."""

    def test_a_png_named_with_250_bytes_is_rewritten_with_its_legend(
        self, tmp_path: Path
    ) -> None:
        # Its temporary adds 38 bytes to the name; cut, it fits, and the folder keeps one file.
        path = tmp_path / ("s" * 246 + ".png")
        Image.new("RGB", (400, 300), "white").save(path, format="PNG")

        add_legend(path, title="r-001", subtitle="2026-12-05", marks=(), view=CameraView())

        with Image.open(path) as legended:
            assert legended.size[1] > 300  # the legend strip below the picture
        assert list(tmp_path.iterdir()) == [path]


class TestALegendOnHiddenCharacters:
    """A case id holding a line break or a direction mark still gets its legend (session 34)."""

    def test_a_line_break_in_a_case_id_is_written_out_not_fatal(self, tmp_path: Path) -> None:
        path = tmp_path / "build.png"
        Image.new("RGB", (400, 300), "white").save(path, format="PNG")
        marks = (ModelMark(1, "C-new\nline / a.stl"), ModelMark(2, "C-\u202e8 / b.stl"))

        add_legend(path, title="C-new\nline PP-1", subtitle="2026-12-06", marks=marks,
                   view=CameraView())

        with Image.open(path) as legended:
            assert legended.size[1] > 300  # the legend strip below the picture
