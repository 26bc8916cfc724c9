"""Loading Web API credentials from settings, environment variables and secret files."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.cloud import load_cloud_credentials
from preform_pipeline.cloud.credentials import (
    ENV_CLIENT_ID,
    ENV_CLIENT_ID_FILE,
    ENV_CLIENT_SECRET,
    ENV_CLIENT_SECRET_FILE,
    Credentials,
    load_credentials,
)
from preform_pipeline.errors import ConfigError
from preform_pipeline.settings import load_settings

SECRET = "s3cr3t-value-never-shown"


class TestCredentialsValue:
    """The credentials value object keeps the secret out of its text forms."""

    def test_repr_and_str_hide_the_secret(self) -> None:
        creds = Credentials("my-id", SECRET)
        assert SECRET not in repr(creds)
        assert SECRET not in str(creds)
        assert "my-id" in repr(creds)

    def test_the_secret_is_still_readable_as_an_attribute(self) -> None:
        assert Credentials("my-id", SECRET).client_secret == SECRET


class TestSources:
    """Each source on its own yields the client id and secret."""

    def test_settings_values_are_used(self) -> None:
        creds = load_credentials({"client_id": "from-settings", "client_secret": SECRET}, {})
        assert creds == Credentials("from-settings", SECRET)

    def test_environment_variables_are_used(self) -> None:
        env = {ENV_CLIENT_ID: "from-env", ENV_CLIENT_SECRET: SECRET}
        assert load_credentials(None, env) == Credentials("from-env", SECRET)

    def test_file_variables_are_read_and_the_trailing_newline_stripped(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "id").write_text("file-id\n", encoding="utf-8")
        (tmp_path / "secret").write_text(SECRET + "\r\n", encoding="utf-8")
        env = {
            ENV_CLIENT_ID_FILE: str(tmp_path / "id"),
            ENV_CLIENT_SECRET_FILE: str(tmp_path / "secret"),
        }
        assert load_credentials(None, env) == Credentials("file-id", SECRET)

    def test_a_file_variable_starting_with_the_home_folder_is_read_there(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A unit's Environment= or an env file expands nothing: ~ is ours to expand, as
        # the settings' client_secret_file is.
        monkeypatch.setenv("HOME", str(tmp_path))
        (tmp_path / "secret").write_text(SECRET + "\n", encoding="utf-8")
        env = {ENV_CLIENT_ID: "id", ENV_CLIENT_SECRET_FILE: "~/secret"}
        assert load_credentials(None, env) == Credentials("id", SECRET)

    def test_inner_whitespace_of_a_secret_file_is_kept(self, tmp_path: Path) -> None:
        (tmp_path / "secret").write_text(" a b \n", encoding="utf-8")
        env = {ENV_CLIENT_ID: "id", ENV_CLIENT_SECRET_FILE: str(tmp_path / "secret")}
        assert load_credentials(None, env).client_secret == " a b "

    def test_settings_file_paths_are_relative_to_the_base_dir(self, tmp_path: Path) -> None:
        (tmp_path / "secret.txt").write_text(SECRET, encoding="utf-8")
        settings = {"client_id": "id", "client_secret_file": "secret.txt"}
        creds = load_credentials(settings, {}, base_dir=tmp_path)
        assert creds.client_secret == SECRET


class TestPrecedence:
    """The environment wins over the settings, value by value."""

    def test_environment_overrides_settings(self) -> None:
        settings = {"client_id": "settings-id", "client_secret": "settings-secret"}
        env = {ENV_CLIENT_ID: "env-id", ENV_CLIENT_SECRET: SECRET}
        assert load_credentials(settings, env) == Credentials("env-id", SECRET)

    def test_environment_file_overrides_settings_value(self, tmp_path: Path) -> None:
        (tmp_path / "secret").write_text(SECRET + "\n", encoding="utf-8")
        settings = {"client_id": "settings-id", "client_secret": "settings-secret"}
        env = {ENV_CLIENT_SECRET_FILE: str(tmp_path / "secret")}
        assert load_credentials(settings, env) == Credentials("settings-id", SECRET)

    def test_values_may_come_from_different_sources(self) -> None:
        creds = load_credentials({"client_id": "settings-id"}, {ENV_CLIENT_SECRET: SECRET})
        assert creds == Credentials("settings-id", SECRET)

    def test_empty_environment_variables_count_as_unset(self) -> None:
        settings = {"client_id": "settings-id", "client_secret": SECRET}
        env = {ENV_CLIENT_ID: "", ENV_CLIENT_SECRET: ""}
        assert load_credentials(settings, env) == Credentials("settings-id", SECRET)

    def test_a_value_and_its_file_variable_together_are_refused(self, tmp_path: Path) -> None:
        (tmp_path / "secret").write_text(SECRET, encoding="utf-8")
        env = {
            ENV_CLIENT_ID: "id",
            ENV_CLIENT_SECRET: SECRET,
            ENV_CLIENT_SECRET_FILE: str(tmp_path / "secret"),
        }
        with pytest.raises(ConfigError, match=ENV_CLIENT_SECRET_FILE) as caught:
            load_credentials(None, env)
        assert SECRET not in str(caught.value)

    def test_a_settings_value_and_its_file_together_are_refused(self) -> None:
        settings = {"client_id": "id", "client_secret": SECRET, "client_secret_file": "x"}
        with pytest.raises(ConfigError, match="client_secret_file"):
            load_credentials(settings, {})


class TestMissingOrBroken:
    """Missing or unreadable credentials raise ConfigError naming what to set."""

    def test_nothing_configured_names_every_variable_to_set(self) -> None:
        with pytest.raises(ConfigError) as caught:
            load_credentials(None, {})
        text = str(caught.value)
        for name in (ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_CLIENT_ID_FILE, ENV_CLIENT_SECRET_FILE):
            assert name in text

    def test_only_the_missing_value_is_named(self) -> None:
        with pytest.raises(ConfigError) as caught:
            load_credentials(None, {ENV_CLIENT_ID: "id"})
        assert ENV_CLIENT_SECRET in str(caught.value)
        assert f"{ENV_CLIENT_ID} (" not in str(caught.value)

    def test_a_missing_secret_file_names_the_file_and_the_variable(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope"
        env = {ENV_CLIENT_ID: "id", ENV_CLIENT_SECRET_FILE: str(missing)}
        with pytest.raises(ConfigError) as caught:
            load_credentials(None, env)
        assert str(missing) in str(caught.value)
        assert ENV_CLIENT_SECRET_FILE in str(caught.value)

    def test_a_secret_given_as_the_files_name_is_not_said_back(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        by_variable = {ENV_CLIENT_ID: "id", ENV_CLIENT_SECRET_FILE: SECRET}
        in_settings = {"client_id": "id", "client_secret_file": SECRET}

        for section, env, base in ((None, by_variable, None), (in_settings, {}, tmp_path)):
            with pytest.raises(ConfigError) as caught:
                load_credentials(section, env, base_dir=base)
            assert SECRET not in str(caught.value)
            assert str(caught.value).startswith(f"the name given ({len(SECRET)} characters")
            assert f"looked for below {tmp_path})" in str(caught.value)

    def test_a_secret_as_the_settings_files_name_is_not_said_back(self, tmp_path: Path) -> None:
        # The product's way (rv43): the settings' path reaches the lookup joined to the
        # settings' folder, which always reads as a path; it is judged as written.
        path = tmp_path / "settings.yaml"
        path.write_text(f"cloud:\n  client_id: id\n  client_secret_file: {SECRET}\n",
                        encoding="utf-8")
        cloud = load_settings(path, env={}).cloud

        with pytest.raises(ConfigError) as caught:
            load_cloud_credentials(cloud, {})
        assert SECRET not in str(caught.value) + repr(cloud)
        assert str(caught.value).startswith(f"the name given ({len(SECRET)} characters")
        assert f"looked for below {tmp_path})" in str(caught.value)

    def test_a_secret_file_that_is_not_text_is_said_without_its_bytes(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "secret").write_bytes(b"s3cr\xe9t")
        env = {ENV_CLIENT_ID: "id", ENV_CLIENT_SECRET_FILE: str(tmp_path / "secret")}
        with pytest.raises(ConfigError, match="is not UTF-8 text") as caught:
            load_credentials(None, env)
        assert "0xe9" not in str(caught.value)

    def test_an_empty_secret_file_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "secret").write_text("\n", encoding="utf-8")
        env = {ENV_CLIENT_ID: "id", ENV_CLIENT_SECRET_FILE: str(tmp_path / "secret")}
        with pytest.raises(ConfigError, match="empty"):
            load_credentials(None, env)

    def test_a_non_string_settings_value_is_refused(self) -> None:
        with pytest.raises(ConfigError, match="must be a string"):
            load_credentials({"client_id": 12345, "client_secret": SECRET}, {})
