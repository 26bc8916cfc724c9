"""Two libraries imported without parts of them this package never uses.

Each start of a command line, daemon or simulator pays for what its imports import, and the
suite starts about a thousand of them:

- structlog's ``__init__`` imports ``structlog.dev`` and ``structlog.tracebacks``, and each
  imports rich whenever rich is installed (it is: our consoles use it), for two things this
  package never uses: rich's traceback as the console's exception formatter (ours is
  ``logging._console_exception``) and rich's repr of a frame's local variables (the JSON log's
  exceptions leave them out). That cost every process that logs about 60 ms of CPU (rich,
  Pygments, attrs), the ~250 simulators a test run starts among them, which print no table.
  ``tests/unit/test_logging_without_rich.py`` checks that the console and JSON lines are the
  same either way.
- httpx's ``__init__`` imports its own command-line client (``httpx._main``: click, Pygments,
  rich's progress bars and syntax highlighting) whenever click and rich are installed, ~20 ms
  of CPU beside our own rich console and ~45 ms without it. Nothing here runs ``httpx.main``;
  with its module marked missing httpx defines a ``main`` that says what to install.
"""

from __future__ import annotations

import sys

__all__ = ["import_structlog_without_rich", "leave_out_httpx_command_line"]

_RICH = "rich"
_HTTPX_CLI = "httpx._main"


def import_structlog_without_rich() -> None:
    """Import structlog with rich hidden from it (``import rich`` raises ImportError, which
    structlog takes as "not installed"), then hand rich back for the modules that use it.

    Nothing is done when structlog is already imported (its view of rich is settled) or when
    rich is: a program that uses rich before importing the package keeps structlog's rich
    formatters, and its other threads cannot find rich gone while they use it. Called once,
    from the package's ``__init__``, before any module of the package can import structlog.
    """
    if "structlog" in sys.modules or _RICH in sys.modules:
        return
    sys.modules[_RICH] = None  # type: ignore[assignment]  # the import system's "not here"
    try:
        # An import statement, not importlib: `-X importtime` lists only the statement's.
        import structlog  # noqa: F401  (imported for sys.modules)
    finally:
        del sys.modules[_RICH]


def leave_out_httpx_command_line() -> None:
    """Mark httpx's command-line module missing, so that importing httpx (later, where it is
    used) skips it. Nothing is done when httpx is already imported or the module is known."""
    if "httpx" not in sys.modules:
        sys.modules.setdefault(_HTTPX_CLI, None)  # type: ignore[arg-type]
