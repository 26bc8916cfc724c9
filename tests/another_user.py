"""A command line run as another, unprivileged user: what a file's or a folder's permissions
refuse only shows so (the suite runs as root, whom no permission stops).

This venv's interpreter may live below ``/root``, which another user may not enter, so the
system's Python of the same version runs the package, its dependencies found through the
venv's ``site-packages`` (read as a site folder: the editable install's finders are there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["OTHER_PYTHON", "UNLISTED_UID", "another_users_home", "as_another_user"]

REPO_ROOT = Path(__file__).resolve().parents[1]
#: A user id no password database of a test machine lists.
UNLISTED_UID = 54_321


def _other_python() -> Path | None:
    """A Python of this version that any user may start, when root may start it as one."""
    if not hasattr(os, "getuid") or os.getuid() != 0:
        return None
    found = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}",
                         path="/usr/bin:/usr/local/bin")
    return Path(found) if found else None


#: None where no test can run a command as another user (not root, or no such Python).
OTHER_PYTHON = _other_python()

_MAIN = ("import runpy, site, sys; site.addsitedir(sys.argv.pop(1)); "
         "runpy.run_module('preform_pipeline', run_name='__main__', alter_sys=True)")


def as_another_user(cwd: Path, *argv: str, timeout: float = 60.0
                    ) -> subprocess.CompletedProcess[str]:
    """``preform-pipeline ARGV`` in ``cwd`` as :data:`UNLISTED_UID`, with ``cwd`` as its home
    and data folder, to its end."""
    assert OTHER_PYTHON is not None, "skip the test where OTHER_PYTHON is None"
    env = {"PYTHONPATH": str(REPO_ROOT), "HOME": str(cwd), "XDG_DATA_HOME": str(cwd),
           "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [str(OTHER_PYTHON), "-c", _MAIN, sysconfig.get_paths()["purelib"], *argv],
        cwd=cwd, env=env, user=UNLISTED_UID, group=UNLISTED_UID, extra_groups=[],
        capture_output=True, text=True, timeout=timeout, check=False)


@contextmanager
def another_users_home() -> Iterator[Path]:
    """A folder the other user may reach and write (its home and data folder), removed after:
    not below pytest's own, which only root may open."""
    home = Path(tempfile.mkdtemp(prefix="pp-another-user-"))
    try:
        home.chmod(0o777)
        yield home
    finally:
        shutil.rmtree(home)
