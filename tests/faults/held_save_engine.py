"""A simulator engine whose first ``.form`` save stops half written until the server is killed.

Started with ``--engine tests.faults.held_save_engine:HeldSaveEngine`` (the simulator's seam
for a stand-in engine): everything is the built-in engine's, except the first save of a
``.form`` among all the servers that share the hold file named by ``PP_TEST_SAVE_HOLD``. That
save opens its temporary where the real save would (the simulator's own ``atomic_writer``,
beside the path the run asked for), writes the start of an archive and waits to be killed. A
test then kills a server caught mid-save for certain, with a model of a few triangles,
instead of racing a save made slow by 480,000 of them (about 10 s of CPU, twice, a run).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from preform_pipeline.simulator.atomic import atomic_writer
from preform_pipeline.simulator.bodies import Body, writable_target
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.protocol import Json, SimError

__all__ = ["HOLD_ENV", "HOLD_LIMIT_S", "HeldSaveEngine"]

#: The file made by the one save that is held (unset: no save is held); the servers of a
#: run share it, so the server that replaces the killed one saves as the built-in engine.
HOLD_ENV = "PP_TEST_SAVE_HOLD"
#: Upper bound of a hold; reached only when the test never killed the server (the save
#: fails, and its temporary goes as any failed save's does).
HOLD_LIMIT_S = 240.0
#: What the held save has written: the first bytes of a zip archive's first entry.
HALF_WRITTEN = b"PK\x03\x04"


class HeldSaveEngine(SimEngine):
    """The built-in engine; the first ``.form`` save of all that share the hold file stops
    half written."""

    def _op_save_form_file(self, params: dict[str, str], body: Any, progress: Any) -> Json:
        hold = os.environ.get(HOLD_ENV)
        if hold:
            # The path checked first, as the built-in save does: a refused save is not held.
            path = writable_target(Body(body).req_string("file"), "$.file")
            if _first(Path(hold)):
                _save_held(path)
        return super()._op_save_form_file(params, body, progress)


def _save_held(path: Path) -> None:
    """Open the save's temporary, write the start of an archive, and wait to be killed."""
    with atomic_writer(path) as handle:
        handle.write(HALF_WRITTEN)
        handle.flush()
        threading.Event().wait(HOLD_LIMIT_S)  # until the test's SIGKILL
        raise SimError(500, "INTERNAL_ERROR", "the held save was never killed")


def _first(hold: Path) -> bool:
    """Whether this is the first save to ask: it makes the hold file (exclusively)."""
    try:
        os.close(os.open(hold, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    return True
