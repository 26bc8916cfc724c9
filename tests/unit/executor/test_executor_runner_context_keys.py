"""The runner's context keys exist before its threads bind them.

structlog creates a key's context variable on the key's first bind, unlocked; two of a
run's build threads binding ``step`` for the first time at once made two, and one build
failed on its first step with "created by a different ContextVar" (seen in a whole run of
the suite, ``test_run_waits_for_printer``). The race is forced here: in a fresh interpreter
(structlog's table empty), after the runner is imported, every context variable created
from then on is held at a two-thread barrier, so two threads that each had to create one
always both do. With the keys declared at import no thread creates one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

__all__: list[str] = []

_RACE = textwrap.dedent(
    """
    import contextvars, json, threading

    import preform_pipeline.executor.runner  # noqa: F401  (declares its keys)
    from structlog.contextvars import bind_contextvars, get_contextvars, reset_contextvars

    real = contextvars.ContextVar
    meet = threading.Barrier(2, timeout=5)
    created = []

    def held(*args, **kwargs):
        created.append(args[0])
        try:
            meet.wait()
        except threading.BrokenBarrierError:
            pass
        return real(*args, **kwargs)

    contextvars.ContextVar = held
    results = {}

    def build(name):
        try:
            tokens = bind_contextvars(run_id="r", build=name, server=name, step=name)
            seen = dict(get_contextvars())
            reset_contextvars(**tokens)
            results[name] = seen
        except Exception as exc:
            results[name] = repr(exc)

    threads = [threading.Thread(target=build, args=(n,)) for n in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    print(json.dumps({"created": created, "results": results}))
    """
)


class TestTheRunnersContextKeys:
    def test_two_builds_binding_their_keys_at_once_each_see_their_own_values(self) -> None:
        done = subprocess.run(
            [sys.executable, "-c", _RACE], capture_output=True, text=True, timeout=60, check=True
        )
        outcome = json.loads(done.stdout)
        assert outcome["created"] == []
        for name in ("one", "two"):
            assert outcome["results"][name] == {
                "run_id": "r", "build": name, "server": name, "step": name
            }
