"""Soak for growth: a service's weeks compressed into half an hour, sampled for what grows.

Runs what a lab runs as a service (docs/hotfolder.md, docs/web.md): one ``preform-pipeline
watch`` daemon (tests/multinode_farm.py's DaemonFarm, one node on an SQLite file, as
bench/soak_kill.py starts it) whose recipe saves a .form and prints on a simulated fleet, its
prints followed through a Dashboard simulator (the Web API, credentials from the environment)
at a low time scale so they end within a poll; ``preform-pipeline serve`` on the same store.
Model files (and now and then a case folder) are dropped at a steady rate. Every
``--every`` seconds it samples, per process (the daemon, each PreFormServer simulator it
started, the Dashboard simulator, ``serve``): RSS, open file descriptors, threads and child
processes; and the sizes of the store (and its WAL), each log file, ``done/``, the output
folder, the daemon's server and local-copy folders and the processes' temporary folder (their
``TMPDIR``, a folder of the soak's own, so what they leave there is theirs alone). Each sample
first fetches the dashboard's pages as a browser's refresh would.

The samples go to ``--out`` as JSON lines; ``--summary`` writes the slope of each series over
the second half of the run as growth per 100 builds (the builds the store counts), beside the
machine's load.

    nice -n 10 python bench/soak_resources.py --minutes 35 \\
        --out bench/results/soak_resources_s48.jsonl --summary bench/results/soak_resources_s48.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.soak_kill import MAKERS, _soak_processes, _start  # noqa: E402
from preform_pipeline.simulator.cloud.testing import RunningDashboard, start_dashboard  # noqa: E402
from tests.multinode_farm import DaemonFarm, FarmTiming  # noqa: E402

__all__ = ["main"]

NODE = "node-1"
#: The viewer the soak's page loads log in as (a Bearer token, as a script's or Prometheus').
VIEWER, VIEWER_SECRET = "soak", "soak-viewer-secret-0123456789"
SECRET_ENV = "PP_SOAK_VIEWER_SECRET"
CLIENT_ID = "preform-pipeline-soak"
PAGES = ("/", "/printers", "/history", "/failed", "/metrics", "/healthz")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceFarm(DaemonFarm):
    """The farm's one daemon with what a service adds: Web API credentials (the Dashboard
    simulator's, through the environment), a verify section that polls often, a viewer for
    the dashboard, and the processes' temporary folder under the soak's own."""

    dashboard: RunningDashboard

    def _settings(self, node: str) -> Path:
        path = super()._settings(node)
        data = json.loads(path.read_text(encoding="utf-8"))
        data["cloud"] = {"base_url": self.dashboard.url}
        data["verify"] = {"interval_s": 30}
        data["web"] = {"users": [{"name": VIEWER, "role": "viewer", "secret_env": SECRET_ENV}]}
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        return path

    def serve_settings(self) -> Path:
        """The daemon's settings with a log file of serve's own."""
        data = json.loads((self.root / NODE / "settings.yaml").read_text(encoding="utf-8"))
        data["logging"] = {"file": str(self.logs / "serve.jsonl")}
        path = self.root / "serve-settings.json"
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        return path


def _tree_size(path: Path) -> tuple[int, int]:
    """(files, bytes) below ``path`` (0, 0 when it is not there)."""
    files = size = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
    return files, size


def _process(proc: psutil.Process) -> dict[str, Any]:
    with proc.oneshot():
        return {"pid": proc.pid, "rss_kb": proc.memory_info().rss // 1024,
                "fds": proc.num_fds(), "threads": proc.num_threads(),
                "children": len(proc.children(recursive=True)),
                "cpu_s": round(sum(proc.cpu_times()[:2]), 2)}


def _processes(farm: ServiceFarm, serve: subprocess.Popen[bytes]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    named = {"daemon": farm.procs[NODE].pid, "dashboard_sim": farm.dashboard.pid,
             "serve": serve.pid}
    for name, pid in named.items():
        with contextlib.suppress(psutil.Error):
            out[name] = _process(psutil.Process(pid))
    with contextlib.suppress(psutil.Error):
        servers = [c for c in psutil.Process(farm.procs[NODE].pid).children()
                   if "preform_pipeline.simulator" in " ".join(c.cmdline())]
        for i, child in enumerate(sorted(servers, key=lambda c: c.pid)):
            with contextlib.suppress(psutil.Error):
                out[f"server_{i + 1}"] = _process(child)
    return out


def _sizes(farm: ServiceFarm) -> dict[str, Any]:
    store = Path(farm.url)
    sizes: dict[str, Any] = {}
    for suffix in ("", "-wal", "-shm"):
        file = Path(str(store) + suffix)
        sizes[f"store{suffix}_bytes"] = file.stat().st_size if file.exists() else 0
    for log in sorted(farm.logs.iterdir()):
        sizes[f"log {log.name}_bytes"] = log.stat().st_size
    for name, folder in (("done", farm.inbox / "done"), ("failed", farm.inbox / "failed"),
                         ("processing", farm.inbox / "processing"), ("out", farm.root / "out"),
                         ("servers", farm.root / NODE / "servers"),
                         ("local_copies", farm.root / NODE / "local-copies"),
                         ("tmp", farm.root / "tmp"), ("fleet", farm.fleet)):
        files, size = _tree_size(folder)
        sizes[f"{name}_files"], sizes[f"{name}_bytes"] = files, size
    return sizes


def _counts(store: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)) as db:
        states = dict(db.execute("SELECT state, COUNT(*) FROM builds GROUP BY state").fetchall())
        jobs = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    return {"builds": sum(states.values()), "jobs": jobs,
            **{f"builds_{k}": v for k, v in states.items()}}


def _pages(client: httpx.Client) -> dict[str, Any]:
    """Fetch the dashboard's pages; the total and slowest time and any status but 200."""
    began, slowest, bad = time.monotonic(), 0.0, {}
    for page in PAGES:
        start = time.monotonic()
        status: int | str
        try:
            status = client.get(page).status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        slowest = max(slowest, time.monotonic() - start)
        if status != 200:
            bad[page] = status
    return {"pages_s": round(time.monotonic() - began, 3), "slowest_page_s": round(slowest, 3),
            "pages_bad": bad}


def _wait_answering(client: httpx.Client, serve: subprocess.Popen[bytes]) -> None:
    """Return once ``serve`` answers (its first sample is then of a dashboard at work)."""
    deadline = time.monotonic() + 120
    while serve.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if client.get("/healthz").status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("serve did not answer within 120 s")


class Dropper:
    """Drops a model file every ``every`` seconds into the inbox (written aside, renamed
    in), and every ``case_every``-th drop a case folder of two or three models."""

    def __init__(self, farm: ServiceFarm, case_every: int) -> None:
        self.farm, self.case_every, self.n = farm, case_every, 0
        self.staging = farm.root / "staging"
        self.staging.mkdir(exist_ok=True)

    def drop(self) -> None:
        self.n += 1
        n = self.n
        if n % self.case_every == 0:
            folder = self.staging / f"C-{n}"
            folder.mkdir()
            for part, suffix in enumerate((".stl", ".obj", ".3mf")[: 2 + n % 2]):
                (folder / f"C-{n}-{part}{suffix}").write_bytes(MAKERS[suffix](n * 10 + part))
            os.replace(folder, self.farm.inbox / folder.name)
            return
        suffix = (".stl", ".stl", ".obj", ".3mf")[n % 4]
        name = f"p{n}{suffix}"
        (self.staging / name).write_bytes(MAKERS[suffix](n * 10))
        os.replace(self.staging / name, self.farm.inbox / name)


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 when xs do not vary)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def _flatten(sample: dict[str, Any]) -> dict[str, float]:
    flat: dict[str, float] = {}
    for name, value in sample.get("processes", {}).items():
        for key in ("rss_kb", "fds", "threads", "children"):
            flat[f"{name}.{key}"] = value[key]
    for key, value in sample.get("sizes", {}).items():
        flat[key] = value
    for key in ("pages_s", "slowest_page_s"):
        flat[key] = sample[key]
    return flat


def summarize(samples: list[dict[str, Any]]) -> str:
    """A Markdown table: each series' first, middle and last value and its slope over the
    second half per 100 builds."""
    half = samples[len(samples) // 2:]
    xs = [float(s["builds"]) for s in half]
    lines = [
        f"{len(samples)} samples over {samples[-1]['t_s'] / 60:.1f} min; builds "
        f"{samples[0]['builds']} -> {samples[-1]['builds']}, jobs {samples[-1]['jobs']}; "
        f"second half: builds {half[0]['builds']} -> {half[-1]['builds']}; "
        f"load (1 min) min {min(s['load1'] for s in samples):.1f}, "
        f"max {max(s['load1'] for s in samples):.1f}.",
        "",
        "| series | first | middle | last | per 100 builds (2nd half) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    flats = [_flatten(s) for s in samples]
    keys = sorted({k for f in flats for k in f})
    mid = flats[len(flats) // 2]
    for key in keys:
        pairs = [(x, f[key]) for x, f in zip(xs, flats[len(flats) // 2:], strict=True)
                 if key in f]
        slope = _slope([p[0] for p in pairs], [p[1] for p in pairs]) * 100 if len(pairs) > 2 else 0
        lines.append(f"| {key} | {flats[0].get(key, '')} | {mid.get(key, '')} | "
                     f"{flats[-1].get(key, '')} | {slope:.1f} |")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _service(root: Path, args: argparse.Namespace) -> Iterator[tuple[ServiceFarm, Any]]:
    (root / "tmp").mkdir()
    farm = ServiceFarm(root, str(root / "jobs.sqlite3"),
                       FarmTiming(time_scale=args.time_scale, per_build=args.per_build,
                                  window_s=1.0),
                       printers=("Form4-1", "Form4-2"))
    farm.env.update({"TMPDIR": str(root / "tmp"), SECRET_ENV: VIEWER_SECRET})
    serve: subprocess.Popen[bytes] | None = None
    try:
        with start_dashboard("--time-scale", "0.001", "--log-file",
                             str(farm.logs / "dashboard.jsonl"), fleet_dir=farm.fleet,
                             client_id=CLIENT_ID, env={"TMPDIR": str(root / "tmp")},
                             cwd=root) as dashboard:
            farm.dashboard = dashboard
            farm.env.update({"PREFORM_PIPELINE_CLIENT_ID": CLIENT_ID,
                             "PREFORM_PIPELINE_CLIENT_SECRET": dashboard.credentials.client_secret})
            _start(farm, NODE)
            port = _free_port()
            with (farm.logs / "serve.out").open("ab") as out:
                serve = subprocess.Popen(
                    [sys.executable, "-m", "preform_pipeline", "serve",
                     str(farm.serve_settings()), "--port", str(port)],
                    env=farm.env, cwd=root, stdout=out, stderr=subprocess.STDOUT)
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                  headers={"Authorization": f"Bearer {VIEWER}:{VIEWER_SECRET}"})
            try:
                _wait_answering(client, serve)
                yield farm, (serve, client)
            finally:
                client.close()
                serve.send_signal(signal.SIGTERM)
                farm.stop_all()
    finally:
        if serve is not None and serve.poll() is None:
            serve.kill()
            serve.wait(timeout=10)
        farm.close()


def run(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="pp-soak-resources-"))
    samples: list[dict[str, Any]] = []
    try:
        _soak(root, args, samples)
    finally:
        left = _soak_processes(root)
        if left:
            print(f"processes left: {[p.pid for p in left]}", file=sys.stderr)
        if args.summary and len(samples) > 4:
            args.summary.write_text(summarize(samples), encoding="utf-8")
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if left else 0


def _soak(root: Path, args: argparse.Namespace, samples: list[dict[str, Any]]) -> None:
    began = time.monotonic()
    with _service(root, args) as (farm, (serve, client)), args.out.open("w") as out:
        dropper = Dropper(farm, args.case_every)
        next_sample = began
        while (now := time.monotonic()) - began < args.minutes * 60:
            if farm.procs[NODE].poll() is not None or serve.poll() is not None:
                print("a service process ended: see", farm.logs, file=sys.stderr)
                args.keep = True
                break
            dropper.drop()
            if now >= next_sample:
                sample: dict[str, Any] = {"t_s": round(now - began, 1), "dropped": dropper.n,
                                          "load1": os.getloadavg()[0]}
                sample.update(_pages(client))
                sample.update(_counts(Path(farm.url)))
                sample["processes"] = _processes(farm, serve)
                sample["sizes"] = _sizes(farm)
                samples.append(sample)
                out.write(json.dumps(sample) + "\n")
                out.flush()
                print(f"{sample['t_s']:7.0f} s builds {sample['builds']} "
                      f"load {sample['load1']:.1f}", flush=True)
                next_sample += args.every
            time.sleep(args.drop_every)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=35.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--drop-every", type=float, default=2.0, help="seconds between drops")
    parser.add_argument("--case-every", type=int, default=7, help="every Nth drop a case")
    parser.add_argument("--per-build", type=int, default=4, help="models per build at most")
    parser.add_argument("--time-scale", type=float, default=0.05,
                        help="the PreFormServer simulators' latency scale")
    parser.add_argument("--out", type=Path, required=True, help="samples, JSON lines")
    parser.add_argument("--summary", type=Path, help="the slopes, Markdown")
    parser.add_argument("--keep", action="store_true", help="keep the soak's folder")
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
