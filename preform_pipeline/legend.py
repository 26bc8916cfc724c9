"""A build's screenshot made identifiable: a numbered mark on each model and a legend strip.

PreFormServer's screenshot shows the models and nothing else; two builds of similar parts
look alike, and nobody can tell which crown is case 7. :func:`add_legend` adds, to the PNG
the ``screenshot`` step saved:

* on each model, a numbered disc where the top centre of its bounding box appears;
* below the image, a strip naming the build and the date, then each number with the model's
  case id and file name, beside a disc of the same colour.

Where a model appears follows from the Local API's camera: orthographic, ``yaw`` 0 looking
down the negative x axis, positive ``pitch`` looking down onto the platform, and
``ZOOM_ON_MODELS`` with ``crop_to_models`` framing the box around all models with a small
margin; a supported model's frame reaches down to the platform and out over its raft. Other
views (the whole build volume, the platform width, an uncropped zoom) get the strip without
the marks on the models, since their framing is not the models' own.

Images are read and written with Pillow (any PNG a server writes: palette, alpha, 16-bit,
interlaced), and text is drawn with Pillow's built-in font, so nothing depends on fonts
installed on the machine.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from preform_pipeline.atomicfile import temporary_name, write_atomically
from preform_pipeline.wording import visible

if TYPE_CHECKING:
    # Pillow is imported where a legend is drawn: every `run` and `watch` imports this module
    # (through the executor's steps), and few of their builds take a screenshot with a legend.
    from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "DEFAULT_PITCH_DEG",
    "DEFAULT_YAW_DEG",
    "MARK_COLOUR",
    "RAFT_BORDER_MM",
    "CameraView",
    "ModelMark",
    "add_legend",
    "mark_positions",
]

#: The Local API's defaults for save-screenshot.
DEFAULT_YAW_DEG: Final = 45.0
DEFAULT_PITCH_DEG: Final = 35.264
#: The margin ZOOM_ON_MODELS leaves around the models, as a share of the larger extent.
_FRAME_MARGIN: Final = 0.05
#: How far a raft reaches beyond its model's footprint (an estimate: it shifts the framing,
#: so the marks, by a fraction of it).
RAFT_BORDER_MM: Final = 1.5
#: Discs (on the models and in the strip): a colour no model, support or platform has.
MARK_COLOUR: Final = (255, 120, 0)
_MARK_TEXT: Final = (0, 0, 0)
_MARK_OUTLINE: Final = (255, 255, 255)
_STRIP_BACKGROUND: Final = (255, 255, 255)
_STRIP_TEXT: Final = (20, 20, 20)
#: Text height as a share of the image width, within these bounds (pixels).
_TEXT_SHARE: Final = 0.018
_MIN_TEXT_PX: Final = 11
_MAX_TEXT_PX: Final = 28


@dataclass(frozen=True)
class ModelMark:
    """One model in the legend: its number, what to call it, its bounding box in scene
    millimetres (``(min_xyz, max_xyz)``; None when the server did not say), and whether it
    stands on supports (which the screenshot shows, down to the platform)."""

    number: int
    text: str
    box: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    supported: bool = False

    def frame_box(
        self,
    ) -> tuple[tuple[float, float, float], tuple[float, float, float]] | None:
        """The box the screenshot frames for this model: with its supports and raft."""
        if self.box is None or not self.supported:
            return self.box
        (x0, y0, _), (x1, y1, z1) = self.box
        border = RAFT_BORDER_MM
        return (x0 - border, y0 - border, 0.0), (x1 + border, y1 + border, z1)


@dataclass(frozen=True)
class CameraView:
    """The save-screenshot options that decide where models appear."""

    yaw_deg: float = DEFAULT_YAW_DEG
    pitch_deg: float = DEFAULT_PITCH_DEG
    view_type: str = "ZOOM_ON_MODELS"
    crop_to_models: bool = True

    @property
    def frames_models(self) -> bool:
        return self.view_type == "ZOOM_ON_MODELS" and self.crop_to_models


def _screen(view: CameraView, point: Sequence[float]) -> tuple[float, float]:
    """A scene point on the screen plane (mm): to the right, and up."""
    yaw, pitch = math.radians(view.yaw_deg), math.radians(view.pitch_deg)
    x, y, z = point
    right = -math.sin(yaw) * x + math.cos(yaw) * y
    # "up" is perpendicular to the view direction and to "right": it leans back as the
    # camera looks further down.
    up = (
        -math.sin(pitch) * (math.cos(yaw) * x + math.sin(yaw) * y) + math.cos(pitch) * z
    )
    return right, up


def mark_positions(
    marks: Sequence[ModelMark], view: CameraView, size: tuple[int, int]
) -> dict[int, tuple[float, float]]:
    """Pixel ``(column, row)`` of each model's mark in an image of ``size`` (width, height)
    taken with ``view``; empty when the view does not frame the models or a box is unknown."""
    boxes = [m.frame_box() for m in marks]
    if not view.frames_models or not marks or any(b is None for b in boxes):
        return {}
    # The view frames the box around all models (its corners, not each model's).
    known = [b for b in boxes if b is not None]
    lows = [min(b[0][k] for b in known) for k in range(3)]
    highs = [max(b[1][k] for b in known) for k in range(3)]
    corners = [
        _screen(view, (x, y, z))
        for x in (lows[0], highs[0]) for y in (lows[1], highs[1]) for z in (lows[2], highs[2])
    ]
    us, vs = [c[0] for c in corners], [c[1] for c in corners]
    margin = _FRAME_MARGIN * max(max(us) - min(us), max(vs) - min(vs))
    u0, v1 = min(us) - margin, max(vs) + margin
    span_u = max(us) - min(us) + 2 * margin
    span_v = max(vs) - min(vs) + 2 * margin
    width, height = size
    positions: dict[int, tuple[float, float]] = {}
    for mark in marks:
        assert mark.box is not None
        low, high = mark.box
        top = ((low[0] + high[0]) / 2, (low[1] + high[1]) / 2, high[2])
        u, v = _screen(view, top)
        positions[mark.number] = (
            (u - u0) / max(span_u, 1e-9) * width,
            (v1 - v) / max(span_v, 1e-9) * height,
        )
    return positions


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # a Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _disc(
    draw: ImageDraw.ImageDraw,
    centre: tuple[float, float],
    radius: float,
    number: int,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
) -> None:
    x, y = centre
    draw.ellipse(
        (x - radius, y - radius, x + radius, y + radius),
        fill=MARK_COLOUR, outline=_MARK_OUTLINE, width=max(1, round(radius / 6)),
    )
    draw.text((x, y), str(number), fill=_MARK_TEXT, font=font, anchor="mm")


def add_legend(
    path: Path,
    *,
    title: str,
    subtitle: str,
    marks: Sequence[ModelMark],
    view: CameraView,
) -> Path:
    """Rewrite the PNG at ``path`` with the models' marks and the legend strip; returns it.

    Raises ``OSError`` when the image cannot be read or written (the caller decides whether
    that fails anything: a screenshot without a legend is still a screenshot).
    """
    from PIL import Image, ImageDraw

    with Image.open(path) as opened:
        shot = opened.convert("RGB")
    width, height = shot.size
    text_px = max(_MIN_TEXT_PX, min(_MAX_TEXT_PX, round(width * _TEXT_SHARE)))
    font = _font(text_px)
    radius = text_px * 0.9
    line = round(text_px * 1.8)
    pad = text_px

    probe = ImageDraw.Draw(shot)
    # A line break in a case id made Pillow refuse the text ("can't measure length of
    # multiline text"), and the whole legend was lost: every model of the build unmarked.
    texts = [visible(m.text) for m in marks]
    widest = max((probe.textlength(t, font=font) for t in texts), default=0.0)
    column = int(2 * radius + pad + widest + 2 * pad)
    columns = max(1, min(len(marks), (width - pad) // max(column, 1)))
    rows = math.ceil(len(marks) / columns) if marks else 0
    strip = pad + line + rows * line + pad

    image = Image.new("RGB", (width, height + strip), _STRIP_BACKGROUND)
    image.paste(shot, (0, 0))
    draw = ImageDraw.Draw(image)
    for number, centre in mark_positions(marks, view, (width, height)).items():
        _disc(draw, centre, radius, number, font)
    top = height + pad
    draw.text((pad, top + line / 2), visible(f"{title}   {subtitle}"), fill=_STRIP_TEXT,
              font=font, anchor="lm")
    for i, (mark, text) in enumerate(zip(marks, texts, strict=True)):
        row, col = divmod(i, columns)
        x = pad + col * column
        y = top + line + row * line + line / 2
        _disc(draw, (x + radius, y), radius, mark.number, font)
        draw.text((x + 2 * radius + pad / 2, y), text, fill=_STRIP_TEXT, font=font,
                  anchor="lm")
    _save(image, path)
    return path


def _save(image: Image.Image, path: Path) -> None:
    """Written beside ``path`` and renamed over it: a reader sees the old image or the new."""
    write_atomically(
        path,
        lambda temporary: image.save(temporary, format="PNG"),
        # Cut to fit: a screenshot's long name (the recipe names it) must not fail its legend.
        temporary=path.with_name(temporary_name(path.name, f"{uuid.uuid4().hex}.tmp")),
    )
