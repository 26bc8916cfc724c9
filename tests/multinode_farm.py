"""A farm of real ``preform-pipeline watch`` daemons on one PostgreSQL store, for the failover
test and the multi-node benchmark (or one daemon on one SQLite file, for bench/soak_kill.py).

Each node is a real daemon process with its own settings file, its own simulated servers
(the realistic latency profile at a fast time scale, so preparing and sending take a moment
a signal can land in) and its own node id; all of them watch one shared inbox, print to one
shared simulated fleet (``<root>/fleet``, whose ``jobs/*.json`` are the print records) and
write their .form files into one shared output folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

import psutil
import psycopg

from preform_pipeline.hotfolder.testing import (
    declare_fleet,
    fleet_jobs,
    tetra_stl_bytes,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.store import (
    ACTIVE_STATES,
    Build,
    JobState,
    SqliteJobStore,
    extract_key,
)
from preform_pipeline.store.pgurl import PASSWORD_ENV
from preform_pipeline.store.postgres import PostgresJobStore
from preform_pipeline.store.sqlcore import iso_utc
from tests.pg_cluster import PG_PASSWORD

__all__ = [
    "DaemonFarm",
    "FarmTiming",
    "printed_models",
    "settled_files",
    "wait_until",
    "wait_while_moving",
]

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
_POLL_S: Final = 0.05


def wait_until(what: str, condition: Callable[[], bool], timeout_s: float) -> float:
    """Poll ``condition`` until true; the seconds it took (AssertionError on timeout)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(_POLL_S)
    return time.monotonic() - start


def wait_while_moving(what: str, condition: Callable[[], bool], progress: Callable[[], object],
                      *, still_s: float, limit_s: float) -> float:
    """Poll ``condition`` until true, for as long as ``progress()`` keeps changing: an
    AssertionError once it has not changed for ``still_s`` (stuck), or after ``limit_s`` in
    all (slow); the seconds it took. A farm on a starved machine may take minutes to settle
    an inbox, and a fixed deadline cannot tell that from a farm that stopped."""
    start = time.monotonic()
    seen, moved = progress(), start
    while not condition():
        now = time.monotonic()
        if now - moved > still_s:
            raise AssertionError(f"nothing moved for {still_s:g} s waiting for {what} "
                                 f"(after {now - start:.0f} s); last seen: {seen}")
        if now - start > limit_s:
            raise AssertionError(f"timed out after {limit_s:g} s waiting for {what}, still "
                                 f"moving; last seen: {seen}")
        time.sleep(_POLL_S * 10)  # each look reads the store and the folders
        latest = progress()
        if latest != seen:
            seen, moved = latest, time.monotonic()
    return time.monotonic() - start


class FarmTiming:
    """The knobs that set how fast a farm works and fails over."""

    def __init__(self, *, lease_s: float = 10.0, request_timeout_s: float = 4.0,
                 time_scale: float = 0.25, per_build: int = 25, window_s: float = 1.0,
                 rescan_interval_s: float = 1.0, dispatch_poll_s: float | None = None) -> None:
        self.lease_s = lease_s
        #: How often a node's dispatch loop reads the store (``dispatch.poll_interval_s``;
        #: None: the default, 5 s): where it learns of an approval.
        self.dispatch_poll_s = dispatch_poll_s
        #: Also how often a node claims free builds (its maintenance pass): a farm whose
        #: test must not lean on that pass sets it long.
        self.rescan_interval_s = rescan_interval_s
        self.request_timeout_s = request_timeout_s
        self.time_scale = time_scale
        self.per_build = per_build
        self.window_s = window_s


class DaemonFarm:
    """Daemons named ``node-1`` … on the store at ``url``, under ``root``; a ``url`` that is
    no PostgreSQL URL is an SQLite file's path (one daemon per store: one node)."""

    def __init__(self, root: Path, url: str, timing: FarmTiming | None = None, *,
                 printers: Sequence[str] = (), own_inboxes: bool = False,
                 approval: bool = False) -> None:
        """``printers``: a declared fleet of printers that all fit the recipe, which chooses
        among them (``printer: auto``, so every send takes a printer claim in the store
        first) and saves its .form first (a build that finds none free waits for one);
        none: the recipe names the simulator's one printer. ``own_inboxes``: each node
        watches an inbox of its own (:meth:`inbox_of`), as a farm whose nodes do not all
        mount one share; otherwise all watch ``<root>/inbox``. ``approval``: the recipe
        holds each build for an operator's approval before it prints."""
        self.own_inboxes = own_inboxes
        self.root, self.url = root, url
        self.timing = timing or FarmTiming()
        self.printers = tuple(printers)
        self.inbox = root / "inbox"
        self.fleet = root / "fleet"
        self.logs = root / "logs"
        for folder in (self.inbox, self.fleet, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.recipe = write_recipe(
            root, per_build=self.timing.per_build,
            approval=approval, extra_steps=(
                ["save_form"] if self.printers or approval else [])
            + (["screenshot"] if approval else []),  # what the operator approves from
            **({"printer": "auto"} if self.printers else {}))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.lives: Counter[str] = Counter()
        #: A node's own way to the store (a relay between it and the database), if not ``url``.
        self.node_urls: dict[str, str] = {}
        self.on_postgres = url.startswith(("postgresql:", "postgres:"))
        self.store = self._open_store()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PREFORM_PIPELINE_", "PG"))}
        self.env[PASSWORD_ENV] = PG_PASSWORD
        self.env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + self.env.get("PYTHONPATH", "")

    # --- the inbox ------------------------------------------------------------------------

    def drop(self, count: int, *, first: int = 0) -> list[str]:
        """``count`` tiny, distinct STL files into the inbox (written aside, then renamed in,
        so no node sees half a file); their names."""
        names = []
        staging = self.root / "staging"
        staging.mkdir(exist_ok=True)
        for i in range(first, first + count):
            name = f"m{i:04d}.stl"
            (staging / name).write_bytes(tetra_stl_bytes(i + 1))
            os.replace(staging / name, self.inbox / name)
            names.append(name)
        return names

    # --- the daemons ----------------------------------------------------------------------

    def _settings(self, node: str) -> Path:
        folder = self.root / node
        folder.mkdir(exist_ok=True)
        t = self.timing
        path = write_hotfolder_settings(
            folder, self.recipe, fleet_dir=self.fleet,
            simulator_args=("--latency", "realistic", "--time-scale", str(t.time_scale)),
            hotfolders={"batching": {"window_s": t.window_s, "max_models": t.per_build},
                        "rescan_interval_s": t.rescan_interval_s},
        )
        if self.printers:
            declare_fleet(path, self.printers)
        data = json.loads(path.read_text(encoding="utf-8"))
        data["hotfolders"]["inboxes"][0]["path"] = str(self.inbox_of(node))
        # Each node's local copies under the farm's own folder: the default (the user's data
        # folder, by node id) is shared by every farm on this machine, and a node starting
        # prunes its folder there, removing the copies another farm's node of that id is
        # importing (seen when two farms ran at once: a batch failed with FILE_NOT_FOUND).
        data["hotfolders"]["local_copy_dir"] = str(folder / "local-copies")
        data["store"] = ({"url": self.node_urls.get(node, self.url), "node_id": node,
                          "lease_s": t.lease_s} if self.on_postgres else {"path": self.url})
        data["servers"]["request_timeout_s"] = t.request_timeout_s
        if t.dispatch_poll_s is not None:
            data["dispatch"] = {"poll_interval_s": t.dispatch_poll_s}
        data["servers"]["state_dir"] = str(folder / "servers")
        data["logging"] = {"file": str(self.logs / f"{node}-{self.lives[node]}.jsonl")}
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        return path

    def inbox_of(self, node: str) -> Path:
        """The inbox ``node`` watches (made if need be)."""
        if not self.own_inboxes:
            return self.inbox
        inbox = self.root / f"inbox-{node}"
        inbox.mkdir(exist_ok=True)
        return inbox

    def start(self, *nodes: str, once: bool = False) -> None:
        """Start each of ``nodes`` (``once``: as ``watch --once``, cron's way)."""
        for node in nodes:
            self.lives[node] += 1
            settings = self._settings(node)
            with (self.logs / f"{node}-{self.lives[node]}.out").open("ab") as out:
                self.procs[node] = subprocess.Popen(
                    [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--quiet",
                     *(["--once"] if once else [])],
                    env=self.env, cwd=self.root / node, stdout=out, stderr=subprocess.STDOUT)

    def signal(self, node: str, number: int) -> None:
        """Send ``number`` to the node; return once it took effect (SIGKILL: the process is
        gone; SIGSTOP: it is frozen, so what the store shows next is what it holds)."""
        proc = self.procs[node]
        proc.send_signal(number)
        if number == signal.SIGKILL:
            proc.wait(timeout=30)
        elif number == signal.SIGSTOP:
            wait_until(f"{node} frozen", lambda: psutil.Process(proc.pid).status()
                       == psutil.STATUS_STOPPED, 30)

    def stop_all(self, timeout_s: float = 30.0) -> dict[str, int | None]:
        """SIGTERM (after SIGCONT) every daemon; their exit codes (None: had to be killed)."""
        codes: dict[str, int | None] = {}
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
        for node, proc in self.procs.items():
            try:
                codes[node] = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                codes[node] = None
        return codes

    def __enter__(self) -> DaemonFarm:
        return self

    def __exit__(self, *exc: object) -> None:
        """A test's farm ends: its daemons stopped (gracefully, as a service is), its look
        at the store closed."""
        self.stop_all()
        self.close()

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait(timeout=10)
        self.store.close()

    def reconnect(self) -> None:
        """A new session for the test's own looks (after the database restarted)."""
        self.store.close()
        self.store = self._open_store()

    def _open_store(self) -> PostgresJobStore | SqliteJobStore:
        """The test's own look at the store (the leases' calls are PostgreSQL's only)."""
        if self.on_postgres:
            return PostgresJobStore(self.url, password=PG_PASSWORD)
        return SqliteJobStore(Path(self.url))

    # --- what the store and the folders say ------------------------------------------------

    def builds(self, *states: JobState) -> tuple[Build, ...]:
        return self.store.list_builds(state=states or None)

    def held_by_live(self) -> dict[int, str]:
        """Build id → node, for the builds each running daemon holds in its current life:
        a killed node's claims show until its next life registers (or they run out), and
        are not that next life's."""
        held = {}
        for status in self.store.list_nodes():
            proc = self.procs.get(status.info.id)
            if proc is None or proc.poll() is not None or proc.pid != status.info.pid:
                continue
            held.update(dict.fromkeys(status.held_builds, status.info.id))
        return held

    def printer_claims(self) -> list[tuple[str, str]]:
        """The live printer claims in the store: (printer, holder) each."""
        if self.on_postgres:
            with psycopg.connect(self.url, password=PG_PASSWORD, autocommit=True) as conn:
                return [(p, h) for p, h in conn.execute(
                    "SELECT printer, holder FROM printer_claims WHERE until > now() "
                    "ORDER BY printer")]
        now = iso_utc(datetime.now(timezone.utc))
        with contextlib.closing(sqlite3.connect(f"file:{self.url}?mode=ro", uri=True)) as conn:
            return [(p, h) for p, h in conn.execute(
                "SELECT printer, holder FROM printer_claims WHERE until > ? ORDER BY printer",
                (now,))]

    def claimers(self) -> list[str]:
        """The running nodes holding a printer claim in their current life (a printer
        chosen, the print not sent yet). A holder is its process's label and a tag: its pid
        names the node (before session 44 the farm tests read a holder as ``host:pid:tag``,
        which the labels had outgrown, and found no claimer ever)."""
        pids = {p.pid: n for n, p in self.procs.items() if p.poll() is None}
        found = []
        for _, holder in self.printer_claims():
            process = ProcessIdentity.from_tagged(holder)
            if process is not None and process.pid in pids:
                found.append(pids[process.pid])
        return found

    def owned_in(self, node: str, state: JobState) -> list[Build]:
        """Builds ``node`` holds (per the nodes listing) that are in ``state`` now."""
        held = {b for n in self.store.list_nodes() if n.info.id == node
                for b in n.held_builds}
        return [b for b in self.builds(state) if b.id in held]

    def settled(self) -> Counter[str]:
        """How often each dropped file name is in done/ or failed/ (case folders aside)."""
        found: Counter[str] = Counter()
        for outcome in ("done", "failed"):
            folder = self.inbox / outcome
            if folder.is_dir():
                found.update(p.name for p in folder.rglob("*.stl"))
        return found

    def left_in(self) -> list[Path]:
        """Model files still in the inbox or in processing/ (a folder the daemons are
        emptying this very moment counts as not empty yet)."""
        try:
            top = list(self.inbox.glob("*.stl"))
            return top + list((self.inbox / "processing").rglob("*.stl"))
        except FileNotFoundError as exc:
            return [Path(str(exc.filename))]

    def progress(self) -> tuple[int, int, tuple[tuple[str, int], ...]]:
        """What moves while a farm works: files settled, files left in the inbox or
        processing/, and the builds by state (each step of a build changes them)."""
        states = Counter(b.state.value for b in self.builds())
        return (sum(self.settled().values()), len(self.left_in()), tuple(sorted(states.items())))

    def active(self) -> bool:
        return bool(self.store.list_builds(state=ACTIVE_STATES)) or bool(
            self.store.list_jobs(state=ACTIVE_STATES))

    def prints(self) -> list[dict[str, Any]]:
        return fleet_jobs(self.fleet)

    def evidence(self, *, last: int = 8) -> str:
        """What a reader of a failed farm test needs: where each model file is, every build
        not yet finished (state, holder, reason), each node's process and last ``last`` log
        events of each life. Written from the folders first: a look at the store may fail
        (that may be why the test failed)."""
        lines = ["files:"]
        where: dict[str, list[str]] = {}
        for path in sorted(self.inbox.rglob("*.stl")):
            where.setdefault(str(path.parent.relative_to(self.inbox)), []).append(path.name)
        for folder, names in sorted(where.items()):
            lines.append(f"  {folder}/: {len(names)}: {' '.join(names[:30])}"
                         + (" ..." if len(names) > 30 else ""))
        try:
            # An SQLite store has one daemon and no node listing (the soak's SQLite failures
            # lost the lines below to an AttributeError until session 48).
            held = ({b: s.info.id for s in self.store.list_nodes() for b in s.held_builds}
                    if self.on_postgres else {})
            lines.append("builds not finished:")
            for build in self.store.list_builds():
                if build.state.terminal:
                    continue
                jobs = Counter(j.state.value for j in self.store.list_jobs(build_id=build.id))
                lines.append(f"  {build.id} {build.job_key} {build.state.value} held by "
                             f"{held.get(build.id)}: jobs {dict(jobs)}; {build.reason!r}")
            loose = Counter(j.state.value for j in self.store.list_jobs()
                            if j.build_id is None and not j.state.terminal)
            lines.append(f"jobs in no build, not finished: {dict(loose)}")
        except Exception as exc:  # the evidence of a failure must not hide it
            lines.append(f"the store could not be read: {exc!r}")
        for node, proc in sorted(self.procs.items()):
            lines.append(f"{node}: pid {proc.pid}, life {self.lives[node]}, "
                         f"exit {proc.poll()}")
        for path in sorted(self.logs.glob("*.jsonl")):
            tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-last:]
            lines.append(f"{path.name}, last {len(tail)} lines:")
            lines.extend(f"  {line[:400]}" for line in tail)
        return "\n".join(lines)

    def events(self, *names: str, node: str | None = None) -> list[dict[str, Any]]:
        """Every logged event of the daemons (all lives; ``node``: of that node only) named
        ``names``, in file order."""
        wanted = set(names)
        found = []
        for path in sorted(self.logs.glob(f"{node}-*.jsonl" if node else "*.jsonl")):
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line cut short by SIGKILL
                if event.get("event") in wanted:
                    found.append(event)
        return found


def settled_files(inbox: Path) -> dict[str, list[tuple[str, str]]]:
    """Each file in ``inbox``'s done/ or failed/ (notes and reports aside) by its path below
    that folder: (outcome, SHA-256 digest) for each time it is there."""
    found: dict[str, list[tuple[str, str]]] = {}
    for outcome in ("done", "failed"):
        for path in (inbox / outcome).rglob("*"):
            if path.is_file() and not path.name.endswith((".report.json", ".error.txt")):
                rel = path.relative_to(inbox / outcome).as_posix()
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found.setdefault(rel, []).append((outcome, digest))
    return found


def printed_models(farm: DaemonFarm) -> Counter[str]:
    """How often each dropped model was printed: each fleet print names its build's job key;
    the build's members are the models."""
    counts: Counter[str] = Counter()
    for record in farm.prints():
        key = extract_key(str(record.get("job_name") or ""))
        build = farm.store.find_build_by_key(key) if key is not None else None
        assert build is not None, f"a print names no build of the store: {record}"
        counts.update(j.original_name for j in _members_ever(farm, build))
    return counts


def _members_ever(farm: DaemonFarm, build: Build) -> Iterable[Any]:
    return [farm.store.get_job(i) for i in build.job_ids]
