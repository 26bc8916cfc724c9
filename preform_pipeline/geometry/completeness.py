"""Is a model file completely written? The format rules, shared by the hot folder and ``run``.

=========  ============================================================================
STL        binary: size is exactly ``84 + 50 x`` the triangle count in its header;
           ASCII: the last line ends the solid (``endsolid``)
3MF        the zip's central directory (written last) is intact and names a model part
other      OBJ and anything else: no rule; only time tells (a quiet period)
=========  ============================================================================

An STL of 84 bytes or less has no triangles yet (some writers patch the count in last), and a
file whose first bytes show it is something else (a PNG named ``.stl``) would never pass its
rule: both are judged like formats without a rule.

:func:`format_completeness` is the rule alone; the hot folder's tracker adds its observations
over time, and :func:`judge_at_rest` judges a file in one look from its modification time
(``run``, which does not watch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .sniff import SNIFF_BYTES, impostor

__all__ = ["BINARY_STL_HEADER_BYTES", "AtRest", "format_completeness", "judge_at_rest"]

BINARY_STL_HEADER_BYTES: Final = 84
# Leading bytes that decide whether an STL without "solid" is text (and so not an STL).
_TEXT_PROBE_BYTES: Final = 512


def _other_content(path: Path, suffix: str) -> bool:
    """True when the file's first bytes show it is not the model its name says."""
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return False
    if impostor(head, suffix) is not None:
        if suffix != ".stl":
            return True
        # A binary STL's header is free text: one starting like a PNG, "Plywood" or "BMW"
        # still being copied keeps its rule (it waits), not a quiet period (session 42's
        # review). Imported here, as below: the rule's import stays without numpy.
        from .stl import records_follow_header

        return not records_follow_header(path)
    if suffix == ".stl" and head.lstrip()[:5].lower() != b"solid":
        sample = head[:_TEXT_PROBE_BYTES]
        return all(32 <= b < 127 or b in (9, 10, 13) for b in sample)  # text, yet not STL
    return False


def format_completeness(path: Path, size: int) -> bool | None:
    """Whether the format's rule says the file (of ``size`` bytes) is whole; None when no
    rule applies (OBJ and other formats, an STL without triangles yet, an impostor)."""
    suffix = path.suffix.lower()
    if suffix not in (".stl", ".3mf"):
        return None
    if suffix == ".stl" and size <= BINARY_STL_HEADER_BYTES:
        return None
    if _other_content(path, suffix):
        return None
    # The format modules are the readers too, and import numpy: imported here, where a file
    # is judged, so that importing the rule (the hot folder's intake, and so `jobs`) does not.
    if suffix == ".stl":
        from .stl import stl_completeness

        return stl_completeness(path)
    from .threemf import threemf_completeness

    return threemf_completeness(path)


@dataclass(frozen=True)
class AtRest:
    """One look at a file: take it now or not, and why (a sentence)."""

    takeable: bool
    reason: str


def judge_at_rest(
    path: Path, *, age_s: float, size: int, quiet_period_s: float, incomplete_timeout_s: float
) -> AtRest:
    """Judge ``path`` last modified ``age_s`` seconds ago (negative: its time is ahead of
    this clock): whole by its format's rule, or, without a rule, unchanged for
    ``quiet_period_s``. A file that fails its rule for
    ``incomplete_timeout_s`` is taken anyway, so it fails with the reader's reason."""
    whole = format_completeness(path, size)
    if whole:
        return AtRest(True, "complete")
    if whole is None:
        if age_s >= quiet_period_s:
            return AtRest(True, f"unchanged for {age_s:.0f} s")
        if age_s < 0:
            # A time ahead of this clock is no age at all: "changed 0.0 s ago" was said of it
            # on every run until the clock caught up (session 42's cron trial).
            return AtRest(
                False,
                f"its modification time is {-age_s:.0f} s ahead of this machine's clock (this "
                "clock was set back, or the file server's clock runs ahead), so it counts as "
                f"still being written until it is {quiet_period_s:g} s old by this clock, "
                f"{quiet_period_s - age_s:.0f} s from now",
            )
        return AtRest(
            False,
            f"still being written (changed {age_s:.1f} s ago; taken after "
            f"{quiet_period_s:g} s without change)",
        )
    if age_s >= incomplete_timeout_s:
        return AtRest(True, f"still incomplete after {age_s:.0f} s without change")
    kind = "STL" if path.suffix.lower() == ".stl" else "3MF"
    return AtRest(False, f"still being written (the {kind} is incomplete, {size} bytes so far)")
