"""/metrics says each server's restarts (a local one) or checks after a failure (a remote
one): counted by the pool since session 46, shown to no one before."""

from __future__ import annotations

from pathlib import Path

from preform_pipeline.store import SqliteJobStore
from preform_pipeline.web.metrics import render_metrics
from preform_pipeline.web.sources import LiveSources
from tests.unit.web.conftest import Statuses, server_status


def test_a_local_servers_restarts_and_a_remotes_rechecks_are_counted_by_server(
    tmp_path: Path
) -> None:
    pool = Statuses((server_status("server-1", remote=False, restarts=2),
                     server_status("printhost", remote=True, rechecks=4)))
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
        text = render_metrics(store, LiveSources(pool=lambda: pool))  # type: ignore[arg-type,return-value]
    lines = [ln for ln in text.splitlines() if "pool_server_re" in ln]
    assert lines == [
        "# HELP preform_pipeline_pool_server_restarts_total Restarts of each local PreFormServer "
        "since its pool started.",
        "# TYPE preform_pipeline_pool_server_restarts_total counter",
        'preform_pipeline_pool_server_restarts_total{server="server-1"} 2',
        "# HELP preform_pipeline_pool_server_rechecks_total Checks of each remote PreFormServer "
        "after a failure since its pool started (the pool never restarts another machine's "
        "server).",
        "# TYPE preform_pipeline_pool_server_rechecks_total counter",
        'preform_pipeline_pool_server_rechecks_total{server="printhost"} 4',
    ]


def test_every_counter_is_named_as_prometheus_names_a_counter(tmp_path: Path) -> None:
    """An accumulating count ends in ``_total`` (Prometheus' naming conventions; OpenMetrics
    requires it of a counter's samples). Review rv47-loose: session 47's two counters did not."""
    pool = Statuses((server_status("server-1", remote=False, restarts=1),
                     server_status("printhost", remote=True, rechecks=1)))
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
        text = render_metrics(store, LiveSources(pool=lambda: pool))  # type: ignore[arg-type,return-value]
    kinds = dict(ln.split()[2:4] for ln in text.splitlines() if ln.startswith("# TYPE "))
    counters = sorted(name for name, kind in kinds.items() if kind == "counter")
    assert counters == ["preform_pipeline_pool_server_rechecks_total",
                        "preform_pipeline_pool_server_restarts_total"]
    samples = [ln.split("{")[0].split()[0] for ln in text.splitlines()
               if ln and not ln.startswith("#")]
    assert {s for s in samples if s.startswith(tuple(counters))} == set(counters)
