"""Each test's own data folder (conftest's ``own_data_folder``) costs no scan of the folders
made before it: ~7,300 tests a run make one each."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import DATA_FOLDERS


class TestOwnDataFolder:
    """The data folder is new, the data environment points at it, and it is not numbered
    among the base temporary folder's entries, each of which the next number would list."""

    def test_the_data_environment_points_at_an_empty_folder(self, own_data_folder: Path) -> None:
        assert os.environ["XDG_DATA_HOME"] == os.environ["LOCALAPPDATA"] == str(own_data_folder)
        assert own_data_folder.is_dir() and not any(own_data_folder.iterdir())

    def test_it_is_made_apart_from_the_numbered_folders(
        self, own_data_folder: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        base = tmp_path_factory.getbasetemp()
        # tmp_path is numbered in the base folder by listing it; the data folder is not there,
        # so neither that listing nor its own making grows with the tests run before.
        assert tmp_path.parent == base
        assert own_data_folder.parent == base / DATA_FOLDERS
