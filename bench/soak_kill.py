"""Soak: seeded kill -9 loops, longer than the suite's, against the hot folder.

Drives real ``preform-pipeline watch`` daemons (subprocesses, each on its own simulated
servers, one shared simulated fleet) on a real store: one daemon on an SQLite file, or
``--nodes`` daemons on a throw-away PostgreSQL cluster (tests/pg_cluster.py: run as an
unprivileged user when started as root, as the tests do). For each seed it drops waves of
work into the shared inbox: single STL, OBJ and 3MF files (some with a sidecar), case folders
(some with a case sidecar), twins (one content under two names at once), copies of content
dropped before (a late duplicate), and files and case folders written in place, piece by
piece, while the daemons look. Between waves it SIGKILLs a process at a seeded moment and
starts it again after a seeded pause:

* ``random``: a running daemon, after a seeded delay;
* ``preparing`` / ``sending``: the daemon seen holding a build in that state (PostgreSQL: by
  its lease; SQLite: the one daemon), the instant it is seen;
* ``sent``: as ``sending``, a seeded 0.05-1.2 s later: the print has often reached the fleet
  by then while the store still says it is being sent (an instant ``sending`` kill never
  leaves a print behind, so it never asks the restart to find one);
* ``landed``: the daemon holding a build it sends is frozen (SIGSTOP, a seeded 0.05-0.6 s
  after its row said so, when the request is on its way) and killed once one
  more print shows in the fleet's records (or 3 s passed): its server finished the send that
  the daemon never recorded. A kill that lands by chance in that window (milliseconds between
  the printer's answer and the store's PRINT_SENT) is too rare to meet otherwise: an instant
  ``sending`` kill leaves no print, a ``sent`` one nearly always finds it recorded;
* ``claim`` (with ``--printers``): a daemon seen holding a printer claim;
* ``moving``: a daemon a few seeded milliseconds after a job's row names a new place
  (taken into processing/, or settled into done/ or failed/; the file follows the row);
* ``server``: one simulated PreFormServer of a running daemon (the daemon must replace it);
* ``cron``: ``watch --once`` on the same store and inbox (cron's way, docs/hotfolder.md),
  killed at a seeded moment or let finish. On SQLite a cron run while the daemon runs must be
  refused (exit 1, one daemon per store), so cron runs there while the daemon is down.

With ``--stall`` (PostgreSQL) one seeded node reaches the database through a TCP relay on
loopback (tests/stalling_relay.py), and beside the kills the relay stalls now and then: it
stops carrying anything, closing nothing, for a seeded time longer than a lease (and than a
send's extended lease), then either carries on or resets every connection. The stall begins
at a seeded moment: ``random``, or the instant the node is seen holding a build ``preparing``
or ``sending``. The promise (docs/multi-node.md, "A stalled link to the database"): the
other nodes take over what it held; the stalled node, once its link is back, writes nothing
over them and prints nothing they took over (the checks below: no build key nor content
printed twice); it comes back (its heartbeat is fresh again within 35 s of the stall's end:
a lease and a half, and 5 s) or exits cleanly; and nothing is lost.

With ``--gone`` (session 48) a wave may also drop a file that a person removes from
processing/ a seeded 0-3 s after a daemon took it from the inbox: before its plan, between
the plan and the import (the build prints without it: ``model_gone``), or after. Such a
file is checked for what it can still promise: nothing of it left in processing/, its job
not stuck, its content printed at most once; one that settled before its removal came is
checked as any file. The seed's line counts the removed files' job states and what the
daemons said of them (``model_gone``, ``file_removed``, ``file_missing``, ``file_lost``).
The waves of a seed without ``--gone`` are the ones it always drew.

With ``--approval`` the recipe holds every build for approval, and an operator approves the
held builds (the store's ``approve``, as the dashboard does) every second or so.

At the end the farm runs to quiet and is stopped gracefully, and what a user would check is
checked from the folders, the store and the fleet's print records:

* every dropped file is in done/ or failed/ exactly once, byte-identical; nothing is left in
  the inbox or processing/ (not even a folder);
* no content was printed twice, and no build key was printed twice;
* every model content was printed once, unless each of its copies is a skipped duplicate or
  an undecided print (UNVERIFIED, in failed/, never resent); a file fails for no other
  reason; of twins at most one printed;
* no job or build is left in a state that is worked on (none stuck), nothing awaits
  approval, every daemon stopped with exit status 0;
* no printer claim or inbox claim of a daemon's last life is left (a killed life's claims
  are counted: they run out with their lease);
* no process of the soak is left (servers die with their daemon, or the next start reaps
  them);
* (session 48) no traceback in any daemon's output (stdout and stderr, every life).

A summary line per seed; exit status 1 naming the first seed that broke a promise (its
folder with the daemons' logs is kept and named), 0 when every seed held.

    python bench/soak_kill.py --store sqlite --seeds 1-10 --kills 10
    python bench/soak_kill.py --store postgres --nodes 3 --seeds 1-10 --kills 10 [--approval]
    python bench/soak_kill.py --store postgres --nodes 3 --stall --seeds 1-5 --kills 10
    python bench/soak_kill.py --store sqlite --gone --seeds 1-10 --kills 10
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from preform_pipeline.hotfolder.testing import (  # noqa: E402
    tetra_3mf_bytes,
    tetra_obj_bytes,
    tetra_stl_bytes,
)
from preform_pipeline.liveness import ProcessIdentity  # noqa: E402
from preform_pipeline.printing.approval import approve  # noqa: E402
from preform_pipeline.store import ACTIVE_STATES, JobState  # noqa: E402
from preform_pipeline.store.postgres import PostgresJobStore  # noqa: E402
from preform_pipeline.store.sqlite import SqliteJobStore  # noqa: E402
from tests.multinode_farm import DaemonFarm, FarmTiming, printed_models, settled_files  # noqa: E402
from tests.pg_cluster import PG_PASSWORD, PgCluster  # noqa: E402
from tests.stalling_relay import StallingRelay  # noqa: E402

__all__ = ["main"]

#: As the farm tests' lease, and for their reason (renewals queue behind writes).
LEASE_S = 20.0
#: The farm's limit to run to quiet after the last wave; it fails sooner when nothing moves.
QUIET_LIMIT_S = 900.0
#: How long nothing may move (no file settled, no build changed state) before the farm is
#: taken for stuck. A killed node's build waits a lease before another node takes it over.
STILL_S = 4 * LEASE_S
MODEL_SUFFIXES = (".stl", ".obj", ".3mf")
#: The delay of a ``sent`` kill after a send began: a scaled print request takes 0.3-1 s.
SENT_DELAY_S = (0.05, 1.2)
#: The delay of a ``landed`` freeze after a send began: its store row is written before the
#: request goes out, and the scaled request takes 0.3-1 s to be answered.
LANDED_DELAY_S = (0.05, 0.6)
#: How long the processes of a stopped farm may take to be gone.
GONE_S = 20.0
#: States a job or build must not be left in: worked on, or waiting for work. A sent print
#: (PRINT_SENT, VERIFYING) is followed by ``verify`` (docs/verify.md), not by the hot folder.
WORKING = ACTIVE_STATES - {JobState.PRINT_SENT, JobState.VERIFYING}
#: A stall lasts this many times a sending build's lease (the lease and the print request's
#: deadline, FarmTiming's 4 s): longer, so whatever the node held is taken over meanwhile.
STALL_LEASES = (1.1, 2.0)
SEND_DEADLINE_S = 4.0
#: The pause between the end of one stall (the node back) and the next one's moment.
STALL_GAP_S = (2.0, 12.0)
#: How long a node whose link is back may take to beat again (its renewal thread waits a
#: third of a lease; a reset first costs a reconnect).
BACK_S = 1.5 * LEASE_S
#: ``--gone``: how long after a daemon took a file from the inbox it is removed from
#: processing/: within a build's preparation (scaled steps take 0.1-1 s each), so the removal
#: lands before the plan, between the plan and the import, or after it.
GONE_DELAY_S = (0.0, 3.0)
#: The pauses of a file written in place: below the inbox's quiet period (0.5 s in the test
#: settings), within which a file too short to judge (an STL's header alone) is waited for.
WRITE_PAUSE_S = (0.02, 0.25)


MAKERS: dict[str, Callable[[int], bytes]] = {
    ".stl": lambda seed: tetra_stl_bytes(seed), ".obj": tetra_obj_bytes, ".3mf": tetra_3mf_bytes}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Dropper:
    """What a seed dropped: each file's path below the inbox and its digest, the case
    folders' model files, the twin pairs; and the writers still writing in place."""

    def __init__(self, farm: DaemonFarm, rng: random.Random, *, gone: bool = False) -> None:
        self.farm, self.rng = farm, rng
        self.files: dict[str, str] = {}
        #: ``--gone``: files a person removes once a daemon took them (name: digest), and
        #: those removed from processing/ before they settled (the rest are checked as
        #: any file: they settled before the removal came).
        self.gone: dict[str, str] = {}
        self.removed: set[str] = set()
        self._gone = gone
        self.cases: dict[str, list[str]] = {}
        self.twins: list[tuple[str, str]] = []
        self.kinds: Counter[str] = Counter()
        self.staging = farm.root / "staging"
        self.staging.mkdir(exist_ok=True)
        self.writers: list[threading.Thread] = []
        self._n = 0
        self._models: list[tuple[str, bytes]] = []

    def _model(self, n: int, suffix: str) -> bytes:
        return MAKERS[suffix](n)

    def _put(self, rel: str, data: bytes) -> None:
        self.files[rel] = _digest(data)
        if rel.endswith(MODEL_SUFFIXES):
            self._models.append((Path(rel).suffix, data))

    def _in_place(self, path: Path, data: bytes, pieces: int) -> None:
        """Write ``data`` at ``path`` in ``pieces`` writes with seeded pauses (a copy over
        a slow share); the daemons see it incomplete in between."""
        pauses = [self.rng.uniform(*WRITE_PAUSE_S) for _ in range(pieces)]
        step = -(-len(data) // pieces)

        def write() -> None:
            with path.open("wb") as out:
                for i, pause in enumerate(pauses):
                    out.write(data[i * step:(i + 1) * step])
                    out.flush()
                    time.sleep(pause)

        thread = threading.Thread(target=write, name=f"writer {path.name}")
        thread.start()
        self.writers.append(thread)

    def _case(self, n: int, *, in_place: bool) -> None:
        name = f"C-{n}"
        folder = (self.farm.inbox if in_place else self.staging) / name
        folder.mkdir()
        rels = []
        parts = []
        for part in range(self.rng.randint(2, 3)):
            file = f"{name}-{part}{self.rng.choice(MODEL_SUFFIXES)}"
            parts.append((file, self._model(n * 10 + part, Path(file).suffix)))
        if self.rng.random() < 0.5:
            parts.append((f"{name}.yaml", f"operator: soak {n}\npriority: 1\n".encode()))
        for file, data in parts:
            self._put(f"{name}/{file}", data)
            if file.endswith(MODEL_SUFFIXES):
                rels.append(f"{name}/{file}")
            if in_place and file.endswith(".stl"):  # the one type judged complete by size
                self._in_place(folder / file, data, self.rng.randint(2, 4))
            else:
                (folder / file).write_bytes(data)
        self.cases[name] = rels
        if not in_place:
            os.replace(folder, self.farm.inbox / name)

    def _drop(self, names: list[str], data: bytes) -> None:
        for name in names:
            (self.staging / name).write_bytes(data)
        for name in names:
            os.replace(self.staging / name, self.farm.inbox / name)
            self._put(name, data)

    def _remove_when_taken(self, name: str, data: bytes, delay: float) -> None:
        """Drop ``name``, and remove it ``delay`` seconds after a daemon took it from the
        inbox, from processing/ if it is still there: a person tidying the share between
        the plan and the import (session 48's ``model_gone``), or before the plan."""
        self.gone[name] = _digest(data)
        (self.staging / name).write_bytes(data)
        os.replace(self.staging / name, self.farm.inbox / name)

        def remove() -> None:
            deadline = time.monotonic() + 60.0
            while (self.farm.inbox / name).exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(delay)
            for path in (self.farm.inbox / "processing").rglob(name):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    self.removed.add(name)
                    return

        thread = threading.Thread(target=remove, name=f"remover {name}")
        thread.start()
        self.writers.append(thread)

    def wave(self) -> None:
        kinds = ["file", "case", "twins", "slow", "slowcase"]
        if self._models:
            kinds.append("again")
        if self._gone:  # only then: the other seeds draw the waves they always drew
            kinds.append("gone")
        for kind in self.rng.sample(kinds, k=self.rng.randint(2, len(kinds))):
            self._n += 1
            n = self._n
            self.kinds[kind] += 1
            suffix = self.rng.choice(MODEL_SUFFIXES)
            if kind in ("case", "slowcase"):
                self._case(n, in_place=kind == "slowcase")
            elif kind == "slow":
                data = self._model(n * 10, ".stl")
                self._put(f"p{n}.stl", data)
                self._in_place(self.farm.inbox / f"p{n}.stl", data, self.rng.randint(2, 5))
            elif kind == "gone":  # content of its own: never an ``again`` of it
                self._remove_when_taken(f"g{n}.stl", self._model(n * 10 + 7, ".stl"),
                                        self.rng.uniform(*GONE_DELAY_S))
            elif kind == "again":  # content dropped before, under a new name: a duplicate
                suffix, data = self.rng.choice(self._models)
                self._drop([f"p{n}-again{suffix}"], data)
            else:
                data = self._model(n * 10, suffix)
                names = [f"p{n}{suffix}"] + ([f"p{n}-twin{suffix}"] if kind == "twins" else [])
                if kind == "file" and self.rng.random() < 0.5:  # before its model: taken with it
                    self._drop([f"p{n}.yaml"], f"operator: soak {n}\n".encode())
                self._drop(names, data)
                if kind == "twins":
                    self.twins.append((names[0], names[1]))

    def written(self) -> None:
        for thread in self.writers:
            thread.join()
        for name, digest in self.gone.items():
            if name not in self.removed:  # settled before its removal came
                self.files[name] = digest


@dataclass
class Outcome:
    seed: int
    moments: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)


class _Beside:
    """Work a thread does beside the kills (``_run``), from ``with`` until asked to stop."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        raise NotImplementedError


class Approver(_Beside):
    """An operator approving every held build about once a second, with a store of its own
    (as the dashboard's), until stopped."""

    def __init__(self, farm: DaemonFarm) -> None:
        super().__init__("approver")
        self.farm = farm
        self.approved = 0

    def _run(self) -> None:
        store = (PostgresJobStore(self.farm.url, password=PG_PASSWORD) if self.farm.on_postgres
                 else SqliteJobStore(Path(self.farm.url)))
        with store:
            while not self._stop.wait(1.0):
                for build in store.list_builds(state=[JobState.AWAITING_APPROVAL]):
                    with contextlib.suppress(Exception):  # approved by another look, or moved
                        approve(store, build.id, "soak")
                        self.approved += 1


class Staller(_Beside):
    """Stalls ``node``'s link to the database (``relay``) at seeded moments until stopped:
    each stall longer than a lease, ended by a resume or a reset, then a check that the node
    came back (or ended)."""

    def __init__(self, farm: DaemonFarm, relay: StallingRelay, node: str,
                 rng: random.Random, out: Outcome) -> None:
        super().__init__("staller")
        self.farm, self.relay, self.node, self.rng, self.out = farm, relay, node, rng, out

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.rng.uniform(*STALL_GAP_S)):
                self._stall_once()
        except Exception as exc:  # a staller that broke says so, never hides it
            self.out.violations.append(f"the staller failed: {exc!r}")
        finally:
            self.relay.resume()

    def _holds(self, state: JobState) -> bool:
        return bool(self.farm.owned_in(self.node, state)) and self._alive()

    def _alive(self) -> bool:
        proc = self.farm.procs.get(self.node)
        return proc is not None and proc.poll() is None

    def _stall_once(self) -> None:
        moment = self.rng.choice(["random", "preparing", "sending"])
        if moment != "random":
            state = JobState.PREPARING if moment == "preparing" else JobState.PRINT_SENDING
            if not _poll(lambda: self._holds(state) or self._stop.is_set(), 20.0) or (
                    self._stop.is_set()):
                self.out.moments[f"stall {moment} missed"] += 1
                moment = "random"
        seconds = self.rng.uniform(*STALL_LEASES) * (LEASE_S + SEND_DEADLINE_S)
        ending = self.rng.choice(["resume", "reset"])
        life = self.farm.lives[self.node]
        self.relay.stall()
        time.sleep(seconds)  # the stall runs its seeded course even when the soak stops
        if ending == "reset":
            self.relay.reset()
        else:
            self.relay.resume()
        self.out.moments[f"stall {moment} {ending}"] += 1
        ended = time.monotonic()
        if not _poll(lambda: not self._alive() or self.farm.lives[self.node] != life
                     or self._beat_since(ended), BACK_S + 5.0):
            self.out.violations.append(
                f"{self.node} neither beat again nor ended within {BACK_S + 5.0:.0f} s of "
                f"its link's {ending} after a {seconds:.0f} s stall")
        elif self.farm.lives[self.node] == life and not self._alive():
            code = self.farm.procs[self.node].returncode
            self.out.moments["stalled node exited"] += 1
            if code not in (0, -signal.SIGKILL):
                self.out.violations.append(
                    f"{self.node} exited {code} after its link's {ending}")

    def _beat_since(self, ended: float) -> bool:
        """Whether the node beat after ``ended`` (its heartbeat's age, on the database's
        clock, is less than the time since)."""
        since = time.monotonic() - ended
        store = self.farm.store
        assert isinstance(store, PostgresJobStore)  # a stall is PostgreSQL's only
        for status in store.list_nodes():
            if status.info.id == self.node and not status.stopped:
                return status.heartbeat_age_s < since
        return False


def _start(farm: DaemonFarm, *nodes: str, once: bool = False) -> None:
    """Start ``nodes`` and return once each has begun (its lock taken, on SQLite) or ended:
    a cron run started a moment after a daemon would otherwise take the lock first."""
    farm.start(*nodes, once=once)
    for node in nodes:
        log = farm.logs / f"{node}-{farm.lives[node]}.jsonl"

        def begun(log: Path = log, node: str = node) -> bool:
            return farm.procs[node].poll() is not None or (
                log.exists() and '"hotfolder_starting"' in log.read_text(errors="replace"))

        if not _poll(begun, 120.0):
            raise AssertionError(f"{node} did not begin within 120 s")


def _running(farm: DaemonFarm, nodes: list[str]) -> list[str]:
    return [n for n in nodes if n in farm.procs and farm.procs[n].poll() is None]


def _poll(what: Callable[[], object], timeout_s: float) -> object:
    """The first true value ``what`` returns within ``timeout_s`` (None: none)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.02)
    return None


def _holder(farm: DaemonFarm, nodes: list[str], state: JobState) -> str | None:
    """A running daemon holding, in its current life, a build in ``state`` (SQLite: the one
    daemon, when some build is in ``state``)."""
    if not farm.builds(state):
        return None
    if not farm.on_postgres:
        running = _running(farm, nodes)
        return running[0] if running else None
    held = farm.held_by_live()
    for build in farm.builds(state):
        if build.id in held:
            return held[build.id]
    return None


def _landed(farm: DaemonFarm, node: str) -> bool:
    """Freeze ``node`` (SIGSTOP: it holds a build it sends) and wait up to a few seconds for
    one more print in the fleet's records: its server, not frozen, may finish the send the
    daemon can no longer record. Whether one came (the caller kills the frozen daemon)."""
    jobs = farm.fleet / "jobs"
    before = len(list(jobs.glob("*.json"))) if jobs.is_dir() else 0
    farm.signal(node, signal.SIGSTOP)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if jobs.is_dir() and len(list(jobs.glob("*.json"))) > before:
            return True
        time.sleep(0.01)
    return False


def _places(farm: DaemonFarm) -> tuple[int, int]:
    """Jobs whose row names processing/, and jobs whose row names done/ or failed/."""
    taken = settled = 0
    for job in farm.store.list_jobs():
        parts = Path(job.source_path).parts
        taken += "processing" in parts
        settled += "done" in parts or "failed" in parts
    return taken, settled


def _kill_server(farm: DaemonFarm, node: str) -> bool:
    """SIGKILL one simulated server of ``node``; whether one was found."""
    with contextlib.suppress(psutil.NoSuchProcess):
        children = psutil.Process(farm.procs[node].pid).children(recursive=True)
        servers = [p for p in children if "simulator" in " ".join(p.cmdline())]
        if servers:
            servers[0].kill()
            return True
    return False


def _soak_processes(root: Path) -> list[psutil.Process]:
    """Processes whose command line names the seed's folder (daemons, servers), this one
    aside."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid != os.getpid() and str(root) in " ".join(proc.info["cmdline"] or ()):
                found.append(proc)
    return found


def _left(inbox: Path) -> list[str]:
    try:
        return [p.relative_to(inbox).as_posix() for p in inbox.rglob("*")
                if p.relative_to(inbox).parts[0] not in ("done", "failed")
                and not (p.is_dir() and p.name == "processing" and p.parent == inbox)]
    except FileNotFoundError as exc:
        return [str(exc.filename)]


def _quiet(farm: DaemonFarm) -> bool:
    return not _left(farm.inbox) and not farm.builds(*WORKING) and not farm.store.list_jobs(
        state=WORKING)


def _progress(farm: DaemonFarm) -> object:
    return (len(settled_files(farm.inbox)), tuple(_left(farm.inbox)),
            tuple(sorted(Counter(b.state.value for b in farm.builds()).items())))


def _kill_at_a_moment(farm: DaemonFarm, nodes: list[str], rng: random.Random,
                      out: Outcome) -> str | None:
    """SIGKILL a process at a seeded moment; the daemon to start again (None: none was
    killed, or a server was, which its daemon replaces)."""
    running = _running(farm, nodes)
    if not running:
        return None
    moments = ["random", "random", "preparing", "sending", "sent", "landed", "landed",
               "moving", "server"]
    if farm.printers:
        moments.append("claim")
    moment = rng.choice(moments)
    node: str | None = None
    if moment == "claim":
        node = _poll(lambda: next(iter(farm.claimers()), None), 20.0)  # type: ignore[assignment]
    elif moment in ("preparing", "sending", "sent"):
        state = JobState.PREPARING if moment == "preparing" else JobState.PRINT_SENDING
        node = _poll(lambda: _holder(farm, nodes, state), 20.0)  # type: ignore[assignment]
        if node is not None and moment == "sent":
            # Killed the instant its row says sending, the request has not reached the
            # printer: the print is always proven absent. A little later it has landed and
            # the row may not say so yet: the restart must find it, not send it again.
            time.sleep(rng.uniform(*SENT_DELAY_S))
    elif moment == "landed":
        node = _poll(lambda: _holder(farm, nodes, JobState.PRINT_SENDING), 20.0)  # type: ignore[assignment]
        if node is not None:  # the row is written before the request: let it go out
            time.sleep(rng.uniform(*LANDED_DELAY_S))
        if node is not None and not _landed(farm, node):
            out.moments["landed: none came"] += 1  # killed frozen all the same
    elif moment == "moving":
        first = _places(farm)
        if _poll(lambda: _places(farm) != first, 20.0):
            time.sleep(rng.uniform(0.0, 0.015))
            node = rng.choice(_running(farm, nodes) or [None])  # type: ignore[list-item]
    elif moment == "server":
        victim = rng.choice(running)
        out.moments["server" if _kill_server(farm, victim) else "server missed"] += 1
        return None
    if node is None:
        if moment != "random":
            out.moments[f"{moment} missed"] += 1
        moment = "random"
        node = rng.choice(_running(farm, nodes) or running)
        with contextlib.suppress(subprocess.TimeoutExpired):
            farm.procs[node].wait(timeout=rng.uniform(0.2, 3.0))
    out.moments[moment] += 1
    if farm.procs[node].poll() is None:
        farm.signal(node, signal.SIGKILL)
    return node


def _cron(farm: DaemonFarm, rng: random.Random, out: Outcome, nodes: list[str]) -> None:
    """``watch --once`` on the same store and inbox: killed at a seeded moment or let run
    to its end (exit 0). On SQLite with the daemon running it must be refused (exit 1)."""
    refused = not farm.on_postgres and bool(_running(farm, nodes))
    _start(farm, "cron", once=True)
    proc = farm.procs["cron"]
    if refused:
        code = proc.wait(timeout=60)
        out.moments["cron refused"] += 1
        if code != 1:
            out.violations.append(f"a cron run beside the SQLite daemon exited {code}, not 1")
        return
    if rng.random() < 0.5:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=rng.uniform(0.3, 4.0))
        if proc.poll() is None:
            farm.signal("cron", signal.SIGKILL)
            out.moments["cron killed"] += 1
            return
    try:
        code = proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        farm.signal("cron", signal.SIGKILL)
        out.violations.append("a cron run (watch --once) did not end within 300 s")
        return
    out.moments["cron ran"] += 1
    if code != 0:
        out.violations.append(f"a cron run (watch --once) exited {code}")


def _check(farm: DaemonFarm, dropped: Dropper, out: Outcome, nodes: list[str],
           codes: dict[str, int | None]) -> None:
    v = out.violations
    if any(codes.get(n) != 0 for n in nodes):
        v.append(f"daemons did not all stop with 0: {codes}")
    settled = settled_files(farm.inbox)
    got = {rel: [d for _, d in hits] for rel, hits in settled.items()}
    want = {rel: [digest] for rel, digest in dropped.files.items()}
    for rel in sorted(set(got) | set(want)):
        if got.get(rel) != want.get(rel):
            v.append(f"{rel}: settled {len(got.get(rel, []))} times "
                     f"({'identical' if got.get(rel) == want.get(rel) else 'not as dropped'})"
                     f", dropped {len(want.get(rel, []))} times")
    if _left(farm.inbox):
        v.append(f"left in the inbox or processing/: {_left(farm.inbox)}")
    jobs = {j.original_name: j for j in farm.store.list_jobs()}
    stuck = [f"job {j.id} {j.original_name} {j.state.value}" for j in jobs.values()
             if j.state in WORKING]
    stuck += [f"build {b.id} {b.job_key} {b.state.value}" for b in farm.builds(*WORKING)]
    if stuck:
        v.append(f"left being worked on: {stuck}")
    skipped = {n for n, j in jobs.items() if j.state is JobState.DUPLICATE_SKIPPED}
    undecided = {n for n, j in jobs.items() if j.state is JobState.UNVERIFIED}
    digest_of = {Path(rel).name: d for rel, d in dropped.files.items()}
    # A removed file's build printed without it, or with it when the removal came after its
    # import: printed at most once, never required (its content was dropped once).
    digest_of.update({name: dropped.gone[name] for name in dropped.removed})
    printed = printed_models(farm)
    by_content: Counter[str] = Counter()
    for name, count in printed.items():
        by_content[digest_of[name]] += count
    keys = Counter(str(r.get("job_name")) for r in farm.prints())
    if twice := {k: c for k, c in keys.items() if c > 1}:
        v.append(f"build keys printed more than once: {twice}")
    if twice := {d[:12]: c for d, c in by_content.items() if c > 1}:
        v.append(f"content printed more than once: {twice}")
    names_of: dict[str, list[str]] = {}
    for rel, digest in dropped.files.items():
        if rel.endswith(MODEL_SUFFIXES):
            names_of.setdefault(digest, []).append(Path(rel).name)
    for digest, names in names_of.items():
        if by_content[digest] == 0 and not set(names) <= skipped | undecided:
            v.append(f"never printed, not skipped or undecided: "
                     f"{[(n, jobs[n].state.value if n in jobs else None) for n in names]}")
    failed = {Path(rel).name for rel, hits in settled.items() if hits[0][0] == "failed"
              and rel.endswith(MODEL_SUFFIXES)}
    if bad := failed - skipped - undecided:
        v.append(f"failed for another reason: "
                 f"{[(n, jobs[n].state.value, jobs[n].reason) for n in bad if n in jobs]}")
    for case, rels in dropped.cases.items():
        kept = {settled[r][0][0] for r in rels if r in settled
                and Path(r).name not in skipped}
        if len(kept) > 1:
            v.append(f"case {case} split over done/ and failed/")
    last = {farm.procs[n].pid for n in nodes}
    claims = farm.printer_claims()
    if mine := [(p, h) for p, h in claims
                if (holder := ProcessIdentity.from_tagged(h)) and holder.pid in last]:
        v.append(f"printer claims of a daemon's last life left: {mine}")
    out.facts["killed lives' printer claims"] = len(claims) - len(mine)
    if farm.on_postgres:
        # A claim records that a node took this path with this content (the farm's memory of
        # takes, kept by design); one is left over only when its file is still there.
        claims_left = list(farm.store.inbox_claims())
        out.facts["inbox claims kept"] = len(claims_left)
        if blocking := [c for c in claims_left if Path(c[0]).exists()]:
            v.append(f"inbox claims on files still in the inbox: {blocking[:5]}")
    if dropped.gone:
        out.facts["removed"] = dict(Counter(
            jobs[n].state.value if n in jobs else "no job" for n in dropped.removed))
        out.facts["removal said"] = dict(Counter(
            e["event"] for e in farm.events(*REMOVAL_SAYS)))
    if traces := _tracebacks(farm):
        v.append(f"a traceback reached a daemon's output: {traces[:3]}")
    out.facts.update(files=len(dropped.files), models=sum(map(len, names_of.values())),
                     contents=len(names_of), printed=sum(by_content.values()),
                     skipped=len(skipped), undecided=len(undecided))


#: What the daemons say of a file removed under them (``--gone``), counted.
REMOVAL_SAYS = ("model_gone", "file_removed", "file_missing", "file_lost",
                "dropped_job_not_failed")


def _tracebacks(farm: DaemonFarm) -> list[str]:
    """The daemons' outputs (stdout and stderr, each life's) that hold a traceback."""
    return [path.name for path in sorted(farm.logs.glob("*.out"))
            if "Traceback (most recent call last)" in path.read_text(
                encoding="utf-8", errors="replace")]


def soak(seed: int, args: argparse.Namespace, cluster: PgCluster | None) -> Outcome:
    out = Outcome(seed)
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix=f"pp-soak-{args.store}-{seed}-"))
    nodes = [f"node-{i}" for i in range(1, (args.nodes if cluster else 1) + 1)]
    url = (cluster.create_database(f"soak_{seed}") if cluster else str(root / "jobs.sqlite3"))
    printers_n, approval = args.printers, args.approval
    if args.vary:  # each seed its own fleet and hold, drawn apart from its kills
        varied = random.Random(seed * 7919)
        printers_n, approval = varied.choice((0, 4)), varied.random() < 0.5
    out.facts.update(printers=printers_n, approval=approval)
    printers = tuple(f"Form4-{n}" for n in range(1, printers_n + 1))
    farm = DaemonFarm(root, url, FarmTiming(lease_s=LEASE_S, per_build=6,
                                            request_timeout_s=SEND_DEADLINE_S),
                      printers=printers, approval=approval)
    relay: StallingRelay | None = None
    stalled_node = nodes[0]
    if args.stall and cluster is not None:
        stall_rng = random.Random(seed * 104729)
        stalled_node = stall_rng.choice(nodes)
        relay = StallingRelay("127.0.0.1", cluster.port).__enter__()
        farm.node_urls[stalled_node] = url.replace(f":{cluster.port}/", f":{relay.port}/")
        out.facts["stalled node"] = stalled_node
    began = time.monotonic()
    keep = False
    try:
        dropped = Dropper(farm, rng, gone=args.gone)
        _start(farm, *nodes)
        approver = Approver(farm)
        staller = (Staller(farm, relay, stalled_node, stall_rng, out) if relay is not None
                   else contextlib.nullcontext())
        with approver if approval else contextlib.nullcontext():
            with staller:  # the stalls end (the link back) before the farm runs to quiet
                for _ in range(args.kills):
                    dropped.wave()
                    if rng.random() < args.cron:
                        _cron(farm, rng, out, nodes)
                    node = _kill_at_a_moment(farm, nodes, rng, out)
                    if node is not None:
                        running = _running(farm, nodes)
                        pause = rng.uniform(0.0, 3.0)
                        if running:
                            with contextlib.suppress(subprocess.TimeoutExpired):
                                farm.procs[rng.choice(running)].wait(timeout=pause)
                        else:
                            time.sleep(pause)
                        if not farm.on_postgres and rng.random() < args.cron:
                            _cron(farm, rng, out, nodes)  # the daemon is down: cron's turn
                        _start(farm, node)
                dropped.wave()
            dropped.written()
            try:
                _wait_quiet(farm)
            except AssertionError as exc:
                out.violations.append(str(exc))
        codes = farm.stop_all()
        _check(farm, dropped, out, nodes, codes)
        out.facts["approved"] = approver.approved
        if relay is not None:
            out.facts["stall events"] = _stall_events(farm, stalled_node)
    except Exception as exc:  # a soak that broke says so with its seed, never hides it
        out.violations.append(f"the soak itself failed: {exc!r}")
    finally:
        farm.close()
        if relay is not None:
            relay.__exit__(None, None, None)
        deadline = time.monotonic() + GONE_S
        while (left := _soak_processes(root)) and time.monotonic() < deadline:
            time.sleep(0.2)
        if left:
            out.violations.append(f"processes left: {[p.pid for p in left]}")
            for proc in left:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        out.facts["seconds"] = round(time.monotonic() - began)
        keep = bool(out.violations) or args.keep
        if keep:
            out.facts["kept"] = str(root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    out.facts["dropped kinds"] = dict(dropped.kinds)
    return out


#: What the stalled node says of a build taken over while its link stalled, and of its
#: connection a reset ended (it connects again by itself).
STALLED_SAYS = ("build_lease_lost", "build_stopped", "print_sent_unrecorded",
                "batch_taken_elsewhere", "lease_renewal_failed", "store_reconnecting")


def _stall_events(farm: DaemonFarm, node: str) -> dict[str, int]:
    """How often the stalled node said each of STALLED_SAYS, and how many builds the other
    nodes recovered from it (``build_recovered`` naming it as the previous owner)."""
    said: Counter[str] = Counter()
    for log in farm.logs.glob("*.jsonl"):
        mine = log.name.startswith(f"{node}-")
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill
            name = event.get("event")
            if mine and name in STALLED_SAYS:
                said[name] += 1
            elif (not mine and name == "build_recovered"
                  and event.get("previous_owner") == node):
                said["recovered by others"] += 1
    return dict(said)


def _wait_quiet(farm: DaemonFarm) -> None:
    start = time.monotonic()
    seen, moved = _progress(farm), start
    while not _quiet(farm):
        now = time.monotonic()
        if now - moved > STILL_S or now - start > QUIET_LIMIT_S:
            raise AssertionError(f"not quiet after {now - start:.0f} s (nothing moved for "
                                 f"{now - moved:.0f} s): left {_left(farm.inbox)}\n"
                                 f"{farm.evidence()}")
        time.sleep(0.5)
        latest = _progress(farm)
        if latest != seen:
            seen, moved = latest, time.monotonic()


def _seeds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


@contextlib.contextmanager
def _cluster(store: str) -> Iterator[PgCluster | None]:
    if store != "postgres":
        yield None
        return
    made = PgCluster.create()
    try:
        yield made
    finally:
        made.destroy()


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (and SIGINT, which a shell's background job ignores) end the soak through its
    # finally blocks: the daemons, the seed's folder and the cluster go with it.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--nodes", type=int, default=3, help="daemons on PostgreSQL (3)")
    parser.add_argument("--seeds", default="1", help="a seed or a range: 1-10")
    parser.add_argument("--kills", type=int, default=10, help="kills per seed (10)")
    parser.add_argument("--printers", type=int, default=0,
                        help="a declared fleet the recipe chooses among (0: one printer)")
    parser.add_argument("--approval", action="store_true", help="hold every build for approval")
    parser.add_argument("--cron", type=float, default=0.3,
                        help="the chance of a cron run (watch --once) per kill (0.3)")
    parser.add_argument("--vary", action="store_true",
                        help="each seed draws its fleet (0 or 4 printers) and approval")
    parser.add_argument("--minutes", type=float, default=0.0,
                        help="start no seed after this many minutes (0: run every seed)")
    parser.add_argument("--stall", action="store_true",
                        help="PostgreSQL: one node's database link stalls past a lease now and "
                        "then, and resumes or resets")
    parser.add_argument("--gone", action="store_true",
                        help="waves may drop a file a person removes from processing/ a "
                        "seeded moment after a daemon took it")
    parser.add_argument("--keep", action="store_true", help="keep every seed's folder")
    args = parser.parse_args(argv)
    if args.stall and args.store != "postgres":
        # Said, not ignored: a SQLite soak has no database link to stall, and one that ran
        # without stalls would print "ok" for a promise it never put to the test.
        parser.error("--stall needs --store postgres (it stalls a node's link to the database)")
    failed: list[int] = []
    with _cluster(args.store) as cluster:
        began = time.monotonic()
        for seed in _seeds(args.seeds):
            if args.minutes and time.monotonic() - began > args.minutes * 60:
                print(f"stopped before seed {seed}: {args.minutes:g} minutes passed", flush=True)
                break
            out = soak(seed, args, cluster)
            print(f"seed {seed} [{args.store}, {len(out.moments)} moment kinds] "
                  f"{'VIOLATION' if out.violations else 'ok'}: kills {dict(out.moments)}; "
                  f"{out.facts}", flush=True)
            for line in out.violations:
                print(f"  seed {seed}: {line}", flush=True)
            if out.violations:
                failed.append(seed)
    if failed:
        print(f"broken promises with seeds {failed} (--store {args.store})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
