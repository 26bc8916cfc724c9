"""Benchmark: what each entry point costs to start (wall and CPU, median of N starts).

The suite starts the command line, the daemons and the simulators about a thousand times a
run, and a user pays the same start at every cron ``run`` and every ``jobs`` query, so the
cost of a start is worth watching; it is measured here rather than asserted in a test
(``tests/unit/test_cli_start_imports.py`` asserts what a start imports, which does not
depend on the machine's load). Each case starts a fresh interpreter:

- a command line runs to its end; its CPU is the child's own (user + system, ``wait4``);
- a simulator runs until it prints ``READY FOR INPUT``; its CPU is read then (psutil),
  before it is stopped, so the stop is not counted;
- a simulator's first model import (``.. first model import``): READY, a scene, then one
  model imported, timed from the start; what a start leaves for later is paid there;
- ``watch --once`` with one file: a fresh inbox, store and output folder each start, the
  file prepared on the simulator (the daemon's own CPU and its simulator's, ``wait4``).

- ``run`` as cron starts it every minute (``--quiet``): over an empty inbox, and over the
  30 sample models once they were all printed (one run before the first measured start
  prints them: the nothing-new repeat, every model skipped).

``--against <another worktree>`` measures that tree's package too (a branch point beside a
branch, in the same interpreter and virtual environment), one start of each in turn: on a
shared machine, medians taken one tree after the other differed by the neighbours' load.

Writes ``bench/results/startup_<label>.json`` and ``.md`` with the machine's load average
beside the figures: on a shared machine the wall time says more about the neighbours than
about the program, the CPU time less so.

    python bench/startup.py [--repeats N] [--label before] [--only simulator [--only jobs]]
                            [--against ../wt-branch-point]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
RECIPE = ROOT / "recipes" / "engineering-grey-form4.yaml"
READY_LINE = "READY FOR INPUT"
SAMPLES = ROOT / "sample_models"
MODEL = SAMPLES / "parts" / "l_bracket.stl"
DEFAULT_REPEATS = 7
START_TIMEOUT_S = 60.0
#: The arguments the server pool starts a simulator with (``servers/process.py``), the port
#: its own; a user's start (docs/simulator.md) names a port and nothing else.
POOL_ARGS = ("--port", "0", "--scene-cache-size", "100")


@dataclass(frozen=True)
class Start:
    """One start's cost, in seconds."""

    wall_s: float
    cpu_s: float


def _command(argv: Sequence[str], env: dict[str, str]) -> Callable[[], Start]:
    def start() -> Start:
        began = time.perf_counter()
        # Started in the home folder: ``-m`` puts the working folder first on the path, and
        # this checkout's package would be measured whatever PYTHONPATH names.
        process = subprocess.Popen([sys.executable, "-m", "preform_pipeline", *argv], env=env,
                                   cwd=env["HOME"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {process.returncode}")
        return Start(wall, usage.ru_utime + usage.ru_stime)
    return start


def _until_ready(module: str, argv: Sequence[str], env: dict[str, str],
                 then: Callable[[int], None] | None = None) -> Callable[[], Start]:
    """Starts ``module`` and waits for READY FOR INPUT, then for ``then(port)`` if given."""
    def start() -> Start:
        began = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", module, *argv], env=env, text=True,
                                   cwd=env["HOME"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            assert process.stdout is not None
            for line in process.stdout:
                if line.strip() == READY_LINE:
                    break
            else:
                raise RuntimeError(f"{module} ended before {READY_LINE}")
            if then is not None:
                then(_listening_port(process.pid))
            wall = time.perf_counter() - began
            times = psutil.Process(process.pid).cpu_times()
            return Start(wall, times.user + times.system)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                # A simulator deaf to SIGTERM was left running by the bench that started it.
                process.kill()
                process.communicate()
    return start


def _listening_port(pid: int) -> int:
    """The TCP port the process ``pid`` listens on (started with ``--port 0``)."""
    for connection in psutil.Process(pid).net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN:
            return int(connection.laddr.port)
    raise RuntimeError(f"process {pid} listens on no port")


def _import_a_model(port: int) -> None:
    """A scene, then one model imported into it (the simulator's first mesh read)."""
    import httpx  # the bench's client; only this case needs it

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=START_TIMEOUT_S) as client:
        client.post("/scene/", json={"machine_type": "FORM-4-0", "material_code": "FLGPGR05",
                                     "layer_thickness_mm": 0.1,
                                     "print_setting": "DEFAULT"}).raise_for_status()
        client.post("/scene/import-model/",
                    json={"file": str(MODEL)}).raise_for_status()


def _watch_one_file(home: Path, env: dict[str, str]) -> Callable[[], Start]:
    """``watch --once`` taking one model from a fresh inbox each time."""
    count = iter(range(1_000_000))

    def start() -> Start:
        folder = home / f"one-{next(count)}"
        folder.mkdir()
        settings = _watch_settings(folder)
        (folder / "inbox" / MODEL.name).write_bytes(MODEL.read_bytes())
        return _command(["watch", "--once", str(settings)], env)()
    return start


def _printed_repeat(home: Path, env: dict[str, str]) -> Callable[[], Start]:
    """A cron ``run`` over the sample models, all printed by a first run before it."""
    argv = ["run", "--quiet", str(RECIPE), str(SAMPLES / "parts"), str(SAMPLES / "batch"),
            "--store", str(home / "printed.sqlite3"), "--output", str(home / "printed-out")]
    first = subprocess.run([sys.executable, "-m", "preform_pipeline", *argv], env=env,
                           cwd=env["HOME"], capture_output=True, text=True, check=False)
    if first.returncode != 0:
        raise RuntimeError(f"the run that prints the samples exited {first.returncode}")
    return _command(argv, env)


def _cases(home: Path, tree: str | None = None) -> dict[str, Callable[[], Start]]:
    """Each entry point's start, in ``home``; ``tree``: another worktree's package."""
    env = {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "PATH": "/usr/bin:/bin"}
    if tree is not None:
        env["PYTHONPATH"] = tree
    home.mkdir(exist_ok=True)
    (home / "run-inbox").mkdir(exist_ok=True)
    # Made once: jobs reads an empty store rather than reporting a missing one.
    subprocess.run([sys.executable, "-c", "import sys; from preform_pipeline.store import "
                    "SqliteJobStore; SqliteJobStore(sys.argv[1]).close()",
                    str(home / "empty.sqlite3")], env=env, check=True)
    store = str(home / "empty.sqlite3")
    fleet = str(home / "fleet")
    repeat: list[Callable[[], Start]] = []

    def printed() -> Start:
        # The printing run once, when this case is first measured (the others need none).
        if not repeat:
            repeat.append(_printed_repeat(home, env))
        return repeat[0]()
    return {
        "--version": _command(["--version"], env),
        "jobs (empty store)": _command(["jobs", "--store", store], env),
        "verify (empty store)": _command(["verify", "--store", store], env),
        "verify --quiet (empty store)": _command(["verify", "--quiet", "--store", store], env),
        "run --quiet (empty inbox)": _command(
            ["run", "--quiet", str(RECIPE), str(home / "run-inbox"), "--store", store,
             "--output", str(home / "run-out")], env),
        "run --quiet (30 models, all printed)": printed,
        "watch --once (empty inbox)": _command(["watch", "--once", str(_watch_settings(home))],
                                               env),
        "watch --once (one file)": _watch_one_file(home, env),
        "validate (sample recipe)": _command(["validate", str(RECIPE)], env),
        "run --dry-run (one model)": _command(
            ["run", "--dry-run", str(RECIPE), str(MODEL), "--output", str(home / "dry")], env),
        "run --help": _command(["run", "--help"], env),
        "serve --help": _command(["serve", "--help"], env),
        "simulator to READY": _until_ready(
            "preform_pipeline.simulator", ["--port", "0", "--fleet-dir", fleet], env),
        "simulator to READY (as the pool starts it)": _until_ready(
            "preform_pipeline.simulator", POOL_ARGS, env),
        "simulator to READY (as a user starts it)": _until_ready(
            "preform_pipeline.simulator", ["--port", "0"], env),
        "simulator to its first model import": _until_ready(
            "preform_pipeline.simulator", POOL_ARGS, env, then=_import_a_model),
        "Dashboard simulator to READY": _until_ready(
            "preform_pipeline.simulator.cloud", ["--port", "0", "--fleet-dir", fleet], env),
    }


def _watch_settings(home: Path) -> Path:
    """Settings of one empty inbox: a cron ``watch --once`` that finds nothing to do."""
    (home / "inbox").mkdir(exist_ok=True)
    settings = home / "watch.yaml"
    settings.write_text(json.dumps({  # JSON is YAML
        "store": {"path": str(home / "watch.sqlite3")},
        "hotfolders": {"output_root": str(home / "output"),
                       "inboxes": [{"path": str(home / "inbox"), "recipe": str(RECIPE)}]},
    }), encoding="utf-8")
    return settings


def _measure(starts: Sequence[Callable[[], Start]], repeats: int) -> list[dict[str, float]]:
    """The medians of each of ``starts``, taken in turn, one start of each a round: side by
    side (``--against``), a neighbour's burst weighs on both alike."""
    for start in starts:
        start()  # warms the page cache and the bytecode caches
    taken: list[list[Start]] = [[] for _ in starts]
    for _ in range(repeats):
        for start, samples in zip(starts, taken, strict=True):
            samples.append(start())
    return [{"wall_s": round(statistics.median(s.wall_s for s in samples), 3),
             "cpu_s": round(statistics.median(s.cpu_s for s in samples), 3)}
            for samples in taken]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--label", default="now", help="names the result files")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="measures only the entry points whose name holds TEXT (repeatable)")
    parser.add_argument("--against", metavar="TREE",
                        help="another worktree (a branch point), measured in turn with this "
                             "one: its figures are the 'against' columns")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pp-bench-startup-") as folder:
        ours = _cases(Path(folder) / "this")
        theirs = _cases(Path(folder) / "against", args.against) if args.against else {}
        results: dict[str, dict[str, float]] = {}
        for name, start in ours.items():
            if args.only and not any(text in name for text in args.only):
                continue
            measured = _measure([start, *([theirs[name]] if theirs else [])], args.repeats)
            results[name] = measured[0] | ({f"against_{key}": value for key, value
                                            in measured[1].items()} if theirs else {})
    report = {"label": args.label, "repeats": args.repeats, "against": args.against,
              "python": platform.python_version(),
              "cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
              "load_after": [round(x, 2) for x in os.getloadavg()], "entry_points": results}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"startup_{args.label}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [f"# Start-up cost ({args.label}): median of {args.repeats}",
             "", f"Load average before {report['load_before']}, after {report['load_after']}"
             f" ({report['cpus']} CPUs, Python {report['python']}).", "",
             *([f"Side by side with `{args.against}` (the 'against' columns), one start of "
                "each in turn.", ""] if args.against else []),
             "| entry point | wall (s) | CPU (s) |"
             + (" against: wall (s) | against: CPU (s) |" if args.against else ""),
             "|---|---:|---:|" + ("---:|---:|" if args.against else "")]
    lines += [f"| {name} | {r['wall_s']:.3f} | {r['cpu_s']:.3f} |"
              + (f" {r['against_wall_s']:.3f} | {r['against_cpu_s']:.3f} |" if args.against
                 else "") for name, r in results.items()]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
