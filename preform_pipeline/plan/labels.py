"""Label placement for automation: from a model's bounding box and a recipe rule to the body
of the Local API's ``labelPart`` request.

A recipe's ``label`` step names a rule instead of coordinates::

    label:
      text: "{case_id}"
      font_size_mm: 5
      depth_mm: 0.6
      placement: {face: front, offset_mm: 0, margin_mm: 1, fit: shrink}

The label goes on one face of the model's bounding box as it sits in the scene (after
orientation): ``front`` = -y (the side facing the user), ``back`` = +y, ``left`` = -x,
``right`` = +x, ``top`` = +z, ``bottom`` = -z, ``largest_side`` = the larger vertical face
(front when the model is at least as wide as it is deep, otherwise right). The label's centre
is the face's centre shifted ``offset_mm`` along the face's vertical axis: +z for the four
sides, +y (towards the back) for top and bottom.

Orientation is sent as direction vectors: ``z_direction`` is the face's outward normal (the
text faces out of the model) and ``x_direction`` the reading direction, left to right for
someone looking at that face from outside, upright (head up, or the back edge away from them
for top and bottom).

Whether the text fits is estimated, since the server renders the font: a glyph is taken to be
:data:`DEFAULT_CHAR_WIDTH_EM` font sizes wide. With ``fit: shrink`` (the default) a label too
large for its face gets a smaller font, down to ``min_font_size_mm``; below that, or with
``fit: fail``, :class:`~preform_pipeline.errors.LabelDoesNotFitError` says which label does not
fit. ``fit: skip`` shrinks the same way and lets the caller leave that one model unlabelled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from preform_pipeline.errors import LabelDoesNotFitError, PlanningError
from preform_pipeline.recipes.templates import render_template

__all__ = [
    "DEFAULT_CHAR_WIDTH_EM",
    "DEFAULT_DEPTH_MM",
    "DEFAULT_FONT_SIZE_MM",
    "DEFAULT_LABEL_MARGIN_MM",
    "FACES",
    "MIN_FONT_SIZE_MM",
    "label_request",
    "place_label",
]

#: Average advance width of a glyph in a sans-serif font, as a fraction of the font size.
DEFAULT_CHAR_WIDTH_EM: Final = 0.6
#: Clearance between the text and the face's edges when the rule does not say.
DEFAULT_LABEL_MARGIN_MM: Final = 1.0
#: The Local API's smallest and default-ish label sizes.
MIN_FONT_SIZE_MM: Final = 2.0
DEFAULT_FONT_SIZE_MM: Final = 5.0
DEFAULT_DEPTH_MM: Final = 0.5

FACES: Final[tuple[str, ...]] = ("front", "back", "left", "right", "top", "bottom", "largest_side")

Vector = tuple[float, float, float]


@dataclass(frozen=True)
class _Face:
    """A bounding-box face: outward normal, text-up direction, and the axes of its extent."""

    normal: Vector
    up: Vector
    width_axis: int
    height_axis: int


_FACES: Final[Mapping[str, _Face]] = {
    "front": _Face((0.0, -1.0, 0.0), (0.0, 0.0, 1.0), 0, 2),
    "back": _Face((0.0, 1.0, 0.0), (0.0, 0.0, 1.0), 0, 2),
    "left": _Face((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0), 1, 2),
    "right": _Face((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), 1, 2),
    "top": _Face((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), 0, 1),
    "bottom": _Face((0.0, 0.0, -1.0), (0.0, 1.0, 0.0), 0, 1),
}


def _cross(a: Vector, b: Vector) -> Vector:
    return (
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    )


def _clean(v: float) -> float:
    # -0.0 and float noise read badly in request bodies and logs.
    return 0.0 if v == 0 else float(v)


def _face_name(rule_face: str, size: Vector) -> str:
    if rule_face == "largest_side":
        return "front" if size[0] >= size[1] else "right"
    if rule_face not in _FACES:
        raise PlanningError(
            f"label placement face {rule_face!r} is not one of {', '.join(FACES)}",
            hint="fix placement.face in the recipe's label step",
        )
    return rule_face


# How much of a label's text an error message quotes.
_BRIEF_CHARS = 40


def _brief(text: str) -> str:
    """The label's text for a message: quoted, and cut when long (a label can be pages)."""
    if len(text) <= _BRIEF_CHARS:
        return repr(text)
    return f"{text[:_BRIEF_CHARS]!r}... ({len(text)} characters)"


def _text_extent(text: str, font_size_mm: float) -> tuple[float, float]:
    lines = text.splitlines() or [text]
    width = max(len(line) for line in lines) * font_size_mm * DEFAULT_CHAR_WIDTH_EM
    return width, len(lines) * font_size_mm


def place_label(
    bounds_min: Iterable[float],
    bounds_max: Iterable[float],
    rule: Mapping[str, Any],
    text: str,
    *,
    font_size_mm: float = DEFAULT_FONT_SIZE_MM,
    depth_mm: float = DEFAULT_DEPTH_MM,
    application_mode: str = "EMBOSS",
    model_id: str | None = None,
) -> dict[str, Any]:
    """The ``labelPart`` request body for ``text`` on the face ``rule`` names.

    ``bounds_min`` / ``bounds_max`` are the model's bounding box in scene coordinates (mm);
    ``rule`` is a recipe ``placement`` mapping (``face``, ``offset_mm``, ``margin_mm``,
    ``fit``, ``min_font_size_mm``). ``model_id`` is included when given (the request needs
    it; the caller may add it later). The font size in the answer may be smaller than asked
    when the rule allows shrinking. Pure: no I/O, same answer for the same input.
    """
    low = tuple(float(v) for v in bounds_min)
    high = tuple(float(v) for v in bounds_max)
    if len(low) != 3 or len(high) != 3 or any(h < lo for lo, h in zip(low, high, strict=True)):
        raise ValueError(f"bounds must be two xyz points, min <= max; got {low} and {high}")
    if not text.strip():
        raise PlanningError(
            "label text is empty", hint="check the label step's text template and its fields"
        )
    size: Vector = (high[0] - low[0], high[1] - low[1], high[2] - low[2])
    name = _face_name(str(rule.get("face", "front")), size)
    face = _FACES[name]
    offset = float(rule.get("offset_mm", 0.0))
    margin = float(rule.get("margin_mm", DEFAULT_LABEL_MARGIN_MM))
    fit = str(rule.get("fit", "shrink"))
    # "skip" shrinks like "shrink"; only what happens when even that fails differs (the
    # caller catches LabelDoesNotFitError and leaves the model unlabelled).
    shrinks = fit in ("shrink", "skip")
    smallest = float(rule.get("min_font_size_mm", MIN_FONT_SIZE_MM))

    face_w, face_h = size[face.width_axis], size[face.height_axis]
    room_w = face_w - 2 * margin
    # The offset moves the label off-centre, so the nearer edge limits its height.
    room_h = 2 * (face_h / 2 - abs(offset)) - 2 * margin
    font = float(font_size_mm)
    width, height = _text_extent(text, font)
    if width > room_w or height > room_h:
        fitted = 0.0
        if shrinks and room_w > 0 and room_h > 0:
            # Largest font that fits both ways, floored to 0.01 mm so it stays inside.
            per_mm_w, per_mm_h = _text_extent(text, 1.0)
            fitted = math.floor(min(room_w / per_mm_w, room_h / per_mm_h) * 100) / 100
        if not shrinks or fitted < smallest:
            raise LabelDoesNotFitError(
                f"label {_brief(text)} ({width:.1f} x {height:.1f} mm at font {font:g} mm) "
                f"does not fit the {name} face ({face_w:.1f} x {face_h:.1f} mm, "
                f"margin {margin:g} mm, offset {offset:g} mm)"
                + ("" if not shrinks else f" even at the {smallest:g} mm minimum font"),
                hint="shorten the text, lower font_size_mm / min_font_size_mm, or use a "
                "larger face",
            )
        font = fitted

    centre = [(lo + hi) / 2 for lo, hi in zip(low, high, strict=True)]
    normal_axis = next(i for i, n in enumerate(face.normal) if n != 0)
    centre[normal_axis] = high[normal_axis] if face.normal[normal_axis] > 0 else low[normal_axis]
    position = [c + offset * u for c, u in zip(centre, face.up, strict=True)]
    # Reading direction for a viewer outside the face, head along `up`: right = up x normal.
    x_direction = _cross(face.up, face.normal)

    body: dict[str, Any] = {}
    if model_id is not None:
        body["model_id"] = model_id
    body.update(
        {
            "label": text,
            "position": {"x": _clean(position[0]), "y": _clean(position[1]),
                         "z": _clean(position[2])},
            "orientation": {
                "z_direction": [_clean(v) for v in face.normal],
                "x_direction": [_clean(v) for v in x_direction],
            },
            "font_size_mm": font,
            "depth_mm": float(depth_mm),
            "application_mode": application_mode,
        }
    )
    return body


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    return value


def label_request(
    options: Mapping[str, Any],
    *,
    model_id: str,
    bounds_min: Iterable[float],
    bounds_max: Iterable[float],
    values: Mapping[str, object],
) -> dict[str, Any]:
    """The ``labelPart`` body for one model from a recipe ``label`` step's options.

    ``options["text"]`` is rendered with ``values`` (the model's template fields, e.g.
    ``case_id``) by :func:`preform_pipeline.recipes.templates.render_template`, which raises
    :class:`~preform_pipeline.errors.TemplateError` for a missing field. With a
    ``placement`` rule the position comes from :func:`place_label`; otherwise the step's
    explicit ``position`` and ``orientation`` are sent as given.
    """
    text = render_template(str(options["text"]), values)
    font = float(options.get("font_size_mm", DEFAULT_FONT_SIZE_MM))
    depth = float(options.get("depth_mm", DEFAULT_DEPTH_MM))
    mode = str(options.get("application_mode", "EMBOSS"))
    placement = options.get("placement")
    if placement is not None:
        return place_label(
            bounds_min,
            bounds_max,
            placement,
            text,
            font_size_mm=font,
            depth_mm=depth,
            application_mode=mode,
            model_id=model_id,
        )
    return {
        "model_id": model_id,
        "label": text,
        "position": _thaw(options["position"]),
        "orientation": _thaw(options["orientation"]),
        "font_size_mm": font,
        "depth_mm": depth,
        "application_mode": mode,
    }
