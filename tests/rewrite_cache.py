"""pytest's rewritten test modules, written once before the workers collect them.

pytest rewrites the ``assert`` statements of every test module and ``conftest.py`` it
imports, and caches the rewritten code beside the source (``__pycache__/*-pytest-*.pyc``),
but only where Python may write bytecode: with ``PYTHONDONTWRITEBYTECODE`` set (this machine
sets it, CI runs on one like it) nothing is cached, and every process that collects the
suite rewrites all of it again. That was about 14 of the 20 s of CPU a collection takes,
paid by each of the three xdist workers, on every run.

pytest still *reads* a cached file that it finds, whatever that variable says, and checks it
against the source first (a hash of the source since pytest 9, the source's mtime and size
before), so a stale file is rewritten as usual. :func:`write_rewritten_modules` therefore
writes the cache in the controller, before the workers start: the files whose cache is
missing or stale are rewritten once, by pytest's own functions, on a few processes at once
when there are many (a fresh checkout, as in CI), and each worker then loads what is
written. The rewritten code is the code pytest would have made itself; nothing else changes.

The installed plugins are rewritten too: pytest marks every top-level module of a plugin's
distribution for rewriting (hypothesis, anyio, xdist, pytest-timeout here), so each process
rewrote the ~110 of their modules it imports, about 1 s of a collection's CPU, again in the
controller and in every worker. Their cache is written the same way, beside their sources
(where pytest itself writes it when bytecode may be written; a read-only folder is left as
it is, and those modules are rewritten at import as before).

pytest's rewriting functions are private (``_pytest.assertion.rewrite``): where a pytest
release renames them, :func:`write_rewritten_modules` writes nothing and says so
(:data:`UNAVAILABLE`), and the run collects as it did before, only slower;
``tests/suite/test_suite_rewrite_cache.py`` fails on such a release, so the change is seen.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast

if TYPE_CHECKING:
    import pytest
    from _pytest.assertion import AssertionState

__all__ = [
    "UNAVAILABLE",
    "modules_to_rewrite",
    "plugin_modules",
    "stale_modules",
    "write_rewritten_modules",
]

#: What :func:`write_rewritten_modules` returns when this pytest lacks the functions it uses.
UNAVAILABLE: Final = -1

#: Below this many stale files, starting processes costs more than it saves: each imports
#: pytest (about 0.3 s of CPU) to rewrite files that take 10-40 ms apiece.
_FILES_PER_PROCESS: Final = 40

#: Folders never searched for test files, whatever ``norecursedirs`` says: caches and
#: environments hold no test of ours, and a virtual environment holds thousands of files.
_NEVER_SEARCHED: Final = frozenset({"__pycache__", "node_modules"})


def modules_to_rewrite(
    paths: Iterable[Path], patterns: Sequence[str], skip_dirs: Sequence[str], root: Path
) -> list[Path]:
    """The files pytest rewrites when it collects ``paths``, as far as their names say.

    ``patterns`` are pytest's ``python_files`` (patterns with a folder in them are left to
    pytest), ``skip_dirs`` its ``norecursedirs``; every ``conftest.py`` below a path is
    rewritten, and so is each one between it and ``root``. A file listed here that pytest
    does not import only costs its rewriting; one left out is rewritten by pytest as before.
    """
    names = [p for p in patterns if "/" not in p and os.sep not in p]
    root = root.resolve()
    found: dict[Path, None] = {}
    for path in paths:
        path = path.resolve()
        for folder in path.parents:
            if folder != root and root not in folder.parents:
                break
            if (folder / "conftest.py").is_file():
                found[folder / "conftest.py"] = None
        if path.is_file():
            found[path] = None
            continue
        for walked, dirs, files in os.walk(path):
            dirs[:] = sorted(
                d for d in dirs
                if d not in _NEVER_SEARCHED and not d.startswith(".")
                and not any(fnmatch.fnmatch(d, pattern) for pattern in skip_dirs)
            )
            for name in sorted(files):
                if name == "conftest.py" or (
                    name.endswith(".py") and any(fnmatch.fnmatch(name, n) for n in names)
                ):
                    found[Path(walked, name)] = None
    return list(found)


def plugin_modules(names: Iterable[str]) -> list[Path]:
    """The source files of the modules and packages ``names`` that pytest rewrites because
    they are marked (the installed plugins' top-level modules): a package's every ``.py``
    file below it. Dotted names are left to pytest (finding them would import their parent
    package before its cache is written); so is a name that cannot be found, or whose code
    is not a ``.py`` file."""
    found: dict[Path, None] = {}
    for name in sorted(names):
        if "." in name:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        if spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                for walked, dirs, files in os.walk(location):
                    dirs[:] = sorted(d for d in dirs if d not in _NEVER_SEARCHED)
                    for file in sorted(files):
                        if file.endswith(".py"):
                            found[Path(walked, file)] = None
        elif spec.origin is not None and spec.origin.endswith(".py"):
            found[Path(spec.origin)] = None
    return list(found)


def _cached_path(source: Path) -> Path:
    from _pytest.assertion.rewrite import PYC_TAIL, get_cache_dir

    return get_cache_dir(source) / (source.name[:-3] + PYC_TAIL)


def stale_modules(sources: Iterable[Path]) -> list[Path]:
    """Those of ``sources`` whose rewritten code pytest would not load from its cache."""
    from _pytest.assertion.rewrite import _read_pyc

    return [s for s in sources if _read_pyc(s, _cached_path(s)) is None]


class _Quiet:
    """The one part of pytest's assertion state that writing a cached file uses."""

    def trace(self, message: str) -> None:
        """pytest traces why a file could not be written (a read-only folder, say); a file
        not written is rewritten by pytest at collection, as before."""


def _write_some(sources: Sequence[Path], config: pytest.Config | None) -> None:
    from _pytest.assertion.rewrite import _rewrite_test, _write_pyc

    state = cast("AssertionState", _Quiet())
    for source in sources:
        try:
            # ``config`` matters to rewriting only for ``enable_assertion_pass_hook``; None
            # (in the helper processes) rewrites as with that setting off, its default.
            checked, code = _rewrite_test(source, cast("pytest.Config", config))
        except (OSError, SyntaxError):
            continue  # pytest reports the file when it collects it
        cache = _cached_path(source)
        try:
            cache.parent.mkdir(exist_ok=True)
        except OSError:
            continue
        _write_pyc(state, code, checked, cache)


def _write_chunk(sources: Sequence[Path]) -> None:
    """A helper process's share (a module-level function, so ``spawn`` can find it)."""
    _write_some(sources, None)


def write_rewritten_modules(config: pytest.Config) -> int:
    """Cache the rewritten code of the files ``config`` collects; how many were (re)written.

    Call it once, in the process that starts the workers (or runs the tests), before any
    test module is imported. Does nothing (and returns 0) where pytest does not rewrite
    asserts (``--assert=plain``); returns :data:`UNAVAILABLE` where this pytest lacks the
    functions it uses.
    """
    if config.getoption("assertmode") != "rewrite":
        return 0
    try:
        from _pytest.assertion.rewrite import (  # noqa: F401 (only whether they exist)
            PYC_TAIL,
            _read_pyc,
            _rewrite_test,
            _write_pyc,
            get_cache_dir,
        )
    except ImportError:
        return UNAVAILABLE
    here = config.invocation_params.dir
    paths = [here / arg.split("::", 1)[0] for arg in config.args]
    sources = modules_to_rewrite(
        [p for p in paths if p.exists()],
        config.getini("python_files"),
        config.getini("norecursedirs"),
        config.rootpath,
    )
    # The names pytest marked for rewriting (the plugins'): private, like the functions above.
    marked = getattr(config.pluginmanager.rewrite_hook, "_must_rewrite", ())
    sources += plugin_modules(marked)
    stale = stale_modules(sources)
    processes = min(os.cpu_count() or 1, len(stale) // _FILES_PER_PROCESS)
    if processes <= 1 or config.getini("enable_assertion_pass_hook"):
        _write_some(stale, config)
        return len(stale)
    # Interleaved shares: test files of one folder cost alike, and folders differ.
    shares = [stale[i::processes] for i in range(processes)]
    # ``spawn``, not ``fork``: the controller may hold threads by now, and it is what
    # Windows and macOS use anyway.
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        list(pool.map(_write_chunk, shares))
    return len(stale)
