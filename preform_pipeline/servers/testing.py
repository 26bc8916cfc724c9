"""Test helpers that ship with the package: a tiny stand-in server and settings for it.

The stand-in is a real program started like PreFormServer (``--port N --scene-cache-size K``):
it prints READY FOR INPUT, answers ``GET /`` and can misbehave in the ways a process manager
must survive (start slowly, fail to start, hang on ``GET /``, ignore SIGINT, spawn children
that outlive it, speak a Local API version outside the range: ``--api-version``). The
simulator covers the Local API; this covers process handling only.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from preform_pipeline.settings import ServerSettings, Settings

__all__ = ["STANDIN_SOURCE", "standin_settings", "write_standin_server"]

STANDIN_SOURCE: Final = r'''
"""Stand-in PreFormServer for process tests (written by preform_pipeline.servers.testing)."""
import argparse, http.server, json, os, signal, subprocess, sys, threading, time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--scene-cache-size", type=int, default=100)
p.add_argument("--fail-start", action="store_true")
p.add_argument("--slow-start", type=float, default=0.0)
p.add_argument("--hang-health", action="store_true")
p.add_argument("--ignore-sigint", action="store_true")
p.add_argument("--spawn-child", action="store_true")
p.add_argument("--child-new-session", action="store_true")
p.add_argument("--grow-mb", type=int, default=0)
p.add_argument("--api-version", default="0.9.12")
a = p.parse_args()

print("Stand-in server starting", flush=True)
if a.fail_start:
    print("fatal: stand-in told to fail at start", file=sys.stderr, flush=True)
    sys.exit(7)
if a.ignore_sigint:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
if a.slow_start:
    time.sleep(a.slow_start)
ballast = bytearray(a.grow_mb * 1024 * 1024)
for i in range(0, len(ballast), 4096):
    ballast[i] = 1  # touch every page so it counts as resident

stop = threading.Event()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if a.hang_health:
            stop.wait()
            return
        body = json.dumps({"version": a.api_version}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

try:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
except OSError as exc:
    print(f"error: the bound address is already in use ({exc})", file=sys.stderr, flush=True)
    sys.exit(1)
server.daemon_threads = True

if a.spawn_child:
    code = "import time\nwhile True: time.sleep(1)"
    if a.ignore_sigint:
        code = "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)\n" + code
    kwargs = {"start_new_session": True} if a.child_new_session else {}
    child = subprocess.Popen([sys.executable, "-c", code], **kwargs)
    print(f"CHILD {child.pid}", flush=True)

print(f"listening on port {server.server_address[1]}", flush=True)
print("READY FOR INPUT", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    print("interrupted, shutting down", file=sys.stderr, flush=True)
'''


def write_standin_server(folder: Path) -> Path:
    """Write the stand-in script into ``folder``; returns its path."""
    path = folder / "standin_server.py"
    path.write_text(STANDIN_SOURCE, encoding="utf-8")
    return path


def standin_settings(script: Path, *extra_args: str, **overrides: Any) -> Settings:
    """Settings that run ``script`` as the server (``python script --port N ...``).

    ``overrides`` replace :class:`ServerSettings` fields; the defaults here are test-sized
    (OS-chosen ports, short timeouts, fast backoff, no periodic health checks).
    """
    servers = ServerSettings(
        executable=script,
        command_prefix=(sys.executable,),
        extra_args=tuple(extra_args),
        count=1,
        base_port=0,
        startup_timeout_s=10.0,
        stop_timeout_s=2.0,
        health_interval_s=0.0,
        health_timeout_s=1.0,
        recycle_after_builds=0,
        restart_backoff_s=0.05,
        restart_backoff_max_s=0.2,
    )
    return Settings(servers=replace(servers, **overrides))
