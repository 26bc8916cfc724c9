"""A pipeline process cut off while its server saves: the tests' stand-in, a real process.

:class:`Saver` starts a Python process that saves one output the way the executor does
(:func:`preform_pipeline.executor.staging.save_staged`), writes a server's half-done temporary
into its save's folder, says where, and waits: killed (SIGKILL) it is a run killed
mid-save, whose staging folder nothing of its own removes; left running it is another run
at work on the same output folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["SERVER_TEMPORARY", "WAIT_S", "Saver"]

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Upper bound of every wait here; reached only when something is broken.
WAIT_S = 30.0
#: The name the simulator gives a ``.form`` it has begun to write (scene.py's
#: ``_temporary_name``), cut off as a killed server leaves it.
SERVER_TEMPORARY = ".{name}.0123456789abcdef0123456789abcdef.tmp"

_SAVER = (
    "import sys\n"
    "from pathlib import Path\n"
    "from preform_pipeline.executor.staging import save_staged\n"
    "def held(path):\n"
    "    half = path.parent / sys.argv[3].format(name=path.name)\n"
    "    half.write_bytes(b'PK\\x03\\x04 cut off')\n"
    "    print(half, flush=True)\n"
    "    sys.stdin.read()\n"
    "root = Path(sys.argv[1])\n"
    "save_staged(root / sys.argv[2], root, held)\n"
)


class Saver:
    """Another process of this host, stopped in the middle of saving ``name`` below
    ``root``; ``temporary`` is the half-written file its server left."""

    def __init__(self, root: Path, name: str = "2026-12-06/e2e-001.form") -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SAVER, str(root), name, SERVER_TEMPORARY],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )
        assert self.process.stdout is not None
        self.temporary = Path(self.process.stdout.readline().strip())
        assert self.temporary.is_file(), "the saver did not start its save"
        #: ``<root>/.preform-staging/<its save>``: what it owns.
        self.folder = self.temporary.parent
        #: ``<root>/.preform-staging/<its save>.<its process>``: the file naming its owner.
        (self.owner,) = self.folder.parent.glob(f"{self.folder.name}.*")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(WAIT_S)

    def stop(self) -> None:
        """End it, when it still runs (a test's clean-up)."""
        if self.process.poll() is None:
            self.kill()
