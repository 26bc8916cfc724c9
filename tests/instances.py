"""Other instances of this host name for identity tests (liveness.py): instance strings that
name another pid namespace or another boot, and the command prefix that runs a real program
in a new pid namespace (another container of the same host name), where the system allows it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from preform_pipeline.liveness import this_instance

__all__ = ["in_new_pid_namespace", "other_instance"]


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
