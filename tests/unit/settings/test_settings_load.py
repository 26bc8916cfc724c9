"""Settings: a YAML file, environment overrides, schema errors with file and key path.

Path-map folders here are POSIX paths (``/mnt/share``), so this module expects a POSIX host.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import jsonschema
import pytest

from preform_pipeline.errors import ConfigError
from preform_pipeline.settings import (
    ENVIRONMENT_VARIABLES,
    SETTINGS_ENV,
    PathMapping,
    ServerSettings,
    Settings,
    load_settings,
    settings_schema,
)
from preform_pipeline.settings.servers import DEFAULT_BASE_PORT, DEFAULT_SERVER_COUNT

FULL = """\
servers:
  executable: bin/PreFormServer.exe
  command_prefix: [wine]
  extra_args: ["--verbose"]
  count: 3
  base_port: 45000
  scene_cache_size: 40
  startup_timeout_s: 90
  recycle_after_builds: 25
  recycle_rss_mb: 4096
  max_restarts: 2
  crash_window_s: 60
  path_map: {"/": 'Z:\\'}
remotes:
  - url: http://printhost:44388/
    name: printhost
    path_map:
      /mnt/share: 'Z:\\'
      /mnt/share/dental: '\\\\nas\\dental'
output_root: results
logging:
  level: debug
  file: logs/run.jsonl
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, text), env=env or {})
    return str(caught.value)


class TestDefaults:
    """With nothing configured the pipeline runs simulated servers."""

    def test_no_file_and_no_variables_give_the_defaults(self) -> None:
        settings = load_settings(None, env={})
        assert settings.simulated
        assert settings.servers == ServerSettings()
        assert settings.servers.count == DEFAULT_SERVER_COUNT
        assert settings.servers.base_port == DEFAULT_BASE_PORT
        assert settings.remotes == ()
        assert settings.output_root is None  # each recipe's outputs.root
        assert settings.source is None

    def test_an_empty_file_gives_the_defaults(self, tmp_path: Path) -> None:
        settings = load_settings(_write(tmp_path, "# nothing yet\n"), env={})
        assert settings.servers == ServerSettings()

    def test_the_defaults_skip_no_check_the_schema_would_make(self) -> None:
        """Nothing configured is not checked against the schema (so jsonschema is not
        imported): sound only while the schema accepts an empty object."""
        assert jsonschema.Draft202012Validator(settings_schema()).is_valid({})

    def test_settings_are_frozen(self) -> None:
        with pytest.raises(dataclasses.FrozenInstanceError):
            Settings().servers.count = 5  # type: ignore[misc]


class TestSettingsFile:
    """Every section of the file reaches the value objects."""

    def test_a_full_file_is_read(self, tmp_path: Path) -> None:
        settings = load_settings(_write(tmp_path, FULL), env={})
        servers = settings.servers
        assert servers.executable == tmp_path / "bin" / "PreFormServer.exe"
        assert servers.command_prefix == ("wine",)
        assert servers.extra_args == ("--verbose",)
        assert (servers.count, servers.base_port, servers.scene_cache_size) == (3, 45000, 40)
        assert servers.startup_timeout_s == 90.0
        assert isinstance(servers.startup_timeout_s, float)
        assert (servers.recycle_after_builds, servers.recycle_rss_mb) == (25, 4096.0)
        assert (servers.max_restarts, servers.crash_window_s) == (2, 60.0)
        assert servers.path_map == (PathMapping(Path("/"), "Z:\\"),)
        (remote,) = settings.remotes
        assert remote.url == "http://printhost:44388"
        assert remote.name == "printhost"
        assert set(remote.path_map) == {
            PathMapping(Path("/mnt/share"), "Z:\\"),
            PathMapping(Path("/mnt/share/dental"), "\\\\nas\\dental"),
        }
        assert settings.output_root == tmp_path / "results"
        assert settings.logging.level == "DEBUG"
        assert settings.log_file == tmp_path / "logs" / "run.jsonl"
        assert settings.source == tmp_path / "settings.yaml"
        assert not settings.simulated

    def test_a_bare_executable_name_is_left_for_a_path_lookup(self, tmp_path: Path) -> None:
        settings = load_settings(_write(tmp_path, "servers: {executable: PreFormServer}"), env={})
        assert settings.servers.executable == Path("PreFormServer")

    def test_the_settings_variable_names_the_file(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "servers: {count: 5}")
        assert load_settings(None, env={SETTINGS_ENV: str(path)}).servers.count == 5

    def test_remotes_without_an_executable_run_no_local_servers(self, tmp_path: Path) -> None:
        settings = load_settings(_write(tmp_path, "remotes: [{url: 'http://h:1'}]"), env={})
        assert not settings.simulated
        assert settings.servers.executable is None


class TestEnvironment:
    """PREFORM_PIPELINE_* variables override the file."""

    def test_variables_override_file_values(self, tmp_path: Path) -> None:
        env = {
            "PREFORM_PIPELINE_SERVER_COUNT": "6",
            "PREFORM_PIPELINE_SERVER_BASE_PORT": "0",
            "PREFORM_PIPELINE_SERVER_EXECUTABLE": "/opt/pf/PreFormServer.exe",
            "PREFORM_PIPELINE_SERVER_COMMAND_PREFIX": "wine64 --bottle 'my bottle'",
            "PREFORM_PIPELINE_SERVER_STARTUP_TIMEOUT_S": "2.5",
            "PREFORM_PIPELINE_LOG_LEVEL": "warning",
            "PREFORM_PIPELINE_OUTPUT_ROOT": "elsewhere",
        }
        settings = load_settings(_write(tmp_path, FULL), env=env)
        assert settings.servers.count == 6
        assert settings.servers.base_port == 0
        assert settings.servers.executable == Path("/opt/pf/PreFormServer.exe")
        assert settings.servers.command_prefix == ("wine64", "--bottle", "my bottle")
        assert settings.servers.startup_timeout_s == 2.5
        assert settings.logging.level == "WARNING"
        assert settings.output_root == Path.cwd() / "elsewhere"  # relative to where we run
        assert settings.servers.scene_cache_size == 40  # untouched values stay

    def test_words_may_be_a_json_array(self) -> None:
        env = {"PREFORM_PIPELINE_SERVER_EXTRA_ARGS": '["--a b", "c"]'}
        assert load_settings(None, env=env).servers.extra_args == ("--a b", "c")

    def test_remotes_come_as_json_and_replace_the_files(self, tmp_path: Path) -> None:
        remotes = [{"url": "http://other:44388", "path_map": {"/srv/jobs": "D:\\jobs"}}]
        env = {"PREFORM_PIPELINE_REMOTES": json.dumps(remotes)}
        settings = load_settings(_write(tmp_path, FULL), env=env)
        (remote,) = settings.remotes
        assert remote.url == "http://other:44388"
        assert remote.path_map == (PathMapping(Path("/srv/jobs"), "D:\\jobs"),)

    def test_an_unreadable_number_names_the_variable(self) -> None:
        with pytest.raises(ConfigError) as caught:
            load_settings(None, env={"PREFORM_PIPELINE_SERVER_COUNT": "many"})
        assert "PREFORM_PIPELINE_SERVER_COUNT" in str(caught.value)
        assert "'many'" in str(caught.value)

    @pytest.mark.parametrize("written", ["nan", "inf", "-Infinity", "1e999"])
    def test_a_number_that_is_not_finite_names_the_variable(self, written: str) -> None:
        with pytest.raises(ConfigError) as caught:
            load_settings(None, env={"PREFORM_PIPELINE_NODE_LEASE_S": written})
        assert "environment variable PREFORM_PIPELINE_NODE_LEASE_S" in str(caught.value)
        assert f"'{written}' is not a finite number" in str(caught.value)

    def test_a_variable_breaking_the_schema_is_named_as_the_source(self, tmp_path: Path) -> None:
        text = _error(tmp_path, FULL, env={"PREFORM_PIPELINE_SERVER_COUNT": "-1"})
        assert "environment variable PREFORM_PIPELINE_SERVER_COUNT" in text
        assert "$.servers.count" in text
        assert str(tmp_path) not in text

    def test_an_empty_variable_counts_as_unset(self) -> None:
        assert load_settings(None, env={"PREFORM_PIPELINE_SERVER_COUNT": ""}).servers.count == 2


class TestErrors:
    """Every problem names the file and the key path, and says what to do."""

    def test_an_unknown_section_is_an_error_with_a_suggestion(self, tmp_path: Path) -> None:
        text = _error(tmp_path, "servres: {count: 2}")
        assert str(tmp_path / "settings.yaml") in text
        assert "$.servres: unknown key (did you mean 'servers'?)" in text

    def test_an_unknown_nested_key_lists_the_known_ones(self, tmp_path: Path) -> None:
        text = _error(tmp_path, "servers: {zzz: 1}")
        assert "$.servers.zzz: unknown key; known keys:" in text
        assert "base_port" in text

    def test_wrong_types_and_ranges_give_key_paths(self, tmp_path: Path) -> None:
        text = _error(tmp_path, "servers: {count: two, base_port: 70000}")
        assert "$.servers.base_port: 70000 is greater than the maximum of 65535" in text
        assert "$.servers.count: 'two' is not of type 'integer'" in text

    def test_list_items_get_their_index(self, tmp_path: Path) -> None:
        text = _error(tmp_path, "remotes: [{url: 'http://a:1'}, {url: 'ftp://b'}, {name: c}]")
        assert "$.remotes[1].url" in text
        assert "$.remotes[2]: 'url' is a required property" in text

    def test_a_relative_path_map_folder_is_an_error(self, tmp_path: Path) -> None:
        text = _error(tmp_path, "remotes: [{url: 'http://a:1', path_map: {share: 'Z:\\'}}]")
        assert "$.remotes[0].path_map.share: local folder 'share' is not an absolute path" in text

    def test_a_relative_server_folder_is_an_error(self, tmp_path: Path) -> None:
        text = _error(tmp_path, "servers: {path_map: {'/': 'models'}}")
        assert "$.servers.path_map['/']: server folder 'models' is not absolute" in text

    def test_zero_servers_and_no_remotes_is_an_error(self, tmp_path: Path) -> None:
        assert "nothing can run" in _error(tmp_path, "servers: {count: 0}")

    def test_a_backoff_maximum_below_the_start_is_an_error(self, tmp_path: Path) -> None:
        text = _error(tmp_path, "servers: {restart_backoff_s: 5, restart_backoff_max_s: 1}")
        assert "$.servers.restart_backoff_max_s" in text

    def test_a_missing_file_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="settings file not found"):
            load_settings(tmp_path / "nope.yaml", env={})

    def test_invalid_yaml_gives_line_and_column(self, tmp_path: Path) -> None:
        text = _error(tmp_path, "servers:\n  count: [1\n")
        assert re.search(r"settings\.yaml:\d+:\d+: \$: YAML syntax error", text)

    @pytest.mark.parametrize("written", [".nan", ".inf", "-.Inf", "1.0e+999", "1" + "0" * 400])
    def test_a_number_that_is_not_finite_is_refused_at_its_place(
        self, tmp_path: Path, written: str
    ) -> None:
        # Session 32: a settings file took .nan and .inf (NaN compares false with every
        # minimum of the schema), where a recipe refuses them.
        text = _error(tmp_path, f"servers:\n  startup_timeout_s: {written}\n")
        assert "settings.yaml:2:22: $: '" in text
        assert ("is not a finite number; NaN, infinities and numbers beyond about 1.8e308 "
                "are of no use in a settings file") in text
        assert "correct the value there" in text

    def test_a_file_that_is_not_a_mapping_is_an_error(self, tmp_path: Path) -> None:
        assert "expected a mapping of sections" in _error(tmp_path, "- servers\n")


class TestSchema:
    """The schema is valid, and it and the value objects describe the same settings."""

    def test_the_schema_is_a_valid_2020_12_schema(self) -> None:
        jsonschema.Draft202012Validator.check_schema(settings_schema())

    def test_every_server_setting_is_in_the_schema(self) -> None:
        properties = settings_schema()["$defs"]["servers"]["properties"]
        assert {f.name for f in dataclasses.fields(ServerSettings)} == set(properties)

    def test_every_environment_variable_is_documented(self, repo_root: Path) -> None:
        docs = (repo_root / "docs" / "settings.md").read_text(encoding="utf-8")
        for name in [SETTINGS_ENV, *(v.name for v in ENVIRONMENT_VARIABLES)]:
            assert f"`{name}`" in docs, name

    def test_every_server_setting_is_documented(self, repo_root: Path) -> None:
        docs = (repo_root / "docs" / "settings.md").read_text(encoding="utf-8")
        for field in dataclasses.fields(ServerSettings):
            assert f"`{field.name}`" in docs, field.name


class TestAHomeOfNoUser:
    """``~name`` for a user this machine does not have is refused, not a traceback."""

    def test_a_variable_naming_one_is_a_config_error(self) -> None:
        # Found by test_settings_properties (``~0``): "Could not determine home directory".
        with pytest.raises(ConfigError) as caught:
            load_settings(None, env={"PREFORM_PIPELINE_SERVER_STATE_DIR": "~nosuchuser38/s"})
        assert caught.value.message == (
            "environment variable PREFORM_PIPELINE_SERVER_STATE_DIR: $.servers.state_dir: "
            "'~nosuchuser38/s': no user named 'nosuchuser38' on this machine")
        assert caught.value.hint == ("write the path in full, or start it with ~/ for your "
                                     "own home folder")

    @pytest.mark.parametrize(("body", "key"), [
        ("hotfolders:\n  inboxes:\n    - path: ~nosuchuser38/x\n      recipe: r.yaml\n",
         "$.hotfolders.inboxes[0].path"),
        # A path_map's local folder is read apart from the other paths.
        ("remotes:\n  - url: http://127.0.0.1:1\n    path_map: {'~nosuchuser38/x': 'Z:\\'}\n",
         "$.remotes[0].path_map['~nosuchuser38/x']"),
    ])
    def test_a_file_naming_one_is_refused_at_its_key(
        self, tmp_path: Path, body: str, key: str
    ) -> None:
        settings = tmp_path / "settings.yaml"
        settings.write_text(body, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_settings(settings, env={})
        assert caught.value.message == (
            f"{settings}: {key}: '~nosuchuser38/x': no user named 'nosuchuser38' on this machine")
