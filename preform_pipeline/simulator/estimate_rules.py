"""The named figures the simulator's estimates follow: plain numbers, without the geometry.

Apart from ``estimates.py`` (which re-exports them and applies them to a scene's models, with
numpy) because the Dashboard simulator's fleet view needs three of them (a print's pre-print
time, the adaptive layer's average) and no geometry: importing ``estimates`` cost each
Dashboard simulator start numpy. The values are plausible orders of magnitude for Formlabs
machines, not measured ones (``docs/simulator-engine.md``).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ADAPTIVE_AVERAGE_LAYER_MM",
    "SLA_PREPRINT_S",
    "SLA_SECONDS_PER_LAYER",
    "SLS_PREPRINT_S",
    "SLS_SECONDS_PER_LAYER",
    "SLS_COOL_TO_REMOVAL_BASE_S",
    "SLS_COOL_TO_REMOVAL_S_PER_MM",
    "SLS_ADDITIONAL_COOL_BASE_S",
    "SLS_ADDITIONAL_COOL_S_PER_MM",
    "SLS_POWDER_BULK_DENSITY_G_ML",
    "DEFAULT_RAFT_THICKNESS_MM",
    "DEFAULT_HEIGHT_ABOVE_RAFT_MM",
]

#: ADAPTIVE layer height varies with the geometry; estimates use this average thickness.
ADAPTIVE_AVERAGE_LAYER_MM: Final = 0.1
#: SLA: resin heating, tank filling and platform homing before the first layer.
SLA_PREPRINT_S: Final = 300.0
#: SLA: exposure, peel and recoat per layer (independent of area, as on the LCD Form 4), for
#: a scene without a custom print setting.
SLA_SECONDS_PER_LAYER: Final = 7.0
#: SLS: chamber and powder-bed warm-up before the first layer.
SLS_PREPRINT_S: Final = 2700.0
#: SLS: powder recoat and laser scan per layer.
SLS_SECONDS_PER_LAYER: Final = 9.0
#: SLS cooling until the build can leave the printer (~100 degC): base plus per mm of build.
SLS_COOL_TO_REMOVAL_BASE_S: Final = 3600.0
SLS_COOL_TO_REMOVAL_S_PER_MM: Final = 40.0
#: SLS further cooling to room temperature inside the printer.
SLS_ADDITIONAL_COOL_BASE_S: Final = 1800.0
SLS_ADDITIONAL_COOL_S_PER_MM: Final = 20.0
#: Loose (unsintered) powder density, g/ml, for the mass of powder a build consumes.
SLS_POWDER_BULK_DENSITY_G_ML: Final = 0.45
#: Auto-support defaults: the model is lifted by raft + height above raft.
DEFAULT_RAFT_THICKNESS_MM: Final = 2.0
DEFAULT_HEIGHT_ABOVE_RAFT_MM: Final = 5.0
