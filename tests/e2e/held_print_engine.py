"""A simulator engine whose print request is held until the test lets it go.

Started with ``--engine tests.e2e.held_print_engine:HeldPrintEngine`` (the simulator's seam
for a stand-in engine): everything is the built-in engine's, except that a ``print`` waits,
before it prints, until the file named by ``PP_TEST_PRINT_RELEASE`` exists. A test keeps a
run's print request on its way for as long as it needs, not for a fixed time chosen to
outlast a loaded machine's starts of other processes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from preform_pipeline.hotfolder.testing import wait_for
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.protocol import ProgressCallback

__all__ = ["HOLD_LIMIT_S", "RELEASE_ENV", "HeldPrintEngine"]

#: The file whose existence lets held prints go on (unset: nothing is held).
RELEASE_ENV = "PP_TEST_PRINT_RELEASE"
#: Upper bound of a hold; reached only when the test never released it (the print fails).
HOLD_LIMIT_S = 240.0


class HeldPrintEngine(SimEngine):
    """The built-in engine, its prints held until the release file exists."""

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        release = os.environ.get(RELEASE_ENV)
        if operation_id == "print" and release:
            wait_for(Path(release).exists, HOLD_LIMIT_S, interval=0.05,
                     what="the test's release of the print request")
        return super().call(operation_id, params, body, progress)
