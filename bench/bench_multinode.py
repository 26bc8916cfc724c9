"""Benchmark: several nodes on one PostgreSQL job store.

Starts a throw-away PostgreSQL cluster (tests/pg_cluster.py: initdb + pg_ctl, fsync off) and
measures the store's multi-node machinery with simulated nodes
(``python -m preform_pipeline.store.testing``: real processes, real claims with
``SKIP LOCKED``, fenced moves, lease renewal; a build's preparation is a sleep of ``--work``
seconds standing in for a PreFormServer, its send a sleep of ``--send``):

* **throughput** with 1, 2 and 3 nodes on the same builds: builds finished per second, from
  the first claim to the last finish (from the nodes' JSON logs, so process start-up is not
  counted), and the scaling efficiency ``thr(n) / (n * thr(1))``;
* **claim latency**: one ``claim_build`` call (p50, p99), alone and with 3 nodes claiming at
  once (threads with their own connections);
* **recovery**: a node is SIGKILLed while it prepares; the time until another node has
  claimed its build (bounded below by the lease it held).

The hot-folder daemon does not take claims yet (docs/multi-node.md): these are the store's
numbers, the ceiling the daemon's scale-out will work under.

    python bench/bench_multinode.py [--builds N] [--work S] [--lease S]

Writes bench/results/multinode.json and bench/results/multinode.md.
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
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from preform_pipeline.store import JobState  # noqa: E402
from preform_pipeline.store.leases import NodeInfo  # noqa: E402
from preform_pipeline.store.pgurl import PASSWORD_ENV  # noqa: E402
from preform_pipeline.store.postgres import PostgresJobStore  # noqa: E402
from tests.pg_cluster import PG_PASSWORD, PgCluster  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results"


def _fill(url: str, builds: int) -> None:
    with PostgresJobStore(url, password=PG_PASSWORD) as store:
        for i in range(builds):
            job = store.create_job(recipe="dental", source_path=f"/nas/p/{i}.stl",
                                   state=JobState.PROCESSING)
            store.create_build(recipe="dental", job_ids=[job.id])


def _start_node(url: str, node: str, fleet: Path, log: Path, *, lease: float, work: float,
                send: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, PASSWORD_ENV: PG_PASSWORD,
           "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-m", "preform_pipeline.store.testing", url, node, str(fleet),
         "--lease", str(lease), "--work", str(work), "--send", str(send), "--log", str(log)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _events(logs: list[Path]) -> list[dict[str, Any]]:
    found = []
    for path in logs:
        if path.exists():
            found += [json.loads(line) for line in path.read_text().splitlines() if line]
    return found


def throughput(cluster: PgCluster, nodes: int, builds: int, work: float, lease: float,
               folder: Path) -> dict[str, Any]:
    url = cluster.create_database(f"thr_{nodes}")
    _fill(url, builds)
    fleet = folder / f"fleet{nodes}"
    fleet.mkdir()
    logs = [folder / f"thr{nodes}-n{i}.jsonl" for i in range(nodes)]
    procs = [_start_node(url, f"n{i}", fleet, logs[i], lease=lease, work=work, send=0.01)
             for i in range(nodes)]
    for proc in procs:
        proc.wait(timeout=600)
    events = _events(logs)
    ends = [e for e in events if e["event"] == "build_transition"
            and e["to_state"] in ("finished", "unverified")]
    stamps = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
              for e in events if e["event"] == "build_claimed"] + [
              datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in ends]
    seconds = (max(stamps) - min(stamps)).total_seconds()
    done = len(ends)
    return {"nodes": nodes, "builds": done, "seconds": round(seconds, 2),
            "builds_per_s": round(done / seconds, 2)}


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


def recovery(cluster: PgCluster, lease: float, folder: Path) -> dict[str, Any]:
    url = cluster.create_database("recovery")
    _fill(url, 40)
    fleet = folder / "fleet-rec"
    fleet.mkdir()
    logs = [folder / "rec-a.jsonl", folder / "rec-b.jsonl"]
    victim = _start_node(url, "a", fleet, logs[0], lease=lease, work=0.5, send=0.01)
    with PostgresJobStore(url, password=PG_PASSWORD) as store:
        deadline = time.monotonic() + 60
        held: int | None = None
        while held is None and time.monotonic() < deadline:
            for build in store.list_builds(state=JobState.PREPARING):
                held = build.id
            time.sleep(0.01)
        assert held is not None, "node a never started preparing"
        victim.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        victim.wait()
        rescuer = _start_node(url, "b", fleet, logs[1], lease=lease, work=0.01, send=0.01)
        while True:
            if [e for e in _events(logs[1:]) if e["event"] == "build_claimed"
                    and e["build_id"] == held]:
                break
            if time.monotonic() - killed > 120:
                raise AssertionError("the dead node's build was never recovered")
            time.sleep(0.02)
        recovered_s = time.monotonic() - killed
        rescuer.wait(timeout=600)
    return {"lease_s": lease, "recovered_after_s": round(recovered_s, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=60)
    parser.add_argument("--work", type=float, default=0.2,
                        help="seconds one build's preparation takes (a server's work)")
    parser.add_argument("--lease", type=float, default=3.0)
    args = parser.parse_args()
    cluster = PgCluster.create()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-multinode-") as tmp:
            folder = Path(tmp)
            thr = [throughput(cluster, n, args.builds, args.work, args.lease, folder)
                   for n in (1, 2, 3)]
            base = thr[0]["builds_per_s"]
            for row in thr:
                row["efficiency"] = round(row["builds_per_s"] / (row["nodes"] * base), 2)
            claims = [claim_latency(cluster, c, 300) for c in (1, 3)]
            rec = recovery(cluster, args.lease, folder)
    finally:
        cluster.destroy()
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs "
                   f"(shared), load {os.getloadavg()[0]:.1f}",
        "postgresql": "15, local, fsync off (tests/pg_cluster.py)",
        "work_s": args.work, "throughput": thr, "claim_latency": claims, "recovery": rec,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "multinode.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Several nodes on one PostgreSQL store", "",
        f"{result['when']}, {result['machine']}; PostgreSQL {result['postgresql']}.",
        f"Simulated nodes (`preform_pipeline.store.testing`), {args.work:g} s of work per "
        "build; `python bench/bench_multinode.py`.", "",
        "| nodes | builds | seconds | builds/s | scaling efficiency |", "|---|---|---|---|---|",
        *(f"| {r['nodes']} | {r['builds']} | {r['seconds']} | {r['builds_per_s']} | "
          f"{r['efficiency']} |" for r in thr), "",
        "| concurrent claimers | claims | p50 ms | p99 ms |", "|---|---|---|---|",
        *(f"| {c['claimers']} | {c['claims']} | {c['p50_ms']} | {c['p99_ms']} |"
          for c in claims), "",
        f"Recovery: a node SIGKILLed while preparing (lease {rec['lease_s']:g} s); another "
        f"node claimed its build {rec['recovered_after_s']:g} s after the kill.", "",
    ]
    (RESULTS / "multinode.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
