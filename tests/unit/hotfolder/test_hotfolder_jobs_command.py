"""The ``jobs`` command a hot folder's notes name reaches the settings' store, and no further."""

from __future__ import annotations

import shlex
from pathlib import Path

from preform_pipeline.hotfolder.files import jobs_command
from preform_pipeline.settings import Settings, default_store_path, load_settings
from preform_pipeline.settings.store import rehearsal_store_path


def _settings_file(folder: Path, text: str) -> Path:
    path = folder / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class TestJobsCommand:
    """Notes say ``preform-pipeline jobs`` alone only when that opens the daemon's store."""

    def test_the_default_store_needs_no_option(self, tmp_path: Path) -> None:
        settings = load_settings(_settings_file(tmp_path, "servers: {count: 1}\n"), env={})
        assert settings.store.path == default_store_path()
        assert jobs_command(settings) == "preform-pipeline jobs"

    def test_a_store_of_its_own_is_named_with_store_and_quoted_when_it_has_spaces(
        self, tmp_path: Path
    ) -> None:
        folder = tmp_path / "Lab Share"
        folder.mkdir()
        store = folder / "jobs.sqlite3"
        settings = load_settings(_settings_file(folder, f"store: {{path: '{store}'}}\n"), env={})
        command = jobs_command(settings)
        assert shlex.split(command) == ["preform-pipeline", "jobs", "--store", str(store)]
        assert command == f'preform-pipeline jobs --store "{store}"'

    def test_a_shared_store_is_reached_through_the_settings_without_its_url(
        self, tmp_path: Path
    ) -> None:
        url = "postgresql://lab@db.example:5432/jobs"
        path = _settings_file(tmp_path, f"store: {{url: '{url}'}}\n")
        command = jobs_command(load_settings(path, env={}))
        assert command == f"preform-pipeline jobs --settings {path}"
        assert "db.example" not in command


class TestAStoreTheCommandLineChose:
    """``run --store``, ``jobs --store`` and a rehearsal's store are named as they were used."""

    def test_a_file_typed_on_the_command_line_is_named_with_store(self, tmp_path: Path) -> None:
        store = tmp_path / "other.sqlite3"
        assert jobs_command(Settings(), store) == f"preform-pipeline jobs --store {store}"

    def test_a_rehearsal_beside_the_default_store_is_named_with_store(self) -> None:
        rehearsal = rehearsal_store_path(default_store_path(), simulated=True)
        assert rehearsal != default_store_path()
        assert jobs_command(Settings(), rehearsal) == (
            f"preform-pipeline jobs --store {rehearsal}")

    def test_the_settings_own_store_given_again_is_named_as_the_settings_name_it(
        self, tmp_path: Path
    ) -> None:
        url = "postgresql://lab@db.example:5432/jobs"
        path = _settings_file(tmp_path, f"store: {{url: '{url}'}}\n")
        settings = load_settings(path, env={})
        assert jobs_command(settings, url) == f"preform-pipeline jobs --settings {path}"

    def test_a_typed_url_is_never_copied_into_a_hint(self) -> None:
        command = jobs_command(Settings(), "postgresql://pp:secret@db.example/jobs")
        assert command == "preform-pipeline jobs --store URL"
