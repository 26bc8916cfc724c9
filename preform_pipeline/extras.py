"""What to run to install one of the package's extras (``postgresql``), for this install.

The hint was ``pip install 'preform-pipeline[postgresql]'``: right for a package installed
from an index, wrong from a checkout (session 41: a newcomer's is installed with ``pip install
-e .``, and a ``pip`` on the PATH may be another Python's). Where this package's code lies is
known, not guessed: beside a ``pyproject.toml`` it is a checkout, to be installed again
editable with the extra; elsewhere it is an installed package. Either way the command runs
the pip of the Python running now, so the extra lands where it is imported from.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

__all__ = ["install_extra_hint"]

#: The folder holding the package's own folder: a checkout's root, or site-packages.
_ROOT: Final = Path(__file__).resolve().parent.parent


def _windows_quote(word: str) -> str:
    """``word`` as Windows' ``cmd`` reads it: in double quotes when it holds a space."""
    return subprocess.list2cmdline([word])


def install_extra_hint(
    extra: str, *, root: Path = _ROOT, python: str = sys.executable, windows: bool = os.name == "nt"
) -> str:
    """The command that installs ``extra`` for the code running now, with what it is.
    Quoted for the shell it is typed into: POSIX quoting, or ``cmd``'s on Windows (the farm
    nodes of docs/multi-node.md are Windows PCs, where a single-quoted path is no path)."""
    quote: Callable[[str], str] = _windows_quote if windows else shlex.quote
    pip = f"{quote(python)} -m pip install"
    if (root / "pyproject.toml").is_file():
        target = quote(f"{root}[{extra}]")
        return f"install the {extra} extra into this checkout's install: {pip} -e {target}"
    return f"install the {extra} extra: {pip} {quote(f'preform-pipeline[{extra}]')}"
