"""When a build does not fit after all: keep the work done, carry only the overflow on.

The planner predicts footprints, but the server has the last word. When its layout answers
"does not fit" for a build of several models (and the recipe says ``on_overflow: split``),
earlier versions halved the build and prepared both halves from scratch: import, orient and
support again for every model. Now:

1. :func:`shed_overflow` takes models out of the scene until the layout fits: the models the
   server's answer names when it names any (the simulator and PreForm list them), else the
   one with the largest predicted footprint. Each removal is one delete request; the layout
   is asked again (a failed layout leaves the scene unchanged). The models that stay keep
   their import, orientation and supports; the build goes on with them.
2. :func:`carry_build` makes a new build of only the removed models (``NAME+1``,
   ``NAME+2`` for a carry of a carry, ...); :func:`join_waiting` first offers them to the
   least filled planned build that has not started yet and that the planner's plain pass
   lays out with them (so a carry does not add a build when the plan's last builds have
   room; if it overflows there, it is carried on again). Either
   way only the carried models are imported, oriented and supported again.

3. When no planned build waits any more (on several servers the last round starts at once),
   the run's **final build** (a roomy one of the last rounds, see
   :func:`~preform_pipeline.executor.runner.run_order`) still takes them until its intake
   closes, after its layout: :class:`FinalIntake`. Before its layout it imports, orients and
   supports the models carried into it so far (only those, in its own scene), then lays out
   at once, without waiting for anyone. After that layout, before its next step, it waits
   until every other build on a server has passed its own layout (the last round's builds
   reach theirs at about the same time, so the wait overlaps its own layout instead of
   preceding it), closes the intake and, only when something was carried in meanwhile,
   imports, orients and supports the newcomers and lays the whole scene out again: a second
   layout only when something was carried, none when nothing was. Only a recipe whose steps
   before the layout are import, orient and support qualifies (a label or drain hole step
   would have to be repeated for the newcomers); otherwise, or once the intake has closed, a
   carry is a build of its own, so a carried model is never lost. A carry that the
   planner's plain pass does not lay out with a build's models is not offered to it (a
   waiting build or the final one): that layout would fail and carry it on again. What the
   final build's own
   layouts carry goes on after that wait, once its last layout is done (to a build of its
   own).

4. A carry that no waiting build takes may also go to a build other than the final one
   that holds a server and has not finished its first layout (the roomiest the planner
   lays it out with): it takes the carry in just before that layout, or right after it and
   lays out again (without the final build's wait), then closes its intake. Carries given to a
   build (the final one too) that ends without taking them in go on as a build of their
   own.

The removed models are kept in :attr:`BuildFacts.carried` (indices into the build's models);
a retry of the build from a checkpoint sheds again and records each model once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import PermanentApiError
from preform_pipeline.executor.steps import (
    StepContext,
    StepFailure,
    import_names,
    is_layout_overflow,
)
from preform_pipeline.logging import get_logger
from preform_pipeline.plan.builds import BuildPlan, ModelInfo
from preform_pipeline.plan.graph import compile_graph
from preform_pipeline.recipes.model import Recipe

__all__ = [
    "CARRY_SUFFIX",
    "INTAKE_STEP_KINDS",
    "FinalIntake",
    "carry_build",
    "carry_name",
    "join_waiting",
    "overflow_names",
    "shed_overflow",
]

log = get_logger(__name__)

#: Step kinds the final build can repeat for carried models alone before its layout.
INTAKE_STEP_KINDS: Final = frozenset({"create_scene", "import_models", "auto_orient",
                                      "auto_support"})
#: Separates a build's name from its carry number: ``bench-003+1``.
CARRY_SUFFIX: Final = "+"
# "... do not fit on the build platform (a, b, c ...); ..." -> "a, b, c"
_NAMED: Final = re.compile(r"\(([^()]*)\)")


def overflow_names(message: str, known: Sequence[str]) -> list[str]:
    """Model names from ``known`` that a "does not fit" message lists, in message order."""
    wanted = set(known)
    names: list[str] = []
    for group in _NAMED.findall(message):
        for part in group.split(","):
            name = part.strip().removesuffix("...").strip()
            if name in wanted and name not in names:
                names.append(name)
    return names


def _hull(model: ModelInfo) -> float:
    shadow = model.shadow
    if shadow is None:
        return model.footprint_mm[0] * model.footprint_mm[1]
    return max(shadow.flat_hull_mm2, shadow.as_is_hull_mm2)


def _choose(ctx: StepContext, error: PermanentApiError) -> list[int]:
    names = import_names(ctx.build)
    present = {names[i]: i for i in ctx.model_ids}
    named = overflow_names(error.server_message or error.message, list(present))
    chosen = [present[n] for n in named]
    if len(chosen) >= len(ctx.model_ids):
        chosen = chosen[: len(ctx.model_ids) - 1]
    if chosen:
        return chosen
    largest = max(ctx.model_ids, key=lambda i: (_hull(ctx.build.models[i]), i))
    return [largest]


def shed_overflow(
    ctx: StepContext, error: PermanentApiError, retry: Callable[[], None]
) -> None:
    """Remove models from the scene until ``retry()`` (the layout) fits; see the module.

    Raises :class:`StepFailure` ``permanent`` when one model is left and still does not fit
    (the models carried so far are still carried on).
    """
    while True:
        if len(ctx.model_ids) <= 1:
            last = ctx.build.models[next(iter(ctx.model_ids))].path.name
            raise StepFailure(
                "permanent",
                f"{last} does not fit an empty platform: "
                f"{error.server_message or error.message}",
                cause=error,
            )
        for index in _choose(ctx, error):
            ctx.quick.delete_model(ctx.scene, ctx.model_ids.pop(index),
                                   timeout=ctx.step_timeout_s)
            if index not in ctx.facts.carried:
                ctx.facts.carried.append(index)
        log.info(
            "overflow_carried",
            carried=[ctx.build.models[i].path.name for i in ctx.facts.carried],
            staying=len(ctx.model_ids),
        )
        ctx.facts.layout_calls += 1
        try:
            retry()
            return
        except PermanentApiError as exc:
            if not is_layout_overflow(exc):
                raise
            error = exc


def carry_name(build: BuildPlan) -> str:
    """``NAME+1`` for a planned build, ``NAME+2`` for the carry of ``NAME+1``, ..."""
    base, sep, number = build.name.rpartition(CARRY_SUFFIX)
    if sep and number.isdigit():
        return f"{base}{CARRY_SUFFIX}{int(number) + 1}"
    return f"{build.name}{CARRY_SUFFIX}1"


def carry_build(
    recipe: Recipe, build: BuildPlan, carried: Sequence[int], index: int
) -> tuple[BuildPlan, BuildPlan]:
    """The build as it ran (without the carried models) and the new build of the carried
    models, numbered ``index``."""
    moved = tuple(build.models[i] for i in sorted(carried))
    kept = tuple(m for i, m in enumerate(build.models) if i not in set(carried))
    share = build.estimated_volume_ml / max(sum(m.volume_mm3 for m in build.models), 1e-9)
    stayed = BuildPlan(
        index=build.index,
        name=build.name,
        models=kept,
        placements=tuple(p for p in build.placements if p.path in {m.path for m in kept}),
        fill_ratio=build.fill_ratio,
        estimated_volume_ml=sum(m.volume_mm3 for m in kept) * share,
        graph=build.graph,
    )
    carry = BuildPlan(
        index=index,
        name=carry_name(build),
        models=moved,
        placements=(),
        fill_ratio=0.0,
        estimated_volume_ml=sum(m.volume_mm3 for m in moved) * share,
        graph=compile_graph(recipe, moved),
    )
    return stayed, carry


def join_waiting(
    recipe: Recipe,
    carry: BuildPlan,
    waiting: Sequence[BuildPlan],
    fits: Callable[[Sequence[ModelInfo]], bool] | None = None,
) -> BuildPlan | None:
    """The least filled waiting build with the carried models added (same name and index),
    or None when no build waits, the recipe caps models per build below the sum, or
    ``fits`` (the planner's plain pass) finds no waiting build that lays them all out.

    The planner's plain pass places more than a server's layout does (it is how a carry
    came about), so its no is a strong no: a build it refuses would only lay out again,
    fail and carry the model on once more, all of it work thrown away."""
    cap = recipe.batching.max_models_per_build
    roomiest_first = sorted(waiting, key=lambda b: (b.fill_ratio, len(b.models), b.index))
    target = next((
        b for b in roomiest_first
        if (cap is None or len(b.models) + len(carry.models) <= cap)
        and (fits is None or fits((*b.models, *carry.models)))
    ), None)
    if target is None:
        return None
    models = (*target.models, *carry.models)
    return BuildPlan(
        index=target.index,
        name=target.name,
        models=models,
        placements=target.placements,
        fill_ratio=target.fill_ratio,
        estimated_volume_ml=target.estimated_volume_ml + carry.estimated_volume_ml,
        graph=compile_graph(recipe, models),
    )


class FinalIntake:
    """The final build's intake of carried models (item 3 of the module docstring), and
    the other running builds' until their first layout is done (item 4).

    Thread-safe: builds report here when they hold a server, when they have passed their
    layout, and when they end; carries are offered from their builds' threads. The wait of
    :meth:`take` is measured on ``clock``, the run's (every duration of a run is).
    """

    def __init__(self, final: str | None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.final = final
        self._clock = clock
        self._cond = threading.Condition()
        self._open = final is not None
        self._started = False
        self._pending: list[ModelInfo] = []
        self._busy: set[str] = set()
        # Another running build's intake (item 4 of the module docstring): what was carried
        # into it, and the builds that have taken theirs in (or ended) and take no more.
        self._early: dict[str, list[ModelInfo]] = {}
        self._early_closed: set[str] = set()

    @staticmethod
    def qualifies(recipe: Recipe) -> bool:
        """Whether the recipe's steps before its auto_layout can be repeated for newcomers."""
        kinds = [s.kind for s in recipe.steps]
        if "auto_layout" not in kinds or recipe.batching.on_overflow != "split":
            return False
        before = kinds[: kinds.index("auto_layout")]
        return all(k in INTAKE_STEP_KINDS for k in before)

    def holding(self, build: str, busy: bool) -> None:
        """``build`` holds a server and has not laid out yet (or no longer does)."""
        with self._cond:
            if busy and build != self.final:
                self._busy.add(build)
            else:
                self._busy.discard(build)
            if build == self.final and busy:
                self._started = True
            self._cond.notify_all()

    def offer(
        self,
        models: Sequence[ModelInfo],
        fits: Callable[[Sequence[ModelInfo]], bool] | None = None,
    ) -> bool:
        """Take carried models into the final build, if it is running and still open, and
        ``fits`` (given the carried models not yet taken in, then these) says it has room."""
        with self._cond:
            if not (self._open and self._started):
                return False
            if fits is not None and not fits((*self._pending, *models)):
                return False
            self._pending.extend(models)
            self._cond.notify_all()
            return True

    def close(self, build: str | None = None) -> list[ModelInfo]:
        """``build`` (the final build when None) has ended: close its intake and return what
        was carried into it and never taken in (it ended before its layout, failed, or was
        stopped), so that the runner sends it on and no carried model is lost."""
        with self._cond:
            if build is None or build == self.final:
                self._open = False
                left, self._pending = self._pending, []
            else:
                self._early_closed.add(build)
                left = self._early.pop(build, [])
            self._cond.notify_all()
            return left

    def running_before_layout(self) -> list[str]:
        """The builds other than the final one that hold a server, have not finished their
        first layout and still take carries (:meth:`offer_early`), by name."""
        with self._cond:
            if self.final is None:
                return []  # the recipe's steps before the layout cannot be repeated
            return sorted(self._busy - self._early_closed)

    def offer_early(
        self,
        build: str,
        models: Sequence[ModelInfo],
        fits: Callable[[Sequence[ModelInfo]], bool] | None = None,
    ) -> bool:
        """Take carried models into ``build``, a running build other than the final one,
        if it has not finished its first layout and ``fits`` (given what was carried into
        it already, then these) says it has room; it takes them in just before that layout
        or right after it (:meth:`arrived_early`)."""
        with self._cond:
            if self.final is None or build not in self._busy or build in self._early_closed:
                return False
            pending = self._early.get(build, [])
            if fits is not None and not fits((*pending, *models)):
                return False
            self._early.setdefault(build, []).extend(models)
            return True

    def arrived_early(self, build: str, *, last: bool) -> list[ModelInfo]:
        """For ``build`` (not the final one): what was carried into it so far; just before
        its first layout, and once more right after it with ``last``, which closes its
        intake (a carry that came during the layout is laid out with the rest again)."""
        with self._cond:
            if last:
                self._early_closed.add(build)
            return self._early.pop(build, [])

    def arrived(self) -> list[ModelInfo]:
        """For the final build, just before its first layout: what was carried into it so
        far, without waiting; the intake stays open (:meth:`take` closes it)."""
        with self._cond:
            taken, self._pending = self._pending, []
            return taken

    def take(self, timeout_s: float, cancelled: Callable[[], bool]) -> list[ModelInfo]:
        """For the final build, after its first layout: wait until no other build on a server
        is still before its layout (at most ``timeout_s``), close the intake and return what
        was carried into it since :meth:`arrived` (its scene is laid out again only if any)."""
        deadline = self._clock.monotonic() + timeout_s
        with self._cond:
            while self._open and self._busy and not cancelled():
                left = deadline - self._clock.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
            self._open = False
            taken, self._pending = self._pending, []
            return taken
