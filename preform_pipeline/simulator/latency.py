"""Latency profiles: how long a simulated operation takes, and spending that time.

``instant`` adds nothing. ``realistic`` prices each operation from the engine's
:class:`~preform_pipeline.simulator.protocol.WorkEstimate`::

    seconds = (base_s + per_model_s * models + per_mtri_s * triangles / 1e6) * time_scale

The time is spent *waiting* in short slices (reporting progress after each), never computing,
so many simulator processes on a small machine behave like many busy PreFormServers without
competing for CPU. The numbers are plausible orders of magnitude for PreFormServer on a desktop
computer, chosen so auto support and layout dominate a job as they do in practice; they are
not measurements of any particular PreForm release.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from preform_pipeline.simulator.protocol import ProgressCallback, WorkEstimate

__all__ = [
    "DEFAULT_PROGRESS_SLICE_S",
    "DEFAULT_TIME_SCALE",
    "FALLBACK_COST",
    "INSTANT",
    "LATENCY_PROFILES",
    "REALISTIC",
    "REALISTIC_COSTS",
    "LatencyProfile",
    "OperationCost",
    "latency_profile",
    "spend",
]

INSTANT: Final = "instant"
REALISTIC: Final = "realistic"
LATENCY_PROFILES: tuple[str, ...] = (INSTANT, REALISTIC)

DEFAULT_TIME_SCALE = 1.0

#: Longest single wait while spending latency: progress is reported at least this often and a
#: shutdown interrupts the wait within this time.
DEFAULT_PROGRESS_SLICE_S = 0.05

_MTRI = 1_000_000


@dataclass(frozen=True)
class OperationCost:
    """Unscaled seconds one operation costs: a fixed part plus parts per model and per Mtri."""

    base_s: float
    per_model_s: float = 0.0
    per_mtri_s: float = 0.0

    def seconds(self, work: WorkEstimate) -> float:
        return (
            self.base_s
            + self.per_model_s * max(0, work.models)
            + self.per_mtri_s * max(0, work.triangles) / _MTRI
        )


#: Priced operations of the realistic profile (operation id -> cost). docs/simulator.md
#: reproduces this table; keep them together.
REALISTIC_COSTS: Mapping[str, OperationCost] = MappingProxyType(
    {
        "get_api_version": OperationCost(0.002),
        "login": OperationCost(0.5),
        "logout": OperationCost(0.1),
        "get_user": OperationCost(0.05),
        "create_scene": OperationCost(0.05),
        # Replaces the default scene: the models it discards cost as delete_scene's do.
        "create_default_scene": OperationCost(0.05, per_model_s=0.005),
        "delete_default_scene": OperationCost(0.02, per_model_s=0.005),
        "get_all_scenes": OperationCost(0.01, per_model_s=0.001),
        "get_scene": OperationCost(0.01, per_model_s=0.002),
        "update_scene": OperationCost(0.05, per_model_s=0.01),
        "delete_scene": OperationCost(0.02, per_model_s=0.005),
        "load_form_file": OperationCost(0.5, per_model_s=0.1, per_mtri_s=2.0),
        "save_form_file": OperationCost(0.3, per_model_s=0.05, per_mtri_s=1.5),
        "save_screenshot": OperationCost(0.5, per_model_s=0.02, per_mtri_s=0.5),
        "save_fps_file": OperationCost(0.2, per_model_s=0.01),
        "get_model": OperationCost(0.01),
        "update_model": OperationCost(0.02),
        "delete_model": OperationCost(0.02),
        "duplicate_model": OperationCost(0.1, per_mtri_s=0.5),
        "replace_model": OperationCost(0.3, per_mtri_s=4.0),
        "import_model": OperationCost(0.3, per_mtri_s=4.0),
        "scan_to_model": OperationCost(1.0, per_mtri_s=6.0),
        "print": OperationCost(1.5, per_model_s=0.2, per_mtri_s=3.0),
        "auto_orient": OperationCost(0.5, per_model_s=0.8, per_mtri_s=3.0),
        "auto_support": OperationCost(1.0, per_model_s=3.0, per_mtri_s=20.0),
        "auto_layout": OperationCost(1.0, per_model_s=1.0, per_mtri_s=2.0),
        "auto_pack": OperationCost(2.0, per_model_s=1.0, per_mtri_s=4.0),
        "pack_and_cage": OperationCost(3.0, per_model_s=1.5, per_mtri_s=5.0),
        "get_print_validation": OperationCost(0.3, per_model_s=0.2, per_mtri_s=2.0),
        "hollow_model": OperationCost(2.0, per_model_s=0.5, per_mtri_s=15.0),
        "label_part": OperationCost(0.5, per_mtri_s=1.0),
        "estimate_print_time": OperationCost(0.5, per_model_s=0.2, per_mtri_s=3.0),
        "add_drain_holes": OperationCost(0.4, per_mtri_s=2.0),
        "get_scene_interferences": OperationCost(0.3, per_model_s=0.3, per_mtri_s=2.0),
        "get_devices": OperationCost(0.02),
        "get_device": OperationCost(0.01),
        "discover_devices": OperationCost(2.0),
        "upload_firmware": OperationCost(5.0),
        "list_materials": OperationCost(0.02),
    }
)

#: Cost of an operation the table does not name.
FALLBACK_COST = OperationCost(0.05)

_NO_COST = OperationCost(0.0)


@dataclass(frozen=True)
class LatencyProfile:
    """A named price list for operations, scaled by ``time_scale`` (0.01 = 100x faster)."""

    name: str
    costs: Mapping[str, OperationCost] = field(default_factory=lambda: MappingProxyType({}))
    fallback: OperationCost = _NO_COST
    time_scale: float = DEFAULT_TIME_SCALE

    def __post_init__(self) -> None:
        if self.time_scale < 0:
            raise ValueError(f"time scale must be >= 0, got {self.time_scale}")

    def cost_seconds(self, operation_id: str, work: WorkEstimate) -> float:
        cost = self.costs.get(operation_id, self.fallback)
        return max(0.0, cost.seconds(work) * self.time_scale)


def latency_profile(name: str, time_scale: float = DEFAULT_TIME_SCALE) -> LatencyProfile:
    """The profile called ``name`` (one of :data:`LATENCY_PROFILES`)."""
    if name == INSTANT:
        return LatencyProfile(INSTANT, time_scale=time_scale)
    if name == REALISTIC:
        return LatencyProfile(REALISTIC, REALISTIC_COSTS, FALLBACK_COST, time_scale)
    raise ValueError(f"unknown latency profile {name!r}; choose one of {LATENCY_PROFILES}")


def spend(
    seconds: float,
    progress: ProgressCallback | None,
    wait: Callable[[float], bool],
    *,
    slice_s: float = DEFAULT_PROGRESS_SLICE_S,
    clock: Callable[[], float],
) -> bool:
    """Wait ``seconds`` in slices, reporting the elapsed fraction after each slice.

    ``wait(timeout)`` is an interruptible wait (``threading.Event.wait`` of the server's stop
    event): it returns ``True`` to abandon the wait early, and then so does this function.
    """
    if seconds <= 0:
        return False
    start = clock()
    deadline = start + seconds
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            break
        if wait(min(slice_s, remaining)):
            return True
        if progress is not None:
            progress(min(1.0, (clock() - start) / seconds))
    if progress is not None:
        progress(1.0)
    return False
