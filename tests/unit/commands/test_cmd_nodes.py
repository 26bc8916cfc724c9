"""``preform-pipeline nodes``: the nodes of a shared store, their health and what they hold."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from preform_pipeline.cli import run
from preform_pipeline.store import JobState
from preform_pipeline.store.leases import NodeInfo
from preform_pipeline.store.pgurl import PASSWORD_ENV
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD, PgCluster
from tests.unit.store.conftest import build_in_state


def invoke(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(["nodes", *argv], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def nodes_db(pg_cluster: PgCluster) -> str:
    return pg_cluster.create_database("nodes_command")


@pytest.fixture
def settings(tmp_path: Path, nodes_db: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)
    path = tmp_path / "settings.yaml"
    path.write_text(f"store:\n  url: {nodes_db}\n", encoding="utf-8")
    return path


class TestNodesCommand:
    """Registered nodes are listed with health, reach and held builds; SQLite has none."""

    def test_two_nodes_one_holding_a_build(self, settings: Path, nodes_db: str) -> None:
        with PostgresJobStore(nodes_db) as store:
            build = build_in_state(store, JobState.PROCESSING)
            store.register_node(NodeInfo("pc-1", "prep1", "0.1.0", printers=("Form4-A",),
                                         machine_types=("FORM-4-0",),
                                         inboxes=("/lab/inbox",)))
            store.register_node(NodeInfo("pc-2", "prep2", "0.1.0"))
            assert store.claim_build("pc-1") is not None
            store.node_stopped("pc-2")
        code, out, err = invoke(str(settings))
        assert (code, err) == (0, "")
        lines = out.splitlines()
        assert lines[0].split() == ["NODE", "HOST", "VERSION", "HEALTH", "BEAT", "PRINTERS",
                                    "MACHINES", "INBOXES", "HOLDS"]
        assert lines[1].split()[:4] == ["pc-1", "prep1", "0.1.0", "alive"]
        assert f"/lab/inbox  build {build.id}" in lines[1]
        assert lines[2].split()[:4] == ["pc-2", "prep2", "0.1.0", "stopped"]
        code, out, _ = invoke(str(settings), "--format", "json")
        listed = {n["id"]: n for n in json.loads(out)["nodes"]}
        assert listed["pc-1"]["holds"] == [build.id]
        assert listed["pc-1"]["printers"] == ["Form4-A"]
        assert (listed["pc-1"]["inboxes"], listed["pc-2"]["inboxes"]) == (["/lab/inbox"], [])
        assert listed["pc-2"]["health"] == "stopped"

    def test_a_sqlite_store_has_no_nodes_and_says_what_to_set(self, tmp_path: Path) -> None:
        path = tmp_path / "settings.yaml"
        path.write_text(f"store:\n  path: {tmp_path / 'jobs.sqlite3'}\n", encoding="utf-8")
        code, out, err = invoke(str(path))
        assert code == 1 and out == ""
        assert "store.url" in err


class TestNamesWithTerminalEscapes:
    """What a node registered is shown as escapes, each column measured as shown."""

    def test_a_printer_so_named(self, pg_cluster: PgCluster, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
        url = pg_cluster.create_database("nodes_escaped")
        monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)
        settings = tmp_path / "settings.yaml"
        settings.write_text(f"store:\n  url: {url}\n", encoding="utf-8")
        with PostgresJobStore(url) as store:
            store.register_node(NodeInfo("pc-1", "prep\x1b[2J", "0.1.0",
                                         printers=("Form4-\x1b]0;owned\x07\u202e",)))
        code, out, err = invoke(str(settings))
        assert (code, err) == (0, "")
        header, row = out.splitlines()
        assert row.split()[:2] == ["pc-1", "prep\\x1b[2J"]
        assert "Form4-\\x1b]0;owned\\x07\\u202e" in row
        assert not {"\x1b", "\x07", "\u202e"} & set(out), out
        # MACHINES starts where its header does: the cells were measured as shown.
        assert row.index(" -") + 1 == header.index("MACHINES"), out
