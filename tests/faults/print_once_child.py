"""The runner of ``test_print_once.py``: one build, prepared and printed through the executor.

Run as ``python print_once_child.py WORKDIR SERVER_URL DASHBOARD_URL MODEL [--pause-after-send]``
with the Web API credentials in ``PREFORM_PIPELINE_CLIENT_ID`` / ``_SECRET``. The job store
(``WORKDIR/jobs.sqlite3``) holds the build; the first start creates it (as a hot folder would:
its job in ``processing``, the build prepared). The executor runs the build on the remote
simulated PreFormServer with :class:`~preform_pipeline.verify.PrintTracking` writing the store
around the send and looking an interrupted send up before any resend.

``--pause-after-send`` stops the world right after the print request was answered and before
``print_sent`` is written: the child prints ``PRINT_ANSWERED`` and blocks until it is killed.
That is the worst moment to die: the job exists, and the store only says it was being sent.
Otherwise the child prints one JSON line with the build's outcome and exits.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from preform_pipeline.cloud import Credentials, WebApiClient
from preform_pipeline.executor import NullReporter, Runner, RunOptions
from preform_pipeline.logging import configure_logging
from preform_pipeline.plan.builds import plan_builds, read_models
from preform_pipeline.printing.web import WebApiLocator
from preform_pipeline.recipes import load_recipe
from preform_pipeline.servers import ServerPool
from preform_pipeline.settings import RemoteServer, ServerSettings, Settings
from preform_pipeline.store import Build, JobState, SqliteJobStore
from preform_pipeline.verify import PrintTracking

RECIPE = """\
name: once
scene:
  machine_type: FORM-4-0
  material_code: FLGPGR05
  layer_thickness_mm: 0.1
import:
  units: MILLIMETERS
  repair_behavior: REPAIR
steps:
  - auto_layout
  - print:
      printer: SimulatedForm4-1
      job_name: "once {build}"
"""


class PausingStore(SqliteJobStore):
    """The store, except that recording ``print_sent`` never happens: the process is killed
    while it waits (the test's fault seam)."""

    def transition_build(self, build_id: int, to_state: JobState, reason: str,
                         **kwargs: Any) -> Build:
        if to_state is JobState.PRINT_SENT:
            print("PRINT_ANSWERED", flush=True)
            threading.Event().wait()
        return super().transition_build(build_id, to_state, reason, **kwargs)


def main(argv: list[str]) -> int:
    work, server_url, dashboard_url, model = Path(argv[0]), argv[1], argv[2], Path(argv[3])
    pause = "--pause-after-send" in argv
    configure_logging(level="INFO", json_file=work / "child.jsonl", console=sys.stderr)
    store_type = PausingStore if pause else SqliteJobStore
    store = store_type(work / "jobs.sqlite3")
    builds = store.list_builds()
    if not builds:
        job = store.create_job(recipe="once", source_path=model, state=JobState.PROCESSING)
        build = store.create_build(recipe="once", job_ids=[job.id])
        store.transition_build(build.id, JobState.PREPARING, "sent to the pool")
        builds = (store.transition_build(build.id, JobState.PREPARED, "prepared"),)
    stored = builds[0]

    recipe_path = work / "recipe.yaml"
    recipe_path.write_text(RECIPE, encoding="utf-8")
    recipe = load_recipe(recipe_path)
    plan = plan_builds(recipe, read_models([model], import_spec=recipe.import_options))
    [build_plan] = plan.builds

    settings = Settings(servers=ServerSettings(health_interval_s=0),
                        remotes=(RemoteServer(url=server_url),))
    credentials = Credentials(os.environ["PREFORM_PIPELINE_CLIENT_ID"],
                              os.environ["PREFORM_PIPELINE_CLIENT_SECRET"])
    with WebApiClient(credentials, base_url=dashboard_url) as client, ServerPool(
        settings.pool, handle_signals=False
    ) as pool:
        tracking = PrintTracking(
            client=client,
            store=store,
            build_ids={build_plan.name: stored.id},
            locators=[WebApiLocator(client, report_delay_s=10, recheck_s=0.5)],
        )
        options = RunOptions(output_root=work / "out", print_tracking=tracking)
        result = Runner(plan, pool, options=options, reporter=NullReporter()).run()
    [outcome] = result.outcomes
    print(json.dumps({"status": outcome.status.value, "job_id": outcome.job_id,
                      "reason": outcome.reason}), flush=True)
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
