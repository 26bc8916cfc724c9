"""Profile the runner process while it runs one benchmark set's builds (planning apart).

cProfile sees one thread; the runner works in a thread per build, so every build's thread,
and the main thread's run, gets its own profile, and the profiles are merged. The run is
the one ``bench_builds.py`` measures (same sets, recipe, simulated pool and latency).

    python bench/profile_runner.py [--set mixed800] [--servers 1] [--time-scale F]
        [--top 40] [--sort tottime] [--dump FILE] [--no-profile [--split]] [--calls]
        [--segments]

CPU is per thread (``time.thread_time``): waits on sockets and locks cost nothing.
Prints the runner's CPU per model (process time, as the benchmark counts it, and with
cProfile's own overhead in it: compare shares, not the total), its user and system parts
and context switches (``getrusage``, where there is one), the time spent in the
garbage collector, each live thread's CPU, and the top functions. ``--no-profile`` runs
without cProfile and prints the build threads' CPU beside the process's; ``--split`` adds
the build threads' CPU by part (requests and, within them, the socket exchange and the
answers' reading and parsing; log events; model paths; output paths; the saves' staging
folders, placing and removal; the checkpoint journal; leases; and, overlapping those, the
whole checkpoint with its save request, the import check and the scene delete), outermost
calls only, with the timing wrappers' own cost in it. ``--calls`` counts instead of
timing: every Python and C call the build threads make (``sys.setprofile``), per build, by
the package's function nearest on the stack (all of ``logging.py`` as one), the top
``--top`` of them: a count that the machine's load does not change, to compare two versions
of the code where CPU time is too noisy to.
``--segments`` times the build threads' CPU between marked points instead: each socket send
and receive (a receive is where a thread waits for the server), each request, log event
and step, by the pair of points around it (``recv< -> req:importModel<``: from a receive's
end to that request's end), the top ``--top`` pairs by their total: where the CPU between
one wait and the next goes.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import importlib
import logging
import pstats
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_builds import DEFAULT_TIME_SCALE, RECIPE, _models, _settings, _simulator_args

from preform_pipeline.executor import NullReporter, Runner, RunOptions
from preform_pipeline.logging import configure_logging
from preform_pipeline.plan.builds import plan_builds, read_models
from preform_pipeline.recipes import load_recipe
from preform_pipeline.servers import ServerPool

__all__ = ["main"]


def _profiled_builds(
    profiles: list[cProfile.Profile], build_cpu: list[float], enabled: bool
) -> Any:
    """Runner._run_build, each call under its own profile (one per build thread); when not
    ``enabled``, each call's thread CPU time only."""
    original = Runner._run_build
    lock = threading.Lock()

    @functools.wraps(original)
    def run_build(self: Runner, *args: Any) -> Any:
        if not enabled:
            started = time.thread_time()
            try:
                return original(self, *args)
            finally:
                with lock:
                    build_cpu.append(time.thread_time() - started)
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profile)
        profile.enable()
        try:
            return original(self, *args)
        finally:
            profile.disable()

    return original, run_build


class _GcTimer:
    """Time spent in the garbage collector, by generation (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.counts = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        self.seconds[generation] += time.perf_counter() - self._started
        self.counts[generation] += 1


#: What ``--split`` times, by (module, owner, attribute); the outer call of each is counted
#: (a nested call of the same part is not counted twice). Requests include their answer's
#: parsing; events are every structlog event, whoever logs it.
_PARTS: Final = {
    "requests": [("preform_pipeline.api.client", "PreFormClient", "_call"),
                 ("preform_pipeline.api.client", "PreFormClient", "_long"),
                 ("preform_pipeline.api.client", "PreFormClient", "_scene_within")],
    "  of which the exchange": [("preform_pipeline.api._wire", "WireTransport", "exchange")],
    "  of which receiving": [("preform_pipeline.api._wire", None, "_receive")],
    "  of which parsing": [("preform_pipeline.api.client", "PreFormClient", "_parse")],
    "events": [("preform_pipeline.logging", "_ModuleLogger", "_event"),
               ("structlog._base", "BoundLoggerBase", "_proxy_to_logger")],
    "paths": [("preform_pipeline.executor.steps", "StepContext", "source"),
              ("preform_pipeline.api.client", "PreFormClient", "server_path")],
    "output paths": [("preform_pipeline.executor.steps", None, "resolved_output_path")],
    "save folder": [("preform_pipeline.executor.staging", None, "_make_save_folder")],
    "placing": [("preform_pipeline.executor.staging", None, "place_output")],
    "save removal": [("preform_pipeline.executor.staging", None, "_remove_save")],
    "journal": [("preform_pipeline.executor.runner", "BuildJournal", "checkpoint_saved"),
                ("preform_pipeline.executor.runner", "BuildJournal", "checkpoint_path"),
                ("preform_pipeline.executor.runner", "BuildJournal", "discard")],
    "checkpoint (all)": [("preform_pipeline.executor.runner", "_BuildWorker", "_checkpoint")],
    "import check": [("preform_pipeline.api.client", "PreFormClient", "get_scene_model_ids")],
    "scene delete": [("preform_pipeline.executor.runner", "_BuildWorker", "_cleanup")],
    "leases": [("preform_pipeline.executor.runner", "Runner", "lease_avoiding")],
}


class _Split:
    """Thread CPU time inside each part of :data:`_PARTS`, outermost calls only."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(_PARTS, 0.0)
        self._depth = threading.local()
        self._undo: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        for part, places in _PARTS.items():
            for module_name, owner_name, attribute in places:
                module = importlib.import_module(module_name)
                owner = getattr(module, owner_name) if owner_name else module
                original = getattr(owner, attribute)
                self._undo.append((owner, attribute, original))
                setattr(owner, attribute, self._timed(part, original))

    def remove(self) -> None:
        for owner, attribute, original in reversed(self._undo):
            setattr(owner, attribute, original)

    def _timed(self, part: str, original: Any) -> Any:
        depth = self._depth

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            level = getattr(depth, part, 0)
            if level:
                return original(*args, **kwargs)
            setattr(depth, part, 1)
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[part] += time.thread_time() - started
                setattr(depth, part, 0)

        return timed


class _CallCounter:
    """Every call in a build thread (``sys.setprofile``), by the package's function nearest
    on the stack (``executor/steps.py:import_some``; every function of ``logging.py`` as
    ``logging``; ``(outside)`` when none is)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def wrap(self, original: Any) -> Any:
        @functools.wraps(original)
        def counted(*args: Any) -> Any:
            sys.setprofile(self._event)
            try:
                return original(*args)
            finally:
                sys.setprofile(None)

        return counted

    def _event(self, frame: Any, event: str, _arg: Any) -> None:
        if event not in ("call", "c_call"):
            return
        place = "(outside)"
        while frame is not None:
            file = frame.f_code.co_filename.replace("\\", "/")
            if "/preform_pipeline/" in file:
                module = file.rsplit("/preform_pipeline/", 1)[1]
                place = "logging" if module == "logging.py" else (
                    f"{module}:{frame.f_code.co_name}")
                break
            frame = frame.f_back
        with self._lock:
            self.counts[place] += 1


class _Segments:
    """Thread CPU between consecutive marked points of each build thread, by the pair of
    points (see the module docstring); the marks' own cost is in the figures."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], list[float]] = {}
        self._last = threading.local()
        self._lock = threading.Lock()
        self._undo: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        import socket

        from preform_pipeline.api._http import HttpSession
        from preform_pipeline.executor.runner import _BuildWorker
        from preform_pipeline.logging import _ModuleLogger

        self._wrap(socket.socket, "sendall", lambda args, kw: "send")
        self._wrap(socket.socket, "recv_into", lambda args, kw: "recv")
        self._wrap(HttpSession, "request", lambda args, kw: f"req:{kw.get('operation')}")
        self._wrap(_ModuleLogger, "_event", lambda args, kw: f"ev:{args[2]}")
        self._wrap(_BuildWorker, "_run_node", lambda args, kw: f"step:{args[2]}")

    def remove(self) -> None:
        for owner, attribute, original in reversed(self._undo):
            setattr(owner, attribute, original)

    def _mark(self, point: str) -> None:
        now = time.thread_time()
        last = getattr(self._last, "point", None)
        if last is not None:
            with self._lock:
                self.seconds.setdefault((last[0], point), []).append(now - last[1])
        self._last.point = (point, now)

    def _wrap(self, owner: Any, attribute: str, label: Any) -> None:
        original = getattr(owner, attribute)
        self._undo.append((owner, attribute, original))
        mark = self._mark

        @functools.wraps(original)
        def marked(*args: Any, **kwargs: Any) -> Any:
            name = label(args, kwargs)
            mark(name + ">")
            try:
                return original(*args, **kwargs)
            finally:
                mark(name + "<")

        setattr(owner, attribute, marked)


def _usage() -> list[float]:
    """The process's user and system CPU seconds and its voluntary and involuntary context
    switches (``getrusage``; empty where there is none)."""
    try:
        import resource
    except ImportError:
        return []
    own = resource.getrusage(resource.RUSAGE_SELF)
    return [own.ru_utime, own.ru_stime, float(own.ru_nvcsw), float(own.ru_nivcsw)]


def _thread_cpu() -> list[tuple[str, float]]:
    """CPU seconds of each live thread of this process, by thread name (summed)."""
    names = {t.native_id: t.name.split("_")[0] for t in threading.enumerate()}
    total: dict[str, float] = {}
    for thread in psutil.Process().threads():
        name = names.get(thread.id, "(ended)")
        total[name] = total.get(name, 0.0) + thread.user_time + thread.system_time
    return sorted(total.items(), key=lambda item: -item[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="mixed800")
    parser.add_argument("--servers", type=int, default=1)
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--no-profile", action="store_true",
                        help="no cProfile: the build threads' CPU against the process's")
    parser.add_argument("--split", action="store_true",
                        help="with --no-profile: thread CPU by part (requests, events...)")
    parser.add_argument("--dump", type=Path, default=None, help="write the merged stats here")
    parser.add_argument("--calls", action="store_true",
                        help="count the build threads' calls by function instead (no timing)")
    parser.add_argument("--segments", action="store_true",
                        help="the build threads' CPU between marked points (no cProfile)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="profile-runner-"))
    profiles: list[cProfile.Profile] = []
    build_cpu: list[float] = []
    original, patched = _profiled_builds(
        profiles, build_cpu, not (args.no_profile or args.segments or args.calls)
    )
    try:
        configure_logging(level="INFO", json_file=work / "run.jsonl", console=sys.stderr)
        for handler in logging.getLogger("preform_pipeline").handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.ERROR)
        paths = _models(args.set, work / "models")
        recipe_path = work / "recipe.yaml"
        recipe_path.write_text(RECIPE.format(raft_type="FULL_RAFT"), encoding="utf-8")
        recipe = load_recipe(recipe_path)
        models = read_models(paths, import_spec=recipe.import_options)
        # Planned for the servers that run it: builds of even work (plan/balance.py).
        plan = plan_builds(recipe, models, servers=args.servers)
        with ServerPool(_settings(args.servers).pool,
                        simulator_args=_simulator_args(work, args.time_scale, "profile"),
                        count=min(args.servers, len(plan.builds))) as pool:
            runner = Runner(plan, pool, options=RunOptions(output_root=work / "out"),
                            reporter=NullReporter())
            counter = _CallCounter()
            Runner._run_build = (  # type: ignore[method-assign]
                counter.wrap(original) if args.calls else patched
            )
            main_profile = cProfile.Profile(time.thread_time)
            profiles.append(main_profile)
            split = _Split()
            if args.split:
                split.install()
            segments = _Segments()
            if args.segments:
                segments.install()
            gc_timer = _GcTimer()
            gc.callbacks.append(gc_timer)
            usage = _usage()
            cpu = time.process_time()
            if not (args.no_profile or args.calls or args.segments):
                main_profile.enable()
            result = runner.run()
            main_profile.disable()
            cpu = time.process_time() - cpu
            usage = [after - before for before, after in zip(usage, _usage(), strict=True)]
            gc.callbacks.remove(gc_timer)
            split.remove()
            segments.remove()
            threads = _thread_cpu()
    finally:
        Runner._run_build = original  # type: ignore[method-assign]
        shutil.rmtree(work, ignore_errors=True)
    per_model = 1000 / plan.model_count
    if args.calls:
        builds = len(result.outcomes)
        total = sum(counter.counts.values())
        print(f"{args.set} on {args.servers}: ok={result.ok}, {builds} builds, "
              f"{total} calls in the build threads, {total / builds:.0f} per build")
        for place, count in counter.counts.most_common(args.top):
            print(f"  {count / builds:7.0f} per build  {place}")
        return 0
    if args.segments:
        total = sum(sum(times) for times in segments.seconds.values())
        print(f"{args.set} on {args.servers}: ok={result.ok}, {len(result.outcomes)} builds, "
              f"runner CPU {cpu * per_model:.2f} ms/model (marked), between marks "
              f"{total * per_model:.2f}")
        ranked = sorted(segments.seconds.items(), key=lambda item: -sum(item[1]))
        for (start, end), times in ranked[:args.top]:
            print(f"  {sum(times) * per_model:6.3f} ms/model {len(times):5d}x "
                  f"median {statistics.median(times) * 1e6:7.1f} us  {start} -> {end}")
        return 0
    print(f"{args.set} on {args.servers}: ok={result.ok}, {len(result.outcomes)} builds, "
          f"runner CPU {cpu * per_model:.2f} ms/model"
          + (f", build threads {sum(build_cpu) * per_model:.2f}" if args.no_profile
             else " (profiled)"))
    if usage:
        print(f"  process: user {usage[0] * per_model:.2f}, system {usage[1] * per_model:.2f} "
              f"ms/model; {usage[2]:.0f} voluntary and {usage[3]:.0f} involuntary context "
              "switches")
    print("  gc: " + ", ".join(
        f"gen{g} {gc_timer.counts[g]}x {gc_timer.seconds[g] * per_model:.3f} ms/model"
        for g in range(3)) + f"; {len(gc.get_objects())} objects tracked")
    if args.split:
        print("  parts: " + ", ".join(
            f"{part} {seconds * per_model:.3f}" for part, seconds in split.seconds.items())
            + " ms/model")
    for name, seconds in threads:
        print(f"  thread {name}: {seconds * per_model:.3f} ms/model (whole life)")
    if args.no_profile:
        return 0
    stats = pstats.Stats(*profiles)
    if args.dump is not None:
        stats.dump_stats(str(args.dump))
    stats.sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
