"""What an SLS build will use before any server packs it: bed height, powder, time, cooling.

The planner knows the parts' volume and the share of the chamber a build is offered
(``batching.packing_density``). It assumes the packer stacks the parts from the floor up to
the height that share takes (never lower than the tallest part's shortest side, since each
part must fit standing somewhere), and prices that bed:

- **sintered powder** is the parts' volume, at the material's solid density (kg);
- **total powder** is the bed (chamber cross-section x height); its mass is the sintered parts
  plus the loose powder around them, at :data:`POWDER_BULK_DENSITY_G_ML`;
- **print time** is a warm-up plus a time per layer; **cooling** in the printer until the
  build may be removed, then on to room temperature, grows with the bed's height.

The timing figures are assumptions, not published specifications (docs/planning.md): a
Fuse 1+ warms up for about 45 minutes, recoats and scans a layer in roughly 9 s, and its bed
cools for about an hour plus 40 s per mm before removal and a further half hour plus 20 s per
mm to room temperature. The server's own estimate (the ``estimate`` step) replaces them in
the run report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from preform_pipeline.catalogue import MachineType

__all__ = ["POWDER_BULK_DENSITY_G_ML", "PowderEstimate", "SlsTiming", "estimate_powder"]

#: Loose nylon powder in the bed, g/ml (tapped Nylon 12 powders are about 0.45-0.5).
POWDER_BULK_DENSITY_G_ML: Final = 0.45


@dataclass(frozen=True)
class SlsTiming:
    """A powder printer's timing assumptions (seconds)."""

    warm_up_s: float = 2700.0
    per_layer_s: float = 9.0
    cool_to_removal_base_s: float = 3600.0
    cool_to_removal_per_mm_s: float = 40.0
    cool_to_room_base_s: float = 1800.0
    cool_to_room_per_mm_s: float = 20.0


#: Timing by machine type id; others get the Fuse 1+ figures.
_TIMING: Final[dict[str, SlsTiming]] = {"FS30-1-0": SlsTiming()}


@dataclass(frozen=True)
class PowderEstimate:
    """One SLS build as planned: volumes in ml, masses in kg, times in seconds."""

    bed_height_mm: float
    packing_density: float
    total_powder_ml: float
    total_powder_kg: float
    sintered_powder_ml: float
    sintered_powder_kg: float
    print_time_s: float
    cool_to_removal_s: float
    cool_to_room_temperature_s: float


def estimate_powder(
    machine: MachineType,
    part_volumes_mm3: Sequence[float],
    shortest_sides_mm: Sequence[float],
    *,
    packing_density: float,
    material_density_g_ml: float,
    layer_mm: float,
) -> PowderEstimate:
    """The figures of a build of parts with these volumes (see the module docstring)."""
    bx, by, bz = machine.build_volume_mm
    parts_mm3 = sum(part_volumes_mm3)
    height = max(parts_mm3 / (bx * by * packing_density), max(shortest_sides_mm, default=0.0))
    height = min(bz, height)
    bed_ml = max(bx * by * height / 1000.0, parts_mm3 / 1000.0)
    sintered_ml = parts_mm3 / 1000.0
    sintered_kg = sintered_ml * material_density_g_ml / 1000.0
    total_kg = sintered_kg + (bed_ml - sintered_ml) * POWDER_BULK_DENSITY_G_ML / 1000.0
    timing = _TIMING.get(machine.type_id, SlsTiming())
    layers = height / layer_mm if layer_mm > 0 else 0.0
    return PowderEstimate(
        bed_height_mm=height,
        packing_density=sintered_ml / bed_ml if bed_ml > 0 else 0.0,
        total_powder_ml=bed_ml,
        total_powder_kg=total_kg,
        sintered_powder_ml=sintered_ml,
        sintered_powder_kg=sintered_kg,
        print_time_s=timing.warm_up_s + layers * timing.per_layer_s,
        cool_to_removal_s=timing.cool_to_removal_base_s + height * timing.cool_to_removal_per_mm_s,
        cool_to_room_temperature_s=(
            timing.cool_to_room_base_s + height * timing.cool_to_room_per_mm_s
        ),
    )
