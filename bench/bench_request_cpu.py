"""Benchmark: the runner's CPU for one Local API request, after a pause and right after another.

A build's thread waits for the server between its requests, and the code it runs after each
wait costs more than the same code warm (cold caches). This times one ``getScene`` (the
import check's ``get_scene_model_ids``) against a simulator on loopback, in thread CPU
(``time.thread_time``: the socket calls' kernel time counts, the wait does not), first after
a pause, then at once again; it prints the median of each.

Run: ``python bench/bench_request_cpu.py [--count 150] [--pause-ms 20]`` at normal priority,
and write down the machine's load with the numbers: the spread between runs is the load's.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from preform_pipeline.api import PreFormClient, SceneSettings

__all__ = ["main"]

#: The simulator's start-up line that names its port (``simulator/cli.py``).
_PORT_LINE = re.compile(r"listening on port (\d+)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=150, help="requests of each kind")
    parser.add_argument("--pause-ms", type=float, default=20.0)
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
            after_pause: list[float] = []
            at_once: list[float] = []
            for _ in range(args.count):
                time.sleep(args.pause_ms / 1000)  # the wait for the server, as in a build
                started = time.thread_time()
                client.get_scene_model_ids(scene.id)
                after_pause.append(time.thread_time() - started)
                started = time.thread_time()
                client.get_scene_model_ids(scene.id)
                at_once.append(time.thread_time() - started)
        print(f"get_scene_model_ids after a {args.pause_ms:g} ms pause: median "
              f"{statistics.median(after_pause) * 1e6:.0f} us; right after another: "
              f"{statistics.median(at_once) * 1e6:.0f} us (n={args.count} each)")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
