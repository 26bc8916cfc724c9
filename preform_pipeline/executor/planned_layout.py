"""When the server's auto-layout cannot fit a planned build: try the plan's own layout.

The planner proved each build fits by laying its models out (their predicted footprints,
raft rims and spacing); the server's auto-layout is a different search and may give up on a
build the plan packed. Before any model is carried on (:mod:`.overflow`),
:func:`place_as_planned` puts each model where the plan put it, through the Local API
(update-model: the planned footprint centre, then once more by what the box the server
reports is off it, since the contract does not say which point of a model its position is;
the model's own height, the orientation the
orient step gave turned by the planned angle about the platform's z axis), and lets the
server judge the result with its own geometry:

* ``POST /scene/{id}/interferences/`` with ``collision_offset_mm`` = the layout's spacing:
  no pair may come closer than that;
* the scene's own ``in_bounds`` of every model (the contract's ModelProperties).

Only when the server finds both clean is the layout kept (``layout_planned_positions_used``);
otherwise every model goes back where it stood and the build takes today's overflow path
unchanged (``layout_planned_positions_refused``). Nothing is tried unless the plan has a
position for exactly the models in the scene (a carried or dropped model, a carry-in, a
build without placements: ``layout_planned_positions_absent``), and for two of them at
least: a lone model the server cannot lay out does not fit an empty platform, and no
arrangement changes that.

Supports are drawn before the layout (the orient and support steps come first), so moving
a model must move its supports with it. A move in x/y keeps them on any server; whether a
turn about z does is the server's business (the simulator keeps them, as its own
auto-layout does). A model that has lost them after a move is supported again where it
now stands, with the recipe's own auto_support options, before anything is judged: a build
never goes on with bare models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from preform_pipeline.api import (
    UNSET,
    AutoSupportOptions,
    EulerAngles,
    ModelUpdate,
    Position,
    Scene,
)
from preform_pipeline.errors import PermanentApiError
from preform_pipeline.executor.steps import StepContext, StepFailure
from preform_pipeline.geometry import euler_matrix, matrix_to_euler
from preform_pipeline.logging import get_logger
from preform_pipeline.plan.builds import ModelPlacement

__all__ = ["PlannedSpot", "place_as_planned", "planned_spots"]

log = get_logger(__name__)

#: Layout options under which the plan's positions are not the layout asked for: a custom
#: area (the plan used the whole platform) or turns the step forbids.
_INCOMPATIBLE_OPTIONS: Final = ("custom_bounds",)


@dataclass(frozen=True)
class PlannedSpot:
    """Where the plan put one model of the scene: footprint centre and turn about z."""

    model_id: str
    name: str
    x_mm: float
    y_mm: float
    angle_deg: float


def planned_spots(ctx: StepContext) -> list[PlannedSpot] | None:
    """The plan's spot of each model now in the scene, or None unless the plan places
    exactly those models (each placement used once: copies of a file share a path)."""
    placements: dict[Path, list[ModelPlacement]] = {}
    for placement in ctx.build.placements:
        placements.setdefault(placement.path, []).append(placement)
    if not ctx.model_ids or len(ctx.build.placements) != len(ctx.model_ids):
        return None
    spots: list[PlannedSpot] = []
    for index in sorted(ctx.model_ids):
        model = ctx.build.models[index]
        left = placements.get(model.path)
        if not left:
            return None
        placed = left.pop(0)
        spots.append(PlannedSpot(ctx.model_ids[index], model.path.name, placed.x_mm,
                                 placed.y_mm, placed.angle_deg))
    return spots


def _turned(current: EulerAngles | None, angle_deg: float) -> EulerAngles:
    """``current`` turned by ``angle_deg`` about the platform's z axis (after it: the orient
    step's tilt stays as it was)."""
    now = (0.0, 0.0, 0.0) if current is None else (current.x, current.y, current.z)
    x, y, z = matrix_to_euler(euler_matrix(0.0, 0.0, angle_deg) @ euler_matrix(*now))
    return EulerAngles(x, y, z)


def _move(ctx: StepContext, scene: Scene, targets: Mapping[str, ModelUpdate]) -> Scene:
    """Send each update, then read the scene back; models that had supports in ``scene``
    and lost them are supported again where they now stand (the recipe's options)."""
    for model_id, update in targets.items():
        ctx.quick.update_model(ctx.scene, model_id, update, timeout=ctx.step_timeout_s)
    after = ctx.read_scene()
    had = {m.id for m in scene.models if m.has_supports}
    lost = [m.id for m in after.models if m.id in had and m.id in targets and not m.has_supports]
    if not lost:
        return after
    step = next((s for s in ctx.recipe.steps if s.kind == "auto_support"), None)
    if step is None:
        raise StepFailure(
            "permanent",
            f"the server dropped the supports of {len(lost)} model(s) moved to their planned "
            "places, and the recipe has no auto_support step to draw them again",
        )
    options = {k: v for k, v in step.api_options().items() if k != "models"}
    log.info("layout_planned_supports_redrawn", models=len(lost))
    ctx.waiting("auto_support").auto_support(
        ctx.scene, AutoSupportOptions(**options, models=lost), deadline=ctx.deadline()
    )
    return ctx.read_scene()


#: How far a model's box centre may stand from its planned centre (float noise of a server's
#: reply) before it is moved again.
_CENTRE_TOLERANCE_MM: Final = 0.01


def _off_centre(scene: Scene, spots: Sequence[PlannedSpot]) -> dict[str, ModelUpdate]:
    """Moves for the models whose bounding box is not centred where the plan put them.

    The contract says where a position is measured from (the print volume's centre) but not
    which point of the model it is: the simulator's is its box's centre, a server's may be
    the mesh's origin, and then a turn swings the box about it. The box a server reports is
    where the model stands, whatever its position means; each model is moved by what its
    box is off, in the server's own terms (position plus that difference)."""
    updates: dict[str, ModelUpdate] = {}
    for spot in spots:
        model = scene.model(spot.model_id)
        box, at = model.bounding_box, model.position
        if box is None or at is None:
            continue
        dx = spot.x_mm - (box.min_corner.x + box.max_corner.x) / 2.0
        dy = spot.y_mm - (box.min_corner.y + box.max_corner.y) / 2.0
        if max(abs(dx), abs(dy)) > _CENTRE_TOLERANCE_MM:
            updates[spot.model_id] = ModelUpdate(position=Position(at.x + dx, at.y + dy, at.z))
    return updates


def _placing(scene: Scene, spots: Sequence[PlannedSpot]) -> dict[str, ModelUpdate]:
    updates: dict[str, ModelUpdate] = {}
    for spot in spots:
        model = scene.model(spot.model_id)
        z = model.position.z if model.position is not None else 0.0
        turn = _turned(model.orientation, spot.angle_deg) if spot.angle_deg else None
        updates[spot.model_id] = ModelUpdate(
            position=Position(spot.x_mm, spot.y_mm, z),
            orientation=UNSET if turn is None else turn,
        )
    return updates


def _restoring(scene: Scene, spots: Sequence[PlannedSpot]) -> dict[str, ModelUpdate]:
    updates: dict[str, ModelUpdate] = {}
    for spot in spots:
        model = scene.model(spot.model_id)
        if model.position is None:
            continue
        # Only a model that was turned is turned back: a move alone keeps any server's
        # supports, a needless turn might not.
        back = model.orientation if spot.angle_deg else None
        updates[spot.model_id] = ModelUpdate(
            position=model.position, orientation=UNSET if back is None else back
        )
    return updates


def place_as_planned(ctx: StepContext, options: Mapping[str, object], spacing: float) -> bool:
    """Lay the scene out as the plan did and keep it when the server finds it clean (see
    the module docstring); False, with the scene as it was, when it does not or cannot."""
    spots = planned_spots(ctx)
    turns = any(s.angle_deg for s in spots or ())
    if (
        spots is None
        or len(spots) < 2
        or any(options.get(key) for key in _INCOMPATIBLE_OPTIONS)
        or (turns and options.get("lock_rotation"))
    ):
        log.info("layout_planned_positions_absent", models=len(ctx.model_ids),
                 planned=len(ctx.build.placements))
        return False
    before = ctx.read_scene()
    try:
        placed = _move(ctx, before, _placing(before, spots))
        recentre = _off_centre(placed, spots)
        if recentre:
            log.info("layout_planned_positions_recentred", models=len(recentre))
            placed = _move(ctx, placed, recentre)
        pairs = ctx.quick.get_interferences(
            ctx.scene, collision_offset_mm=spacing, timeout=ctx.step_timeout_s
        )
    except PermanentApiError as exc:
        # The fallback is an extra: a server that refuses one of its requests (an older
        # server without the interference check, a move it will not take) must not fail a
        # build the overflow path would carry on. The scene goes back first, read afresh
        # since any number of moves may have landed; a transient error is left to the
        # runner, which never trusts this scene again (a new attempt starts from a
        # checkpoint saved before the layout, or from scratch).
        log.warning("layout_planned_positions_failed", models=len(spots),
                    error=exc.server_message or exc.message)
        _move(ctx, ctx.read_scene(), _restoring(before, spots))
        return False
    names = {s.model_id: s.name for s in spots}
    outside = [names[m.id] for m in placed.models if m.id in names and m.in_bounds is not True]
    if not pairs and not outside:
        log.info("layout_planned_positions_used", models=len(spots), spacing_mm=spacing,
                 turned=sum(1 for s in spots if s.angle_deg))
        return True
    log.info(
        "layout_planned_positions_refused",
        models=len(spots),
        spacing_mm=spacing,
        interfering=sorted({names.get(i, i) for pair in pairs for i in pair}),
        outside=sorted(outside),
    )
    _move(ctx, placed, _restoring(before, spots))
    return False
