"""Benchmark: what judging a big case before it is planned costs (plan/held.py).

A case folder of many parts (``--arches``, 60 by default: distinct generated dental arches,
half with a palate, written to ``bench/.data/arches``) goes through ``hold_cases`` (which asks
:func:`~preform_pipeline.plan.builds.refused_alone` what the planner would refuse of a part
alone) and then through :func:`~preform_pipeline.plan.builds.plan_builds`, as ``run`` and
the hot folder's worker do. Before session 40 ``refused_alone`` nested the whole case once
more than the plan does, only to learn which parts fit no empty platform; the test is the
nester's own per-part one (``nest(search=False)``), without the search.

    python bench/bench_case_hold.py [--arches N] [--repeat N] [--recipe PATH]

Prints the median wall and CPU time of each step over ``--repeat`` runs (the models read
once, outside the timing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sample_models"))

from make_samples import write_arches

from preform_pipeline.plan.builds import plan_builds, read_models, refused_alone
from preform_pipeline.plan.held import CaseOf, hold_cases
from preform_pipeline.recipes import load_recipe

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / ".data"


def _timed(step: Callable[[], object], repeat: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arches", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--recipe", type=Path,
                        default=ROOT / "recipes" / "dental-models-form4.yaml")
    args = parser.parse_args(argv)
    recipe = load_recipe(args.recipe)
    paths = write_arches(DATA / "arches", args.arches)
    models = read_models(paths, import_spec=recipe.import_options,
                         case_ids=dict.fromkeys(paths, "C-1"))
    cases = dict.fromkeys(paths, CaseOf("C-1", "C-1"))
    rows = {
        "refused_alone": lambda: refused_alone(recipe, models),
        "hold_cases": lambda: hold_cases(recipe, models, cases, []),
        "plan_builds": lambda: plan_builds(recipe, models),
    }
    print(f"{len(models)} arches in one case, recipe {args.recipe.name}, "
          f"median of {args.repeat}")
    for name, step in rows.items():
        wall, cpu = _timed(step, args.repeat)
        print(f"{name:14s} wall {wall:7.3f} s  cpu {cpu:7.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
