"""The pool's server records: where they live, what they hold, and what a reader skips."""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.atomicfile import instance_tag
from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.servers.records import (
    RECORD_SUFFIX,
    ServerRecord,
    ServerRecords,
    default_state_dir,
    state_dir_of,
)
from preform_pipeline.settings import load_settings

OWNER = ProcessIdentity(pid=100, create_time=1_700_000_000.25, host="lab-pc")
SERVER = ProcessIdentity(pid=101, create_time=1_700_000_001.5, host="lab-pc")


def _record(port: int = 44388) -> ServerRecord:
    return ServerRecord(
        server=SERVER, owner=OWNER, name="server-1", port=port,
        command=("python", "-m", "preform_pipeline.simulator", "--port", str(port)),
        started_at=datetime(2024, 5, 1, 12, tzinfo=timezone.utc),
    )


class TestStateFolder:
    """The state folder is configurable, and by default in the user's data folder."""

    def test_default_per_platform(self) -> None:
        home = {"HOME": "/home/ann", "LOCALAPPDATA": "C:\\Users\\ann\\AppData\\Local"}
        assert default_state_dir(home, "linux") == Path(
            "/home/ann/.local/share/preform-pipeline/servers"
        )
        assert default_state_dir(home, "darwin") == Path(
            "/home/ann/Library/Application Support/preform-pipeline/servers"
        )
        assert default_state_dir(home, "win32").parts[-2:] == ("preform-pipeline", "servers")

    def test_a_relative_setting_is_resolved_beside_the_settings_file(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "settings.yaml"
        path.write_text("servers:\n  state_dir: run-state\n", encoding="utf-8")
        assert state_dir_of(load_settings(path, env={}).servers) == tmp_path / "run-state"


class TestRecords:
    """A record written is read back the same; files that are not records are skipped."""

    def test_round_trip_and_removal(self, tmp_path: Path) -> None:
        records = ServerRecords(tmp_path / "state")
        path = records.add(_record())
        assert path.name == f"lab-pc-101-{instance_tag('lab-pc', None)}{RECORD_SUFFIX}"
        assert records.read_all() == [(path, _record())]
        records.remove(_record())
        records.remove(_record())  # already gone: fine
        assert records.read_all() == []

    def test_an_unreadable_record_is_reported_not_trusted(self, tmp_path: Path) -> None:
        (tmp_path / f"junk{RECORD_SUFFIX}").write_text('{"version": 1, "port": "x"}')
        with capture_logs() as logs:
            assert ServerRecords(tmp_path).read_all() == [
                (tmp_path / f"junk{RECORD_SUFFIX}", None)
            ]
        assert [e["event"] for e in logs] == ["server_record_unreadable"]

    def test_a_missing_folder_holds_no_records(self, tmp_path: Path) -> None:
        assert ServerRecords(tmp_path / "nowhere").read_all() == []


def _on_host(host: str, pid: int = 101) -> ServerRecord:
    server = ProcessIdentity(pid=pid, create_time=1_700_000_001.5, host=host)
    return dataclasses.replace(_record(), server=server)


class TestALongHostName:
    """A host name as long as the file system takes (macOS allows 255 bytes) still gets its
    record written, read back and removed, under a name of its own."""

    @pytest.mark.parametrize("size", [235, 255])
    def test_the_record_is_written_read_and_removed(self, tmp_path: Path, size: int) -> None:
        records = ServerRecords(tmp_path)
        record = _on_host("h" * size)
        path = records.add(record)
        assert len(os.fsencode(path.name)) <= 255 and path.name.endswith(RECORD_SUFFIX)
        assert path.name.startswith("h" * 200)
        assert records.read_all() == [(path, record)]
        assert list(tmp_path.iterdir()) == [path]  # no temporary left
        records.remove(record)
        assert list(tmp_path.iterdir()) == []

    def test_two_servers_of_one_long_host_have_two_records(self, tmp_path: Path) -> None:
        records = ServerRecords(tmp_path)
        first, second = _on_host("h" * 255, pid=101), _on_host("h" * 255, pid=102)
        assert records.add(first) != records.add(second)
        assert sorted(r.server.pid for _, r in records.read_all() if r) == [101, 102]


class TestTwoContainersOfOneHostName:
    """Two containers of one host name sharing the folder number their servers apart: the same
    pid of each has its own record, and a record says its instance."""

    def test_the_same_pid_in_two_instances_has_two_records(self, tmp_path: Path) -> None:
        records = ServerRecords(tmp_path)
        here, there = (dataclasses.replace(_record(), server=dataclasses.replace(
            SERVER, instance=instance)) for instance in ("boot/1", "boot/2"))
        assert records.add(here) != records.add(there)
        read = [r for _, r in records.read_all() if r is not None]
        assert sorted(str(r.server.instance) for r in read) == ["boot/1", "boot/2"]
