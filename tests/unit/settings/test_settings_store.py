"""The ``store`` section: the file, or a PostgreSQL URL several nodes share."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.errors import ConfigError
from preform_pipeline.settings import load_settings
from preform_pipeline.settings.store import default_store_path

URL = "postgresql://pipeline@db.farm.local:5432/preform_jobs"


class TestStoreSettings:
    """store.url beside store.path: which one a store is opened from."""

    def test_without_a_url_the_store_is_the_default_file(self) -> None:
        store = load_settings(env={}).store
        assert store.url is None
        assert store.location == store.path == default_store_path()

    def test_a_url_in_the_file_is_where_the_store_is(self, tmp_path: Path) -> None:
        path = tmp_path / "settings.yaml"
        path.write_text(f"store:\n  path: jobs.sqlite3\n  url: {URL}\n", encoding="utf-8")
        store = load_settings(path, env={}).store
        assert store.path == tmp_path / "jobs.sqlite3"
        assert store.url == URL and store.location == URL

    def test_the_variable_sets_the_url(self) -> None:
        store = load_settings(env={"PREFORM_PIPELINE_STORE_URL": URL}).store
        assert store.location == URL

    def test_a_url_that_is_not_postgresql_is_refused_naming_the_key(self, tmp_path: Path) -> None:
        path = tmp_path / "settings.yaml"
        path.write_text("store:\n  url: mysql://db/jobs\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"\$\.store\.url"):
            load_settings(path, env={})
