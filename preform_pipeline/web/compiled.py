"""The dashboard's templates compiled once a process, whatever number of dashboards it runs.

Each :class:`~preform_pipeline.web.app.Dashboard` has a Jinja environment of its own (its
globals carry its own settings), and an environment compiles every template it renders the
first time: tens of milliseconds of CPU a page, paid again by every dashboard a process starts
(the test suite starts hundreds). Compiled code does not depend on the globals, which are read
when a page is rendered, so the environments, configured alike (the same ``finalize``, which
the compiled code does depend on), share it through this cache. Jinja keys it by the
template's name and checks it against the source's checksum, so an edited template is
compiled again.
"""

from __future__ import annotations

import threading

from jinja2 import BytecodeCache
from jinja2.bccache import Bucket

__all__ = ["COMPILED", "CompiledOnce"]


class CompiledOnce(BytecodeCache):
    """Compiled templates held in memory, shared by every environment given it."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}
        # Dashboards run on threads of their own (one per uvicorn server).
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        with self._lock:
            code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        code = bucket.bytecode_to_string()
        with self._lock:
            self._code[bucket.key] = code


#: The process's one cache (``Dashboard`` gives it to its environment).
COMPILED = CompiledOnce()
