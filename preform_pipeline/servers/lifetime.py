"""A server process dies with the process that started it, even when that one is killed -9.

A runner killed without warning (kill -9, a crash, a power button on the terminal) runs no
cleanup code, and its servers run in their own session, so nothing else stops them. The
operating system can:

- **Linux**: the child asks for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), set in
  the child between fork and exec. The signal fires when the *thread* that forked the child
  ends, not the process, so every server is started from one launcher thread that lives as
  long as the process (:func:`popen_tied`), never from the pool's short-lived workers. If the
  parent died before the child could ask, the child sees a new parent PID and exits.
- **Windows**: the child joins a Job Object held open by this process and created with
  ``JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE``: when the last handle closes (the runner exited, or
  was killed), Windows ends every process in the job, descendants included.
- **macOS** has neither; there the server records and the reaper (records.py, reaper.py) stop
  what a dead runner left, when the next runner or daemon starts.

On every platform the reaper is the second line: a server started without this tie
(``die_with_parent=False``, a platform call that failed) is still found and stopped.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Final, TypeVar

from preform_pipeline.logging import get_logger

__all__ = [
    "EXIT_PARENT_GONE",
    "EXIT_TIE_FAILED",
    "LAUNCHER_THREAD_NAME",
    "parent_death_tie",
    "popen_tied",
    "run_on_launcher",
]

#: Exit status of a child whose parent died before the child could tie itself to it.
EXIT_PARENT_GONE: Final = 121
#: Exit status of a child that could not ask for the parent-death signal.
EXIT_TIE_FAILED: Final = 122
LAUNCHER_THREAD_NAME: Final = "server-launcher"
#: Linux <sys/prctl.h>.
_PR_SET_PDEATHSIG: Final = 1
#: Windows: JobObjectExtendedLimitInformation and JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE.
_JOB_OBJECT_EXTENDED_LIMIT_INFORMATION: Final = 9
_JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: Final = 0x2000
_PROCESS_SET_QUOTA_AND_TERMINATE: Final = 0x0100 | 0x0001

_T = TypeVar("_T")
_log = get_logger(__name__)


class _Launcher:
    """One thread, alive until the process exits, that runs every server start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._owner_pid = 0

    def run(self, work: Callable[[], _T]) -> _T:
        if threading.current_thread() is self._thread:
            return work()
        future: Future[_T] = Future()
        self._ensure_thread()
        self._queue.put((work, future))
        return future.result()

    def _ensure_thread(self) -> None:
        with self._lock:
            # After a fork the thread exists only in the parent: the child needs its own.
            if self._thread is None or self._owner_pid != os.getpid():
                self._queue = queue.SimpleQueue()
                self._owner_pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._serve, args=(self._queue,), name=LAUNCHER_THREAD_NAME,
                    daemon=True,
                )
                self._thread.start()

    @staticmethod
    def _serve(requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]]) -> None:
        while True:
            work, future = requests.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work())
            except BaseException as exc:  # handed to the caller, who re-raises it
                future.set_exception(exc)


_LAUNCHER: Final = _Launcher()


def run_on_launcher(work: Callable[[], _T]) -> _T:
    """Run ``work`` on the launcher thread (which lives until the process exits); re-raises."""
    return _LAUNCHER.run(work)


def parent_death_tie(parent_pid: int) -> Callable[[], None] | None:
    """What a Linux child runs between fork and exec to die with ``parent_pid`` (SIGKILL on
    its death; exit :data:`EXIT_PARENT_GONE` if it is already gone); None without prctl."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    # prctl is variadic: its arguments are unsigned longs, made here, before the fork.
    signal_number, unused = ctypes.c_ulong(int(signal.SIGKILL)), ctypes.c_ulong(0)

    def tie() -> None:
        # Runs in the forked child: no logging, no locks, nothing but these calls.
        if prctl(_PR_SET_PDEATHSIG, signal_number, unused, unused, unused) != 0:
            os._exit(EXIT_TIE_FAILED)
        if os.getppid() != parent_pid:
            os._exit(EXIT_PARENT_GONE)  # the parent died before the tie: no one owns us

    return tie


if sys.platform == "win32":
    from ctypes import wintypes

    class _IoCounters(ctypes.Structure):
        _fields_ = [(name, ctypes.c_ulonglong) for name in (
            "ReadOperationCount", "WriteOperationCount", "OtherOperationCount",
            "ReadTransferCount", "WriteTransferCount", "OtherTransferCount",
        )]

    class _BasicLimits(ctypes.Structure):
        _fields_ = [
            ("PerProcessUserTimeLimit", ctypes.c_int64),
            ("PerJobUserTimeLimit", ctypes.c_int64),
            ("LimitFlags", wintypes.DWORD),
            ("MinimumWorkingSetSize", ctypes.c_size_t),
            ("MaximumWorkingSetSize", ctypes.c_size_t),
            ("ActiveProcessLimit", wintypes.DWORD),
            ("Affinity", ctypes.c_size_t),
            ("PriorityClass", wintypes.DWORD),
            ("SchedulingClass", wintypes.DWORD),
        ]

    class _ExtendedLimits(ctypes.Structure):
        _fields_ = [
            ("BasicLimitInformation", _BasicLimits),
            ("IoInfo", _IoCounters),
            ("ProcessMemoryLimit", ctypes.c_size_t),
            ("JobMemoryLimit", ctypes.c_size_t),
            ("PeakProcessMemoryUsed", ctypes.c_size_t),
            ("PeakJobMemoryUsed", ctypes.c_size_t),
        ]

    _kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    # Declared in full: without argtypes a 64-bit handle would be passed as a C int.
    _kernel32.CreateJobObjectW.argtypes = (wintypes.LPVOID, wintypes.LPCWSTR)
    _kernel32.CreateJobObjectW.restype = wintypes.HANDLE
    _kernel32.SetInformationJobObject.argtypes = (
        wintypes.HANDLE, ctypes.c_int, wintypes.LPVOID, wintypes.DWORD
    )
    _kernel32.SetInformationJobObject.restype = wintypes.BOOL
    _kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    _kernel32.OpenProcess.restype = wintypes.HANDLE
    _kernel32.AssignProcessToJobObject.argtypes = (wintypes.HANDLE, wintypes.HANDLE)
    _kernel32.AssignProcessToJobObject.restype = wintypes.BOOL
    _kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
    _kernel32.CloseHandle.restype = wintypes.BOOL
    _job_lock = threading.Lock()
    _job_handle: list[int] = []  # the one job of this process, never closed on purpose

    def _kill_on_close_job() -> int:
        with _job_lock:
            if not _job_handle:
                job = _kernel32.CreateJobObjectW(None, None)
                if not job:
                    raise ctypes.WinError(ctypes.get_last_error())
                limits = _ExtendedLimits()
                limits.BasicLimitInformation.LimitFlags = _JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
                if not _kernel32.SetInformationJobObject(
                    job, _JOB_OBJECT_EXTENDED_LIMIT_INFORMATION, ctypes.byref(limits),
                    ctypes.sizeof(limits),
                ):
                    raise ctypes.WinError(ctypes.get_last_error())
                _job_handle.append(job)
            return _job_handle[0]

    def _join_job(pid: int) -> None:
        job = _kill_on_close_job()
        handle = _kernel32.OpenProcess(_PROCESS_SET_QUOTA_AND_TERMINATE, False, pid)
        if not handle:
            raise ctypes.WinError(ctypes.get_last_error())
        try:
            if not _kernel32.AssignProcessToJobObject(job, handle):
                raise ctypes.WinError(ctypes.get_last_error())
        finally:
            _kernel32.CloseHandle(handle)


def popen_tied(
    command: list[str], *, die_with_parent: bool = True, **options: Any
) -> subprocess.Popen[str]:
    """``subprocess.Popen(command, **options)`` started on the launcher thread, tied to this
    process where the platform allows (see the module docstring).

    ``die_with_parent=False`` starts it untied (tests of the reaper use this seam).
    """

    def start() -> subprocess.Popen[str]:
        if die_with_parent and sys.platform.startswith("linux"):
            tie = parent_death_tie(os.getpid())
            if tie is None:
                _log.warning("server_tie_unavailable", reason="prctl not found")
            else:
                options["preexec_fn"] = tie
        popen: subprocess.Popen[str] = subprocess.Popen(command, **options)
        if die_with_parent and sys.platform == "win32":
            try:
                _join_job(popen.pid)
            except OSError as exc:  # e.g. a job that forbids nesting: the reaper still works
                _log.warning("server_tie_unavailable", pid=popen.pid, reason=str(exc))
        return popen

    return run_on_launcher(start)
