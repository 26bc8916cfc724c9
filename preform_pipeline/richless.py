"""structlog imported without rich, so that a process that logs does not pay for rich.

structlog's ``__init__`` imports ``structlog.dev`` and ``structlog.tracebacks``, and each of
them imports rich whenever rich is installed (it is: our consoles use it), for two things this
package never uses: rich's traceback as the console's exception formatter (ours is
``logging._console_exception``) and rich's repr of a frame's local variables (the JSON log's
exceptions leave them out). That import cost every process that logs about 60 ms of CPU
(rich, Pygments, attrs), the ~250 simulators a test run starts among them, which never print
a table. ``tests/unit/test_cli_start_imports.py`` checks that the console and JSON lines are
the same either way.
"""

from __future__ import annotations

import sys

__all__ = ["import_structlog_without_rich"]

_RICH = "rich"


def import_structlog_without_rich() -> None:
    """Import structlog with rich hidden from it (``import rich`` raises ImportError, which
    structlog takes as "not installed"), then hand rich back for the modules that use it.

    Nothing is done when structlog is already imported: its view of rich is settled. Called
    once, from the package's ``__init__``, before any module of the package can import
    structlog, while the process has one thread (no other import sees rich hidden).
    """
    if "structlog" in sys.modules:
        return
    absent = object()
    before = sys.modules.get(_RICH, absent)
    sys.modules[_RICH] = None  # type: ignore[assignment]  # the import system's "not here"
    try:
        # An import statement, not importlib: `-X importtime` lists only the statement's.
        import structlog  # noqa: F401  (imported for sys.modules)
    finally:
        if before is absent:
            del sys.modules[_RICH]
        else:
            sys.modules[_RICH] = before  # type: ignore[assignment]
