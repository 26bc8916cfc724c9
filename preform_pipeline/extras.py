"""What to run to install one of the package's extras (``postgresql``), for this install.

The hint was ``pip install 'preform-pipeline[postgresql]'``: right for a package installed
from an index, wrong from a checkout (session 41: a newcomer's is installed with ``pip install
-e .``, and a ``pip`` on the PATH may be another Python's). Where this package's code lies is
known, not guessed: beside a ``pyproject.toml`` it is a checkout, to be installed again
editable with the extra; elsewhere it is an installed package. Either way the command runs
the pip of the Python running now, so the extra lands where it is imported from.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Final

__all__ = ["install_extra_hint"]

#: The folder holding the package's own folder: a checkout's root, or site-packages.
_ROOT: Final = Path(__file__).resolve().parent.parent


def install_extra_hint(extra: str, *, root: Path = _ROOT, python: str = sys.executable) -> str:
    """The command that installs ``extra`` for the code running now, with what it is."""
    pip = f"{shlex.quote(python)} -m pip install"
    if (root / "pyproject.toml").is_file():
        target = shlex.quote(f"{root}[{extra}]")
        return f"install the {extra} extra into this checkout's install: {pip} -e {target}"
    return (f"install the {extra} extra: {pip} "
            f"{shlex.quote(f'preform-pipeline[{extra}]')}")
