"""Worker processes for the store tests: ``python -m tests.unit.store.store_workers MODE ...``.

Each opens its own store (its own connection), as the daemon and the ``jobs`` command do.

- ``race PATH BUILD...``: print ``ready``, wait for a line on stdin, then try to move each build
  PREPARED → PRINT_SENDING with ``expect=``; print ``won ID`` or ``lost ID`` per build.
- ``write PATH STOP_FILE MAX``: create jobs and move them through states until STOP_FILE exists
  or MAX jobs were written; print ``started`` after the first, ``wrote N`` at the end.
- ``crash PATH``: drive a build to PRINT_SENDING, print its ids, and die without closing.
- ``open FOLDER ROLE``: print ``ready``, then for each name read from stdin open the store
  ``FOLDER/name`` and print ``opened`` or ``failed MESSAGE``. ROLE ``creator`` creates it;
  ``opener`` waits until the file is there and opens it with ``create=False`` (``jobs``, the
  dashboard or a second daemon starting as the first creates the store).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from preform_pipeline.errors import StoreConflictError, StoreError
from preform_pipeline.logging import configure_logging
from preform_pipeline.store import JobState, SqliteJobStore, embed_key

S = JobState


def race(path: Path, build_ids: list[int]) -> int:
    with SqliteJobStore(path) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        for build_id in build_ids:
            try:
                store.transition_build(build_id, S.PRINT_SENDING, f"sending from {os.getpid()}",
                                       expect=S.PREPARED)
                print(f"won {build_id}", flush=True)
            except StoreConflictError:
                print(f"lost {build_id}", flush=True)
    return 0


def write(path: Path, stop_file: Path, maximum: int) -> int:
    written = 0
    with SqliteJobStore(path) as store:
        while written < maximum and not stop_file.exists():
            job = store.create_job(recipe="load", source_path=f"/hot/inbox/{written}.stl")
            store.transition(job.id, S.QUEUED, "complete", expect=S.DISCOVERED)
            store.transition(job.id, S.PROCESSING, "taken", expect=S.QUEUED)
            written += 1
            if written == 1:
                print("started", flush=True)
    print(f"wrote {written}", flush=True)
    return 0


def crash(path: Path) -> int:
    store = SqliteJobStore(path)
    job = store.create_job(recipe="dental", source_path="/hot/processing/a.stl",
                           state=S.PROCESSING)
    build = store.create_build(recipe="dental", job_ids=[job.id])
    store.transition_build(build.id, S.PREPARING, "on server-1")
    store.transition_build(build.id, S.PREPARED, "saved")
    store.transition_build(build.id, S.PRINT_SENDING, "sending",
                           job_name=embed_key("case 7", build.job_key))
    print(f"{job.id} {build.id} {build.job_key}", flush=True)
    os._exit(3)  # the process dies here: no close, no cleanup, the print request never went out


#: How long an ``opener`` waits for its creator to make the file.
_CREATED_WITHIN_S = 30.0


def open_fresh(folder: Path, role: str) -> int:
    print("ready", flush=True)
    for line in sys.stdin:
        path = folder / line.strip()
        if role == "opener":
            deadline = time.monotonic() + _CREATED_WITHIN_S
            # A busy wait: the race is the moment the file appears, a sleep would miss it.
            while not path.exists() and time.monotonic() < deadline:
                pass
        try:
            SqliteJobStore(path, create=role == "creator").close()
            print("opened", flush=True)
        except StoreError as exc:
            print(f"failed {exc}", flush=True)
    return 0


def main(argv: list[str]) -> int:
    configure_logging(level="WARNING", console=sys.stderr)  # stdout carries the answers
    mode, path = argv[0], Path(argv[1])
    if mode == "race":
        return race(path, [int(a) for a in argv[2:]])
    if mode == "write":
        return write(path, Path(argv[2]), int(argv[3]))
    if mode == "crash":
        return crash(path)
    if mode == "open":
        return open_fresh(path, argv[2])
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
