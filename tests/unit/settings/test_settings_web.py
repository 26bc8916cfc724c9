"""The ``web`` settings section: address defaults, and secrets held only as scrypt hashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preform_pipeline.commands.serve import web_settings_of
from preform_pipeline.errors import ConfigError
from preform_pipeline.settings import load_settings
from preform_pipeline.settings.web import check_secret, hash_secret

SECRET = "correct-horse-battery"


def _load(tmp_path: Path, web: object, env: dict[str, str] | None = None) -> object:
    path = tmp_path / "settings.yaml"
    path.write_text(json.dumps({"web": web}), encoding="utf-8")
    return load_settings(path, env=env or {})


class TestWebSettings:
    """Users, roles and secrets of the dashboard."""

    def test_the_defaults_bind_loopback_with_no_users(self) -> None:
        web = load_settings(None, env={}).web
        assert (web.host, web.port, web.users) == ("127.0.0.1", 8765, ())

    def test_a_secret_file_and_an_environment_secret_are_hashed_at_load(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "op.secret").write_text(SECRET + "\n", encoding="utf-8")
        settings = _load(tmp_path, {"users": [
            {"name": "olivia", "role": "operator", "secret_file": "op.secret"},
            {"name": "victor", "role": "viewer", "secret_env": "VIEWER_SECRET"},
        ]}, env={"VIEWER_SECRET": "viewer-secret-99"})
        olivia, victor = settings.web.users  # type: ignore[attr-defined]
        assert olivia.operator and not victor.operator
        assert check_secret(SECRET, olivia.secret_hash)
        assert check_secret("viewer-secret-99", victor.secret_hash)
        assert SECRET not in olivia.secret_hash and SECRET not in repr(settings)
        assert not check_secret("wrong", olivia.secret_hash)

    def test_a_written_hash_is_taken_as_it_is(self, tmp_path: Path) -> None:
        encoded = hash_secret(SECRET)
        settings = _load(tmp_path, {"users": [
            {"name": "olivia", "role": "operator", "secret_hash": encoded}]})
        assert settings.web.users[0].secret_hash == encoded  # type: ignore[attr-defined]

    def test_a_plain_password_where_the_hash_goes_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="secret_hash"):
            _load(tmp_path, {"users": [
                {"name": "olivia", "role": "operator", "secret_hash": SECRET}]})

    def test_a_missing_secret_file_and_an_unset_variable_are_named(
        self, tmp_path: Path
    ) -> None:
        with pytest.raises(ConfigError, match="cannot read the secret file"):
            _load(tmp_path, {"users": [
                {"name": "o", "role": "operator", "secret_file": "nowhere.secret"}]})
        with pytest.raises(ConfigError, match="UNSET_SECRET is not set"):
            _load(tmp_path, {"users": [
                {"name": "o", "role": "operator", "secret_env": "UNSET_SECRET"}]})

    def test_a_secret_written_as_its_files_name_is_not_said_back(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot read the secret file the name") as caught:
            _load(tmp_path, {"users": [
                {"name": "o", "role": "operator", "secret_file": SECRET}]})
        assert SECRET not in str(caught.value)

    def test_a_user_named_twice_or_an_unknown_role_is_refused(self, tmp_path: Path) -> None:
        encoded = hash_secret(SECRET)
        with pytest.raises(ConfigError, match="used twice"):
            _load(tmp_path, {"users": [
                {"name": "o", "role": "operator", "secret_hash": encoded},
                {"name": "o", "role": "viewer", "secret_hash": encoded}]})
        with pytest.raises(ConfigError, match="role"):
            _load(tmp_path, {"users": [{"name": "o", "role": "admin", "secret_hash": encoded}]})


class TestAllowedHosts:
    """``web.allowed_hosts``: names the dashboard answers to, kept by ``serve --host``."""

    def test_the_names_are_read_and_kept_when_serve_overrides_the_address(
        self, tmp_path: Path
    ) -> None:
        settings = _load(tmp_path, {"host": "0.0.0.0", "allowed_hosts": ["dash.lab.example"]})
        web = web_settings_of(settings, "10.0.0.5", 0)  # type: ignore[arg-type]
        assert (web.host, web.port, web.allowed_hosts) == ("10.0.0.5", 0,
                                                           ("dash.lab.example",))

    @pytest.mark.parametrize("name", ["https://dash.lab.example/", "dash lab", "me@dash"])
    def test_a_url_or_a_name_with_a_space_is_refused(self, tmp_path: Path, name: str) -> None:
        with pytest.raises(ConfigError, match="allowed_hosts"):
            _load(tmp_path, {"allowed_hosts": [name]})
