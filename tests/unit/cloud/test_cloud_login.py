"""The Dashboard login's files named in the settings follow every settings path's rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.cloud.login import (
    ENV_DASHBOARD_PASSWORD,
    DashboardLogin,
    load_dashboard_login,
)
from preform_pipeline.errors import ConfigError
from preform_pipeline.recipes.settings_check import position_settings_error
from preform_pipeline.servers import ServerPool
from preform_pipeline.settings import load_settings


def _settings_naming(tmp_path: Path, password_file: str) -> Path:
    folder = tmp_path / "etc"
    folder.mkdir()
    settings = folder / "settings.yaml"
    settings.write_text(
        f"dashboard_login:\n  username: lab\n  password_file: {password_file}\n",
        encoding="utf-8")
    return settings


def _login_as_the_pool_reads_it(settings_file: Path) -> DashboardLogin | None:
    settings = load_settings(settings_file, env={})
    return load_dashboard_login(settings.dashboard_login, {},
                                base_dir=settings.dashboard_login_base)


class TestAPasswordFileInTheSettings:
    def test_a_tilde_is_the_home_folder_not_one_below_the_settings(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        home = tmp_path / "home"
        home.mkdir()
        (home / "pw").write_text("s3cret\n", encoding="utf-8")
        monkeypatch.setenv("HOME", str(home))
        login = _login_as_the_pool_reads_it(_settings_naming(tmp_path, "~/pw"))
        assert login == DashboardLogin("lab", "s3cret")

    def test_a_relative_name_is_still_beside_the_settings(self, tmp_path: Path) -> None:
        settings = _settings_naming(tmp_path, "pw")
        (settings.parent / "pw").write_text("s3cret\n", encoding="utf-8")
        assert _login_as_the_pool_reads_it(settings) == DashboardLogin("lab", "s3cret")

    def test_a_home_of_no_user_is_a_clear_error_at_its_key(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as caught:
            _login_as_the_pool_reads_it(_settings_naming(tmp_path, "~nosuchuser43/pw"))
        # Said at its key's path (session 44), for its line and column in the settings.
        # Not said back (session 45): a secret may begin with ~ too.
        assert caught.value.message == (
            "settings: $.dashboard_login.password_file: the name given (16 characters, not "
            "repeated here: it may be the secret itself) starts with ~ and no user of this "
            "machine is named so")


class TestAtThePoolsStart:
    """A file the login names that cannot be read stops the pool before any server starts,
    said with where the settings name it (file:line:col, as every settings error)."""

    def test_the_refusal_is_positioned_in_the_settings(self, tmp_path: Path) -> None:
        settings = _settings_naming(tmp_path, "secrets/dash-pw.txt")
        with pytest.raises(ConfigError) as caught:
            ServerPool(load_settings(settings, env={}).pool, handle_signals=False, env={})

        said = str(position_settings_error(caught.value))
        assert f"{settings}:3:18: $.dashboard_login.password_file: secrets/dash-pw.txt: " \
            "cannot read the Dashboard password file" in said

    def test_a_password_the_environment_gives_leaves_the_file_unread(
        self, tmp_path: Path
    ) -> None:
        settings = _settings_naming(tmp_path, "secrets/dash-pw.txt")
        pool = ServerPool(load_settings(settings, env={}).pool, handle_signals=False,
                          env={ENV_DASHBOARD_PASSWORD: "s3cret"})
        pool.close()
