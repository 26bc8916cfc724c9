"""The exit statuses of every command line, in one small module: the command line's own
dispatch (``cli.py``) reads them without importing what the commands use."""

from __future__ import annotations

from typing import Final

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_CRASH",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
#: Ctrl-C (SIGINT) and SIGTERM, as shells report them: 128 + the signal number.
EXIT_INTERRUPTED: Final = 130
EXIT_TERMINATED: Final = 143
#: argparse refused the command line (its own exit status for usage errors).
EXIT_USAGE: Final = 2
#: An unexpected failure (a bug): sysexits' EX_SOFTWARE.
EXIT_CRASH: Final = 70
#: The reader of our output went away (``| head``): 128 + SIGPIPE, as shells report it.
EXIT_BROKEN_PIPE: Final = 141
