"""Benchmark: one 300 MB binary STL through ``preform-pipeline plan`` and the simulator's import.

Issue 18's large-file targets: planning a 300 MB STL takes under 5 s on one core and under
700 MB of memory; the simulator holds no more than two copies of the mesh.

The file is generated at bench time into ``bench/.data/large/`` (git-ignored; kept between
runs): a grid of closed 0.5 mm boxes, 6 M triangles, that fits a Form 4 platform. Every
measured run is a fresh child process, waited for with ``os.wait4`` so its own peak resident
memory and CPU time come from the kernel (Unix only, like the machines this runs on):

- **plan**: the real command, ``python -m preform_pipeline plan RECIPE FOLDER --format json``,
  with the example recipe ``recipes/engineering-grey-form4.yaml`` (units judged, normals
  checked, orientation and footprint measured), interpreter start-up and imports included;
- **checks**: what ``run`` does to the file before reading it: the completeness rule (sniff,
  size against the header) and the content hash of the store key;
- **simulator**: a simulator engine (the one ``python -m preform_pipeline.simulator`` serves)
  creates a Form 4 scene, imports the file, lays it out and saves the ``.form``; peak memory is
  read after each step. The baseline (interpreter and imports) is read before the import.

Wall time depends on what else the machine runs, CPU time much less: both are recorded with
the load average before each run. Writes bench/results/large_stl.json and .md.

``--obj 16,64,128`` measures the OBJ reader instead (nothing of the STL case runs): for each
size in MiB an OBJ of closed boxes (each row's ``v`` lines, then its ``f`` lines) is written
into ``bench/.data/large/``, and a fresh child process reads it with ``read_mesh``; its peak
RSS is compared with its baseline (interpreter and imports) and with the file's size. Writes
bench/results/<--output>.json and .md (default ``large_obj``).

    nice python bench/bench_large_stl.py [--triangles N] [--repeats R]
    nice python bench/bench_large_stl.py --obj 16,64,128 [--repeats R] [--output NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DATA = HERE / ".data" / "large"
RECIPE = ROOT / "recipes" / "engineering-grey-form4.yaml"
#: 6 M triangles x 50 bytes + 84 = 300 MB.
DEFAULT_TRIANGLES = 6_000_000
TARGET_S = 5.0
TARGET_MB = 700.0
_MIB = 1024 * 1024
#: The same file, recipe and command on main before streaming (commit 8eea169), measured once
#: on this machine on 2026-12-03 at a load average of about 6 (`/usr/bin/time -v`): kept here
#: so every regenerated report shows what changed.
BEFORE = (
    "Before streaming (main at 8eea169, one run each, same file and command, load about 6): "
    "`plan` 15.0 s CPU (9.1 user + 5.9 sys), 34.3 s wall, peak RSS 1,634 MiB; the simulator "
    "engine 1,379 MiB after the import, 1,821 MiB after layout and save (25.9 s CPU)."
)

_CHECKS_CHILD = """
import json, resource, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from preform_pipeline.geometry.completeness import format_completeness
from preform_pipeline.store.content import content_hash
path = Path({path!r})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
whole = format_completeness(path, path.stat().st_size)
digest = content_hash(path)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"complete": whole, "hash": digest[:19], "baseline_kb": before,
                   "peak_kb": after}}))
"""

_SIM_CHILD = """
import json, resource, sys, tempfile
from pathlib import Path
sys.path.insert(0, {root!r})
from preform_pipeline.simulator.engine import SimEngine
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
work = Path(tempfile.mkdtemp(prefix="bench-large-sim-"))
engine = SimEngine(work_dir=work / "work", fleet_dir=work / "fleet")
scene = engine.call("create_scene", {{}}, {{"machine_type": "FORM-4-0",
                    "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}})["id"]
peaks = {{"baseline_kb": peak()}}
engine.call("import_model", {{"scene_id": scene}},
            {{"file": {path!r}, "units": "MILLIMETERS", "repair_behavior": "REPAIR"}})
peaks["import_kb"] = peak()
engine.call("auto_layout", {{"scene_id": scene}}, {{"models": "ALL"}})
peaks["layout_kb"] = peak()
engine.call("save_form_file", {{"scene_id": scene}}, {{"file": str(work / "large.form")}})
peaks["save_kb"] = peak()
print(json.dumps(peaks))
"""


_OBJ_CHILD = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from preform_pipeline.geometry import read_mesh
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
mesh = read_mesh(Path({path!r}))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"triangles": int(mesh.triangles.shape[0]), "baseline_kb": before,
                   "peak_kb": after}}))
"""


def _box(x: float, y: float, size: float) -> np.ndarray:
    lo = np.array([x, y, 0.0])
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)
    v = lo + corners * size
    faces = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1),
             (2, 3, 7), (2, 7, 6), (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]
    return np.array([[v[a], v[b], v[c]] for a, b, c in faces], dtype=np.float32)


def generate(path: Path, triangles: int) -> None:
    """A binary STL of ``triangles`` (a multiple of 12) as a grid of 0.5 mm boxes."""
    boxes = triangles // 12
    side = int(np.ceil(np.sqrt(boxes)))
    record = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    template = _box(0.0, 0.0, 0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(b"bench large stl".ljust(80, b" "))
        handle.write(np.uint32(boxes * 12).tobytes())
        for row in range(side):
            count = min(side, boxes - row * side)
            if count <= 0:
                break
            offsets = np.zeros((count, 1, 1, 3), np.float32)
            offsets[:, 0, 0, 0] = np.arange(count) * 0.15
            offsets[:, 0, 0, 1] = row * 0.15
            tris = (template[None] + offsets).reshape(-1, 3, 3)
            chunk = np.zeros(tris.shape[0], dtype=record)
            chunk["v"] = tris
            handle.write(chunk.tobytes())


def generate_obj(path: Path, mib: int) -> None:
    """An OBJ of at least ``mib`` MiB: rows of 0.5 mm boxes, each row's vertices then faces."""
    from preform_pipeline.geometry.mesh import weld_vertices

    per_row = 500
    template = _box(0.0, 0.0, 0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    row = 0
    defined = 0
    with path.open("wb") as handle:
        handle.write(b"# bench large obj\n")
        while handle.tell() < mib * _MIB:
            offsets = np.zeros((per_row, 1, 1, 3), np.float32)
            offsets[:, 0, 0, 0] = np.arange(per_row) * 0.6
            offsets[:, 0, 0, 1] = row * 0.6
            vertices, faces = weld_vertices((template[None] + offsets).reshape(-1, 3, 3))
            handle.write(("v %.9g %.9g %.9g\n" * vertices.shape[0] % tuple(
                vertices.astype(np.float64).ravel().tolist())).encode("ascii"))
            handle.write(("f %d %d %d\n" * faces.shape[0] % tuple(
                (faces + 1 + defined).ravel().tolist())).encode("ascii"))
            defined += vertices.shape[0]
            row += 1


def _measured(command: list[str]) -> dict[str, Any]:
    """Run ``command`` to the end; its wall time, CPU time, peak RSS, exit code and stdout."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # kilobytes on Linux
        "exit_code": child.returncode,
        "load_avg_1min_before": round(load, 2),
        "stdout": text,
    }


def _plan_runs(folder: Path, repeats: int) -> tuple[list[str], list[dict[str, Any]]]:
    command = [sys.executable, "-m", "preform_pipeline", "plan", str(RECIPE), str(folder),
               "--format", "json"]
    runs = []
    for _ in range(repeats):
        run = _measured(command)
        plan = json.loads(run.pop("stdout") or "{}")
        run["builds"] = len(plan.get("builds", []))
        if run["exit_code"] != 0 or run["builds"] != 1:
            raise SystemExit(f"plan failed: {run}")
        runs.append(run)
    return command, runs


def _child_runs(code: str, repeats: int) -> list[dict[str, Any]]:
    runs = []
    for _ in range(repeats):
        run = _measured([sys.executable, "-c", code])
        if run["exit_code"] != 0:
            raise SystemExit(f"child failed: {run}")
        report = json.loads(run.pop("stdout"))
        run.update({k: (round(v / 1024, 1) if k.endswith("_kb") else v)
                    for k, v in report.items()})
        runs.append({k.replace("_kb", "_mb"): v for k, v in run.items()})
    return runs


def _machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"platform": platform.platform(), "cpu": model, "cpus": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__,
            "nice": os.nice(0)}


def _on_machine(machine: dict[str, Any]) -> str:
    """The machine a result was measured on, as both reports' first sentence names it."""
    return (f"{machine['cpu'] or 'unknown CPU'} ({machine['cpus']} CPUs shared with other "
            f"work; {machine['platform']}, Python {machine['python']}, numpy "
            f"{machine['numpy']}), niceness {machine['nice']}")


def _markdown(result: dict[str, Any]) -> str:
    plan, sim, checks = result["plan"], result["simulator"], result["checks"]
    machine = result["machine"]
    mesh_mb = result["triangles"] * 36 / _MIB
    lines = [
        f"# A {result['file_mb']} MB binary STL ({result['triangles']:,} triangles)",
        "",
        f"Measured {result['measured_at']} on {_on_machine(machine)}. "
        "Load average (1 min) before the runs: "
        f"{', '.join(str(r['load_avg_1min_before']) for r in plan['runs'])} on "
        f"{machine['cpus']} CPUs, so wall time is inflated; CPU time is what one core "
        "spends.",
        "",
        "## `preform-pipeline plan` (the whole command, fresh process each run)",
        "",
        f"`{' '.join(plan['command_display'])}`",
        "",
        "| run | wall s | CPU s (user + sys) | peak RSS MiB |",
        "|---|---|---|---|",
        *(f"| {i + 1} | {r['wall_s']} | {r['cpu_s']} | {r['peak_rss_mb']} |"
          for i, r in enumerate(plan["runs"])),
        "",
        f"Median CPU {plan['median_cpu_s']} s, median wall {plan['median_wall_s']} s, highest "
        f"peak RSS {plan['max_peak_rss_mb']} MiB. Targets < {TARGET_S:g} s on one core and "
        f"< {TARGET_MB:g} MB: memory {'met' if plan['memory_met'] else 'NOT met'}; time "
        f"{'met' if plan['cpu_met'] else 'NOT met'} as CPU time, "
        f"{'met' if plan['wall_met'] else 'NOT met'} as wall time on this loaded machine.",
        "",
        "## What `run` does to the file first (completeness rule, content hash)",
        "",
        *(f"- run {i + 1}: peak RSS {r['peak_mb']} MiB (baseline {r['baseline_mb']} MiB), "
          f"{r['cpu_s']} s CPU" for i, r in enumerate(checks["runs"])),
        "",
        "## Simulator: import, auto_layout, save_form (engine in a fresh process)",
        "",
        f"One copy of the mesh is {mesh_mb:.0f} MiB (float32 triangles). Peak RSS (MiB) after "
        "each step, and above the process's baseline in copies of the mesh:",
        "",
        "| run | load before | baseline | import | layout | save | above baseline (copies) |",
        "|---|---|---|---|---|---|---|",
        *(f"| {i + 1} | {r['load_avg_1min_before']} | {r['baseline_mb']} | {r['import_mb']} | "
          f"{r['layout_mb']} | {r['save_mb']} | "
          f"{(r['save_mb'] - r['baseline_mb']) / mesh_mb:.2f} |"
          for i, r in enumerate(sim["runs"])),
        "",
        "## Before",
        "",
        BEFORE,
        "",
        "Regenerate: `nice -n 10 python bench/bench_large_stl.py` (generates the file on first "
        "use).",
        "",
    ]
    return "\n".join(lines)


def _obj_markdown(result: dict[str, Any]) -> str:
    machine = result["machine"]
    lines = [
        "# Reading large OBJ files: peak memory",
        "",
        f"Measured {result['measured_at']} at commit {result['commit']} on "
        f"{_on_machine(machine)}. Each run is a fresh process calling `read_mesh` on the "
        "file; the baseline is its RSS after imports, the mesh is 36 bytes a triangle.",
        "",
        f"`{result['command']}`",
        "",
        "| file MiB | triangles | run | load before | CPU s | wall s | baseline MiB | "
        "peak MiB | above baseline / file size | mesh MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in result["cases"]:
        for i, r in enumerate(case["runs"]):
            lines.append(
                f"| {case['file_mib']} | {r['triangles']:,} | {i + 1} | "
                f"{r['load_avg_1min_before']} | {r['cpu_s']} | {r['wall_s']} | "
                f"{r['baseline_mb']} | {r['peak_mb']} | "
                f"{(r['peak_mb'] - r['baseline_mb']) / case['file_mib']:.2f} | "
                f"{r['triangles'] * 36 / _MIB:.0f} |"
            )
    return "\n".join([*lines, ""])


def _obj_main(sizes: list[int], repeats: int, output: str) -> int:
    cases = []
    for mib in sizes:
        path = DATA / f"obj_{mib}mib" / "large.obj"
        if not path.exists():
            generate_obj(path, mib)
        runs = _child_runs(_OBJ_CHILD.format(root=str(ROOT), path=str(path)), repeats)
        cases.append({"file_mib": round(path.stat().st_size / _MIB, 1), "runs": runs})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True, check=False).stdout.strip()
    result: dict[str, Any] = {
        "benchmark": "large OBJ files through read_mesh: peak RSS of a fresh process",
        "command": "nice python bench/bench_large_stl.py --obj "
                   f"{','.join(map(str, sizes))} --repeats {repeats} --output {output}",
        "commit": commit,
        "cases": cases,
        "machine": _machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{output}.json").write_text(json.dumps(result, indent=2) + "\n",
                                            encoding="utf-8")
    (RESULTS / f"{output}.md").write_text(_obj_markdown(result), encoding="utf-8")
    print(_obj_markdown(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triangles", type=int, default=DEFAULT_TRIANGLES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--obj", help="measure OBJ files of these sizes in MiB (e.g. 16,64)")
    parser.add_argument("--output", default="large_obj", help="results stem for --obj")
    args = parser.parse_args(argv)
    if args.obj:
        return _obj_main([int(x) for x in args.obj.split(",")], args.repeats, args.output)
    path = DATA / f"large_{args.triangles}" / "large.stl"
    if not path.exists():
        generate(path, args.triangles)
    command, plan_runs = _plan_runs(path.parent, args.repeats)
    checks = _child_runs(_CHECKS_CHILD.format(root=str(ROOT), path=str(path)), args.repeats)
    sim = _child_runs(_SIM_CHILD.format(root=str(ROOT), path=str(path)), args.repeats)
    median_cpu = statistics.median(r["cpu_s"] for r in plan_runs)
    median_wall = statistics.median(r["wall_s"] for r in plan_runs)
    peak = max(r["peak_rss_mb"] for r in plan_runs)
    display = ["python", "-m", "preform_pipeline", "plan",
               str(RECIPE.relative_to(ROOT)), str(path.parent.relative_to(ROOT)),
               "--format", "json"]
    result: dict[str, Any] = {
        "benchmark": "one large binary STL: plan, pre-checks, simulator import",
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "triangles": args.triangles,
        "plan": {
            "command": command,
            "command_display": display,
            "runs": plan_runs,
            "median_cpu_s": round(median_cpu, 2),
            "median_wall_s": round(median_wall, 2),
            "max_peak_rss_mb": peak,
            "memory_met": peak < TARGET_MB,
            "cpu_met": median_cpu < TARGET_S,
            "wall_met": median_wall < TARGET_S,
        },
        "checks": {"runs": checks},
        "simulator": {"runs": sim},
        "targets": {"seconds_one_core": TARGET_S, "peak_rss_mb": TARGET_MB},
        "machine": _machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "large_stl.json").write_text(json.dumps(result, indent=2) + "\n",
                                            encoding="utf-8")
    (RESULTS / "large_stl.md").write_text(_markdown(result), encoding="utf-8")
    print(_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
