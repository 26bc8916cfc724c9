"""Fixtures shared by every test package, and the suite's account of its skips.

Every skip the suite may take is listed in :data:`SKIP_REGISTRY` with why it is acceptable.
The terminal summary counts the skips per registered reason (the contract tests' skip, when
the official specs are absent, is one line that names the folder); a skip whose reason is not
registered is listed and fails the run, so no test can quietly stop running.
"""

from __future__ import annotations

import compileall
import io
import logging
import os
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

import preform_pipeline
from preform_pipeline.clock import ManualClock
from tests.nested_pytest import HYPOTHESIS_PLUGIN
from tests.openapi_contract import (
    CONTRACT_SKIP_REASON,
    REQUIRE_SPECS_ENV,
    SPEC_DIR_ENV,
    expected_spec_dir,
)
from tests.pg_cluster import PgCluster, require_postgres
from tests.reaper import say_goodbye, watch_this_process
from tests.rewrite_cache import UNAVAILABLE as REWRITE_CACHE_UNAVAILABLE
from tests.rewrite_cache import write_rewritten_modules
from tests.share_mount import SKIP_REASON as SHARE_SKIP_REASON
from tests.small_disk import SKIP_REASON as SMALL_DISK_SKIP_REASON
from tests.small_disk import SmallDisk, mounted_small_disk

if TYPE_CHECKING:
    from preform_pipeline.store import SqliteJobStore

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_MODELS = REPO_ROOT / "sample_models"
RECIPES = REPO_ROOT / "recipes"
#: The folder, under a worker's base temporary folder, of the tests' data folders.
DATA_FOLDERS: Final = "data-homes"

#: Root reads every file and folder whatever its mode; without the two capabilities that let
#: it (Linux's setpriv drops them), a command run under this prefix is refused as a user is.
#: Not root: nothing to drop.
AS_A_USER: Final = (("setpriv", "--bounding-set=-dac_override,-dac_read_search")
                    if os.name == "posix" and os.geteuid() == 0 else ())

#: How a skip reason starts -> why that skip is acceptable. The only skips the suite allows.
SKIP_REGISTRY: Final[dict[str, str]] = {
    CONTRACT_SKIP_REASON: (
        "the official OpenAPI specs are reference data outside the project; a checkout "
        f"without them cannot check conformance (CI and {REQUIRE_SPECS_ENV}=1 make it an error)"
    ),
    "POSIX signals": "SIGINT/SIGTERM handling has no equivalent on Windows",
    "on Windows a refusal is a copy's lock": (
        "a file Windows will not let the hot folder read is taken as one being copied, and "
        "waited for: there is no unreadable-by-mode file to fail"
    ),
    "only POSIX names can be bytes": (
        "Windows file names are UTF-16: a name that is not valid UTF-8 cannot be made there"
    ),
    "named pipes, devices and modes are POSIX": (
        "Windows has no mkfifo, device nodes in a folder or mode 000 files to refuse"
    ),
    "PostgreSQL server binaries": (
        "the PostgreSQL store tests start a real server from initdb/pg_ctl; a machine without "
        "them cannot run it (CI installs it, and there a missing server fails instead)"
    ),
    "Chromium is not installed": (
        "the dashboard's browser tests drive Debian's chromium package (never a downloaded "
        "browser); a machine without it cannot run them (CI installs it, and there a missing "
        "browser fails instead)"
    ),
    "psycopg is not installed": (
        "the PostgreSQL driver is an optional extra; without it the PostgreSQL store tests "
        "cannot connect (CI installs it, and there it fails instead)"
    ),
    # The machine-bound skips below never happen in CI (Linux, run as root); a newcomer's
    # machine that is not root, or not Linux, must still finish the README's test command.
    "SIGKILL is POSIX": "Windows has no SIGKILL; its terminate is already a kill",
    "giving a folder to another user needs root": (
        "the refusal of a temporary folder another user owns is checked on a real one, and "
        "only root may give a folder away"
    ),
    "making a file no one may delete needs root": (
        "a note the retry cannot remove is made immutable (chattr +i), which only root may "
        "do; an ordinary user cannot make a file in its own folder that it may not delete"
    ),
    "making a device node needs root": (
        "the refusal of a device node is checked on a real one, and only root may make it"
    ),
    "this system does not let a test make a pid namespace": (
        "a second process instance on one host needs a new pid namespace (unshare, as root or "
        "with unprivileged user namespaces); a machine that forbids it cannot make one"
    ),
    "instances are named on Linux only": (
        "elsewhere a process instance is its host, so there is no second instance to test"
    ),
    "Linux pid namespaces": "pid namespaces exist on Linux only",
    "needs the machine's own pid namespace": (
        "an earlier version's record is proven gone only by a process that sees every process "
        "of the machine; a test run inside a container cannot, and there the record stays "
        "unknown (tested with a real pid namespace where one can be made)"
    ),
    "reads are counted by Linux's /proc/self/io": (
        "that an oversize model file is refused unread is proven by the bytes the process "
        "read, which only Linux counts; elsewhere there is no such count to check it by"
    ),
    "needs root and a Python any user may run": (
        "a home folder no one can find is met only by a process of a user id the user "
        "database lacks: only root may start one, with an interpreter outside root's home"
    ),
    "--env-file is systemd's": (
        "`service install --env-file` writes a systemd unit's EnvironmentFile; only Linux "
        "installs a systemd service"
    ),
    "needs a file no user can read": (
        "/proc/self/mem, the file no user can read, is Linux's; elsewhere there is none to use"
    ),
    "needs Linux's /proc": "the process facts these tests read are in Linux's /proc only",
    "/proc is Linux's": (
        "a folder that refuses a new folder even to root (the log file's folder below /proc) "
        "exists on Linux only; elsewhere there is none to use"
    ),
    "PR_SET_PDEATHSIG is Linux's": "the parent-death signal exists on Linux only",
    "the watcher is started on Linux only": (
        "the tests' reaper starts its watcher process only where it reads Linux's /proc; "
        "elsewhere there is no watcher whose handle to check"
    ),
    "the parent-death signal is Linux's": "the parent-death signal exists on Linux only",
    "POSIX local paths": "the paths these tests write are POSIX's; Windows spells them otherwise",
    "the short ways are POSIX's": "the short ways these tests take exist on POSIX only",
    "file modes are POSIX's": "Windows has no POSIX file modes to take away",
    "links made without privileges": "Windows makes links only with a privilege",
    "symbolic links without privileges": "Windows makes symbolic links only with a privilege",
    "systemctl is not installed here": (
        "the install's stop when the user's service manager cannot be reached is checked "
        "against the real systemctl; a machine without systemd (macOS, Windows, a minimal "
        "container) has none to ask"
    ),
    "needs systemctl on a machine not booted with systemd": (
        "the reason `service status` gives on a machine without systemd is checked against "
        "the real systemctl's answer there; where systemd runs, systemctl answers otherwise "
        "(TestBothReasonsSaid checks the order of the two reasons everywhere)"
    ),
    "needs a machine booted with systemd": (
        "under `su` the real `systemctl --user` of a machine that runs systemd fails for want "
        "of a login session; on a machine without systemd it fails for want of systemd, "
        "which TestAMachineNotBootedWithSystemd checks against the same systemctl there. "
        "The reason each case gets, and the stop at the first refusal, are checked on every "
        "POSIX machine with a stand-in systemctl (TestWhichReasonASilentBusFailureGets)"
    ),
    "systemd-analyze is not installed here": (
        "that systemd loads a unit written for a settings folder holding `%` and `$` is "
        "checked by systemd's own parser, which a machine without systemd's tools lacks; "
        "that each value reads back as the folder is checked everywhere "
        "(TestAUnitReadsBackAsWritten)"
    ),
    "a shell script stands in for systemctl": (
        "the stand-in that prints a container's two systemctl lines is a POSIX shell "
        "script; Windows installs no systemd service"
    ),
    "flock is POSIX": "Windows has no flock; there records are judged by pid alone",
    "no kernel thread is visible from this pid namespace": (
        "a kernel thread's empty command line is told apart only where one can be seen; "
        "inside a container's own pid namespace none is"
    ),
    SMALL_DISK_SKIP_REASON: (
        "a full disk is met on a real one: a tmpfs mounted for the test, which needs root "
        "on Linux; CI runs as root on Linux and fails instead, so only a newcomer's machine "
        "skips it"
    ),
    SHARE_SKIP_REASON: (
        "a share that goes away is met on a real mount: a folder bind-mounted at the inbox "
        "for the test, which needs root on Linux; CI runs as root on Linux and fails "
        "instead, so only a newcomer's machine skips it"
    ),
    "start ticks are read from /proc on Linux": (
        "a process's start in clock ticks after boot is Linux's /proc/PID/stat field; "
        "elsewhere records are judged by start time as before"
    ),
}

@pytest.hookimpl(specname="pytest_configure", tryfirst=True)
def pytest_configure_hypothesis(config: pytest.Config) -> None:
    """Register the suite's hypothesis profiles and load the one this run asks for.

    First of the configure hooks, so that hypothesis's own (``--hypothesis-profile``) finds
    them. Not where hypothesis's plugin is blocked: the suite's nested pytest runs
    (``tests/suite/``, :func:`tests.nested_pytest.nested_pytest`) run no property test, and
    importing hypothesis was the largest part of each one's start.
    """
    if config.pluginmanager.is_blocked(HYPOTHESIS_PLUGIN):
        return
    from hypothesis import HealthCheck, settings

    # mutmut (docs/testing.md) runs pytest several times in one process and must see the
    # same examples for a mutant as for the clean run: fixed examples, no example database,
    # and no complaint that a test ran under several executors.
    settings.register_profile(
        "mutation",
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.differing_executors, HealthCheck.too_slow],
    )
    # CI runs the same examples every time, so a red run can be reproduced and a green one is
    # not luck; property bugs found by random runs locally are fixed, not hidden
    # (docs/testing.md).
    settings.register_profile("ci", derandomize=True, database=None)
    if "MUTANT_UNDER_TEST" in os.environ:
        settings.load_profile("mutation")
    elif os.environ.get("CI"):
        settings.load_profile("ci")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A real tmpfs of 512 KiB mounted at ``tmp_path / "disk"``, unmounted after the test
    (``tests/small_disk.py``: skipped where it cannot be mounted, failed so in CI)."""
    with mounted_small_disk(tmp_path / "disk") as disk:
        yield disk


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """The package's logging set up as a command sets it (INFO, a JSON log file in
    ``tmp_path``, the console to a buffer), put back after the test."""
    # Imported here: the package is not imported before a test asks for it.
    from preform_pipeline.logging import configure_logging

    path = tmp_path / "run.jsonl"
    configure_logging(level="INFO", json_file=path, console=io.StringIO())
    yield path
    configure_logging(level="WARNING", console=io.StringIO())
    logging.getLogger("preform_pipeline").handlers.clear()


@pytest.fixture
def clock() -> ManualClock:
    """The one clock of a test that moves time itself (folders may define their own)."""
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[SqliteJobStore]:
    """A job store in a real SQLite file, on :func:`clock` (folders may define their own)."""
    # Imported here, as in log_file: the store's settings (pydantic, jsonschema) were ~0.1 s
    # of CPU of every pytest process's start, the suite's nested runs' too.
    from preform_pipeline.store import SqliteJobStore

    with SqliteJobStore(tmp_path / "jobs.sqlite3", clock=clock) as opened:
        yield opened


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def sample_models_dir() -> Path:
    return SAMPLE_MODELS


@pytest.fixture
def python_exe() -> str:
    """The interpreter running the tests, for starting real subprocesses."""
    return sys.executable


@pytest.fixture(scope="session")
def data_folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder that holds every test's data folder (:func:`own_data_folder`), one per
    worker, apart from the base temporary folder where each ``tmp_path`` is numbered."""
    return tmp_path_factory.mktemp(DATA_FOLDERS, numbered=False)


@pytest.fixture(autouse=True)
def own_data_folder(data_folders: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own user data folder: `run` records into the default job store
    there, so tests never share (or skip each other's) prints, nor touch the real one.

    Made by :func:`tempfile.mkdtemp` in a folder of their own: ``mktemp("data-home")``
    numbered it by listing the base temporary folder, which each test's data folder and
    ``tmp_path`` grow, so every test paid a scan of all the folders made before it (two,
    with its ``tmp_path``'s): ~3 ms a test on average, ~20 s of CPU over a run."""
    folder = Path(tempfile.mkdtemp(prefix="data-home-", dir=data_folders))
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    monkeypatch.setenv("LOCALAPPDATA", str(folder))
    return folder


def registered_reason(reason: str) -> str | None:
    """The registry entry ``reason`` falls under, or None."""
    return next((prefix for prefix in SKIP_REGISTRY if reason.startswith(prefix)), None)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


class SkipLedger:
    """Records every skip of the run; reports them per reason; fails on unregistered ones."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    @property
    def unregistered(self) -> list[str]:
        return [r for r in self.reasons if registered_reason(r) is None]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # xfail outcomes also report as skipped, but carry ``wasxfail``: they are not skips.
        if report.skipped and not hasattr(report, "wasxfail"):
            self.reasons.append(_skip_reason(report))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.unregistered and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        by_entry = Counter(registered_reason(r) for r in self.reasons)
        contract = by_entry.pop(CONTRACT_SKIP_REASON, 0)
        if contract:
            terminalreporter.write_line(
                f"contract tests skipped ({contract}): no official specs in "
                f"{expected_spec_dir()}; set {SPEC_DIR_ENV}, or {REQUIRE_SPECS_ENV}=1 to make "
                "this an error",
                yellow=True,
            )
        for entry, count in sorted(by_entry.items(), key=lambda kv: str(kv[0])):
            if entry is not None:
                terminalreporter.write_line(
                    f"skipped ({count}): {entry}: {SKIP_REGISTRY[entry]}"
                )
        if self.unregistered:
            terminalreporter.write_line(
                f"{len(self.unregistered)} skip(s) whose reason is not in SKIP_REGISTRY "
                "(tests/conftest.py) fail the run:",
                red=True,
            )
            for reason, count in sorted(Counter(self.unregistered).items()):
                terminalreporter.write_line(f"  unregistered skip ({count}): {reason}", red=True)


def pytest_configure(config: pytest.Config) -> None:
    # A shell without job control starts a background command (`pytest &` in a script) with
    # SIGINT ignored, and an ignored signal stays ignored across exec: the runs, pools and
    # servers the signal tests start would never see their Ctrl-C. A person's Ctrl-C reaches a
    # program started from a terminal, so the tests start theirs that way: a Python handler
    # here (each xdist worker runs this too) is reset to the default in every child at exec.
    if os.name == "posix" and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # A session killed outright runs no finalizer; its watcher stops what it left running.
    watch_this_process()
    # Under pytest-xdist the controller receives every worker's test reports and writes the
    # summary and the exit status: the ledger lives there, not in the workers (each of which
    # would see only its share, and whose own summaries and exit statuses nobody reads).
    if hasattr(config, "workerinput"):
        return
    config.pluginmanager.register(SkipLedger(), "preform-pipeline-skip-ledger")
    _compile_package()
    # Each worker used to rewrite the asserts of every test module itself (PYTHONDONTWRITEBYTECODE
    # keeps pytest from caching them): about 14 s of CPU a worker, three times a run.
    if write_rewritten_modules(config) == REWRITE_CACHE_UNAVAILABLE:
        config.issue_config_time_warning(
            pytest.PytestWarning(
                "this pytest lacks the functions tests/rewrite_cache.py writes rewritten test "
                "modules with: each worker rewrites them itself (slower, not wrong); see "
                "tests/suite/test_suite_rewrite_cache.py"
            ),
            stacklevel=2,
        )


def _compile_package() -> None:
    """Write the package's bytecode once, before any worker or child process starts.

    The suite starts the command line, daemons and simulators as real processes several
    hundred times. Where PYTHONDONTWRITEBYTECODE is set (this machine sets it, and CI runs
    on one like it), a fresh checkout has no ``__pycache__``, so every one of those
    processes compiled each module it imported again: about 0.35 s of CPU a start, on two
    cores. Processes still
    read bytecode that exists; ``compileall`` writes it whatever that variable says, and a
    stale file is recompiled by its timestamp as usual, so this changes no behaviour.
    """
    compileall.compile_dir(Path(preform_pipeline.__file__).parent, quiet=1)


def pytest_unconfigure(config: pytest.Config) -> None:
    say_goodbye()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A real PostgreSQL server for the whole session (see tests/pg_cluster.py).

    Where PostgreSQL is not installed the tests that need it skip with the reason, except in
    CI (``CI`` set), where .ci/run installs it: there a missing server is a failure.
    """
    require_postgres()
    cluster = PgCluster.create()
    try:
        yield cluster
    finally:
        cluster.destroy()
