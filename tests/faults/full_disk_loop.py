"""A running ``watch`` daemon whose disk fills to the last byte at seeded random moments.

Run by hand, as root on Linux (it mounts a tmpfs), from the checkout::

    nice -n 10 python -m tests.faults.full_disk_loop [--mode inbox|output|store] SEED [SEED ...]

For each seed: a tmpfs of :data:`DISK_KIB` KiB is mounted in a fresh folder under /tmp;
``HOME`` and ``XDG_DATA_HOME`` are an empty folder there. The mode chooses what is on it:

- ``inbox``: the inbox (with its processing/, done/ and failed/), the SQLite store and the
  settings' log file (``logging.file``);
- ``output``: only the output folder (the ``.form`` files the builds save);
- ``store``: only the SQLite store.

A real ``preform-pipeline watch`` (the embedded simulator, a fleet folder off the disk) is
started, and a stream of single model files (STL, OBJ, some with a sidecar) and case folders
is dropped into the inbox, each written aside and renamed in (in ``inbox`` mode the aside
folder is on the small disk too: a drop the full disk refuses is removed, as a copy that
failed, and dropped again later). :data:`CYCLES` times, at a seeded moment, the disk is
filled to the last byte (``tests/small_disk.py``), held full a seeded while and freed. Then
the daemon runs until every drop is settled (or :data:`SETTLE_S` passes) and is stopped
with SIGTERM. Checked at the end of each seed:

- every dropped file is in done/ (byte-identical, once, printed once: the fleet's jobs and
  the store agree) or in failed/ with an ``.error.txt`` beside it (its text is printed, to
  be read: is it true?), or still in the inbox or processing/ with the store saying why;
- no dropped file is lost, truncated, or under its own name with other bytes, and no
  temporary (``*.tmp``, ``.~*``) is left on the disk or in the output folder;
- the store opens and ``jobs`` lists it (exit 0);
- no traceback on the daemon's stderr, and the daemon lived until the SIGTERM and then
  exited 0; a daemon that stopped by itself must have said why (an ``error:`` line: a
  start that cannot write its daemon lock on a full disk does), and is started again, as
  a service manager would: the work must still finish.

The exit status is the number of seeds that broke an invariant; each problem is printed.
Not part of the suite (a seed takes 30 to 90 s). Results are recorded in docs/testing.md
(session 39, ``s39-fill``):

- session 39 (after the fix of ``take_failed`` said every second, found by ``inbox`` seed 6):
  ``inbox`` seeds 0-14, ``output`` seeds 0-9 and ``store`` seeds 0-9 all ok, 13 to 29 s a
  seed (2 cores, load 2 to 7); in ``inbox`` seeds 1 and 13 the disk filled before the daemon
  wrote its lock: it stopped saying so, and its restart finished the work. ``inbox`` seeds
  15-24: 15, 16, 17, 19, 22, 23 ok; 18, 20, 21 and 24 did not settle within 120 s: the
  store's WAL grew to 3.8 MiB (SQLite checkpoints only at 1,000 pages) and filled the
  4 MiB disk for good (seed 18: 0 KiB free at the end), so builds waited, as they should
  on a disk that stays full. With ``--disk-kib 16384`` those four seeds are ok (the WAL
  stayed under 256 KiB). Session 39 (``s39-wal``): the WAL was never shrunk (SQLite's
  defaults); the store now checkpoints every 256 pages and cuts the WAL back to 1 MiB, and
  seeds 18, 20, 21 and 24 settle in 61 to 65 s with over 3.5 MiB free at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from preform_pipeline.hotfolder.testing import (  # noqa: E402
    fleet_jobs,
    tetra_obj_bytes,
    tetra_stl_bytes,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.store import JobState, SqliteJobStore  # noqa: E402
from tests.small_disk import SmallDisk  # noqa: E402

#: The small disk: room for the store, its WAL, the logs and a few dozen small models.
DISK_KIB: Final = 4096
#: Fill, hold, free: this many times per seed.
CYCLES: Final = 3
#: Seconds before a fill (the daemon working on what was dropped), and how long it is held.
BEFORE_FILL_S: Final = (0.3, 4.0)
HOLD_FULL_S: Final = (0.5, 6.0)
#: Once the disk is free for good: how long the daemon may take to settle every drop.
SETTLE_S: Final = 120.0
STOP_S: Final = 40.0
#: A daemon that stops by itself (saying why) is started again; more stops than this fail.
MAX_RESTARTS: Final = 5
SIMULATOR_ARGS: Final = ("--latency", "realistic", "--time-scale", "0.2")
_SENT: Final = {JobState.PRINT_SENT, JobState.VERIFYING, JobState.FINISHED}
_NOTES: Final = (".error.txt", ".report.json")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Drops:
    """What was dropped (relative path in the inbox -> digest), and what waits to be."""

    inbox: Path
    staging: Path
    rng: random.Random
    files: dict[str, str] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)  # stem -> relative path
    refused: int = 0
    _n: int = 0
    _pending: list[dict[str, bytes]] = field(default_factory=list)

    def make(self, count: int) -> None:
        for _ in range(count):
            self._n += 1
            n = self._n
            if self.rng.random() < 0.3:
                item = {f"C{n}/m{n}a.stl": tetra_stl_bytes(n),
                        f"C{n}/m{n}b.obj": tetra_obj_bytes(n + 50_000)}
                if self.rng.random() < 0.5:
                    item[f"C{n}/C{n}.yaml"] = f"operator: fill {n}\n".encode()
            else:
                suffix = self.rng.choice((".stl", ".obj"))
                data = tetra_stl_bytes(n) if suffix == ".stl" else tetra_obj_bytes(n)
                item = {}
                if self.rng.random() < 0.4:
                    item[f"m{n}.yaml"] = f"operator: fill {n}\n".encode()  # before its model
                item[f"m{n}{suffix}"] = data
            self._pending.append(item)

    def drop(self) -> None:
        """Drop what waits; an item the disk refuses (ENOSPC) is removed and kept waiting."""
        waiting, self._pending = self._pending, []
        for item in waiting:
            if not self._drop(item):
                self.refused += 1
                self._pending.append(item)

    @property
    def waiting(self) -> int:
        return len(self._pending)

    def _drop(self, item: dict[str, bytes]) -> bool:
        written: list[Path] = []
        try:
            for rel, data in item.items():
                aside = self.staging / rel
                aside.parent.mkdir(parents=True, exist_ok=True)
                written.append(aside)
                aside.write_bytes(data)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            for path in written:
                path.unlink(missing_ok=True)
            for folder in {p.parent for p in written if p.parent != self.staging}:
                with contextlib.suppress(OSError):
                    folder.rmdir()
            return False
        tops = sorted({Path(rel).parts[0] for rel in item})
        for top in tops:  # the sidecar's name sorts after the model's: rename it first
            if top.endswith(".yaml"):
                os.replace(self.staging / top, self.inbox / top)
        for top in tops:
            if not top.endswith(".yaml"):
                os.replace(self.staging / top, self.inbox / top)
        for rel, data in item.items():
            self.files[rel] = _digest(data)
            if not rel.endswith(".yaml"):
                self.models[Path(rel).stem] = rel
        return True


@dataclass(frozen=True)
class Layout:
    """Where each thing lives for a mode: on the small disk or beside it."""

    inbox: Path
    store: Path
    log: Path
    output: Path
    staging: Path


def _layout(mode: str, disk: Path, off: Path) -> Layout:
    on = {"inbox": {"inbox", "store", "log", "staging"}, "output": {"output"},
          "store": {"store"}}[mode]

    def place(what: str, rel: str) -> Path:
        return (disk if what in on else off) / rel

    return Layout(inbox=place("inbox", "inbox"), store=place("store", "jobs.sqlite3"),
                  log=place("log", "logs/watch.jsonl"), output=place("output", "out"),
                  staging=place("staging", "staging"))


def _environment(home: Path, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"),
               PYTHONPATH=str(REPO_ROOT), PREFORM_PIPELINE_SERVER_STATE_DIR=str(state))
    return env


def _settled_everything(drops: Drops, layout: Layout) -> bool:
    if drops.waiting:
        return False
    for rel in drops.files:
        if not ((layout.inbox / "done" / rel).exists() or (layout.inbox / "failed" / rel).exists()):
            return False
    return not any(p.is_file() for p in (layout.inbox / "processing").rglob("*"))


def _mount(where: Path, size_kib: int) -> SmallDisk:
    where.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs",
                    str(where)], check=True)
    return SmallDisk(where)


def _unmount(where: Path) -> None:
    if subprocess.run(["umount", str(where)], capture_output=True, check=False).returncode:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def run_seed(seed: int, mode: str, keep: bool, disk_kib: int = DISK_KIB) -> list[str]:
    """One seed's loop; the problems found (empty: every invariant held)."""
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix=f"s39-fill-{mode}-{seed}-"))
    disk = _mount(root / "disk", disk_kib)
    problems: list[str] = []
    daemon: subprocess.Popen[bytes] | None = None
    try:
        off = root / "off"
        off.mkdir()
        home = root / "home"
        home.mkdir()
        layout = _layout(mode, disk.root, off)
        for folder in (layout.inbox, layout.store.parent, layout.log.parent, layout.staging):
            folder.mkdir(parents=True, exist_ok=True)
        fleet = off / "fleet"
        recipe = write_recipe(off, per_build=4)
        settings = write_hotfolder_settings(
            off, recipe, fleet_dir=fleet, inbox={"path": str(layout.inbox)},
            hotfolders={"output_root": str(layout.output),
                        "batching": {"window_s": 0.3, "max_models": 4}},
            simulator_args=SIMULATOR_ARGS)
        data = json.loads(settings.read_text(encoding="utf-8"))
        data["store"] = {"path": str(layout.store)}
        data["logging"] = {"file": str(layout.log), "level": "INFO"}
        settings.write_text(json.dumps(data, indent=2), encoding="utf-8")
        env = _environment(home, off / "server-state")
        command = [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--quiet"]
        out, err = (off / "daemon.out").open("ab"), (off / "daemon.err").open("ab")
        said_at = 0  # how much of daemon.err an earlier life's stop was judged from

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(command, cwd=off, env=env, stdout=out, stderr=err,
                                    start_new_session=True)

        def restarted_if_stopped(running: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
            """A daemon that stopped by itself must have said why (an ``error:`` line, as a
            start that cannot write its lock on a full disk does); it is started again, as
            a service manager would."""
            nonlocal said_at
            if running.poll() is None:
                return running
            err.flush()
            text = (off / "daemon.err").read_text("utf-8", "replace")
            said = [line for line in text[said_at:].splitlines() if line.startswith("error:")]
            said_at = len(text)
            stops.append((running.returncode, said[-1][:300] if said else None))
            if not said:
                problems.append(f"the daemon exited {running.returncode} without saying why")
            if len(stops) > MAX_RESTARTS:
                raise RuntimeError(f"the daemon stopped {len(stops)} times")
            return start()

        stops: list[tuple[int, str | None]] = []
        daemon = start()
        drops = Drops(layout.inbox, layout.staging, rng)
        fills: list[tuple[float, float]] = []
        for _ in range(CYCLES):
            drops.make(rng.randint(2, 4))
            drops.drop()
            before = rng.uniform(*BEFORE_FILL_S)
            time.sleep(before)
            hold = rng.uniform(*HOLD_FULL_S)
            disk.fill()
            fills.append((round(before, 1), round(hold, 1)))
            if rng.random() < 0.5:  # a drop while full: refused in inbox mode
                drops.make(1)
                drops.drop()
            time.sleep(hold)
            disk.free()
            daemon = restarted_if_stopped(daemon)
        drops.make(2)
        drops.drop()
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            daemon = restarted_if_stopped(daemon)
            drops.drop()
            if _settled_everything(drops, layout):
                break
            time.sleep(0.2)
        else:
            problems.append(f"not every drop settled within {SETTLE_S:g} s")
        daemon.send_signal(signal.SIGTERM)
        try:
            status = daemon.wait(STOP_S)
        except subprocess.TimeoutExpired:
            problems.append(f"the daemon did not stop within {STOP_S:g} s of SIGTERM")
            os.killpg(daemon.pid, signal.SIGKILL)
            status = daemon.wait(10)
        if status != 0:
            problems.append(f"the daemon exited {status} on SIGTERM")
        out.close()
        err.close()
        stderr = (off / "daemon.err").read_text("utf-8", "replace")
        if "Traceback" in stderr:
            problems.append("a traceback on stderr")
        problems += _check(drops, layout, fleet, settings, env, off)
        outcomes = Counter(where for rel in drops.files if not rel.endswith(".yaml")
                           for where in ("done", "failed")
                           if (layout.inbox / where / rel).is_file())
        summary = {"seed": seed, "mode": mode, "dropped": len(drops.models),
                   "done": outcomes["done"], "failed": outcomes["failed"],
                   "refused_drops": drops.refused, "fills_after_s_held_s": fills,
                   "stderr_lines": len(stderr.splitlines()),
                   "stopped_by_itself": stops,
                   "disk_free_at_end_kib": disk.free_bytes() // 1024,
                   "disk_at_end_kib": {p.name: p.stat().st_size // 1024
                                       for p in disk.root.rglob("*") if p.is_file()
                                       and p.stat().st_size > 256 * 1024}}
        print(json.dumps(summary))
        for line in sorted(set(stderr.splitlines()))[:30]:
            print("   stderr:", line[:300])
        if problems or keep:
            print(f"   kept: {root}")
        return problems
    finally:
        if daemon is not None and daemon.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(10)
        if problems or keep:  # the small disk's files, to be read after it is unmounted
            shutil.copytree(disk.root, root / "disk-kept", symlinks=True,
                            ignore=shutil.ignore_patterns("filler"))
        _unmount(disk.root)
        if not problems and not keep:
            subprocess.run(["rm", "-rf", str(root)], check=False)


def _check(drops: Drops, layout: Layout, fleet: Path, settings: Path,
           env: dict[str, str], off: Path) -> list[str]:
    problems: list[str] = []
    inbox = layout.inbox
    with SqliteJobStore(layout.store) as store:
        jobs = store.list_jobs()
        builds = store.list_builds()
    by_stem = {Path(j.original_name).stem: j for j in jobs}
    prints = fleet_jobs(fleet)
    printed = Counter(m["name"].rsplit(" ", 1)[-1] for job in prints for m in job["models"])
    names = [job["job_name"] for job in prints]
    if len(names) != len(set(names)):
        twice = sorted(n for n, c in Counter(names).items() if c > 1)
        problems.append(f"a build printed twice: {twice}")
    for stem, count in printed.items():
        if count > 1:
            problems.append(f"{stem} printed {count} times")
    sent = {b.job_name for b in builds if b.state in _SENT | {JobState.UNVERIFIED}}
    if not set(names) <= sent:
        problems.append(f"fleet jobs the store does not call sent: {set(names) - sent}")
    for rel, digest in drops.files.items():
        places = [inbox / where / rel for where in ("done", "failed", "processing", ".")]
        found = [p for p in places if p.is_file()]
        # A case's file waits in processing/<id>/ under its own name, without its folder.
        found += [p for p in {*(inbox / "processing").glob(f"*/{rel}"),
                              *(inbox / "processing").glob(f"*/{Path(rel).name}")}
                  if p.is_file()]
        if not found:
            problems.append(f"{rel} is lost")
            continue
        if len(found) > 1:
            problems.append(f"{rel} is in more than one place: {found}")
        for path in found:
            if _digest(path.read_bytes()) != digest:
                problems.append(f"{path} is not what was dropped (truncated or changed)")
        where = found[0].relative_to(inbox).parts[0]
        if rel.endswith(".yaml"):
            continue
        stem = Path(rel).stem
        job = by_stem.get(stem)
        if where == "done":
            if printed[stem] != 1 or job is None or job.state not in _SENT:
                problems.append(f"{rel} in done/ but printed {printed[stem]} times, job "
                                f"{job.state.value if job else None}")
        elif where == "failed":
            notes = list(found[0].parent.glob("*.error.txt"))
            if not notes:
                problems.append(f"{rel} in failed/ without an .error.txt")
            for note in notes:
                print(f"   failed {rel}: {note.read_text('utf-8', 'replace').strip()[:400]}")
            if printed[stem]:
                problems.append(f"{rel} in failed/ but printed")
        else:
            state = job.state.value if job else "no job"
            print(f"   waiting {rel} in {where}: store says {state}")
    temporaries = [p for base in (layout.inbox, layout.output, layout.store.parent,
                                  layout.log.parent) if base.exists()
                   for p in base.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".~")]
    if temporaries:
        problems.append(f"temporaries left: {temporaries[:5]}")
    listed = subprocess.run(
        [sys.executable, "-m", "preform_pipeline", "jobs", "--settings", str(settings)],
        cwd=off, env=env, capture_output=True, text=True, timeout=60, check=False)
    if listed.returncode != 0 or "Traceback" in listed.stderr:
        problems.append(f"jobs exited {listed.returncode}: {listed.stderr.strip()[:300]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("inbox", "output", "store"), default="inbox")
    parser.add_argument("--keep", action="store_true", help="keep each seed's folder")
    parser.add_argument("--disk-kib", type=int, default=DISK_KIB,
                        help=f"the small disk's size (default {DISK_KIB})")
    parser.add_argument("seeds", nargs="+", type=int)
    args = parser.parse_args(argv)
    if sys.platform != "linux" or os.geteuid() != 0:
        print("error: mounting a tmpfs needs root on Linux", file=sys.stderr)
        return 2
    broken = 0
    for seed in args.seeds:
        started = time.monotonic()
        problems = run_seed(seed, args.mode, args.keep, args.disk_kib)
        print(f"seed {seed} ({args.mode}): {'ok' if not problems else 'BROKEN'} in "
              f"{time.monotonic() - started:.0f} s", flush=True)
        for problem in problems:
            print("   problem:", problem, flush=True)
        broken += bool(problems)
    return broken


if __name__ == "__main__":
    sys.exit(main())
