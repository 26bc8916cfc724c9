"""Benchmark: several ``preform-pipeline watch`` daemons on one PostgreSQL job store.

Starts a throw-away PostgreSQL cluster (tests/pg_cluster.py: initdb + pg_ctl, fsync off) and
a farm of real daemons (tests/multinode_farm.py: each a ``watch`` subprocess with its own
simulated server on the realistic latency profile at ``--time-scale``, all watching one
shared inbox of tiny models, printing to one simulated fleet), and measures:

* **throughput** with 1, 2 and 3 daemons on the same inbox: files settled per second, from
  the first file taken to the last file settled (from the daemons' JSON logs, so process
  start-up is not counted), and the scaling efficiency ``thr(n) / (n * thr(1))``;
* **claim latency**: one ``claim_build`` call (p50, p99), alone and with 3 nodes claiming at
  once (threads with their own connections): the store call every recovery pass makes;
* **recovery**: with 3 daemons at work, one is SIGKILLed while it prepares (and not started
  again); the time until another daemon claims its build (bounded below by the lease), and
  until every file of that build is settled.

    python bench/bench_multinode.py [--files N] [--lease S] [--time-scale F]

Writes bench/results/multinode.json and bench/results/multinode.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from preform_pipeline.store import JobState  # noqa: E402
from preform_pipeline.store.leases import NodeInfo  # noqa: E402
from preform_pipeline.store.postgres import PostgresJobStore  # noqa: E402
from tests.multinode_farm import DaemonFarm, FarmTiming, wait_until  # noqa: E402
from tests.pg_cluster import PG_PASSWORD, PgCluster  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results"
TIMEOUT_S = 600.0


def _fill(url: str, builds: int) -> None:
    with PostgresJobStore(url, password=PG_PASSWORD) as store:
        for i in range(builds):
            job = store.create_job(recipe="dental", source_path=f"/nas/p/{i}.stl",
                                   state=JobState.PROCESSING)
            store.create_build(recipe="dental", job_ids=[job.id])


def _stamp(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def _nodes(count: int) -> list[str]:
    return [f"node-{i + 1}" for i in range(count)]


def throughput(cluster: PgCluster, nodes: int, files: int, timing: FarmTiming,
               folder: Path) -> dict[str, Any]:
    farm = DaemonFarm(folder / f"thr{nodes}", cluster.create_database(f"thr_{nodes}"), timing)
    try:
        farm.drop(files)
        farm.start(*_nodes(nodes))
        wait_until("every file settled", lambda: sum(farm.settled().values()) >= files,
                   TIMEOUT_S)
        farm.stop_all()
        taken = farm.events("job_created")
        settled = farm.events("file_settled")
        seconds = max(map(_stamp, settled)) - min(map(_stamp, taken))
        builds = len({e["build_id"] for e in farm.events("build_created")})
    finally:
        farm.close()
    return {"nodes": nodes, "files": files, "builds": builds, "seconds": round(seconds, 2),
            "files_per_s": round(files / seconds, 2)}


def claim_latency(cluster: PgCluster, claimers: int, claims: int) -> dict[str, Any]:
    url = cluster.create_database(f"claims_{claimers}")
    _fill(url, claims)
    timings: list[float] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        with PostgresJobStore(url, password=PG_PASSWORD) as store:
            store.register_node(NodeInfo(name, "bench", "bench"))
            while True:
                started = time.perf_counter()
                lease = store.claim_build(name)
                took = time.perf_counter() - started
                if lease is None:
                    return
                with lock:
                    timings.append(took)

    threads = [threading.Thread(target=claimer, args=(f"c{i}",)) for i in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    timings.sort()
    return {"claimers": claimers, "claims": len(timings),
            "p50_ms": round(statistics.median(timings) * 1000, 2),
            "p99_ms": round(timings[int(len(timings) * 0.99) - 1] * 1000, 2)}


def recovery(cluster: PgCluster, files: int, timing: FarmTiming,
             folder: Path) -> dict[str, Any]:
    farm = DaemonFarm(folder / "recovery", cluster.create_database("recovery"), timing)
    try:
        farm.drop(files)
        farm.start(*_nodes(3))
        held: list[int] = []

        def preparing() -> bool:
            held.extend(b.id for b in farm.owned_in("node-1", JobState.PREPARING))
            return bool(held)

        wait_until("node-1 preparing", preparing, TIMEOUT_S)
        build = farm.store.get_build(held[0])
        farm.signal("node-1", signal.SIGKILL)
        killed = time.monotonic()
        claimed_s = wait_until("its build claimed by another node", lambda: any(
            e["build_id"] == held[0] for e in farm.events("build_recovered")), TIMEOUT_S)
        names = {farm.store.get_job(i).original_name for i in build.job_ids}
        wait_until("its files settled",
                   lambda: names <= set(farm.settled()), TIMEOUT_S)
        settled_s = time.monotonic() - killed
        wait_until("every file settled", lambda: sum(farm.settled().values()) >= files,
                   TIMEOUT_S)
        farm.stop_all()
    finally:
        farm.close()
    return {"lease_s": timing.lease_s, "models_in_build": len(names),
            "claimed_after_s": round(claimed_s, 2), "settled_after_s": round(settled_s, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=150)
    parser.add_argument("--lease", type=float, default=6.0)
    parser.add_argument("--time-scale", type=float, default=0.25,
                        help="the simulated servers' speed (0.25: 4x faster than realistic)")
    parser.add_argument("--per-build", type=int, default=25)
    args = parser.parse_args()
    timing = FarmTiming(lease_s=args.lease, time_scale=args.time_scale,
                        per_build=args.per_build)
    cluster = PgCluster.create()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-multinode-") as tmp:
            folder = Path(tmp)
            thr = [throughput(cluster, n, args.files, timing, folder) for n in (1, 2, 3)]
            base = thr[0]["files_per_s"]
            for row in thr:
                row["efficiency"] = round(row["files_per_s"] / (row["nodes"] * base), 2)
            claims = [claim_latency(cluster, c, 300) for c in (1, 3)]
            rec = recovery(cluster, args.files, timing, folder)
    finally:
        cluster.destroy()
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs "
                   f"(shared), load {os.getloadavg()[0]:.1f}",
        "postgresql": "15, local, fsync off (tests/pg_cluster.py)",
        "time_scale": args.time_scale, "per_build": args.per_build,
        "throughput": thr, "claim_latency": claims, "recovery": rec,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "multinode.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Several watch daemons on one PostgreSQL store", "",
        f"{result['when']}, {result['machine']}; PostgreSQL {result['postgresql']}.",
        f"Real `watch` daemons, one simulated server each (realistic latency x "
        f"{args.time_scale:g}), one shared inbox of {args.files} tiny models, up to "
        f"{args.per_build} per build; `python bench/bench_multinode.py`.", "",
        "| daemons | files | builds | seconds | files/s | scaling efficiency |",
        "|---|---|---|---|---|---|",
        *(f"| {r['nodes']} | {r['files']} | {r['builds']} | {r['seconds']} | "
          f"{r['files_per_s']} | {r['efficiency']} |" for r in thr), "",
        "Claim latency (`claim_build`, the store call of every recovery pass):", "",
        "| concurrent claimers | claims | p50 ms | p99 ms |", "|---|---|---|---|",
        *(f"| {c['claimers']} | {c['claims']} | {c['p50_ms']} | {c['p99_ms']} |"
          for c in claims), "",
        f"Recovery: a daemon SIGKILLed while preparing a build of {rec['models_in_build']} "
        f"models (lease {rec['lease_s']:g} s); another daemon claimed the build "
        f"{rec['claimed_after_s']:g} s after the kill, and all its files were settled "
        f"{rec['settled_after_s']:g} s after the kill.", "",
    ]
    (RESULTS / "multinode.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
