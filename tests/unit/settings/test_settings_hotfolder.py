"""The ``hotfolders`` settings section: defaults, paths, and errors that name the key."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from preform_pipeline.errors import ConfigError
from preform_pipeline.settings import HotFolderSettings, load_settings
from preform_pipeline.settings.hotfolder import (
    DEFAULT_QUIET_PERIOD_S,
    DEFAULT_WINDOW_S,
    InboxSettings,
    OutcomeFolders,
)


def write(folder: Path, text: str) -> Path:
    path = folder / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class TestLoading:
    """The section is read by load_settings like every other section."""

    def test_no_section_means_no_inboxes(self, tmp_path: Path) -> None:
        settings = load_settings(write(tmp_path, "servers: {count: 1}\n"), env={})
        assert settings.hotfolders == HotFolderSettings()
        assert settings.hotfolders.inboxes == ()

    def test_paths_are_relative_to_the_settings_file(self, tmp_path: Path) -> None:
        text = (
            "hotfolders:\n"
            "  inboxes:\n"
            "    - path: in\n"
            "      recipe: recipes/a.yaml\n"
            "      routes: [recipes/b.yaml]\n"
            "      mode: polling\n"
            "      poll_interval_s: 3\n"
            "  output_root: out\n"
        )
        hot = load_settings(write(tmp_path, text), env={}).hotfolders
        inbox = hot.inboxes[0]
        assert inbox.path == tmp_path / "in"
        assert inbox.recipe == tmp_path / "recipes" / "a.yaml"
        assert inbox.routes == (tmp_path / "recipes" / "b.yaml",)
        assert inbox.mode == "polling"
        assert inbox.poll_interval_s == 3.0
        assert inbox.quiet_period_s == DEFAULT_QUIET_PERIOD_S
        assert hot.output_root == tmp_path / "out"
        assert hot.batching.window_s == DEFAULT_WINDOW_S

    def test_batching_duplicates_and_deadline_are_read(self, tmp_path: Path) -> None:
        text = (
            "hotfolders:\n"
            "  inboxes: [{path: in, recipe: r.yaml}]\n"
            "  batching: {window_s: 2, max_models: 7, cutoff_time: '17:30', min_fill: 0.4,"
            " max_hold_s: 60}\n"
            "  duplicates: print\n"
            "  stop_deadline_s: 12\n"
        )
        hot = load_settings(write(tmp_path, text), env={}).hotfolders
        assert hot.batching.window_s == 2.0
        assert hot.batching.max_models == 7
        assert hot.batching.cutoff_time == time(17, 30)
        assert hot.batching.min_fill == 0.4
        assert hot.batching.max_hold_s == 60.0
        assert hot.duplicates == "print"
        assert hot.stop_deadline_s == 12.0


class TestErrors:
    """Mistakes are ConfigErrors naming the key path."""

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("hotfolders:\n  inboxes: [{path: in}]\n", "$.hotfolders.inboxes[0]"),
            ("hotfolders:\n  inboxs: []\n", "did you mean 'inboxes'"),
            ("hotfolders:\n  inboxes: [{path: in, recipe: r.yaml, mode: watch}]\n",
             "$.hotfolders.inboxes[0].mode"),
            ("hotfolders:\n  batching: {cutoff_time: '25:99'}\n", "cutoff_time"),
            ("hotfolders:\n  batching: {min_fill: 1.5}\n", "$.hotfolders.batching.min_fill"),
            ("hotfolders:\n  inboxes: [{path: in, recipe: a.yaml}, {path: in, recipe: b.yaml}]"
             "\n", "already inbox 0"),
            ("hotfolders:\n  inboxes: [{path: in, recipe: a.yaml, folders: {done: x, failed: x}}]"
             "\n", "three different folders"),
        ],
    )
    def test_bad_values_are_refused(self, tmp_path: Path, text: str, fragment: str) -> None:
        with pytest.raises(ConfigError) as caught:
            load_settings(write(tmp_path, text), env={})
        assert fragment in str(caught.value)


class TestOutcomeFolders:
    """Outcome folders are inside the inbox unless given as absolute paths."""

    def test_relative_names_are_inside_and_reserved(self, tmp_path: Path) -> None:
        inbox = InboxSettings(path=tmp_path / "in", folders=OutcomeFolders(done="ok"))
        assert inbox.folder("done") == tmp_path / "in" / "ok"
        assert inbox.reserved_names == {"processing", "ok", "failed"}

    def test_absolute_folders_are_not_reserved_names(self, tmp_path: Path) -> None:
        elsewhere = str(tmp_path / "archive")
        inbox = InboxSettings(path=tmp_path / "in", folders=OutcomeFolders(done=elsewhere))
        assert inbox.folder("done") == tmp_path / "archive"
        assert "archive" not in inbox.reserved_names
