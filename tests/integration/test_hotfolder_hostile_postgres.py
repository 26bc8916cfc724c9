"""Session 31's hostile sidecar texts, end to end on a PostgreSQL store (session 32): ``watch
--once`` in a subprocess with ``store.url`` on the suite's cluster. A text PostgreSQL cannot
hold (a NUL) or that is no Unicode text at all (a lone surrogate escaped in JSON) fails its
case alone, said why; the good file beside it prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_hotfolder_hostile import quick_settings
from test_watch_on_postgres import _watch_once

from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.store import JobState
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD, PgCluster


@pytest.fixture
def settings_on_postgres(tmp_path: Path, pg_cluster: PgCluster,
                         request: pytest.FixtureRequest) -> tuple[Path, str]:
    url = pg_cluster.create_database(f"hostile_{request.node.name[-16:].lower()}")
    path = quick_settings(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["store"]["url"] = url
    path.write_text(json.dumps(data), encoding="utf-8")
    return path, url


class TestSidecarTextsOnPostgres:
    """Each hostile sidecar fails its own case, recorded as failed; the good job is done."""

    def test_each_fails_alone_and_the_good_file_prints(
        self, tmp_path: Path, settings_on_postgres: tuple[Path, str]
    ) -> None:
        settings, url = settings_on_postgres
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        (inbox / "good.stl").write_bytes(tetra_stl_bytes(3))
        sidecars = {"nul": '{"case_id": "C-\\u00007"}',
                    "surrogate": '{"case_id": "C-\\ud8007"}',
                    "field": '{"case_id": "C-8", "customer": "a\\u0000b"}',
                    "yaml": 'case_id: "C-\\ud8009"\n',
                    "key": '{"case_id": "C-10", "\\ud800": "x"}'}
        for n, (name, text) in enumerate(sidecars.items()):
            suffix = ".yaml" if name == "yaml" else ".json"
            (inbox / f"{name}.stl").write_bytes(tetra_stl_bytes(10 + n))
            (inbox / f"{name}{suffix}").write_text(text, encoding="utf-8")

        done = _watch_once(settings, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "unexpected failure" not in done.stderr
        assert "Traceback" not in done.stderr
        assert (inbox / "done" / "good.stl").exists()
        for name in sidecars:
            assert (inbox / "failed" / f"{name}.stl").exists(), name
            assert (inbox / "failed" / f"{name}{'.yaml' if name == 'yaml' else '.json'}"
                    ).exists(), name
        said = {"nul": "$.case_id: holds a NUL character, which no text may hold",
                "surrogate": "$.case_id: holds a lone surrogate escape (such as \\ud800, half "
                             "of a character), which is no text",
                "field": "$.customer: holds a NUL character, which no text may hold",
                "yaml": "$.case_id: holds a lone surrogate escape",
                "key": "unknown field '\\ud800'"}
        for name, text in said.items():
            note = (inbox / "failed" / f"{name}.stl.error.txt").read_text(encoding="utf-8")
            assert text in note, note
        with PostgresJobStore(url, password=PG_PASSWORD) as store:
            jobs = {j.original_name: j for j in store.list_jobs()}
        assert jobs.pop("good.stl").state is JobState.DONE
        assert {n: (j.state, said[n[:-4]] in j.reason) for n, j in jobs.items()} == {
            f"{n}.stl": (JobState.FAILED, True) for n in said}
