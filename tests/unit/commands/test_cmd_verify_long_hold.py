"""``verify --wait`` started inside a Retry-After hold longer than an hour stops at once.

No request waits longer than ``MAX_RETRY_AFTER_S`` (3600 s) for a hold (retryafter.py), so a
hold the job store keeps for two hours (another process's 429 said 7200 s) is not slept out
by ``--wait``'s first request: it stops with exit status 1, says until when, and leaves the
print pending, as docs/verification.md says. Nothing reaches the network: the limiter refuses
before the first request.
"""

from __future__ import annotations

import io
import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from preform_pipeline.cli import run
from preform_pipeline.cloud.ratelimit import account_key
from preform_pipeline.retryafter import MAX_RETRY_AFTER_S
from preform_pipeline.store import JobState, SqliteJobStore

S = JobState
BASE_URL = "http://127.0.0.1:9"  # the discard port: no request may be sent
CLIENT_ID = "long-hold-client"


class TestAHoldLongerThanAnHour:
    """``verify --wait`` refuses to start inside it, saying until when."""

    @pytest.mark.timeout(60)
    def test_it_stops_at_once_with_the_time_and_the_print_stays_pending(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PREFORM_PIPELINE_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("PREFORM_PIPELINE_CLIENT_SECRET", "long-hold-secret")
        settings = tmp_path / "settings.yaml"
        settings.write_text(f'cloud: {{base_url: "{BASE_URL}"}}\n', encoding="utf-8")
        path = tmp_path / "jobs.sqlite3"
        hold_s = 2 * MAX_RETRY_AFTER_S
        with SqliteJobStore(path) as store:
            job = store.create_job(recipe="dental", source_path="/hot/processing/a.stl",
                                   state=S.PROCESSING)
            build = store.create_build(recipe="dental", job_ids=[job.id])
            for state in (S.PREPARING, S.PREPARED, S.PRINT_SENDING, S.PRINT_SENT):
                store.transition_build(build.id, state, f"to {state.value}",
                                       printer="Form4-A")
            store.hold_web_requests(account_key(BASE_URL, CLIENT_ID),
                                    datetime.now(timezone.utc) + timedelta(seconds=hold_s))
        stdout, stderr = io.StringIO(), io.StringIO()
        code = run(["verify", "--wait", "--store", str(path), "--settings", str(settings)],
                   stdout, stderr)
        said = stderr.getvalue()
        assert code == 1, said
        assert said.startswith("error: cannot verify now: POST "), said
        asked = re.search(r"asked to wait (\d+) s before the next request", said)
        assert asked is not None, said
        assert math.ceil(hold_s) - 60 < int(asked.group(1)) <= math.ceil(hold_s)
        assert "try again after " in said
        assert said.endswith("the prints still pending are checked on the next verify\n")
        with SqliteJobStore(path) as store:
            assert store.get_build(build.id).state is S.PRINT_SENT
