"""Other instances of this host name for identity tests (liveness.py): instance strings that
name another pid namespace or another boot, the command prefix that runs a real program in a
new pid namespace (another container of the same host name), where the system allows it, and
the environment such a program of this checkout runs with.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from preform_pipeline.liveness import this_instance

__all__ = ["OWN_PREFIX", "child_environment", "in_new_pid_namespace", "other_instance"]

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The variables a user's shell would not have: the settings the tests' own runs may set.
OWN_PREFIX = "PREFORM_PIPELINE_"


def other_instance(boot: bool = False) -> str:
    """An instance other than ours: another pid namespace of this boot, or another boot."""
    ours_boot, _, namespace = this_instance().partition("/")
    if boot:
        return f"{'0' if ours_boot[:1] != '0' else '1'}{ours_boot[1:]}/{namespace}"
    return f"{ours_boot}/{int(namespace or 0) + 1}"


def in_new_pid_namespace() -> list[str] | None:
    """The command prefix that runs a program in a new pid namespace; None where not allowed."""
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        return None
    for prefix in ([unshare, "--pid", "--fork", "--mount-proc"],
                   [unshare, "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"]):
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30, check=False)
        if probe.returncode == 0:
            return prefix
    return None


def child_environment() -> dict[str, str]:
    """Ours for a child of this checkout: its modules importable, none of our settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIX)}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env
