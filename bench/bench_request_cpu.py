"""Benchmark: the runner's CPU for one Local API request, after a pause and right after another.

A build's thread waits for the server between its requests, and the code it runs after each
wait costs more than the same code warm (cold caches). This times one ``getScene`` (the
import check's ``get_scene_model_ids``) against a simulator on loopback, in thread CPU
(``time.thread_time``: the socket calls' kernel time counts, the wait does not), first after
a pause, then at once again; it prints the median of each.

``--layers`` times the same request at each layer the runner's requests go through, each
kind in turn after its own pause, so the layers' costs are compared at like loads: the
client's method, ``HttpSession.request`` (the errors, the Retry-After bookkeeping, the
answer's checks and its JSON), ``WireTransport.exchange`` alone (the socket's send and
receive, the answer's head), and a bare ``httpx.Client.get`` (with ``.json()``) to the same
simulator: the floor an httpx client would have, which the project's own transport replaced.

Run: ``python bench/bench_request_cpu.py [--count 150] [--pause-ms 20] [--layers]`` at normal
priority, and write down the machine's load with the numbers: the spread between runs is the
load's.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from preform_pipeline.api import PreFormClient, SceneSettings
from preform_pipeline.api._wire import WireTransport

__all__ = ["main"]

#: The simulator's start-up line that names its port (``simulator/cli.py``).
_PORT_LINE = re.compile(r"listening on port (\d+)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=150, help="requests of each kind")
    parser.add_argument("--pause-ms", type=float, default=20.0)
    parser.add_argument("--layers", action="store_true",
                        help="the same request at each layer, and through a bare httpx client")
    args = parser.parse_args(argv)
    # Its log goes nowhere: an unread pipe would fill and stall the server.
    server = subprocess.Popen(
        [sys.executable, "-m", "preform_pipeline.simulator", "--port", "0",
         "--latency", "instant"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        port = None
        assert server.stdout is not None
        for line in server.stdout:
            found = _PORT_LINE.search(line)
            if found and port is None:
                port = int(found.group(1))
            if "READY FOR INPUT" in line:
                break
        if port is None:
            print("the simulator did not start", file=sys.stderr)
            return 1
        with PreFormClient(f"http://127.0.0.1:{port}") as client:
            scene = client.create_scene(
                SceneSettings("FORM-4-0", "FLGPBK05", 0.05, print_setting="DEFAULT"))
            if args.layers:
                _layers(client, f"http://127.0.0.1:{port}", scene.id or "", args)
                return 0
            after_pause, at_once = _timed(
                lambda: client.get_scene_model_ids(scene.id or ""), args)
        print(f"get_scene_model_ids after a {args.pause_ms:g} ms pause: median "
              f"{statistics.median(after_pause) * 1e6:.0f} us; right after another: "
              f"{statistics.median(at_once) * 1e6:.0f} us (n={args.count} each)")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=10)


def _timed(call: Callable[[], object], args: argparse.Namespace) -> tuple[list[float], list[float]]:
    """``call``'s thread CPU, ``args.count`` times after a pause and at once after that."""
    after_pause: list[float] = []
    at_once: list[float] = []
    for _ in range(args.count):
        time.sleep(args.pause_ms / 1000)  # the wait for the server, as in a build
        started = time.thread_time()
        call()
        after_pause.append(time.thread_time() - started)
        started = time.thread_time()
        call()
        at_once.append(time.thread_time() - started)
    return after_pause, at_once


def _layers(client: PreFormClient, base: str, scene_id: str, args: argparse.Namespace) -> None:
    """One ``getScene`` through each layer, the kinds taking turns (one round each per
    count), so a change of load falls on every layer alike."""
    path = f"/scene/{scene_id}/"
    wire = WireTransport()
    headers = (("Accept", "application/json"), ("User-Agent", "bench"))
    with httpx.Client() as bare:
        kinds: dict[str, Callable[[], object]] = {
            "client.get_scene_model_ids": lambda: client.get_scene_model_ids(scene_id),
            "HttpSession.request": lambda: client._http.request(
                "GET", path, operation="getScene", timeout=10.0),
            "WireTransport.exchange": lambda: wire.exchange(
                "GET", "127.0.0.1", int(base.rsplit(":", 1)[1]), path, headers, None,
                timeout=10.0, connect_timeout=5.0),
            "httpx.Client.get + .json()": lambda: bare.get(base + path).json(),
        }
        for call in kinds.values():  # each connection made, each path warmed once
            call()
        times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in kinds}
        one = argparse.Namespace(count=1, pause_ms=args.pause_ms)
        for _ in range(args.count):
            for name, call in kinds.items():
                pause, once = _timed(call, one)
                times[name][0].extend(pause)
                times[name][1].extend(once)
    wire.close()
    print(f"getScene by layer, thread CPU, medians of {args.count}: after a "
          f"{args.pause_ms:g} ms pause / right after another")
    for name, (pause, once) in times.items():
        print(f"  {name:28s} {statistics.median(pause) * 1e6:6.0f} us / "
              f"{statistics.median(once) * 1e6:5.0f} us")


if __name__ == "__main__":
    sys.exit(main())
