"""The server pool's slice: how many servers the servers and remotes sections make, and which."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.errors import ConfigError
from preform_pipeline.settings import (
    PoolMode,
    PoolSettings,
    RemoteServer,
    ServerSettings,
    Settings,
    load_settings,
)

REMOTE = RemoteServer("http://printhost:44388")


class TestPoolSettings:
    """Local servers run unless only remotes are configured; the simulator when nothing is."""

    @pytest.mark.parametrize(
        ("executable", "remotes", "local", "size", "mode"),
        [
            (None, (), 3, 3, PoolMode.SIMULATED),
            (Path("PreFormServer"), (), 3, 3, PoolMode.LOCAL),
            (None, (REMOTE,), 0, 1, PoolMode.REMOTE),
            (Path("PreFormServer"), (REMOTE, REMOTE), 3, 5, PoolMode.MIXED),
        ],
    )
    def test_count_and_mode(
        self,
        executable: Path | None,
        remotes: tuple[RemoteServer, ...],
        local: int,
        size: int,
        mode: PoolMode,
    ) -> None:
        pool = PoolSettings(ServerSettings(executable=executable, count=3), remotes)
        assert (pool.local_count, pool.size, pool.mode) == (local, size, mode)
        assert pool.simulated is (mode is PoolMode.SIMULATED)

    def test_settings_hand_out_their_servers_and_remotes(self) -> None:
        settings = Settings(servers=ServerSettings(count=4), remotes=(REMOTE,))
        assert settings.pool == PoolSettings(ServerSettings(count=4), (REMOTE,))
        assert not settings.simulated

    def test_a_file_that_makes_no_server_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "settings.yaml"
        path.write_text("servers: {count: 0}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"\$\.servers\.count"):
            load_settings(path, env={})
