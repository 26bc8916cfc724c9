"""The real ``watch`` command whose dispatch loop dies right after it claimed a printer.

Run as ``python claim_then_die_child.py <watch arguments>``. The daemon runs as ``preform-pipeline
watch`` does, except at one seam: the send of a waiting build (the sender, which the dispatch
pass calls once it claimed the build's printer in the job store) prints ``CLAIMED <key>
<printer>`` and kills this process with SIGKILL. Nothing runs after it, as after ``kill -9``
or a power cut between the claim and the send: the claim stays in the store, unreleased.
"""

from __future__ import annotations

import os
import signal

from preform_pipeline.cli import main
from preform_pipeline.dispatch import sender
from preform_pipeline.store import Build


def _die_after_the_claim(self: sender.FormSender, build: Build, printer: str) -> None:
    print(f"CLAIMED {build.job_key} {printer}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    sender.FormSender.__call__ = _die_after_the_claim  # type: ignore[method-assign]
    main()
